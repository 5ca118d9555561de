//! The bare multiply-add pass over a channel-major basis: `z = B^T y`.
//!
//! For a basis `B` of `n` channels by `k` columns stored channel-major (`basis[i * k + j]`),
//! each channel updates `k` accumulators in turn. The summation order of every column is
//! therefore sequential over channels on every target, which makes the result bit-identical
//! everywhere while still letting a compiler vectorise across columns. This pass is the floor
//! that every fit is measured against: `n * k` multiply-adds and nothing else.

/// Runs `$body` with a constant `$width` equal to the run-time `$k` when it is 1 to
/// [`crate::MAX_COLUMNS`], else evaluates `$other`. Loops over a constant width keep their
/// accumulators in registers; the order of every sum is the same for every width, so the
/// bits are too.
macro_rules! with_width {
    ($k:expr, $width:ident => $body:expr, $other:expr) => {{
        const _: () = assert!(crate::MAX_COLUMNS == 21, "one arm per width below");
        match $k {
            1 => {
                const $width: usize = 1;
                $body
            }
            2 => {
                const $width: usize = 2;
                $body
            }
            3 => {
                const $width: usize = 3;
                $body
            }
            4 => {
                const $width: usize = 4;
                $body
            }
            5 => {
                const $width: usize = 5;
                $body
            }
            6 => {
                const $width: usize = 6;
                $body
            }
            7 => {
                const $width: usize = 7;
                $body
            }
            8 => {
                const $width: usize = 8;
                $body
            }
            9 => {
                const $width: usize = 9;
                $body
            }
            10 => {
                const $width: usize = 10;
                $body
            }
            11 => {
                const $width: usize = 11;
                $body
            }
            12 => {
                const $width: usize = 12;
                $body
            }
            13 => {
                const $width: usize = 13;
                $body
            }
            14 => {
                const $width: usize = 14;
                $body
            }
            15 => {
                const $width: usize = 15;
                $body
            }
            16 => {
                const $width: usize = 16;
                $body
            }
            17 => {
                const $width: usize = 17;
                $body
            }
            18 => {
                const $width: usize = 18;
                $body
            }
            19 => {
                const $width: usize = 19;
                $body
            }
            20 => {
                const $width: usize = 20;
                $body
            }
            21 => {
                const $width: usize = 21;
                $body
            }
            _ => $other,
        }
    }};
}
pub(crate) use with_width;

/// Computes `out[j] = sum_i basis[i * k + j] * spectrum[i]` for `j < k`, `k = out.len()`.
///
/// Channels beyond the shorter of `spectrum.len()` and `basis.len() / k` are ignored, so the
/// call never panics; callers check lengths beforehand. Exact order: channel 0 first. For
/// `k` up to [`crate::MAX_COLUMNS`] the loop is compiled per `k` with its accumulators in
/// registers (about 2.3 instructions per multiply-add on a Cortex-M4F); wider bases take a
/// general loop with the same order and bits.
pub fn multiply_add_pass(basis: &[f32], spectrum: &[f32], out: &mut [f32]) {
    with_width!(
        out.len(),
        K => pass_fixed::<K>(basis, spectrum, out),
        pass_any(basis, spectrum, out)
    )
}

fn pass_fixed<const K: usize>(basis: &[f32], spectrum: &[f32], out: &mut [f32]) {
    let mut acc = [0.0f32; K];
    let (rows, _) = basis.as_chunks::<K>();

    for (row, &y) in rows.iter().zip(spectrum) {
        for j in 0..K {
            acc[j] += row[j] * y;
        }
    }

    for (dst, a) in out.iter_mut().zip(acc) {
        *dst = a;
    }
}

fn pass_any(basis: &[f32], spectrum: &[f32], out: &mut [f32]) {
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

    #[test]
    fn fixed_width_and_general_loops_give_the_same_bits() {
        let basis: [f32; 30 * 22] = core::array::from_fn(|i| 1.0 / (i as f32 + 0.37));
        let spectrum: [f32; 30] = core::array::from_fn(|i| 0.1 * i as f32 + 0.013);

        for k in 1..=22 {
            let mut fixed = [0.0f32; 22];
            let mut general = [0.0f32; 22];
            multiply_add_pass(&basis[..30 * k], &spectrum, &mut fixed[..k]);
            pass_any(&basis[..30 * k], &spectrum, &mut general[..k]);

            for j in 0..k {
                assert_eq!(
                    fixed[j].to_bits(),
                    general[j].to_bits(),
                    "k = {k}, column {j}"
                );
            }
        }
    }
}
