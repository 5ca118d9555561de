//! The small-matrix SVD and what is built on it, in `f32` and `f64`.
//!
//! Matrices of 1 to 12 rows and columns hold raw bit patterns, or generic values with graded
//! rows and columns, repeated or zero rows and columns and specials. Holds: no panic; a
//! non-finite entry is reported as the first one in row-major order; otherwise the
//! factorisation ends within its sweep cap, and on success the singular values are
//! descending, non-negative and (when `sqrt(rows cols) max |a_ij|` is representable, which
//! bounds them) finite, with unit singular vectors; rank and condition number agree with
//! them; the pseudo-inverse, low-rank approximation and denoising return or fail cleanly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use unmix::svd::{self, Real, SvdError, SvdOptions, SvdOutput, Threshold};
use unmix_fuzz::Input;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.one_in(2) {
        run::<f32>(&mut input);
    } else {
        run::<f64>(&mut input);
    }
});

/// Drawing matrix entries of one precision.
trait Entry: Real + core::fmt::Debug {
    const MAX: f64;
    fn raw(input: &mut Input) -> Self;
    fn from_f32(v: f32) -> Self;
}

impl Entry for f32 {
    const MAX: f64 = f32::MAX as f64;
    fn raw(input: &mut Input) -> Self {
        input.f32_bits()
    }
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Entry for f64 {
    const MAX: f64 = f64::MAX;
    fn raw(input: &mut Input) -> Self {
        input.f64_bits()
    }
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
}

fn run<T: Entry>(input: &mut Input) {
    let rows = input.range(1, 12);
    let cols = input.range(1, 12);
    let a = matrix::<T>(input, rows, cols);
    let q = rows.min(cols);

    let sweeps = if input.one_in(4) {
        input.range(0, 40) as u32
    } else {
        svd::DEFAULT_MAX_SWEEPS
    };
    let options = SvdOptions::default().with_max_sweeps(sweeps);
    let (mut s, mut u, mut v) = (
        vec![T::ZERO; q],
        vec![T::ZERO; rows * q],
        vec![T::ZERO; cols * q],
    );
    let mut scratch = vec![T::ZERO; svd::svd_scratch_len(rows, cols)];
    let out = SvdOutput::values(&mut s).with_u(&mut u).with_v(&mut v);
    let result = svd::svd(&a, rows, cols, out, &mut scratch, options);

    let first_bad = a.iter().position(|x| !x.is_finite());
    match (result, first_bad) {
        (Err(SvdError::NonFinite { row, col }), Some(at)) => {
            assert_eq!((row, col), (at / cols, at % cols));
            return;
        }
        (Err(SvdError::NoConvergence { sweeps: ran }), None) => {
            assert!(ran <= sweeps, "{ran} sweeps run, cap {sweeps}");
            return;
        }
        (Ok(info), None) => assert!(
            info.sweeps <= sweeps,
            "{} sweeps, cap {sweeps}",
            info.sweeps
        ),
        (result, _) => panic!(
            "svd of finite={} input gave {result:?}",
            first_bad.is_none()
        ),
    }

    let largest = a.iter().fold(0.0f64, |m, x| m.max(x.to_f64().abs()));
    let bounded = largest * ((rows * cols) as f64).sqrt() < T::MAX;
    for (j, &value) in s.iter().enumerate() {
        assert!(value >= T::ZERO, "s[{j}] = {value:?}");
        assert!(
            value.is_finite() || !bounded,
            "s[{j}] = {value:?} for max entry {largest}"
        );
        if j > 0 {
            assert!(value <= s[j - 1], "not descending: {s:?}");
        }
    }
    // Vectors of singular values below `sqrt(MIN_POSITIVE) max |a_ij|` are documented as an
    // arbitrary completion computed in the subnormal range: their norms are not checked.
    let tolerance = 64.0 * q as f64 * T::EPSILON.to_f64();
    let resolved = T::MIN_POSITIVE.to_f64().sqrt() * largest;
    for (vectors, len) in [(&u, rows), (&v, cols)] {
        for (j, vector) in vectors.chunks_exact(len).enumerate() {
            if s[j].to_f64() <= resolved {
                continue;
            }
            let norm: f64 = vector.iter().map(|x| x.to_f64() * x.to_f64()).sum();
            assert!(
                (norm.sqrt() - 1.0).abs() <= tolerance,
                "singular vector of norm {norm}: {rows} x {cols} {a:?}, s = {s:?}"
            );
        }
    }

    let threshold = match input.range(0, 2) {
        0 => Threshold::Default,
        1 => Threshold::Relative(T::raw(input)),
        _ => Threshold::Absolute(T::raw(input)),
    };
    let rank = svd::rank(&s, rows, cols, threshold);
    assert!(rank <= q);
    let condition = svd::condition_number(&s, rows, cols, Threshold::Default);
    assert!(
        condition >= T::ONE,
        "condition number {condition:?} of {s:?}"
    );

    let mut out = vec![T::ZERO; rows * cols];
    let mut scratch = vec![T::ZERO; svd::factor_scratch_len(rows, cols)];
    match svd::pseudo_inverse(&a, rows, cols, &mut out, threshold, &mut scratch) {
        Ok(kept) => assert!(kept <= q),
        Err(SvdError::NoConvergence { .. }) => {}
        Err(other) => panic!("pseudo-inverse of a finite matrix: {other:?}"),
    }
    let r = input.range(0, 13);
    match svd::low_rank_approximation(&a, rows, cols, r, &mut out, &mut scratch) {
        Ok(dropped) => assert!(dropped >= T::ZERO || !bounded, "dropped norm {dropped:?}"),
        Err(SvdError::NoConvergence { .. }) => {}
        Err(other) => panic!("low-rank approximation of a finite matrix: {other:?}"),
    }
    let mut spectra = a.clone();
    match svd::denoise_rows(&mut spectra, rows, cols, r, &mut scratch) {
        Ok(_) | Err(SvdError::NoConvergence { .. }) => {}
        Err(other) => panic!("denoising a finite stack: {other:?}"),
    }
}

/// Row-major entries: raw bit patterns, or generic values with graded rows or columns,
/// copied or zeroed rows and columns, and the odd special value.
fn matrix<T: Entry>(input: &mut Input, rows: usize, cols: usize) -> Vec<T> {
    if input.one_in(3) {
        return (0..rows * cols).map(|_| T::raw(input)).collect();
    }

    let row_scale: Vec<f32> = (0..rows)
        .map(|_| if input.one_in(3) { input.scale() } else { 1.0 })
        .collect();
    let col_scale: Vec<f32> = (0..cols)
        .map(|_| if input.one_in(3) { input.scale() } else { 1.0 })
        .collect();
    let mut a: Vec<T> = (0..rows * cols)
        .map(|at| T::from_f32(input.unit() * row_scale[at / cols] * col_scale[at % cols]))
        .collect();

    for _ in 0..input.range(0, 2) {
        let (from, to) = (input.range(0, rows - 1), input.range(0, rows - 1));
        let zero = input.one_in(2);
        for j in 0..cols {
            a[to * cols + j] = if zero { T::ZERO } else { a[from * cols + j] };
        }
    }
    for _ in 0..input.range(0, 2) {
        let (from, to) = (input.range(0, cols - 1), input.range(0, cols - 1));
        let zero = input.one_in(2);
        for i in 0..rows {
            a[i * cols + to] = if zero { T::ZERO } else { a[i * cols + from] };
        }
    }
    if input.one_in(8) {
        let at = input.range(0, rows * cols - 1);
        a[at] = T::raw(input);
    }
    a
}
