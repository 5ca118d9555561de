//! Proof by linking that the per-spectrum path cannot panic.
//!
//! The program loads a prepared library from bytes and fits a spectrum with every method,
//! with every size and value hidden from the optimiser behind [`black_box`]: the calls the
//! firmware makes per request, and the host's four-at-a-time `fit_interleaved`. The panic
//! handler calls `unmix_fit_path_can_panic`, which no object defines: if any panic (bounds
//! check, unwrap, arithmetic check) survives optimisation anywhere on this path, the link
//! fails and names that symbol. The binary is never run; building it is the proof. It covers
//! release builds (opt-level 3, fat LTO), the profile the firmware ships with.
//!
//! The `canary` feature adds one out-of-bounds index inside the fit branch: its link must
//! fail, which shows that the branch is live code (were the optimiser able to prove that no
//! library ever loads, the fit calls would vanish and the proof with them).

#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use unmix::{FitOptions, Method, PreparedView};

/// Room for the largest library the firmware accepts: 4096 channels, 21 columns.
const STORAGE: usize = unmix::prepared_len(4096, unmix::MAX_COLUMNS);

/// Channels of the largest spectrum.
const CHANNELS: usize = 4096;

#[entry]
fn main() -> ! {
    // The slice, length included, is hidden: any library shape could arrive.
    let bytes: &[u8] = black_box(&[0u8; 64][..]);
    let mut storage = [0.0f32; STORAGE];
    let mut counts = [0u16; CHANNELS];
    let mut wide_counts = [0u32; CHANNELS];
    let mut samples = [0.0f32; CHANNELS];
    let mut fitted = [0.0f32; CHANNELS];
    let mut block = [[0u16; 4]; CHANNELS];
    black_box(&mut counts);
    black_box(&mut wide_counts);
    black_box(&mut samples);
    black_box(&mut block);

    let channels = black_box(CHANNELS);
    let counts = counts.get(..channels).unwrap_or(&[]);
    let wide_counts = wide_counts.get(..channels).unwrap_or(&[]);
    let samples = samples.get(..channels).unwrap_or(&[]);
    let block = block.get(..channels).unwrap_or(&[]);

    if let Ok(prepared) = PreparedView::from_bytes(bytes, &mut storage) {
        #[cfg(feature = "canary")]
        black_box(samples[black_box(CHANNELS)]);

        fit_every_way(&prepared, counts, wide_counts, samples, &mut fitted);
        fit_interleaved_every_way(&prepared, block);
    }

    loop {
        cortex_m::asm::wfi();
    }
}

/// Every per-spectrum entry point, with options the optimiser cannot see.
fn fit_every_way(
    prepared: &PreparedView<'_>,
    counts: &[u16],
    wide_counts: &[u32],
    samples: &[f32],
    fitted: &mut [f32],
) {
    let lambda = black_box(0.5f32);
    let cap = black_box(40u32);
    let methods = [
        Method::Lstsq,
        Method::Ridge { lambda },
        Method::Nnls,
        Method::Fcls,
    ];

    for method in black_box(methods) {
        let options = FitOptions::new(method)
            .with_max_iterations(cap)
            .with_chi2(black_box(true));
        black_box(prepared.fit(counts, &options).ok());
        black_box(prepared.fit(wide_counts, &options).ok());
        black_box(prepared.fit(samples, &options).ok());
        black_box(prepared.fit_with_model(counts, &options, fitted).ok());
    }

    let mut z = [0.0f32; unmix::MAX_COLUMNS];
    black_box(prepared.project(samples, &mut z).ok());
    black_box(prepared.library_id());
}

/// The host's batch entry point, four spectra at a time, with every method.
fn fit_interleaved_every_way(prepared: &PreparedView<'_>, block: &[[u16; 4]]) {
    for method in black_box([
        Method::Lstsq,
        Method::Ridge { lambda: 0.5 },
        Method::Nnls,
        Method::Fcls,
    ]) {
        let options = FitOptions::new(method).with_chi2(black_box(true));
        let results = prepared.fit_interleaved(block, &options);
        black_box(&results);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    unsafe extern "Rust" {
        /// Defined nowhere: a reachable panic makes the link fail with this name.
        fn unmix_fit_path_can_panic() -> !;
    }
    // SAFETY: never called at run time; the link only succeeds when this is unreachable.
    unsafe { unmix_fit_path_can_panic() }
}
