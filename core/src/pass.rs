//! The bare multiply-add pass over a channel-major basis: `z = B^T y`.
//!
//! For a basis `B` of `n` channels by `k` columns stored channel-major (`basis[i * k + j]`),
//! each channel updates `k` accumulators in turn. The summation order of every column is
//! therefore sequential over channels on every target, which makes the result bit-identical
//! everywhere while still letting a compiler vectorise across columns. This pass is the floor
//! that every fit is measured against: `n * k` multiply-adds and nothing else.

/// Computes `out[j] = sum_i basis[i * k + j] * spectrum[i]` for `j < k`, `k = out.len()`.
///
/// Channels beyond the shorter of `spectrum.len()` and `basis.len() / k` are ignored, so the
/// call never panics; callers check lengths beforehand. Exact order: channel 0 first.
pub fn multiply_add_pass(basis: &[f32], spectrum: &[f32], out: &mut [f32]) {
    out.fill(0.0);

    let k = out.len();
    if k == 0 {
        return;
    }
    for (row, &y) in basis.chunks_exact(k).zip(spectrum) {
        for (acc, &b) in out.iter_mut().zip(row) {
            *acc += b * y;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_matches_column_sums_in_channel_order() {
        let basis = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let spectrum = [1.0, 10.0, 100.0];
        let mut out = [0.0; 2];

        multiply_add_pass(&basis, &spectrum, &mut out);

        assert_eq!(out, [531.0, 642.0]);
    }
}
