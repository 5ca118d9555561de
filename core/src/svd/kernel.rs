//! The factorisation itself: exact power-of-two scaling, Householder QR with column pivoting,
//! one-sided Jacobi on `R^T`, sorting, completion of null vectors, and the sign convention.
//!
//! The matrix is seen as a tall `p x q` matrix `T` (`p >= q`) through strides: `T = A` for
//! `rows >= cols`, `T = A^T` otherwise, without copying. With `T P = Q R` and the Jacobi
//! factorisation `R^T = W Vx^T`, `W = Ux S`, the SVD of `T` is
//!
//! ```text
//! T = (Q Vx) S (P Ux)^T
//! ```
//!
//! `Q Vx` are the vectors of length `p`, `P Ux` those of length `q`. Before the QR the rows
//! of `T` are sorted by decreasing largest magnitude (Cox and Higham, "Stability of
//! Householder QR factorization for weighted least squares problems", 1998): with that order
//! the pivoted QR is backward stable row by row, so rows graded over many orders of magnitude
//! keep their small singular values. The row order is kept in the scratch (as exact integers)
//! to put the long vectors back into the caller's row order.

use super::real::Real;
use super::{Buffer, MAX_DIM, SvdError, SvdInfo};

/// A `p x q` matrix over borrowed storage: element `(i, j)` is `data[i * rs + j * cs]`.
struct Tall<'a, T> {
    data: &'a mut [T],
    p: usize,
    q: usize,
    rs: usize,
    cs: usize,
}

impl<T: Real> Tall<'_, T> {
    fn at(&self, i: usize, j: usize) -> usize {
        i * self.rs + j * self.cs
    }

    fn get(&self, i: usize, j: usize) -> T {
        self.data[self.at(i, j)]
    }

    fn set(&mut self, i: usize, j: usize, value: T) {
        let at = self.at(i, j);
        self.data[at] = value;
    }

    /// Sum of squares of column `j` from row `from` down, in row order.
    fn sum_sq_below(&self, from: usize, j: usize) -> T {
        let mut acc = T::ZERO;
        for i in from..self.p {
            let x = self.get(i, j);
            acc += x * x;
        }
        acc
    }

    /// Largest magnitude in row `i`.
    fn row_max(&self, i: usize) -> T {
        let mut largest = T::ZERO;
        for j in 0..self.q {
            let magnitude = self.get(i, j).abs();
            if magnitude > largest {
                largest = magnitude;
            }
        }
        largest
    }

    fn swap_cols(&mut self, a: usize, b: usize) {
        for i in 0..self.p {
            let (ia, ib) = (self.at(i, a), self.at(i, b));
            self.data.swap(ia, ib);
        }
    }
}

/// Returns `Err(BufferTooSmall)` unless `got >= needed`.
pub(crate) fn need(buffer: Buffer, needed: usize, got: usize) -> Result<(), SvdError> {
    if got >= needed {
        Ok(())
    } else {
        Err(SvdError::BufferTooSmall {
            buffer,
            needed,
            got,
        })
    }
}

/// Checks the shape against [`MAX_DIM`] and returns `(rows * cols, min, max)`.
pub(crate) fn shape(rows: usize, cols: usize) -> Result<(usize, usize, usize), SvdError> {
    let q = rows.min(cols);
    match rows.checked_mul(cols) {
        Some(len) if q <= MAX_DIM => Ok((len, q, rows.max(cols))),
        _ => Err(SvdError::TooLarge { rows, cols }),
    }
}

/// Factors `a` (row-major `rows x cols`, overwritten) into `s`, `u`, `v`; see `svd_in_place`.
/// `work` holds `2 q^2` elements, `row_order` `2 p` (the row order and its sort keys).
#[expect(
    clippy::too_many_arguments,
    reason = "private kernel behind the documented public wrappers"
)]
pub(crate) fn decompose<T: Real>(
    a: &mut [T],
    rows: usize,
    cols: usize,
    s: &mut [T],
    u: Option<&mut [T]>,
    v: Option<&mut [T]>,
    work: &mut [T],
    row_order: &mut [T],
    max_sweeps: u32,
) -> Result<SvdInfo, SvdError> {
    let (len, q, p) = shape(rows, cols)?;
    need(Buffer::Matrix, len, a.len())?;
    need(Buffer::SingularValues, q, s.len())?;
    if let Some(u) = &u {
        need(Buffer::U, rows * q, u.len())?;
    }
    if let Some(v) = &v {
        need(Buffer::V, cols * q, v.len())?;
    }
    need(Buffer::Scratch, 2 * q * q, work.len())?;
    need(Buffer::Scratch, 2 * p, row_order.len())?;
    if p as f64 >= libm::ldexp(1.0, T::MANTISSA_DIGITS as i32) {
        return Err(SvdError::TooLarge { rows, cols });
    }
    if q == 0 {
        return Ok(SvdInfo { sweeps: 0 });
    }

    let exponent = scale_to_unit(&mut a[..len], cols)?;

    let (rs, cs) = if rows >= cols { (cols, 1) } else { (1, cols) };
    let mut t = Tall {
        data: &mut a[..len],
        p,
        q,
        rs,
        cs,
    };
    let (x, rest) = work.split_at_mut(q * q);
    let vx = &mut rest[..q * q];
    let (row_order, keys) = row_order[..2 * p].split_at_mut(p);
    sort_rows(&mut t, row_order, keys);

    let mut tau = [T::ZERO; MAX_DIM];
    let mut perm = [0u8; MAX_DIM];
    householder_qr(&mut t, &mut tau, &mut perm);

    for j in 0..q {
        for i in 0..q {
            x[j * q + i] = if i >= j { t.get(j, i) } else { T::ZERO };
            vx[j * q + i] = if i == j { T::ONE } else { T::ZERO };
        }
    }
    let (sweeps, converged) = jacobi(x, vx, q, max_sweeps);

    let mut sigma = [T::ZERO; MAX_DIM];
    let mut order = [0u8; MAX_DIM];
    let mut deficient = [false; MAX_DIM];
    for c in 0..q {
        let col = &x[c * q..(c + 1) * q];
        let sum_sq = dot(col, col);
        sigma[c] = sum_sq.sqrt();
        deficient[c] = sum_sq < T::MIN_POSITIVE;
        order[c] = c as u8;
    }
    sort_descending(&sigma[..q], &mut order[..q]);

    for pos in 0..q {
        let c = usize::from(order[pos]);
        if deficient[c] {
            complete(x, q, &order[..pos], c);
        } else {
            for value in &mut x[c * q..(c + 1) * q] {
                *value = *value / sigma[c];
            }
        }
    }

    let mut inverse = [0u8; MAX_DIM];
    for k in 0..q {
        inverse[usize::from(perm[k])] = k as u8;
    }
    let (mut long, mut short) = if rows >= cols { (u, v) } else { (v, u) };
    for pos in 0..q {
        let c = usize::from(order[pos]);
        let ux = &x[c * q..(c + 1) * q];
        s[pos] = sigma[c].scale_by_pow2(exponent);

        let mut largest = 0;
        let mut largest_abs = -T::ONE;
        for i in 0..q {
            let magnitude = ux[usize::from(inverse[i])].abs();
            if magnitude > largest_abs {
                largest = i;
                largest_abs = magnitude;
            }
        }
        let flip = ux[usize::from(inverse[largest])] < T::ZERO;

        if let Some(short) = short.as_deref_mut() {
            let out = &mut short[pos * q..(pos + 1) * q];
            for i in 0..q {
                let value = ux[usize::from(inverse[i])];
                out[i] = if flip { -value } else { value };
            }
        }
        if let Some(long) = long.as_deref_mut() {
            let out = &mut long[pos * p..(pos + 1) * p];
            out[..q].copy_from_slice(&vx[c * q..(c + 1) * q]);
            out[q..].fill(T::ZERO);
            apply_q(&t, &tau, out);
            unsort(out, row_order);
            if flip {
                for value in out.iter_mut() {
                    *value = -*value;
                }
            }
        }
    }

    if converged {
        Ok(SvdInfo { sweeps })
    } else {
        Err(SvdError::NoConvergence { sweeps })
    }
}

/// Rejects non-finite entries, then scales by `2^-e` so that `max |a| in [1/2, 1)`; returns
/// `e`. Power-of-two scaling is exact, and it keeps every later sum of squares (at most `p`)
/// far from overflow.
fn scale_to_unit<T: Real>(a: &mut [T], cols: usize) -> Result<i32, SvdError> {
    let mut largest = T::ZERO;
    for (index, &value) in a.iter().enumerate() {
        if !value.is_finite() {
            return Err(SvdError::NonFinite {
                row: index / cols,
                col: index % cols,
            });
        }
        let magnitude = value.abs();
        if magnitude > largest {
            largest = magnitude;
        }
    }
    if largest == T::ZERO {
        return Ok(0);
    }

    // A product with an exactly representable 2^-e is one correctly rounded operation, the
    // same value `scalbn` returns; `scalbn` is kept for factors outside the format's range.
    let exponent = largest.binary_exponent();
    let factor = T::ONE.scale_by_pow2(-exponent);
    if factor.is_finite() && factor > T::ZERO {
        for value in a.iter_mut() {
            *value = *value * factor;
        }
    } else {
        for value in a.iter_mut() {
            *value = value.scale_by_pow2(-exponent);
        }
    }
    Ok(exponent)
}

/// Sorts the rows of `t` by decreasing largest magnitude (heapsort of the keys, then one
/// in-place permutation of the rows by cycles); `order[i]` receives `1 + ` the original index
/// of sorted row `i`, an exact integer in `T` (the caller checked `p < 2^MANTISSA_DIGITS`).
/// `keys` (`p` elements) is clobbered. Cost `O(p q + p log p)`; the order of equal keys is
/// arbitrary but fixed.
fn sort_rows<T: Real>(t: &mut Tall<'_, T>, order: &mut [T], keys: &mut [T]) {
    let p = t.p;
    for i in 0..p {
        order[i] = T::from_usize(i + 1);
        keys[i] = t.row_max(i);
    }

    // A heap with the smallest key on top, so the smallest rows go to the end.
    let sift_down = |order: &mut [T], keys: &mut [T], mut root: usize, end: usize| {
        while 2 * root + 1 < end {
            let mut child = 2 * root + 1;
            if child + 1 < end && keys[child + 1] < keys[child] {
                child += 1;
            }
            if keys[child] >= keys[root] {
                break;
            }
            keys.swap(root, child);
            order.swap(root, child);
            root = child;
        }
    };
    for start in (0..p / 2).rev() {
        sift_down(order, keys, start, p);
    }
    for end in (1..p).rev() {
        keys.swap(0, end);
        order.swap(0, end);
        sift_down(order, keys, 0, end);
    }

    // Row j <- old row order[j] - 1, cycle by cycle; a negative key marks a placed row.
    let mut held = [T::ZERO; MAX_DIM];
    for start in 0..p {
        if keys[start] < T::ZERO {
            continue;
        }
        for (j, slot) in held[..t.q].iter_mut().enumerate() {
            *slot = t.get(start, j);
        }
        let mut j = start;
        for _ in 0..p {
            keys[j] = -T::ONE;
            let source = order[j].to_index() - 1;
            if source == start {
                for (l, &value) in held[..t.q].iter().enumerate() {
                    t.set(j, l, value);
                }
                break;
            }
            for l in 0..t.q {
                let value = t.get(source, l);
                t.set(j, l, value);
            }
            j = source;
        }
    }
}

/// Moves `y[i]` to `y[order[i] - 1]` in place, following the permutation's cycles and
/// marking visited entries of `order` by their sign (restored at the end).
fn unsort<T: Real>(y: &mut [T], order: &mut [T]) {
    for start in 0..y.len() {
        if order[start] < T::ZERO {
            continue;
        }
        let mut i = start;
        let mut carry = y[start];
        for _ in 0..y.len() {
            let target = order[i].to_index() - 1;
            order[i] = -order[i];
            core::mem::swap(&mut y[target], &mut carry);
            i = target;
            if i == start {
                break;
            }
        }
    }
    for slot in order.iter_mut() {
        *slot = slot.abs();
    }
}

/// Householder QR with column pivoting, `T P = Q R`, in place (LAPACK `geqp3` layout: `R` on
/// and above the diagonal, the reflector tails below it). The pivot is the remaining column
/// with the largest norm below the current row, recomputed exactly at every step rather than
/// downdated, and the first such column on ties.
fn householder_qr<T: Real>(t: &mut Tall<'_, T>, tau: &mut [T; MAX_DIM], perm: &mut [u8; MAX_DIM]) {
    let (p, q) = (t.p, t.q);
    for k in 0..q {
        perm[k] = k as u8;
    }

    for k in 0..q {
        let mut best = k;
        let mut best_norm = -T::ONE;
        for j in k..q {
            let norm = t.sum_sq_below(k, j);
            if norm > best_norm {
                best = j;
                best_norm = norm;
            }
        }
        if best != k {
            t.swap_cols(k, best);
            perm.swap(k, best);
        }

        // H = I - tau w w^T with w = (1, tail / (alpha - beta)) maps the column to beta e_k.
        let alpha = t.get(k, k);
        let tail = t.sum_sq_below(k + 1, k);
        if tail == T::ZERO {
            tau[k] = T::ZERO;
            continue;
        }
        let norm = (alpha * alpha + tail).sqrt();
        let beta = if alpha >= T::ZERO { -norm } else { norm };
        tau[k] = (beta - alpha) / beta;
        let scale = T::ONE / (alpha - beta);
        for i in k + 1..p {
            let scaled = t.get(i, k) * scale;
            t.set(i, k, scaled);
        }
        t.set(k, k, beta);

        for j in k + 1..q {
            let mut w = t.get(k, j);
            for i in k + 1..p {
                w += t.get(i, k) * t.get(i, j);
            }
            w = w * tau[k];
            t.set(k, j, t.get(k, j) - w);
            for i in k + 1..p {
                let updated = t.get(i, j) - w * t.get(i, k);
                t.set(i, j, updated);
            }
        }
    }
}

/// `y <- Q y = H_0 H_1 ... H_{q-1} y`, the reflectors applied last to first.
fn apply_q<T: Real>(t: &Tall<'_, T>, tau: &[T; MAX_DIM], y: &mut [T]) {
    for k in (0..t.q).rev() {
        if tau[k] == T::ZERO {
            continue;
        }
        let mut w = y[k];
        for i in k + 1..t.p {
            w += t.get(i, k) * y[i];
        }
        w = w * tau[k];
        y[k] -= w;
        for i in k + 1..t.p {
            y[i] -= w * t.get(i, k);
        }
    }
}

/// Sequential dot product, index 0 first.
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = T::ZERO;
    for (&x, &y) in a.iter().zip(b) {
        acc += x * y;
    }
    acc
}

/// One-sided Jacobi on the `q` columns of `x` (column-major `q x q`), accumulating the
/// rotations into `vx`. Cyclic by rows; a pair is rotated when
/// `|x_i . x_j| > sqrt(q) eps ||x_i|| ||x_j||`. Returns the sweeps run and whether the last
/// one rotated nothing.
fn jacobi<T: Real>(x: &mut [T], vx: &mut [T], q: usize, max_sweeps: u32) -> (u32, bool) {
    if q < 2 {
        return (0, true);
    }
    let tol = T::EPSILON * T::from_usize(q).sqrt();
    let huge = T::ONE / T::EPSILON;

    for sweep in 1..=max_sweeps {
        let mut rotated = false;
        for i in 0..q - 1 {
            for j in i + 1..q {
                let (head, rest) = x.split_at_mut(j * q);
                let xi = &mut head[i * q..(i + 1) * q];
                let xj = &mut rest[..q];
                let alpha = dot(xi, xi);
                let beta = dot(xj, xj);
                if alpha < T::MIN_POSITIVE || beta < T::MIN_POSITIVE {
                    continue;
                }
                let gamma = dot(xi, xj);
                if gamma.abs() <= tol * alpha.sqrt() * beta.sqrt() {
                    continue;
                }
                rotated = true;

                // tan of the angle that zeroes the new gamma; the smaller root of
                // t^2 + 2 zeta t - 1 = 0, with 1/(2 zeta) once zeta^2 would swamp the 1.
                let zeta = (beta - alpha) / (T::TWO * gamma);
                let tangent = if zeta.abs() > huge {
                    T::HALF / zeta
                } else {
                    let root = T::ONE / (zeta.abs() + (T::ONE + zeta * zeta).sqrt());
                    if zeta >= T::ZERO { root } else { -root }
                };
                let cosine = T::ONE / (T::ONE + tangent * tangent).sqrt();
                let sine = cosine * tangent;

                rotate(xi, xj, cosine, sine);
                let (head, rest) = vx.split_at_mut(j * q);
                rotate(&mut head[i * q..(i + 1) * q], &mut rest[..q], cosine, sine);
            }
        }
        if !rotated {
            return (sweep, true);
        }
    }
    (max_sweeps, false)
}

/// `(a, b) <- (c a - s b, s a + c b)`.
fn rotate<T: Real>(a: &mut [T], b: &mut [T], cosine: T, sine: T) {
    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
        let (xa, yb) = (*x, *y);
        *x = cosine * xa - sine * yb;
        *y = sine * xa + cosine * yb;
    }
}

/// Stable insertion sort of `order` by `sigma[order[..]]`, largest first.
fn sort_descending<T: Real>(sigma: &[T], order: &mut [u8]) {
    for i in 1..order.len() {
        let mut j = i;
        while j > 0 && sigma[usize::from(order[j])] > sigma[usize::from(order[j - 1])] {
            order.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Replaces column `c` of `x` (whose norm is too small to normalise) by a unit vector
/// orthogonal to the already final columns `accepted`: the unit vector `e_k` least covered by
/// them (`sum_a x_a[k]^2` smallest, first on ties), orthogonalised twice by Gram-Schmidt. Its
/// residual norm is at least `sqrt(1 - len/q)`, so the normalisation is safe.
fn complete<T: Real>(x: &mut [T], q: usize, accepted: &[u8], c: usize) {
    let mut best = 0;
    let mut best_mass = T::INFINITY;
    for k in 0..q {
        let mut mass = T::ZERO;
        for &a in accepted {
            let value = x[usize::from(a) * q + k];
            mass += value * value;
        }
        if mass < best_mass {
            best = k;
            best_mass = mass;
        }
    }

    for i in 0..q {
        x[c * q + i] = if i == best { T::ONE } else { T::ZERO };
    }
    for _ in 0..2 {
        for &a in accepted {
            let a = usize::from(a);
            let mut projection = T::ZERO;
            for i in 0..q {
                projection += x[a * q + i] * x[c * q + i];
            }
            for i in 0..q {
                let update = x[c * q + i] - projection * x[a * q + i];
                x[c * q + i] = update;
            }
        }
    }

    let col = &x[c * q..(c + 1) * q];
    let norm = dot(col, col).sqrt();
    for value in &mut x[c * q..(c + 1) * q] {
        *value = *value / norm;
    }
}
