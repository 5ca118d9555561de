//! Property tests of the fitting kernel: optimality conditions, agreement with brute force,
//! projection, ridge and sum-to-one invariants over random libraries and spectra.

mod kernel_support;

use kernel_support::{
    Library, Rng, brute_force, condition, dot, objective, positive, to_f32, to_f64,
};
use proptest::prelude::*;
use unmix::{Background, FitOptions, Method, PreparedView, Shape, Status};

const EPS: f64 = f32::EPSILON as f64;

/// A random non-negative library with an optional background and a spectrum made of a
/// non-negative mixture plus noise, from one seed.
#[derive(Debug, Clone)]
struct Case {
    lib: Library,
    y: Vec<f32>,
}

fn case(max_phases: usize) -> impl Strategy<Value = Case> {
    (1..=max_phases, 0usize..=3, any::<u64>(), 0.0f64..2.0).prop_map(|(k, bg, seed, noise)| {
        let mut rng = Rng::new(seed);
        let background = if bg == 0 {
            Background::None
        } else {
            Background::Chebyshev {
                degree: (bg - 1) as u8,
            }
        };
        let n = k + background.terms() + 8 + (seed % 40) as usize;
        let lib = positive(&mut rng, n, k, background);

        let w: Vec<f64> = (0..k + background.terms())
            .map(|j| {
                if j < k && rng.uniform() < 0.3 {
                    0.0
                } else {
                    rng.normal() + 0.5
                }
            })
            .collect();
        let y = lib
            .apply(&w)
            .iter()
            .map(|&v| (v + noise * rng.normal()) as f32)
            .collect();
        Case { lib, y }
    })
}

fn prepared(lib: &Library) -> (Vec<f32>, Shape) {
    (lib.prepare(), lib.shape)
}

/// `X_s^T (y - X w)` with unit-scaled columns, in `f64`.
fn gradient(cols: &[Vec<f64>], w: &[f32], y: &[f64]) -> Vec<f64> {
    let wf: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let model: Vec<f64> = (0..y.len())
        .map(|i| cols.iter().zip(&wf).map(|(c, w)| c[i] * w).sum())
        .collect();
    let r: Vec<f64> = y.iter().zip(&model).map(|(a, b)| a - b).collect();
    cols.iter().map(|c| dot(c, &r) / dot(c, c).sqrt()).collect()
}

fn kappa(lib: &Library) -> f64 {
    let cols = lib.columns_f64();
    let refs: Vec<&[f64]> = cols.iter().map(|c| c.as_slice()).collect();
    condition(&refs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn nnls_satisfies_the_kkt_conditions(case in case(8)) {
        let (storage, shape) = prepared(&case.lib);
        let view = PreparedView::new(shape, &storage).unwrap();
        let fit = view.fit(&case.y, &FitOptions::new(Method::Nnls)).unwrap();
        prop_assert_eq!(fit.status(), Status::Converged);

        let cols = case.lib.columns_f64();
        let y = to_f64(&case.y);
        let g = gradient(&cols, fit.coefficients(), &y);
        let k = shape.phases;
        let tol = 16.0 * cols.len() as f64 * kappa(&case.lib) * EPS * dot(&y, &y).sqrt();
        for (j, (&w, &gj)) in fit.coefficients().iter().zip(&g).enumerate() {
            if j < k {
                prop_assert!(w >= 0.0, "phase {} negative: {}", j, w);
            }
            if j < k && w == 0.0 {
                prop_assert!(gj <= tol, "zero phase {} could improve: g {:e} > {:e}", j, gj, tol);
            } else {
                prop_assert!(
                    gj.abs() <= tol,
                    "column {} not stationary: g {:e} > {:e}", j, gj, tol
                );
            }
        }
    }

    #[test]
    fn nnls_and_fcls_agree_with_brute_force_active_sets(case in case(5)) {
        let (storage, shape) = prepared(&case.lib);
        let view = PreparedView::new(shape, &storage).unwrap();
        let cols = case.lib.columns_f64();
        let y = to_f64(&case.y);
        let scale = dot(&y, &y).max(1e-30);
        let kap = kappa(&case.lib);

        for (method, sum_to_one) in [(Method::Nnls, false), (Method::Fcls, true)] {
            let fit = view.fit(&case.y, &FitOptions::new(method)).unwrap();
            let want = brute_force(&cols, shape.phases, &y, sum_to_one);
            let got: Vec<f64> = fit.coefficients().iter().map(|&v| f64::from(v)).collect();
            prop_assert!(got[..shape.phases].iter().all(|&w| w >= 0.0), "{:?}: {:?}", method, got);
            if sum_to_one {
                let sum: f64 = got[..shape.phases].iter().sum();
                let slack = 4.0 * shape.phases as f64 * EPS;
                prop_assert!((sum - 1.0).abs() <= slack, "{:?}: sum {}", method, sum);
            }

            // Feasible, so it cannot beat the optimum by more than rounding either way.
            let excess = (objective(&cols, &got, &y) - objective(&cols, &want, &y)) / scale;
            let tol = 64.0 * cols.len() as f64 * kap * EPS;
            prop_assert!(
                excess.abs() <= tol,
                "{:?}: objective excess {:e} beyond {:e}", method, excess, tol
            );
        }
    }

    #[test]
    fn fcls_sums_to_one_and_background_is_free(case in case(8)) {
        let (storage, shape) = prepared(&case.lib);
        let view = PreparedView::new(shape, &storage).unwrap();
        let fit = view.fit(&case.y, &FitOptions::new(Method::Fcls)).unwrap();
        let sum: f64 = fit.phases().iter().map(|&v| f64::from(v)).sum();
        prop_assert!((sum - 1.0).abs() <= 4.0 * shape.phases as f64 * EPS, "sum {}", sum);
        prop_assert!(fit.phases().iter().all(|&w| w >= 0.0));
        let fsum: f32 = fit.fractions().iter().sum();
        prop_assert!((fsum - 1.0).abs() <= 4.0 * shape.phases as f32 * f32::EPSILON);
    }

    #[test]
    fn projection_is_idempotent_and_symmetric(case in case(8), seed in any::<u64>()) {
        let (storage, shape) = prepared(&case.lib);
        let view = PreparedView::new(shape, &storage).unwrap();
        let n = shape.channels;
        let options = FitOptions::new(Method::Lstsq);
        let project = |y: &[f32]| {
            let mut out = vec![0.0f32; n];
            view.fit_with_model(y, &options, &mut out).unwrap();
            out
        };

        let a = &case.y;
        let mut rng = Rng::new(seed);
        let b: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        let pa = project(a);
        let ppa = project(&pa);
        let pb = project(&b);

        let norm = |v: &[f32]| to_f64(v).iter().map(|x| x * x).sum::<f64>().sqrt();
        let c = shape.columns() as f64;
        let diff: Vec<f32> = pa.iter().zip(&ppa).map(|(x, y)| x - y).collect();
        prop_assert!(norm(&diff) <= 8.0 * c * EPS * norm(a), "not idempotent: {:e}", norm(&diff));

        let ab = dot(&to_f64(&pa), &to_f64(&b));
        let ba = dot(&to_f64(a), &to_f64(&pb));
        let tol = 8.0 * (c + n as f64) * EPS * norm(a) * norm(&b);
        prop_assert!((ab - ba).abs() <= tol, "not symmetric: {} vs {}", ab, ba);
    }

    #[test]
    fn ridge_penalty_shrinks_monotonically_and_vanishing_lambda_gives_lstsq(case in case(8)) {
        let (storage, shape) = prepared(&case.lib);
        let view = PreparedView::new(shape, &storage).unwrap();
        let k = shape.phases;
        let penalty = |lambda: f32| {
            let fit = view.fit(&case.y, &FitOptions::new(Method::Ridge { lambda })).unwrap();
            fit.phases().iter().map(|&w| f64::from(w).powi(2)).sum::<f64>()
        };

        // ||w(lambda)|| never grows in exact arithmetic. Each computed fit is within rounding
        // noise of its exact value, an absolute amount set by ||y||, the conditioning and the
        // smallest phase column, so the norms are compared with that slack: a phase whose
        // exact coefficient is 0 has a computed one of pure noise (the regression seed).
        let cols = case.lib.columns_f64();
        let smallest = cols
            .iter()
            .take(k)
            .map(|c| dot(c, c).sqrt())
            .fold(f64::INFINITY, f64::min);
        let y_norm = case.y.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        let noise = 64.0 * shape.columns() as f64 * kappa(&case.lib) * EPS * y_norm / smallest;

        let mut last = f64::INFINITY;
        for lambda in [0.0f32, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e4] {
            let w_norm = penalty(lambda).sqrt();
            prop_assert!(
                w_norm <= last + 2.0 * noise,
                "||w|| grew at lambda {}: {} > {} + {}", lambda, w_norm, last, 2.0 * noise
            );
            last = w_norm;
        }

        let ls = view.fit(&case.y, &FitOptions::new(Method::Lstsq)).unwrap();
        let tiny = view.fit(&case.y, &FitOptions::new(Method::Ridge { lambda: 1e-12 })).unwrap();
        let cols = case.lib.columns_f64();
        let kap = kappa(&case.lib);
        let mut num = 0.0;
        let mut den = 0.0;
        for ((c, &a), &b) in cols.iter().zip(ls.coefficients()).zip(tiny.coefficients()) {
            let s = dot(c, c).sqrt();
            num += ((f64::from(a) - f64::from(b)) * s).powi(2);
            den += (f64::from(a) * s).powi(2);
        }
        let tol = 1e-12 * kap * kap + 16.0 * kap * EPS;
        prop_assert!(num.sqrt() <= tol * den.sqrt().max(1e-30), "tiny lambda moved the fit");
    }
}

#[test]
fn background_coefficients_can_go_negative() {
    let mut rng = Rng::new(21);
    let lib = positive(&mut rng, 120, 3, Background::Chebyshev { degree: 1 });
    let storage = lib.prepare();
    let view = PreparedView::new(lib.shape, &storage).unwrap();
    let y = to_f32(&lib.apply(&[2.0, 1.0, 3.0, -0.5, 0.25]));

    for method in [Method::Nnls, Method::Lstsq] {
        let fit = view.fit(&y, &FitOptions::new(method)).unwrap();
        let bg = fit.background();
        assert!(
            (bg[0] + 0.5).abs() < 1e-4 && (bg[1] - 0.25).abs() < 1e-4,
            "{method:?}: {bg:?}"
        );
    }
}
