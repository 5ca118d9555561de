//! Shared helpers for the SVD tests: factoring into owned buffers, invariant checks,
//! deterministic random numbers and exactly known test matrices.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the helpers"
)]

use unmix::svd::{self, Real, SvdError, SvdInfo, SvdOptions, SvdOutput};

/// An SVD in owned buffers, with the layout of `unmix::svd`.
pub struct Factored<T> {
    pub rows: usize,
    pub cols: usize,
    pub s: Vec<T>,
    pub u: Vec<T>,
    pub v: Vec<T>,
    pub info: SvdInfo,
}

pub fn factor<T: Real>(a: &[T], rows: usize, cols: usize) -> Result<Factored<T>, SvdError> {
    let q = rows.min(cols);
    let mut s = vec![T::ZERO; q];
    let mut u = vec![T::ZERO; rows * q];
    let mut v = vec![T::ZERO; cols * q];
    let mut scratch = vec![T::ZERO; svd::svd_scratch_len(rows, cols)];

    let out = SvdOutput::values(&mut s).with_u(&mut u).with_v(&mut v);
    let info = svd::svd(a, rows, cols, out, &mut scratch, SvdOptions::default())?;
    Ok(Factored {
        rows,
        cols,
        s,
        u,
        v,
        info,
    })
}

/// Measured departures of a factorisation from the SVD properties, all in `f64`.
#[derive(Debug)]
pub struct Departures {
    /// `max |U^T U - I|`.
    pub u_orthogonality: f64,
    /// `max |V^T V - I|`.
    pub v_orthogonality: f64,
    /// `||A - U S V^T||_F / max(||A||_F, tiny)`.
    pub reconstruction: f64,
}

fn gram_departure(x: &[f64], len: usize, count: usize) -> f64 {
    let mut worst: f64 = 0.0;
    for a in 0..count {
        for b in 0..count {
            let dot: f64 = (0..len).map(|i| x[a * len + i] * x[b * len + i]).sum();
            let expected = if a == b { 1.0 } else { 0.0 };
            worst = worst.max((dot - expected).abs());
        }
    }
    worst
}

/// Checks ordering, non-negativity and the sign convention exactly, and returns the
/// orthogonality and reconstruction departures for the caller to bound.
pub fn departures<T: Real>(a: &[T], f: &Factored<T>) -> Departures {
    let (rows, cols) = (f.rows, f.cols);
    let q = rows.min(cols);
    let s: Vec<f64> = f.s.iter().map(|x| x.to_f64()).collect();
    let u: Vec<f64> = f.u.iter().map(|x| x.to_f64()).collect();
    let v: Vec<f64> = f.v.iter().map(|x| x.to_f64()).collect();

    for j in 0..q {
        assert!(s[j] >= 0.0, "s[{j}] = {} is negative", s[j]);
        if j > 0 {
            assert!(s[j] <= s[j - 1], "s not descending at {j}: {:?}", s);
        }
    }

    let (short, len) = if rows >= cols { (&v, cols) } else { (&u, rows) };
    for j in 0..q {
        let vector = &short[j * len..(j + 1) * len];
        let mut largest = 0;
        for i in 0..len {
            if vector[i].abs() > vector[largest].abs() {
                largest = i;
            }
        }
        assert!(
            vector[largest] > 0.0,
            "sign convention broken for vector {j}: {vector:?}"
        );
    }

    let mut diff = 0.0;
    let mut norm = 0.0;
    for i in 0..rows {
        for k in 0..cols {
            let mut sum = 0.0;
            for j in 0..q {
                sum += u[j * rows + i] * s[j] * v[j * cols + k];
            }
            let entry = a[i * cols + k].to_f64();
            diff += (entry - sum) * (entry - sum);
            norm += entry * entry;
        }
    }
    Departures {
        u_orthogonality: gram_departure(&u, rows, q),
        v_orthogonality: gram_departure(&v, cols, q),
        reconstruction: diff.sqrt() / norm.sqrt().max(f64::MIN_POSITIVE),
    }
}

/// Asserts the departures are within `factor * max(rows, cols) * eps` of the type.
pub fn assert_svd_properties<T: Real>(a: &[T], f: &Factored<T>, factor: f64) {
    let d = departures(a, f);
    let eps = T::EPSILON.to_f64();
    let tol = factor * (f.rows.max(f.cols).max(1) as f64) * eps;
    assert!(
        d.u_orthogonality <= tol && d.v_orthogonality <= tol && d.reconstruction <= tol,
        "{}x{}: {d:?} exceeds {tol:e}",
        f.rows,
        f.cols
    );
}

/// SplitMix64: a small, fixed, well-mixed sequence so every run sees the same matrices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Row-major `n x n` orthogonal matrix: a product of `n` Householder reflections with
/// random vectors, formed in `f64`.
pub fn random_orthogonal(n: usize, rng: &mut Rng) -> Vec<f64> {
    let mut q = vec![0.0; n * n];
    for i in 0..n {
        q[i * n + i] = 1.0;
    }
    for _ in 0..n {
        let w: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
        let ww: f64 = w.iter().map(|x| x * x).sum();
        if ww == 0.0 {
            continue;
        }
        for col in 0..n {
            let dot: f64 = (0..n).map(|i| w[i] * q[i * n + col]).sum();
            for i in 0..n {
                q[i * n + col] -= 2.0 * dot / ww * w[i];
            }
        }
    }
    q
}

/// Row-major `rows x cols` matrix `U diag(s) V^T` with random orthogonal `U`, `V`, formed in
/// `f64`; `s` has `min(rows, cols)` entries.
pub fn with_singular_values(rows: usize, cols: usize, s: &[f64], rng: &mut Rng) -> Vec<f64> {
    let u = random_orthogonal(rows, rng);
    let v = random_orthogonal(cols, rng);
    let mut a = vec![0.0; rows * cols];
    for i in 0..rows {
        for k in 0..cols {
            a[i * cols + k] = (0..s.len())
                .map(|j| u[i * rows + j] * s[j] * v[k * cols + j])
                .sum();
        }
    }
    a
}

/// Row-major Sylvester-Hadamard matrix of order `n` (a power of 4) divided by `sqrt(n)`:
/// orthogonal, with every entry `±2^-log4(n)`, exactly representable.
pub fn scaled_hadamard(n: usize) -> Vec<f64> {
    let scale = 1.0 / (n as f64).sqrt();
    let mut h = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let negative = (i & j).count_ones() % 2 == 1;
            h[i * n + j] = if negative { -scale } else { scale };
        }
    }
    h
}

/// `count` Gaussian peaks of width `width` at `centres`, channel-major over `channels`.
pub fn gaussian_library(channels: usize, centres: &[f64], width: f64) -> Vec<f64> {
    let k = centres.len();
    let mut x = vec![0.0; channels * k];
    for i in 0..channels {
        for (j, &centre) in centres.iter().enumerate() {
            let z = (i as f64 - centre) / width;
            x[i * k + j] = (-0.5 * z * z).exp();
        }
    }
    x
}

pub fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

pub fn transpose<T: Copy>(a: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut t = Vec::with_capacity(a.len());
    for k in 0..cols {
        for i in 0..rows {
            t.push(a[i * cols + k]);
        }
    }
    t
}

/// Largest `|computed - reference| / reference` over the entries.
pub fn max_relative_error(computed: &[f64], reference: &[f64]) -> f64 {
    computed
        .iter()
        .zip(reference)
        .map(|(c, r)| (c - r).abs() / r.abs())
        .fold(0.0, f64::max)
}
