//! The baseline the kernel's NNLS is compared with: textbook Lawson-Hanson on the full matrix.
//!
//! This is the method of Lawson and Hanson, *Solving Least Squares Problems* (1974), chapter
//! 23, algorithm NNLS, as a per-spectrum solver that knows nothing prepared: it works on the
//! original `n x k` library `X` every time, the way `scipy.optimize.nnls` is called once per
//! spectrum. Each outer iteration forms the gradient `w = X^T (y - X x)` over the full matrix
//! (`2 n k` multiply-adds); each subproblem copies the passive columns `X_P` into a work
//! matrix and solves `min ||X_P s - y||` by Householder QR of that `n x |P|` matrix
//! (`2 n |P|^2` flops) and back substitution. Everything is `f32`, with no heap: the caller
//! lends an `n * k` work matrix and an `n` vector.
//!
//! Stopping: the outer loop ends when no inactive variable has a gradient above
//! [`TOLERANCE`] times the largest initial gradient, or when [`Outcome::iterations`] (the
//! number of subproblem solves, as the kernel counts them) reaches `3 k`, the default cap of
//! both the kernel and SciPy. A column whose subproblem value is not positive right after it
//! entered is set aside for that outer step, as the original Fortran does, so the loop cannot
//! cycle.

/// Most phases the baseline handles (the benchmark's largest library).
pub const MAX_K: usize = 16;

/// Relative size of the gradient below which an inactive variable is optimal. `f32` sums
/// of `n` products carry errors near `sqrt(n) * eps` relative to `X^T y`; 1e-4 stays clear
/// of that for `n <= 4096`.
pub const TOLERANCE: f32 = 1e-4;

/// How a solve ended.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// Subproblem solves.
    pub iterations: u32,
    /// Whether the optimality test passed before the cap.
    pub converged: bool,
}

/// Solves `min ||X x - y||` subject to `x >= 0` for the channel-major library `x_lib`
/// (`x_lib[i * k + j]`), writing `x` (`k` values).
///
/// `work` holds at least `n * k` values and `rhs` at least `n`.
///
/// # Panics
/// When `k > MAX_K` or a buffer is too short (caller bugs of the benchmark).
pub fn solve(
    x_lib: &[f32],
    n: usize,
    k: usize,
    y: &[f32],
    work: &mut [f32],
    rhs: &mut [f32],
    x: &mut [f32],
) -> Outcome {
    assert!(k <= MAX_K && x_lib.len() >= n * k && work.len() >= n * k && rhs.len() >= n);

    let cap = 3 * k as u32;
    let mut passive = [false; MAX_K];
    let mut w = [0.0f32; MAX_K];
    let mut s = [0.0f32; MAX_K];
    x[..k].fill(0.0);

    gradient(x_lib, n, k, y, x, rhs, &mut w);
    let largest = w[..k].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let tol = TOLERANCE * largest;
    let mut iterations = 0;

    loop {
        let mut entering = None;
        for j in 0..k {
            let better = entering.is_none_or(|e: usize| w[j] > w[e]);
            if !passive[j] && w[j] > tol && better {
                entering = Some(j);
            }
        }
        let Some(t) = entering else {
            return Outcome {
                iterations,
                converged: true,
            };
        };
        passive[t] = true;

        let mut first = true;
        loop {
            if iterations >= cap {
                return Outcome {
                    iterations,
                    converged: false,
                };
            }
            iterations += 1;
            passive_solve(x_lib, n, k, y, &passive, work, rhs, &mut s);

            if first && s[t] <= 0.0 {
                passive[t] = false;
                w[t] = 0.0;
                break;
            }
            first = false;

            if (0..k).all(|j| !passive[j] || s[j] > 0.0) {
                x[..k].copy_from_slice(&s[..k]);
                gradient(x_lib, n, k, y, x, rhs, &mut w);
                break;
            }

            let mut alpha = 1.0f32;
            let mut leaving = t;
            for j in 0..k {
                if passive[j] && s[j] <= 0.0 {
                    let step = x[j] / (x[j] - s[j]);
                    if step < alpha {
                        alpha = step;
                        leaving = j;
                    }
                }
            }
            for j in 0..k {
                if passive[j] {
                    x[j] += alpha * (s[j] - x[j]);
                    if j == leaving || x[j] <= 0.0 {
                        passive[j] = false;
                        x[j] = 0.0;
                    }
                }
            }
        }
    }
}

/// `w = X^T (y - X x)` over the full matrix, with the residual in `residual`.
fn gradient(
    x_lib: &[f32],
    n: usize,
    k: usize,
    y: &[f32],
    x: &[f32],
    residual: &mut [f32],
    w: &mut [f32; MAX_K],
) {
    for (i, r) in residual[..n].iter_mut().enumerate() {
        let row = &x_lib[i * k..(i + 1) * k];
        let fitted: f32 = row.iter().zip(x).map(|(a, b)| a * b).sum();
        *r = y[i] - fitted;
    }

    w.fill(0.0);
    for (row, &r) in x_lib.chunks_exact(k).zip(&residual[..n]) {
        for (acc, &a) in w.iter_mut().zip(row) {
            *acc += a * r;
        }
    }
}

/// The unconstrained least-squares solution on the passive columns, zero elsewhere, by
/// Householder QR of the copied `n x |P|` submatrix (column-major in `work`).
#[allow(clippy::too_many_arguments)]
fn passive_solve(
    x_lib: &[f32],
    n: usize,
    k: usize,
    y: &[f32],
    passive: &[bool; MAX_K],
    work: &mut [f32],
    rhs: &mut [f32],
    s: &mut [f32; MAX_K],
) {
    let mut columns = [0usize; MAX_K];
    let mut p = 0;
    for (j, _) in passive[..k].iter().enumerate().filter(|(_, on)| **on) {
        columns[p] = j;
        p += 1;
    }

    for (c, &j) in columns[..p].iter().enumerate() {
        let dst = &mut work[c * n..(c + 1) * n];
        for (i, v) in dst.iter_mut().enumerate() {
            *v = x_lib[i * k + j];
        }
    }
    rhs[..n].copy_from_slice(&y[..n]);

    let mut diagonal = [0.0f32; MAX_K];
    for c in 0..p {
        let (head, tail) = work.split_at_mut((c + 1) * n);
        let v = &mut head[c * n + c..c * n + n];

        let norm = libm::sqrtf(v.iter().map(|a| a * a).sum());
        let alpha = if v[0] > 0.0 { -norm } else { norm };
        diagonal[c] = alpha;
        v[0] -= alpha;
        let vtv: f32 = v.iter().map(|a| a * a).sum();
        if vtv == 0.0 {
            continue;
        }

        for d in 0..p - c - 1 {
            let col = &mut tail[d * n + c..d * n + n];
            reflect(v, vtv, col);
        }
        reflect(v, vtv, &mut rhs[c..n]);
    }

    s.fill(0.0);
    let mut solution = [0.0f32; MAX_K];
    for c in (0..p).rev() {
        let mut sum = rhs[c];
        for d in c + 1..p {
            sum -= work[d * n + c] * solution[d];
        }
        solution[c] = if diagonal[c] != 0.0 {
            sum / diagonal[c]
        } else {
            0.0
        };
    }
    for (c, &j) in columns[..p].iter().enumerate() {
        s[j] = solution[c];
    }
}

/// Applies `I - 2 v v^T / (v^T v)` to `a`.
fn reflect(v: &[f32], vtv: f32, a: &mut [f32]) {
    let dot: f32 = v.iter().zip(a.iter()).map(|(p, q)| p * q).sum();
    let factor = 2.0 * dot / vtv;
    for (q, p) in a.iter_mut().zip(v) {
        *q -= factor * p;
    }
}
