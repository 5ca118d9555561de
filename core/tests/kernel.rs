//! The fitting kernel against an independent `f64` reference, its byte format, its errors,
//! and regressions named after what they pin.

mod kernel_support;

use kernel_support::*;
use unmix::{
    Background, ByteFault, Error, FitOptions, Method, Prepared, PreparedView, Shape, Status,
};

const EPS: f64 = f32::EPSILON as f64;

/// Relative error of `got` against `want` in the scaled coordinates `u_j = w_j ||x_j||`, where
/// every column counts equally whatever its units.
fn scaled_error(cols: &[Vec<f64>], got: &[f32], want: &[f64]) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for ((c, &g), &w) in cols.iter().zip(got).zip(want) {
        let norm = dot(c, c).sqrt();
        num += ((f64::from(g) - w) * norm).powi(2);
        den += (w * norm).powi(2);
    }
    (num / den.max(1e-300)).sqrt()
}

fn view(lib: &Library, storage: &[f32]) -> PreparedView<'static> {
    let leaked: &'static [f32] = Box::leak(storage.to_vec().into_boxed_slice());
    PreparedView::new(lib.shape, leaked).expect("view")
}

/// The library's columns in `f64` and the estimate of their condition number after scaling
/// to unit norm ([`condition`]).
fn columns_and_condition(lib: &Library) -> (Vec<Vec<f64>>, f64) {
    let cols = lib.columns_f64();
    let refs: Vec<&[f64]> = cols.iter().map(|c| c.as_slice()).collect();
    let kappa = condition(&refs);
    (cols, kappa)
}

/// Random coefficients, each scaled by its column's inverse norm so that every phase
/// contributes a response of about the same size.
fn truth_of_even_responses(rng: &mut Rng, cols: &[Vec<f64>]) -> Vec<f64> {
    cols.iter()
        .map(|c| rng.normal() / dot(c, c).sqrt())
        .collect()
}

#[test]
fn lstsq_matches_f64_reference_up_to_cond_1e4_with_scales_spread_1e6() {
    let mut rng = Rng::new(1);
    let mut worst = 0.0f64;
    for &cond in &[1.0, 1e2, 1e3, 1e4] {
        for &k in &[2usize, 5, 8, 16] {
            let lib = conditioned(&mut rng, 300, k, cond, 6.0);
            let prepared = view(&lib, &lib.prepare());
            let (cols, kappa) = columns_and_condition(&lib);

            let truth = truth_of_even_responses(&mut rng, &cols);
            let y = to_f32(&lib.apply(&truth));
            let refs: Vec<&[f64]> = cols.iter().map(|c| c.as_slice()).collect();
            let want = lstsq(&refs, &to_f64(&y)).expect("reference");

            let fit = prepared
                .fit(&y, &FitOptions::new(Method::Lstsq))
                .expect("fit");
            let err = scaled_error(&cols, fit.phases(), &want);
            let bound = 4.0 * k as f64 * kappa * EPS;
            worst = worst.max(err / (kappa * EPS));
            assert!(
                err <= bound,
                "cond {cond} k {k}: error {err:e} > bound {bound:e} (kappa {kappa:e})"
            );
        }
    }
    eprintln!("lstsq: worst error / (kappa eps) = {worst:.3}");
}

#[test]
fn nnls_and_fcls_match_brute_force_on_nearly_collinear_peaks() {
    let centres: [&[f64]; 5] = [
        &[100.0, 300.0],
        &[103.0, 297.0],
        &[200.0],
        &[206.0, 400.0],
        &[50.0, 420.0],
    ];
    let mut rng = Rng::new(2);
    let mut worst = (0.0f64, 0.0f64);
    for background in [Background::None, Background::Chebyshev { degree: 2 }] {
        let lib = peaks(512, &centres, 6.0, background);
        let prepared = view(&lib, &lib.prepare());
        let (cols, kappa) = columns_and_condition(&lib);

        for trial in 0..20 {
            let mut truth: Vec<f64> = (0..cols.len()).map(|_| rng.uniform() * 100.0).collect();
            truth[trial % 5] = 0.0;
            let signal = lib.apply(&truth);
            let y: Vec<f32> = signal
                .iter()
                .map(|&v| (v + 3.0 * rng.normal()) as f32)
                .collect();
            let y64 = to_f64(&y);
            let c = cols.len();

            for (method, sum_to_one) in [(Method::Nnls, false), (Method::Fcls, true)] {
                let want = brute_force(&cols, 5, &y64, sum_to_one);
                let fit = prepared.fit(&y, &FitOptions::new(method)).expect("fit");
                assert_eq!(fit.status(), Status::Converged);

                let got: Vec<f64> = fit.coefficients().iter().map(|&v| f64::from(v)).collect();
                let excess = objective(&cols, &got, &y64) - objective(&cols, &want, &y64);
                let rel_obj = excess / dot(&y64, &y64);
                let err = scaled_error(&cols, fit.coefficients(), &want);
                let tan = (objective(&cols, &want, &y64) / dot(&y64, &y64)).sqrt();
                let bound = 4.0 * c as f64 * (kappa + kappa * kappa * tan) * EPS;
                worst.0 = worst.0.max(err / (kappa * EPS));
                worst.1 = worst.1.max(rel_obj);
                assert!(
                    err <= bound,
                    "{method:?}: error {err:e} > {bound:e} (kappa {kappa:e})"
                );
                assert!(
                    rel_obj <= 16.0 * c as f64 * EPS,
                    "{method:?}: objective excess {rel_obj:e}"
                );
            }
        }
    }
    eprintln!(
        "peaks: worst error / (kappa eps) = {:.3}, objective excess {:e}",
        worst.0, worst.1
    );
}

#[test]
fn fcls_phase_coefficients_sum_to_one_and_stay_non_negative() {
    let mut rng = Rng::new(3);
    let lib = positive(&mut rng, 200, 6, Background::Chebyshev { degree: 1 });
    let prepared = view(&lib, &lib.prepare());
    for _ in 0..50 {
        let y: Vec<f32> = (0..200).map(|_| (rng.uniform() * 5.0) as f32).collect();
        let fit = prepared
            .fit(&y, &FitOptions::new(Method::Fcls))
            .expect("fit");
        let sum: f64 = fit.phases().iter().map(|&v| f64::from(v)).sum();
        assert!((sum - 1.0).abs() <= 8.0 * EPS, "sum {sum}");
        assert!(fit.phases().iter().all(|&w| w >= 0.0));
    }
}

#[test]
fn residual_norm_matches_direct_f64_residual() {
    let mut rng = Rng::new(4);
    let lib = positive(&mut rng, 1024, 8, Background::Chebyshev { degree: 3 });
    let prepared = view(&lib, &lib.prepare());
    let cols = lib.columns_f64();
    for method in [
        Method::Lstsq,
        Method::Nnls,
        Method::Fcls,
        Method::Ridge { lambda: 10.0 },
    ] {
        let y: Vec<f32> = (0..1024)
            .map(|_| (100.0 + 10.0 * rng.normal()) as f32)
            .collect();
        let fit = prepared.fit(&y, &FitOptions::new(method)).expect("fit");
        let w: Vec<f64> = fit.coefficients().iter().map(|&v| f64::from(v)).collect();
        let y64 = to_f64(&y);
        let direct = objective(&cols, &w, &y64).sqrt();

        // ||y||^2 - ||z||^2 cancels: the error is relative to ||y||, not to the residual.
        let tol = 1024.0 * EPS * dot(&y64, &y64) / direct;
        let err = (f64::from(fit.residual_norm()) - direct).abs();
        assert!(
            err <= tol,
            "{method:?}: residual {} vs {direct} (tol {tol:e})",
            fit.residual_norm()
        );
    }
}

#[test]
fn fitted_spectrum_and_chi2_match_direct_evaluation() {
    let mut rng = Rng::new(5);
    let lib = positive(&mut rng, 256, 4, Background::None);
    let prepared = view(&lib, &lib.prepare());
    let y: Vec<u16> = (0..256).map(|_| (rng.uniform() * 50.0) as u16).collect();
    let options = FitOptions::new(Method::Nnls).with_chi2(true);
    let mut fitted = vec![0.0f32; 256];
    let fit = prepared
        .fit_with_model(&y, &options, &mut fitted)
        .expect("fit");

    let w: Vec<f64> = fit.coefficients().iter().map(|&v| f64::from(v)).collect();
    let model = lib.apply(&w);
    let scale = model.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (f, m) in fitted.iter().zip(&model) {
        assert!(
            (f64::from(*f) - m).abs() <= 64.0 * EPS * scale,
            "{f} vs {m}"
        );
    }

    let chi2: f64 = y
        .iter()
        .zip(&model)
        .map(|(&y, m)| (f64::from(y) - m).powi(2) / f64::from(y).max(1.0))
        .sum();
    let got = f64::from(fit.chi2().expect("chi2"));
    assert!((got - chi2).abs() <= 1e-4 * chi2, "chi2 {got} vs {chi2}");
    let dof = 256 - fit.support().count_ones() as usize;
    let reduced = f64::from(fit.reduced_chi2().expect("reduced"));
    assert!((reduced - got / dof as f64).abs() <= 1e-6 * reduced);

    // The plain fit gives the same bits without the second pass.
    let plain = prepared
        .fit(&y, &FitOptions::new(Method::Nnls))
        .expect("fit");
    assert_eq!(plain.coefficients(), fit.coefficients());
    assert_eq!(plain.chi2(), None);
}

#[test]
fn u16_u32_and_f32_samples_give_identical_bits() {
    let mut rng = Rng::new(6);
    let lib = positive(&mut rng, 128, 3, Background::Chebyshev { degree: 0 });
    let prepared = view(&lib, &lib.prepare());
    let counts: Vec<u16> = (0..128).map(|_| (rng.uniform() * 60000.0) as u16).collect();
    let wide: Vec<u32> = counts.iter().map(|&c| u32::from(c)).collect();
    let float: Vec<f32> = counts.iter().map(|&c| f32::from(c)).collect();
    let options = FitOptions::new(Method::Fcls).with_chi2(true);
    let a = prepared.fit(&counts, &options).expect("fit");
    let b = prepared.fit(&wide, &options).expect("fit");
    let c = prepared.fit(&float, &options).expect("fit");
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn bytes_round_trip_preserves_every_bit_and_the_identity() {
    let mut rng = Rng::new(7);
    let lib = positive(&mut rng, 64, 5, Background::Chebyshev { degree: 2 });
    let storage = lib.prepare();
    let prepared = view(&lib, &storage);

    let mut bytes = vec![0u8; prepared.bytes_len()];
    assert_eq!(prepared.to_bytes(&mut bytes), Ok(bytes.len()));
    let header = unmix::bytes::read_header(&bytes).expect("header");
    assert_eq!(header.shape, lib.shape);
    assert_eq!(header.id, prepared.library_id());

    let mut loaded = vec![0.0f32; header.shape.prepared_len()];
    let back = PreparedView::from_bytes(&bytes, &mut loaded).expect("load");
    for (a, b) in back.as_parts().iter().zip(prepared.as_parts()) {
        let a: Vec<u32> = a.iter().map(|v| v.to_bits()).collect();
        let b: Vec<u32> = b.iter().map(|v| v.to_bits()).collect();
        assert_eq!(a, b);
    }
    assert_eq!(back.library_id(), prepared.library_id());

    let y: Vec<f32> = (0..64).map(|_| rng.uniform() as f32).collect();
    let options = FitOptions::new(Method::Nnls);
    assert_eq!(back.fit(&y, &options), prepared.fit(&y, &options));
}

#[test]
fn fixed_size_owner_gives_the_bits_of_the_runtime_view() {
    let mut rng = Rng::new(8);
    let lib = positive(&mut rng, 96, 4, Background::Chebyshev { degree: 1 });
    let storage = lib.prepare();
    let runtime = view(&lib, &storage);

    let mut fixed: Box<Prepared<96, 6>> = Box::default();
    let mut scratch = vec![0.0f64; lib.shape.prepare_scratch_len()];
    fixed
        .prepare(&lib.x, lib.shape.background, &mut scratch)
        .expect("prepare");
    assert_eq!(fixed.view().library_id(), runtime.library_id());

    let mut bytes = vec![0u8; runtime.bytes_len()];
    runtime.to_bytes(&mut bytes).expect("bytes");
    let mut loaded: Box<Prepared<96, 6>> = Box::default();
    loaded.load_bytes(&bytes).expect("load");
    assert_eq!(loaded.view().library_id(), runtime.library_id());

    let y: Vec<f32> = (0..96).map(|_| rng.uniform() as f32).collect();
    for method in [
        Method::Lstsq,
        Method::Nnls,
        Method::Fcls,
        Method::Ridge { lambda: 0.5 },
    ] {
        let options = FitOptions::new(method);
        let want = runtime.fit(&y, &options);
        assert_eq!(fixed.view().fit(&y, &options), want);
        assert_eq!(loaded.view().fit(&y, &options), want);
    }
}

#[test]
fn corrupted_bytes_are_rejected_with_the_fault() {
    let mut rng = Rng::new(9);
    let lib = positive(&mut rng, 32, 2, Background::None);
    let storage = lib.prepare();
    let prepared = view(&lib, &storage);
    let mut bytes = vec![0u8; prepared.bytes_len()];
    prepared.to_bytes(&mut bytes).expect("bytes");
    let mut sink = vec![0.0f32; lib.shape.prepared_len()];

    let mut flipped = bytes.clone();
    flipped[100] ^= 1;
    assert!(matches!(
        PreparedView::from_bytes(&flipped, &mut sink),
        Err(Error::BadBytes {
            fault: ByteFault::Checksum { .. }
        })
    ));

    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert_eq!(
        PreparedView::from_bytes(&magic, &mut sink).unwrap_err(),
        Error::BadBytes {
            fault: ByteFault::Magic
        }
    );

    let mut version = bytes.clone();
    version[8] = 9;
    assert_eq!(
        PreparedView::from_bytes(&version, &mut sink).unwrap_err(),
        Error::BadBytes {
            fault: ByteFault::Version { found: 9 }
        }
    );

    assert!(matches!(
        PreparedView::from_bytes(&bytes[..bytes.len() - 1], &mut sink),
        Err(Error::LengthMismatch { .. })
    ));
    let mut short = vec![0.0f32; 3];
    assert!(matches!(
        PreparedView::from_bytes(&bytes, &mut short),
        Err(Error::LengthMismatch {
            expected: _,
            found: 3
        })
    ));
}

#[test]
fn errors_name_the_channel_column_and_lengths() {
    let mut rng = Rng::new(10);
    let mut lib = positive(&mut rng, 40, 3, Background::None);
    let storage = lib.prepare();
    let prepared = view(&lib, &storage);
    let options = FitOptions::new(Method::Nnls);

    let mut y = vec![1.0f32; 40];
    y[17] = f32::NAN;
    assert_eq!(
        prepared.fit(&y, &options),
        Err(Error::NonFinite { channel: 17 })
    );
    y[17] = f32::INFINITY;
    assert_eq!(
        prepared.fit(&y, &options),
        Err(Error::NonFinite { channel: 17 })
    );
    assert_eq!(
        prepared.fit(&[1.0f32; 39], &options),
        Err(Error::LengthMismatch {
            expected: 40,
            found: 39
        })
    );
    assert_eq!(prepared.fit(&[1e30f32; 40], &options), Err(Error::Overflow));
    let ridge = |lambda| FitOptions::new(Method::Ridge { lambda });
    assert_eq!(
        prepared.fit(&[1.0f32; 40], &ridge(-1.0)),
        Err(Error::InvalidLambda)
    );
    assert_eq!(
        prepared.fit(&[1.0f32; 40], &ridge(f32::NAN)),
        Err(Error::InvalidLambda)
    );

    let mut scratch = vec![0.0f64; lib.shape.prepare_scratch_len()];
    let mut out = vec![0.0f32; lib.shape.prepared_len()];
    lib.x[5 * 3 + 2] = f32::INFINITY;
    assert_eq!(
        unmix::prepare(lib.shape, &lib.x, &mut out, &mut scratch).unwrap_err(),
        Error::NonFiniteLibrary {
            channel: 5,
            column: 2
        }
    );

    // Column 2 = column 0 + column 1: dependent on the columns before it.
    for i in 0..40 {
        lib.x[i * 3 + 2] = lib.x[i * 3] + lib.x[i * 3 + 1];
    }
    assert_eq!(
        unmix::prepare(lib.shape, &lib.x, &mut out, &mut scratch).unwrap_err(),
        Error::RankDeficient { column: 2 }
    );

    let too_many = Shape::new(40, 17, Background::None);
    assert!(matches!(
        too_many.validate(),
        Err(Error::TooManyColumns { phases: 17, .. })
    ));
    let short = Shape::new(3, 3, Background::Chebyshev { degree: 1 });
    assert_eq!(
        short.validate(),
        Err(Error::TooFewChannels {
            channels: 3,
            columns: 5
        })
    );
    assert!(matches!(
        PreparedView::new(lib.shape, &storage[1..]),
        Err(Error::LengthMismatch { .. })
    ));

    let empty: Box<Prepared<8, 2>> = Box::default();
    assert_eq!(
        empty.view().fit(&[0.0f32; 8], &options),
        Err(Error::NoPhases)
    );
}

#[test]
fn regression_background_only_dependence_names_the_background_column() {
    // A constant phase duplicates T_0: the background column (index 1) is the dependent one.
    let lib = Library {
        shape: Shape::new(10, 1, Background::Chebyshev { degree: 1 }),
        x: vec![2.0; 10],
    };
    let mut out = vec![0.0f32; lib.shape.prepared_len()];
    let mut scratch = vec![0.0f64; lib.shape.prepare_scratch_len()];
    assert_eq!(
        unmix::prepare(lib.shape, &lib.x, &mut out, &mut scratch).unwrap_err(),
        Error::RankDeficient { column: 1 }
    );
}

#[test]
fn iteration_cap_is_reported_with_a_feasible_point() {
    let mut rng = Rng::new(11);
    let lib = conditioned(&mut rng, 200, 8, 10.0, 0.0);
    let prepared = view(&lib, &lib.prepare());
    let cols = lib.columns_f64();
    let truth: Vec<f64> = cols.iter().map(|c| 1.0 / dot(c, c).sqrt()).collect();
    let y = to_f32(&lib.apply(&truth));

    let fit = prepared
        .fit(&y, &FitOptions::new(Method::Nnls).with_max_iterations(1))
        .expect("fit");
    assert_eq!(fit.status(), Status::IterationCap);
    assert_eq!(fit.iterations(), 1);
    assert!(fit.phases().iter().all(|&w| w >= 0.0));

    let full = prepared
        .fit(&y, &FitOptions::new(Method::Nnls))
        .expect("fit");
    assert_eq!(full.status(), Status::Converged);
}

#[test]
fn zero_spectrum_gives_zero_coefficients_and_zero_fractions() {
    let mut rng = Rng::new(12);
    let lib = positive(&mut rng, 50, 3, Background::Chebyshev { degree: 1 });
    let prepared = view(&lib, &lib.prepare());
    let fit = prepared
        .fit(&[0u16; 50], &FitOptions::new(Method::Nnls))
        .expect("fit");
    assert!(fit.coefficients().iter().all(|&w| w == 0.0));
    assert!(fit.fractions().iter().all(|&f| f == 0.0));
    assert_eq!(fit.residual_norm(), 0.0);
    assert_eq!(fit.status(), Status::Converged);
}

#[test]
fn ridge_with_zero_lambda_gives_the_bits_of_lstsq() {
    let mut rng = Rng::new(13);
    let lib = conditioned(&mut rng, 100, 6, 1e3, 4.0);
    let prepared = view(&lib, &lib.prepare());
    let y: Vec<f32> = (0..100).map(|_| rng.normal() as f32).collect();
    let ls = prepared
        .fit(&y, &FitOptions::new(Method::Lstsq))
        .expect("fit");
    let ridge = prepared
        .fit(&y, &FitOptions::new(Method::Ridge { lambda: 0.0 }))
        .expect("fit");
    assert_eq!(ls, ridge);
}

#[test]
fn standard_errors_match_f64_covariance() {
    let mut rng = Rng::new(14);
    let lib = conditioned(&mut rng, 400, 5, 1e2, 2.0);
    let prepared = view(&lib, &lib.prepare());
    let cols = lib.columns_f64();
    let refs: Vec<&[f64]> = cols.iter().map(|c| c.as_slice()).collect();
    let y: Vec<f32> = (0..400).map(|_| rng.normal() as f32).collect();
    let fit = prepared
        .fit(&y, &FitOptions::new(Method::Lstsq))
        .expect("fit");

    let sigma2 = f64::from(fit.residual_norm()).powi(2) / (400 - 5) as f64;
    for j in 0..5 {
        // ((X^T X)^-1)_jj = 1 / dist_j^2.
        let others: Vec<&[f64]> = (0..5).filter(|&i| i != j).map(|i| refs[i]).collect();
        let w = lstsq(&others, refs[j]).expect("ls");
        let res: Vec<f64> = (0..400)
            .map(|i| refs[j][i] - others.iter().zip(&w).map(|(c, wk)| c[i] * wk).sum::<f64>())
            .collect();
        let want = (sigma2 / dot(&res, &res)).sqrt();
        let got = f64::from(fit.standard_errors()[j]);
        assert!((got - want).abs() <= 1e-4 * want, "se {j}: {got} vs {want}");
    }
}

#[test]
fn projection_has_the_bits_of_the_multiply_add_pass_for_every_column_count() {
    let mut rng = Rng::new(15);
    for k in 1..=16usize {
        for degree in [None, Some(0u8), Some(4)] {
            let background =
                degree.map_or(Background::None, |degree| Background::Chebyshev { degree });
            let lib = positive(&mut rng, 64, k, background);
            let storage = lib.prepare();
            let prepared = view(&lib, &storage);
            let c = lib.shape.columns();
            let y: Vec<f32> = (0..64).map(|_| rng.normal() as f32).collect();

            let mut z = vec![0.0f32; c];
            let yy = prepared.project(&y, &mut z).expect("project");
            let mut want = vec![0.0f32; c];
            unmix::pass::multiply_add_pass(prepared.as_parts()[0], &y, &mut want);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&z), bits(&want), "k {k}, {background:?}");

            let mut norm = 0.0f32;
            for &v in &y {
                norm += v * v;
            }
            assert_eq!(yy.to_bits(), norm.to_bits());
        }
    }
}

/// A phase whose overlaps with two others are near 1e-31 (the far tails of peaks) puts two
/// such entries above the diagonal of `R`. The Givens rotation that zeroed one against the
/// other squared them to a zero radius, so the subproblem turned NaN, the phase was blocked
/// and NNLS returned every coefficient zero with `Converged`, although the spectrum is five
/// times that phase.
#[test]
fn nnls_keeps_a_phase_whose_overlaps_with_the_others_square_to_zero() {
    let library = [
        1.0, 0.0, 1e-31, //
        0.0, 1.0, 1e-31, //
        0.0, 0.0, 1.0, //
        0.0, 0.0, 0.0f32,
    ];
    let shape = Shape::new(4, 3, Background::None);
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    let prepared = unmix::prepare(shape, &library, &mut storage, &mut scratch).unwrap();

    let spectrum = [-1.0f32, -1.0, 5.0, 0.5];
    let fit = prepared
        .fit(&spectrum, &FitOptions::new(Method::Nnls))
        .unwrap();

    assert_eq!(fit.status(), Status::Converged);
    assert_eq!(&fit.phases()[..2], &[0.0, 0.0]);
    assert!(
        (fit.phases()[2] - 5.0).abs() <= 4.0 * f32::EPSILON * 5.0,
        "{:?}",
        fit.phases()
    );
}

/// A prepared library's header may name any 32-bit channel count. On a 32-bit target the
/// sizes derived from a few billion channels wrapped; such shapes are now refused first,
/// and the largest shape allowed still has a byte length that fits in 32 bits.
#[test]
fn a_shape_beyond_max_channels_is_refused_before_any_size_is_computed() {
    let too_many = unmix::MAX_CHANNELS + 1;
    assert_eq!(
        Shape::new(too_many, 1, Background::None).validate(),
        Err(Error::TooManyChannels { channels: too_many })
    );

    let widest = Shape::new(
        unmix::MAX_CHANNELS,
        unmix::MAX_PHASES,
        Background::Chebyshev {
            degree: unmix::MAX_DEGREE as u8,
        },
    );
    assert_eq!(widest.validate(), Ok(()));
    assert!(widest.bytes_len() <= u32::MAX as usize / 2);
    assert!(8 * widest.prepare_scratch_len() <= u32::MAX as usize);
}

#[test]
fn nnls_and_fcls_match_brute_force_up_to_cond_1e4_with_scales_spread_1e6() {
    let mut rng = Rng::new(3);
    let mut worst = 0.0f64;
    let mut worst_objective = 0.0f64;
    for &cond in &[1.0, 1e2, 1e3, 1e4] {
        for &k in &[2usize, 3, 5] {
            for trial in 0..4 {
                let lib = conditioned(&mut rng, 300, k, cond, 6.0);
                let prepared = view(&lib, &lib.prepare());
                let (cols, kappa) = columns_and_condition(&lib);

                // Coefficients summing to one, one phase absent, a little noise.
                let mut truth: Vec<f64> = (0..k).map(|_| rng.uniform() + 0.1).collect();
                truth[trial % k] = 0.0;
                let total: f64 = truth.iter().sum();
                truth.iter_mut().for_each(|w| *w /= total);
                let signal = lib.apply(&truth);
                let size = dot(&signal, &signal).sqrt() / (300f64).sqrt();
                let y: Vec<f32> = signal
                    .iter()
                    .map(|&v| (v + 1e-3 * size * rng.normal()) as f32)
                    .collect();
                let y64 = to_f64(&y);

                for (method, sum_to_one) in [(Method::Nnls, false), (Method::Fcls, true)] {
                    let want = brute_force(&cols, k, &y64, sum_to_one);
                    let fit = prepared.fit(&y, &FitOptions::new(method)).expect("fit");
                    assert_eq!(fit.status(), Status::Converged, "{method:?}");

                    // Least-squares perturbation (kappa, and kappa^2 times the residual's
                    // tangent), plus the active set's stopping rule: a phase whose gradient
                    // is within 8 c eps ||z|| stays at zero, which moves the coefficients
                    // by up to that over the smallest squared singular value, kappa^2.
                    let got: Vec<f64> = fit.coefficients().iter().map(|&v| f64::from(v)).collect();
                    let err = scaled_error(&cols, fit.coefficients(), &want);
                    let tan = (objective(&cols, &want, &y64) / dot(&y64, &y64)).sqrt();
                    let c = k as f64;
                    let bound = 4.0 * c * (kappa + kappa * kappa * (tan + 2.0 * c)) * EPS;
                    worst = worst.max(err / (kappa * EPS));
                    assert!(
                        err <= bound,
                        "{method:?} cond {cond} k {k}: error {err:e} > {bound:e} \
                         (kappa {kappa:e})"
                    );

                    // Whatever the conditioning, the fit is feasible and its objective is
                    // the optimum's to rounding.
                    assert!(got.iter().all(|&w| w >= 0.0), "{method:?}: {got:?}");
                    if sum_to_one {
                        let sum: f64 = got.iter().sum();
                        assert!((sum - 1.0).abs() <= 4.0 * c * EPS, "{method:?}: sum {sum}");
                    }
                    let excess = (objective(&cols, &got, &y64) - objective(&cols, &want, &y64))
                        / dot(&y64, &y64);
                    assert!(
                        excess.abs() <= 16.0 * c * EPS,
                        "{method:?} cond {cond} k {k}: objective excess {excess:e}"
                    );
                    worst_objective = worst_objective.max(excess.abs());
                }
            }
        }
    }
    eprintln!(
        "nnls/fcls, conditioned: worst error / (kappa eps) = {worst:.3}, \
         objective excess {worst_objective:e}"
    );
}

#[test]
fn ridge_matches_f64_augmented_least_squares_up_to_cond_1e4() {
    let mut rng = Rng::new(4);
    let mut worst = 0.0f64;
    for &cond in &[1.0, 1e2, 1e3, 1e4] {
        for &k in &[2usize, 5, 8] {
            let lib = conditioned(&mut rng, 300, k, cond, 6.0);
            let prepared = view(&lib, &lib.prepare());
            let (cols, kappa) = columns_and_condition(&lib);

            let truth = truth_of_even_responses(&mut rng, &cols);
            let y = to_f32(&lib.apply(&truth));

            // Penalise about as much as the median column's squared norm: strong for the
            // small columns, mild for the large ones.
            let mut squares: Vec<f64> = cols.iter().map(|c| dot(c, c)).collect();
            squares.sort_by(f64::total_cmp);
            let lambda = squares[k / 2] as f32;

            // min ||y - X w||^2 + lambda ||w||^2 is least squares on [X; sqrt(lambda) I].
            let root = f64::from(lambda).sqrt();
            let augmented: Vec<Vec<f64>> = cols
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    let mut column = c.clone();
                    column.extend((0..k).map(|t| if t == j { root } else { 0.0 }));
                    column
                })
                .collect();
            let refs_aug: Vec<&[f64]> = augmented.iter().map(|c| c.as_slice()).collect();
            let mut y_aug = to_f64(&y);
            y_aug.extend(std::iter::repeat_n(0.0, k));
            let want = lstsq(&refs_aug, &y_aug).expect("reference");

            let fit = prepared
                .fit(&y, &FitOptions::new(Method::Ridge { lambda }))
                .expect("fit");
            let err = scaled_error(&cols, fit.phases(), &want);
            let bound = 4.0 * k as f64 * kappa * EPS;
            worst = worst.max(err / (kappa * EPS));
            assert!(
                err <= bound,
                "cond {cond} k {k}: error {err:e} > bound {bound:e} (kappa {kappa:e})"
            );
        }
    }
    eprintln!("ridge: worst error / (kappa eps) = {worst:.3}");
}
