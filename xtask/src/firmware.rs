//! Builds the firmware and decodes its defmt log.

use std::path::PathBuf;

use defmt_decoder::{DecodeError, Table};

use crate::toolchain::Setup;

/// The firmware's target: QEMU's `mps2-an386` is a Cortex-M4F with a hardware FPU.
pub const TARGET: &str = "thumbv7em-none-eabihf";

/// Builds the firmware (release) and returns the path of its ELF.
pub fn build(setup: &Setup) -> Result<PathBuf, String> {
    let dir = crate::root().join("firmware");
    println!("firmware: building for {TARGET} (release)");

    let mut command = setup.cross_cargo(&dir, "build");
    if setup.route == crate::toolchain::Route::Rustup {
        // The ELF is looked for under firmware/target: a CARGO_TARGET_DIR meant for the host
        // workspace must not move it.
        command.env_remove("CARGO_TARGET_DIR");
    }
    let status = command
        .args(["--release", "--target", TARGET])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("firmware build failed".into());
    }

    let target_dir = match setup.route {
        crate::toolchain::Route::Rustup => dir.join("target"),
        crate::toolchain::Route::DebianBuildStd => dir.join("target/debian-build-std"),
    };
    Ok(target_dir.join(TARGET).join("release/unmix-firmware"))
}

/// Decodes every complete defmt frame in `raw`; a malformed tail is reported, not hidden.
pub fn decode(table: &Table, raw: &[u8]) -> Vec<String> {
    let mut decoder = table.new_stream_decoder();
    decoder.received(raw);

    let mut lines = Vec::new();
    loop {
        match decoder.decode() {
            Ok(frame) => {
                let level = frame
                    .level()
                    .map(|l| l.as_str().to_uppercase())
                    .unwrap_or_default();
                lines.push(format!("{level:<5} {}", frame.display_message()));
            }
            Err(DecodeError::UnexpectedEof) => break,
            Err(DecodeError::Malformed) => {
                lines.push("(malformed defmt frame: the rest of the log cannot be decoded)".into());
                break;
            }
        }
    }
    lines
}
