//! The wire protocol between the `unmix` host tool and the `unmix` firmware.
//!
//! A host sends [`Request`]s over a byte stream (a UART, a USB serial port, a socket into an
//! emulator) and the device answers each one with exactly one [`Reply`], in order. The stream
//! carries frames, each built in three steps:
//!
//! 1. the message is serialized with [postcard] (serde's data model, varint integers, `f32`
//!    as four little-endian bytes, byte slices as a length and the raw bytes);
//! 2. the CRC-32 (ISO-HDLC polynomial, the one of Ethernet and zlib) of those bytes is
//!    appended, little-endian;
//! 3. the whole is COBS-encoded (Cheshire and Baker, "Consistent Overhead Byte Stuffing",
//!    IEEE/ACM Trans. Networking 7(2), 1999), which removes every `0x00`, and a `0x00`
//!    delimiter ends the frame.
//!
//! Because no `0x00` occurs inside a frame, a receiver that sees garbage or a truncated frame
//! loses at most that frame: the next delimiter puts it back in step ([`FrameDecoder`]). The
//! CRC catches bytes that were changed on the way. A frame longer than the receiver's buffer
//! is dropped whole and reported, never written past the buffer.
//!
//! # Sessions
//!
//! - [`Request::Info`] asks for the [`DeviceInfo`]: sizes, capacities, the library in use.
//! - A prepared library (the kernel's byte format) is either uploaded into the device's RAM
//!   with [`Request::LoadBegin`], any number of [`Request::LoadChunk`]s at increasing offsets
//!   and [`Request::LoadCommit`], or taken from flash with [`Request::UseBuiltin`].
//! - [`Request::Fit`] carries one spectrum as raw little-endian samples, borrowed from the
//!   frame without copying, and gets a [`FitResult`] or an [`ErrorReply`] naming the fault.
//!
//! Both sides use the same code: [`encode`] builds a frame, [`FrameDecoder`] takes one apart,
//! and [`io`] moves frames over `embedded-io` streams.
//!
//! The crate is `no_std` and allocates nothing; every buffer is the caller's.

#![no_std]

mod frame;
pub mod io;
mod message;
mod samples;
pub mod serial;

pub use frame::{EncodeError, FrameDecoder, FrameError, encode, max_frame_len, payload_crc};
pub use message::{
    BuildOptions, CostUnit, DeviceInfo, ErrorKind, ErrorReply, FitOptions, FitRequest, FitResult,
    FitStatus, LibraryFault, LibraryInfo, LibrarySource, Method, Reply, Request, StackUsage,
};
pub use samples::{SampleFormat, decode_samples, encode_samples};

/// Protocol revision, reported in [`DeviceInfo::protocol`]; bumped on any incompatible change.
pub const PROTOCOL_VERSION: u16 = 1;

/// Most columns (phases plus background terms) a [`FitResult`] can carry.
pub const MAX_COLUMNS: usize = 32;

/// Bytes the CRC adds to every frame's message.
pub const CRC_LEN: usize = 4;

/// The CRC of every frame: CRC-32/ISO-HDLC (reflected polynomial `0xEDB88320`).
pub const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A frame's CRC-32 over `bytes` (also used for the checksum of an uploaded library).
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC.checksum(bytes)
}
