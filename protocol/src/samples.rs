//! Spectrum samples on the wire: raw little-endian values, converted to `f32` on arrival.

use serde::{Deserialize, Serialize};

use crate::{ErrorKind, frame::saturate};

/// How a spectrum's samples are encoded in [`crate::FitRequest::samples`].
///
/// Integer counts are converted to `f32` by IEEE round-to-nearest (exact up to `2^24`), the
/// same on every target, so a host that converts the same way predicts the device's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SampleFormat {
    /// `f32`, 4 bytes each: any value, bit for bit.
    F32,
    /// `u16` counts, 2 bytes each: half the bytes of `f32` for detectors that count below
    /// 65,536 per channel.
    U16,
    /// `u32` counts, 4 bytes each.
    U32,
}

impl SampleFormat {
    /// Bytes per sample.
    pub const fn size(self) -> usize {
        match self {
            SampleFormat::U16 => 2,
            SampleFormat::F32 | SampleFormat::U32 => 4,
        }
    }

    /// Whether `value` travels unchanged in this format: any value for `F32`, otherwise an
    /// integer within the format's range.
    pub fn represents(self, value: f32) -> bool {
        match self {
            SampleFormat::F32 => true,
            SampleFormat::U16 => (0.0..=65_535.0).contains(&value) && value == trunc(value),
            SampleFormat::U32 => (0.0..4_294_967_296.0).contains(&value) && value == trunc(value),
        }
    }
}

/// `value` rounded toward zero, for `|value| < 2^32` (larger `f32` are integers already).
fn trunc(value: f32) -> f32 {
    if value.abs() < 4_294_967_296.0 {
        value as i64 as f32
    } else {
        value
    }
}

/// Writes `values` into `out` in `format` and returns the number of bytes written.
///
/// Returns `None`, leaving `out` partly written, when `out` is shorter than
/// `values.len() * format.size()` or a value does not travel unchanged in `format`
/// ([`SampleFormat::represents`]).
pub fn encode_samples(format: SampleFormat, values: &[f32], out: &mut [u8]) -> Option<usize> {
    let len = values.len().checked_mul(format.size())?;
    let out = out.get_mut(..len)?;

    for (&value, slot) in values.iter().zip(out.chunks_exact_mut(format.size())) {
        if !format.represents(value) {
            return None;
        }
        match format {
            SampleFormat::F32 => slot.copy_from_slice(&value.to_le_bytes()),
            SampleFormat::U16 => slot.copy_from_slice(&(value as u16).to_le_bytes()),
            SampleFormat::U32 => slot.copy_from_slice(&(value as u32).to_le_bytes()),
        }
    }
    Some(len)
}

/// Converts the samples in `bytes` into `out`, which must receive exactly `out.len()` of them.
///
/// # Errors
/// [`ErrorKind::WrongLength`] when `bytes` does not hold exactly `out.len()` samples (a
/// partial trailing sample counts as one); [`ErrorKind::NonFinite`] naming the first NaN or
/// infinite sample. `out` is unspecified after an error.
pub fn decode_samples(
    format: SampleFormat,
    bytes: &[u8],
    out: &mut [f32],
) -> Result<(), ErrorKind> {
    let size = format.size();
    if bytes.len() != out.len() * size {
        return Err(ErrorKind::WrongLength {
            expected: saturate(out.len()),
            found: saturate(bytes.len().div_ceil(size)),
        });
    }

    for (channel, (slot, raw)) in out.iter_mut().zip(bytes.chunks_exact(size)).enumerate() {
        let value = match (format, raw) {
            (SampleFormat::F32, &[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
            (SampleFormat::U32, &[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as f32,
            (SampleFormat::U16, &[a, b]) => f32::from(u16::from_le_bytes([a, b])),
            _ => f32::NAN,
        };
        if !value.is_finite() {
            return Err(ErrorKind::NonFinite {
                channel: saturate(channel),
            });
        }
        *slot = value;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_trip_in_every_format() {
        let values = [0.0, 1.0, 65_535.0, 7.0];
        for format in [SampleFormat::F32, SampleFormat::U16, SampleFormat::U32] {
            let mut bytes = [0u8; 16];
            let len = encode_samples(format, &values, &mut bytes).unwrap();
            assert_eq!(len, 4 * format.size());

            let mut back = [0.0f32; 4];
            decode_samples(format, &bytes[..len], &mut back).unwrap();
            assert_eq!(back, values);
        }
    }

    #[test]
    fn values_a_format_cannot_carry_are_refused() {
        let mut bytes = [0u8; 8];
        assert_eq!(
            encode_samples(SampleFormat::U16, &[65_536.0], &mut bytes),
            None
        );
        assert_eq!(encode_samples(SampleFormat::U16, &[1.5], &mut bytes), None);
        assert_eq!(encode_samples(SampleFormat::U32, &[-1.0], &mut bytes), None);
        assert_eq!(
            encode_samples(SampleFormat::F32, &[1.0, 2.0, 3.0], &mut bytes),
            None
        );
    }

    #[test]
    fn wrong_length_names_both_counts() {
        let mut out = [0.0f32; 4];
        let partial = decode_samples(SampleFormat::F32, &[0u8; 13], &mut out);
        assert_eq!(
            partial,
            Err(ErrorKind::WrongLength {
                expected: 4,
                found: 4
            })
        );

        let short = decode_samples(SampleFormat::U16, &[0u8; 6], &mut out);
        assert_eq!(
            short,
            Err(ErrorKind::WrongLength {
                expected: 4,
                found: 3
            })
        );
    }

    #[test]
    fn the_first_non_finite_channel_is_named() {
        let mut bytes = [0u8; 12];
        let values = [1.0, f32::NAN, f32::INFINITY];
        encode_samples(SampleFormat::F32, &values, &mut bytes).unwrap();

        let mut out = [0.0f32; 3];
        let error = decode_samples(SampleFormat::F32, &bytes, &mut out);
        assert_eq!(error, Err(ErrorKind::NonFinite { channel: 1 }));
    }
}
