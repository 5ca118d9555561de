//! The kernel's one error type: small, `Copy`, and carrying the data that locates the fault.

use core::fmt;

/// Why a library could not be prepared or loaded, or why a spectrum could not be fitted.
///
/// Every variant names what went wrong and where (channel, column, byte offset, lengths), so a
/// caller can report it without re-checking the input. New variants may be added in minor
/// versions, hence `#[non_exhaustive]`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// A spectrum sample is NaN or infinite.
    NonFinite {
        /// Zero-based channel of the first such sample.
        channel: usize,
    },
    /// A reference library value is NaN or infinite.
    NonFiniteLibrary {
        /// Zero-based channel of the first such value.
        channel: usize,
        /// Zero-based phase (column) of that value.
        column: usize,
    },
    /// A sum over the spectrum, a fitted coefficient or the squared residual norm overflowed
    /// `f32` although every input was finite (samples near `1e19` and above, or a constrained
    /// fit forced far from the spectrum).
    Overflow,
    /// A buffer has the wrong length (spectrum, library, storage, scratch, output or bytes).
    LengthMismatch {
        /// The length the call needs (a minimum for output buffers).
        expected: usize,
        /// The length it was given.
        found: usize,
    },
    /// After unit column scaling, this column lies within `16 * f32::EPSILON` of the span of
    /// the columns before it (phases first, then background terms), so the library cannot
    /// be solved in `f32`.
    RankDeficient {
        /// Zero-based column (phases first, then background terms).
        column: usize,
    },
    /// More phases or background terms than the fixed capacities allow.
    TooManyColumns {
        /// Phases requested (at most [`MAX_PHASES`](crate::MAX_PHASES)).
        phases: usize,
        /// Background terms requested (at most [`MAX_DEGREE`](crate::MAX_DEGREE) + 1).
        background_terms: usize,
    },
    /// A library needs at least one phase.
    NoPhases,
    /// More channels than [`MAX_CHANNELS`](crate::MAX_CHANNELS), the bound that keeps every
    /// size derived from a shape within a 32-bit `usize`.
    TooManyChannels {
        /// Channels given.
        channels: usize,
    },
    /// Fewer channels than columns: the least-squares problem is under-determined.
    TooFewChannels {
        /// Channels given.
        channels: usize,
        /// Columns (phases plus background terms) requested.
        columns: usize,
    },
    /// A serialized prepared library is malformed.
    BadBytes {
        /// What exactly is wrong.
        fault: ByteFault,
    },
    /// A ridge `lambda` that is negative, NaN or infinite.
    InvalidLambda,
}

/// What is wrong with a serialized prepared library (see [`Error::BadBytes`]).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ByteFault {
    /// The first eight bytes are not the format's magic.
    Magic,
    /// A format version this build does not read.
    Version {
        /// The version found in the header.
        found: u32,
    },
    /// The header's length field disagrees with its shape.
    Header,
    /// The stored identity hash does not match the bytes.
    Checksum {
        /// The hash stored in the header.
        stored: u64,
        /// The hash of the bytes as received.
        computed: u64,
    },
    /// A stored value is not finite, or a diagonal entry of `R` or a scale is not positive.
    Value {
        /// Index of the offending `f32` in the data block.
        index: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::NonFinite { channel } => {
                write!(f, "spectrum sample at channel {channel} is not finite")
            }
            Error::NonFiniteLibrary { channel, column } => write!(
                f,
                "library value at channel {channel}, column {column} is not finite"
            ),
            Error::Overflow => write!(f, "f32 overflow while fitting a finite spectrum"),
            Error::LengthMismatch { expected, found } => {
                write!(f, "length mismatch: expected {expected}, found {found}")
            }
            Error::RankDeficient { column } => write!(
                f,
                "library is rank-deficient: column {column} depends on the columns before it"
            ),
            Error::TooManyColumns {
                phases,
                background_terms,
            } => write!(
                f,
                "too many columns: {phases} phases and {background_terms} background terms"
            ),
            Error::NoPhases => write!(f, "the library has no phases"),
            Error::TooManyChannels { channels } => write!(
                f,
                "{channels} channels: a library holds at most {} channels",
                crate::MAX_CHANNELS
            ),
            Error::TooFewChannels { channels, columns } => {
                write!(f, "{channels} channels cannot determine {columns} columns")
            }
            Error::BadBytes { fault } => write!(f, "bad prepared-library bytes: {fault:?}"),
            Error::InvalidLambda => write!(f, "ridge lambda must be finite and non-negative"),
        }
    }
}

impl core::error::Error for Error {}
