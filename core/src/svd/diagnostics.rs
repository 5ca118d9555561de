//! Diagnostics of a reference library before it is used for fitting: can its phases be told
//! apart, and in what precision?
//!
//! A library `X` is `n` channels by `k <= 16` phases, channel-major (`x[i * k + j]`, the
//! layout the kernel stores). The fit works on the column-scaled library `X D`
//! (`D = diag(1 / ||x_j||)`), so its singular values decide how errors in a spectrum are
//! amplified into the coefficients: the relative error of the coefficients is up to the
//! condition number `s_0 / s_{k-1}` times the relative error of the data. With `f32`
//! arithmetic (`eps = 1.2e-7`) a condition number above about `8e3` leaves fewer than three
//! correct digits, and the library is flagged.
//!
//! # Method
//!
//! Everything is computed in `f64`, whatever the library's type. The library is reduced to
//! its `k x k` triangular factor `R` (`X = Q R`) by Givens rotations, one channel row at a
//! time, so no copy of the library is needed and `Q` is never formed. `X` and `R` share their
//! singular values, right singular vectors, column norms (`||x_j|| = ||r_j||`) and cosines
//! (`x_a . x_b = r_a . r_b`), and the column-scaled library's factor is `R D`. The SVDs are
//! then [`svd_in_place`] of `R` and `R D`.
//!
//! Accuracy: the rotations are backward stable, so `R` is exact for a library perturbed by
//! `O(n eps_64)` relative to each column, far below the `f32` rounding the data carries. The
//! singular values are accurate as the [SVD](super) states; cosines to a few `eps_64`.
//!
//! Ranks count the singular values above `k * eps * s_0`, with the `eps` *of the library's
//! type*: a library stored in `f32` is judged by what `f32` can resolve. That is the usual
//! `max(rows, cols) * eps * s_0` threshold applied to the `k x k` factor `R`, and it has a
//! plain meaning: rounding each value to its type perturbs the library by at most
//! `eps ||X||_F <= sqrt(k) eps s_0` (column by column, the same for `X D`), and by Weyl's
//! inequality no singular value below that can be told from zero. The channel count does not
//! enter, because the computation itself runs in `f64`. A condition number is always
//! `s_0 / s_{k-1}`, infinite only when the smallest singular value is exactly zero; the rank
//! says whether it is meaningful.

use super::real::Real;
use super::{Buffer, SvdError, SvdOptions, SvdOutput, svd_in_place};

/// Most phases a library may have for [`library_diagnostics`].
pub const MAX_PHASES: usize = 16;

/// Phase pairs with `|cos| >= COLLINEAR_COSINE` are reported as nearly collinear.
pub const COLLINEAR_COSINE: f64 = 0.99;

/// A scaled condition number whose product with `f32::EPSILON` exceeds this flags the
/// library as too ill-conditioned for `f32` fitting (condition above about 8.4e3).
pub const ILL_CONDITIONED_LIMIT: f64 = 1e-3;

const MAX_PAIRS: usize = MAX_PHASES * (MAX_PHASES - 1) / 2;

/// Most warnings one library can raise: every pair, every column and the two global ones.
pub const MAX_WARNINGS: usize = MAX_PAIRS + MAX_PHASES + 2;

/// One thing wrong with a library.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Warning {
    /// Phase `phase` is zero in every channel.
    ZeroColumn {
        /// Index of the phase.
        phase: usize,
    },
    /// Phases `a < b` have nearly the same shape: `|cos| >= COLLINEAR_COSINE`.
    NearlyCollinear {
        /// First phase.
        a: usize,
        /// Second phase.
        b: usize,
        /// Cosine of the angle between them.
        cosine: f64,
    },
    /// The column-scaled library has full rank, but its condition number times
    /// `f32::EPSILON` exceeds [`ILL_CONDITIONED_LIMIT`]. (A rank-deficient library gets
    /// [`Warning::RankDeficient`] instead.)
    IllConditioned {
        /// Condition number of the column-scaled library.
        condition: f64,
    },
    /// The column-scaled library has numerical rank `rank` below the number of phases.
    RankDeficient {
        /// Numerical rank.
        rank: usize,
    },
}

impl Warning {
    /// A plain-language explanation of the warning, for the host to print beside its data.
    pub fn description(&self) -> &'static str {
        match self {
            Warning::ZeroColumn { .. } => {
                "this phase's reference spectrum is zero everywhere, so its amount cannot be \
                 measured"
            }
            Warning::NearlyCollinear { .. } => {
                "these two phases have nearly the same spectrum shape, so the fit can trade \
                 one for the other and their amounts will be uncertain"
            }
            Warning::IllConditioned { .. } => {
                "the library is so ill-conditioned that single-precision (f32) fitting cannot \
                 separate the phases reliably"
            }
            Warning::RankDeficient { .. } => {
                "some phase is (numerically) a combination of the others, so the amounts are \
                 not uniquely determined"
            }
        }
    }
}

/// What [`library_diagnostics`] finds. Arrays are indexed by phase; only the first
/// `phases` entries (or rows and columns) are meaningful, the rest are zero.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Diagnostics {
    /// Channels `n`.
    pub channels: usize,
    /// Phases `k`.
    pub phases: usize,
    /// Euclidean norm of each phase's spectrum.
    pub column_norms: [f64; MAX_PHASES],
    /// Singular values of the library as given, descending.
    pub singular_values: [f64; MAX_PHASES],
    /// Singular values of the column-scaled library (unit columns), descending.
    pub scaled_singular_values: [f64; MAX_PHASES],
    /// Condition number `s_0 / s_{k-1}` of the library as given (infinite only when
    /// `s_{k-1}` is zero; beyond `1 / (k eps)` the library is rank-deficient, see [`rank`]).
    ///
    /// [`rank`]: Diagnostics::rank
    pub condition: f64,
    /// Condition number `s_0 / s_{k-1}` of the column-scaled library, as for `condition`.
    pub scaled_condition: f64,
    /// Numerical rank of the library as given.
    pub rank: usize,
    /// Numerical rank of the column-scaled library.
    pub scaled_rank: usize,
    /// `cosines[a][b]`: cosine of the angle between phases `a` and `b` (0 when either is
    /// zero; 1 on the diagonal of non-zero phases).
    pub cosines: [[f64; MAX_PHASES]; MAX_PHASES],
    /// Right singular vector of the smallest singular value of the library as given: the
    /// combination of phases (coefficients per phase, unit norm) the data constrain least.
    pub weakest_combination: [f64; MAX_PHASES],
    /// The same for the column-scaled library: coefficients per unit-norm phase.
    pub scaled_weakest_combination: [f64; MAX_PHASES],
    warnings: [Warning; MAX_WARNINGS],
    warning_count: usize,
}

impl Diagnostics {
    /// The warnings raised, in this order: zero columns, nearly collinear pairs (by `a`, then
    /// `b`), rank deficiency, ill conditioning.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings[..self.warning_count]
    }

    fn warn(&mut self, warning: Warning) {
        if self.warning_count < MAX_WARNINGS {
            self.warnings[self.warning_count] = warning;
            self.warning_count += 1;
        }
    }
}

/// Diagnoses the channel-major library `library[i * phases + j]` of `channels` channels by
/// `phases <= 16` phases. See the [module docs](self) for what is computed and how.
///
/// Cost: `2 n k^2` flops for the reduction plus two `k x k` SVDs. Stack: about 22 KiB (the
/// result is 7 KiB, two triangular factors 4 KiB, the SVD buffers and kernel 10 KiB).
///
/// # Errors
///
/// [`SvdError::TooLarge`] when `phases > 16`; [`SvdError::BufferTooSmall`] when `library`
/// holds fewer than `channels * phases` values; [`SvdError::NonFinite`] naming the
/// (channel, phase) of a NaN or infinity; [`SvdError::NoConvergence`] if an SVD hits its
/// sweep cap.
pub fn library_diagnostics<T: Real>(
    library: &[T],
    channels: usize,
    phases: usize,
) -> Result<Diagnostics, SvdError> {
    let k = phases;
    if k > MAX_PHASES {
        return Err(SvdError::TooLarge {
            rows: channels,
            cols: phases,
        });
    }
    let len = channels.checked_mul(k).ok_or(SvdError::TooLarge {
        rows: channels,
        cols: phases,
    })?;
    if library.len() < len {
        return Err(SvdError::BufferTooSmall {
            buffer: Buffer::Matrix,
            needed: len,
            got: library.len(),
        });
    }

    let r = triangular_factor(&library[..len], k)?;

    let mut d = Diagnostics {
        channels,
        phases: k,
        column_norms: [0.0; MAX_PHASES],
        singular_values: [0.0; MAX_PHASES],
        scaled_singular_values: [0.0; MAX_PHASES],
        condition: 1.0,
        scaled_condition: 1.0,
        rank: 0,
        scaled_rank: 0,
        cosines: [[0.0; MAX_PHASES]; MAX_PHASES],
        weakest_combination: [0.0; MAX_PHASES],
        scaled_weakest_combination: [0.0; MAX_PHASES],
        warnings: [Warning::RankDeficient { rank: 0 }; MAX_WARNINGS],
        warning_count: 0,
    };
    if k == 0 {
        return Ok(d);
    }

    for j in 0..k {
        let mut sum = 0.0;
        for i in 0..=j {
            sum += r[i][j] * r[i][j];
        }
        d.column_norms[j] = libm::sqrt(sum);
    }
    for a in 0..k {
        for b in 0..k {
            d.cosines[a][b] = cosine(&r, a, b, &d.column_norms);
        }
    }

    // The rank threshold follows the precision of the library's own type (module docs).
    let eps = T::EPSILON.to_f64();
    let rank_of = |s: &[f64]| {
        let cut = k as f64 * eps * s[0];
        s.iter().take_while(|&&value| value > cut).count()
    };
    let condition_of = |s: &[f64]| {
        let smallest = s[s.len() - 1];
        if smallest > 0.0 {
            s[0] / smallest
        } else {
            f64::INFINITY
        }
    };

    let mut scaled = r;
    for j in 0..k {
        let norm = d.column_norms[j];
        if norm > 0.0 {
            for row in scaled.iter_mut().take(j + 1) {
                row[j] /= norm;
            }
        }
    }

    let mut last = [0.0; MAX_PHASES];
    singular_values_of(&r, k, &mut d.singular_values, &mut last)?;
    d.weakest_combination = last;
    singular_values_of(&scaled, k, &mut d.scaled_singular_values, &mut last)?;
    d.scaled_weakest_combination = last;

    d.rank = rank_of(&d.singular_values[..k]);
    d.scaled_rank = rank_of(&d.scaled_singular_values[..k]);
    d.condition = condition_of(&d.singular_values[..k]);
    d.scaled_condition = condition_of(&d.scaled_singular_values[..k]);

    for j in 0..k {
        if d.column_norms[j] == 0.0 {
            d.warn(Warning::ZeroColumn { phase: j });
        }
    }
    for a in 0..k {
        for b in a + 1..k {
            let cosine = d.cosines[a][b];
            if libm::fabs(cosine) >= COLLINEAR_COSINE {
                d.warn(Warning::NearlyCollinear { a, b, cosine });
            }
        }
    }
    if d.scaled_rank < k {
        d.warn(Warning::RankDeficient {
            rank: d.scaled_rank,
        });
    }
    let full_rank = d.scaled_rank == k;
    if full_rank && d.scaled_condition * f64::from(f32::EPSILON) > ILL_CONDITIONED_LIMIT {
        d.warn(Warning::IllConditioned {
            condition: d.scaled_condition,
        });
    }
    Ok(d)
}

type Square = [[f64; MAX_PHASES]; MAX_PHASES];

/// `R` with `X = Q R`, by Givens rotations of each channel row into `R` in channel order.
fn triangular_factor<T: Real>(library: &[T], k: usize) -> Result<Square, SvdError> {
    let mut r = [[0.0; MAX_PHASES]; MAX_PHASES];
    let mut row = [0.0; MAX_PHASES];
    for (channel, values) in library.chunks_exact(k).enumerate() {
        for (j, &value) in values.iter().enumerate() {
            if !value.is_finite() {
                return Err(SvdError::NonFinite {
                    row: channel,
                    col: j,
                });
            }
            row[j] = value.to_f64();
        }

        // Rotate (r_jj, row_j) onto (hypot, 0), carrying the rest of both rows along.
        for j in 0..k {
            if row[j] == 0.0 {
                continue;
            }
            let radius = libm::hypot(r[j][j], row[j]);
            let c = r[j][j] / radius;
            let s = row[j] / radius;
            r[j][j] = radius;
            row[j] = 0.0;
            for l in j + 1..k {
                let (top, bottom) = (r[j][l], row[l]);
                r[j][l] = c * top + s * bottom;
                row[l] = c * bottom - s * top;
            }
        }
    }
    Ok(r)
}

/// Cosine of the angle between columns `a` and `b` of `R`, clamped to `[-1, 1]`.
fn cosine(r: &Square, a: usize, b: usize, norms: &[f64; MAX_PHASES]) -> f64 {
    if norms[a] == 0.0 || norms[b] == 0.0 {
        return 0.0;
    }
    let mut dot = 0.0;
    for i in 0..=a.min(b) {
        dot += r[i][a] * r[i][b];
    }
    libm::fmin(1.0, libm::fmax(-1.0, dot / (norms[a] * norms[b])))
}

/// Singular values of the leading `k x k` block of `r` into `s`, and the right singular
/// vector of the smallest into `last`.
fn singular_values_of(
    r: &Square,
    k: usize,
    s: &mut [f64; MAX_PHASES],
    last: &mut [f64; MAX_PHASES],
) -> Result<(), SvdError> {
    let mut a = [0.0; MAX_PHASES * MAX_PHASES];
    for i in 0..k {
        a[i * k..(i + 1) * k].copy_from_slice(&r[i][..k]);
    }
    let mut v = [0.0; MAX_PHASES * MAX_PHASES];
    let mut work = [0.0; 2 * MAX_PHASES * MAX_PHASES + 2 * MAX_PHASES];

    let out = SvdOutput::values(&mut s[..]).with_v(&mut v[..]);
    svd_in_place(&mut a, k, k, out, &mut work, SvdOptions::default())?;

    last.fill(0.0);
    last[..k].copy_from_slice(&v[(k - 1) * k..k * k]);
    Ok(())
}
