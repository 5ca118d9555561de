//! The device's end of the protocol: read a request, carry it out, answer it.
//!
//! Every frame that ends gets exactly one reply, in order: a request its answer, a frame
//! that cannot be read (bad COBS, bad CRC, too long, unknown tag, malformed body) an
//! [`ErrorReply`] naming the fault. Nothing a host sends stops the loop except
//! [`Request::Shutdown`].
//!
//! # Memory
//!
//! All buffers are the caller's (statics in `main`), sized at compile time:
//! [`RX_LEN`] bytes for one incoming frame (a fit of [`MAX_CHANNELS`] `f32` samples),
//! [`TX_LEN`] for one reply, [`MAX_CHANNELS`] `f32` for the spectrum being fitted, and the
//! upload buffer of [`UPLOAD_BYTES`] for a library sent over the wire. A library is fitted
//! in place from where it lies (flash or the upload buffer): no copy.

use unmix::{FitOptions, Method, PreparedView, Shape, bytes::HEADER_LEN};
use unmix_protocol::{
    BuildOptions, DeviceInfo, ErrorKind, ErrorReply, FitRequest, FitResult, FitStatus,
    FrameDecoder, LibraryFault, LibraryInfo, LibrarySource, MAX_COLUMNS, PROTOCOL_VERSION, Reply,
    Request, StackUsage,
    io::{LinkError, parse_request, read_frame, write_frame},
    max_frame_len,
};

use crate::{
    cost::CostCounter,
    source::{SpectrumSource, WireSamples},
};

/// Most channels per spectrum this build fits.
pub const MAX_CHANNELS: usize = 2048;

/// Receive buffer: one fit request of [`MAX_CHANNELS`] `f32` samples plus its header
/// fields, framed (the decoder accepts frames one byte longer, the delimiter).
pub const RX_LEN: usize = max_frame_len(4 * MAX_CHANNELS + 32) - 1;

/// Transmit buffer: the longest reply, a fit result with three vectors of
/// [`unmix::MAX_COLUMNS`] values, framed.
pub const TX_LEN: usize = max_frame_len(3 * (1 + 4 * unmix::MAX_COLUMNS) + 64);

/// The RAM buffer for uploaded libraries: 92 KiB, room for 2048 channels and 11 columns
/// (8 phases and a degree-2 background) in the kernel's byte format.
pub const UPLOAD_BYTES: usize = 92 * 1024;

/// Fits between two summary lines in the log.
const SUMMARY_EVERY: u32 = 256;

const _: () = assert!(
    unmix::MAX_COLUMNS <= MAX_COLUMNS,
    "replies must carry every column"
);
const _: () = assert!(
    HEADER_LEN.is_multiple_of(4),
    "library data must start on a word"
);
const _: () = assert!(
    cfg!(target_endian = "little"),
    "libraries are fitted in place from their little-endian bytes"
);

/// The library built into flash: the kernel's byte format, word-aligned so that its data
/// block can be read in place as `f32`.
#[repr(C, align(4))]
struct Aligned<T: ?Sized>(T);

static BUILTIN: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/builtin.unmix")));

/// A checked library: its identity and shape.
#[derive(Clone, Copy)]
struct Checked {
    info: LibraryInfo,
    shape: Shape,
}

/// Where an upload stands.
#[derive(Clone, Copy)]
enum Upload {
    Idle,
    Receiving { total: u32, received: u32, crc: u32 },
}

/// The protocol state and the buffers it works in.
pub struct Server<'b, C> {
    board: &'static str,
    spectrum: &'b mut [f32],
    upload: &'b mut [f32],
    upload_state: Upload,
    builtin: Option<Checked>,
    active: Option<Checked>,
    counter: C,
    fits: u32,
    window_cost: u64,
    window_fits: u32,
    max_frame: u32,
}

impl<'b, C: CostCounter> Server<'b, C> {
    /// A server fitting into `spectrum` (at least [`MAX_CHANNELS`] values) and receiving
    /// uploads into `upload`, pricing fits with `counter`. Checks the built-in library.
    pub fn new(
        board: &'static str,
        spectrum: &'b mut [f32],
        upload: &'b mut [f32],
        counter: C,
    ) -> Self {
        let builtin = match check_library(LibrarySource::Builtin, &BUILTIN.0, words(&BUILTIN.0)) {
            Ok(checked) => {
                defmt::info!(
                    "built-in library: {} channels, {} phases, id {=u64:#x}",
                    checked.info.channels,
                    checked.info.phases,
                    checked.info.id
                );
                Some(checked)
            }
            Err(kind) => {
                defmt::error!("built-in library rejected: {}", kind);
                None
            }
        };

        if let Some(checked) = builtin {
            floor_cost(&counter, checked.shape, spectrum);
        }

        Server {
            board,
            spectrum,
            upload,
            upload_state: Upload::Idle,
            builtin,
            active: None,
            counter,
            fits: 0,
            window_cost: 0,
            window_fits: 0,
            max_frame: (RX_LEN + 1) as u32,
        }
    }

    /// Whether the built-in library passed its checks.
    pub fn builtin_ok(&self) -> bool {
        self.builtin.is_some()
    }

    /// Serves requests from `link` until [`Request::Shutdown`] has been answered.
    ///
    /// # Errors
    /// Only a failure to write a reply; read errors (receive overruns) are logged and the
    /// damaged frame is answered when its delimiter arrives.
    pub fn serve<L>(&mut self, link: &mut L, rx: &mut [u8], tx: &mut [u8]) -> Result<(), L::Error>
    where
        L: embedded_io::Read + embedded_io::Write,
        L::Error: defmt::Format,
    {
        let mut decoder = FrameDecoder::new(rx);
        loop {
            let (reply, last) = match read_frame(link, &mut decoder) {
                Ok(Ok(message)) => match parse_request(message) {
                    Ok(request) => {
                        let last = matches!(request, Request::Shutdown);
                        (self.handle(request), last)
                    }
                    Err(error) => (self.refuse(error), false),
                },
                Ok(Err(fault)) => (
                    self.refuse(ErrorReply {
                        seq: None,
                        kind: fault.into(),
                    }),
                    false,
                ),
                Err(LinkError::Io(error)) => {
                    defmt::warn!("link: {}", error);
                    continue;
                }
                Err(_) => continue,
            };

            match write_frame(link, &reply, tx) {
                Ok(()) => {}
                Err(LinkError::Io(error)) => return Err(error),
                Err(_) => defmt::error!("a reply did not fit the transmit buffer"),
            }
            if last {
                return Ok(());
            }
        }
    }

    fn refuse(&self, error: ErrorReply) -> Reply {
        defmt::warn!("refused: {}", error);
        Reply::Error(error)
    }

    /// Carries out one request.
    pub fn handle(&mut self, request: Request<'_>) -> Reply {
        match request {
            Request::Info => Reply::Info(self.info()),
            Request::LoadBegin { total_len, crc32 } => self.load_begin(total_len, crc32),
            Request::LoadChunk { offset, bytes } => self.load_chunk(offset, bytes),
            Request::LoadCommit => self.load_commit(),
            Request::UseBuiltin => match self.builtin {
                Some(checked) => {
                    self.active = Some(checked);
                    defmt::info!("library: built-in, id {=u64:#x}", checked.info.id);
                    Reply::Library(checked.info)
                }
                None => error(None, ErrorKind::NoLibrary),
            },
            Request::Fit(fit) => self.fit(&fit),
            Request::Shutdown => {
                let stack = crate::stack::usage();
                defmt::info!(
                    "shutdown after {} fits; stack used {} of {} bytes",
                    self.fits,
                    stack.used,
                    stack.size
                );
                Reply::Bye {
                    fits: self.fits,
                    stack,
                }
            }
        }
    }

    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            protocol: PROTOCOL_VERSION,
            firmware: heapless::String::try_from(env!("CARGO_PKG_VERSION")).unwrap_or_default(),
            build: BuildOptions {
                board: heapless::String::try_from(self.board).unwrap_or_default(),
                max_channels: MAX_CHANNELS as u32,
                max_columns: unmix::MAX_COLUMNS as u16,
                upload_capacity: (4 * self.upload.len()) as u32,
                cost_unit: C::UNIT,
            },
            max_frame: self.max_frame,
            library: self.active.map(|c| c.info),
            builtin: self.builtin.map(|c| c.info),
            stack: crate::stack::usage(),
            fits: self.fits,
        }
    }

    fn load_begin(&mut self, total: u32, crc: u32) -> Reply {
        if self
            .active
            .is_some_and(|c| c.info.source == LibrarySource::Uploaded)
        {
            self.active = None;
        }
        self.upload_state = Upload::Idle;

        let capacity = 4 * self.upload.len();
        if total as usize > capacity {
            return error(
                None,
                ErrorKind::LibraryTooLarge {
                    size: total,
                    capacity: capacity as u32,
                },
            );
        }
        self.upload_state = Upload::Receiving {
            total,
            received: 0,
            crc,
        };
        Reply::LoadAck { received: 0 }
    }

    fn load_chunk(&mut self, offset: u32, bytes: &[u8]) -> Reply {
        let Upload::Receiving {
            total,
            received,
            crc,
        } = self.upload_state
        else {
            return error(None, ErrorKind::LoadNotStarted);
        };

        let end = offset as usize + bytes.len();
        if offset != received || end > total as usize {
            return error(
                None,
                ErrorKind::LoadOutOfOrder {
                    expected: received,
                    found: offset,
                },
            );
        }

        let storage: &mut [u8] = bytemuck::cast_slice_mut(self.upload);
        if let Some(slot) = storage.get_mut(offset as usize..end) {
            slot.copy_from_slice(bytes);
        }
        let received = end as u32;
        self.upload_state = Upload::Receiving {
            total,
            received,
            crc,
        };
        Reply::LoadAck { received }
    }

    fn load_commit(&mut self) -> Reply {
        let Upload::Receiving {
            total,
            received,
            crc,
        } = self.upload_state
        else {
            return error(None, ErrorKind::LoadNotStarted);
        };
        self.upload_state = Upload::Idle;
        if received != total {
            return error(
                None,
                ErrorKind::LoadIncomplete {
                    received,
                    expected: total,
                },
            );
        }

        let storage: &[u8] = bytemuck::cast_slice(self.upload);
        let bytes = storage.get(..total as usize).unwrap_or(&[]);
        let computed = unmix_protocol::crc32(bytes);
        if computed != crc {
            return error(
                None,
                ErrorKind::LoadChecksum {
                    expected: crc,
                    computed,
                },
            );
        }

        match check_library(LibrarySource::Uploaded, bytes, words(storage)) {
            Ok(checked) => {
                defmt::info!(
                    "library uploaded: {} channels, {} phases, {} background terms, id {=u64:#x}",
                    checked.info.channels,
                    checked.info.phases,
                    checked.info.background_terms,
                    checked.info.id
                );
                self.active = Some(checked);
                Reply::Library(checked.info)
            }
            Err(kind) => error(None, kind),
        }
    }

    fn fit(&mut self, request: &FitRequest<'_>) -> Reply {
        let method = match request.method {
            unmix_protocol::Method::Lstsq => Method::Lstsq,
            unmix_protocol::Method::Ridge => Method::Ridge {
                lambda: request.lambda,
            },
            unmix_protocol::Method::Nnls => Method::Nnls,
            unmix_protocol::Method::Fcls => Method::Fcls,
        };
        let options = FitOptions::new(method).with_chi2(request.options.chi_square);
        let mut source = WireSamples {
            format: request.format,
            bytes: request.samples,
        };

        match self.fit_from(request.seq, &options, &mut source) {
            Ok(result) => Reply::Fit(result),
            Err(kind) => error(Some(request.seq), kind),
        }
    }

    /// Fits the next spectrum of `source` against the library in use.
    ///
    /// # Errors
    /// [`ErrorKind::NoLibrary`], the source's error, or the kernel's error as an
    /// [`ErrorKind`].
    pub fn fit_from(
        &mut self,
        seq: u32,
        options: &FitOptions,
        source: &mut impl SpectrumSource,
    ) -> Result<FitResult, ErrorKind> {
        let checked = self.active.ok_or(ErrorKind::NoLibrary)?;
        let n = checked.shape.channels;
        let spectrum = self.spectrum.get_mut(..n).ok_or(ErrorKind::LibraryShape {
            channels: checked.info.channels,
            columns: checked.shape.columns() as u16,
        })?;
        source.read_spectrum(spectrum)?;

        let data = match checked.info.source {
            LibrarySource::Builtin => words(&BUILTIN.0),
            LibrarySource::Uploaded => words(bytemuck::cast_slice(self.upload)),
        };
        let data = data.get(..checked.shape.prepared_len()).unwrap_or(&[]);
        let view = PreparedView::new(checked.shape, data).map_err(|_| ErrorKind::FitFailed)?;

        let start = self.counter.now();
        let fit = view.fit(&*spectrum, options);
        let cost = self.counter.cost_since(start);
        let fit = fit.map_err(fit_error)?;

        self.account(seq, cost);
        Ok(FitResult {
            seq,
            status: match fit.status() {
                unmix::Status::Converged => FitStatus::Converged,
                unmix::Status::IterationCap => FitStatus::IterationCap,
                _ => FitStatus::Degenerate,
            },
            iterations: fit.iterations(),
            active: fit.support(),
            residual_norm: fit.residual_norm(),
            chi2: fit.chi2(),
            reduced_chi2: fit.reduced_chi2(),
            coefficients: heapless::Vec::from_slice(fit.coefficients()).unwrap_or_default(),
            fractions: heapless::Vec::from_slice(fit.fractions()).unwrap_or_default(),
            std_errors: heapless::Vec::from_slice(fit.standard_errors()).unwrap_or_default(),
            cost,
        })
    }

    /// Counts a fit and logs a summary every [`SUMMARY_EVERY`] fits.
    fn account(&mut self, seq: u32, cost: u32) {
        self.fits = self.fits.wrapping_add(1);
        self.window_fits += 1;
        self.window_cost += u64::from(cost);
        if self.window_fits < SUMMARY_EVERY {
            return;
        }

        let StackUsage { used, size } = crate::stack::usage();
        defmt::info!(
            "{} fits (last seq {}): mean cost {} {}, stack used {} of {} bytes",
            self.fits,
            seq,
            self.window_cost / u64::from(self.window_fits),
            C::UNIT,
            used,
            size
        );
        self.window_fits = 0;
        self.window_cost = 0;
    }
}

/// Prices, once, the generic multiply-add pass `z = Q^T y` over the built-in library and the
/// kernel's own projection (the same pass with `||y||^2`, unrolled per column count), and
/// logs both: the floors every fit is measured against (`cargo xtask bench` reads them).
fn floor_cost<C: CostCounter>(counter: &C, shape: Shape, spectrum: &[f32]) {
    let n = shape.channels;
    let c = shape.columns();
    let q = words(&BUILTIN.0).get(..n * c).unwrap_or(&[]);
    let y = spectrum.get(..n).unwrap_or(&[]);
    let mut z = [0.0f32; unmix::MAX_COLUMNS];

    let start = counter.now();
    unmix::pass::multiply_add_pass(q, y, z.get_mut(..c).unwrap_or(&mut []));
    let cost = counter.cost_since(start);
    defmt::info!(
        "bare pass over the built-in library ({} x {}): {} {}",
        n,
        c,
        cost,
        C::UNIT
    );

    let data = words(&BUILTIN.0).get(..shape.prepared_len()).unwrap_or(&[]);
    let projected = PreparedView::new(shape, data).and_then(|view| {
        let start = counter.now();
        view.project(y, z.get_mut(..c).unwrap_or(&mut []))?;
        Ok(counter.cost_since(start))
    });
    match projected {
        Ok(cost) => defmt::info!("kernel projection ({} x {}): {} {}", n, c, cost, C::UNIT),
        Err(error) => defmt::error!("kernel projection failed: {}", error),
    }
}

fn error(seq: Option<u32>, kind: ErrorKind) -> Reply {
    Reply::Error(ErrorReply { seq, kind })
}

/// The data block of a library in the kernel's byte format, read in place as `f32` (empty
/// when `bytes` is too short or not word-aligned, which the checks then reject).
fn words(bytes: &[u8]) -> &[f32] {
    let data = bytes.get(HEADER_LEN..).unwrap_or(&[]);
    let whole = data.len() / 4 * 4;
    bytemuck::try_cast_slice(data.get(..whole).unwrap_or(&[])).unwrap_or(&[])
}

/// Checks a library in the kernel's byte format that lies in `bytes`, whose data block
/// `data` is the same memory read as `f32`.
///
/// The kernel's loader ([`PreparedView::from_bytes`]) decodes into a second buffer; here the
/// library is used where it lies, so the same checks are made in place: the header
/// ([`unmix::bytes::read_header`]), the shape against this build's capacities, every value
/// finite, the diagonal of `R` and the scales positive ([`PreparedView::new`]) and the
/// identity hash ([`PreparedView::library_id`] against the header's).
fn check_library(source: LibrarySource, bytes: &[u8], data: &[f32]) -> Result<Checked, ErrorKind> {
    let header = unmix::bytes::read_header(bytes).map_err(library_error)?;
    let shape = header.shape;
    if shape.channels > MAX_CHANNELS {
        return Err(ErrorKind::LibraryShape {
            channels: shape.channels as u32,
            columns: shape.columns() as u16,
        });
    }

    let data = data
        .get(..shape.prepared_len())
        .ok_or(ErrorKind::BadLibrary {
            fault: LibraryFault::Header,
        })?;
    if let Some(index) = data.iter().position(|v| !v.is_finite()) {
        return Err(ErrorKind::BadLibrary {
            fault: LibraryFault::Value {
                index: index as u32,
            },
        });
    }
    let view = PreparedView::new(shape, data).map_err(library_error)?;
    if view.library_id() != header.id {
        return Err(ErrorKind::BadLibrary {
            fault: LibraryFault::Checksum,
        });
    }

    Ok(Checked {
        info: LibraryInfo {
            source,
            channels: shape.channels as u32,
            phases: shape.phases as u16,
            background_terms: shape.background.terms() as u16,
            id: header.id,
            bytes: bytes.len() as u32,
        },
        shape,
    })
}

fn library_error(error: unmix::Error) -> ErrorKind {
    let fault = match error {
        unmix::Error::BadBytes { fault } => match fault {
            unmix::ByteFault::Magic => LibraryFault::Magic,
            unmix::ByteFault::Version { found } => LibraryFault::Version { found },
            unmix::ByteFault::Header => LibraryFault::Header,
            unmix::ByteFault::Checksum { .. } => LibraryFault::Checksum,
            unmix::ByteFault::Value { index } => LibraryFault::Value {
                index: index as u32,
            },
            _ => LibraryFault::Other,
        },
        unmix::Error::LengthMismatch { .. } => LibraryFault::Header,
        _ => LibraryFault::Other,
    };
    ErrorKind::BadLibrary { fault }
}

fn fit_error(error: unmix::Error) -> ErrorKind {
    match error {
        unmix::Error::NonFinite { channel } => ErrorKind::NonFinite {
            channel: channel as u32,
        },
        unmix::Error::LengthMismatch { expected, found } => ErrorKind::WrongLength {
            expected: expected as u32,
            found: found as u32,
        },
        unmix::Error::InvalidLambda => ErrorKind::InvalidLambda,
        unmix::Error::Overflow => ErrorKind::Overflow,
        _ => ErrorKind::FitFailed,
    }
}
