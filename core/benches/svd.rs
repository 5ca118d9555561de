//! Accuracy and time of `unmix::svd` against nalgebra's SVD on the same matrices.
//!
//! Run with `cargo bench -p unmix --bench svd`. For each matrix it prints the worst relative
//! error of the singular values against an exactly known reference, the orthogonality and
//! reconstruction departures, and the time per factorisation (best of several batches), for
//! `unmix` in `f64` and `f32` and for nalgebra in `f64` (`DMatrix::svd`, vectors included).

use std::hint::black_box;
use std::time::{Duration, Instant};

use nalgebra::DMatrix;
use unmix::svd::{self, Real, SvdOptions, SvdOutput};

/// SplitMix64, so every run sees the same matrices.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// A test matrix with its exactly known singular values, descending.
struct Case {
    name: &'static str,
    rows: usize,
    cols: usize,
    a: Vec<f64>,
    exact: Vec<f64>,
}

/// `D H / sqrt(n)` with a Sylvester-Hadamard `H` (`n` a power of 4) and `D` graded over
/// `2^-span`: every entry is one exact product and the singular values are `D`'s diagonal.
fn graded_hadamard(name: &'static str, n: usize, span: i32) -> Case {
    let scale = 1.0 / (n as f64).sqrt();
    let d: Vec<f64> = (0..n)
        .map(|i| 2f64.powi(-(((i * 7 + 3) % n) as i32) * span / (n as i32 - 1)))
        .collect();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let sign = if (i & j).count_ones() % 2 == 1 {
                -1.0
            } else {
                1.0
            };
            a[i * n + j] = sign * scale * d[i];
        }
    }
    let mut exact = d;
    exact.sort_by(|x, y| y.total_cmp(x));
    Case {
        name,
        rows: n,
        cols: n,
        a,
        exact,
    }
}

/// Row-major `n x n` product of `min(n, 16)` random Householder reflections (orthogonal
/// whatever their number; the cap keeps the 2048 x 2048 set-up short).
fn orthogonal(n: usize, rng: &mut Rng) -> Vec<f64> {
    let mut q = vec![0.0; n * n];
    for i in 0..n {
        q[i * n + i] = 1.0;
    }
    for _ in 0..n.min(16) {
        let w: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
        let ww: f64 = w.iter().map(|x| x * x).sum();
        for col in 0..n {
            let dot: f64 = (0..n).map(|i| w[i] * q[i * n + col]).sum();
            for i in 0..n {
                q[i * n + col] -= 2.0 * dot / ww * w[i];
            }
        }
    }
    q
}

/// `U diag(s) V^T` with `s` log-spaced from 1 down to `smallest`, formed in `f64` (so the
/// reference is exact only to about `eps` relative to `s_0`).
fn constructed(name: &'static str, rows: usize, cols: usize, smallest: f64, seed: u64) -> Case {
    let mut rng = Rng(seed);
    let q = rows.min(cols);
    let exact: Vec<f64> = (0..q)
        .map(|j| smallest.powf(j as f64 / (q.max(2) - 1) as f64))
        .collect();
    let u = orthogonal(rows, &mut rng);
    let v = orthogonal(cols, &mut rng);
    let mut a = vec![0.0; rows * cols];
    for i in 0..rows {
        for k in 0..cols {
            a[i * cols + k] = (0..q)
                .map(|j| u[i * rows + j] * exact[j] * v[k * cols + j])
                .sum();
        }
    }
    Case {
        name,
        rows,
        cols,
        a,
        exact,
    }
}

struct Measured {
    s_rel: f64,
    s_abs: f64,
    orthogonality: f64,
    reconstruction: f64,
    time: Duration,
}

fn departures(case: &Case, s: &[f64], u: &[f64], v: &[f64]) -> (f64, f64, f64, f64) {
    let (rows, cols) = (case.rows, case.cols);
    let q = rows.min(cols);
    let s0 = case.exact[0];
    let mut s_rel: f64 = 0.0;
    let mut s_abs: f64 = 0.0;
    for j in 0..q {
        let error = (s[j] - case.exact[j]).abs();
        s_rel = s_rel.max(error / case.exact[j]);
        s_abs = s_abs.max(error / s0);
    }

    let mut orthogonality: f64 = 0.0;
    for (x, len) in [(u, rows), (v, cols)] {
        for a in 0..q {
            for b in 0..q {
                let dot: f64 = (0..len).map(|i| x[a * len + i] * x[b * len + i]).sum();
                let expected = if a == b { 1.0 } else { 0.0 };
                orthogonality = orthogonality.max((dot - expected).abs());
            }
        }
    }

    let mut diff = 0.0;
    let mut norm = 0.0;
    for i in 0..rows {
        for k in 0..cols {
            let sum: f64 = (0..q)
                .map(|j| u[j * rows + i] * s[j] * v[j * cols + k])
                .sum();
            diff += (case.a[i * cols + k] - sum).powi(2);
            norm += case.a[i * cols + k].powi(2);
        }
    }
    (s_rel, s_abs, orthogonality, (diff / norm).sqrt())
}

/// Best time per call over 5 batches of at least 20 ms each.
fn time<F: FnMut()>(mut f: F) -> Duration {
    let mut reps = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..reps {
            f();
        }
        if start.elapsed() >= Duration::from_millis(20) || reps >= 1 << 20 {
            break;
        }
        reps *= 2;
    }
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed() / reps
        })
        .min()
        .unwrap_or_default()
}

fn run_unmix<T: Real>(case: &Case, convert: fn(f64) -> T) -> Measured {
    let (rows, cols) = (case.rows, case.cols);
    let q = rows.min(cols);
    let a: Vec<T> = case.a.iter().map(|&x| convert(x)).collect();
    let mut s = vec![T::ZERO; q];
    let mut u = vec![T::ZERO; rows * q];
    let mut v = vec![T::ZERO; cols * q];
    let mut scratch = vec![T::ZERO; svd::svd_scratch_len(rows, cols)];

    let factor = |s: &mut [T], u: &mut [T], v: &mut [T], scratch: &mut [T]| {
        let out = SvdOutput::values(s).with_u(u).with_v(v);
        svd::svd(
            black_box(&a),
            rows,
            cols,
            out,
            scratch,
            SvdOptions::default(),
        )
        .unwrap();
    };
    factor(&mut s, &mut u, &mut v, &mut scratch);
    let widen = |x: &[T]| -> Vec<f64> { x.iter().map(|y| y.to_f64()).collect() };
    let (s_rel, s_abs, orthogonality, reconstruction) =
        departures(case, &widen(&s), &widen(&u), &widen(&v));
    let time = time(|| factor(&mut s, &mut u, &mut v, &mut scratch));
    Measured {
        s_rel,
        s_abs,
        orthogonality,
        reconstruction,
        time,
    }
}

fn run_nalgebra(case: &Case) -> Measured {
    let (rows, cols) = (case.rows, case.cols);
    let q = rows.min(cols);
    let m = DMatrix::from_row_slice(rows, cols, &case.a);
    let svd = m.clone().svd(true, true);

    // Sort descending and lay the vectors out like unmix's.
    let mut order: Vec<usize> = (0..q).collect();
    order.sort_by(|&i, &j| svd.singular_values[j].total_cmp(&svd.singular_values[i]));
    let (su, svt) = (svd.u.as_ref().unwrap(), svd.v_t.as_ref().unwrap());
    let s: Vec<f64> = order.iter().map(|&j| svd.singular_values[j]).collect();
    let u: Vec<f64> = order
        .iter()
        .flat_map(|&j| (0..rows).map(move |i| su[(i, j)]))
        .collect();
    let v: Vec<f64> = order
        .iter()
        .flat_map(|&j| (0..cols).map(move |i| svt[(j, i)]))
        .collect();
    let (s_rel, s_abs, orthogonality, reconstruction) = departures(case, &s, &u, &v);
    let time = time(|| {
        black_box(black_box(&m).clone().svd(true, true));
    });
    Measured {
        s_rel,
        s_abs,
        orthogonality,
        reconstruction,
        time,
    }
}

fn main() {
    let cases = [
        constructed("random 8x8, cond 1e3", 8, 8, 1e-3, 1),
        constructed("random 16x16, cond 1e6", 16, 16, 1e-6, 2),
        constructed("random 64x64, cond 1e3", 64, 64, 1e-3, 3),
        constructed("library 2048x8, cond 1e4", 2048, 8, 1e-4, 4),
        constructed("wide 8x2048, cond 1e4", 8, 2048, 1e-4, 5),
        graded_hadamard("graded D*H 16x16, 2^-40", 16, 40),
        graded_hadamard("graded D*H 64x64, 2^-60", 64, 60),
        graded_hadamard("graded D*H 64x64, 2^-200", 64, 200),
    ];

    println!(
        "{:<28} {:<13} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "matrix", "method", "s rel err", "s err/s0", "orth", "recon", "time"
    );
    for case in &cases {
        let mut rows = vec![("unmix f64", run_unmix(case, |x| x))];
        // Below 2^-63 of the largest entry f32 has only absolute accuracy (documented limit).
        if case.exact[case.exact.len() - 1] / case.exact[0] > 2f64.powi(-63) {
            rows.push(("unmix f32", run_unmix(case, |x| x as f32)));
        }
        rows.push(("nalgebra f64", run_nalgebra(case)));
        for (method, m) in rows {
            println!(
                "{:<28} {:<13} {:>10.2e} {:>10.2e} {:>10.2e} {:>10.2e} {:>9.1} us",
                case.name,
                method,
                m.s_rel,
                m.s_abs,
                m.orthogonality,
                m.reconstruction,
                m.time.as_secs_f64() * 1e6
            );
        }
    }
}
