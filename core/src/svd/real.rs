//! The floating-point types the SVD runs on: `f32` and `f64`, through `libm` only.
//!
//! Every method is an IEEE basic operation or a `libm` function, so the same input gives the
//! same bits on every target. The trait is sealed: the algorithms rely on the two IEEE binary
//! formats and make no sense for other number types.

use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, Mul, Neg, Sub, SubAssign};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A real IEEE binary floating-point type (`f32` or `f64`) the SVD routines are generic over.
///
/// Sealed: implemented for `f32` and `f64` only.
pub trait Real:
    sealed::Sealed
    + Copy
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// `2`.
    const TWO: Self;
    /// `1/2`.
    const HALF: Self;
    /// The machine epsilon: the gap between 1 and the next larger number.
    const EPSILON: Self;
    /// The smallest positive normal number.
    const MIN_POSITIVE: Self;
    /// Positive infinity.
    const INFINITY: Self;

    /// Correctly rounded square root (`libm`).
    fn sqrt(self) -> Self;

    /// Absolute value (clears the sign bit).
    fn abs(self) -> Self;

    /// `true` unless the value is NaN or infinite.
    fn is_finite(self) -> bool;

    /// `self * 2^n`, exact unless the result over- or underflows (`libm::scalbn`).
    fn scale_by_pow2(self, n: i32) -> Self;

    /// The exponent `e` with `self = f * 2^e`, `0.5 <= |f| < 1` (`libm::frexp`); 0 for zero.
    fn binary_exponent(self) -> i32;

    /// `n` converted with one IEEE rounding (exact below 2^24 for `f32`, 2^53 for `f64`).
    fn from_usize(n: usize) -> Self;

    /// Exact widening to `f64`.
    fn to_f64(self) -> f64;

    /// Truncation to `usize` (saturating; used for indices stored as exact integers).
    fn to_index(self) -> usize;

    /// Bits of precision: integers up to `2^MANTISSA_DIGITS` are exact.
    const MANTISSA_DIGITS: u32;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const TWO: Self = 2.0;
    const HALF: Self = 0.5;
    const EPSILON: Self = f32::EPSILON;
    const MIN_POSITIVE: Self = f32::MIN_POSITIVE;
    const INFINITY: Self = f32::INFINITY;

    fn sqrt(self) -> Self {
        libm::sqrtf(self)
    }

    fn abs(self) -> Self {
        libm::fabsf(self)
    }

    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }

    fn scale_by_pow2(self, n: i32) -> Self {
        libm::scalbnf(self, n)
    }

    fn binary_exponent(self) -> i32 {
        libm::frexpf(self).1
    }

    fn from_usize(n: usize) -> Self {
        n as f32
    }

    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    fn to_index(self) -> usize {
        self as usize
    }

    const MANTISSA_DIGITS: u32 = f32::MANTISSA_DIGITS;
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const TWO: Self = 2.0;
    const HALF: Self = 0.5;
    const EPSILON: Self = f64::EPSILON;
    const MIN_POSITIVE: Self = f64::MIN_POSITIVE;
    const INFINITY: Self = f64::INFINITY;

    fn sqrt(self) -> Self {
        libm::sqrt(self)
    }

    fn abs(self) -> Self {
        libm::fabs(self)
    }

    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }

    fn scale_by_pow2(self, n: i32) -> Self {
        libm::scalbn(self, n)
    }

    fn binary_exponent(self) -> i32 {
        libm::frexp(self).1
    }

    fn from_usize(n: usize) -> Self {
        n as f64
    }

    fn to_f64(self) -> f64 {
        self
    }

    fn to_index(self) -> usize {
        self as usize
    }

    const MANTISSA_DIGITS: u32 = f64::MANTISSA_DIGITS;
}
