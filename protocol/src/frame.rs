//! Frames: a postcard message, its CRC-32, COBS-encoded and closed by `0x00`.

use postcard::ser_flavors::Flavor;
use serde::Serialize;

use crate::{CRC, CRC_LEN, ErrorKind};

/// Why a frame could not be built.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The output buffer cannot hold the frame; [`max_frame_len`] says how much it needs.
    BufferTooSmall {
        /// Bytes of the output buffer.
        capacity: usize,
    },
    /// postcard refused the message (a type outside its data model).
    Message,
}

/// Why a received frame was rejected.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// The frame did not fit in the decoder's buffer and was dropped whole.
    TooLong {
        /// The longest frame accepted, delimiter included.
        limit: usize,
    },
    /// The bytes are not valid COBS (a code byte points past the frame's end).
    Cobs,
    /// The decoded frame is shorter than its CRC.
    TooShort {
        /// Bytes after decoding.
        len: usize,
    },
    /// The CRC does not match the message bytes.
    Crc {
        /// The CRC the frame carries.
        stored: u32,
        /// The CRC of the message bytes received.
        computed: u32,
    },
}

impl From<FrameError> for ErrorKind {
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::TooLong { limit } => ErrorKind::FrameTooLong {
                limit: saturate(limit),
            },
            FrameError::Crc { stored, computed } => ErrorKind::BadCrc { stored, computed },
            FrameError::Cobs | FrameError::TooShort { .. } => ErrorKind::BadFrame,
        }
    }
}

/// `value` as `u32`, saturating (sizes on the wire are `u32`).
pub(crate) fn saturate(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The longest frame, delimiter included, for a message of `message_len` bytes: the CRC adds
/// 4 bytes, COBS at most one byte per 254 plus one, and the delimiter one.
pub const fn max_frame_len(message_len: usize) -> usize {
    let stuffed = message_len + CRC_LEN;
    stuffed + stuffed / 254 + 1 + 1
}

/// The CRC-32 a frame carries for `message`.
pub fn payload_crc(message: &[u8]) -> u32 {
    CRC.checksum(message)
}

/// Serializes `message` into one complete frame in `out` and returns the frame's length,
/// delimiter included.
///
/// The message is serialized, checksummed and stuffed in one pass, with no second buffer.
///
/// # Errors
/// [`EncodeError::BufferTooSmall`] when `out` cannot hold the frame (its contents are then
/// unspecified); [`EncodeError::Message`] when postcard cannot represent the message.
pub fn encode<T: Serialize + ?Sized>(message: &T, out: &mut [u8]) -> Result<usize, EncodeError> {
    let capacity = out.len();
    let flavor = Framer {
        encoder: cobs::CobsEncoder::new(out),
        digest: CRC.digest(),
        capacity,
    };

    let stuffed = match postcard::serialize_with_flavor(message, flavor) {
        Ok(len) => len,
        Err(postcard::Error::SerializeBufferFull) => {
            return Err(EncodeError::BufferTooSmall { capacity });
        }
        Err(_) => return Err(EncodeError::Message),
    };

    let delimiter = out
        .get_mut(stuffed)
        .ok_or(EncodeError::BufferTooSmall { capacity })?;
    *delimiter = 0;
    Ok(stuffed + 1)
}

/// A postcard output flavour that checksums the message and COBS-encodes it on the fly.
struct Framer<'a> {
    encoder: cobs::CobsEncoder<'a>,
    digest: crc::Digest<'static, u32>,
    capacity: usize,
}

impl Flavor for Framer<'_> {
    type Output = usize;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.digest.update(data);
        self.encoder
            .push(data)
            .map_err(|_| postcard::Error::SerializeBufferFull)
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn finalize(mut self) -> postcard::Result<usize> {
        let crc = self.digest.finalize().to_le_bytes();
        self.encoder
            .push(&crc)
            .map_err(|_| postcard::Error::SerializeBufferFull)?;

        // The encoder writes its last code byte in `finalize`; the delimiter must fit after.
        let len = self.encoder.finalize();
        if len >= self.capacity {
            return Err(postcard::Error::SerializeBufferFull);
        }
        Ok(len)
    }
}

/// Cuts a byte stream into frames and checks each one.
///
/// Feed it every received byte with [`FrameDecoder::push`]. Bytes collect in the caller's
/// buffer until a `0x00` delimiter; then the frame is COBS-decoded in place and its CRC
/// checked. Garbage, a truncated frame or a corrupted one costs exactly that frame: its
/// error is reported at the delimiter, and the next frame decodes normally. A frame that
/// outgrows the buffer stops being stored (nothing is written past the buffer), the rest of
/// it is skipped, and [`FrameError::TooLong`] is reported at its delimiter. Empty frames
/// (two delimiters in a row) are skipped silently, so a sender may start with a `0x00` to
/// close whatever garbage the line held before.
///
/// Memory: the buffer only. The longest frame accepted, delimiter included, is
/// [`FrameDecoder::limit`] = buffer length + 1.
#[derive(Debug)]
pub struct FrameDecoder<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflowed: bool,
}

impl<'b> FrameDecoder<'b> {
    /// A decoder that stores frames in `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        FrameDecoder {
            buf,
            len: 0,
            overflowed: false,
        }
    }

    /// The longest frame accepted, delimiter included.
    pub fn limit(&self) -> usize {
        self.buf.len() + 1
    }

    /// Forgets any partial frame.
    pub fn reset(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }

    /// Takes one byte. Returns `None` while a frame is incomplete (or an empty frame ended),
    /// and at a delimiter either the frame's message bytes (CRC removed) or why the frame was
    /// rejected.
    pub fn push(&mut self, byte: u8) -> Option<Result<&[u8], FrameError>> {
        match self.feed(byte)? {
            Ok(len) => Some(Ok(self.buf.get(..len).unwrap_or(&[]))),
            Err(error) => Some(Err(error)),
        }
    }

    /// As [`FrameDecoder::push`], but returns the message's length; the message is then
    /// [`FrameDecoder::message`] with that length until the next byte is fed.
    pub fn feed(&mut self, byte: u8) -> Option<Result<usize, FrameError>> {
        if byte != 0 {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            } else {
                self.overflowed = true;
            }
            return None;
        }

        let len = core::mem::take(&mut self.len);
        if core::mem::take(&mut self.overflowed) {
            return Some(Err(FrameError::TooLong {
                limit: self.limit(),
            }));
        }
        if len == 0 {
            return None;
        }
        Some(self.check(len))
    }

    /// The first `len` bytes of the buffer: the message after [`FrameDecoder::feed`] returned
    /// `Ok(len)`.
    pub fn message(&self, len: usize) -> &[u8] {
        self.buf.get(..len).unwrap_or(&[])
    }

    /// COBS-decodes the `len` stored bytes in place, checks the CRC and returns the message's
    /// length.
    fn check(&mut self, len: usize) -> Result<usize, FrameError> {
        let stored = self.buf.get_mut(..len).ok_or(FrameError::Cobs)?;
        let decoded = cobs::decode_in_place(stored).map_err(|_| FrameError::Cobs)?;

        let frame = self.buf.get(..decoded).ok_or(FrameError::Cobs)?;
        let split = decoded
            .checked_sub(CRC_LEN)
            .ok_or(FrameError::TooShort { len: decoded })?;
        let (message, tail) = frame.split_at(split);

        let mut crc = [0u8; CRC_LEN];
        crc.copy_from_slice(tail);
        let stored = u32::from_le_bytes(crc);
        let computed = payload_crc(message);
        if stored == computed {
            Ok(split)
        } else {
            Err(FrameError::Crc { stored, computed })
        }
    }
}
