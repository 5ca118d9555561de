//! Identical bits on every target: the golden-vector runner (`tests/targets`) built for each
//! bare-metal target, run under QEMU, its printed result bits compared with the checked-in
//! expectation `tests/golden/expected.txt` (which the host's own test regenerates and compares
//! on x86_64).

use std::{
    path::Path,
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use crate::toolchain::{Route, Setup};

/// One bare-metal target and the QEMU machine that runs it.
pub struct Machine {
    /// Rust target triple.
    pub target: &'static str,
    /// What the machine is, for messages.
    pub label: &'static str,
    /// QEMU program.
    pub qemu: &'static str,
    /// QEMU arguments before `-kernel`.
    pub args: &'static [&'static str],
}

/// The three bare-metal targets of the identical-bits promise.
pub const MACHINES: [Machine; 3] = [
    Machine {
        target: "thumbv7em-none-eabihf",
        label: "Cortex-M4F, hardware FPU (QEMU mps2-an386)",
        qemu: "qemu-system-arm",
        args: &["-machine", "mps2-an386", "-cpu", "cortex-m4"],
    },
    Machine {
        target: "thumbv6m-none-eabi",
        label: "Cortex-M0, soft float (QEMU lm3s6965evb -cpu cortex-m0)",
        qemu: "qemu-system-arm",
        args: &["-machine", "lm3s6965evb", "-cpu", "cortex-m0"],
    },
    Machine {
        target: "riscv32imac-unknown-none-elf",
        label: "RISC-V rv32imac, soft float (QEMU virt)",
        qemu: "qemu-system-riscv32",
        args: &["-machine", "virt", "-bios", "none"],
    },
];

/// No golden run may take longer than this.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds the golden runner for `machine` and returns its ELF path.
pub fn build(setup: &Setup, machine: &Machine) -> Result<std::path::PathBuf, String> {
    let dir = crate::root().join("tests/targets");
    let status = setup
        .cross_cargo(&dir, "build")
        .args([
            "--profile",
            "golden",
            "--bin",
            "golden",
            "--target",
            machine.target,
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("golden runner build for {} failed", machine.target));
    }

    let target_dir = match setup.route {
        Route::Rustup => dir.join("target"),
        Route::DebianBuildStd => dir.join("target/debian-build-std"),
    };
    Ok(target_dir.join(machine.target).join("golden/golden"))
}

/// Runs the golden runner under QEMU and returns its printed lines.
pub fn run(machine: &Machine, elf: &Path) -> Result<String, String> {
    let mut command = Command::new(machine.qemu);
    command.args(machine.args);
    run_semihosted(command, elf, machine.label, RUN_TIMEOUT)
}

/// Runs `qemu` (a QEMU command with its machine options) on `elf` with semihosting, no display
/// and no serial port, and returns what the program printed. It is killed after `limit`; a
/// non-zero exit is an error carrying the output. `what` names the program in messages.
pub fn run_semihosted(
    qemu: Command,
    elf: &Path,
    what: &str,
    limit: Duration,
) -> Result<String, String> {
    let (status, raw) = run_semihosted_raw(qemu, elf, what, limit)?;
    let output = String::from_utf8_lossy(&raw).into_owned();
    if status.success() {
        Ok(output)
    } else {
        Err(format!("{what} exited with {status}:\n{output}"))
    }
}

/// [`run_semihosted`] without judging the exit: the status and the raw bytes the program
/// wrote (text or defmt frames). Only a run past `limit` is an error.
pub fn run_semihosted_raw(
    mut qemu: Command,
    elf: &Path,
    what: &str,
    limit: Duration,
) -> Result<(ExitStatus, Vec<u8>), String> {
    let mut child = qemu
        .args(["-display", "none", "-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", qemu.get_program()))?;

    let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut raw);
        raw
    });

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} did not finish in {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };

    let raw = reader.join().map_err(|_| "output reader panicked")?;
    Ok((status, raw))
}

/// The `case` lines of a run, which must equal the expectation line for line.
pub fn cases(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|line| line.starts_with("case "))
        .collect()
}

/// Compares a target's cases with the expectation; `Ok` gives the number of equal cases.
pub fn compare(machine: &Machine, output: &str, expected: &str) -> Result<usize, String> {
    let got = cases(output);
    let want = cases(expected);
    if want.is_empty() {
        return Err("the expectation holds no cases".into());
    }

    let mismatched: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("  expected {w}\n  got      {g}"))
        .collect();
    if got.len() != want.len() {
        return Err(format!(
            "{}: {} cases printed, {} expected",
            machine.label,
            got.len(),
            want.len()
        ));
    }
    if mismatched.is_empty() {
        Ok(got.len())
    } else {
        Err(format!(
            "{}: {} of {} cases differ in their bits:\n{}",
            machine.label,
            mismatched.len(),
            want.len(),
            mismatched.join("\n")
        ))
    }
}
