//! Deterministic benchmark inputs, made on the device so no data has to be loaded.
//!
//! The library holds `k` phases, each the sum of [`PEAKS_PER_PHASE`] Gaussian peaks whose
//! centres are spread over the middle 90 % of the channels and whose widths `sigma` lie
//! between 0.3 % and 0.9 % of `n`: with 16 phases that is 64 peaks, each about `6 sigma`
//! wide, so neighbouring peaks of different phases overlap moderately, as in a powder pattern.
//! The mixture is `y = X w + e`: weights between 20 and 100, phase [`ABSENT`] given weight 0,
//! and noise `e` of Poisson size (`sqrt(max(X w, 1))` times a zero-mean, unit-variance sum of
//! uniforms). The same seed gives the same bits on every run.

/// Peaks per reference phase.
pub const PEAKS_PER_PHASE: usize = 4;

/// The phase that is missing from the mixture (its true weight is 0).
pub const ABSENT: usize = 1;

/// A 32-bit xorshift generator (Marsaglia 2003): small, fast and the same everywhere.
pub struct Rng(u32);

impl Rng {
    /// A generator from a non-zero seed (0 is replaced by 1).
    pub const fn new(seed: u32) -> Self {
        Rng(if seed == 0 { 1 } else { seed })
    }

    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// Uniform in `[0, 1)`, from the top 24 bits (exact in `f32`).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Zero mean, unit variance: the sum of four uniforms, centred and scaled (Irwin-Hall).
    pub fn normalish(&mut self) -> f32 {
        let sum = self.uniform() + self.uniform() + self.uniform() + self.uniform();
        (sum - 2.0) * 1.732_050_8
    }
}

/// Fills `out` (`n * k` values, channel-major: `out[i * k + j]`) with the peak library.
pub fn library(n: usize, k: usize, rng: &mut Rng, out: &mut [f32]) {
    out.fill(0.0);

    let size = n as f32;
    for j in 0..k {
        for _ in 0..PEAKS_PER_PHASE {
            let centre = size * (0.05 + 0.9 * rng.uniform());
            let sigma = size * (0.003 + 0.006 * rng.uniform());
            let height = 0.3 + 0.7 * rng.uniform();

            let first = libm::floorf(centre - 6.0 * sigma).max(0.0) as usize;
            let last = (libm::ceilf(centre + 6.0 * sigma) as usize).min(n);
            for i in first..last {
                let t = (i as f32 - centre) / sigma;
                out[i * k + j] += height * libm::expf(-0.5 * t * t);
            }
        }
    }
}

/// Fills `weights` (`k` values) and `spectrum` (`n` values) with the noisy mixture.
pub fn mixture(
    library: &[f32],
    k: usize,
    rng: &mut Rng,
    weights: &mut [f32],
    spectrum: &mut [f32],
) {
    for (j, w) in weights.iter_mut().enumerate() {
        let draw = 20.0 + 80.0 * rng.uniform();
        *w = if j == ABSENT { 0.0 } else { draw };
    }

    for (y, row) in spectrum.iter_mut().zip(library.chunks_exact(k)) {
        let clean: f32 = row.iter().zip(weights.iter()).map(|(x, w)| x * w).sum();
        *y = clean + libm::sqrtf(clean.max(1.0)) * rng.normalish();
    }
}
