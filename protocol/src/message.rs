//! The messages: requests from the host, replies from the device.

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

use crate::{MAX_COLUMNS, SampleFormat};

/// What the host asks. Every request gets exactly one [`Reply`], in the order sent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Request<'a> {
    /// Asks for the [`DeviceInfo`]; answered by [`Reply::Info`].
    Info,
    /// Starts an upload of a prepared library (the kernel's byte format) into the device's
    /// RAM buffer, replacing any uploaded library. Answered by [`Reply::LoadAck`] with 0, or
    /// [`ErrorKind::LibraryTooLarge`].
    LoadBegin {
        /// Size of the whole library in bytes.
        total_len: u32,
        /// [`crate::crc32`] of the whole library, checked at [`Request::LoadCommit`].
        crc32: u32,
    },
    /// The next piece of the library. Answered by [`Reply::LoadAck`] with the bytes received
    /// so far, or [`ErrorKind::LoadOutOfOrder`] when `offset` is not that count.
    LoadChunk {
        /// Where `bytes` go in the library.
        offset: u32,
        /// The piece itself, borrowed from the frame.
        bytes: &'a [u8],
    },
    /// Checks the upload (length, CRC, the kernel's own validation) and makes it the library
    /// in use. Answered by [`Reply::Library`].
    LoadCommit,
    /// Makes the library built into the firmware's flash the one in use. Answered by
    /// [`Reply::Library`], or [`ErrorKind::NoLibrary`] when the build has none.
    UseBuiltin,
    /// Fits one spectrum; answered by [`Reply::Fit`] or an [`ErrorReply`] carrying `seq`.
    Fit(FitRequest<'a>),
    /// Ends the session: answered by [`Reply::Bye`]; an emulator then exits with success.
    Shutdown,
}

impl Request<'_> {
    /// Number of request kinds; a frame whose leading tag is at least this is an
    /// [`ErrorKind::UnknownMessage`].
    pub const KINDS: u32 = 7;
}

/// One spectrum to fit and how.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FitRequest<'a> {
    /// Chosen by the host and echoed in the reply.
    pub seq: u32,
    /// The estimator.
    pub method: Method,
    /// Ridge penalty; used by [`Method::Ridge`] only.
    pub lambda: f32,
    /// Optional outputs.
    pub options: FitOptions,
    /// How `samples` is encoded.
    pub format: SampleFormat,
    /// The counts, little-endian, one sample per channel, borrowed from the frame.
    pub samples: &'a [u8],
}

/// The estimators of the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// Unconstrained least squares.
    Lstsq,
    /// Least squares with a ridge penalty `lambda * ||w||^2`.
    Ridge,
    /// Non-negative least squares (Lawson-Hanson active set).
    Nnls,
    /// Non-negative with fractions summing exactly to one.
    Fcls,
}

/// Optional outputs of a fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FitOptions {
    /// Report the chi-square of the fit (Poisson weights) in [`FitResult::chi2`].
    pub chi_square: bool,
}

/// The answer to a request.
#[expect(
    clippy::large_enum_variant,
    reason = "no allocator on the device: a reply lives on the stack, about 450 bytes"
)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reply {
    /// Answers [`Request::Info`].
    Info(DeviceInfo),
    /// Answers [`Request::LoadBegin`] and [`Request::LoadChunk`].
    LoadAck {
        /// Bytes of the upload received so far.
        received: u32,
    },
    /// Answers [`Request::LoadCommit`] and [`Request::UseBuiltin`]: the library now in use.
    Library(LibraryInfo),
    /// Answers [`Request::Fit`].
    Fit(FitResult),
    /// Answers any request that could not be carried out, or a frame that could not be read.
    Error(ErrorReply),
    /// Answers [`Request::Shutdown`].
    Bye {
        /// Fits carried out since boot.
        fits: u32,
        /// Stack use at the end of the session.
        stack: StackUsage,
    },
}

/// What the device is and what it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeviceInfo {
    /// [`crate::PROTOCOL_VERSION`] of the firmware.
    pub protocol: u16,
    /// Firmware version (`CARGO_PKG_VERSION`).
    pub firmware: String<16>,
    /// What the firmware was built for and with.
    pub build: BuildOptions,
    /// Longest frame the device accepts, delimiter included.
    pub max_frame: u32,
    /// The library in use, if any.
    pub library: Option<LibraryInfo>,
    /// The built-in library in flash, if the build has one.
    pub builtin: Option<LibraryInfo>,
    /// Stack use so far.
    pub stack: StackUsage,
    /// Fits carried out since boot.
    pub fits: u32,
}

/// How the firmware was built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BuildOptions {
    /// Board or emulator name, such as `"mps2-an386"`.
    pub board: String<16>,
    /// Most channels per spectrum.
    pub max_channels: u32,
    /// Most columns (phases plus background terms).
    pub max_columns: u16,
    /// Size of the RAM buffer for uploaded libraries, in bytes.
    pub upload_capacity: u32,
    /// What [`FitResult::cost`] counts.
    pub cost_unit: CostUnit,
}

/// The unit of [`FitResult::cost`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CostUnit {
    /// Instructions, exact to a multiple of 40: QEMU with `-icount shift=0,sleep=off` runs one
    /// instruction per nanosecond and the 25 MHz timer ticks every 40 of them. Without
    /// `-icount` the count follows the host's wall clock and means little.
    QemuInstructions,
    /// Core clock cycles from the DWT cycle counter of a real part.
    Cycles,
}

// Written out in words, so a firmware log reads "37440 instructions (QEMU -icount)".
#[cfg(feature = "defmt")]
impl defmt::Format for CostUnit {
    fn format(&self, f: defmt::Formatter) {
        match self {
            CostUnit::QemuInstructions => defmt::write!(f, "instructions (QEMU -icount)"),
            CostUnit::Cycles => defmt::write!(f, "cycles"),
        }
    }
}

/// Stack use measured by painting the stack at reset and scanning for the deepest change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StackUsage {
    /// Deepest use so far (high-water mark), in bytes.
    pub used: u32,
    /// Size of the stack region, in bytes.
    pub size: u32,
}

/// A prepared library's identity and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LibraryInfo {
    /// Where it lives.
    pub source: LibrarySource,
    /// Channels per spectrum.
    pub channels: u32,
    /// Reference phases.
    pub phases: u16,
    /// Polynomial background terms beside the phases.
    pub background_terms: u16,
    /// The kernel's identity hash of the prepared bytes.
    pub id: u64,
    /// Size of the prepared bytes.
    pub bytes: u32,
}

/// Where the library in use lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LibrarySource {
    /// Built into the firmware's flash.
    Builtin,
    /// Uploaded into the RAM buffer.
    Uploaded,
}

/// The outcome of one fit. Vectors hold one entry per column (phases first, then background
/// terms), except `fractions`, which holds one per phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FitResult {
    /// The request's sequence number.
    pub seq: u32,
    /// How the solver ended.
    pub status: FitStatus,
    /// Active-set iterations (subproblem solves); 0 for the direct methods.
    pub iterations: u32,
    /// Bit `j` set when phase `j`'s coefficient is non-zero (the support).
    pub active: u32,
    /// `||y - X w||`.
    pub residual_norm: f32,
    /// Poisson chi-square of the fit when requested, else `None`.
    pub chi2: Option<f32>,
    /// Chi-square per degree of freedom when requested, else `None`.
    pub reduced_chi2: Option<f32>,
    /// Coefficients `w`.
    pub coefficients: Vec<f32, MAX_COLUMNS>,
    /// Phase fractions `w_j / sum(w)` over the phases.
    pub fractions: Vec<f32, MAX_COLUMNS>,
    /// Standard errors of the coefficients.
    pub std_errors: Vec<f32, MAX_COLUMNS>,
    /// What the fit cost on the device, in [`BuildOptions::cost_unit`].
    pub cost: u32,
}

/// How a fit ended.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FitStatus {
    /// The solver met its optimality conditions.
    Converged,
    /// The solver hit its iteration cap; the coefficients are the last feasible point.
    IterationCap,
    /// A subproblem was numerically singular; the coefficients are the last feasible point.
    Degenerate,
}

/// An error answer: which request it concerns, when known, and what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorReply {
    /// The [`FitRequest::seq`] of the request, when it could be read.
    pub seq: Option<u32>,
    /// What was wrong.
    pub kind: ErrorKind,
}

/// What was wrong with a frame or a request. New kinds may be added, hence
/// `#[non_exhaustive]`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorKind {
    /// The frame is not valid COBS, or too short to hold a CRC.
    BadFrame,
    /// The frame's CRC does not match its bytes.
    BadCrc {
        /// The CRC the frame carries.
        stored: u32,
        /// The CRC of the bytes received.
        computed: u32,
    },
    /// The frame is longer than the device's buffer; it was dropped whole.
    FrameTooLong {
        /// The longest frame accepted, delimiter included.
        limit: u32,
    },
    /// The frame's leading tag names no request.
    UnknownMessage {
        /// The tag found.
        tag: u32,
    },
    /// A known request whose body does not decode.
    Malformed,
    /// The spectrum has a different number of channels than the library.
    WrongLength {
        /// Channels of the library in use.
        expected: u32,
        /// Samples received (a partial trailing sample counts as one).
        found: u32,
    },
    /// A sample is NaN or infinite.
    NonFinite {
        /// Zero-based channel of the first such sample.
        channel: u32,
    },
    /// The library does not fit in the device's upload buffer.
    LibraryTooLarge {
        /// Bytes announced.
        size: u32,
        /// Bytes available.
        capacity: u32,
    },
    /// A fit was asked for before any library was loaded.
    NoLibrary,
    /// A chunk or commit arrived with no upload started.
    LoadNotStarted,
    /// A chunk's offset is not the number of bytes received so far, or it runs past the
    /// announced size.
    LoadOutOfOrder {
        /// Offset expected.
        expected: u32,
        /// Offset found.
        found: u32,
    },
    /// Commit before all announced bytes arrived.
    LoadIncomplete {
        /// Bytes received.
        received: u32,
        /// Bytes announced.
        expected: u32,
    },
    /// The uploaded bytes do not match the CRC announced at the start.
    LoadChecksum {
        /// CRC announced.
        expected: u32,
        /// CRC of the bytes received.
        computed: u32,
    },
    /// The kernel rejected the library's bytes.
    BadLibrary {
        /// Why.
        fault: LibraryFault,
    },
    /// The library has more channels or columns than this firmware handles.
    LibraryShape {
        /// Channels of the library.
        channels: u32,
        /// Columns (phases plus background terms).
        columns: u16,
    },
    /// A ridge `lambda` that is negative, NaN or infinite.
    InvalidLambda,
    /// An intermediate value overflowed `f32` although the samples were finite.
    Overflow,
    /// The kernel refused the fit for a reason this protocol revision has no name for.
    FitFailed,
}

/// Why the kernel rejected an uploaded library.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LibraryFault {
    /// Not the kernel's format (magic bytes).
    Magic,
    /// A format version the firmware does not read.
    Version {
        /// The version found.
        found: u32,
    },
    /// The header disagrees with itself or with the length.
    Header,
    /// The stored identity hash does not match the bytes.
    Checksum,
    /// A stored value is not finite or not positive where it must be.
    Value {
        /// Index of the offending value in the data block.
        index: u32,
    },
    /// Any other rejection.
    Other,
}
