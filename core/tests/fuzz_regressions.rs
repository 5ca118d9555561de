//! Cases found by the fuzz targets (`fuzz/`), each named after the failure it pins.

use unmix::{Background, Error, FitOptions, Method, PreparedView, Shape};

/// FCLS fixes a phase of norm about 1e31 at coefficient 1 while the spectrum is small: the
/// residual norm (about 5e31) is representable, its square is not. The fit used to return
/// `Converged` with an infinite residual norm and infinite standard errors; an overflow of
/// the residual is now the documented `Error::Overflow`.
#[test]
fn fcls_residual_whose_square_overflows_is_an_overflow_error() {
    let n = 33;
    let library: Vec<f32> = (0..n).map(|i| 1e30 * (i + 1) as f32).collect();
    let shape = Shape::new(n, 1, Background::Chebyshev { degree: 0 });
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    let prepared = unmix::prepare(shape, &library, &mut storage, &mut scratch).unwrap();

    let spectrum = vec![1.0f32; n];
    let fit = prepared.fit(&spectrum, &FitOptions::new(Method::Fcls));

    assert_eq!(fit.map(|f| f.residual_norm()), Err(Error::Overflow));
}

/// The same library fitted without the sum-to-one constraint stays finite: the overflow
/// check does not catch fits whose residual is small.
#[test]
fn nnls_on_the_same_library_keeps_a_finite_residual() {
    let n = 33;
    let library: Vec<f32> = (0..n).map(|i| 1e30 * (i + 1) as f32).collect();
    let shape = Shape::new(n, 1, Background::Chebyshev { degree: 0 });
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    let prepared = unmix::prepare(shape, &library, &mut storage, &mut scratch).unwrap();

    let spectrum = vec![1.0f32; n];
    let fit = prepared
        .fit(&spectrum, &FitOptions::new(Method::Nnls))
        .unwrap();

    assert!(fit.residual_norm().is_finite());
    assert!(
        fit.residual_norm() <= 6.0,
        "residual {}",
        fit.residual_norm()
    );
}

/// A prepared library whose `R` has a tiny positive diagonal entry (`prepare` never writes one
/// below `RANK_TOLERANCE`) used to load, and then a ridge fit with it failed with the
/// undocumented `RankDeficient`: the Givens radius of two tiny entries underflowed to zero.
/// The loader now holds loaded libraries to what `prepare` guarantees.
#[test]
fn loaded_r_diagonal_below_the_rank_tolerance_is_refused() {
    let library = [
        1.0f32, 0.0, 2.0, 0.5, 1.0, 1.0, 0.0, 2.0, 0.5, 1.0, 0.0, 0.5,
    ];
    let shape = Shape::new(6, 2, Background::None);
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    unmix::prepare(shape, &library, &mut storage, &mut scratch).unwrap();

    let (n, c) = (shape.channels, shape.columns());
    let diagonal_1 = n * c + c + 1;
    storage[diagonal_1] = 1e-30;
    let loaded = PreparedView::new(shape, &storage).map(|_| ());

    assert_eq!(loaded, Err(Error::RankDeficient { column: 1 }));
}

/// The smallest diagonal `prepare` can write still loads.
#[test]
fn r_diagonal_at_the_rank_tolerance_loads() {
    let library = [
        1.0f32, 0.0, 2.0, 0.5, 1.0, 1.0, 0.0, 2.0, 0.5, 1.0, 0.0, 0.5,
    ];
    let shape = Shape::new(6, 2, Background::None);
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    unmix::prepare(shape, &library, &mut storage, &mut scratch).unwrap();

    let (n, c) = (shape.channels, shape.columns());
    storage[n * c + c + 1] = unmix::RANK_TOLERANCE as f32;

    assert!(PreparedView::new(shape, &storage).is_ok());
}

/// A phase of norm about 1.4e-38 (scale 7e37) nearly parallel to another: its
/// standard-error factor, scale times about 14, overflowed to +inf in `f32`. `prepare` took
/// the library, but its own byte format refuses non-finite values, so the library could not
/// be loaded back. `prepare` now reports the overflow.
#[test]
fn prepare_refuses_a_library_its_byte_format_cannot_hold() {
    let library = [1e-38f32, 1.0, 1e-38, 1.0, 0.0, 0.1];
    let shape = Shape::new(3, 2, Background::None);
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];

    let prepared = unmix::prepare(shape, &library, &mut storage, &mut scratch).map(|_| ());

    assert_eq!(prepared, Err(Error::Overflow));
}

/// Every library `prepare` accepts loads back from its bytes: the same columns scaled to a
/// normal range.
#[test]
fn a_prepared_library_round_trips_through_its_bytes() {
    let library = [1e-30f32, 1.0, 1e-30, 1.0, 0.0, 0.1];
    let shape = Shape::new(3, 2, Background::None);
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    let prepared = unmix::prepare(shape, &library, &mut storage, &mut scratch).unwrap();

    let mut bytes = vec![0u8; prepared.bytes_len()];
    prepared.to_bytes(&mut bytes).unwrap();
    let mut loaded = vec![0.0f32; shape.prepared_len()];
    let view = PreparedView::from_bytes(&bytes, &mut loaded).unwrap();

    assert_eq!(view.library_id(), prepared.library_id());
}

/// The NNLS warm start spends up to two subproblem solves; when it fails, the cold start with
/// background columns solves once more, so a cap of 2 ran 3 iterations. Swept over many
/// generated libraries and spectra, since the warm start fails only for some of them.
#[test]
fn nnls_with_background_never_runs_past_a_cap_of_two() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };

    let (n, k) = (12, 4);
    let shape = Shape::new(n, k, Background::Chebyshev { degree: 1 });
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    let options = FitOptions::new(Method::Nnls).with_max_iterations(2);
    let mut most = 0;
    for _ in 0..500 {
        let library: Vec<f32> = (0..n * k).map(|_| next()).collect();
        let spectrum: Vec<f32> = (0..n).map(|_| next()).collect();
        let prepared = unmix::prepare(shape, &library, &mut storage, &mut scratch).unwrap();

        let fit = prepared.fit(&spectrum, &options).unwrap();
        most = most.max(fit.iterations());
    }

    assert!(most <= 2, "{most} iterations under a cap of 2");
}
