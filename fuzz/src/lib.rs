//! Helpers shared by the fuzz targets: reading structured values out of libFuzzer's bytes.
//!
//! A target draws every choice (a size, a mode, a value) from an [`Input`]. While bytes last
//! they decide; once they run out a small generator seeded from the bytes seen takes over, so
//! a short input still yields a full, generic library or matrix, and the fuzzer can steer
//! any part of a long one bit by bit.

/// The fuzzer's bytes, read front to back.
pub struct Input<'a> {
    data: &'a [u8],
    state: u64,
}

impl<'a> Input<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input {
            data,
            state: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// The next byte; generated once the input is used up.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                self.state = (self.state ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
                b
            }
            None => self.generated().to_le_bytes()[7],
        }
    }

    /// Four bytes as a little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// Eight bytes as a little-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        let span = (hi - lo + 1) as u32;
        lo + (self.u32() % span) as usize
    }

    /// True with probability about `1 / n`.
    pub fn one_in(&mut self, n: u8) -> bool {
        self.byte() % n.max(1) == 0
    }

    /// Any `f32` bit pattern: NaN, infinities, subnormals, zeros included.
    pub fn f32_bits(&mut self) -> f32 {
        f32::from_bits(self.u32())
    }

    /// Any `f64` bit pattern.
    pub fn f64_bits(&mut self) -> f64 {
        f64::from_bits(self.u64())
    }

    /// A value in `[-1, 1)` from the generator alone, so that structured cases stay generic
    /// however few bytes the input has.
    pub fn unit(&mut self) -> f32 {
        let bits = (self.generated() >> 40) as u32;
        bits as f32 / (1u32 << 23) as f32 - 1.0
    }

    /// A power of ten from `1e-30` to `1e30`.
    pub fn scale(&mut self) -> f32 {
        let exponent = self.range(0, 60) as i32 - 30;
        10f32.powi(exponent)
    }

    /// Whatever bytes are left, consumed.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len()
    }

    /// xorshift64*, seeded by the bytes read so far.
    fn generated(&mut self) -> u64 {
        let mut x = self.state | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
