//! Builds the firmware and decodes its defmt log.

use std::path::PathBuf;

use defmt_decoder::{DecodeError, Table};

use crate::toolchain::Setup;

/// The firmware's target: QEMU's `mps2-an386` is a Cortex-M4F with a hardware FPU.
pub const TARGET: &str = "thumbv7em-none-eabihf";

/// Builds the firmware for QEMU (release) and returns the path of its ELF.
pub fn build(setup: &Setup) -> Result<PathBuf, String> {
    println!("firmware: building for {TARGET} (release)");
    build_with(setup, &[], None)
}

/// Builds the `fault-check` firmware, which panics right after boot, in a target folder of
/// its own (so the QEMU build is not rebuilt after it), and returns its ELF.
pub fn build_fault_check(setup: &Setup) -> Result<PathBuf, String> {
    build_with(setup, &["--features", "fault-check"], Some("fault-check"))
}

/// Where a real STM32F411 keeps its flash, and so where probe-rs writes the board build.
const BOARD_FLASH: u64 = 0x0800_0000;

/// Builds the firmware for a real board (STM32F411, defmt over RTT) and checks that it is
/// laid out for the part's flash, where probe-rs can write it.
pub fn build_board(setup: &Setup) -> Result<PathBuf, String> {
    use object::{Object, ObjectSection};

    let elf = build_with(
        setup,
        &["--no-default-features", "--features", "board"],
        None,
    )?;
    let bytes = std::fs::read(&elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let file = object::File::parse(&*bytes).map_err(|e| e.to_string())?;
    match file.section_by_name(".vector_table").map(|s| s.address()) {
        Some(BOARD_FLASH) => Ok(elf),
        Some(other) => Err(format!(
            "{}: the vector table is at {other:#x}, not at the start of the STM32F411's flash \
             ({BOARD_FLASH:#x}), so probe-rs could not flash it (see firmware/memory/)",
            elf.display()
        )),
        None => Err(format!("{}: no .vector_table section", elf.display())),
    }
}

/// Builds the firmware with `features`, under `firmware/target` (or its folder `separate`).
fn build_with(setup: &Setup, features: &[&str], separate: Option<&str>) -> Result<PathBuf, String> {
    let dir = crate::root().join("firmware");
    let mut command = setup.cross_cargo(&dir, "build");
    let mut target_dir = match setup.route {
        crate::toolchain::Route::Rustup => dir.join("target"),
        crate::toolchain::Route::DebianBuildStd => dir.join("target/debian-build-std"),
    };
    if let Some(folder) = separate {
        target_dir = target_dir.join(folder);
    }
    // The ELF is looked for there: a CARGO_TARGET_DIR meant for the host workspace must not
    // move it.
    command.env("CARGO_TARGET_DIR", &target_dir);
    let status = command
        .args(["--release", "--target", TARGET])
        .args(features)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("firmware build failed".into());
    }

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
