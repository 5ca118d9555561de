//! `PreparedView::fit_interleaved` gives, for every spectrum of a block, the bits that
//! `PreparedView::fit` gives for that spectrum alone: over random libraries (1 to 21 columns,
//! with and without background), every method, with and without chi-square, `f32` and `u16`
//! samples, blocks of 1 to 5 spectra, and blocks holding spectra that fail.

mod kernel_support;

use kernel_support::{Library, Rng, positive};
use proptest::prelude::*;
use unmix::{Background, Error, Fit, FitOptions, Method, PreparedView, Sample};

/// Every number of a fit as bits, so `-0.0` and `0.0` or two NaNs are told apart.
fn bits(fit: &Fit) -> Vec<u32> {
    let numbers = fit
        .coefficients()
        .iter()
        .chain(fit.fractions())
        .chain(fit.standard_errors())
        .copied()
        .chain([fit.residual_norm()])
        .chain(fit.chi2())
        .chain(fit.reduced_chi2());
    let mut bits: Vec<u32> = numbers.map(f32::to_bits).collect();
    bits.extend([fit.iterations(), fit.support(), fit.status() as u32]);
    bits
}

fn same(alone: &Result<Fit, Error>, together: &Result<Fit, Error>) -> Result<(), String> {
    match (alone, together) {
        (Ok(a), Ok(b)) if bits(a) == bits(b) => Ok(()),
        (Err(a), Err(b)) if a == b => Ok(()),
        _ => Err(format!("alone {alone:?}\ntogether {together:?}")),
    }
}

fn library(seed: u64, k: usize, degree: usize) -> Library {
    let mut rng = Rng::new(seed);
    let background = match degree {
        0 => Background::None,
        d => Background::Chebyshev {
            degree: (d - 1) as u8,
        },
    };
    let n = k + background.terms() + 4 + (seed % 60) as usize;
    positive(&mut rng, n, k, background)
}

/// Checks every lane of `block` against the spectrum fitted alone.
fn check_block<S: Sample, const B: usize>(
    view: &PreparedView<'_>,
    block: &[[S; B]],
    options: &FitOptions,
) -> Result<(), String> {
    let together = view.fit_interleaved(block, options);
    for (lane, together) in together.iter().enumerate() {
        let spectrum: Vec<S> = block.iter().map(|samples| samples[lane]).collect();
        let alone = view.fit(&spectrum, options);
        same(&alone, together).map_err(|e| format!("lane {lane}: {e}"))?;
    }
    Ok(())
}

/// `B` spectra of counts (a mixture plus noise, a few with a poisoned channel), interleaved.
fn counts_block<const B: usize>(rng: &mut Rng, lib: &Library, poison: bool) -> Vec<[f32; B]> {
    let mut block = vec![[0.0f32; B]; lib.n()];
    for lane in 0..B {
        let w: Vec<f64> = (0..lib.shape.columns())
            .map(|_| rng.uniform() * 100.0)
            .collect();
        for (i, y) in lib.apply(&w).into_iter().enumerate() {
            block[i][lane] = (y + 3.0 * rng.normal()).round().max(0.0) as f32;
        }
        if poison && lane % 2 == 1 {
            let channel = (rng.next_u64() as usize) % lib.n();
            block[channel][lane] = if lane % 4 == 1 {
                f32::NAN
            } else {
                f32::INFINITY
            };
        }
    }
    block
}

fn methods(lambda: f32) -> [Method; 4] {
    [
        Method::Lstsq,
        Method::Ridge { lambda },
        Method::Nnls,
        Method::Fcls,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn each_lane_has_the_bits_of_its_spectrum_fitted_alone(
        seed in any::<u64>(),
        k in 1usize..=16,
        degree in 0usize..=5,
        chi2 in any::<bool>(),
        poison in any::<bool>(),
    ) {
        let lib = library(seed, k, degree);
        let storage = lib.prepare();
        let view = PreparedView::new(lib.shape, &storage).expect("view");
        let mut rng = Rng::new(seed ^ 0x5eed);

        for method in methods(rng.uniform() as f32) {
            let options = FitOptions::new(method).with_chi2(chi2);
            let four = counts_block::<4>(&mut rng, &lib, poison);
            check_block(&view, &four, &options).map_err(TestCaseError::fail)?;

            let counts: Vec<[u16; 4]> = four
                .iter()
                .map(|samples| samples.map(|y| if y.is_finite() { y as u16 } else { 7 }))
                .collect();
            check_block(&view, &counts, &options).map_err(TestCaseError::fail)?;

            check_block(&view, &counts_block::<1>(&mut rng, &lib, poison), &options)
                .map_err(TestCaseError::fail)?;
            check_block(&view, &counts_block::<5>(&mut rng, &lib, poison), &options)
                .map_err(TestCaseError::fail)?;
        }
    }
}

#[test]
fn the_widest_library_and_a_low_iteration_cap_agree_too() {
    let lib = library(3, 16, 5);
    assert_eq!(lib.shape.columns(), 21);
    let storage = lib.prepare();
    let view = PreparedView::new(lib.shape, &storage).expect("view");
    let mut rng = Rng::new(11);
    let block = counts_block::<4>(&mut rng, &lib, false);

    for method in methods(0.5) {
        let options = FitOptions::new(method)
            .with_chi2(true)
            .with_max_iterations(2);
        check_block(&view, &block, &options).unwrap();
    }
}

#[test]
fn a_block_of_the_wrong_length_or_a_bad_lambda_fails_every_lane() {
    let lib = library(5, 3, 1);
    let storage = lib.prepare();
    let view = PreparedView::new(lib.shape, &storage).expect("view");
    let short = vec![[1.0f32; 3]; lib.n() - 1];
    let options = FitOptions::new(Method::Nnls);

    let results = view.fit_interleaved(&short, &options);
    let expected = Err(Error::LengthMismatch {
        expected: lib.n(),
        found: lib.n() - 1,
    });
    assert_eq!(results, [expected; 3]);

    let full = vec![[1.0f32; 3]; lib.n()];
    let bad = FitOptions::new(Method::Ridge { lambda: -1.0 });
    assert_eq!(
        view.fit_interleaved(&full, &bad),
        [Err(Error::InvalidLambda); 3]
    );
}
