//! Fitting one spectrum against a prepared library.
//!
//! With `X D = Q R` prepared, a spectrum `y` is reduced in one pass to `z = Q^T y` and
//! `||y||^2` (`n * c` multiply-adds plus `n`). Writing `w = D u` for the original coefficients,
//!
//! `||y - X w||^2 = ||y||^2 - ||z||^2 + ||R u - z||^2`,
//!
//! so every method below is solved on the `c x c` problem `min ||R u - z||` and the residual
//! norm needs no second pass. Only a fitted spectrum or a chi-square costs another pass.
//!
//! Accuracy: the compressed problems are solved by Givens rotations and back substitution in
//! `f32`, which are backward stable; the coefficients' relative error is of order
//! `c * cond(X D) * f32::EPSILON` (measured in the tests against an `f64` reference; the
//! crate docs give the figures). The residual norm inherits the cancellation in
//! `||y||^2 - ||z||^2`: its absolute error in the squared norm is of order
//! `n * f32::EPSILON * ||y||^2` in the worst case, so a residual below about
//! `1e-3 * ||y||` is resolved only roughly.

use crate::solve::{self, End, Matrix, Problem};

mod interleaved;

/// A vector of [`MAX_COLUMNS`] entries: the projection and the fitted coefficients.
type Vector = [f32; MAX_COLUMNS];
use crate::{Error, MAX_COLUMNS, MAX_PHASES, PreparedView};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
}

/// A spectrum sample type: `f32`, `u16` or `u32` counts, converted to `f32` as they are read
/// (`u32` above `2^24` rounds to nearest even, the same on every target).
pub trait Sample: Copy + sealed::Sealed {
    /// The sample as `f32`.
    fn to_f32(self) -> f32;
}

impl Sample for f32 {
    fn to_f32(self) -> f32 {
        self
    }
}

impl Sample for u16 {
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
}

impl Sample for u32 {
    fn to_f32(self) -> f32 {
        self as f32
    }
}

/// How the coefficients are constrained.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// Unconstrained least squares (orthogonal projection onto the library's span).
    Lstsq,
    /// Least squares plus `lambda * sum_j w_j^2` over the phase coefficients `w_j` in their
    /// original units (the background is not penalized). `lambda = 0` gives exactly the bits
    /// of [`Method::Lstsq`].
    Ridge {
        /// Penalty weight, finite and non-negative.
        lambda: f32,
    },
    /// Non-negative phases (background free in sign): Lawson-Hanson active set.
    ///
    /// It has converged when no phase held at zero could lower the residual: in the scaled
    /// coordinates `u = D^-1 w` of the compressed problem, every such phase's gradient
    /// `(R^T (z - R u))_j` is at most `8 c f32::EPSILON ||z||`. A phase whose unit-norm
    /// spectrum correlates with the residual less than that stays at zero; this is the
    /// detection floor for trace phases, far below the Poisson noise of any real count.
    Nnls,
    /// Non-negative phases whose coefficients sum to exactly 1 (fully constrained least
    /// squares): the same active set with the equality eliminated in every subproblem, and
    /// the same tolerance on the gradient along the constraint. The coefficients are then
    /// fractions, so the spectrum must be on the library's scale (normalised to the phases'
    /// total); for counts, [`Method::Nnls`] and [`Fit::fractions`] give the fractions.
    Fcls,
}

/// Options of one fit.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FitOptions {
    /// The method.
    pub method: Method,
    /// Cap on active-set iterations (subproblem solves); `None` means `3 * c`. With
    /// background terms or FCLS the first subproblem always runs, so 0 acts as 1 there.
    pub max_iterations: Option<u32>,
    /// Compute the Poisson chi-square (costs a second pass over `Q`).
    pub chi2: bool,
}

impl FitOptions {
    /// Options for `method` with the default iteration cap and no chi-square.
    pub const fn new(method: Method) -> Self {
        FitOptions {
            method,
            max_iterations: None,
            chi2: false,
        }
    }

    /// Sets the iteration cap.
    pub const fn with_max_iterations(mut self, cap: u32) -> Self {
        self.max_iterations = Some(cap);
        self
    }

    /// Turns the chi-square on or off.
    pub const fn with_chi2(mut self, chi2: bool) -> Self {
        self.chi2 = chi2;
        self
    }
}

/// How a fit ended.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status {
    /// The solution satisfies the method's optimality conditions (to tolerance).
    Converged,
    /// The active-set iteration cap was reached; the coefficients are the last feasible
    /// point, which satisfies the constraints but may not be optimal.
    IterationCap,
    /// A subproblem was numerically singular; the coefficients are the last feasible point.
    Degenerate,
}

/// The result of one fit: a fixed-size `Copy` value.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fit {
    coefficients: [f32; MAX_COLUMNS],
    fractions: [f32; MAX_PHASES],
    standard_errors: [f32; MAX_COLUMNS],
    residual_norm: f32,
    chi2: Option<f32>,
    reduced_chi2: Option<f32>,
    iterations: u32,
    support: u32,
    status: Status,
    phases: u8,
    columns: u8,
}

impl Fit {
    /// All coefficients in original units: phases first, then background terms.
    pub fn coefficients(&self) -> &[f32] {
        self.coefficients
            .get(..usize::from(self.columns))
            .unwrap_or(&[])
    }

    /// The phase coefficients in original units.
    pub fn phases(&self) -> &[f32] {
        self.coefficients
            .get(..usize::from(self.phases))
            .unwrap_or(&[])
    }

    /// The background coefficients (of `T_0 .. T_d`), empty without background.
    pub fn background(&self) -> &[f32] {
        let range = usize::from(self.phases)..usize::from(self.columns);
        self.coefficients.get(range).unwrap_or(&[])
    }

    /// `w_j / sum(w)` over the phases; all zero when the sum is not positive.
    pub fn fractions(&self) -> &[f32] {
        self.fractions
            .get(..usize::from(self.phases))
            .unwrap_or(&[])
    }

    /// Standard errors of [`Fit::coefficients`]: `sigma * sqrt(((X^T X)^-1)_jj)` with
    /// `sigma^2 = residual_norm^2 / (n - m)`, where `m` counts the non-zero phases plus the
    /// background terms. They are those of unconstrained least squares over all columns,
    /// which bound the errors of the smaller active-set model from above; infinite when
    /// `n = m`, or when an error in original units exceeds the `f32` range (a phase whose
    /// reference spectrum is near the smallest `f32` values).
    pub fn standard_errors(&self) -> &[f32] {
        self.standard_errors
            .get(..usize::from(self.columns))
            .unwrap_or(&[])
    }

    /// `||y - X w||`, from `||y||^2 - ||z||^2 + ||R u - z||^2` clamped at zero.
    pub const fn residual_norm(&self) -> f32 {
        self.residual_norm
    }

    /// Poisson chi-square `sum_i (y_i - f_i)^2 / max(y_i, 1)`, when requested.
    pub const fn chi2(&self) -> Option<f32> {
        self.chi2
    }

    /// Chi-square per degree of freedom, `chi2 / (n - m)` (see [`Fit::standard_errors`]),
    /// infinite when `n = m`.
    pub const fn reduced_chi2(&self) -> Option<f32> {
        self.reduced_chi2
    }

    /// Active-set iterations (subproblem solves); 0 for the direct methods.
    pub const fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Bit `j` is set when phase `j`'s coefficient is non-zero.
    pub const fn support(&self) -> u32 {
        self.support
    }

    /// How the fit ended.
    pub const fn status(&self) -> Status {
        self.status
    }
}

impl PreparedView<'_> {
    /// Fits `spectrum` (one sample per channel).
    ///
    /// Cost: one pass over `Q` (`n * c` multiply-adds and `n` for `||y||^2`), then
    /// `O(c^3)` work; with `options.chi2` a second pass. Never panics.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `spectrum` does not have `n` samples;
    /// [`Error::NonFinite`] naming the first non-finite sample; [`Error::Overflow`] when sums
    /// or coefficients overflow `f32`; [`Error::InvalidLambda`]; [`Error::NoPhases`] for an
    /// empty [`crate::Prepared`].
    pub fn fit<S: Sample>(&self, spectrum: &[S], options: &FitOptions) -> Result<Fit, Error> {
        self.fit_impl(spectrum, options, None)
    }

    /// Fits `spectrum` like [`PreparedView::fit`] and writes the fitted spectrum `X w` into
    /// `fitted` (`n` values) in a second pass over `Q`.
    ///
    /// # Errors
    /// Those of [`PreparedView::fit`], and [`Error::LengthMismatch`] for `fitted`.
    pub fn fit_with_model<S: Sample>(
        &self,
        spectrum: &[S],
        options: &FitOptions,
        fitted: &mut [f32],
    ) -> Result<Fit, Error> {
        self.fit_impl(spectrum, options, Some(fitted))
    }

    /// The projection alone: writes `z = Q^T y` into `z` (`c` values) and returns `||y||^2`,
    /// with the bits of the first step of every fit.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for `spectrum` or `z`; [`Error::NonFinite`] and
    /// [`Error::Overflow`] as for [`PreparedView::fit`].
    pub fn project<S: Sample>(&self, spectrum: &[S], z: &mut [f32]) -> Result<f32, Error> {
        let c = self.shape.columns().min(MAX_COLUMNS);
        check_len(spectrum.len(), self.shape.channels)?;
        check_len(z.len(), c)?;

        let mut acc = [0.0f32; MAX_COLUMNS];
        let yy = project(self.q, c, spectrum, &mut acc);
        if !sums_finite(&acc, yy) {
            return Err(first_non_finite(spectrum));
        }
        z.copy_from_slice(acc.get(..c).unwrap_or(&[]));
        Ok(yy)
    }

    fn fit_impl<S: Sample>(
        &self,
        spectrum: &[S],
        options: &FitOptions,
        fitted: Option<&mut [f32]>,
    ) -> Result<Fit, Error> {
        let (c, k) = self.check_fit(spectrum.len(), options)?;
        if let Some(f) = &fitted {
            check_len(f.len(), self.shape.channels)?;
        }

        let mut z = [0.0f32; MAX_COLUMNS];
        let yy = project(self.q, c, spectrum, &mut z);
        if !sums_finite(&z, yy) {
            return Err(first_non_finite(spectrum));
        }

        let solution = Solution::new(z, yy, c, k, options);
        match c {
            0..=4 => self.solve_and_finish::<S, 4>(spectrum, options, fitted, &solution),
            5..=8 => self.solve_and_finish::<S, 8>(spectrum, options, fitted, &solution),
            9..=12 => self.solve_and_finish::<S, 12>(spectrum, options, fitted, &solution),
            13..=16 => self.solve_and_finish::<S, 16>(spectrum, options, fitted, &solution),
            _ => self.solve_and_finish::<S, MAX_COLUMNS>(spectrum, options, fitted, &solution),
        }
    }

    /// Solves the compressed problem in arrays `W` wide (`c <= W`) and builds the result.
    /// Kept out of line: inlined into its callers, the five widths swell every caller (the
    /// Cortex-M0 golden runner no longer fit in its 256 KiB of flash).
    #[inline(never)]
    fn solve_and_finish<S: Sample, const W: usize>(
        &self,
        spectrum: &[S],
        options: &FitOptions,
        fitted: Option<&mut [f32]>,
        solution: &Solution,
    ) -> Result<Fit, Error> {
        let (mut fit, v) = self.solve_compressed::<W>(options, solution)?;
        if options.chi2 || fitted.is_some() {
            let chi2 = model_pass(self.q, solution.c.min(W), spectrum, &v, fitted);
            self.set_chi2(&mut fit, options.chi2.then_some(chi2));
        }
        Ok(fit)
    }

    /// The checks every fit makes before its first pass; the column and phase counts.
    fn check_fit(&self, channels: usize, options: &FitOptions) -> Result<(usize, usize), Error> {
        let shape = self.shape;
        if shape.phases == 0 {
            return Err(Error::NoPhases);
        }
        check_len(channels, shape.channels)?;
        if let Method::Ridge { lambda } = options.method
            && !(lambda.is_finite() && lambda >= 0.0)
        {
            return Err(Error::InvalidLambda);
        }
        let c = shape.columns().min(MAX_COLUMNS);
        Ok((c, shape.phases.min(MAX_PHASES).min(c)))
    }

    /// Solves the compressed problem in arrays `W` wide (`c <= W`): the fit without
    /// chi-square, and `v = R u`, the model in the compressed coordinates (the residual
    /// needs it, and the second pass reconstructs the fitted spectrum from it).
    #[inline(always)]
    fn solve_compressed<const W: usize>(
        &self,
        options: &FitOptions,
        solution: &Solution,
    ) -> Result<(Fit, [f32; W]), Error> {
        let (c, k) = (solution.c.min(W), solution.k.min(W));
        let mut problem = Problem::<W> {
            r: [[0.0; W]; W],
            z: [0.0; W],
            a: [0.0; W],
            c,
            phases: k,
        };
        for (dst, &v) in problem.z.iter_mut().zip(&solution.z) {
            *dst = v;
        }
        self.load_problem(&mut problem);
        let (u, iterations, end) = solve_method(&problem, options.method, solution.cap)?;

        let v = multiply_r(&problem.r, &u, c);
        let fit = self.finish(&problem, &u, &v, solution.yy, iterations, end)?;
        Ok((fit, v))
    }

    /// Stores the chi-square, when computed, and its value per degree of freedom.
    fn set_chi2(&self, fit: &mut Fit, chi2: Option<f32>) {
        let dof = dof(self.shape.channels, fit, self.shape.background.terms());
        fit.chi2 = chi2;
        fit.reduced_chi2 = chi2.map(|chi2| per_dof(chi2, dof));
    }
}

/// What the compressed problem is built from: the projection, `||y||^2` and the sizes.
struct Solution {
    z: Vector,
    yy: f32,
    cap: u32,
    c: usize,
    k: usize,
}

impl Solution {
    fn new(z: Vector, yy: f32, c: usize, k: usize, options: &FitOptions) -> Self {
        let cap = options.max_iterations.unwrap_or(3 * c as u32);
        Solution { z, yy, cap, c, k }
    }
}

/// Whether the first pass's sums are finite (else a sample is not, or they overflowed).
fn sums_finite(z: &Vector, yy: f32) -> bool {
    yy.is_finite() && z.iter().all(|v| v.is_finite())
}

impl PreparedView<'_> {
    /// Copies `R` and the constraint weights into `problem`, whose `z`, `c` and `phases` are
    /// set. It fills the caller's value in place: returning a 1.8 KiB `Problem` by value
    /// costs a copy that is measurable beside the whole fit on a Cortex-M4.
    fn load_problem<const W: usize>(&self, problem: &mut Problem<W>) {
        let (c, k) = problem.dims();
        for (row, src) in problem.r.iter_mut().zip(self.r.chunks_exact(c.max(1))) {
            for (dst, &v) in row.iter_mut().zip(src) {
                *dst = v;
            }
        }

        for (dst, &d) in problem.a.iter_mut().zip(self.scale).take(k) {
            *dst = d;
        }
    }

    /// Coefficients, residual, standard errors and fractions from the solution `u` of the
    /// scaled problem and `v = R u`.
    fn finish<const W: usize>(
        &self,
        problem: &Problem<W>,
        u: &[f32; W],
        v: &[f32; W],
        yy: f32,
        iterations: u32,
        end: End,
    ) -> Result<Fit, Error> {
        let (c, k) = problem.dims();
        let mut zz = 0.0f32;
        let mut tt = 0.0f32;
        for i in 0..c {
            zz += problem.z[i] * problem.z[i];
            let t = v[i] - problem.z[i];
            tt += t * t;
        }
        let rr = yy - zz + tt;
        if !rr.is_finite() {
            // A far-off constrained fit: the residual norm may fit in `f32`, its square not.
            return Err(Error::Overflow);
        }
        let rr = if rr > 0.0 { rr } else { 0.0 };

        let mut fit = Fit {
            coefficients: [0.0; MAX_COLUMNS],
            fractions: [0.0; MAX_PHASES],
            standard_errors: [0.0; MAX_COLUMNS],
            residual_norm: libm::sqrtf(rr),
            chi2: None,
            reduced_chi2: None,
            iterations,
            support: 0,
            status: match end {
                End::Converged => Status::Converged,
                End::Cap => Status::IterationCap,
                End::Singular => Status::Degenerate,
            },
            phases: k as u8,
            columns: c as u8,
        };
        for (j, (w, &d)) in fit
            .coefficients
            .iter_mut()
            .zip(self.scale)
            .take(c)
            .enumerate()
        {
            *w = d * u[j];
            if !w.is_finite() {
                return Err(Error::Overflow);
            }
            if j < k && *w != 0.0 {
                fit.support |= 1 << j;
            }
        }

        let dof = dof(self.shape.channels, &fit, self.shape.background.terms());
        let sigma = libm::sqrtf(per_dof(rr, dof));
        for (e, &f) in fit.standard_errors.iter_mut().zip(self.se).take(c) {
            *e = sigma * f;
        }

        let mut sum = 0.0f32;
        for &w in fit.coefficients.iter().take(k) {
            sum += w;
        }
        if sum > 0.0 && sum.is_finite() {
            for (f, &w) in fit.fractions.iter_mut().zip(&fit.coefficients).take(k) {
                *f = w / sum;
            }
        }
        Ok(fit)
    }
}

fn check_len(found: usize, expected: usize) -> Result<(), Error> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::LengthMismatch { expected, found })
    }
}

/// The one pass over `Q`: `z = Q^T y` and `||y||^2`, channel by channel in order (the loop
/// of [`crate::pass::multiply_add_pass`] plus one multiply-add for the norm).
///
/// The loop is instantiated for every column count up to [`MAX_COLUMNS`], so the `c`
/// accumulators are a fixed-size local array that the compiler keeps in registers; the
/// order of every sum is the same for each instance, so the bits are too.
fn project<S: Sample>(q: &[f32], c: usize, spectrum: &[S], z: &mut Vector) -> f32 {
    crate::pass::with_width!(c, C => project_fixed::<S, C>(q, spectrum, z), f32::NAN)
}

fn project_fixed<S: Sample, const C: usize>(q: &[f32], spectrum: &[S], z: &mut Vector) -> f32 {
    let mut acc = [0.0f32; C];
    let mut yy = 0.0f32;
    let (rows, _) = q.as_chunks::<C>();

    for (row, &sample) in rows.iter().zip(spectrum) {
        let y = sample.to_f32();
        yy += y * y;
        for j in 0..C {
            acc[j] += row[j] * y;
        }
    }

    for (dst, a) in z.iter_mut().zip(acc) {
        *dst = a;
    }
    yy
}

/// The error for a spectrum whose sums are not finite: the first non-finite sample, or an
/// overflow of finite samples.
fn first_non_finite<S: Sample>(spectrum: &[S]) -> Error {
    non_finite_among(spectrum.iter().map(|s| s.to_f32()))
}

/// [`first_non_finite`] for spectrum `lane` of a sample-interleaved block.
fn first_non_finite_at<S: Sample, const B: usize>(block: &[[S; B]], lane: usize) -> Error {
    non_finite_among(
        block
            .iter()
            .map(|samples| samples.get(lane).map_or(0.0, |s| s.to_f32())),
    )
}

fn non_finite_among(mut samples: impl Iterator<Item = f32>) -> Error {
    match samples.position(|y| !y.is_finite()) {
        Some(channel) => Error::NonFinite { channel },
        None => Error::Overflow,
    }
}

/// `R u` for the upper-triangular `R`.
fn multiply_r<const W: usize>(r: &Matrix<W>, u: &[f32; W], c: usize) -> [f32; W] {
    let c = c.min(W);
    let mut v = [0.0f32; W];
    for i in 0..c {
        let mut acc = 0.0f32;
        for j in i..c {
            acc += r[i][j] * u[j];
        }
        v[i] = acc;
    }
    v
}

/// The second pass: `f = Q v` channel by channel, written to `fitted` when given, and the
/// Poisson chi-square `sum (y - f)^2 / max(y, 1)`.
fn model_pass<S: Sample>(
    q: &[f32],
    c: usize,
    spectrum: &[S],
    v: &[f32],
    fitted: Option<&mut [f32]>,
) -> f32 {
    crate::pass::with_width!(
        c,
        C => match v.first_chunk::<C>() {
            Some(v) => model_fixed::<S, C>(q, spectrum, v, fitted),
            None => f32::NAN,
        },
        if c == 0 { 0.0 } else { f32::NAN }
    )
}

/// [`model_pass`] for a constant column count, so `v` and the row stay in registers; the
/// fitted spectrum is written in a loop of its own so the common case has no branch.
fn model_fixed<S: Sample, const C: usize>(
    q: &[f32],
    spectrum: &[S],
    v: &[f32; C],
    fitted: Option<&mut [f32]>,
) -> f32 {
    let (rows, _) = q.as_chunks::<C>();
    let model = |row: &[f32; C]| {
        let mut f = 0.0f32;
        for j in 0..C {
            f += row[j] * v[j];
        }
        f
    };
    let mut chi2 = 0.0f32;
    match fitted {
        Some(out) => {
            for ((row, &sample), slot) in rows.iter().zip(spectrum).zip(out) {
                let f = model(row);
                *slot = f;
                chi2 += chi2_term(sample.to_f32(), f);
            }
        }
        None => {
            for (row, &sample) in rows.iter().zip(spectrum) {
                chi2 += chi2_term(sample.to_f32(), model(row));
            }
        }
    }
    chi2
}

/// One channel's Poisson chi-square term, `(y - f)^2 / max(y, 1)`.
#[inline(always)]
fn chi2_term(y: f32, f: f32) -> f32 {
    let d = y - f;
    d * d / if y > 1.0 { y } else { 1.0 }
}

/// Degrees of freedom `n - m`, `m` = non-zero phases plus background terms.
fn dof(n: usize, fit: &Fit, terms: usize) -> usize {
    n.saturating_sub(fit.support.count_ones() as usize + terms)
}

/// `x / dof`, infinite for no degrees of freedom.
fn per_dof(x: f32, dof: usize) -> f32 {
    if dof == 0 {
        f32::INFINITY
    } else {
        x / dof as f32
    }
}

/// Solves the compressed problem by `method`: the scaled solution `u`, the iterations and how
/// the solver ended.
fn solve_method<const W: usize>(
    p: &Problem<W>,
    method: Method,
    cap: u32,
) -> Result<([f32; W], u32, End), Error> {
    let mut u = [0.0f32; W];
    let singular = |column| Error::RankDeficient { column };
    match method {
        Method::Lstsq => {
            solve::back_substitute(&p.r, &p.z, p.c, &mut u).map_err(singular)?;
            Ok((u, 0, End::Converged))
        }
        Method::Ridge { lambda } => {
            let root = libm::sqrtf(lambda);
            let mut rho = [0.0f32; W];
            for (r, &a) in rho.iter_mut().zip(&p.a).take(p.phases) {
                *r = root * a;
            }
            solve::ridge(&p.r, &p.z, &rho, p.c, &mut u).map_err(singular)?;
            Ok((u, 0, End::Converged))
        }
        Method::Nnls => {
            let out = p.active_set(false, cap);
            Ok((out.u, out.iterations, out.end))
        }
        Method::Fcls => {
            let out = p.active_set(true, cap);
            Ok((out.u, out.iterations, out.end))
        }
    }
}
