//! Property tests of the SVD invariants over random shapes and special matrices: descending
//! non-negative singular values, the sign convention, orthonormal vectors, reconstruction,
//! and agreement between `f32` and `f64`.

mod svd_support;

use proptest::prelude::*;
use svd_support::*;

/// What kind of matrix to build from the random entries.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Random,
    Zero,
    Identity,
    RankOne,
    /// Rows scaled by `2^-3i`.
    Graded,
    /// Random with two equal columns.
    DuplicateColumn,
}

fn build(kind: Kind, rows: usize, cols: usize, entries: &[f64]) -> Vec<f64> {
    let mut a = entries[..rows * cols].to_vec();
    match kind {
        Kind::Random => {}
        Kind::Zero => a.fill(0.0),
        Kind::Identity => {
            for i in 0..rows {
                for j in 0..cols {
                    a[i * cols + j] = if i == j { 1.0 } else { 0.0 };
                }
            }
        }
        Kind::RankOne => {
            for i in 0..rows {
                for j in 0..cols {
                    a[i * cols + j] = entries[i] * entries[rows + j];
                }
            }
        }
        Kind::Graded => {
            for i in 0..rows {
                for j in 0..cols {
                    a[i * cols + j] *= 2f64.powi(-3 * i as i32);
                }
            }
        }
        Kind::DuplicateColumn => {
            if cols >= 2 {
                for i in 0..rows {
                    a[i * cols + cols - 1] = a[i * cols];
                }
            }
        }
    }
    a
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Random),
        1 => Just(Kind::Zero),
        1 => Just(Kind::Identity),
        1 => Just(Kind::RankOne),
        1 => Just(Kind::Graded),
        1 => Just(Kind::DuplicateColumn),
    ]
}

/// Shapes from empty to 12 x 12, plus tall and wide ones up to 48 x 6.
fn shape() -> impl Strategy<Value = (usize, usize)> {
    prop_oneof![
        (0usize..=12, 0usize..=12),
        (13usize..=48, 1usize..=6),
        (1usize..=6, 13usize..=48),
    ]
}

fn case() -> impl Strategy<Value = (Kind, usize, usize, Vec<f64>)> {
    (kind(), shape()).prop_flat_map(|(kind, (rows, cols))| {
        let len = (rows * cols).max(rows + cols);
        (
            Just(kind),
            Just(rows),
            Just(cols),
            proptest::collection::vec(-1.0f64..1.0, len),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn f64_factors_are_an_svd((kind, rows, cols, entries) in case()) {
        let a = build(kind, rows, cols, &entries);
        let f = factor(&a, rows, cols).unwrap();
        assert_svd_properties(&a, &f, 4.0);
    }

    #[test]
    fn f32_factors_are_an_svd_close_to_f64((kind, rows, cols, entries) in case()) {
        let a = to_f32(&build(kind, rows, cols, &entries));
        let f = factor(&a, rows, cols).unwrap();
        assert_svd_properties(&a, &f, 4.0);

        let a64: Vec<f64> = a.iter().map(|&x| f64::from(x)).collect();
        let g = factor(&a64, rows, cols).unwrap();
        let q = rows.min(cols);
        let scale = g.s.first().copied().unwrap_or(0.0);
        for j in 0..q {
            let gap = (f64::from(f.s[j]) - g.s[j]).abs();
            let tol = 4.0 * q as f64 * f64::from(f32::EPSILON) * scale;
            prop_assert!(gap <= tol, "s[{}]: {} vs {}", j, f.s[j], g.s[j]);
        }
    }
}
