//! Fuzzing: the libFuzzer targets of `fuzz/` (cargo-fuzz layout, its own workspace and
//! target directory), each started from its checked-in seeds in `fuzz/corpus/<target>/`.
//!
//! `cargo xtask test` runs every target for a fixed number of inputs from libFuzzer seed
//! [`BOUNDED_SEED`], starting from the checked-in seeds alone: the same inputs every time, so
//! the gate is reproducible and a red run is never bad luck. `cargo xtask fuzz [--seconds N]`
//! explores: each target for `N` seconds (default [`LONG_SECONDS`]) from a random seed,
//! keeping what it finds in `fuzz/target/corpus/<target>/` for the next run. A crash, a failed
//! invariant or an input that runs past [`INPUT_TIMEOUT`] seconds fails either; libFuzzer
//! writes the input to `fuzz/artifacts/<target>/`.
//!
//! The build route is printed: nightly with AddressSanitizer when rustup has nightly, else
//! the stable toolchain with `RUSTC_BOOTSTRAP=1`, without sanitizer when its runtime is
//! missing. `cargo-fuzz` is installed from crates.io when absent. Outside CI a piece that
//! cannot be set up skips the run with a message; under CI it is an error.

use crate::toolchain::{run, succeeds};
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

/// The targets, in the order they run, with the inputs each gets inside `cargo xtask test`
/// (chosen for about 15 s apiece on this machine with AddressSanitizer).
pub const TARGETS: [(&str, u64); 5] = [
    ("kernel_fit", 50_000),
    ("prepared_bytes", 150_000),
    ("svd", 120_000),
    ("protocol_decode", 300_000),
    ("host_readers", 30_000),
];

/// libFuzzer's random seed inside `cargo xtask test`.
pub const BOUNDED_SEED: u64 = 1;

/// Seconds per target for `cargo xtask fuzz`.
pub const LONG_SECONDS: u64 = 300;

/// Longest a single input may run before libFuzzer reports it as a hang.
pub const INPUT_TIMEOUT: u64 = 10;

/// How long each target runs.
#[derive(Clone, Copy)]
pub enum Budget {
    /// The inputs of [`TARGETS`], seed [`BOUNDED_SEED`], from the checked-in seeds only.
    Bounded,
    /// This many seconds from a random seed, carrying the work corpus over between runs.
    Seconds(u64),
}

/// How the targets are built.
struct Build {
    /// Run cargo through `rustup run nightly`.
    nightly: bool,
    /// `address` or `none`.
    sanitizer: &'static str,
}

/// Builds every target and runs each on `budget`. Returns the number of targets run; 0 when
/// set-up was impossible outside CI.
pub fn run_all(budget: Budget) -> Result<u64, String> {
    let Some(build) = set_up()? else {
        return Ok(0);
    };
    let dir = crate::root().join("fuzz");

    let started = Instant::now();
    let mut command = cargo_fuzz(&build, &dir);
    command.args(["build", "--sanitizer", build.sanitizer]);
    run(&mut command)?;
    println!(
        "fuzz targets built in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let bin_dir = dir.join("target").join(host_triple()?).join("release");
    for (target, bounded_runs) in TARGETS {
        let started = Instant::now();
        let executions = run_one(&dir, &bin_dir, target, budget, bounded_runs)?;
        println!(
            "{target}: {executions} executions in {:.0} s{}, no failure",
            started.elapsed().as_secs_f64(),
            match budget {
                Budget::Bounded => format!(" (seed {BOUNDED_SEED})"),
                Budget::Seconds(_) => String::new(),
            }
        );
    }
    Ok(TARGETS.len() as u64)
}

/// Finds or installs cargo-fuzz and picks the build route; `None` to skip (outside CI).
fn set_up() -> Result<Option<Build>, String> {
    let skip = |why: String| {
        if crate::in_ci() {
            Err(why)
        } else {
            println!("fuzzing skipped: {why}");
            Ok(None)
        }
    };

    if !succeeds(Command::new(crate::toolchain::cargo()).args(["fuzz", "--version"])) {
        println!("cargo-fuzz missing: cargo install cargo-fuzz --locked");
        let mut install = Command::new(crate::toolchain::cargo());
        install.args(["install", "cargo-fuzz", "--locked"]);
        if let Err(why) = run(&mut install) {
            return skip(format!("cannot install cargo-fuzz: {why}"));
        }
    }

    let nightly = succeeds(Command::new("rustup").args(["run", "nightly", "rustc", "--version"]));
    let build = if nightly {
        println!("fuzz route: rustup nightly, AddressSanitizer");
        Build {
            nightly,
            sanitizer: "address",
        }
    } else if asan_runtime_present() {
        println!("fuzz route: stable with RUSTC_BOOTSTRAP=1 (no nightly), AddressSanitizer");
        Build {
            nightly,
            sanitizer: "address",
        }
    } else {
        println!("fuzz route: stable with RUSTC_BOOTSTRAP=1, --sanitizer none (no ASan runtime)");
        Build {
            nightly,
            sanitizer: "none",
        }
    };
    Ok(Some(build))
}

/// `cargo fuzz` in `dir` for the chosen route, with the fuzz workspace's own target folder.
fn cargo_fuzz(build: &Build, dir: &Path) -> Command {
    let mut command = if build.nightly {
        let mut rustup = Command::new("rustup");
        rustup.args(["run", "nightly", "cargo", "fuzz"]);
        rustup
    } else {
        let mut cargo = Command::new(crate::toolchain::cargo());
        cargo.arg("fuzz").env("RUSTC_BOOTSTRAP", "1");
        cargo
    };
    command
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTUP_TOOLCHAIN");
    command
}

/// Runs one built target from a work corpus seeded by the checked-in one, and returns the
/// executions libFuzzer reports. A bounded run (`bounded_runs` inputs) starts from an empty
/// work corpus of its own, so that nothing from earlier runs changes which inputs it tries.
fn run_one(
    dir: &Path,
    bin_dir: &Path,
    target: &str,
    budget: Budget,
    bounded_runs: u64,
) -> Result<u64, String> {
    let work = match budget {
        Budget::Bounded => {
            let work = dir.join("target/corpus-bounded").join(target);
            if work.exists() {
                std::fs::remove_dir_all(&work)
                    .map_err(|e| format!("cannot empty {}: {e}", work.display()))?;
            }
            work
        }
        Budget::Seconds(_) => dir.join("target/corpus").join(target),
    };
    let artifacts = dir.join("artifacts").join(target);
    let log = dir.join("target/logs").join(format!("{target}.log"));
    for folder in [
        &work,
        &artifacts,
        &log.parent().map(PathBuf::from).unwrap_or_default(),
    ] {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }
    let log_file =
        std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;

    let mut command = Command::new(bin_dir.join(target));
    match budget {
        Budget::Bounded => command.args([
            format!("-runs={bounded_runs}"),
            format!("-seed={BOUNDED_SEED}"),
        ]),
        Budget::Seconds(seconds) => command.arg(format!("-max_total_time={seconds}")),
    };
    let status = command
        .current_dir(dir)
        .arg(&work)
        .arg(dir.join("corpus").join(target))
        .arg(format!("-timeout={INPUT_TIMEOUT}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stdout(
            log_file
                .try_clone()
                .map_err(|e| format!("cannot share the log file: {e}"))?,
        )
        .stderr(log_file)
        .status()
        .map_err(|e| format!("cannot start {target}: {e}"))?;

    let output = std::fs::read_to_string(&log).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = output.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            println!("{line}");
        }
        return Err(format!(
            "{target} failed ({status}); the input is in {}, the log in {}",
            artifacts.display(),
            log.display()
        ));
    }
    executions(&output).ok_or_else(|| format!("{target}: no execution count in {}", log.display()))
}

/// The `stat::number_of_executed_units` of libFuzzer's final statistics.
fn executions(log: &str) -> Option<u64> {
    log.lines()
        .find_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|count| count.trim().parse().ok())
}

/// The host's target triple, the folder cargo-fuzz builds into.
fn host_triple() -> Result<String, String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV names no host".into())
}

/// Whether the stable toolchain ships the AddressSanitizer runtime for the host.
fn asan_runtime_present() -> bool {
    let Ok(output) = Command::new("rustc")
        .args(["--print", "target-libdir"])
        .output()
    else {
        return false;
    };
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    std::fs::read_dir(libdir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|entry| entry.file_name().to_string_lossy().contains("rt.asan"))
    })
}

#[cfg(test)]
mod tests {
    use super::executions;

    #[test]
    fn executions_read_from_libfuzzer_final_stats() {
        let log = "Done 1234 runs in 15 second(s)\nstat::number_of_executed_units: 1234\n\
                   stat::average_exec_per_sec:     82\n";

        assert_eq!(executions(log), Some(1234));
        assert_eq!(executions("INFO: no stats\n"), None);
    }
}
