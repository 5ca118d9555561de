//! Small dense kernels on the compressed `c x c` problem `min ||R u - z||`, all in `f32`.
//!
//! Every subproblem is solved by orthogonal transformations (Givens rotations) of columns of
//! `R`, never through normal equations, so the condition number is not squared.
//!
//! Arrays have a fixed width `W` (a const parameter, at least the column count `c` and at
//! most [`crate::MAX_COLUMNS`]) and every loop bound is clamped to it, so no index can go out
//! of range and no call allocates. The fit picks the smallest of a few widths that holds `c`:
//! zeroing and copying a 21 x 21 matrix per fit cost more than the whole solve for `c = 8` on a
//! Cortex-M4. Loops run over `0..c` only, so the width never changes a result's bits.

/// A vector of the compressed problem, `W` entries wide (`W >= c`).
pub(crate) type Vector<const W: usize> = [f32; W];
/// A small matrix, row-major: `m[row][column]`.
pub(crate) type Matrix<const W: usize> = [[f32; W]; W];

/// The relative tolerance on gradients, as a multiple of `c * f32::EPSILON * ||z||`.
const GRADIENT_TOLERANCE: f32 = 8.0;

/// `x > 0`, false for NaN.
fn positive(x: f32) -> bool {
    x > 0.0
}

pub(crate) fn abs(x: f32) -> f32 {
    if x < 0.0 { -x } else { x }
}

/// A rotation `(cos, sin, radius)` with `[cos sin; -sin cos] [a; b] = [radius; 0]`.
///
/// The radius is `sqrt(a^2 + b^2)` computed directly, or after scaling by `max(|a|, |b|)` when
/// that is above `1e18` or below `1e-18`, so squares can neither overflow nor underflow (two
/// entries near `1e-31`, as the far tails of two peaks give, once squared to a zero radius
/// and a NaN rotation). Both zero gives the identity.
fn givens(a: f32, b: f32) -> (f32, f32, f32) {
    let big = if abs(a) > abs(b) { abs(a) } else { abs(b) };
    if big == 0.0 {
        return (1.0, 0.0, 0.0);
    }

    let radius = if !(1e-18..=1e18).contains(&big) {
        let (x, y) = (a / big, b / big);
        big * libm::sqrtf(x * x + y * y)
    } else {
        libm::sqrtf(a * a + b * b)
    };
    (a / radius, b / radius, radius)
}

/// Rotates rows `top` and `low` of `m` over columns `from..cols` and the right-hand sides.
fn rotate<const W: usize>(
    m: &mut Matrix<W>,
    b: &mut Vector<W>,
    top: usize,
    low: usize,
    from: usize,
    cols: usize,
) {
    let (top, low) = (top.min(W - 1), low.min(W - 1));
    let cols = cols.min(W);
    let (cs, sn, radius) = givens(m[top][from.min(W - 1)], m[low][from.min(W - 1)]);

    for j in from + 1..cols {
        let (p, q) = (m[top][j], m[low][j]);
        m[top][j] = cs * p + sn * q;
        m[low][j] = cs * q - sn * p;
    }
    if from < cols {
        m[top][from] = radius;
        m[low][from] = 0.0;
    }

    let (p, q) = (b[top], b[low]);
    b[top] = cs * p + sn * q;
    b[low] = cs * q - sn * p;
}

/// Least squares `min ||m s - b||` for a `rows x cols` matrix (`cols <= rows`): Givens
/// triangularization that skips entries already zero (columns of `R` keep most of their
/// triangular structure), then back substitution.
///
/// Returns the column whose pivot vanished when the columns are exactly dependent.
fn least_squares<const W: usize>(
    m: &mut Matrix<W>,
    b: &mut Vector<W>,
    rows: usize,
    cols: usize,
    s: &mut Vector<W>,
) -> Result<(), usize> {
    let rows = rows.min(W);
    let cols = cols.min(rows);
    for k in 0..cols {
        for i in k + 1..rows {
            if m[i][k] != 0.0 {
                rotate(m, b, k, i, k, cols);
            }
        }
    }

    back_substitute(m, b, cols, s)
}

/// Solves the upper-triangular `m[..cols][..cols] s = b`.
pub(crate) fn back_substitute<const W: usize>(
    m: &Matrix<W>,
    b: &Vector<W>,
    cols: usize,
    s: &mut Vector<W>,
) -> Result<(), usize> {
    let cols = cols.min(W);
    for k in (0..cols).rev() {
        let mut acc = b[k];
        for j in k + 1..cols {
            acc -= m[k][j] * s[j];
        }

        if m[k][k] == 0.0 {
            return Err(k);
        }
        s[k] = acc / m[k][k];
    }
    Ok(())
}

/// Ridge: `min ||R u - z||^2 + sum_j (rho_j u_j)^2`, by rotating each penalty row
/// `rho_j e_j` into a copy of `R`. Rows with `rho_j = 0` are skipped, so all-zero `rho`
/// reproduces plain back substitution bit for bit.
pub(crate) fn ridge<const W: usize>(
    r: &Matrix<W>,
    z: &Vector<W>,
    rho: &Vector<W>,
    c: usize,
    u: &mut Vector<W>,
) -> Result<(), usize> {
    let c = c.min(W);
    let mut m = *r;
    let mut b = *z;

    for j in 0..c {
        if rho[j] == 0.0 {
            continue;
        }

        // The penalty row lives in two spare slots: a row of its own is not needed because
        // after rotating into rows j..c its contents are discarded.
        let mut row = [0.0f32; W];
        row[j] = rho[j];
        let mut extra = 0.0f32;
        for k in j..c {
            if row[k] == 0.0 {
                continue;
            }
            let (cs, sn, radius) = givens(m[k][k], row[k]);
            for t in k + 1..c {
                let (p, q) = (m[k][t], row[t]);
                m[k][t] = cs * p + sn * q;
                row[t] = cs * q - sn * p;
            }
            m[k][k] = radius;
            row[k] = 0.0;

            let (p, q) = (b[k], extra);
            b[k] = cs * p + sn * q;
            extra = cs * q - sn * p;
        }
    }

    back_substitute(&m, &b, c, u)
}

/// The compressed non-negative (and optionally sum-to-one) problem.
pub(crate) struct Problem<const W: usize> {
    /// `R`, upper triangular.
    pub(crate) r: Matrix<W>,
    /// `z = Q^T y`.
    pub(crate) z: Vector<W>,
    /// Constraint weights: the scale `d_j` for phases (so `sum_j a_j u_j` is the sum of the
    /// original phase coefficients), 0 for background columns.
    pub(crate) a: Vector<W>,
    /// Columns `c`.
    pub(crate) c: usize,
    /// Phases `k <= c`; columns `k..c` are free in sign.
    pub(crate) phases: usize,
}

/// What the active-set iteration ended with.
pub(crate) struct Outcome<const W: usize> {
    pub(crate) u: Vector<W>,
    pub(crate) iterations: u32,
    pub(crate) end: End,
}

/// How the active-set iteration ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum End {
    Converged,
    Cap,
    Singular,
}

const fn bit(j: usize) -> u32 {
    if j < 32 { 1 << j } else { 0 }
}

/// The bits of the first `k` columns, the phases.
const fn phase_bits(k: usize) -> u32 {
    if k < 32 { (1 << k) - 1 } else { u32::MAX }
}

impl<const W: usize> Problem<W> {
    pub(crate) fn dims(&self) -> (usize, usize) {
        let c = self.c.min(W);
        (c, self.phases.min(c))
    }

    /// `g = R^T (z - R u)`, the negative gradient of `||R u - z||^2 / 2`.
    pub(crate) fn gradient(&self, u: &Vector<W>) -> Vector<W> {
        let (c, _) = self.dims();
        let mut t = [0.0f32; W];
        for i in 0..c {
            let mut acc = self.z[i];
            for j in i..c {
                acc -= self.r[i][j] * u[j];
            }
            t[i] = acc;
        }

        let mut g = [0.0f32; W];
        for j in 0..c {
            let mut acc = 0.0f32;
            for i in 0..=j {
                acc += self.r[i][j] * t[i];
            }
            g[j] = acc;
        }
        g
    }

    /// The passive phase with the largest constraint weight (the elimination pivot), if any.
    fn pivot(&self, passive: u32) -> Option<usize> {
        let (_, k) = self.dims();
        let mut best: Option<(usize, f32)> = None;
        for j in 0..k {
            if passive & bit(j) == 0 {
                continue;
            }
            match best {
                Some((_, weight)) if self.a[j] <= weight => {}
                _ => best = Some((j, self.a[j])),
            }
        }
        best.map(|(j, _)| j)
    }

    /// Least squares over the passive columns, other entries of `s` zero. With `sum_to_one`
    /// the constraint `sum_j a_j s_j = 1` is eliminated through the pivot `m`:
    /// `s_m = (1 - sum_{j != m} a_j s_j) / a_m`, so the remaining columns become
    /// `r_j - (a_j / a_m) r_m` against the right-hand side `z - r_m / a_m`. The pivot has the
    /// largest weight, so every ratio is at most 1 (partial pivoting on the constraint).
    ///
    /// `m` is work space: every entry the solve reads is written first, so it is not cleared.
    fn solve_passive(
        &self,
        passive: u32,
        sum_to_one: bool,
        m: &mut Matrix<W>,
        s: &mut Vector<W>,
    ) -> Result<(), usize> {
        let (c, k) = self.dims();
        let pivot = if sum_to_one {
            self.pivot(passive)
        } else {
            None
        };

        let mut cols = [0usize; W];
        let mut n = 0;
        for j in 0..c {
            if passive & bit(j) != 0 && Some(j) != pivot && n < W {
                cols[n] = j;
                n += 1;
            }
        }

        let mut b = self.z;
        if let Some(p) = pivot {
            let ap = self.a[p.min(W - 1)];
            for i in 0..c {
                b[i] = self.z[i] - self.r[i][p.min(W - 1)] / ap;
            }
            for (t, &j) in cols.iter().take(n).enumerate() {
                let ratio = self.a[j.min(W - 1)] / ap;
                for i in 0..c {
                    let rj = self.r[i][j.min(W - 1)];
                    m[i][t] = rj - ratio * self.r[i][p.min(W - 1)];
                }
            }
        } else {
            for (t, &j) in cols.iter().take(n).enumerate() {
                for i in 0..c {
                    m[i][t] = self.r[i][j.min(W - 1)];
                }
            }
        }

        let mut sol = [0.0f32; W];
        least_squares(m, &mut b, c, n, &mut sol).map_err(|t| cols[t.min(W - 1)])?;

        *s = [0.0; W];
        for (&j, &value) in cols.iter().zip(&sol).take(n) {
            s[j.min(W - 1)] = value;
        }
        if let Some(p) = pivot {
            let p = p.min(W - 1);
            let mut sum = 0.0f32;
            for (&j, &value) in cols.iter().zip(&sol).take(n) {
                if j < k {
                    sum += self.a[j.min(W - 1)] * value;
                }
            }
            s[p] = (1.0 - sum) / self.a[p];
        }
        Ok(())
    }

    /// The phase whose entry most improves the fit, or `None` at a KKT point (every
    /// candidate's gradient within tolerance). With `sum_to_one` the gradient is taken along
    /// `e_j - (a_j / a_m) e_m`, which keeps the constraint.
    fn select(
        &self,
        g: &Vector<W>,
        passive: u32,
        blocked: u32,
        sum_to_one: bool,
        tol: f32,
    ) -> Option<usize> {
        let (_, k) = self.dims();
        let pivot = if sum_to_one {
            self.pivot(passive)
        } else {
            None
        };

        let mut best: Option<(usize, f32)> = None;
        for j in 0..k {
            if (passive | blocked) & bit(j) != 0 {
                continue;
            }
            let (v, limit) = match pivot {
                Some(p) => {
                    let ratio = self.a[j] / self.a[p.min(W - 1)];
                    (g[j] - ratio * g[p.min(W - 1)], tol * (1.0 + ratio))
                }
                None => (g[j], tol),
            };
            if v > limit && best.is_none_or(|(_, bv)| v > bv) {
                best = Some((j, v));
            }
        }
        best.map(|(j, _)| j)
    }

    /// The phase whose vertex `u = e_j / a_j` (all of the sum on phase `j`) lies closest to
    /// `z`, ignoring the background: the FCLS starting point.
    fn start_vertex(&self) -> usize {
        let (c, k) = self.dims();
        let mut best = (0usize, f32::INFINITY);
        for j in 0..k {
            let mut rz = 0.0f32;
            for i in 0..c {
                rz += self.r[i][j] * self.z[i];
            }
            let inv = 1.0 / self.a[j];
            let cost = inv * (inv - 2.0 * rz);
            if cost < best.1 {
                best = (j, cost);
            }
        }
        best.0
    }

    /// A feasible NNLS starting point from the unconstrained solution, in the manner of Bro
    /// and De Jong's warm start (*J. Chemometrics* 11, 1997): the phases whose unconstrained
    /// coefficient is positive, provided their restricted solution stays positive. A typical
    /// spectrum, whose present phases are all clearly positive, then costs one or two
    /// subproblem solves instead of one per phase. `None` (a cold start) when that point is
    /// not feasible or a solve is singular; the active-set iteration that follows checks
    /// optimality either way, so the answer does not depend on the start. It costs up to two
    /// iterations, and a cold start with background columns one more after a failure, so it
    /// is skipped when the cap cannot hold them all.
    fn warm_start(&self, work: &mut Matrix<W>, iterations: &mut u32) -> Option<(u32, Vector<W>)> {
        let (c, k) = self.dims();
        let mut all = 0u32;
        for j in 0..c {
            all |= bit(j);
        }

        // With every column passive the subproblem is `R` itself: back substitution.
        let mut s = [0.0f32; W];
        *iterations += 1;
        back_substitute(&self.r, &self.z, c, &mut s).ok()?;

        let mut passive = all;
        for j in 0..k {
            if !positive(s[j]) {
                passive &= !bit(j);
            }
        }
        if passive == all {
            return Some((passive, s));
        }

        *iterations += 1;
        self.solve_passive(passive, false, work, &mut s).ok()?;
        for j in 0..k {
            if passive & bit(j) != 0 && !positive(s[j]) {
                return None;
            }
        }
        Some((passive, s))
    }

    /// Lawson and Hanson's active-set method (*Solving Least Squares Problems*, 1974,
    /// chapter 23) on `min ||R u - z||` with `u_j >= 0` for phases and free background
    /// columns; with `sum_to_one` also `sum_j a_j u_j = 1`, kept exactly by every subproblem.
    ///
    /// Each counted iteration is one subproblem solve; at `cap` the last feasible point is
    /// returned with [`End::Cap`].
    pub(crate) fn active_set(&self, sum_to_one: bool, cap: u32) -> Outcome<W> {
        let (c, k) = self.dims();
        let mut passive = 0u32;
        for j in k..c {
            passive |= bit(j);
        }
        let vertex = sum_to_one.then(|| self.start_vertex());
        if let Some(v) = vertex {
            passive |= bit(v);
        }

        let mut zz = 0.0f32;
        for i in 0..c {
            zz += self.z[i] * self.z[i];
        }
        let tol = GRADIENT_TOLERANCE * c as f32 * f32::EPSILON * libm::sqrtf(zz);

        let mut work: Matrix<W> = [[0.0; W]; W];
        let mut u = [0.0f32; W];
        let mut iterations = 0u32;
        // A failed warm start is followed by the cold start's own solve when background
        // columns are passive: both must fit under the cap.
        let cold = u32::from(passive != 0);
        let warm = if sum_to_one || cap < 2 + cold {
            None
        } else {
            self.warm_start(&mut work, &mut iterations)
        };
        if let Some((start, start_u)) = warm {
            passive = start;
            u = start_u;
        } else if passive != 0 {
            iterations += 1;
            if self
                .solve_passive(passive, sum_to_one, &mut work, &mut u)
                .is_err()
            {
                // With the sum fixed at 1 the start vertex `u_v = 1 / a_v` is feasible; without
                // it, zero is.
                let mut feasible = [0.0f32; W];
                if let Some(v) = vertex
                    && let (Some(u), Some(&a)) = (feasible.get_mut(v), self.a.get(v))
                {
                    *u = 1.0 / a;
                }
                return Outcome {
                    u: feasible,
                    iterations,
                    end: End::Singular,
                };
            }
        }

        let mut blocked = 0u32;
        loop {
            let g = self.gradient(&u);
            let Some(entering) = self.select(&g, passive, blocked, sum_to_one, tol) else {
                return Outcome {
                    u,
                    iterations,
                    end: End::Converged,
                };
            };
            if iterations >= cap {
                return Outcome {
                    u,
                    iterations,
                    end: End::Cap,
                };
            }
            passive |= bit(entering);

            let mut first = true;
            loop {
                iterations += 1;
                let mut s = [0.0f32; W];
                let solved = self.solve_passive(passive, sum_to_one, &mut work, &mut s);

                // Rounding can make the entering column useless after all: leave it out.
                let entered = s.get(entering).copied().unwrap_or(0.0);
                if first && (solved.is_err() || !positive(entered)) {
                    passive &= !bit(entering);
                    blocked |= bit(entering);
                    break;
                }
                if solved.is_err() {
                    return Outcome {
                        u,
                        iterations,
                        end: End::Singular,
                    };
                }
                first = false;

                let mut feasible = true;
                for j in 0..k {
                    if passive & bit(j) != 0 && !positive(s[j]) {
                        feasible = false;
                    }
                }
                if feasible {
                    u = s;
                    blocked = 0;
                    break;
                }

                // Step from u towards s until the first passive phase reaches zero.
                let feasible_point = u;
                let mut alpha = 1.0f32;
                let mut leaving: Option<usize> = None;
                for j in 0..k {
                    if passive & bit(j) != 0 && !positive(s[j]) {
                        let step = u[j] / (u[j] - s[j]);
                        if step < alpha {
                            alpha = step;
                            leaving = Some(j);
                        }
                    }
                }
                for j in 0..c {
                    if passive & bit(j) != 0 {
                        u[j] += alpha * (s[j] - u[j]);
                    }
                }
                if let Some(j) = leaving {
                    u[j.min(W - 1)] = 0.0;
                }
                for j in 0..k {
                    if passive & bit(j) != 0 && !positive(u[j]) {
                        u[j] = 0.0;
                        passive &= !bit(j);
                    }
                }
                // With the sum fixed at 1 some phase stays positive in exact arithmetic; in a
                // badly conditioned problem rounding can zero them all. That point breaks the
                // constraint: stop at the last feasible one instead.
                if sum_to_one && passive & phase_bits(k) == 0 {
                    return Outcome {
                        u: feasible_point,
                        iterations,
                        end: End::Singular,
                    };
                }

                if iterations >= cap {
                    return Outcome {
                        u,
                        iterations,
                        end: End::Cap,
                    };
                }
            }
        }
    }
}
