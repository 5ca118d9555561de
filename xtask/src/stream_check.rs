//! `unmix stream` against `unmix fit`: the same simulated data through the firmware in QEMU
//! and through the host must give byte-identical CSV files, for each method.
//!
//! This is the promise the desktop tool makes to its users: what `unmix fit` writes on the
//! desktop is what the device will report. The check runs the real binaries end to end:
//! `unmix simulate` writes a library and spectra, `unmix fit` fits them on the host, and
//! `unmix stream --device qemu` boots the firmware, uploads the library over the emulated UART
//! and streams the spectra.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::toolchain;

/// Channels and spectra of the simulated data: small, since QEMU's UART moves about 12 KB/s.
const CHANNELS: &str = "256";
const SPECTRA: &str = "12";

/// The fits compared: (method arguments, background degree).
const CASES: [(&[&str], Option<&str>); 3] = [
    (&["--method", "nnls"], Some("1")),
    (&["--method", "fcls"], None),
    (&["--method", "ridge", "--lambda", "0.5"], Some("2")),
];

/// Runs every case; `Ok` gives the number of files found identical.
pub fn run(firmware: &Path) -> Result<u64, String> {
    let unmix = build_host()?;
    let dir = std::env::temp_dir().join(format!("unmix-stream-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = compare_all(&unmix, firmware, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn compare_all(unmix: &Path, firmware: &Path, dir: &Path) -> Result<u64, String> {
    let library = dir.join("library.csv");
    let spectra = dir.join("spectra.csv");
    run_unmix(
        unmix,
        dir,
        &[
            "simulate",
            "--channels",
            CHANNELS,
            "--phases",
            "4",
            "--count",
            SPECTRA,
            "--seed",
            "11",
        ],
        None,
    )?;

    let mut identical = 0;
    for (index, (method, background)) in CASES.iter().enumerate() {
        let host_out = dir.join(format!("fit-{index}.csv"));
        let device_out = dir.join(format!("stream-{index}.csv"));
        let mut options: Vec<&str> = method.to_vec();
        if let Some(degree) = background {
            options.extend(["--background", degree]);
        }

        let files = |out: &Path| -> Vec<String> {
            [
                "--library",
                path_str(&library),
                "--spectra",
                path_str(&spectra),
            ]
            .into_iter()
            .map(String::from)
            .chain(options.iter().map(|s| s.to_string()))
            .chain(["--out".to_string(), path_str(out).to_string()])
            .collect()
        };

        let mut fit_args = vec!["fit".to_string()];
        fit_args.extend(files(&host_out));
        run_unmix(unmix, dir, &fit_args, None)?;

        let mut stream_args = vec!["stream".to_string(), "--device".into(), "qemu".into()];
        stream_args.extend(files(&device_out));
        run_unmix(unmix, dir, &stream_args, Some(firmware))?;

        let host = read(&host_out)?;
        let device = read(&device_out)?;
        let label = options.join(" ");
        if host != device {
            return Err(format!(
                "`unmix stream` and `unmix fit` differ for `{label}`:\n\
                 --- fit\n{host}--- stream\n{device}"
            ));
        }
        let rows = host.lines().count().saturating_sub(1);
        println!("{label}: {rows} spectra, stream output byte-identical to fit output");
        identical += 1;
    }
    Ok(identical)
}

/// Builds the `unmix` binary (release) and returns its path.
fn build_host() -> Result<PathBuf, String> {
    let root = crate::root();
    let status = Command::new(toolchain::cargo())
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--package",
            "unmix-host",
            "--bin",
            "unmix",
        ])
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the unmix binary failed".into());
    }
    Ok(root.join("target/release/unmix"))
}

fn run_unmix<S: AsRef<std::ffi::OsStr>>(
    unmix: &Path,
    dir: &Path,
    args: &[S],
    firmware: Option<&Path>,
) -> Result<(), String> {
    let mut command = Command::new(unmix);
    command.current_dir(dir).args(args);
    if let Some(elf) = firmware {
        command.env("UNMIX_FIRMWARE", elf);
    }

    let output = command
        .output()
        .map_err(|e| format!("cannot run {}: {e}", unmix.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        Err(format!(
            "`unmix {}` exited with {}:\n{}",
            shown.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}
