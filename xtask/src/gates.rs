//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.
//!
//! The closing line counts the tests that ran: the workspace's Rust tests plus the firmware
//! scenarios run in QEMU.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Instant,
};

use crate::{
    firmware, targets,
    toolchain::{self, CROSS_TARGETS, Route, Setup, run},
};

/// Test counts gathered across the steps.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

/// Runs every gate; `Err` names the first one that failed.
pub fn test_all() -> Result<(), String> {
    let started = Instant::now();
    let setup = toolchain::ensure()?;
    let root = crate::root();
    let mut tally = Tally::default();

    step("formatting (cargo fmt --check)", || {
        run(Command::new(toolchain::cargo())
            .current_dir(&root)
            .args(["fmt", "--all", "--check"]))?;
        for separate in ["firmware", "tests/targets", "tests/nopanic", "fuzz"] {
            run(Command::new(toolchain::cargo())
                .current_dir(root.join(separate))
                .args(["fmt", "--check"]))?;
        }
        Ok(())
    })?;

    step("clippy, warnings denied (workspace)", || {
        run(Command::new(toolchain::cargo()).current_dir(&root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;

    step(
        "clippy, warnings denied (firmware, QEMU and board builds)",
        || {
            for features in [&[][..], &["--no-default-features", "--features", "board"]] {
                run(setup
                    .cross_cargo(&root.join("firmware"), "clippy")
                    .args(["--release", "--target", firmware::TARGET])
                    .args(features)
                    .args(["--", "-D", "warnings"]))?;
            }
            Ok(())
        },
    )?;

    step(
        "firmware for a real board (STM32F411, defmt over RTT) builds, laid out for its flash",
        || firmware::build_board(&setup).map(|_| ()),
    )?;

    step("docs without warnings", || {
        run(Command::new(toolchain::cargo())
            .current_dir(&root)
            .env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--workspace", "--no-deps"]))
    })?;

    for target in CROSS_TARGETS {
        step(
            &format!("kernel is no_std and heap-free on {target}"),
            || no_std_build(&setup, target),
        )?;
    }

    step("the fit path cannot panic (link-time proof)", || {
        no_panic_proof(&setup)
    })?;

    step("workspace tests (cargo test)", || cargo_test(&mut tally))?;

    step("fuzz (bounded)", || {
        tally.passed += crate::fuzz::run_all(crate::fuzz::Budget::Bounded)?;
        Ok(())
    })?;

    let elf = firmware::build(&setup)?;
    println!("firmware: {}", crate::device::sizes(&elf)?);

    step(
        "firmware in QEMU: fits bit-identical to the host's, libraries over the wire",
        || {
            tally.passed += crate::device::check_identical(&elf)?;
            Ok(())
        },
    )?;

    step(
        "firmware in QEMU: a panic ends QEMU with failure, never a hang",
        || {
            let faulty = firmware::build_fault_check(&setup)?;
            tally.passed += crate::device::check_panic_exits(&faulty)?;
            Ok(())
        },
    )?;

    step(
        "firmware in QEMU: bad input answered in order, valid fits exact",
        || {
            tally.passed += crate::device::check_bad_input(&elf)?;
            Ok(())
        },
    )?;

    step(
        "unmix stream (TCP socket, then a pseudo-terminal as serial port) writes unmix fit's CSV",
        || {
            tally.passed += crate::stream_check::run(&elf)?;
            Ok(())
        },
    )?;

    step(
        "firmware in QEMU: link faults, host leaving, flood; no hang, reset, stack growth",
        || {
            tally.passed += crate::faults::check(&elf)?;
            Ok(())
        },
    )?;

    let expected_path = root.join("tests/golden/expected.txt");
    let expected = std::fs::read_to_string(&expected_path)
        .map_err(|e| format!("cannot read {}: {e}", expected_path.display()))?;
    for machine in &targets::MACHINES {
        step(
            &format!("identical bits: golden cases on {}", machine.label),
            || {
                let elf = targets::build(&setup, machine)?;
                let output = targets::run(machine, &elf)?;
                match targets::compare(machine, &output, &expected) {
                    Ok(cases) => {
                        println!("{cases} golden cases equal the host's bits");
                        tally.passed += cases as u64;
                        Ok(())
                    }
                    Err(why) => {
                        tally.failed += 1;
                        Err(why)
                    }
                }
            },
        )?;
    }

    println!();
    println!(
        "xtask: every gate passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "{} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.ignored
    );
    Ok(())
}

/// Runs one named gate with a header and its duration.
fn step(name: &str, body: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    println!("\n==> {name}");
    let started = Instant::now();
    let result = body();
    let seconds = started.elapsed().as_secs_f64();

    match &result {
        Ok(()) => println!("<== ok: {name} ({seconds:.1} s)"),
        Err(why) => println!("<== FAILED: {name} ({seconds:.1} s): {why}"),
    }
    result.map_err(|why| format!("{name}: {why}"))
}

/// Builds the kernel alone for a bare-metal target: proof that it needs neither std nor alloc.
fn no_std_build(setup: &Setup, target: &str) -> Result<(), String> {
    let root = crate::root();
    let mut command = setup.cross_cargo(&root, "build");
    command.args(["--package", "unmix", "--release", "--target", target]);
    if setup.route == Route::DebianBuildStd {
        command.env("CARGO_TARGET_DIR", root.join("target/debian-build-std"));
    }
    run(&mut command)
}

/// Builds `tests/nopanic`, whose panic handler calls an undefined symbol: it links only when
/// no panic is reachable from loading a prepared library and fitting. The `canary` build adds
/// one reachable panic and must fail to link, which shows the proof can fail.
fn no_panic_proof(setup: &Setup) -> Result<(), String> {
    let dir = crate::root().join("tests/nopanic");
    let build = |target: &str, canary: bool| {
        let mut command = setup.cross_cargo(&dir, "build");
        command.args(["--release", "--target", target]);
        if canary {
            command.args(["--features", "canary"]);
        }
        command
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))
    };

    // Hardware and software floating point: the soft-float routines must not panic either.
    for target in ["thumbv7em-none-eabihf", "thumbv6m-none-eabi"] {
        let proof = build(target, false)?;
        if !proof.status.success() {
            let stderr = String::from_utf8_lossy(&proof.stderr);
            return Err(format!(
                "a panic is reachable on the fit path ({target}):\n{stderr}"
            ));
        }
        println!("{target}: linked, no reachable panic on the fit path");

        let canary = build(target, true)?;
        let stderr = String::from_utf8_lossy(&canary.stderr);
        if canary.status.success() || !stderr.contains("unmix_fit_path_can_panic") {
            return Err(format!(
                "{target}: the canary's deliberate panic linked: the proof is not working"
            ));
        }
        println!("{target}: the canary's deliberate panic in the fit branch failed to link");
    }
    Ok(())
}

/// Runs the workspace's tests, echoing their output and adding up the `test result:` lines.
fn cargo_test(tally: &mut Tally) -> Result<(), String> {
    let mut child = Command::new(toolchain::cargo())
        .current_dir(crate::root())
        .args(["test", "--workspace", "--release"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start cargo test: {e}"))?;

    let stdout = child.stdout.take().ok_or("cargo test has no stdout pipe")?;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some(counts) = line.trim().strip_prefix("test result: ") {
            tally.passed += count(counts, " passed");
            tally.failed += count(counts, " failed");
            tally.ignored += count(counts, " ignored");
        }
    }

    let status = child.wait().map_err(|e| e.to_string())?;
    println!(
        "cargo test: {} passed, {} failed, {} ignored",
        tally.passed, tally.failed, tally.ignored
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test exited with {status}"))
    }
}

/// The number before `label` in a `test result:` line ("ok. 12 passed; 0 failed; ...").
fn count(line: &str, label: &str) -> u64 {
    line.split([';', '.'])
        .find_map(|part| part.trim().strip_suffix(label))
        .and_then(|number| number.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_read_from_a_cargo_test_summary() {
        let line =
            "ok. 12 passed; 1 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.01s";

        assert_eq!(count(line, " passed"), 12);
        assert_eq!(count(line, " failed"), 1);
        assert_eq!(count(line, " ignored"), 3);
    }
}
