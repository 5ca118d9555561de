//! Points the linker to the memory layout, and prepares the built-in library.
//!
//! The layout is `memory/qemu/memory.x` (QEMU's mps2-an386, code at 0x0) or, with the
//! `board` feature, `memory/board/memory.x` (an STM32F411RE, code at 0x0800_0000 where
//! probe-rs flashes it). They live in folders of their own because the linker looks for
//! `memory.x` in the package folder before any search path.
//!
//! The built-in library is the synthetic one of `builtin/synthetic.rs` (2048 channels,
//! 8 phases, no background), prepared by the kernel's own `prepare` on the build machine and
//! written in the kernel's byte format to `$OUT_DIR/builtin.unmix`, which the firmware
//! embeds in flash. `prepare` is target-independent, so the bytes (and the library id) are
//! the same as the host computes from the same values.

use std::{env, fs, path::PathBuf};

#[path = "builtin/synthetic.rs"]
mod synthetic;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let layout = if env::var_os("CARGO_FEATURE_BOARD").is_some() {
        "board"
    } else {
        "qemu"
    };
    println!(
        "cargo:rustc-link-search={}",
        manifest.join("memory").join(layout).display()
    );

    let bytes = builtin_library();
    fs::write(out.join("builtin.unmix"), bytes).expect("OUT_DIR is writable");

    println!("cargo:rerun-if-changed=memory");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=builtin/synthetic.rs");
    println!("cargo:rerun-if-changed=../core/src");
}

/// The prepared built-in library in the kernel's byte format.
fn builtin_library() -> Vec<u8> {
    let values = synthetic::library(synthetic::CHANNELS, synthetic::PHASES, synthetic::SEED);
    let shape = unmix::Shape::new(
        synthetic::CHANNELS,
        synthetic::PHASES,
        unmix::Background::None,
    );

    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    let view = unmix::prepare(shape, &values, &mut storage, &mut scratch)
        .expect("the synthetic library is well conditioned");

    let mut bytes = vec![0u8; view.bytes_len()];
    let len = view.to_bytes(&mut bytes).expect("sized by bytes_len");
    bytes.truncate(len);
    bytes
}
