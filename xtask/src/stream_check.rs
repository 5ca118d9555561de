//! `unmix stream` against `unmix fit`: the same simulated data through the firmware in QEMU
//! and through the host must give byte-identical CSV files, for each method.
//!
//! This is the promise the desktop tool makes to its users: what `unmix fit` writes on the
//! desktop is what the device will report. The check runs the real binaries end to end:
//! `unmix simulate` writes a library and spectra, `unmix fit` fits them on the host, and
//! `unmix stream --device qemu` boots the firmware, uploads the library over the emulated UART
//! and streams the spectra. The first case runs once more with QEMU's UART on a
//! pseudo-terminal, which `unmix stream` opens as a serial port: the code path a board on
//! `/dev/ttyACM0` takes (termios settings, timeouts), the board itself excepted.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
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

/// How `unmix stream` reaches the firmware.
#[derive(Clone, Copy)]
enum Link {
    /// `--device qemu`: the host tool boots QEMU itself, the UART on a TCP socket.
    Qemu,
    /// `--device /dev/pts/N`: QEMU started here with the UART on a pseudo-terminal.
    SerialPort,
}

impl Link {
    fn describe(self) -> &'static str {
        match self {
            Link::Qemu => "QEMU's TCP socket",
            Link::SerialPort => "a pseudo-terminal opened as a serial port",
        }
    }
}

/// How long QEMU may take to name its pseudo-terminal, and to exit after the session.
const QEMU_LIMIT: Duration = Duration::from_secs(30);

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

    let runs = CASES
        .iter()
        .map(|case| (case, Link::Qemu))
        .chain([(&CASES[0], Link::SerialPort)]);
    let mut identical = 0;
    for (index, ((method, background), link)) in runs.enumerate() {
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

        match link {
            Link::Qemu => {
                let mut stream_args = vec!["stream".to_string(), "--device".into(), "qemu".into()];
                stream_args.extend(files(&device_out));
                run_unmix(unmix, dir, &stream_args, Some(firmware))?;
            }
            Link::SerialPort => {
                let mut qemu = QemuOnPty::boot(firmware)?;
                let mut stream_args = vec!["stream".to_string(), "--device".into()];
                stream_args.push(qemu.terminal.clone());
                stream_args.extend(files(&device_out));
                let streamed = run_unmix(unmix, dir, &stream_args, None);
                let exited = qemu.wait();
                streamed?;
                exited?;
            }
        }

        let host = read(&host_out)?;
        let device = read(&device_out)?;
        let label = format!("{} over {}", options.join(" "), link.describe());
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

/// The firmware in QEMU with its UART on a pseudo-terminal (`-serial pty`).
struct QemuOnPty {
    child: Child,
    /// The terminal's path, `/dev/pts/N`.
    terminal: String,
    /// Drains QEMU's standard output (the firmware's defmt frames) so that it never blocks.
    drain: Option<JoinHandle<()>>,
}

impl QemuOnPty {
    /// Boots `firmware` and reads the terminal's path from QEMU's first line of output,
    /// `char device redirected to /dev/pts/N (label serial0)`.
    fn boot(firmware: &Path) -> Result<Self, String> {
        let mut child = Command::new("qemu-system-arm")
            .args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
            .args(["-display", "none", "-monitor", "none", "-serial", "pty"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args(["-icount", "shift=0,sleep=off", "-kernel"])
            .arg(firmware)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start qemu-system-arm: {e}"))?;

        let stdout = child.stdout.take().ok_or("no stdout pipe from QEMU")?;
        let (sender, receiver) = mpsc::channel();
        let drain = std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            let _ = stdout.read_until(b'\n', &mut line);
            let _ = sender.send(String::from_utf8_lossy(&line).into_owned());
            let _ = std::io::copy(&mut stdout.by_ref(), &mut std::io::sink());
        });
        let mut qemu = QemuOnPty {
            child,
            terminal: String::new(),
            drain: Some(drain),
        };

        let line = receiver.recv_timeout(QEMU_LIMIT).unwrap_or_default();
        match line
            .split_whitespace()
            .find(|word| word.starts_with("/dev/"))
        {
            Some(path) => {
                qemu.terminal = path.to_string();
                Ok(qemu)
            }
            None => Err(format!(
                "QEMU did not name its pseudo-terminal; its first line was {line:?}"
            )),
        }
    }

    /// Waits for QEMU to exit, as it does when the firmware takes `unmix stream`'s final
    /// shutdown request; an error if it fails or is still running after [`QEMU_LIMIT`].
    fn wait(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if started.elapsed() > QEMU_LIMIT {
                return Err(format!(
                    "the firmware did not shut down within {} s of the session's end",
                    QEMU_LIMIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "the firmware on a pseudo-terminal exited with {status}"
            ))
        }
    }
}

impl Drop for QemuOnPty {
    /// A session that failed half-way leaves no QEMU behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
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
