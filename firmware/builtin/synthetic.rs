//! The synthetic reference library built into the firmware's flash.
//!
//! Shared source: the firmware's `build.rs` prepares it into the built-in library, and the
//! xtask includes this same file (`#[path]`) to regenerate the library it streams against, so
//! both sides start from identical values without copying code.
//!
//! Each phase is an XRD-like pattern: a handful of Gaussian peaks (Lorentzian tails would
//! look closer to a real instrument, but the fit does not care) on the channel axis, at
//! positions and heights drawn from a fixed 64-bit linear congruential generator (Knuth's
//! MMIX constants), so the library is the same on every machine. Every value goes through
//! `libm` and basic `f64` operations only, rounded once to `f32`.

/// Channels of the built-in library.
pub const CHANNELS: usize = 2048;
/// Phases of the built-in library.
pub const PHASES: usize = 8;
/// Seed of the built-in library's generator.
pub const SEED: u64 = 0x756e_6d69_785f_6677;
/// Peaks per phase.
const PEAKS: usize = 6;

/// A 64-bit LCG (MMIX constants) for reproducible pseudo-random numbers.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next value, uniform in `[0, 1)` (53 bits).
    pub fn next_unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The library, channel-major (`x[i * phases + j]`), `channels * phases` values.
pub fn library(channels: usize, phases: usize, seed: u64) -> Vec<f32> {
    let mut rng = Lcg(seed);
    let mut x = vec![0.0f64; channels * phases];
    let span = channels as f64;

    for j in 0..phases {
        for _ in 0..PEAKS {
            let centre = span * (0.03 + 0.94 * rng.next_unit());
            let width = span * (0.002 + 0.006 * rng.next_unit());
            let height = 0.2 + rng.next_unit();
            for i in 0..channels {
                let t = (i as f64 - centre) / width;
                x[i * phases + j] += height * libm::exp(-0.5 * t * t);
            }
        }
    }

    // A weak amorphous hump shared by all phases keeps the columns from being orthogonal.
    for i in 0..channels {
        let t = (i as f64 / span - 0.4) / 0.25;
        let hump = 0.05 * libm::exp(-0.5 * t * t);
        for j in 0..phases {
            x[i * phases + j] += hump;
        }
    }
    x.iter().map(|&v| v as f32).collect()
}
