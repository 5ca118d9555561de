//! Library diagnostics: warnings raised for the right reasons and numbers that agree with a
//! direct SVD of the library.

mod svd_support;

use svd_support::*;
use unmix::svd::SvdError;
use unmix::svd::diagnostics::{Warning, library_diagnostics};

#[test]
fn well_separated_library_raises_no_warning_and_matches_a_direct_svd() {
    let x = gaussian_library(512, &[80.0, 200.0, 320.0, 440.0], 15.0);
    let d = library_diagnostics(&x, 512, 4).unwrap();
    assert_eq!(d.warnings(), &[]);
    assert_eq!((d.rank, d.scaled_rank), (4, 4));

    let direct = factor(&x, 512, 4).unwrap();
    let error = max_relative_error(&d.singular_values[..4], &direct.s);
    assert!(error <= 64.0 * f64::EPSILON, "{error:e}");
    assert!(d.scaled_condition < 1.01, "{}", d.scaled_condition);
    for j in 4..16 {
        assert_eq!(d.singular_values[j], 0.0);
    }
}

#[test]
fn column_scaling_is_reported_separately_from_the_raw_library() {
    let mut x = gaussian_library(256, &[60.0, 180.0], 10.0);
    for i in 0..256 {
        x[i * 2 + 1] *= 1e-6;
    }
    let d = library_diagnostics(&x, 256, 2).unwrap();
    assert!(d.condition > 1e5, "{}", d.condition);
    assert!(d.scaled_condition < 1.01, "{}", d.scaled_condition);
    assert_eq!(d.warnings(), &[]);
    let norm = (0..256)
        .map(|i| x[i * 2 + 1] * x[i * 2 + 1])
        .sum::<f64>()
        .sqrt();
    assert!((d.column_norms[1] - norm).abs() <= 8.0 * f64::EPSILON * norm);
}

#[test]
fn close_peaks_are_flagged_collinear_and_ill_conditioned_for_f32() {
    let x = to_f32(&gaussian_library(
        256,
        &[60.0, 60.1, 60.2, 140.0, 200.0],
        6.0,
    ));
    let d = library_diagnostics(&x, 256, 5).unwrap();
    let pairs: Vec<(usize, usize)> = d
        .warnings()
        .iter()
        .filter_map(|w| match *w {
            Warning::NearlyCollinear { a, b, cosine } => {
                assert!((0.99..=1.0).contains(&cosine), "{cosine}");
                Some((a, b))
            }
            _ => None,
        })
        .collect();
    assert_eq!(pairs, vec![(0, 1), (0, 2), (1, 2)]);
    assert!(
        d.warnings().contains(&Warning::IllConditioned {
            condition: d.scaled_condition
        }),
        "{:?} cond {}",
        d.warnings(),
        d.scaled_condition
    );
    assert_eq!(d.scaled_rank, 5);

    // The least determined combination is the second difference of the triple, its largest
    // (middle) entry positive by the sign convention.
    let v = &d.scaled_weakest_combination;
    assert!(v[0] < -0.4 && v[2] < -0.4 && v[1] > 0.8, "{v:?}");
    assert!(v[3].abs() < 1e-6 && v[4].abs() < 1e-6, "{v:?}");
}

/// The rank threshold once grew with the channel count (`max(n, k) eps s_0`), so a
/// 2048-channel `f32` library of condition 3e4, which `prepare` accepts and fits, was called
/// rank-deficient with an infinite condition number and never ill-conditioned.
#[test]
fn a_long_f32_library_of_condition_3e4_is_ill_conditioned_not_rank_deficient() {
    let x = to_f32(&gaussian_library(2048, &[1000.0, 1000.0028, 1500.0], 30.0));
    let d = library_diagnostics(&x, 2048, 3).unwrap();

    assert!(
        (1e4..1e5).contains(&d.scaled_condition),
        "{}",
        d.scaled_condition
    );
    assert_eq!((d.rank, d.scaled_rank), (3, 3));
    assert!(d.condition.is_finite(), "{}", d.condition);
    assert!(
        d.warnings().contains(&Warning::IllConditioned {
            condition: d.scaled_condition
        }),
        "{:?}",
        d.warnings()
    );
    assert!(
        !d.warnings()
            .iter()
            .any(|w| matches!(w, Warning::RankDeficient { .. })),
        "{:?}",
        d.warnings()
    );
}

#[test]
fn exact_dependence_is_rank_deficient_with_the_dependence_as_weakest_combination() {
    let base = gaussian_library(300, &[100.0, 180.0], 20.0);
    let mut x = vec![0.0; 300 * 3];
    for i in 0..300 {
        x[i * 3] = base[i * 2];
        x[i * 3 + 1] = base[i * 2 + 1];
        x[i * 3 + 2] = base[i * 2] + base[i * 2 + 1];
    }
    let d = library_diagnostics(&x, 300, 3).unwrap();
    assert_eq!(d.rank, 2);
    assert!(d.condition > 1.0 / (3.0 * f64::EPSILON), "{}", d.condition);
    assert!(d.warnings().contains(&Warning::RankDeficient { rank: 2 }));

    // x_0 + x_1 - x_2 = 0, up to the sign that makes the largest-magnitude entry positive.
    let v = &d.weakest_combination;
    let largest = (0..3).fold(0, |m, j| if v[j].abs() > v[m].abs() { j } else { m });
    assert!(v[largest] > 0.0, "{v:?}");
    let sign = -v[2].signum();
    let expected = [1.0, 1.0, -1.0].map(|c: f64| sign * c / 3f64.sqrt());
    for j in 0..3 {
        assert!((v[j] - expected[j]).abs() < 1e-8, "{v:?}");
    }
}

#[test]
fn zero_phase_is_named() {
    let mut x = gaussian_library(64, &[10.0, 30.0, 50.0], 4.0);
    for i in 0..64 {
        x[i * 3 + 1] = 0.0;
    }
    let d = library_diagnostics(&x, 64, 3).unwrap();
    assert_eq!(
        d.warnings(),
        &[
            Warning::ZeroColumn { phase: 1 },
            Warning::RankDeficient { rank: 2 }
        ]
    );
    assert_eq!(d.cosines[1][1], 0.0);
    assert_eq!(d.cosines[0][0], 1.0);
}

#[test]
fn descriptions_are_distinct_plain_sentences() {
    let all = [
        Warning::ZeroColumn { phase: 0 },
        Warning::NearlyCollinear {
            a: 0,
            b: 1,
            cosine: 0.995,
        },
        Warning::IllConditioned { condition: 1e5 },
        Warning::RankDeficient { rank: 1 },
    ];
    for (i, w) in all.iter().enumerate() {
        assert!(w.description().len() > 30);
        for other in &all[i + 1..] {
            assert_ne!(w.description(), other.description());
        }
    }
}

#[test]
fn bad_input_is_reported() {
    let mut x = vec![1.0f32; 10 * 4];
    x[7 * 4 + 2] = f32::NAN;
    assert_eq!(
        library_diagnostics(&x, 10, 4).err(),
        Some(SvdError::NonFinite { row: 7, col: 2 })
    );
    let y = vec![0.0f64; 17 * 20];
    assert!(matches!(
        library_diagnostics(&y, 20, 17),
        Err(SvdError::TooLarge { .. })
    ));
    assert!(matches!(
        library_diagnostics(&y[..5], 20, 1),
        Err(SvdError::BufferTooSmall { .. })
    ));
}

#[test]
fn sixteen_phases_fit_the_fixed_buffers() {
    let centres: Vec<f64> = (0..16).map(|j| 30.0 + 60.0 * j as f64).collect();
    let x = gaussian_library(1024, &centres, 10.0);
    let d = library_diagnostics(&x, 1024, 16).unwrap();
    assert_eq!(d.scaled_rank, 16);
    assert_eq!(d.warnings(), &[]);
    let direct = factor(&x, 1024, 16).unwrap();
    let error = max_relative_error(&d.singular_values, &direct.s);
    assert!(error <= 64.0 * f64::EPSILON, "{error:e}");
}
