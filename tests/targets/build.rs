//! Chooses the memory layout for the target being built and hands it to the linker.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = env::var("TARGET").unwrap_or_default();

    // The Cortex-M4F board (mps2-an386) gets its real memory; the Cortex-M0 layout keeps the
    // smaller lm3s6965evb part's sizes.
    let layout = if target.starts_with("riscv") {
        "memory-riscv.x"
    } else if target.starts_with("thumbv7em") {
        "memory-m4.x"
    } else {
        "memory-arm.x"
    };
    fs::copy(layout, out.join("memory.x")).expect("memory layouts sit beside build.rs");

    println!("cargo:rustc-link-search={}", out.display());
    if target.starts_with("riscv") {
        // riscv-rt's link.x expects the memory regions to be defined before it.
        println!("cargo:rustc-link-arg=-Tmemory.x");
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rerun-if-changed={layout}");
    println!("cargo:rerun-if-changed=build.rs");
}
