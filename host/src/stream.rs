//! `unmix stream`: send spectra to a device (the firmware in QEMU, or a board on a serial
//! port), read back the fits it computes and write them exactly as `unmix fit` would.
//!
//! The session, in the terms of [`unmix_protocol`]:
//!
//! 1. the library is read and prepared here, with the background asked for, into the
//!    kernel's byte format;
//! 2. [`Device::upload`] sends it in chunks of [`CHUNK`] bytes with a CRC-32, and the device
//!    answers with the library's identity hash, which must equal the host's;
//! 3. each spectrum that passes the same checks as in `unmix fit` (channel count, axis) goes
//!    out as `f32` samples, bit for bit, and its [`FitResult`] becomes a row of the result
//!    table through the host's own writer ([`crate::output`]); a spectrum the device refuses
//!    gets the same error row `unmix fit` writes;
//! 4. [`Device::close`] ends the session and reports the device's fit count and stack use.
//!
//! The kernel computes the same bits on every target, so the file is byte-identical to
//! `unmix fit`'s for the same inputs.
//!
//! One request is in flight at a time: the device's UART has no receive FIFO and a polled
//! driver loses bytes that arrive while it fits. QEMU's UART moves about 12 kB/s whatever
//! the emulated baud rate, so a 2048-channel `f32` spectrum takes about 0.7 s there; the
//! fits themselves are counted in instructions and reported in the summary.

use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use embedded_io_adapters::std::FromStd;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use unmix::Status;
use unmix_protocol::{
    DeviceInfo, ErrorKind, ErrorReply, FitOptions, FitRequest, FitResult, FitStatus, LibraryInfo,
    Reply, Request, SampleFormat, StackUsage,
    io::{Client, LinkError},
    max_frame_len,
};

use crate::cli::StreamArgs;
use crate::fitting::{FitSettings, PreparedLibrary, check_against_library, describe_fit_error};
use crate::formats;
use crate::output::{CsvWriter, FitRecord, Table};

/// Environment variable naming the firmware ELF that `--device qemu` boots.
pub const FIRMWARE_ENV: &str = "UNMIX_FIRMWARE";

/// Where the firmware ELF is built, relative to the repository root.
pub const DEFAULT_FIRMWARE: &str = "firmware/target/thumbv7em-none-eabihf/release/unmix-firmware";

/// Bytes of library per upload chunk: well inside the device's frame limit.
pub const CHUNK: usize = 4096;

/// Baud rate of serial ports (the firmware's USART runs at this rate).
pub const BAUD: u32 = 115_200;

/// How long a reply may take before the device counts as hung.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request frame: a fit of 4096 `f32` samples, or an upload chunk.
const TX_LEN: usize = max_frame_len(4 * 4096 + 64);

/// The largest reply frame.
const RX_LEN: usize = 4096;

/// Runs `unmix stream` with `args`.
///
/// # Errors
/// A message when the library or spectra cannot be read, the device cannot be reached or
/// misbehaves, or the output cannot be written. Spectra that fail are written as error rows
/// and turn the exit status to 2, as in `unmix fit`.
pub fn run(args: &StreamArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let settings = args.fit.settings()?;
    let library = formats::read_library(&args.library)?;
    let prepared = PreparedLibrary::new(library, settings.background())?;
    let source = formats::read_spectra(&args.spectra)?;

    let mut device = Device::open(&args.device)?;
    let info = device.info()?;
    let loaded = device.upload(&prepared.to_bytes())?;
    let expected = prepared.view().library_id();
    if loaded.id != expected {
        return Err(format!(
            "the device holds library {:#018x}, not the {expected:#018x} sent",
            loaded.id
        )
        .into());
    }

    let table = Table::new(&prepared.library.names, settings.background().terms());
    let out = std::fs::File::create(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let mut writer = CsvWriter::new(BufWriter::new(out), table.clone())?;
    let bar = progress_bar(source.total());

    let start = Instant::now();
    let mut tally = Tally::default();
    for (index, item) in source.enumerate() {
        let seq = u32::try_from(index).map_err(|_| "more than 2^32 spectra")?;
        let outcome = item.and_then(|spectrum| {
            check_against_library(&prepared.library, &spectrum)?;
            let reply = device.fit(seq, &settings, &spectrum.values);
            Ok((spectrum, reply))
        });

        let line = match outcome {
            Ok((spectrum, reply)) => match reply? {
                Ok(result) => {
                    tally.fitted(&result);
                    table.row(
                        &spectrum.name,
                        Ok(&record(&result, prepared.library.phases())),
                    )
                }
                Err(refusal) => {
                    let error = spectrum.error(refusal_message(refusal.kind));
                    tally.failed(&error.to_string());
                    table.row(&error.spectrum, Err(&error.message))
                }
            },
            Err(error) => {
                tally.failed(&error.to_string());
                table.row(&error.spectrum, Err(&error.message))
            }
        };
        writer.write_line(&line)?;
        bar.inc(1);
    }
    writer.finish()?;
    bar.finish_and_clear();

    let elapsed = start.elapsed().as_secs_f64();
    let closing = device.close()?;
    eprintln!(
        "unmix stream: {} spectra, {} failed, {elapsed:.2} s, {:.1} spectra/s on {} \
         (firmware {}); {}; device stack used {} of {} bytes",
        tally.spectra,
        tally.failed,
        tally.spectra as f64 / elapsed.max(1e-9),
        info.build.board,
        info.firmware,
        tally.cost_text(&info),
        closing.stack.used,
        closing.stack.size,
    );

    Ok(if tally.failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Counts of a stream, for the summary.
#[derive(Default)]
struct Tally {
    spectra: usize,
    failed: usize,
    cost: u64,
}

impl Tally {
    fn fitted(&mut self, result: &FitResult) {
        self.spectra += 1;
        self.cost += u64::from(result.cost);
    }

    fn failed(&mut self, message: &str) {
        const SHOWN: usize = 20;
        if self.failed < SHOWN {
            eprintln!("unmix: {message}");
        }
        self.spectra += 1;
        self.failed += 1;
    }

    fn cost_text(&self, info: &DeviceInfo) -> String {
        let fitted = (self.spectra - self.failed).max(1) as u64;
        let unit = match info.build.cost_unit {
            unmix_protocol::CostUnit::QemuInstructions => "instructions (QEMU -icount)",
            _ => "cycles",
        };
        format!("{} {unit} per fit", self.cost / fitted)
    }
}

fn progress_bar(total: Option<usize>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total.map(|n| n as u64), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{spinner} {pos}/{len} spectra streamed [{bar:40}] {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}

/// The request for fitting `values` with `settings`, samples as `f32` (bit for bit).
pub fn fit_request<'a>(seq: u32, settings: &FitSettings, samples: &'a [u8]) -> Request<'a> {
    let (method, lambda) = match settings.method {
        unmix::Method::Lstsq => (unmix_protocol::Method::Lstsq, 0.0),
        unmix::Method::Ridge { lambda } => (unmix_protocol::Method::Ridge, lambda),
        unmix::Method::Nnls => (unmix_protocol::Method::Nnls, 0.0),
        unmix::Method::Fcls => (unmix_protocol::Method::Fcls, 0.0),
    };
    Request::Fit(FitRequest {
        seq,
        method,
        lambda,
        options: FitOptions {
            chi_square: settings.chi2,
        },
        format: SampleFormat::F32,
        samples,
    })
}

/// The table record of a device's fit, for a library of `phases` phases.
pub fn record(result: &FitResult, phases: usize) -> FitRecord {
    let split = phases.min(result.coefficients.len());
    let (phase, background) = result.coefficients.split_at(split);
    FitRecord {
        phases: phase.to_vec(),
        background: background.to_vec(),
        fractions: result.fractions.to_vec(),
        standard_errors: result.std_errors.to_vec(),
        residual_norm: result.residual_norm,
        chi2: result.chi2,
        reduced_chi2: result.reduced_chi2,
        iterations: result.iterations,
        status: match result.status {
            FitStatus::Converged => Status::Converged,
            FitStatus::IterationCap => Status::IterationCap,
            _ => Status::Degenerate,
        },
    }
}

/// The message of a spectrum the device refused: the kernel's error where the device named
/// one (so the text equals `unmix fit`'s), otherwise the protocol's fault.
pub fn refusal_message(kind: ErrorKind) -> String {
    let kernel = match kind {
        ErrorKind::NonFinite { channel } => unmix::Error::NonFinite {
            channel: channel as usize,
        },
        ErrorKind::WrongLength { expected, found } => unmix::Error::LengthMismatch {
            expected: expected as usize,
            found: found as usize,
        },
        ErrorKind::Overflow => unmix::Error::Overflow,
        ErrorKind::InvalidLambda => unmix::Error::InvalidLambda,
        other => return format!("the device refused the spectrum: {other:?}"),
    };
    describe_fit_error(kernel)
}

/// Why talking to a device failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// Starting QEMU, opening the port, or the byte stream failed.
    #[error("device: {0}")]
    Io(#[from] io::Error),
    /// The serial port could not be opened.
    #[error("serial port {port}: {message}")]
    Port {
        /// The port's path.
        port: String,
        /// What went wrong.
        message: String,
    },
    /// A reply frame was damaged, or the stream ended.
    #[error("device link: {0}")]
    Link(String),
    /// The device answered a session request with an error.
    #[error("device refused {request}: {reply:?}")]
    Refused {
        /// What was asked.
        request: &'static str,
        /// Its answer.
        reply: ErrorReply,
    },
    /// The device answered with a reply that does not belong to the request.
    #[error("device answered {request} with {reply}")]
    Unexpected {
        /// What was asked.
        request: &'static str,
        /// A description of the reply.
        reply: String,
    },
}

/// Reads from a buffered half and writes to the other half of one byte stream.
struct Duplex {
    reader: BufReader<Box<dyn Read + Send>>,
    writer: Box<dyn Write + Send>,
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl BufRead for Duplex {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.reader.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.reader.consume(amount);
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// QEMU running the firmware, with the threads collecting its output.
struct Qemu {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    port: u16,
}

/// What a closed session left.
#[derive(Debug)]
pub struct Closing {
    /// Fits the device carried out since boot.
    pub fits: u32,
    /// The device's stack use.
    pub stack: StackUsage,
    /// QEMU's exit status (`None` for a serial device).
    pub exit: Option<ExitStatus>,
    /// QEMU's standard output: the firmware's defmt frames (empty for a serial device).
    pub log: Vec<u8>,
}

/// A session with a device running the unmix firmware.
pub struct Device {
    stream: FromStd<Duplex>,
    tx: Vec<u8>,
    rx: Vec<u8>,
    qemu: Option<Qemu>,
}

impl Device {
    /// `qemu` boots the firmware ELF ([`firmware_path`]) in QEMU; anything else is a serial
    /// port.
    ///
    /// # Errors
    /// See [`Device::qemu`] and [`Device::serial`].
    pub fn open(device: &str) -> Result<Self, DeviceError> {
        if device == "qemu" {
            Device::qemu(&firmware_path(), &[])
        } else {
            Device::serial(device, BAUD)
        }
    }

    /// Boots `elf` on QEMU's `mps2-an386` with `-icount shift=0,sleep=off` (fit costs in
    /// instructions) and the UART on a local TCP socket, and connects to it. `extra` is
    /// passed to QEMU.
    ///
    /// # Errors
    /// [`DeviceError::Io`] when the ELF is missing, QEMU cannot start, or the socket does
    /// not open within 10 s.
    pub fn qemu(elf: &Path, extra: &[&str]) -> Result<Self, DeviceError> {
        if !elf.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no firmware at {}: build it (`cargo xtask run`) or set {FIRMWARE_ENV}",
                    elf.display()
                ),
            )
            .into());
        }

        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new("qemu-system-arm")
            .args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
            .args(["-display", "none", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args(["-icount", "shift=0,sleep=off"])
            .arg("-serial")
            .arg(format!("tcp:127.0.0.1:{port},server=on,wait=on"))
            .args(extra)
            .arg("-kernel")
            .arg(elf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start qemu-system-arm: {e}")))?;

        let stdout = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                let mut raw = Vec::new();
                let _ = out.read_to_end(&mut raw);
                raw
            })
        });
        let mut qemu = Qemu {
            child,
            stdout,
            port,
        };

        let socket = match connect(port, &mut qemu.child) {
            Ok(socket) => socket,
            Err(e) => {
                let _ = qemu.child.kill();
                let _ = qemu.child.wait();
                return Err(e.into());
            }
        };
        let (reader, writer) = socket_halves(socket)?;
        Ok(Device::over(reader, writer, Some(qemu)))
    }

    /// Closes the link to QEMU, waits `away`, and opens a new one, as a host that goes away
    /// and comes back; the firmware runs on meanwhile. Unread replies are discarded. QEMU's
    /// server socket takes one client at a time: the new connection is served once QEMU has
    /// seen the old one close, after every byte sent on the old one has reached the UART
    /// (unless the close was a reset, which happens when replies were left unread in the
    /// socket). What the firmware sends while no client is served is lost.
    ///
    /// # Errors
    /// [`DeviceError::Link`] for a serial device; [`DeviceError::Io`] when QEMU has exited
    /// or the socket does not open within 10 s.
    pub fn reconnect(&mut self, away: Duration) -> Result<(), DeviceError> {
        let Some(qemu) = &mut self.qemu else {
            return Err(DeviceError::Link(
                "only a device in QEMU can reconnect".into(),
            ));
        };

        let closed = Duplex {
            reader: BufReader::new(Box::new(io::empty())),
            writer: Box::new(io::sink()),
        };
        drop(std::mem::replace(self.stream.inner_mut(), closed));
        std::thread::sleep(away);

        let socket = connect(qemu.port, &mut qemu.child)?;
        let (reader, writer) = socket_halves(socket)?;
        *self.stream.inner_mut() = Duplex {
            reader: BufReader::new(reader),
            writer,
        };
        Ok(())
    }

    /// Opens the serial port at `path` (8N1 at `baud`).
    ///
    /// # Errors
    /// [`DeviceError::Port`] when it cannot be opened.
    pub fn serial(path: &str, baud: u32) -> Result<Self, DeviceError> {
        let fail = |e: serialport::Error| DeviceError::Port {
            port: path.into(),
            message: e.to_string(),
        };
        let port = serialport::new(path, baud)
            .timeout(REPLY_TIMEOUT)
            .open()
            .map_err(fail)?;
        let writer = port.try_clone().map_err(fail)?;
        Ok(Device::over(Box::new(port), Box::new(writer), None))
    }

    fn over(
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        qemu: Option<Qemu>,
    ) -> Self {
        Device {
            stream: FromStd::new(Duplex {
                reader: BufReader::new(reader),
                writer,
            }),
            tx: vec![0; TX_LEN],
            rx: vec![0; RX_LEN],
            qemu,
        }
    }

    fn client(&mut self) -> Client<'_, &mut FromStd<Duplex>> {
        Client::new(&mut self.stream, &mut self.tx, &mut self.rx)
    }

    /// Sends `request` and waits for its reply.
    ///
    /// # Errors
    /// [`DeviceError::Link`] for a transport failure or a damaged reply.
    pub fn call(&mut self, request: &Request<'_>) -> Result<Reply, DeviceError> {
        self.client().call(request).map_err(link_error)
    }

    /// Writes raw bytes to the device (for tests of bad input).
    ///
    /// # Errors
    /// The I/O error of writing.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let duplex = self.stream.inner_mut();
        duplex.write_all(bytes)?;
        duplex.flush()
    }

    /// Waits for the next reply (after [`Device::send_raw`]).
    ///
    /// # Errors
    /// [`DeviceError::Link`] for a transport failure or a damaged reply.
    pub fn receive(&mut self) -> Result<Reply, DeviceError> {
        self.client().receive().map_err(link_error)
    }

    /// Asks what the device is and holds.
    ///
    /// # Errors
    /// Link failures, or a reply other than the device information.
    pub fn info(&mut self) -> Result<DeviceInfo, DeviceError> {
        match self.call(&Request::Info)? {
            Reply::Info(info) => Ok(info),
            other => Err(unexpected("info", &other)),
        }
    }

    /// Makes the library in the device's flash the one in use.
    ///
    /// # Errors
    /// Link failures, or the device's refusal (no built-in library).
    pub fn use_builtin(&mut self) -> Result<LibraryInfo, DeviceError> {
        match self.call(&Request::UseBuiltin)? {
            Reply::Library(info) => Ok(info),
            other => Err(refused("the built-in library", other)),
        }
    }

    /// Uploads a prepared library (the kernel's byte format) in chunks of [`CHUNK`] bytes
    /// and makes it the one in use.
    ///
    /// # Errors
    /// Link failures, or the device's refusal naming the fault (too large, checksum, a
    /// shape the firmware cannot fit).
    pub fn upload(&mut self, bytes: &[u8]) -> Result<LibraryInfo, DeviceError> {
        let total_len = u32::try_from(bytes.len())
            .map_err(|_| DeviceError::Link("library over 4 GiB".into()))?;
        let crc32 = unmix_protocol::crc32(bytes);
        match self.call(&Request::LoadBegin { total_len, crc32 })? {
            Reply::LoadAck { .. } => {}
            other => return Err(refused("the upload", other)),
        }

        for (index, chunk) in bytes.chunks(CHUNK).enumerate() {
            let offset = (index * CHUNK) as u32;
            match self.call(&Request::LoadChunk {
                offset,
                bytes: chunk,
            })? {
                Reply::LoadAck { .. } => {}
                other => return Err(refused("a library chunk", other)),
            }
        }

        match self.call(&Request::LoadCommit)? {
            Reply::Library(info) => Ok(info),
            other => Err(refused("the uploaded library", other)),
        }
    }

    /// Fits `values` on the device: the result, or the device's refusal of this spectrum.
    ///
    /// # Errors
    /// Link failures, a reply for another sequence number, or a reply that is no fit.
    pub fn fit(
        &mut self,
        seq: u32,
        settings: &FitSettings,
        values: &[f32],
    ) -> Result<Result<FitResult, ErrorReply>, DeviceError> {
        let samples: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        match self.call(&fit_request(seq, settings, &samples))? {
            Reply::Fit(result) if result.seq == seq => Ok(Ok(result)),
            Reply::Error(error) if error.seq == Some(seq) => Ok(Err(error)),
            other => Err(unexpected("a fit", &other)),
        }
    }

    /// Ends the session: the device answers with its fit count and stack use; QEMU then
    /// exits, and its status and log are returned.
    ///
    /// # Errors
    /// Link failures or an unexpected reply.
    pub fn close(mut self) -> Result<Closing, DeviceError> {
        let (fits, stack) = match self.call(&Request::Shutdown)? {
            Reply::Bye { fits, stack } => (fits, stack),
            other => return Err(unexpected("shutdown", &other)),
        };

        let (exit, log) = match self.qemu.take() {
            Some(mut qemu) => {
                let exit = wait(&mut qemu.child, Duration::from_secs(10))?;
                let log = qemu
                    .stdout
                    .take()
                    .and_then(|t| t.join().ok())
                    .unwrap_or_default();
                (exit, log)
            }
            None => (None, Vec::new()),
        };
        Ok(Closing {
            fits,
            stack,
            exit,
            log,
        })
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if let Some(qemu) = &mut self.qemu {
            let _ = qemu.child.kill();
            let _ = qemu.child.wait();
        }
    }
}

/// The firmware ELF: `$UNMIX_FIRMWARE`, else [`DEFAULT_FIRMWARE`] under the current
/// directory, else under the repository this tool was built from.
pub fn firmware_path() -> PathBuf {
    if let Some(path) = std::env::var_os(FIRMWARE_ENV) {
        return PathBuf::from(path);
    }
    let here = PathBuf::from(DEFAULT_FIRMWARE);
    if here.is_file() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(DEFAULT_FIRMWARE)
}

/// Connects to QEMU's serial socket, retrying while QEMU starts (at most 10 s).
fn connect(port: u16, child: &mut Child) -> io::Result<TcpStream> {
    let start = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(socket) => return Ok(socket),
            Err(e) if start.elapsed() > Duration::from_secs(10) => return Err(e),
            Err(_) => {}
        }
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!("QEMU exited early with {status}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The two halves of a connected socket, with the reply timeout set.
type Halves = (Box<dyn Read + Send>, Box<dyn Write + Send>);

fn socket_halves(socket: TcpStream) -> io::Result<Halves> {
    socket.set_read_timeout(Some(REPLY_TIMEOUT))?;
    socket.set_nodelay(true)?;
    let writer = socket.try_clone()?;
    Ok((Box::new(socket), Box::new(writer)))
}

/// Waits for `child` to exit, killing it after `limit`; `None` when it had to be killed.
fn wait(child: &mut Child, limit: Duration) -> io::Result<Option<ExitStatus>> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if start.elapsed() > limit {
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn link_error(error: LinkError<std::io::Error>) -> DeviceError {
    match error {
        LinkError::Io(e) => DeviceError::Io(e),
        LinkError::Closed => DeviceError::Link("the device closed the link".into()),
        other => DeviceError::Link(format!("{other:?}")),
    }
}

fn unexpected(request: &'static str, reply: &Reply) -> DeviceError {
    DeviceError::Unexpected {
        request,
        reply: format!("{reply:?}"),
    }
}

fn refused(request: &'static str, reply: Reply) -> DeviceError {
    match reply {
        Reply::Error(reply) => DeviceError::Refused { request, reply },
        other => unexpected(request, &other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_record_splits_phases_from_background() {
        let result = FitResult {
            seq: 3,
            status: FitStatus::IterationCap,
            iterations: 9,
            active: 0b11,
            residual_norm: 0.5,
            chi2: Some(1.5),
            reduced_chi2: None,
            coefficients: [1.0, 2.0, 3.0].as_slice().try_into().unwrap(),
            fractions: [0.25, 0.75].as_slice().try_into().unwrap(),
            std_errors: [0.1, 0.2, 0.3].as_slice().try_into().unwrap(),
            cost: 1000,
        };

        let record = record(&result, 2);
        assert_eq!(record.phases, vec![1.0, 2.0]);
        assert_eq!(record.background, vec![3.0]);
        assert_eq!(record.status, Status::IterationCap);
        assert_eq!(record.iterations, 9);
    }

    #[test]
    fn a_refused_non_finite_sample_reads_like_the_host_error() {
        let message = refusal_message(ErrorKind::NonFinite { channel: 17 });
        assert_eq!(
            message,
            describe_fit_error(unmix::Error::NonFinite { channel: 17 })
        );
        assert!(refusal_message(ErrorKind::NoLibrary).contains("NoLibrary"));
    }

    #[test]
    fn ridge_settings_travel_with_their_lambda() {
        let settings =
            FitSettings::new(crate::fitting::MethodName::Ridge, Some(0.25), None).unwrap();
        let Request::Fit(fit) = fit_request(7, &settings, &[]) else {
            panic!("not a fit request");
        };
        assert_eq!(fit.method, unmix_protocol::Method::Ridge);
        assert_eq!(fit.lambda, 0.25);
        assert!(fit.options.chi_square);
    }
}
