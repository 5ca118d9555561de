//! Batch throughput of `unmix fit` against the floor of reading the data once.
//!
//! Generates, in a temporary directory, a synthetic 8-phase XRD library of 2048 channels and
//! 65,536 Poisson spectra as a `float32` `.npy` (512 MiB; `UNMIX_BENCH_SPECTRA` sets another
//! count), then times, on warm page cache:
//!
//! 1. the floor: one plain pass reading the file in 8 MiB blocks and summing its `f32`
//!    values in eight independent sums (single thread, no allocation per spectrum);
//! 2. the host's reader alone: every spectrum through `formats::read_spectra`, nothing fitted;
//! 3. the kernel alone: NNLS of every spectrum held in memory, on all cores (what the
//!    pipeline would cost if reading and writing were free), one spectrum per call
//!    (`PreparedView::fit`, as the firmware fits) and four interleaved per call
//!    (`PreparedView::fit_interleaved`, as `unmix fit` does);
//! 4. the full pipeline: the release `unmix fit --method nnls` binary writing the result CSV,
//!    with the default Poisson chi-square and with `--no-chi2`.
//!
//! It prints spectra per second for each and the ratio of the pipeline's time to the floor's.
//! Run with `cargo bench -p unmix-host --bench throughput`.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use npyz::WriterBuilder;
use rayon::prelude::*;
use unmix_host::fitting::PreparedLibrary;
use unmix_host::formats;
use unmix_host::simulate::{self, Kind, MixSpec};

const CHANNELS: usize = 2048;
const PHASES: usize = 8;
const BLOCK: usize = 4096;

fn main() {
    let spectra: usize = std::env::var("UNMIX_BENCH_SPECTRA")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(65_536);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let d = dir.path();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "throughput: {spectra} spectra x {CHANNELS} channels, {PHASES} phases, {threads} threads"
    );

    let start = Instant::now();
    generate(d, spectra);
    let bytes = std::fs::metadata(d.join("spectra.npy")).map_or(0, |m| m.len());
    println!(
        "generated {:.0} MiB in {:.1} s",
        bytes as f64 / (1 << 20) as f64,
        start.elapsed().as_secs_f64()
    );

    let _ = floor(&d.join("spectra.npy"));
    let floor_s = best_of(3, || floor(&d.join("spectra.npy")));
    let reader_s = best_of(3, || reader(&d.join("spectra.npy"), spectra));
    let [kernel_s, kernel_chi2_s, four_s, four_chi2_s] = kernel_only(d);
    let fit_s = best_of(3, || fit(d, &[]));
    let fast_s = best_of(3, || fit(d, &["--no-chi2"]));

    let rows = [
        ("read floor (8 MiB blocks, sum)", floor_s),
        ("host reader, no fit", reader_s),
        ("kernel, in memory, 1 per call, no chi2", kernel_s),
        ("kernel, in memory, 1 per call, chi2", kernel_chi2_s),
        ("kernel, in memory, 4 per call, no chi2", four_s),
        ("kernel, in memory, 4 per call, chi2", four_chi2_s),
        ("unmix fit --method nnls", fit_s),
        ("unmix fit --no-chi2", fast_s),
    ];
    for (what, seconds) in rows {
        let rate = spectra as f64 / seconds;
        println!("{what:<40} {seconds:7.3} s  {rate:>10.0} spectra/s");
    }
    println!(
        "pipeline / floor: {:.2}x ({:.2}x without the chi-square)",
        fit_s / floor_s,
        fast_s / floor_s
    );
}

/// Writes `library.csv` and `spectra.npy` (random mixtures at 1e5 counts), in blocks.
fn generate(d: &Path, spectra: usize) {
    let library = simulate::synthetic_library(Kind::Xrd, CHANNELS, PHASES, 1);
    simulate::write_library(&d.join("library.csv"), &library).expect("library written");

    let file =
        std::io::BufWriter::with_capacity(1 << 22, File::create(d.join("spectra.npy")).unwrap());
    let mut writer = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&[spectra as u64, CHANNELS as u64])
        .writer(file)
        .begin_nd()
        .expect("npy header");
    let mut done = 0;
    while done < spectra {
        let count = BLOCK.min(spectra - done);
        let spec = MixSpec {
            count,
            fractions: None,
            absent: 0.2,
            trace: 0.1,
            background_level: 0.5,
            counts: 1e5,
            seed: done as u64 + 1,
        };
        for y in simulate::simulate(&library, &spec).spectra {
            writer.extend(y).expect("npy rows");
        }
        done += count;
    }
    writer.finish().expect("npy written");
}

fn best_of(runs: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..runs).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// One pass over the file's bytes, decoding and summing every `f32` (the header's few bytes
/// are summed too; they do not change the cost).
fn floor(path: &Path) -> f64 {
    let start = Instant::now();
    let mut file = File::open(path).expect("spectra open");
    let mut block = vec![0u8; 8 << 20];
    let mut sums = [0.0f32; 8];
    loop {
        let n = file.read(&mut block).expect("read");
        if n == 0 {
            break;
        }
        // Eight independent sums, so the adds pipeline and vectorise.
        for c in block[..n].chunks_exact(32) {
            for (k, s) in sums.iter_mut().enumerate() {
                let b = &c[4 * k..4 * k + 4];
                *s += f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
    }
    std::hint::black_box(sums);
    start.elapsed().as_secs_f64()
}

fn reader(path: &Path, spectra: usize) -> f64 {
    let start = Instant::now();
    let mut count = 0;
    for item in formats::read_spectra(path).expect("spectra open") {
        std::hint::black_box(item.expect("a good spectrum").values.len());
        count += 1;
    }
    assert_eq!(count, spectra);
    start.elapsed().as_secs_f64()
}

/// The kernel's NNLS alone on all spectra held in memory, on all cores (rayon): what the
/// pipeline would cost with free reading and writing. Returns (without, with) chi-square.
/// Seconds for NNLS of every spectrum held in memory, on all cores: one spectrum per kernel
/// call and four interleaved per call, each without and with the chi-square.
fn kernel_only(d: &Path) -> [f64; 4] {
    let library = formats::read_library(d.join("library.csv")).expect("library");
    let prepared = PreparedLibrary::new(library, unmix::Background::None).expect("prepares");
    let spectra: Vec<Vec<f32>> = formats::read_spectra(d.join("spectra.npy"))
        .expect("spectra")
        .map(|s| s.expect("a good spectrum").values)
        .collect();
    let blocks: Vec<Vec<[f32; 4]>> = spectra
        .chunks_exact(4)
        .map(|four| {
            (0..CHANNELS)
                .map(|i| std::array::from_fn(|b| four[b][i]))
                .collect()
        })
        .collect();

    let view = prepared.view();
    let options = |chi2| unmix::FitOptions::new(unmix::Method::Nnls).with_chi2(chi2);
    let timed = |work: &dyn Fn() -> f32| {
        best_of(3, || {
            let start = Instant::now();
            std::hint::black_box(work());
            start.elapsed().as_secs_f64()
        })
    };
    let one = |chi2: bool| {
        timed(&|| {
            spectra
                .par_iter()
                .map(|y| {
                    view.fit(y, &options(chi2))
                        .map_or(0.0, |f| f.residual_norm())
                })
                .sum()
        })
    };
    let four = |chi2: bool| {
        timed(&|| {
            blocks
                .par_iter()
                .map(|block| {
                    let fits = view.fit_interleaved(block, &options(chi2));
                    fits.iter()
                        .flatten()
                        .map(|f| f.residual_norm())
                        .sum::<f32>()
                })
                .sum()
        })
    };
    [one(false), one(true), four(false), four(true)]
}

fn fit(d: &Path, extra: &[&str]) -> f64 {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_unmix"))
        .args([
            "fit",
            "--library",
            "library.csv",
            "--spectra",
            "spectra.npy",
            "--out",
            "out.csv",
        ])
        .args(extra)
        .current_dir(d)
        .output()
        .expect("unmix runs");
    let elapsed = start.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}
