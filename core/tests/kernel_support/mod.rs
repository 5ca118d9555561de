//! Shared helpers of the kernel tests: random libraries, an independent `f64` reference (QR by
//! modified Gram-Schmidt with reorthogonalization, a different algorithm from the kernel's
//! Householder QR) and brute-force constrained least squares over every active set.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

use unmix::{Background, Shape};

/// A tiny deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * core::f64::consts::PI * v).cos()
    }
}

/// A library as `f32` values (what the kernel sees), channel-major.
#[derive(Clone, Debug)]
pub struct Library {
    pub shape: Shape,
    pub x: Vec<f32>,
}

impl Library {
    pub fn n(&self) -> usize {
        self.shape.channels
    }

    pub fn k(&self) -> usize {
        self.shape.phases
    }

    /// All columns (phases, then the Chebyshev background) in `f64`, column-major.
    pub fn columns_f64(&self) -> Vec<Vec<f64>> {
        let (n, k) = (self.n(), self.k());
        let mut cols: Vec<Vec<f64>> = (0..k)
            .map(|j| (0..n).map(|i| f64::from(self.x[i * k + j])).collect())
            .collect();
        for d in 0..self.shape.background.terms() {
            cols.push(
                (0..n)
                    .map(|i| {
                        let t = if n > 1 {
                            (2.0 * i as f64 - (n - 1) as f64) / (n - 1) as f64
                        } else {
                            0.0
                        };
                        chebyshev(d, t)
                    })
                    .collect(),
            );
        }
        cols
    }

    /// Prepares the library into a fresh vector.
    pub fn prepare(&self) -> Vec<f32> {
        let mut storage = vec![0.0f32; self.shape.prepared_len()];
        let mut scratch = vec![0.0f64; self.shape.prepare_scratch_len()];
        unmix::prepare(self.shape, &self.x, &mut storage, &mut scratch).expect("prepare");
        storage
    }

    /// `X w` in `f64` for original coefficients `w` (phases, then background).
    pub fn apply(&self, w: &[f64]) -> Vec<f64> {
        let cols = self.columns_f64();
        (0..self.n())
            .map(|i| cols.iter().zip(w).map(|(col, &wj)| col[i] * wj).sum())
            .collect()
    }
}

pub fn chebyshev(d: usize, t: f64) -> f64 {
    let (mut prev, mut cur) = (1.0, t);
    match d {
        0 => 1.0,
        1 => t,
        _ => {
            for _ in 1..d {
                let next = 2.0 * t * cur - prev;
                prev = cur;
                cur = next;
            }
            cur
        }
    }
}

/// A library `U diag(s) V^T` with singular values log-spaced from 1 down to `1 / cond`, then
/// column scales `10^e` with `e` uniform in `[-spread/2, spread/2]` decades.
pub fn conditioned(rng: &mut Rng, n: usize, k: usize, cond: f64, spread: f64) -> Library {
    let u = orthonormal(rng, n, k);
    let v = orthonormal(rng, k, k);
    let s: Vec<f64> = (0..k)
        .map(|i| {
            if k > 1 {
                cond.powf(-(i as f64) / (k - 1) as f64)
            } else {
                1.0
            }
        })
        .collect();
    let scales: Vec<f64> = (0..k)
        .map(|_| 10f64.powf(spread * (rng.uniform() - 0.5)))
        .collect();

    let mut x = vec![0.0f32; n * k];
    for i in 0..n {
        for j in 0..k {
            let mut acc = 0.0;
            for t in 0..k {
                acc += u[t][i] * s[t] * v[t][j];
            }
            x[i * k + j] = (acc * scales[j]) as f32;
        }
    }
    Library {
        shape: Shape::new(n, k, Background::None),
        x,
    }
}

/// `k` orthonormal vectors of length `n` (Gram-Schmidt of Gaussian vectors).
pub fn orthonormal(rng: &mut Rng, n: usize, k: usize) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = Vec::new();
    while out.len() < k {
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        for _ in 0..2 {
            for b in &out {
                let d = dot(b, &v);
                v.iter_mut().zip(b).for_each(|(x, y)| *x -= d * y);
            }
        }
        let norm = dot(&v, &v).sqrt();
        if norm > 1e-8 {
            out.push(v.iter().map(|x| x / norm).collect());
        }
    }
    out
}

/// Gaussian peaks: phase `j` has peaks at `centres[j]` (in channels) of width `width`.
pub fn peaks(n: usize, centres: &[&[f64]], width: f64, background: Background) -> Library {
    let k = centres.len();
    let mut x = vec![0.0f32; n * k];
    for (j, cs) in centres.iter().enumerate() {
        for i in 0..n {
            let v: f64 = cs
                .iter()
                .map(|c| (-0.5 * ((i as f64 - c) / width).powi(2)).exp())
                .sum();
            x[i * k + j] = (v + 1e-3) as f32;
        }
    }
    Library {
        shape: Shape::new(n, k, background),
        x,
    }
}

/// Random non-negative library (uniform values).
pub fn positive(rng: &mut Rng, n: usize, k: usize, background: Background) -> Library {
    let x = (0..n * k).map(|_| rng.uniform() as f32).collect();
    Library {
        shape: Shape::new(n, k, background),
        x,
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `f64` least squares over `cols` against `y`, by modified Gram-Schmidt applied twice on the
/// unit-scaled columns. Returns the original-unit coefficients, or `None` when dependent.
pub fn lstsq(cols: &[&[f64]], y: &[f64]) -> Option<Vec<f64>> {
    let m = cols.len();
    let norms: Vec<f64> = cols.iter().map(|c| dot(c, c).sqrt()).collect();
    let mut q: Vec<Vec<f64>> = cols
        .iter()
        .zip(&norms)
        .map(|(c, n)| c.iter().map(|v| v / n).collect())
        .collect();
    let mut r = vec![vec![0.0; m]; m];
    for j in 0..m {
        for _ in 0..2 {
            for i in 0..j {
                let d = dot(&q[i], &q[j]);
                r[i][j] += d;
                let qi = q[i].clone();
                q[j].iter_mut().zip(&qi).for_each(|(x, y)| *x -= d * y);
            }
        }
        let norm = dot(&q[j], &q[j]).sqrt();
        if norm < 1e-13 {
            return None;
        }
        r[j][j] = norm;
        q[j].iter_mut().for_each(|x| *x /= norm);
    }

    let z: Vec<f64> = q.iter().map(|qj| dot(qj, y)).collect();
    let mut u = vec![0.0; m];
    for i in (0..m).rev() {
        let s: f64 = (i + 1..m).map(|j| r[i][j] * u[j]).sum();
        u[i] = (z[i] - s) / r[i][i];
    }
    Some(u.iter().zip(&norms).map(|(u, n)| u / n).collect())
}

/// Scaled condition number estimate `||R||_F ||R^-1||_F` of the unit-scaled columns (an upper
/// bound on the 2-norm condition number, within a factor `m`).
pub fn condition(cols: &[&[f64]]) -> f64 {
    let m = cols.len();
    let mut inv_fro = 0.0;
    let norms: Vec<f64> = cols.iter().map(|c| dot(c, c).sqrt()).collect();
    let scaled: Vec<Vec<f64>> = cols
        .iter()
        .zip(&norms)
        .map(|(c, n)| c.iter().map(|v| v / n).collect())
        .collect();
    // ((X^T X)^-1)_jj = 1 / dist_j^2, dist_j = distance of column j from the others' span.
    for j in 0..m {
        let refs: Vec<&[f64]> = scaled.iter().map(|c| c.as_slice()).collect();
        let others: Vec<&[f64]> = refs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != j)
            .map(|(_, c)| *c)
            .collect();
        let dist = match lstsq(&others, refs[j]) {
            Some(w) => {
                let fit: Vec<f64> = (0..refs[j].len())
                    .map(|i| others.iter().zip(&w).map(|(c, wk)| c[i] * wk).sum())
                    .collect();
                let res: Vec<f64> = refs[j].iter().zip(&fit).map(|(a, b)| a - b).collect();
                dot(&res, &res).sqrt()
            }
            None => 0.0,
        };
        inv_fro += 1.0 / (dist * dist);
    }
    (m as f64).sqrt() * inv_fro.sqrt()
}

/// `||y - sum_j w_j col_j||^2` in `f64`.
pub fn objective(cols: &[Vec<f64>], w: &[f64], y: &[f64]) -> f64 {
    (0..y.len())
        .map(|i| {
            let f: f64 = cols.iter().zip(w).map(|(c, wj)| c[i] * wj).sum();
            (y[i] - f).powi(2)
        })
        .sum()
}

/// Brute-force NNLS (phases `>= 0`, the last `free` columns free) or, with `sum_to_one`,
/// FCLS: the best feasible least-squares solution over every subset of phases. The
/// equality-constrained subproblems eliminate the constraint through the first phase of the
/// subset.
pub fn brute_force(cols: &[Vec<f64>], phases: usize, y: &[f64], sum_to_one: bool) -> Vec<f64> {
    let m = cols.len();
    let mut best: Option<(f64, Vec<f64>)> = None;
    for subset in 0u32..(1 << phases) {
        if sum_to_one && subset == 0 {
            continue;
        }
        let idx: Vec<usize> = (0..phases)
            .filter(|j| subset & (1 << j) != 0)
            .chain(phases..m)
            .collect();
        let Some(w) = constrained(cols, &idx, phases, y, sum_to_one) else {
            continue;
        };
        if idx.iter().zip(&w).any(|(&j, &v)| j < phases && v < 0.0) {
            continue;
        }
        let mut full = vec![0.0; m];
        idx.iter().zip(&w).for_each(|(&j, &v)| full[j] = v);
        let obj = objective(cols, &full, y);
        if best.as_ref().is_none_or(|(b, _)| obj < *b) {
            best = Some((obj, full));
        }
    }
    best.map(|(_, w)| w).unwrap_or_else(|| vec![0.0; m])
}

fn constrained(
    cols: &[Vec<f64>],
    idx: &[usize],
    phases: usize,
    y: &[f64],
    sum_to_one: bool,
) -> Option<Vec<f64>> {
    if idx.is_empty() {
        return Some(Vec::new());
    }
    if !sum_to_one {
        let refs: Vec<&[f64]> = idx.iter().map(|&j| cols[j].as_slice()).collect();
        return lstsq(&refs, y);
    }

    // w_p = 1 - sum_{other phases} w_j: columns c_j - c_p against y - c_p.
    let p = idx[0];
    let rest = &idx[1..];
    let shifted: Vec<Vec<f64>> = rest
        .iter()
        .map(|&j| {
            if j < phases {
                cols[j].iter().zip(&cols[p]).map(|(a, b)| a - b).collect()
            } else {
                cols[j].clone()
            }
        })
        .collect();
    let rhs: Vec<f64> = y.iter().zip(&cols[p]).map(|(a, b)| a - b).collect();
    let refs: Vec<&[f64]> = shifted.iter().map(|c| c.as_slice()).collect();
    let w_rest = if rest.is_empty() {
        Vec::new()
    } else {
        lstsq(&refs, &rhs)?
    };
    let sum: f64 = rest
        .iter()
        .zip(&w_rest)
        .filter(|(j, _)| **j < phases)
        .map(|(_, w)| w)
        .sum();
    let mut w = vec![1.0 - sum];
    w.extend(w_rest);
    Some(w)
}

/// `f32` spectrum from `f64` values.
pub fn to_f32(y: &[f64]) -> Vec<f32> {
    y.iter().map(|&v| v as f32).collect()
}

pub fn to_f64(y: &[f32]) -> Vec<f64> {
    y.iter().map(|&v| f64::from(v)).collect()
}
