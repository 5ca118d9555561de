//! Accuracy of `unmix::svd` against exactly known or higher-precision references on hard
//! matrices, the derived routines, and the error paths.

mod svd_support;

use svd_support::*;
use unmix::svd::{
    self, Buffer, Svd, SvdError, SvdOptions, SvdOutput, Threshold, condition_number, rank,
};

/// Exponents (of 2) spread over `0..=span`, in a scrambled order so that sorting and
/// pivoting have work to do.
fn scrambled_exponents(n: usize, span: i32) -> Vec<i32> {
    let step = span as f64 / (n.max(2) - 1) as f64;
    (0..n)
        .map(|i| ((i * 7 + 3) % n) as f64 * step)
        .map(|e| e.round() as i32)
        .collect()
}

/// `D H / sqrt(n)` (rows graded) or `H D / sqrt(n)` (columns graded): every entry is a single
/// exact product, and the singular values are exactly the diagonal of `D`.
fn graded_hadamard(n: usize, span: i32, rows_graded: bool) -> (Vec<f64>, Vec<f64>) {
    let h = scaled_hadamard(n);
    let e = scrambled_exponents(n, span);
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let d = if rows_graded { e[i] } else { e[j] };
            a[i * n + j] = h[i * n + j] * 2f64.powi(-d);
        }
    }
    let mut s: Vec<f64> = e.iter().map(|&d| 2f64.powi(-d)).collect();
    s.sort_by(|x, y| y.total_cmp(x));
    (a, s)
}

fn singular_values_f64<T: unmix::svd::Real>(f: &Factored<T>) -> Vec<f64> {
    f.s.iter().map(|x| x.to_f64()).collect()
}

#[test]
fn graded_hadamard_f64_keeps_relative_accuracy_over_2_pow_120() {
    for n in [4, 16, 64] {
        for rows_graded in [true, false] {
            let (a, exact) = graded_hadamard(n, 120, rows_graded);
            let f = factor(&a, n, n).unwrap();
            let error = max_relative_error(&singular_values_f64(&f), &exact);
            println!(
                "n={n} rows_graded={rows_graded}: rel err {error:.2e}, {} sweeps",
                f.info.sweeps
            );
            assert!(error <= 4.0 * n as f64 * f64::EPSILON, "n={n}: {error:e}");
            assert_svd_properties(&a, &f, 4.0);
        }
    }
}

#[test]
fn graded_hadamard_f32_keeps_relative_accuracy_over_2_pow_40() {
    for n in [4, 16, 64] {
        for rows_graded in [true, false] {
            let (a, exact) = graded_hadamard(n, 40, rows_graded);
            let a = to_f32(&a);
            let f = factor(&a, n, n).unwrap();
            let error = max_relative_error(&singular_values_f64(&f), &exact);
            println!("f32 n={n} rows_graded={rows_graded}: rel err {error:.2e}");
            assert!(
                error <= 4.0 * n as f64 * f64::from(f32::EPSILON),
                "n={n}: {error:e}"
            );
            assert_svd_properties(&a, &f, 4.0);
        }
    }
}

#[test]
fn graded_tall_and_wide_exact_singular_values() {
    // Rows of a graded D H spread among zero rows: 48 x 16, exact singular values.
    let n = 16;
    let (square, exact) = graded_hadamard(n, 100, true);
    let rows = 3 * n;
    let mut tall = vec![0.0; rows * n];
    for i in 0..n {
        let target = (i * 5 + 2) % rows;
        tall[target * n..(target + 1) * n].copy_from_slice(&square[i * n..(i + 1) * n]);
    }

    let f = factor(&tall, rows, n).unwrap();
    let error = max_relative_error(&singular_values_f64(&f), &exact);
    assert!(error <= 4.0 * n as f64 * f64::EPSILON, "tall: {error:e}");
    assert_svd_properties(&tall, &f, 4.0);

    let wide = transpose(&tall, rows, n);
    let g = factor(&wide, n, rows).unwrap();
    let error = max_relative_error(&singular_values_f64(&g), &exact);
    assert!(error <= 4.0 * n as f64 * f64::EPSILON, "wide: {error:e}");
    assert_svd_properties(&wide, &g, 4.0);
}

/// Kahan's matrix: `diag(1, s, s^2, ...)` times the unit upper triangle with `-c` above the
/// diagonal (`s = sin theta`, `c = cos theta`), whose last singular value is tiny and badly
/// placed for rank-revealing methods without pivoting.
fn kahan(n: usize, theta: f64) -> Vec<f64> {
    let (s, c) = theta.sin_cos();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        let scale = s.powi(i as i32);
        a[i * n + i] = scale;
        for j in i + 1..n {
            a[i * n + j] = -c * scale;
        }
    }
    a
}

#[test]
fn kahan_f32_matches_f64_reference() {
    for (n, theta) in [(16, 1.2), (32, 1.2), (48, 1.3)] {
        let a32 = to_f32(&kahan(n, theta));
        let a64: Vec<f64> = a32.iter().map(|&x| f64::from(x)).collect();
        let reference = singular_values_f64(&factor(&a64, n, n).unwrap());
        let f = factor(&a32, n, n).unwrap();
        let computed = singular_values_f64(&f);
        let error = max_relative_error(&computed, &reference);
        println!(
            "kahan n={n}: s_min {:.3e}, cond {:.2e}, max rel err {error:.2e}, {} sweeps",
            reference[n - 1],
            reference[0] / reference[n - 1],
            f.info.sweeps
        );
        assert!(
            error <= 4.0 * n as f64 * f64::from(f32::EPSILON),
            "n={n}: {error:e}"
        );
        assert_svd_properties(&a32, &f, 4.0);
    }
}

#[test]
fn constructed_spectrum_matches_within_absolute_bound_and_nalgebra() {
    let mut rng = Rng::new(7);
    for (rows, cols) in [(30, 12), (12, 30), (64, 64), (200, 8)] {
        let q = rows.min(cols);
        let exact: Vec<f64> = (0..q)
            .map(|j| 10f64.powf(-12.0 * j as f64 / (q - 1) as f64))
            .collect();
        let a = with_singular_values(rows, cols, &exact, &mut rng);
        let f = factor(&a, rows, cols).unwrap();

        // Forming A in f64 already moves each singular value by O(eps s_0).
        let worst =
            f.s.iter()
                .zip(&exact)
                .map(|(c, e)| (c - e).abs())
                .fold(0.0, f64::max);
        assert!(
            worst <= 4.0 * q as f64 * f64::EPSILON,
            "{rows}x{cols}: {worst:e}"
        );
        assert_svd_properties(&a, &f, 4.0);

        let reference = nalgebra::DMatrix::from_row_slice(rows, cols, &a).singular_values();
        let mut nalgebra_s: Vec<f64> = reference.iter().copied().collect();
        nalgebra_s.sort_by(|x, y| y.total_cmp(x));
        let gap =
            f.s.iter()
                .zip(&nalgebra_s)
                .map(|(c, n)| (c - n).abs())
                .fold(0.0, f64::max);
        println!(
            "{rows}x{cols}: vs exact {worst:.2e}, vs nalgebra {gap:.2e}, {} sweeps",
            f.info.sweeps
        );
        assert!(
            gap <= 8.0 * q as f64 * f64::EPSILON,
            "{rows}x{cols} vs nalgebra: {gap:e}"
        );
    }
}

#[test]
fn rank_deficient_matrix_has_rank_infinite_condition_and_penrose_pseudo_inverse() {
    let (rows, cols) = (20, 12);
    let mut exact = vec![0.0; cols];
    exact[..5].copy_from_slice(&[5.0, 3.0, 1.0, 0.5, 1e-3]);
    let a = with_singular_values(rows, cols, &exact, &mut Rng::new(11));
    let f = factor(&a, rows, cols).unwrap();
    assert_svd_properties(&a, &f, 4.0);

    for j in 5..cols {
        assert!(
            f.s[j] <= 4.0 * cols as f64 * f64::EPSILON * 5.0,
            "s[{j}] = {:e}",
            f.s[j]
        );
    }
    assert_eq!(rank(&f.s, rows, cols, Threshold::Default), 5);
    assert_eq!(rank(&f.s, rows, cols, Threshold::Relative(1e-3)), 4);
    assert_eq!(rank(&f.s, rows, cols, Threshold::Absolute(0.75)), 3);
    assert_eq!(
        condition_number(&f.s, rows, cols, Threshold::Default),
        f64::INFINITY
    );

    let mut pinv = vec![0.0; rows * cols];
    let mut scratch = vec![0.0; svd::factor_scratch_len(rows, cols)];
    let used = svd::pseudo_inverse(&a, rows, cols, &mut pinv, Threshold::Default, &mut scratch);
    assert_eq!(used, Ok(5));

    let a_m = nalgebra::DMatrix::from_row_slice(rows, cols, &a);
    let p_m = nalgebra::DMatrix::from_row_slice(cols, rows, &pinv);
    let tol = 64.0 * f64::EPSILON * 1e3 * 5.0;
    let ap = &a_m * &p_m;
    let pa = &p_m * &a_m;
    assert!((&ap * &a_m - &a_m).amax() <= tol * 5.0, "A A+ A != A");
    assert!((&pa * &p_m - &p_m).amax() <= tol * 1e3, "A+ A A+ != A+");
    assert!((&ap - ap.transpose()).amax() <= tol, "A A+ not symmetric");
    assert!((&pa - pa.transpose()).amax() <= tol, "A+ A not symmetric");
}

#[test]
fn pseudo_inverse_of_full_rank_tall_matrix_is_a_left_inverse() {
    let (rows, cols) = (40, 6);
    let exact = [4.0, 2.0, 1.0, 0.5, 0.25, 0.1];
    let a = to_f32(&with_singular_values(rows, cols, &exact, &mut Rng::new(5)));
    let mut pinv = vec![0.0f32; rows * cols];
    let mut scratch = vec![0.0f32; svd::factor_scratch_len(rows, cols)];
    let used = svd::pseudo_inverse(&a, rows, cols, &mut pinv, Threshold::Default, &mut scratch);
    assert_eq!(used, Ok(cols));

    for i in 0..cols {
        for k in 0..cols {
            let product: f64 = (0..rows)
                .map(|r| f64::from(pinv[i * rows + r]) * f64::from(a[r * cols + k]))
                .sum();
            let expected = if i == k { 1.0 } else { 0.0 };
            let tol = 16.0 * rows as f64 * f64::from(f32::EPSILON) * 40.0;
            assert!(
                (product - expected).abs() <= tol,
                "(A+ A)[{i}][{k}] = {product}"
            );
        }
    }
}

#[test]
fn nearly_collinear_gaussian_library_f32_matches_f64_reference() {
    // 256 channels, 8 peaks of width 6: a triple 0.4 channels apart, two pairs 1 apart.
    let centres = [60.0, 60.4, 60.8, 100.0, 101.0, 140.0, 141.0, 200.0];
    let x = gaussian_library(256, &centres, 6.0);
    let x32 = to_f32(&x);
    let x64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
    let reference = factor(&x64, 256, 8).unwrap();
    let f = factor(&x32, 256, 8).unwrap();
    assert_svd_properties(&x32, &f, 4.0);

    let s0 = reference.s[0];
    let cond = s0 / reference.s[7];
    for j in 0..8 {
        let error = (f64::from(f.s[j]) - reference.s[j]).abs();
        println!(
            "gauss s[{j}] = {:.6e}: f32 rel err {:.2e}",
            reference.s[j],
            error / reference.s[j]
        );
        assert!(
            error <= 8.0 * 8.0 * f64::from(f32::EPSILON) * s0,
            "s[{j}]: {error:e}"
        );
    }
    println!("gauss cond {cond:.3e}");
    assert!(
        cond > 1e3,
        "the test library should be ill-conditioned, cond {cond:e}"
    );
}

#[test]
fn transpose_gives_swapped_factors_bit_for_bit() {
    let mut rng = Rng::new(3);
    let (rows, cols) = (23, 9);
    let a: Vec<f32> = (0..rows * cols).map(|_| rng.uniform() as f32).collect();
    let at = transpose(&a, rows, cols);
    let f = factor(&a, rows, cols).unwrap();
    let g = factor(&at, cols, rows).unwrap();
    assert_eq!(f.s, g.s);
    assert_eq!(f.u, g.v);
    assert_eq!(f.v, g.u);
}

#[test]
fn identity_and_zero_matrices_are_exact() {
    let mut identity = vec![0.0f64; 36];
    for i in 0..6 {
        identity[i * 6 + i] = 1.0;
    }
    let f = factor(&identity, 6, 6).unwrap();
    assert_eq!(f.s, vec![1.0; 6]);
    assert_eq!(f.u, identity);
    assert_eq!(f.v, identity);

    let zero = vec![0.0f32; 5 * 3];
    let f = factor(&zero, 5, 3).unwrap();
    assert_eq!(f.s, vec![0.0; 3]);
    assert_svd_properties(&zero, &f, 1.0);
}

#[test]
fn fixed_size_wrapper_runs_the_run_time_code() {
    let a = [
        [1.0f64, 2.0, 0.5, -1.0, 3.0],
        [0.0, 1.0, -2.0, 4.0, 1.0],
        [2.0, 2.0, 1.0, 0.0, -1.0],
    ];
    let fixed = Svd::<f64, 3, 5>::new(&a).unwrap();
    let f = factor(a.as_flattened(), 3, 5).unwrap();
    assert_eq!(fixed.singular_values(), &f.s[..]);
    assert_eq!(fixed.left_vectors().as_flattened(), &f.u[..]);
    assert_eq!(fixed.right_vectors().as_flattened(), &f.v[..]);
    assert_eq!(fixed.rank(Threshold::Default), 3);

    let tall = [[1.0f32, 0.0], [0.0, 2.0], [1.0, 1.0], [0.5, -0.5]];
    let fixed = Svd::<f32, 4, 2>::new(&tall).unwrap();
    let f = factor(tall.as_flattened(), 4, 2).unwrap();
    assert_eq!(fixed.singular_values(), &f.s[..]);
    assert_eq!(fixed.left_vectors().as_flattened(), &f.u[..]);
    assert_eq!(fixed.right_vectors().as_flattened(), &f.v[..]);
    let expected = f.s[0] / f.s[1];
    assert_eq!(fixed.condition_number(Threshold::Default), expected);
}

#[test]
fn condition_number_of_diagonal_and_empty() {
    let s = [2.0f64, 1e-3];
    assert_eq!(condition_number(&s, 2, 2, Threshold::Default), 2e3);
    assert_eq!(
        condition_number(&s, 2, 2, Threshold::Relative(1e-2)),
        f64::INFINITY
    );
    assert_eq!(condition_number::<f64>(&[], 0, 3, Threshold::Default), 1.0);
}

#[test]
fn low_rank_approximation_residual_is_the_dropped_singular_values() {
    let (rows, cols) = (16, 10);
    let exact: Vec<f64> = (0..cols).map(|j| 1.0 / (1.0 + j as f64)).collect();
    let a = with_singular_values(rows, cols, &exact, &mut Rng::new(13));
    let mut out = vec![0.0; rows * cols];
    let mut scratch = vec![0.0; svd::factor_scratch_len(rows, cols)];

    for r in [0, 1, 4, 10, 12] {
        let reported =
            svd::low_rank_approximation(&a, rows, cols, r, &mut out, &mut scratch).unwrap();
        let direct: f64 = a
            .iter()
            .zip(&out)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt();
        let expected: f64 = exact.iter().skip(r).map(|s| s * s).sum::<f64>().sqrt();
        let tol = 16.0 * cols as f64 * f64::EPSILON;
        assert!(
            (reported - expected).abs() <= tol,
            "r={r}: {reported} vs {expected}"
        );
        assert!(
            (direct - expected).abs() <= tol,
            "r={r}: direct {direct} vs {expected}"
        );

        // The approximation has rank r.
        let g = factor(&out, rows, cols).unwrap();
        assert_eq!(
            rank(&g.s, rows, cols, Threshold::Relative(1e-10)),
            r.min(cols)
        );
    }
}

#[test]
fn denoising_a_stack_of_spectra_removes_noise_outside_the_phase_space() {
    let (count, channels) = (8, 512);
    let phases = gaussian_library(channels, &[150.0, 250.0, 330.0], 12.0);
    let mut rng = Rng::new(17);
    let mut clean = vec![0.0f32; count * channels];
    let mut noisy = vec![0.0f32; count * channels];
    for s in 0..count {
        let w: Vec<f64> = (0..3).map(|_| 1.0 + rng.uniform()).collect();
        for c in 0..channels {
            let value: f64 = (0..3).map(|j| w[j] * phases[c * 3 + j]).sum();
            clean[s * channels + c] = value as f32;
            noisy[s * channels + c] = (value + 0.02 * rng.uniform()) as f32;
        }
    }
    let error = |x: &[f32]| -> f64 {
        x.iter()
            .zip(&clean)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let before = error(&noisy);

    let mut scratch = vec![0.0f32; svd::factor_scratch_len(count, channels)];
    let removed = svd::denoise_rows(&mut noisy, count, channels, 3, &mut scratch).unwrap();
    let after = error(&noisy);
    println!("denoise: error {before:.4} -> {after:.4}, removed {removed:.4}");
    // A rank-3 projection keeps about 3 (8 + 512) / (8 * 512) = 38% of white noise energy.
    assert!(after < 0.75 * before, "{before} -> {after}");
    assert!(removed > 0.0);
}

#[test]
fn non_finite_entry_is_reported_with_its_position() {
    let mut a = vec![1.0f64; 4 * 7];
    a[2 * 7 + 5] = f64::NAN;
    assert_eq!(
        factor(&a, 4, 7).err(),
        Some(SvdError::NonFinite { row: 2, col: 5 })
    );
    let at = transpose(&a, 4, 7);
    assert_eq!(
        factor(&at, 7, 4).err(),
        Some(SvdError::NonFinite { row: 5, col: 2 })
    );

    let mut b = vec![0.5f32; 9];
    b[4] = f32::INFINITY;
    assert_eq!(
        factor(&b, 3, 3).err(),
        Some(SvdError::NonFinite { row: 1, col: 1 })
    );
}

#[test]
fn shape_and_buffer_errors_are_reported_before_any_work() {
    let a = vec![0.0f32; 65 * 65];
    assert_eq!(
        factor(&a, 65, 65).err(),
        Some(SvdError::TooLarge { rows: 65, cols: 65 })
    );

    let mut s = [0.0f32; 2];
    let mut scratch = vec![0.0f32; svd::svd_scratch_len(3, 3)];
    let out = SvdOutput::values(&mut s);
    let result = svd::svd(&[1.0; 9], 3, 3, out, &mut scratch, SvdOptions::default());
    let expected = SvdError::BufferTooSmall {
        buffer: Buffer::SingularValues,
        needed: 3,
        got: 2,
    };
    assert_eq!(result, Err(expected));

    let mut s = [0.0f32; 3];
    let out = SvdOutput::values(&mut s);
    let result = svd::svd(
        &[1.0; 9],
        3,
        3,
        out,
        &mut scratch[..20],
        SvdOptions::default(),
    );
    let expected = SvdError::BufferTooSmall {
        buffer: Buffer::Scratch,
        needed: 33,
        got: 20,
    };
    assert_eq!(result, Err(expected));
}

#[test]
fn sweep_cap_is_reported_when_hit() {
    let mut rng = Rng::new(23);
    let (rows, cols) = (20, 20);
    let a: Vec<f64> = (0..rows * cols).map(|_| rng.uniform()).collect();
    let mut s = vec![0.0; cols];
    let mut scratch = vec![0.0; svd::svd_scratch_len(rows, cols)];
    let options = SvdOptions::default().with_max_sweeps(1);
    let out = SvdOutput::values(&mut s);
    let result = svd::svd(&a, rows, cols, out, &mut scratch, options);
    assert_eq!(result, Err(SvdError::NoConvergence { sweeps: 1 }));

    let full = factor(&a, rows, cols).unwrap();
    assert!(full.info.sweeps > 1 && full.info.sweeps <= svd::DEFAULT_MAX_SWEEPS);
}

#[test]
fn extreme_magnitudes_scale_exactly() {
    // Largest entries near the top of the f32 range and in its subnormals: the power-of-two
    // scaling must not overflow or lose the ratios.
    for scale in [2f32.powi(126), f32::from_bits(1 << 9)] {
        let a: Vec<f32> = [3.0f32, 1.0, 1.0, 2.0, 0.0, 1.0]
            .iter()
            .map(|x| x * scale)
            .collect();
        let unit = factor(&[3.0f32, 1.0, 1.0, 2.0, 0.0, 1.0], 3, 2).unwrap();
        let f = factor(&a, 3, 2).unwrap();
        for j in 0..2 {
            // Exact up to the final rounding of the unscaled value (subnormal: 2^-149 steps).
            let expected = f64::from(unit.s[j]) * f64::from(scale);
            let error = (f64::from(f.s[j]) - expected).abs();
            let tol = 1e-6 * expected + f64::from(f32::from_bits(1));
            assert!(
                error <= tol,
                "scale {scale:e}: s[{j}] {} vs {expected:e}",
                f.s[j]
            );
        }
        assert_eq!(f.v, unit.v);
    }
}

/// A negative or NaN threshold used to count zero singular values as kept, so the
/// pseudo-inverse divided by them (infinities), or to keep none at all (a silent zero).
#[test]
fn pseudo_inverse_with_a_negative_or_nan_threshold_never_divides_by_zero() {
    use unmix::svd::{Threshold, factor_scratch_len, pseudo_inverse};

    // Rank one with the second singular value exactly zero.
    let a = [0.0f64, 0.0, 3.0, 0.0, 0.0, 0.0];
    let mut scratch = vec![0.0f64; factor_scratch_len(3, 2)];
    for threshold in [Threshold::Absolute(-1.0), Threshold::Relative(f64::NAN)] {
        let mut out = [0.0f64; 6];
        let kept = pseudo_inverse(&a, 3, 2, &mut out, threshold, &mut scratch).unwrap();

        assert_eq!(kept, 1, "{threshold:?}");
        assert!(out.iter().all(|v| v.is_finite()), "{threshold:?}: {out:?}");
        // a = 3 e_1 e_0^T (rows x cols), so its pseudo-inverse is e_0 e_1^T / 3.
        let want = [0.0, 1.0 / 3.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(out, want, "{threshold:?}");
    }
}
