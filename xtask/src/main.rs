//! `cargo xtask`: the project's automation, so that a local run does what CI does.
//!
//! - `cargo xtask run`: set up the toolchain, build the firmware, boot it in QEMU, stream
//!   simulated detector frames into it over its UART and show the phase fractions coming
//!   back live, each checked bit for bit against the host kernel; then the decoded defmt log.
//! - `cargo xtask bench`: instructions per fit on the firmware under QEMU's `-icount`, then
//!   every kernel and two baselines on the Cortex-M4F with stack and memory figures.
//! - `cargo xtask test`: set up the toolchain, then every gate: formatting, clippy with
//!   warnings denied, the firmware for a real board, docs without warnings, `no_std` builds
//!   of the kernel for Cortex-M4F, Cortex-M0 and RISC-V, the no-panic link proof, the
//!   workspace tests, bounded fuzzing, the firmware in QEMU, and the golden cases on all
//!   three bare-metal targets.
//! - `cargo xtask device`: only the firmware checks of `test`.
//! - `cargo xtask fuzz [--seconds N | --bounded]`: every fuzz target of `fuzz/` for `N`
//!   seconds each, or the fixed-seed run that `test` makes.
//!
//! Set-up is automatic and printed: QEMU comes from Debian's packages when running as root,
//! bare-metal Rust targets from rustup (with a timeout) or else from Debian's `rustc-web`
//! toolchain building `core` from source. When `CI` is set, a piece that cannot be set up is
//! an error, never a skip.

mod bench;
mod device;
mod faults;
mod firmware;
mod fuzz;
mod gates;
mod stream_check;
mod targets;
mod toolchain;

use std::{path::PathBuf, process::ExitCode};

const USAGE: &str = "usage: cargo xtask <run|test|bench|device|fuzz|help>

  run    build the firmware, boot it in QEMU, stream simulated detector frames into it and
         show the fractions coming back, checked bit for bit against the host
  bench  instructions per fit on the firmware in QEMU (-icount), per method; then every
         kernel and two baselines at n = 1280..4096, k = 2..16 with stack and memory
         figures [--json FILE] [--host [SPECTRA]]
  device only the firmware checks of `test`: bit-identical fits, bad input, `unmix stream`,
         link faults
  fuzz   run every fuzz target longer: --seconds N each (default 300), or --bounded
         for exactly the fixed-seed run of `test`
  test   run every check CI runs (formatting, clippy, docs, no_std builds, tests, firmware)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("help");

    let outcome = match command {
        "run" => run(),
        "test" => gates::test_all(),
        "bench" => bench(&args[1..]),
        "device" => device_checks(),
        "fuzz" => fuzz(&args[1..]),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };

    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The main job: detector frames streamed into the firmware in QEMU, fractions coming back.
fn run() -> Result<(), String> {
    let setup = toolchain::ensure()?;
    let elf = firmware::build(&setup)?;
    println!("firmware: {}", device::sizes(&elf)?);

    device::live(&elf)
}

/// The firmware checks of `cargo xtask test`, alone.
fn device_checks() -> Result<(), String> {
    let setup = toolchain::ensure()?;
    let elf = firmware::build(&setup)?;
    let identical = device::check_identical(&elf)?;
    let bad = device::check_bad_input(&elf)?;
    let streamed = stream_check::run(&elf)?;
    let faults = faults::check(&elf)?;
    let panics = device::check_panic_exits(&firmware::build_fault_check(&setup)?)?;
    println!(
        "{} passed, 0 failed",
        identical + bad + streamed + faults + panics
    );
    Ok(())
}

/// Instructions per fit on the firmware in QEMU, then the kernel benchmark (`bench`).
fn bench(args: &[String]) -> Result<(), String> {
    let options = bench::Options::parse(args)?;
    let setup = toolchain::ensure()?;
    let elf = firmware::build(&setup)?;
    println!("firmware: {}", device::sizes(&elf)?);

    device::bench(&elf)?;
    bench::run(&setup, &options, Some(&elf))
}

/// Every fuzz target for `--seconds N` (default [`fuzz::LONG_SECONDS`]) each, or `--bounded`.
fn fuzz(args: &[String]) -> Result<(), String> {
    let budget = match args {
        [] => fuzz::Budget::Seconds(fuzz::LONG_SECONDS),
        [flag] if flag == "--bounded" => fuzz::Budget::Bounded,
        [flag, n] if flag == "--seconds" => fuzz::Budget::Seconds(
            n.parse()
                .map_err(|_| format!("--seconds takes a whole number, not `{n}`"))?,
        ),
        _ => {
            return Err(format!(
                "usage: cargo xtask fuzz [--seconds N | --bounded]\n\n{USAGE}"
            ));
        }
    };
    match fuzz::run_all(budget)? {
        0 => Err("no fuzz target ran".into()),
        _ => Ok(()),
    }
}

/// The repository root (the parent of this crate's folder).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Whether this run is under CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty() && value != "false")
}
