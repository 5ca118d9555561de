//! Makes sure the cross toolchain and QEMU are present, installing them when possible.
//!
//! Two routes give a bare-metal Rust target, tried in this order and printed:
//!
//! 1. `rustup target add` (bounded by a timeout, since package registries are the only
//!    network promised here);
//! 2. Debian's `rustc-web` toolchain with the standard library's source, building `core` for
//!    the target with `-Zbuild-std=core` (set `UNMIX_TOOLCHAIN_ROUTE=debian` to force it).
//!
//! QEMU comes from Debian's packages when running as root; otherwise the exact command is
//! printed. Under CI a missing piece is an error.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

/// The bare-metal targets the kernel builds for: Cortex-M4F (hardware FPU), Cortex-M0 (soft
/// float) and RISC-V rv32imac (soft float).
pub const CROSS_TARGETS: [&str; 3] = [
    "thumbv7em-none-eabihf",
    "thumbv6m-none-eabi",
    "riscv32imac-unknown-none-elf",
];

/// QEMU system emulators, each with the Debian package that provides it.
const QEMU: [(&str, &str); 2] = [
    ("qemu-system-arm", "qemu-system-arm"),
    ("qemu-system-riscv32", "qemu-system-misc"),
];

/// Debian packages that provide a Rust toolchain able to build `core` from source, and to
/// run clippy on the firmware with it.
const DEBIAN_RUST: [&str; 6] = [
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "rust-web-llvm",
    "rust-web-clippy",
    "lld-22",
];

/// How long `rustup target add` may take before the Debian route is used instead.
const RUSTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Which route provides the bare-metal targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Prebuilt `core` from rustup.
    Rustup,
    /// Debian's rustc with `-Zbuild-std=core`.
    DebianBuildStd,
}

/// The toolchain that was found or set up.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// How bare-metal targets are built.
    pub route: Route,
}

impl Setup {
    /// A `cargo` command for a bare-metal build run from `dir` (cargo reads that folder's
    /// `.cargo/config.toml`). `subcommand` is `build`, `clippy`, ...
    pub fn cross_cargo(&self, dir: &Path, subcommand: &str) -> Command {
        match self.route {
            Route::Rustup => {
                let mut command = Command::new(cargo());
                command.current_dir(dir).arg(subcommand);
                command
            }
            Route::DebianBuildStd => {
                let path = std::env::var("PATH").unwrap_or_default();
                let mut command = Command::new("/usr/bin/cargo");
                command
                    .current_dir(dir)
                    .env("PATH", format!("/usr/bin:{path}"))
                    .env("RUSTC", "/usr/bin/rustc")
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env("CARGO_TARGET_DIR", dir.join("target/debian-build-std"))
                    .env_remove("RUSTUP_TOOLCHAIN")
                    .env_remove("RUSTDOC")
                    .arg(subcommand)
                    .arg("-Zbuild-std=core");
                command
            }
        }
    }
}

/// The cargo that runs this xtask, for host builds.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Finds or installs QEMU and a bare-metal Rust target, printing what it chose.
pub fn ensure() -> Result<Setup, String> {
    ensure_qemu()?;

    let route = choose_route()?;
    match route {
        Route::Rustup => println!("toolchain: bare-metal targets from rustup"),
        Route::DebianBuildStd => {
            println!("toolchain: Debian rustc-web with -Zbuild-std=core (no rustup target)")
        }
    }
    Ok(Setup { route })
}

fn ensure_qemu() -> Result<(), String> {
    let missing: Vec<&str> = QEMU
        .iter()
        .filter(|(program, _)| !succeeds(Command::new(program).arg("--version")))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        println!(
            "toolchain: {}",
            first_line("qemu-system-arm", &["--version"])
        );
        return Ok(());
    }

    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        return Err(format!("QEMU is missing; install it with: sudo {install}"));
    }

    println!(
        "toolchain: installing {} from Debian's packages",
        missing.join(" ")
    );
    apt_install(&missing)?;
    for (program, _) in QEMU {
        if !succeeds(Command::new(program).arg("--version")) {
            return Err(format!("{program} still missing after `{install}`"));
        }
    }
    Ok(())
}

fn choose_route() -> Result<Route, String> {
    let forced = std::env::var("UNMIX_TOOLCHAIN_ROUTE").unwrap_or_default();
    if forced != "debian" {
        match rustup_targets() {
            Ok(()) => return Ok(Route::Rustup),
            Err(why) => println!("toolchain: rustup route unavailable ({why}); trying Debian's"),
        }
    }

    debian_toolchain()?;
    Ok(Route::DebianBuildStd)
}

fn rustup_targets() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup not found: {e}"))?;
    let installed = String::from_utf8_lossy(&installed.stdout);

    let missing: Vec<&str> = CROSS_TARGETS
        .iter()
        .copied()
        .filter(|target| !installed.lines().any(|line| line.trim() == *target))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }

    println!("toolchain: rustup target add {}", missing.join(" "));
    let mut add = Command::new("rustup");
    add.args(["target", "add"]).args(&missing);
    run_with_timeout(&mut add, RUSTUP_TIMEOUT)
}

fn debian_toolchain() -> Result<(), String> {
    let complete = Path::new("/usr/bin/cargo").exists()
        && Path::new("/usr/bin/cargo-clippy").exists()
        && has_rust_source();
    if complete {
        return Ok(());
    }

    let packages = DEBIAN_RUST.join(" ");
    if !is_root() {
        return Err(format!(
            "no bare-metal Rust target: run `rustup target add {}` or \
             `sudo apt-get install -y {packages}`",
            CROSS_TARGETS.join(" ")
        ));
    }

    println!("toolchain: installing {packages} from Debian's packages");
    apt_install(&DEBIAN_RUST)?;
    if has_rust_source() {
        Ok(())
    } else {
        Err("Debian's rust-web-src is installed but rustc cannot find the library source".into())
    }
}

fn has_rust_source() -> bool {
    let sysroot = first_line("/usr/bin/rustc", &["--print", "sysroot"]);
    Path::new(&sysroot)
        .join("lib/rustlib/src/rust/library/core")
        .exists()
}

fn apt_install(packages: &[&str]) -> Result<(), String> {
    let update = Command::new("apt-get")
        .arg("update")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("apt-get update: {e}"))?;
    if !update.success() {
        return Err("apt-get update failed".into());
    }

    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("apt-get install: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get install {} failed", packages.join(" ")))
    }
}

/// Runs a command to completion, killing it after `limit`.
pub fn run_with_timeout(command: &mut Command, limit: Duration) -> Result<(), String> {
    let mut child = command.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let start = std::time::Instant::now();

    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn is_root() -> bool {
    first_line("id", &["-u"]) == "0"
}

/// Runs `command` to completion; a non-zero exit is an error naming the command.
pub fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} exited with {status}"))
    }
}

/// Whether `command` runs and exits with success, its output discarded.
pub fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}
