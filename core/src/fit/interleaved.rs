//! Fitting several spectra at once, for hosts.
//!
//! One spectrum's passes over `Q` are chains of dependent additions: every accumulator waits
//! for its previous value, so a wide out-of-order processor idles for most of each add's
//! latency. Given `B` spectra stored sample-interleaved (`block[i][b]` is channel `i` of
//! spectrum `b`), the passes here advance all `B` spectra channel by channel. Each spectrum's
//! sums are still formed in exactly the order [`PreparedView::fit`] forms them, so every
//! result has the bits of that spectrum fitted alone; but the `B` chains are independent, and
//! the compiler turns the `B` lanes into vector arithmetic. Measured on an x86-64 desktop core
//! with `B = 4` (`cargo bench -p unmix-host --bench throughput`, NNLS at 2048 x 8): whole fits
//! take 0.74 of the time of four separate fits without the chi-square and 0.46 with it. A
//! microcontroller gains nothing from it: use [`PreparedView::fit`] there.

use super::{
    Fit, FitOptions, Sample, Solution, Vector, chi2_term, first_non_finite_at, sums_finite,
};
use crate::{Error, MAX_COLUMNS, PreparedView};

impl PreparedView<'_> {
    /// Fits the `B` spectra of `block`, stored sample-interleaved (`block[i][b]` is channel
    /// `i` of spectrum `b`), each with exactly the result and bits of [`PreparedView::fit`] on
    /// that spectrum alone. Never panics.
    ///
    /// Stack: besides one fit's working arrays, `B` projections, models and results, about
    /// 0.45 KiB per spectrum; meant for small `B` (4 on a desktop core).
    ///
    /// # Errors
    /// Per spectrum, those of [`PreparedView::fit`]. A wrong `block` length, an invalid
    /// `lambda` or an empty library is every spectrum's error.
    pub fn fit_interleaved<S: Sample, const B: usize>(
        &self,
        block: &[[S; B]],
        options: &FitOptions,
    ) -> [Result<Fit, Error>; B] {
        let (c, k) = match self.check_fit(block.len(), options) {
            Ok(sizes) => sizes,
            Err(e) => return [Err(e); B],
        };

        let (z, yy) = project_interleaved(self.q, c, block);

        let mut models = [[0.0f32; MAX_COLUMNS]; B];
        let mut fits: [Result<Fit, Error>; B] = core::array::from_fn(|b| {
            if !sums_finite(&z[b], yy[b]) {
                return Err(first_non_finite_at(block, b));
            }
            let solution = Solution::new(z[b], yy[b], c, k, options);
            let (fit, v) = self.solve_any_width(options, &solution)?;
            if let Some(model) = models.get_mut(b) {
                *model = v;
            }
            Ok(fit)
        });

        if options.chi2 {
            let chi2 = model_interleaved(self.q, c, block, &models);
            for (fit, chi2) in fits.iter_mut().zip(chi2) {
                if let Ok(fit) = fit {
                    self.set_chi2(fit, Some(chi2));
                }
            }
        }
        fits
    }

    /// [`PreparedView::solve_compressed`] in the narrowest width that holds `c` columns,
    /// with `v = R u` widened to a [`Vector`].
    fn solve_any_width(
        &self,
        options: &FitOptions,
        solution: &Solution,
    ) -> Result<(Fit, Vector), Error> {
        fn widen<const W: usize>((fit, v): (Fit, [f32; W])) -> (Fit, Vector) {
            let mut wide = [0.0f32; MAX_COLUMNS];
            for (dst, src) in wide.iter_mut().zip(v) {
                *dst = src;
            }
            (fit, wide)
        }
        match solution.c {
            0..=4 => self.solve_compressed::<4>(options, solution).map(widen),
            5..=8 => self.solve_compressed::<8>(options, solution).map(widen),
            9..=12 => self.solve_compressed::<12>(options, solution).map(widen),
            13..=16 => self.solve_compressed::<16>(options, solution).map(widen),
            _ => self
                .solve_compressed::<MAX_COLUMNS>(options, solution)
                .map(widen),
        }
    }
}

/// The first pass for `B` interleaved spectra: `z_b = Q^T y_b` and `||y_b||^2`.
fn project_interleaved<S: Sample, const B: usize>(
    q: &[f32],
    c: usize,
    block: &[[S; B]],
) -> ([Vector; B], [f32; B]) {
    crate::pass::with_width!(
        c,
        C => project_fixed::<S, C, B>(q, block),
        ([[f32::NAN; MAX_COLUMNS]; B], [f32::NAN; B])
    )
}

/// [`project_interleaved`] for a constant column count. Per spectrum the operations are those
/// of `fit::project_fixed`, in the same order.
fn project_fixed<S: Sample, const C: usize, const B: usize>(
    q: &[f32],
    block: &[[S; B]],
) -> ([Vector; B], [f32; B]) {
    let mut acc = [[0.0f32; B]; C];
    let mut yy = [0.0f32; B];
    let (rows, _) = q.as_chunks::<C>();

    for (row, samples) in rows.iter().zip(block) {
        let y = samples.map(S::to_f32);
        for b in 0..B {
            yy[b] += y[b] * y[b];
        }
        for j in 0..C {
            for b in 0..B {
                acc[j][b] += row[j] * y[b];
            }
        }
    }

    let mut z = [[0.0f32; MAX_COLUMNS]; B];
    for (j, lanes) in acc.iter().enumerate() {
        for (zb, &value) in z.iter_mut().zip(lanes) {
            if let Some(slot) = zb.get_mut(j) {
                *slot = value;
            }
        }
    }
    (z, yy)
}

/// The chi-square pass for `B` interleaved spectra and their models `v_b = R u_b`.
fn model_interleaved<S: Sample, const B: usize>(
    q: &[f32],
    c: usize,
    block: &[[S; B]],
    models: &[Vector; B],
) -> [f32; B] {
    crate::pass::with_width!(
        c,
        C => model_fixed::<S, C, B>(q, block, models),
        [if c == 0 { 0.0 } else { f32::NAN }; B]
    )
}

/// [`model_interleaved`] for a constant column count. Per spectrum the operations are those
/// of `fit::model_fixed`, in the same order: `f = sum_j q_ij v_j` from `j = 0`, then
/// `(y - f)^2 / max(y, 1)` added to the running sum.
fn model_fixed<S: Sample, const C: usize, const B: usize>(
    q: &[f32],
    block: &[[S; B]],
    models: &[Vector; B],
) -> [f32; B] {
    let mut v = [[0.0f32; B]; C];
    for (j, lanes) in v.iter_mut().enumerate() {
        for (lane, model) in lanes.iter_mut().zip(models) {
            *lane = model.get(j).copied().unwrap_or(0.0);
        }
    }
    let (rows, _) = q.as_chunks::<C>();

    let mut chi2 = [0.0f32; B];
    for (row, samples) in rows.iter().zip(block) {
        let mut f = [0.0f32; B];
        for j in 0..C {
            for b in 0..B {
                f[b] += row[j] * v[j][b];
            }
        }
        let y = samples.map(S::to_f32);
        let mut terms = [0.0f32; B];
        for b in 0..B {
            terms[b] = chi2_term(y[b], f[b]);
        }
        for b in 0..B {
            chi2[b] += terms[b];
        }
    }
    chi2
}
