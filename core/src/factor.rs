//! Preparing a reference library: column scaling, then Householder QR in `f64`.
//!
//! The library `X` (`n` channels by `k` phases) is extended by optional Chebyshev background
//! columns `T_0 .. T_d`, evaluated at the channels mapped linearly onto `[-1, 1]`. Each column
//! is scaled to unit 2-norm (`D = diag(1 / ||x_j||)`), and the scaled matrix is factored as
//! `X D = Q R` by Householder reflections (Golub & Van Loan, *Matrix Computations*, 4th ed.,
//! section 5.2.1); the thin `Q` is then accumulated backwards from the reflectors (section
//! 5.1.6). The signs are fixed so that `R` has a positive diagonal, which makes the factors
//! unique.
//!
//! Everything is computed in `f64` and rounded once to `f32` for storage. `f64` basic
//! operations round correctly on every target, soft-float included, and the order of every
//! sum is fixed, so a library prepared on a microcontroller and one prepared on a desktop give
//! the same bits. In exact arithmetic the stored factors satisfy `X D = Q R`; after rounding,
//! every stored entry is the correctly rounded `f64` factor, whose own error is of order
//! `n * 2^-53 * cond(X D)`, far below the `f32` storage precision for `cond(X D) <= 1e6`.
//!
//! Columns are not pivoted: a column whose distance from the span of the columns before it
//! (after unit scaling, so `|R_jj|`) is below [`RANK_TOLERANCE`] is reported as
//! [`Error::RankDeficient`] with its index.

use crate::{Error, MAX_COLUMNS, MAX_DEGREE, MAX_PHASES, PreparedView};

/// Smallest accepted `|R_jj|` after unit column scaling: `16 * f32::EPSILON`, about `1.9e-6`.
///
/// A library whose scaled condition number is near `1 / RANK_TOLERANCE` still prepares, but
/// its `f32` fit loses about that factor in relative accuracy; `unmix inspect` reports it.
pub const RANK_TOLERANCE: f64 = 16.0 * f32::EPSILON as f64;

/// An optional polynomial background fitted beside the phases, free in sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Background {
    /// No background columns.
    #[default]
    None,
    /// Chebyshev polynomials `T_0 .. T_degree` over the channel range mapped onto `[-1, 1]`,
    /// `degree` at most [`MAX_DEGREE`].
    Chebyshev {
        /// Highest polynomial degree.
        degree: u8,
    },
}

impl Background {
    /// Number of background columns: 0, or `degree + 1`.
    pub const fn terms(self) -> usize {
        match self {
            Background::None => 0,
            Background::Chebyshev { degree } => degree as usize + 1,
        }
    }

    /// The background with `terms` columns: `None` for 0, else degree `terms - 1`.
    ///
    /// # Errors
    /// [`Error::TooManyColumns`] when `terms > MAX_DEGREE + 1`.
    pub const fn from_terms(terms: usize) -> Result<Self, Error> {
        if terms == 0 {
            Ok(Background::None)
        } else if terms <= MAX_DEGREE + 1 {
            Ok(Background::Chebyshev {
                degree: (terms - 1) as u8,
            })
        } else {
            Err(Error::TooManyColumns {
                phases: 0,
                background_terms: terms,
            })
        }
    }
}

/// The sizes of a prepared library: channels, phases and background.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    /// Channels per spectrum (`n`).
    pub channels: usize,
    /// Reference phases (`k`), 1 to [`MAX_PHASES`].
    pub phases: usize,
    /// Background columns beside the phases.
    pub background: Background,
}

impl Shape {
    /// A shape; [`Shape::validate`] checks it.
    pub const fn new(channels: usize, phases: usize, background: Background) -> Self {
        Shape {
            channels,
            phases,
            background,
        }
    }

    /// Total columns `c`: phases plus background terms.
    pub const fn columns(&self) -> usize {
        self.phases + self.background.terms()
    }

    /// Number of `f32` values a prepared library of this shape occupies.
    pub const fn prepared_len(&self) -> usize {
        prepared_len(self.channels, self.columns())
    }

    /// Number of `f64` scratch values [`prepare`] needs for this shape.
    pub const fn prepare_scratch_len(&self) -> usize {
        prepare_scratch_len(self.channels, self.columns())
    }

    /// Number of bytes of the serialized form ([`PreparedView::to_bytes`]).
    pub const fn bytes_len(&self) -> usize {
        crate::bytes::HEADER_LEN + 4 * self.prepared_len()
    }

    /// Checks the capacities: 1 to [`MAX_PHASES`] phases, degree at most [`MAX_DEGREE`], at
    /// most [`MAX_CHANNELS`](crate::MAX_CHANNELS) channels, and at least as many channels as
    /// columns.
    ///
    /// # Errors
    /// [`Error::NoPhases`], [`Error::TooManyColumns`], [`Error::TooManyChannels`] or
    /// [`Error::TooFewChannels`].
    pub const fn validate(&self) -> Result<(), Error> {
        let terms = self.background.terms();
        if self.phases == 0 {
            return Err(Error::NoPhases);
        }
        if self.phases > MAX_PHASES || terms > MAX_DEGREE + 1 {
            return Err(Error::TooManyColumns {
                phases: self.phases,
                background_terms: terms,
            });
        }
        if self.channels > crate::MAX_CHANNELS {
            return Err(Error::TooManyChannels {
                channels: self.channels,
            });
        }
        if self.channels < self.columns() {
            return Err(Error::TooFewChannels {
                channels: self.channels,
                columns: self.columns(),
            });
        }
        Ok(())
    }
}

/// Number of `f32` values of a prepared library with `channels` channels and `columns`
/// columns: `Q` (`n * c`), `R` (`c * c`), the scales and the standard-error factors (`c`
/// each).
pub const fn prepared_len(channels: usize, columns: usize) -> usize {
    channels * columns + columns * columns + 2 * columns
}

/// Number of `f64` scratch values [`prepare`] needs: the working matrix (`n * c`), `R`
/// (`c * c`) and the reflector coefficients (`c`). For `n = 2048, c = 8` that is 128.5 KiB, so
/// small devices load a library prepared elsewhere ([`PreparedView::from_bytes`]) instead.
pub const fn prepare_scratch_len(channels: usize, columns: usize) -> usize {
    channels * columns + columns * columns + columns
}

/// Prepares `library` into `out` and returns a view of it.
///
/// `library` holds `shape.channels * shape.phases` values, channel-major:
/// `library[i * phases + j]` is phase `j` at channel `i`. `out` must hold exactly
/// [`Shape::prepared_len`] values and `scratch` at least [`Shape::prepare_scratch_len`]. The
/// method and its accuracy are described in the module docs. The result depends only on the
/// inputs, never on the target.
///
/// # Errors
/// Shape errors from [`Shape::validate`]; [`Error::LengthMismatch`] for a wrongly sized
/// buffer; [`Error::NonFiniteLibrary`] naming the first non-finite value;
/// [`Error::RankDeficient`] naming the first column that depends on the ones before it;
/// [`Error::Overflow`] when a standard-error factor exceeds `f32` (a phase of norm near the
/// smallest normal `f32`, nearly parallel to another).
pub fn prepare<'a>(
    shape: Shape,
    library: &[f32],
    out: &'a mut [f32],
    scratch: &mut [f64],
) -> Result<PreparedView<'a>, Error> {
    shape.validate()?;
    check_len(out.len(), shape.prepared_len())?;

    let n = shape.channels;
    let c = shape.columns();
    let (q, rest) = out.split_at_mut(n * c);
    let (r, rest) = rest.split_at_mut(c * c);
    let (scale, se) = rest.split_at_mut(c);
    prepare_parts(shape, library, [q, r, scale, se], scratch)?;

    PreparedView::new(shape, out)
}

/// [`prepare`] into the four parts `Q`, `R`, scales and standard-error factors, whose lengths
/// the caller has checked against `shape`.
pub(crate) fn prepare_parts(
    shape: Shape,
    library: &[f32],
    parts: [&mut [f32]; 4],
    scratch: &mut [f64],
) -> Result<(), Error> {
    shape.validate()?;

    let n = shape.channels;
    let c = shape.columns();
    check_len(library.len(), n * shape.phases)?;
    if scratch.len() < shape.prepare_scratch_len() {
        return Err(Error::LengthMismatch {
            expected: shape.prepare_scratch_len(),
            found: scratch.len(),
        });
    }

    let (a, rest) = scratch.split_at_mut(n * c);
    let (r, rest) = rest.split_at_mut(c * c);
    let (tau, _) = rest.split_at_mut(c);

    let mut scale = [0.0f64; MAX_COLUMNS];
    fill_columns(shape, library, a)?;
    scale_columns(a, c, &mut scale)?;

    householder(a, n, c, tau)?;
    extract_r(a, c, r);
    accumulate_q(a, n, c, tau);
    fix_signs(a, r, n, c);

    let mut se = [0.0f64; MAX_COLUMNS];
    inverse_row_norms(r, c, &mut se);

    let [q_out, r_out, scale_out, se_out] = parts;
    for (o, &v) in q_out.iter_mut().zip(a.iter()) {
        *o = v as f32;
    }
    for (o, &v) in r_out.iter_mut().zip(r.iter()) {
        *o = v as f32;
    }
    for (j, (s, e)) in scale_out.iter_mut().zip(se_out.iter_mut()).enumerate() {
        let (d, f) = (scale.get(j).copied(), se.get(j).copied());
        *s = d.unwrap_or(0.0) as f32;
        *e = (d.unwrap_or(0.0) * f.unwrap_or(0.0)) as f32;
        if !e.is_finite() {
            // The byte format stores finite values only; this library could not load back.
            return Err(Error::Overflow);
        }
    }
    Ok(())
}

fn check_len(found: usize, expected: usize) -> Result<(), Error> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::LengthMismatch { expected, found })
    }
}

/// The background basis at channel `i` of `n`: `T_0(t), T_1(t), ...` (one per element of
/// `out`, by the three-term recurrence in `f64`) at `t = (2 i - (n - 1)) / (n - 1)`, which
/// maps the channels onto `[-1, 1]` (`t = 0` for a single channel). The numerator is an
/// exact integer, so `t` is correctly rounded. The kernel's background columns are these
/// values; a plot of a fitted background evaluates them the same way.
pub fn chebyshev_terms(i: usize, n: usize, out: &mut [f64]) {
    let t = if n > 1 {
        (2.0 * i as f64 - (n - 1) as f64) / (n - 1) as f64
    } else {
        0.0
    };

    let (mut prev, mut cur) = (1.0f64, t);
    for (d, dst) in out.iter_mut().enumerate() {
        *dst = match d {
            0 => 1.0,
            1 => t,
            _ => {
                let next = 2.0 * t * cur - prev;
                prev = cur;
                cur = next;
                next
            }
        };
    }
}

/// Copies the phases and evaluates the Chebyshev background into `a` (channel-major, `c`
/// columns), checking that every library value is finite.
fn fill_columns(shape: Shape, library: &[f32], a: &mut [f64]) -> Result<(), Error> {
    let n = shape.channels;
    let k = shape.phases;
    let c = shape.columns();

    for (i, (row, lib)) in a
        .chunks_exact_mut(c)
        .zip(library.chunks_exact(k))
        .enumerate()
    {
        for (j, (dst, &v)) in row.iter_mut().zip(lib).enumerate() {
            if !v.is_finite() {
                return Err(Error::NonFiniteLibrary {
                    channel: i,
                    column: j,
                });
            }
            *dst = f64::from(v);
        }

        if let Some(background) = row.get_mut(k..) {
            chebyshev_terms(i, n, background);
        }
    }
    Ok(())
}

/// Scales every column of `a` to unit 2-norm, recording `1 / norm` in `scale`.
fn scale_columns(a: &mut [f64], c: usize, scale: &mut [f64; MAX_COLUMNS]) -> Result<(), Error> {
    let mut sumsq = [0.0f64; MAX_COLUMNS];
    for row in a.chunks_exact(c) {
        for (s, &v) in sumsq.iter_mut().zip(row) {
            *s += v * v;
        }
    }

    for j in 0..c.min(MAX_COLUMNS) {
        let norm = libm::sqrt(sumsq[j]);
        if !(norm.is_finite() && norm > 0.0) {
            return Err(Error::RankDeficient { column: j });
        }
        scale[j] = 1.0 / norm;
    }

    for row in a.chunks_exact_mut(c) {
        for (v, &s) in row.iter_mut().zip(scale.iter()) {
            *v *= s;
        }
    }
    Ok(())
}

/// Householder QR in place: `R` in the upper triangle, reflector `j` below the diagonal of
/// column `j` with an implicit leading 1, its coefficient in `tau[j]`.
fn householder(a: &mut [f64], n: usize, c: usize, tau: &mut [f64]) -> Result<(), Error> {
    for k in 0..c {
        let at = |i: usize, j: usize| i * c + j;
        let alpha = a.get(at(k, k)).copied().unwrap_or(0.0);
        let mut xx = 0.0f64;
        for i in k + 1..n {
            let v = a.get(at(i, k)).copied().unwrap_or(0.0);
            xx += v * v;
        }

        // |R_kk| = norm is the distance of scaled column k from the span of columns 0..k.
        let norm = libm::sqrt(alpha * alpha + xx);
        if !(norm.is_finite() && norm > RANK_TOLERANCE) {
            return Err(Error::RankDeficient { column: k });
        }
        let beta = if alpha >= 0.0 { -norm } else { norm };
        let t = (beta - alpha) / beta;
        let inv = 1.0 / (alpha - beta);
        for i in k + 1..n {
            if let Some(v) = a.get_mut(at(i, k)) {
                *v *= inv;
            }
        }
        if let Some(v) = a.get_mut(at(k, k)) {
            *v = beta;
        }
        if let Some(slot) = tau.get_mut(k) {
            *slot = t;
        }

        for j in k + 1..c {
            let mut s = a.get(at(k, j)).copied().unwrap_or(0.0);
            for i in k + 1..n {
                s += a.get(at(i, k)).copied().unwrap_or(0.0)
                    * a.get(at(i, j)).copied().unwrap_or(0.0);
            }
            s *= t;

            if let Some(v) = a.get_mut(at(k, j)) {
                *v -= s;
            }
            for i in k + 1..n {
                let vk = a.get(at(i, k)).copied().unwrap_or(0.0);
                if let Some(v) = a.get_mut(at(i, j)) {
                    *v -= s * vk;
                }
            }
        }
    }
    Ok(())
}

/// Copies the upper triangle of `a` into `r` (`c * c`, row-major), zeros below.
fn extract_r(a: &[f64], c: usize, r: &mut [f64]) {
    for (i, (dst, src)) in r.chunks_exact_mut(c).zip(a.chunks_exact(c)).enumerate() {
        for (j, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
            *d = if j >= i { s } else { 0.0 };
        }
    }
}

/// Overwrites `a` with the thin `Q = H_0 H_1 ... H_{c-1} [I; 0]`, applying the reflectors
/// backwards so that each one acts only on the columns it can change.
fn accumulate_q(a: &mut [f64], n: usize, c: usize, tau: &[f64]) {
    let at = |i: usize, j: usize| i * c + j;
    for k in (0..c).rev() {
        let t = tau.get(k).copied().unwrap_or(0.0);

        for j in k + 1..c {
            let mut s = 0.0f64;
            for i in k + 1..n {
                s += a.get(at(i, k)).copied().unwrap_or(0.0)
                    * a.get(at(i, j)).copied().unwrap_or(0.0);
            }
            s *= t;

            if let Some(v) = a.get_mut(at(k, j)) {
                *v = -s;
            }
            for i in k + 1..n {
                let vk = a.get(at(i, k)).copied().unwrap_or(0.0);
                if let Some(v) = a.get_mut(at(i, j)) {
                    *v -= s * vk;
                }
            }
        }

        for i in 0..n {
            if let Some(v) = a.get_mut(at(i, k)) {
                *v = if i < k {
                    0.0
                } else if i == k {
                    1.0 - t
                } else {
                    -t * *v
                };
            }
        }
    }
}

/// Makes the diagonal of `R` positive by flipping row `j` of `R` and column `j` of `Q`.
fn fix_signs(q: &mut [f64], r: &mut [f64], n: usize, c: usize) {
    for j in 0..c {
        if r.get(j * c + j).copied().unwrap_or(0.0) >= 0.0 {
            continue;
        }
        for v in r.iter_mut().skip(j * c).take(c) {
            *v = -*v;
        }
        for i in 0..n {
            if let Some(v) = q.get_mut(i * c + j) {
                *v = -*v;
            }
        }
    }
}

/// `norms[j]` = 2-norm of row `j` of `R^-1`, i.e. `sqrt(((R^T R)^-1)_jj)`, by solving
/// `R x = e_k` for every `k` and accumulating the squares.
fn inverse_row_norms(r: &[f64], c: usize, norms: &mut [f64; MAX_COLUMNS]) {
    let c = c.min(MAX_COLUMNS);
    let rr = |i: usize, j: usize| r.get(i * c + j).copied().unwrap_or(1.0);
    let mut acc = [0.0f64; MAX_COLUMNS];

    for k in 0..c {
        let mut x = [0.0f64; MAX_COLUMNS];
        x[k] = 1.0 / rr(k, k);
        for i in (0..k).rev() {
            let mut s = 0.0f64;
            for j in i + 1..=k {
                s += rr(i, j) * x[j];
            }
            x[i] = -s / rr(i, i);
        }
        for i in 0..=k {
            acc[i] += x[i] * x[i];
        }
    }

    for j in 0..c {
        norms[j] = libm::sqrt(acc[j]);
    }
}
