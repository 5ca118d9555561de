//! Singular value decomposition of small matrices, and what is built on it: pseudo-inverse,
//! rank, condition number, best low-rank approximation, and library diagnostics.
//!
//! # Method
//!
//! For a `rows x cols` matrix `A` with `q = min(rows, cols) <= 64` (the other dimension is
//! not limited), the thin SVD is
//!
//! ```text
//! A = U diag(s) V^T,   s_0 >= s_1 >= ... >= s_{q-1} >= 0,   U^T U = V^T V = I_q.
//! ```
//!
//! It is computed by one-sided Jacobi (Hestenes, 1958) preconditioned by a QR factorisation
//! with column pivoting, the arrangement of Drmač and Veselić ("New fast and accurate Jacobi
//! SVD algorithm", SIAM J. Matrix Anal. Appl. 29, 2008):
//!
//! 1. Validate and scale `A` by a power of two so that `max |a_ij|` lies in `[1/2, 1)`: exact,
//!    and no later sum of squares can overflow.
//! 2. Work on the tall orientation `T` (`A` itself, or `A^T` through strides when
//!    `rows < cols`), sort its rows by decreasing largest magnitude, and factor `T P = Q R`
//!    with Householder reflections and column pivoting.
//! 3. Orthogonalise the columns of `X = R^T` by plane rotations, `X Vx = W`, sweeping the
//!    pairs cyclically until no pair has `|x_i . x_j| > sqrt(q) eps ||x_i|| ||x_j||` (at most
//!    [`DEFAULT_MAX_SWEEPS`] sweeps, reported as [`SvdError::NoConvergence`] when hit).
//! 4. `s_j = ||w_j||`, `Ux = W S^-1`, so `T = (Q Vx) S (P Ux)^T`. Sort descending; null
//!    vectors (columns too small to normalise) are completed to an orthonormal set.
//!
//! # Accuracy
//!
//! Jacobi on the pivoted `R^T` computes every singular value with a *relative* error of a
//! small multiple of `q eps` times the condition number of `A` after its columns (or rows)
//! are scaled to unit norm, instead of the absolute `eps s_0` of bidiagonalisation methods.
//! Graded matrices (`B D` or `D B` with well-conditioned `B` and any diagonal `D`) therefore
//! keep all their digits: `core/tests/svd.rs` checks matrices graded over 2^-120 in `f64`
//! to a relative error of a few `q eps`. In every case
//! `|s_j - s_j(exact)| <= c q eps s_0` and `U S V^T` reproduces `A` to `O(q eps) s_0`; the
//! singular vectors of values above the limit below are orthonormal to `O(q eps)`.
//!
//! Limits: singular values below `sqrt(MIN_POSITIVE) max|a_ij|` (about `1e-19` of the largest
//! entry in `f32`, `1e-154` in `f64`) are computed with absolute accuracy only, and their
//! singular vectors only roughly orthonormal (for values just below the limit, norms off by
//! up to `5e-4` were seen in `f32` by the fuzz target). Such values lie far below any rank
//! threshold, so the pseudo-inverse, rank and low-rank approximation never use them.
//!
//! # Identical bits
//!
//! Only `+ - * /`, `libm::sqrt`, `libm::scalbn` and `libm::frexp`, in a fixed order with no
//! fused multiply-add and no target-dependent path, so the results are the same bits on
//! every target. `svd(A^T)` is exactly `svd(A)` with `U` and `V` swapped when `A` is not
//! square (the arithmetic is the same, only the strides differ).
//!
//! # Sign convention
//!
//! Each singular vector pair `(u_j, v_j)` is only defined up to a common sign. The sign is
//! fixed on the pair's vector of length `q`: `v_j` when `rows >= cols`, `u_j` when
//! `rows < cols`. Its entry of largest magnitude (the first of equal ones) is positive.
//!
//! # Storage
//!
//! Matrices are row-major slices with run-time `rows` and `cols` (`a[i * cols + j]`). The
//! singular vectors are written one after another: `u[j * rows + i]` is entry `i` of `u_j`,
//! `v[j * cols + i]` entry `i` of `v_j`. The caller provides all storage; the `*_scratch_len`
//! functions say how much. [`Svd`] owns fixed-size storage for compile-time shapes and runs the
//! same code on it.
//!
//! # Why not nalgebra's SVD
//!
//! nalgebra is used elsewhere for what it does well, but its SVD (bidiagonalisation and
//! implicit-shift QR) loses the relative accuracy of small singular values that a library
//! check needs, leaves the signs of the vectors unspecified, and for run-time sizes needs a
//! heap. The benchmark `cargo bench -p unmix --bench svd` compares the two on the same
//! matrices.

mod kernel;
mod real;

pub mod diagnostics;

pub use real::Real;

use kernel::{decompose, need, shape};

/// Largest `min(rows, cols)` accepted. The other dimension is not limited.
pub const MAX_DIM: usize = 64;

/// Default cap on Jacobi sweeps. Pivoted-QR preconditioning typically converges in 4 to 8.
pub const DEFAULT_MAX_SWEEPS: u32 = 30;

/// Which caller-provided buffer was too small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Buffer {
    /// The input matrix `a`.
    Matrix,
    /// The singular values `s`.
    SingularValues,
    /// The left singular vectors `u`.
    U,
    /// The right singular vectors `v`.
    V,
    /// The scratch buffer.
    Scratch,
    /// The result matrix (pseudo-inverse, approximation).
    Output,
}

/// Why an SVD routine failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SvdError {
    /// Entry `(row, col)` of the input is NaN or infinite (the first one in row-major order).
    NonFinite {
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
    },
    /// `min(rows, cols)` exceeds [`MAX_DIM`], or `rows * cols` overflows.
    TooLarge {
        /// Rows asked for.
        rows: usize,
        /// Columns asked for.
        cols: usize,
    },
    /// A caller-provided buffer holds fewer than `needed` elements.
    BufferTooSmall {
        /// Which buffer.
        buffer: Buffer,
        /// Elements needed.
        needed: usize,
        /// Elements provided.
        got: usize,
    },
    /// The Jacobi sweep cap was reached with pairs still not orthogonal. The outputs hold the
    /// last iterate: orthonormal vectors and singular values that are usually still accurate
    /// to a few digits, but without the guarantees.
    NoConvergence {
        /// Sweeps run.
        sweeps: u32,
    },
}

/// What a successful factorisation reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SvdInfo {
    /// Jacobi sweeps run, the final one (which rotated nothing) included.
    pub sweeps: u32,
}

/// Options for the factorisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct SvdOptions {
    /// Cap on Jacobi sweeps; [`DEFAULT_MAX_SWEEPS`] by default.
    pub max_sweeps: u32,
}

impl Default for SvdOptions {
    fn default() -> Self {
        Self {
            max_sweeps: DEFAULT_MAX_SWEEPS,
        }
    }
}

impl SvdOptions {
    /// These options with another sweep cap.
    #[must_use]
    pub const fn with_max_sweeps(mut self, max_sweeps: u32) -> Self {
        self.max_sweeps = max_sweeps;
        self
    }
}

/// Where the factorisation writes its results: singular values always, vectors on request.
#[derive(Debug)]
pub struct SvdOutput<'a, T> {
    s: &'a mut [T],
    u: Option<&'a mut [T]>,
    v: Option<&'a mut [T]>,
}

impl<'a, T> SvdOutput<'a, T> {
    /// Singular values only, into `s` (at least `min(rows, cols)` elements).
    pub fn values(s: &'a mut [T]) -> Self {
        Self {
            s,
            u: None,
            v: None,
        }
    }

    /// Also the left singular vectors, `u[j * rows + i]` (at least `rows * min(rows, cols)`).
    #[must_use]
    pub fn with_u(mut self, u: &'a mut [T]) -> Self {
        self.u = Some(u);
        self
    }

    /// Also the right singular vectors, `v[j * cols + i]` (at least `cols * min(rows, cols)`).
    #[must_use]
    pub fn with_v(mut self, v: &'a mut [T]) -> Self {
        self.v = Some(v);
        self
    }
}

/// Scratch elements [`svd_in_place`] needs: `2 min(rows, cols)^2 + 2 max(rows, cols)`.
pub const fn svd_in_place_scratch_len(rows: usize, cols: usize) -> usize {
    let (q, p) = if rows < cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    2 * q * q + 2 * p
}

/// Scratch elements [`svd`] needs: a copy of the matrix plus [`svd_in_place_scratch_len`].
pub const fn svd_scratch_len(rows: usize, cols: usize) -> usize {
    rows * cols + svd_in_place_scratch_len(rows, cols)
}

/// Thin SVD of the row-major `rows x cols` matrix `a`, which is overwritten (it holds the
/// Householder vectors afterwards). See the [module docs](self) for method, accuracy, sign
/// convention and layout.
///
/// Cost: about `2 p q^2` flops for the QR (`p = max`, `q = min` of the dimensions), `6 q^3`
/// per Jacobi sweep, and `2 p q^2` more for the long vectors when requested. Stack: two
/// arrays of 64 elements of `T` and four of 64 bytes, about 1.3 KiB for `f64` and 0.8 KiB
/// for `f32` plus the call frames; measured on the Cortex-M4F (`cargo xtask bench`, `f32`,
/// values only, through [`svd`]): 856 bytes.
///
/// # Errors
///
/// [`SvdError::TooLarge`], [`SvdError::BufferTooSmall`] (nothing is written), or
/// [`SvdError::NonFinite`] (nothing written, `a` untouched) before any work;
/// [`SvdError::NoConvergence`] after it, with the outputs holding the last iterate.
pub fn svd_in_place<T: Real>(
    a: &mut [T],
    rows: usize,
    cols: usize,
    out: SvdOutput<'_, T>,
    scratch: &mut [T],
    options: SvdOptions,
) -> Result<SvdInfo, SvdError> {
    let (_, q, _) = shape(rows, cols)?;
    need(
        Buffer::Scratch,
        svd_in_place_scratch_len(rows, cols),
        scratch.len(),
    )?;

    let (work, row_order) = scratch.split_at_mut(2 * q * q);
    decompose(
        a,
        rows,
        cols,
        out.s,
        out.u,
        out.v,
        work,
        row_order,
        options.max_sweeps,
    )
}

/// As [`svd_in_place`], leaving `a` intact: it is copied into the front of `scratch`
/// ([`svd_scratch_len`] elements).
///
/// # Errors
///
/// As [`svd_in_place`].
pub fn svd<T: Real>(
    a: &[T],
    rows: usize,
    cols: usize,
    out: SvdOutput<'_, T>,
    scratch: &mut [T],
    options: SvdOptions,
) -> Result<SvdInfo, SvdError> {
    let (len, _, _) = shape(rows, cols)?;
    need(Buffer::Matrix, len, a.len())?;
    need(Buffer::Scratch, svd_scratch_len(rows, cols), scratch.len())?;

    let (copy, work) = scratch.split_at_mut(len);
    copy.copy_from_slice(&a[..len]);
    svd_in_place(copy, rows, cols, out, work, options)
}

/// The cut-off below which a singular value counts as zero.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Threshold<T> {
    /// `max(rows, cols) * eps * s_0`: what rounding alone can produce (the LAPACK and NumPy
    /// convention).
    Default,
    /// `factor * s_0`.
    Relative(T),
    /// A fixed value.
    Absolute(T),
}

impl<T: Real> Threshold<T> {
    /// The cut-off for singular values `s` (descending) of a `rows x cols` matrix. A negative
    /// or NaN cut-off counts as zero, so an exactly zero singular value never counts (and
    /// [`pseudo_inverse`] never divides by one).
    pub fn value(self, s: &[T], rows: usize, cols: usize) -> T {
        let largest = s.first().copied().unwrap_or(T::ZERO);
        let cut = match self {
            Threshold::Default => T::from_usize(rows.max(cols)) * T::EPSILON * largest,
            Threshold::Relative(factor) => factor * largest,
            Threshold::Absolute(value) => value,
        };
        if cut > T::ZERO { cut } else { T::ZERO }
    }
}

/// Numerical rank: how many of the descending singular values `s` exceed the threshold.
pub fn rank<T: Real>(s: &[T], rows: usize, cols: usize, threshold: Threshold<T>) -> usize {
    let cut = threshold.value(s, rows, cols);
    s.iter().take_while(|&&value| value > cut).count()
}

/// Condition number `s_0 / s_{q-1}` from the descending singular values `s`; infinite when
/// the rank under `threshold` is below `s.len()`, and 1 for an empty `s`.
pub fn condition_number<T: Real>(s: &[T], rows: usize, cols: usize, threshold: Threshold<T>) -> T {
    match (s.first(), s.last()) {
        (Some(&first), Some(&last)) if rank(s, rows, cols, threshold) == s.len() => first / last,
        (Some(_), Some(_)) => T::INFINITY,
        _ => T::ONE,
    }
}

/// Scratch elements [`pseudo_inverse`], [`low_rank_approximation`] and [`denoise_rows`] need:
/// the matrix, `s`, `U`, `V` and the Jacobi work space.
pub const fn factor_scratch_len(rows: usize, cols: usize) -> usize {
    let q = if rows < cols { rows } else { cols };
    rows * cols + q * (1 + rows + cols) + svd_in_place_scratch_len(rows, cols)
}

/// The singular values and vectors of a copy, held in scratch.
struct Factors<'a, T> {
    s: &'a [T],
    u: &'a [T],
    v: &'a [T],
}

/// Copies the row-major `rows x cols` matrix `a` (whose length the caller has checked) into
/// the front of `scratch` and factors the copy there.
fn factor_copy<'s, T: Real>(
    a: &[T],
    rows: usize,
    cols: usize,
    scratch: &'s mut [T],
) -> Result<Factors<'s, T>, SvdError> {
    let (len, q, _) = shape(rows, cols)?;
    need(
        Buffer::Scratch,
        factor_scratch_len(rows, cols),
        scratch.len(),
    )?;
    scratch[..len].copy_from_slice(&a[..len]);

    let (copy, rest) = scratch.split_at_mut(len);
    let (s, rest) = rest.split_at_mut(q);
    let (u, rest) = rest.split_at_mut(rows * q);
    let (v, work) = rest.split_at_mut(cols * q);

    let out = SvdOutput::values(&mut *s).with_u(&mut *u).with_v(&mut *v);
    svd_in_place(copy, rows, cols, out, work, SvdOptions::default())?;
    Ok(Factors { s, u, v })
}

/// Moore-Penrose pseudo-inverse `A^+ = V S^+ U^T` of the row-major `rows x cols` matrix `a`,
/// written row-major `cols x rows` into `out`; singular values at or below `threshold` count
/// as zero. Returns the rank used.
///
/// Accuracy: `A^+` is as accurate as the singular values kept allow; its error relative to
/// `||A^+||` is `O(q eps)` times the condition number of the kept part. Scratch:
/// [`factor_scratch_len`]. Stack: as [`svd_in_place`].
///
/// # Errors
///
/// As [`svd_in_place`]; [`SvdError::BufferTooSmall`] for `out` or `scratch`.
pub fn pseudo_inverse<T: Real>(
    a: &[T],
    rows: usize,
    cols: usize,
    out: &mut [T],
    threshold: Threshold<T>,
    scratch: &mut [T],
) -> Result<usize, SvdError> {
    let (len, _, _) = shape(rows, cols)?;
    need(Buffer::Matrix, len, a.len())?;
    need(Buffer::Output, len, out.len())?;
    let f = factor_copy(a, rows, cols, scratch)?;

    let kept = rank(f.s, rows, cols, threshold);
    let out = &mut out[..len];
    out.fill(T::ZERO);
    for j in 0..kept {
        for i in 0..cols {
            let factor = f.v[j * cols + i] / f.s[j];
            for k in 0..rows {
                out[i * rows + k] += factor * f.u[j * rows + k];
            }
        }
    }
    Ok(kept)
}

/// Writes `sum_{j < r} s_j u_j v_j^T` into `out` and returns the Frobenius norm of what was
/// left out, `sqrt(sum_{j >= r} s_j^2)`.
fn reconstruct<T: Real>(
    f: &Factors<'_, T>,
    rows: usize,
    cols: usize,
    r: usize,
    out: &mut [T],
) -> T {
    let kept = r.min(f.s.len());
    out.fill(T::ZERO);
    for j in 0..kept {
        for i in 0..rows {
            let factor = f.s[j] * f.u[j * rows + i];
            for k in 0..cols {
                out[i * cols + k] += factor * f.v[j * cols + k];
            }
        }
    }

    let largest = f.s.first().copied().unwrap_or(T::ZERO);
    if largest == T::ZERO {
        return T::ZERO;
    }
    let mut dropped = T::ZERO;
    for &value in &f.s[kept..] {
        let ratio = value / largest;
        dropped += ratio * ratio;
    }
    largest * dropped.sqrt()
}

/// Best rank-`r` approximation (Eckart-Young-Mirsky) `A_r = sum_{j < r} s_j u_j v_j^T` of the
/// row-major `rows x cols` matrix `a`, written row-major into `out`. Returns
/// `||A - A_r||_F = sqrt(sum_{j >= r} s_j^2)` from the singular values; `A_r` minimises both
/// that and `||A - A_r||_2 = s_r` over all matrices of rank at most `r`. An `r` of
/// `min(rows, cols)` or more reproduces `A` (to rounding).
///
/// Accuracy: `||A_r - A_r(exact)|| = O(q eps s_0 / (s_{r-1} - s_r))` when the gap is
/// clear. Scratch: [`factor_scratch_len`]. Stack: as [`svd_in_place`].
///
/// # Errors
///
/// As [`pseudo_inverse`].
pub fn low_rank_approximation<T: Real>(
    a: &[T],
    rows: usize,
    cols: usize,
    r: usize,
    out: &mut [T],
    scratch: &mut [T],
) -> Result<T, SvdError> {
    let (len, _, _) = shape(rows, cols)?;
    need(Buffer::Matrix, len, a.len())?;
    need(Buffer::Output, len, out.len())?;
    let f = factor_copy(a, rows, cols, scratch)?;
    Ok(reconstruct(&f, rows, cols, r, &mut out[..len]))
}

/// Denoises a stack of `count` spectra of `channels` channels each (row-major,
/// `spectra[i * channels + c]`, `min(count, channels) <= 64`) in place by truncating the
/// stack to rank `r`: each spectrum is replaced by its projection on the `r` dominant spectral
/// shapes of the stack. Returns the Frobenius norm removed. Noise orthogonal to those shapes
/// goes; the rank must be at least the number of independent components (phases plus
/// background terms) present, or signal goes with it.
///
/// Scratch: [`factor_scratch_len`]`(count, channels)`. Stack: as [`svd_in_place`].
///
/// # Errors
///
/// As [`low_rank_approximation`]; on error the spectra are untouched.
pub fn denoise_rows<T: Real>(
    spectra: &mut [T],
    count: usize,
    channels: usize,
    r: usize,
    scratch: &mut [T],
) -> Result<T, SvdError> {
    let (len, _, _) = shape(count, channels)?;
    need(Buffer::Matrix, len, spectra.len())?;
    let f = factor_copy(spectra, count, channels, scratch)?;
    Ok(reconstruct(&f, count, channels, r, &mut spectra[..len]))
}

/// The SVD of a compile-time `M x N` matrix in owned, fixed-size storage, computed by the
/// same code as [`svd_in_place`] on views of that storage.
///
/// Only the first `min(M, N)` singular values and vectors are meaningful; the storage is
/// sized by `N` (`s: [T; N]`, `N` left vectors of length `M`, `N` right vectors of length
/// `N`) because stable Rust cannot name `min(M, N)` in a type, and the accessors return the
/// meaningful part. A shape with `min(M, N) > 64` fails to compile.
///
/// Stack: building one takes about `2 M N + 3 N^2 + 3 N + 2 M` elements of `T` (the value, a
/// copy of `a` and the work space) plus [`svd_in_place`]'s own.
#[derive(Clone, Debug)]
pub struct Svd<T, const M: usize, const N: usize> {
    s: [T; N],
    u: [[T; M]; N],
    v: [[T; N]; N],
    sweeps: u32,
}

impl<T: Real, const M: usize, const N: usize> Svd<T, M, N> {
    const MIN_DIM: usize = if M < N { M } else { N };
    const SHAPE_OK: () = assert!(Self::MIN_DIM <= MAX_DIM, "min(M, N) must be at most 64");

    /// Factors `a` (rows of `N` entries).
    ///
    /// # Errors
    ///
    /// [`SvdError::NonFinite`] or [`SvdError::NoConvergence`], as [`svd_in_place`].
    pub fn new(a: &[[T; N]; M]) -> Result<Self, SvdError> {
        let () = Self::SHAPE_OK;

        let mut copy = *a;
        let mut work = [[[T::ZERO; N]; N]; 2];
        let mut row_order_m = [[T::ZERO; M]; 2];
        let mut row_order_n = [[T::ZERO; N]; 2];
        let mut result = Self {
            s: [T::ZERO; N],
            u: [[T::ZERO; M]; N],
            v: [[T::ZERO; N]; N],
            sweeps: 0,
        };

        let row_order = if M >= N {
            row_order_m.as_flattened_mut()
        } else {
            row_order_n.as_flattened_mut()
        };
        let info = decompose(
            copy.as_flattened_mut(),
            M,
            N,
            &mut result.s,
            Some(result.u.as_flattened_mut()),
            Some(result.v.as_flattened_mut()),
            work.as_flattened_mut().as_flattened_mut(),
            row_order,
            DEFAULT_MAX_SWEEPS,
        )?;
        result.sweeps = info.sweeps;
        Ok(result)
    }

    /// The `min(M, N)` singular values, descending.
    pub fn singular_values(&self) -> &[T] {
        &self.s[..Self::MIN_DIM]
    }

    /// The `min(M, N)` left singular vectors `u_j`.
    pub fn left_vectors(&self) -> &[[T; M]] {
        &self.u[..Self::MIN_DIM]
    }

    /// The `min(M, N)` right singular vectors `v_j`.
    pub fn right_vectors(&self) -> &[[T; N]] {
        &self.v[..Self::MIN_DIM]
    }

    /// Jacobi sweeps run.
    pub fn sweeps(&self) -> u32 {
        self.sweeps
    }

    /// Numerical rank, as [`rank`].
    pub fn rank(&self, threshold: Threshold<T>) -> usize {
        rank(self.singular_values(), M, N, threshold)
    }

    /// Condition number, as [`condition_number`].
    pub fn condition_number(&self, threshold: Threshold<T>) -> T {
        condition_number(self.singular_values(), M, N, threshold)
    }
}
