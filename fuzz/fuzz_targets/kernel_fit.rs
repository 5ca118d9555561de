//! The kernel end to end: prepare a library of any shape and values, then fit with every
//! method.
//!
//! Holds: no panic; prepare and fit fail only with their documented errors, each naming a
//! true fault; a prepared library survives its byte format; the iteration cap holds; a fit
//! that returns `Ok` has finite coefficients and, for NNLS and FCLS, feasible ones; a
//! converged fit has finite fractions, residual and standard errors (`+inf` only with no
//! degrees of freedom, as documented); `fit_with_model` and each lane of `fit_interleaved`
//! give the bits of `fit`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use unmix::{Background, Error, Fit, FitOptions, Method, PreparedView, Shape, Status};
use unmix_fuzz::Input;

fuzz_target!(|data: &[u8]| run(&mut Input::new(data)));

fn run(input: &mut Input) {
    let channels = input.range(1, 96);
    let phases = input.range(1, 16);
    let background = match input.range(0, 5) {
        5 => Background::None,
        degree => Background::Chebyshev {
            degree: degree as u8,
        },
    };
    let shape = Shape::new(channels, phases, background);
    assert!(shape.columns() <= unmix::MAX_COLUMNS);

    let library = library(input, channels, phases);
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    let prepared = match unmix::prepare(shape, &library, &mut storage, &mut scratch) {
        Ok(prepared) => prepared,
        Err(error) => return check_prepare_error(error, shape, &library),
    };

    let mut bytes = vec![0u8; prepared.bytes_len()];
    prepared.to_bytes(&mut bytes).expect("sized by bytes_len");
    let mut reloaded = vec![0.0f32; shape.prepared_len()];
    let loaded = PreparedView::from_bytes(&bytes, &mut reloaded)
        .expect("a library that prepares must load from its own bytes");
    assert_eq!(loaded.library_id(), prepared.library_id());

    for _ in 0..2 {
        let spectrum = spectrum(input, &library, shape);
        fit_every_way(input, &prepared, &spectrum);
    }
    let counts: Vec<u16> = (0..channels).map(|_| input.u32() as u16).collect();
    let options = FitOptions::new(Method::Nnls).with_chi2(true);
    let fit = prepared.fit(&counts, &options);
    let as_f32: Vec<f32> = counts.iter().map(|&c| f32::from(c)).collect();
    check_result(&fit, options, &prepared, &as_f32);
}

/// `n x k` values, channel-major: raw bit patterns, or a generic library with column scales
/// from `1e-30` to `1e30`, duplicated, proportional or zero columns and sprinkled specials.
fn library(input: &mut Input, n: usize, k: usize) -> Vec<f32> {
    let mut x = vec![0.0f32; n * k];
    if input.one_in(4) {
        x.iter_mut().for_each(|v| *v = input.f32_bits());
        return x;
    }

    let nonnegative = input.one_in(2);
    for j in 0..k {
        let scale = if input.one_in(3) { input.scale() } else { 1.0 };
        for i in 0..n {
            let v = input.unit();
            x[i * k + j] = scale * if nonnegative { v.abs() } else { v };
        }
    }
    for _ in 0..input.range(0, 3) {
        let (from, to) = (input.range(0, k - 1), input.range(0, k - 1));
        let factor = match input.range(0, 3) {
            0 => 0.0,
            1 => 1.0,
            2 => input.scale(),
            _ => input.f32_bits(),
        };
        for i in 0..n {
            x[i * k + to] = factor * x[i * k + from];
        }
    }
    if input.one_in(8) {
        let at = input.range(0, n * k - 1);
        x[at] = input.f32_bits();
    }
    x
}

/// A spectrum for `shape`: raw bit patterns, or the library times fuzzed weights plus noise,
/// or (rarely) of the wrong length.
fn spectrum(input: &mut Input, library: &[f32], shape: Shape) -> Vec<f32> {
    let (n, k) = (shape.channels, shape.phases);
    if input.one_in(32) {
        return vec![1.0; input.range(0, 2 * n)];
    }
    if input.one_in(3) {
        return (0..n).map(|_| input.f32_bits()).collect();
    }

    let weights: Vec<f32> = (0..k)
        .map(|_| match input.range(0, 3) {
            0 => 0.0,
            1 => input.unit().abs(),
            2 => input.scale(),
            _ => input.f32_bits(),
        })
        .collect();
    let noise = if input.one_in(2) { 0.0 } else { input.scale() };
    (0..n)
        .map(|i| {
            let row = &library[i * k..(i + 1) * k];
            let clean: f32 = row.iter().zip(&weights).map(|(x, w)| x * w).sum();
            clean + noise * input.unit()
        })
        .collect()
}

fn fit_every_way(input: &mut Input, prepared: &PreparedView<'_>, spectrum: &[f32]) {
    let shape = prepared.shape();
    let lambda = match input.range(0, 3) {
        0 => 0.0,
        1 => input.scale(),
        _ => input.f32_bits(),
    };
    let methods = [
        Method::Lstsq,
        Method::Ridge { lambda },
        Method::Nnls,
        Method::Fcls,
    ];
    let mut model = vec![0.0f32; shape.channels];

    for method in methods {
        let mut options = FitOptions::new(method).with_chi2(input.one_in(2));
        if input.one_in(4) {
            options = options.with_max_iterations(input.range(0, 40) as u32);
        }

        let plain = prepared.fit(spectrum, &options);
        check_result(&plain, options, prepared, spectrum);

        if spectrum.len() == shape.channels {
            let modelled = prepared.fit_with_model(spectrum, &options, &mut model);
            same_result(&plain, &modelled, "fit_with_model");
        }

        // Two lanes, the spectrum and its half, interleaved: each lane has the bits of
        // its spectrum fitted alone (a wrong length fails both lanes alike).
        let halved: Vec<f32> = spectrum.iter().map(|&y| 0.5 * y).collect();
        let block: Vec<[f32; 2]> = spectrum
            .iter()
            .zip(&halved)
            .map(|(&a, &b)| [a, b])
            .collect();
        let [first, second] = prepared.fit_interleaved(&block, &options);
        same_result(&plain, &first, "fit_interleaved");
        same_result(&prepared.fit(&halved, &options), &second, "fit_interleaved");
    }
}

fn check_prepare_error(error: Error, shape: Shape, library: &[f32]) {
    let k = shape.phases;
    match error {
        Error::TooFewChannels { channels, columns } => {
            assert_eq!((channels, columns), (shape.channels, shape.columns()));
            assert!(channels < columns);
        }
        Error::NonFiniteLibrary { channel, column } => {
            let at = channel * k + column;
            assert!(column < k && !library[at].is_finite(), "{error:?}");
            assert!(library[..at].iter().all(|v| v.is_finite()), "{error:?}");
        }
        Error::Overflow => assert!(library.iter().all(|v| v.is_finite()), "{error:?}"),
        Error::RankDeficient { column } => {
            assert!(column < shape.columns(), "{error:?}");
            assert!(library.iter().all(|v| v.is_finite()), "{error:?}");
        }
        other => panic!("prepare failed with an undocumented error: {other:?}"),
    }
}

/// The invariants of one fit result.
fn check_result(
    result: &Result<Fit, Error>,
    options: FitOptions,
    view: &PreparedView<'_>,
    y: &[f32],
) {
    let shape = view.shape();
    let factors = view.as_parts()[3];
    let fit = match result {
        Ok(fit) => fit,
        Err(error) => return check_fit_error(*error, options, shape, y),
    };

    let (k, c) = (shape.phases, shape.columns());
    assert_eq!((fit.phases().len(), fit.coefficients().len()), (k, c));
    assert!(fit.coefficients().iter().all(|w| w.is_finite()), "{fit:?}");

    // Documented: the first subproblem of FCLS or a fit with background always runs.
    let cap = options.max_iterations.unwrap_or(3 * c as u32).max(1);
    assert!(
        fit.iterations() <= cap,
        "{} iterations, cap {cap}",
        fit.iterations()
    );

    let constrained = matches!(options.method, Method::Nnls | Method::Fcls);
    if constrained {
        assert!(fit.phases().iter().all(|&w| w >= 0.0), "{fit:?}");
    } else {
        assert_eq!(fit.iterations(), 0);
        assert_eq!(fit.status(), Status::Converged);
    }
    if fit.status() != Status::Converged {
        return;
    }

    assert!(fit.fractions().iter().all(|f| f.is_finite()), "{fit:?}");
    let residual = fit.residual_norm();
    assert!(
        residual.is_finite() && residual >= 0.0,
        "{shape:?} {options:?} {fit:?}"
    );
    // Documented: +inf with no degrees of freedom, or beyond the f32 range.
    let used = fit.support().count_ones() as usize + shape.background.terms();
    let dof = shape.channels.saturating_sub(used);
    let sigma = f64::from(residual) / (dof as f64).sqrt();
    for (&e, &factor) in fit.standard_errors().iter().zip(factors) {
        let beyond = dof == 0 || sigma * f64::from(factor) > 0.5 * f64::from(f32::MAX);
        assert!(
            e >= 0.0 && (e.is_finite() || (beyond && e == f32::INFINITY)),
            "standard error {e} with {} channels, {used} used: {fit:?}",
            shape.channels
        );
    }

    if options.method == Method::Fcls {
        let sum: f32 = fit.phases().iter().sum();
        assert!(
            (sum - 1.0).abs() <= 1e-3,
            "FCLS phases sum to {sum}: {fit:?}"
        );
    }
}

fn check_fit_error(error: Error, options: FitOptions, shape: Shape, y: &[f32]) {
    match error {
        Error::LengthMismatch { expected, found } => {
            assert_eq!((expected, found), (shape.channels, y.len()));
        }
        Error::NonFinite { channel } => {
            assert!(!y[channel].is_finite(), "{error:?}");
            assert!(y[..channel].iter().all(|v| v.is_finite()), "{error:?}");
        }
        Error::Overflow => assert!(y.iter().all(|v| v.is_finite()), "{error:?}"),
        Error::InvalidLambda => {
            let Method::Ridge { lambda } = options.method else {
                panic!("InvalidLambda without ridge");
            };
            assert!(!(lambda.is_finite() && lambda >= 0.0));
        }
        other => panic!("fit failed with an undocumented error: {other:?}"),
    }
}

/// Both results carry the same bits (or the same error).
/// `a` from `fit`, `b` the same fit through `what`: the same bits or the same error.
fn same_result(a: &Result<Fit, Error>, b: &Result<Fit, Error>, what: &str) {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            let bits = |fit: &Fit| {
                let mut all: Vec<u32> = fit.coefficients().iter().map(|v| v.to_bits()).collect();
                all.extend(fit.fractions().iter().map(|v| v.to_bits()));
                all.extend(fit.standard_errors().iter().map(|v| v.to_bits()));
                all.push(fit.residual_norm().to_bits());
                all.push(fit.chi2().map_or(0, f32::to_bits));
                all.extend([fit.iterations(), fit.support()]);
                (all, fit.status())
            };
            assert_eq!(bits(a), bits(b), "{what} changed the fit");
        }
        (a, b) => assert_eq!(a.as_ref().err(), b.as_ref().err()),
    }
}
