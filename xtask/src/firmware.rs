//! Builds the firmware, boots it in QEMU and decodes its defmt log.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use defmt_decoder::{DecodeError, Table};

use crate::toolchain::Setup;

/// The firmware's target: QEMU's `mps2-an386` is a Cortex-M4F with a hardware FPU.
pub const TARGET: &str = "thumbv7em-none-eabihf";

/// QEMU never runs longer than this: a hung firmware is a failure, not a stuck CI.
const QEMU_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds the firmware (release) and returns the path of its ELF.
pub fn build(setup: &Setup) -> Result<PathBuf, String> {
    let dir = crate::root().join("firmware");
    println!("firmware: building for {TARGET} (release)");

    let status = setup
        .cross_cargo(&dir, "build")
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

/// What one QEMU run of the firmware produced.
pub struct Outcome {
    /// QEMU's exit code (the firmware's semihosting exit status), `None` if killed.
    pub code: Option<i32>,
    /// The decoded defmt log, one line per frame.
    pub log: Vec<String>,
}

impl Outcome {
    /// Prints the decoded log.
    pub fn print_log(&self) {
        for line in &self.log {
            println!("  {line}");
        }
    }

    /// Succeeds when the firmware exited through semihosting with success.
    pub fn expect_success(&self) -> Result<(), String> {
        match self.code {
            Some(0) => Ok(()),
            Some(code) => Err(format!("firmware exited with status {code}")),
            None => Err(format!(
                "firmware did not exit within {} s",
                QEMU_TIMEOUT.as_secs()
            )),
        }
    }
}

/// Boots `elf` on QEMU's `mps2-an386` and decodes the defmt frames it writes.
pub fn run_in_qemu(elf: &Path, extra_args: &[&str]) -> Result<Outcome, String> {
    let bytes = std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let table = Table::parse(&bytes)
        .map_err(|e| format!("defmt table in {}: {e}", elf.display()))?
        .ok_or_else(|| {
            format!(
                "{} has no defmt table (linked without defmt.x?)",
                elf.display()
            )
        })?;

    println!("firmware: booting {} in QEMU mps2-an386", elf.display());
    let mut child = qemu_command(elf)
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-arm: {e}"))?;

    let mut stdout = child.stdout.take().ok_or("QEMU has no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let _ = stdout.read_to_end(&mut raw);
        raw
    });

    let code = wait_with_timeout(&mut child, QEMU_TIMEOUT)?;
    let raw = reader.join().map_err(|_| "QEMU output reader panicked")?;

    Ok(Outcome {
        code,
        log: decode(&table, &raw),
    })
}

/// The QEMU command line for `elf` on the Cortex-M4F board model.
pub fn qemu_command(elf: &Path) -> Command {
    let mut command = Command::new("qemu-system-arm");
    command
        .args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
        .args(["-display", "none", "-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-kernel")
        .arg(elf);
    command
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Result<Option<i32>, String> {
    let start = Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => return Ok(status.code()),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
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
