//! The stable byte format of a prepared library, used by `unmix prepare` and by the firmware's
//! library upload.
//!
//! All fields are little-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `UNMIXLIB` |
//! | 8 | 4 | format version, [`FORMAT_VERSION`] |
//! | 12 | 4 | channels `n` |
//! | 16 | 4 | phases `k` |
//! | 20 | 4 | background terms (0 = none, else Chebyshev degree + 1) |
//! | 24 | 4 | number of `f32` values that follow, `n c + c c + 2 c` |
//! | 28 | 4 | reserved, 0 |
//! | 32 | 8 | identity hash: 64-bit FNV-1a over bytes 0..32 and then the data bytes |
//! | 40 | 4 each | `f32` data: `Q`, `R`, scales, standard-error factors |
//!
//! The data block holds `Q` (`n * c`, channel-major), `R` (`c * c`, row-major), the column
//! scales (`c`) and the standard-error factors (`c`), as [`crate::PreparedView::as_parts`].
//!
//! The identity hash doubles as a checksum: loading verifies it. FNV-1a (Fowler, Noll and Vo)
//! is not cryptographic; it detects transmission faults and tells libraries apart.

use crate::{Background, ByteFault, Error, Shape};

/// Length of the header in bytes.
pub const HEADER_LEN: usize = 40;
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: [u8; 8] = *b"UNMIXLIB";
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The header of a serialized prepared library: its shape and identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Sizes of the library; allocate [`Shape::prepared_len`] `f32` values to load it.
    pub shape: Shape,
    /// The identity hash stored in the header (checked by the loaders).
    pub id: u64,
}

/// Streaming 64-bit FNV-1a.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) const fn new() -> Self {
        Fnv(FNV_OFFSET)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    pub(crate) const fn finish(self) -> u64 {
        self.0
    }
}

/// The first 32 header bytes (everything before the hash) for `shape`.
pub(crate) fn header_prefix(shape: Shape) -> [u8; 32] {
    let mut h = [0u8; 32];
    let fields = [
        FORMAT_VERSION,
        shape.channels as u32,
        shape.phases as u32,
        shape.background.terms() as u32,
        shape.prepared_len() as u32,
        0,
    ];

    let (magic, rest) = h.split_at_mut(8);
    magic.copy_from_slice(&MAGIC);
    for (dst, v) in rest.chunks_exact_mut(4).zip(fields) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
    h
}

fn bad(fault: ByteFault) -> Error {
    Error::BadBytes { fault }
}

fn word(bytes: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        w.copy_from_slice(src);
    }
    u32::from_le_bytes(w)
}

/// Reads and checks the header of a serialized prepared library (not the hash: the loaders
/// check it over the data).
///
/// # Errors
/// [`Error::BadBytes`] for a wrong magic, version or length field, a shape outside the
/// capacities, or a byte length that disagrees with the header;
/// [`Error::LengthMismatch`] when `bytes` is shorter than the header.
pub fn read_header(bytes: &[u8]) -> Result<Header, Error> {
    let head = bytes.get(..HEADER_LEN).ok_or(Error::LengthMismatch {
        expected: HEADER_LEN,
        found: bytes.len(),
    })?;
    if head.get(..8) != Some(&MAGIC[..]) {
        return Err(bad(ByteFault::Magic));
    }
    let version = word(head, 8);
    if version != FORMAT_VERSION {
        return Err(bad(ByteFault::Version { found: version }));
    }

    let terms = word(head, 20) as usize;
    let background = Background::from_terms(terms).map_err(|_| bad(ByteFault::Header))?;
    let shape = Shape::new(word(head, 12) as usize, word(head, 16) as usize, background);
    shape.validate().map_err(|_| bad(ByteFault::Header))?;
    if word(head, 24) as usize != shape.prepared_len() || word(head, 28) != 0 {
        return Err(bad(ByteFault::Header));
    }
    if bytes.len() != shape.bytes_len() {
        return Err(Error::LengthMismatch {
            expected: shape.bytes_len(),
            found: bytes.len(),
        });
    }

    let mut id = [0u8; 8];
    if let Some(src) = head.get(32..40) {
        id.copy_from_slice(src);
    }
    Ok(Header {
        shape,
        id: u64::from_le_bytes(id),
    })
}

/// Decodes the data block of `bytes` (already checked by [`read_header`]) into `parts`, in
/// order, and verifies the identity hash.
pub(crate) fn decode_into(
    bytes: &[u8],
    header: Header,
    parts: [&mut [f32]; 4],
) -> Result<(), Error> {
    let data = bytes.get(HEADER_LEN..).unwrap_or(&[]);
    let mut fnv = Fnv::new();
    fnv.write(&header_prefix(header.shape));
    fnv.write(data);
    let computed = fnv.finish();
    if computed != header.id {
        return Err(bad(ByteFault::Checksum {
            stored: header.id,
            computed,
        }));
    }

    let mut chunks = data.chunks_exact(4).enumerate();
    for part in parts {
        for (slot, (index, chunk)) in part.iter_mut().zip(&mut chunks) {
            let mut w = [0u8; 4];
            w.copy_from_slice(chunk);
            let v = f32::from_le_bytes(w);
            if !v.is_finite() {
                return Err(bad(ByteFault::Value { index }));
            }
            *slot = v;
        }
    }
    Ok(())
}
