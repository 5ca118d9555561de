//! Cases found by the fuzz targets (`fuzz/`), each named after the failure it pins.

use unmix::{Background, Error, FitOptions, Method, PreparedView, Shape, Status};

/// `library` prepared for `shape`, as stored values.
fn prepared_storage(shape: Shape, library: &[f32]) -> Result<Vec<f32>, Error> {
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    unmix::prepare(shape, library, &mut storage, &mut scratch)?;
    Ok(storage)
}

/// FCLS fixes a phase of norm about 1e31 at coefficient 1 while the spectrum is small: the
/// residual norm (about 5e31) is representable, its square is not. The fit used to return
/// `Converged` with an infinite residual norm and infinite standard errors; an overflow of
/// the residual is now the documented `Error::Overflow`.
#[test]
fn fcls_residual_whose_square_overflows_is_an_overflow_error() {
    let n = 33;
    let library: Vec<f32> = (0..n).map(|i| 1e30 * (i + 1) as f32).collect();
    let shape = Shape::new(n, 1, Background::Chebyshev { degree: 0 });
    let storage = prepared_storage(shape, &library).unwrap();
    let prepared = PreparedView::new(shape, &storage).unwrap();

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
    let storage = prepared_storage(shape, &library).unwrap();
    let prepared = PreparedView::new(shape, &storage).unwrap();

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
    let mut storage = prepared_storage(shape, &library).unwrap();

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
    let mut storage = prepared_storage(shape, &library).unwrap();

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
    let prepared = prepared_storage(shape, &library).map(|_| ());

    assert_eq!(prepared, Err(Error::Overflow));
}

/// Every library `prepare` accepts loads back from its bytes: the same columns scaled to a
/// normal range.
#[test]
fn a_prepared_library_round_trips_through_its_bytes() {
    let library = [1e-30f32, 1.0, 1e-30, 1.0, 0.0, 0.1];
    let shape = Shape::new(3, 2, Background::None);
    let storage = prepared_storage(shape, &library).unwrap();
    let prepared = PreparedView::new(shape, &storage).unwrap();

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

/// A badly conditioned 17 x 4 library with a cubic background, and a spectrum of huge and
/// tiny values (both as bit patterns, from the fuzzer). FCLS stepped towards a subproblem
/// solution and rounding zeroed every phase at once; with no phase left the sum-to-one
/// constraint was silently dropped and the fit came back `Converged` with all phases 0. It now
/// stops at the last feasible point, as `Degenerate`.
#[test]
fn fcls_never_returns_with_every_phase_zeroed_by_rounding() {
    let library: Vec<f32> = LIBRARY_BITS.iter().map(|&b| f32::from_bits(b)).collect();
    let spectrum: Vec<f32> = SPECTRUM_BITS.iter().map(|&b| f32::from_bits(b)).collect();
    let shape = Shape::new(17, 4, Background::Chebyshev { degree: 3 });
    let storage = prepared_storage(shape, &library).unwrap();
    let prepared = PreparedView::new(shape, &storage).unwrap();

    let options = FitOptions::new(Method::Fcls).with_max_iterations(35);
    let fit = prepared.fit(&spectrum, &options).unwrap();

    let sum: f32 = fit.phases().iter().sum();
    assert!((sum - 1.0).abs() <= 1e-3, "phases sum to {sum}: {fit:?}");
    assert_eq!(fit.status(), Status::Degenerate);
}

const LIBRARY_BITS: [u32; 68] = [
    0x0, 0xcc12717, 0xd94252b, 0x308676b6, 0xbf67df2c, 0x8d956164, 0x8c7b175a, 0xb02e3b40,
    0x3e52e048, 0xcae3d3d, 0xcdc2cc2, 0xafe1dbf0, 0xbf004720, 0x8d9bdc98, 0x8d8fddd8, 0x302df1be,
    0xbf4db8ea, 0x8d4615bf, 0xc26677a, 0x30068a0c, 0xbf68634e, 0x8d8e3180, 0xd2fe559, 0xb0310a30,
    0xbee843fc, 0x8c6e8865, 0x8d1c1898, 0x2e8917ca, 0x3f6d812c, 0x8c52f185, 0xbfd686a, 0xb03068b9,
    0xbe1dffd8, 0x8cf3a1d6, 0x8d4f4c76, 0xb003a141, 0x3f412454, 0xd32c0e6, 0xc93e421, 0xb085db5f,
    0x3ecd9260, 0x8d18210a, 0x8cd9fc0f, 0x2fcf7424, 0x3eb19308, 0x8a925407, 0x8bf5fa63, 0xb018c551,
    0xbe6c4020, 0xc69d7a7, 0xcd7b933, 0xafda7b3a, 0xbef21454, 0x8cd1c9c3, 0xd7f9a73, 0x2f8fd2a8,
    0xbe84aab4, 0xbf4f3aa, 0xd25afb0, 0x30380403, 0x3f2fbbdc, 0xd7c1e69, 0xd8b2cb2, 0xafd29219,
    0x3ea45f6c, 0xd121b0b, 0x8c3b2126, 0xafca5f09,
];

const SPECTRUM_BITS: [u32; 17] = [
    0x51515151, 0x51515151, 0x51515151, 0x51515151, 0x19515151, 0x51296100, 0x51515151, 0x151,
    0x5151517d, 0x515151, 0x1b3801da, 0xc8405201, 0x9029cc0e, 0x504d5413, 0xb8fc654c, 0x9500b1aa,
    0x8aa4e8dd,
];
