//! `unmix`: turn a detector spectrum into phase fractions, the same bits on every target.
//!
//! The crate is `no_std`, allocates nothing and keeps the per-spectrum path free of panics.
//! Every floating-point operation is an IEEE basic operation (`+ - * / sqrt`) or a `libm`
//! function in a fixed order, with no fused multiply-add and no target-dependent path, so a
//! given input gives the same `f32` bits on x86_64, Cortex-M4F (hardware FPU), Cortex-M0
//! (soft float) and RISC-V.
//!
//! # Using it
//!
//! 1. **Prepare** a reference library once. The library `X` is `n` channels by `k` phases
//!    (`k <= MAX_PHASES`), channel-major (`x[i * k + j]`), optionally with a Chebyshev
//!    background of degree `d <= MAX_DEGREE` (free in sign), `c = k + d + 1` columns in all
//!    (at most [`MAX_COLUMNS`]). [`prepare`] scales the columns to unit norm and computes
//!    `X D = Q R` by Householder QR in `f64`, storing `Q`, `R`, the scales and the
//!    standard-error factors as `f32` in a caller buffer of [`Shape::prepared_len`] values,
//!    with a scratch of [`Shape::prepare_scratch_len`] `f64`. Firmware that knows its sizes
//!    uses [`Prepared<N, C>`](Prepared) instead, which owns fixed arrays; both hand out a
//!    [`PreparedView`], and every algorithm runs on that view.
//! 2. **Move** a prepared library as bytes: [`PreparedView::to_bytes`] writes the stable
//!    little-endian format of [`bytes`] (header, FNV-1a identity hash, data);
//!    [`bytes::read_header`] tells the size, and [`PreparedView::from_bytes`] or
//!    [`Prepared::load_bytes`] load and verify it. [`PreparedView::library_id`] is the hash.
//! 3. **Fit** each spectrum (`f32`, `u16` or `u32` samples, see [`Sample`]) with
//!    [`PreparedView::fit`] and a [`FitOptions`] naming the [`Method`]: `Lstsq`, `Ridge`,
//!    `Nnls` or `Fcls`. The result is a `Copy` [`Fit`]: coefficients in original units,
//!    fractions, standard errors, residual norm, iterations, support and [`Status`];
//!    optionally a Poisson chi-square, and with [`PreparedView::fit_with_model`] the fitted
//!    spectrum. On a desktop processor, [`PreparedView::fit_interleaved`] fits several
//!    spectra per call with the same bits, faster.
//!
//! ```
//! use unmix::{Background, FitOptions, Method, Shape};
//!
//! // Two phases over six channels, channel-major.
//! let library = [1.0, 0.0, 2.0, 0.5, 1.0, 1.0, 0.0, 2.0, 0.5, 1.0, 0.0, 0.5];
//! let shape = Shape::new(6, 2, Background::None);
//! let mut storage = [0.0f32; 6 * 2 + 2 * 2 + 2 * 2];
//! let mut scratch = [0.0f64; 6 * 2 + 2 * 2 + 2];
//! let prepared = unmix::prepare(shape, &library, &mut storage, &mut scratch)?;
//!
//! // y = 2 x_0 + 3 x_1.
//! let y = [2.0f32, 5.5, 5.0, 6.0, 4.0, 1.5];
//! let fit = prepared.fit(&y, &FitOptions::new(Method::Nnls))?;
//! assert!((fit.phases()[0] - 2.0).abs() < 1e-5 && (fit.phases()[1] - 3.0).abs() < 1e-5);
//! # Ok::<(), unmix::Error>(())
//! ```
//!
//! # Cost and memory per fit
//!
//! One pass over `Q` computes `z = Q^T y` and `||y||^2` together: `n * c + n` multiply-adds,
//! the loop of [`pass::multiply_add_pass`] plus one accumulator. Everything else works on
//! the `c x c` problem (the [`fit`] module describes the methods and their accuracy, the
//! [`factor`] module the factorization); only a chi-square or a fitted spectrum costs a
//! second pass.
//!
//! On the Cortex-M4F (`cargo xtask bench`, instructions under QEMU), a full NNLS fit at
//! `n = 2048, k = 8` costs 1.24 times the bare `n * k` pass: beyond it, `n` multiply-adds
//! for `||y||^2` and a few thousand instructions on the `8 x 8` problem (the warm start
//! from the unconstrained solution usually leaves one or two active-set iterations, each a
//! `c^2` gradient plus a subproblem of at most `c^2` work, since subsets of `R`'s columns
//! stay nearly triangular), standard errors and fractions.
//!
//! Accuracy, measured by the tests against an independent `f64` reference (libraries with
//! scaled condition numbers `kappa` up to 1e4 and column scales spread over 1e6, and
//! Gaussian-peak libraries with nearly collinear phases): least-squares coefficient errors
//! in the scaled coordinates stayed below `0.9 * kappa * f32::EPSILON` (the tests allow
//! `4 c kappa eps`), ridge below `2.1 kappa eps`. NNLS and FCLS reach the optimum's
//! objective to `2.4e-8 ||y||^2` on the same libraries; their coefficients are as accurate
//! as least squares' except where the stopping rule (see [`Method::Nnls`]) leaves a phase
//! with a tiny optimal coefficient at zero, which moved the others by up to `150 kappa eps`.
//!
//! Stack per fit call, measured on the Cortex-M4F by painting (`cargo xtask bench`): at most
//! 5,808 bytes for `Nnls` and `Fcls` and 3,932 for `Lstsq` and `Ridge` over `k` up to 16,
//! 3,032 bytes for `Nnls` at `k = 8`; it does not depend on `n`. The compressed problem's
//! arrays are sized to the column count, so a wider library needs more. Preparation uses a
//! caller scratch of [`prepare_scratch_len`] `f64` (128.5 KiB for `n = 2048, c = 8`) plus
//! under 1 KiB of stack.

#![no_std]

pub mod bytes;
mod error;
pub mod factor;
pub mod fit;
pub mod pass;
pub mod prepared;
mod solve;
pub mod svd;

pub use bytes::{FORMAT_VERSION, Header};
pub use error::{ByteFault, Error};
pub use factor::{Background, RANK_TOLERANCE, Shape, prepare, prepare_scratch_len, prepared_len};
pub use fit::{Fit, FitOptions, Method, Sample, Status};
pub use prepared::{Prepared, PreparedView};

/// Most reference phases a library may hold.
pub const MAX_PHASES: usize = 16;
/// Most channels a library may have: 2^20, far beyond any detector, and small enough that
/// every size derived from a shape (values, scratch, bytes) fits in a 32-bit `usize`, so a
/// header naming billions of channels is refused instead of wrapping a length.
pub const MAX_CHANNELS: usize = 1 << 20;
/// Highest Chebyshev background degree.
pub const MAX_DEGREE: usize = 4;
/// Most columns of a prepared library: phases plus background terms.
pub const MAX_COLUMNS: usize = MAX_PHASES + MAX_DEGREE + 1;
