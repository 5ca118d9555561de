//! Instruction counts of the kernel and two baselines on the Cortex-M4F, under QEMU `-icount`.
//!
//! For every `n` in [`SIZES`] and `k` in [`PHASES`], the device makes a Gaussian-peak
//! library and a noisy mixture with one absent phase (`bench/data.rs`), prepares the library
//! with the kernel's [`unmix::prepare`] (no background), and measures each kernel over a
//! repeated region (`bench/meter.rs`): timer ticks, 40 instructions each, and the stack
//! high-water mark. The kernels:
//!
//! - `floor`: the bare `n * k` multiply-add pass `z = Q^T y` over the prepared `Q`. Three
//!   versions are measured and reported: the kernel's generic [`unmix::pass::multiply_add_pass`]
//!   (run-time `k`, accumulators in memory), the kernel's [`unmix::PreparedView::project`]
//!   (accumulators in registers, one loop per column count, plus `n` multiply-adds for
//!   `||y||^2`) and [`tight_pass`] here, the same register-resident loop with only the
//!   `n * k` multiply-adds. The host takes the least of the three as the floor.
//! - `projection`, `ridge`, `nnls`, `fcls`: a full [`unmix::PreparedView::fit`] with
//!   `Method::Lstsq`, `Ridge`, `Nnls` and `Fcls` (no chi-square).
//! - `lawson_hanson_full`: textbook Lawson-Hanson on the full library (`bench/lawson_hanson.rs`).
//! - `nalgebra_svd`: least squares through nalgebra's SVD (`bench/svd.rs`), on a heap that
//!   only this binary has.
//!
//! Output is plain text over semihosting, one `key=value` record per line, parsed by
//! `cargo xtask bench`: `bench` (the set-up), `overhead` (an empty region, subtracted by the
//! host), `row` (one kernel), `check` (agreement of the baselines with the kernel) and `done`.
//! A failed check, a kernel error, a panic or a HardFault exits with failure.
//!
//! Cortex-M4F (`mps2-an386`) only: built with `--features bench` for `thumbv7em-none-eabihf`.

#![no_std]
#![no_main]

extern crate alloc;

#[path = "../bench/data.rs"]
mod data;
#[path = "../bench/lawson_hanson.rs"]
mod lawson_hanson;
#[path = "../bench/meter.rs"]
mod meter;
#[path = "../bench/svd.rs"]
mod svd;

use core::hint::black_box;
use core::mem::{MaybeUninit, size_of};

// The single-core critical section that the heap's lock uses.
use cortex_m as _;
use cortex_m_rt::{ExceptionFrame, entry, exception};
use semihosting::{println, process};
use unmix::{Background, Fit, FitOptions, Method, Shape};

/// Channel counts measured.
const SIZES: [usize; 3] = [1280, 2048, 4096];
/// Phase counts measured.
const PHASES: [usize; 4] = [2, 4, 8, 16];
const MAX_N: usize = 4096;
const MAX_K: usize = 16;

/// Repetitions of the kernel's own calls: the 40-instruction tick becomes 2.5 per call.
const FAST_REPS: u32 = 16;
/// Repetitions of the baselines, each of which runs for a million instructions or more.
const SLOW_REPS: u32 = 2;

/// Largest relative difference (over the largest coefficient) accepted between a baseline
/// and the kernel's answer to the same problem.
const AGREEMENT: f32 = 1e-3;

/// Ridge penalty for the `ridge` row (in the library's units; the cost does not depend on it).
const RIDGE_LAMBDA: f32 = 1.0;

/// Heap for the nalgebra baseline: the 4096 x 16 matrix, its SVD factors and copies.
const HEAP_BYTES: usize = 1536 * 1024;

/// Every large buffer, static so that the stack holds only what the kernels use.
struct Buffers {
    library: [f32; MAX_N * MAX_K],
    prepared: [f32; unmix::prepared_len(MAX_N, MAX_K)],
    scratch: [f64; unmix::prepare_scratch_len(MAX_N, MAX_K)],
    spectrum: [f32; MAX_N],
    weights: [f32; MAX_K],
    work: [f32; MAX_N * MAX_K],
    rhs: [f32; MAX_N],
}

static mut BUFFERS: Buffers = Buffers {
    library: [0.0; MAX_N * MAX_K],
    prepared: [0.0; unmix::prepared_len(MAX_N, MAX_K)],
    scratch: [0.0; unmix::prepare_scratch_len(MAX_N, MAX_K)],
    spectrum: [0.0; MAX_N],
    weights: [0.0; MAX_K],
    work: [0.0; MAX_N * MAX_K],
    rhs: [0.0; MAX_N],
};

static mut HEAP: [MaybeUninit<u8>; HEAP_BYTES] = [MaybeUninit::uninit(); HEAP_BYTES];

#[global_allocator]
static ALLOCATOR: svd::Tracking = svd::Tracking::empty();

#[entry]
fn main() -> ! {
    // SAFETY: HEAP is used by nothing but the allocator, and this is the only `init` call,
    // made before anything allocates.
    unsafe { ALLOCATOR.init((&raw mut HEAP) as usize, HEAP_BYTES) };
    let buffers = &raw mut BUFFERS;
    // SAFETY: the pointer comes from a static, so it is aligned and valid; `main` runs once
    // and never returns, and no interrupt handler touches BUFFERS, so this is the only
    // reference to it for the rest of the program.
    let buffers = unsafe { &mut *buffers };

    meter::start_timer();
    println!(
        "bench target=thumbv7em-none-eabihf machine=mps2-an386 instructions_per_tick={} \
         fit_bytes={}",
        meter::INSTRUCTIONS_PER_TICK,
        size_of::<Fit>()
    );

    for reps in [FAST_REPS, SLOW_REPS] {
        let empty = meter::measure(reps, || black_box(()));
        println!(
            "overhead reps={} ticks={} stack={}",
            reps, empty.ticks, empty.stack
        );
    }

    let mut failures = 0;
    for n in SIZES {
        for k in PHASES {
            failures += run_case(buffers, n, k);
        }
    }

    println!("done failures={}", failures);
    process::exit(if failures == 0 { 0 } else { 1 })
}

/// Measures every kernel for one `(n, k)`; returns the number of failed checks.
fn run_case(b: &mut Buffers, n: usize, k: usize) -> u32 {
    let mut rng = data::Rng::new(0x2545_F491 ^ (n * 64 + k) as u32);
    let library = &mut b.library[..n * k];
    data::library(n, k, &mut rng, library);
    let library = &b.library[..n * k];
    let y = &mut b.spectrum[..n];
    data::mixture(library, k, &mut rng, &mut b.weights[..k], y);
    let y = &b.spectrum[..n];

    let shape = Shape::new(n, k, Background::None);
    let prepared = match unmix::prepare(
        shape,
        library,
        &mut b.prepared[..shape.prepared_len()],
        &mut b.scratch[..shape.prepare_scratch_len()],
    ) {
        Ok(view) => view,
        Err(error) => {
            println!("error n={} k={} prepare={:?}", n, k, error);
            return 1;
        }
    };
    let [q, ..] = prepared.as_parts();

    let tight = meter::measure(FAST_REPS, || {
        black_box(tight_pass(black_box(q), black_box(y), k));
    });
    let generic = meter::measure(FAST_REPS, || {
        let mut z = [0.0f32; MAX_K];
        unmix::pass::multiply_add_pass(black_box(q), black_box(y), &mut z[..k]);
        black_box(z);
    });
    let project = meter::measure(FAST_REPS, || {
        let mut z = [0.0f32; MAX_K];
        let yy = prepared.project(black_box(y), &mut z[..k]);
        black_box((yy.ok(), z));
    });
    row(n, k, "floor_tight", FAST_REPS, tight, "");
    row(n, k, "floor_multiply_add_pass", FAST_REPS, generic, "");
    row(n, k, "floor_project", FAST_REPS, project, "");

    let methods = [
        ("projection", Method::Lstsq),
        (
            "ridge",
            Method::Ridge {
                lambda: RIDGE_LAMBDA,
            },
        ),
        ("nnls", Method::Nnls),
        ("fcls", Method::Fcls),
    ];
    let mut failures = 0;
    let mut answers = [[0.0f32; MAX_K]; 4];
    for ((name, method), answer) in methods.iter().zip(&mut answers) {
        let options = FitOptions::new(*method);
        let reading = meter::measure(FAST_REPS, || {
            black_box(prepared.fit(black_box(y), &options)).ok();
        });
        match prepared.fit(y, &options) {
            Ok(fit) => {
                answer[..k].copy_from_slice(fit.phases());
                fit_row(n, k, name, reading, &fit);
            }
            Err(error) => {
                println!("error n={} k={} kernel={} fit={:?}", n, k, name, error);
                failures += 1;
            }
        }
    }
    let [lstsq, _, nnls, _] = answers;

    let inputs = Inputs { n, k, library, y };
    failures + baselines(&inputs, &mut b.work, &mut b.rhs, &lstsq, &nnls)
}

/// One benchmark problem: the library (channel-major) and the spectrum.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    n: usize,
    k: usize,
    library: &'a [f32],
    y: &'a [f32],
}

/// Measures the two baselines and checks them against the kernel's answers.
fn baselines(
    inputs: &Inputs<'_>,
    work: &mut [f32],
    rhs: &mut [f32],
    lstsq: &[f32; MAX_K],
    nnls: &[f32; MAX_K],
) -> u32 {
    let Inputs { n, k, library, y } = *inputs;

    let mut x_lh = [0.0f32; MAX_K];
    let mut outcome = None;
    let reading = meter::measure(SLOW_REPS, || {
        let done =
            lawson_hanson::solve(black_box(library), n, k, black_box(y), work, rhs, &mut x_lh);
        outcome = Some(black_box(done));
    });
    let (iterations, converged) = outcome.map_or((0, false), |o| (o.iterations, o.converged));
    let extra = if converged {
        ""
    } else {
        " status=IterationCap"
    };
    row(n, k, "lawson_hanson_full", SLOW_REPS, reading, "");
    println!(
        "detail n={} k={} kernel=lawson_hanson_full iterations={}{}",
        n, k, iterations, extra
    );

    let mut x_svd = [0.0f32; MAX_K];
    let mut solved = true;
    ALLOCATOR.reset_peak();
    let reading = meter::measure(SLOW_REPS, || {
        solved &= svd::solve(black_box(library), n, k, black_box(y), &mut x_svd);
        black_box(&x_svd);
    });
    row(n, k, "nalgebra_svd", SLOW_REPS, reading, "");
    println!(
        "detail n={} k={} kernel=nalgebra_svd heap_peak={}",
        n,
        k,
        ALLOCATOR.peak()
    );

    let mut s_unmix = [0.0f32; MAX_K];
    let mut s_nalgebra = [0.0f32; MAX_K];
    let mut svd_ok = true;
    let reading = meter::measure(SLOW_REPS, || {
        svd_ok &= svd::unmix_singular_values(black_box(library), n, k, &mut s_unmix);
        black_box(&s_unmix);
    });
    row(n, k, "unmix_svd_values", SLOW_REPS, reading, "");
    let reading = meter::measure(SLOW_REPS, || {
        svd::singular_values(black_box(library), n, k, &mut s_nalgebra);
        black_box(&s_nalgebra);
    });
    row(n, k, "nalgebra_svd_values", SLOW_REPS, reading, "");
    println!(
        "detail n={} k={} kernel=unmix_svd_values ok={} largest={:e} smallest={:e} \
         vs_nalgebra={:e}",
        n,
        k,
        svd_ok,
        s_unmix[0],
        s_unmix[k - 1],
        relative_difference(&s_unmix[..k], &s_nalgebra[..k])
    );

    let lh_vs_nnls = relative_difference(&x_lh[..k], &nnls[..k]);
    let svd_vs_lstsq = relative_difference(&x_svd[..k], &lstsq[..k]);
    let svd_vs_nnls = relative_difference(&x_svd[..k], &nnls[..k]);
    let agree = solved && converged && lh_vs_nnls <= AGREEMENT && svd_vs_lstsq <= AGREEMENT;
    println!(
        "check n={} k={} lh_vs_nnls={:e} svd_vs_lstsq={:e} svd_vs_nnls={:e} \
         absent_lstsq={:e} absent_nnls={:e} tolerance={:e} ok={}",
        n,
        k,
        lh_vs_nnls,
        svd_vs_lstsq,
        svd_vs_nnls,
        lstsq[data::ABSENT] / largest(lstsq, k),
        nnls[data::ABSENT] / largest(nnls, k),
        AGREEMENT,
        agree as u8
    );
    u32::from(!agree)
}

/// The largest coefficient's size, to express the absent phase's value relative to it.
fn largest(x: &[f32; MAX_K], k: usize) -> f32 {
    x[..k]
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE)
}

/// `max_j |a_j - b_j| / max_j |b_j|`: relative to the largest coefficient, since the absent
/// phase's reference value is zero.
fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
    if scale > 0.0 { worst / scale } else { worst }
}

fn row(n: usize, k: usize, kernel: &str, reps: u32, reading: meter::Reading, extra: &str) {
    println!(
        "row n={} k={} kernel={} reps={} ticks={} stack={} saturated={}{}",
        n, k, kernel, reps, reading.ticks, reading.stack, reading.saturated as u8, extra
    );
}

fn fit_row(n: usize, k: usize, kernel: &str, reading: meter::Reading, fit: &Fit) {
    row(n, k, kernel, FAST_REPS, reading, "");
    println!(
        "detail n={} k={} kernel={} iterations={} support={} status={:?}",
        n,
        k,
        kernel,
        fit.iterations(),
        fit.support().count_ones(),
        fit.status()
    );
}

/// `z = Q^T y` with only the `n * k` multiply-adds, accumulators in registers: one loop
/// instance per phase count measured, like the kernel's projection minus its `||y||^2`.
fn tight_pass(q: &[f32], y: &[f32], k: usize) -> [f32; MAX_K] {
    match k {
        2 => tight_fixed::<2>(q, y),
        4 => tight_fixed::<4>(q, y),
        8 => tight_fixed::<8>(q, y),
        16 => tight_fixed::<16>(q, y),
        _ => {
            let mut z = [0.0f32; MAX_K];
            unmix::pass::multiply_add_pass(q, y, &mut z[..k]);
            z
        }
    }
}

#[inline(never)]
fn tight_fixed<const K: usize>(q: &[f32], y: &[f32]) -> [f32; MAX_K] {
    let mut acc = [0.0f32; K];
    let (rows, _) = q.as_chunks::<K>();
    for (row, &sample) in rows.iter().zip(y) {
        for (a, &b) in acc.iter_mut().zip(row) {
            *a += b * sample;
        }
    }

    let mut z = [0.0f32; MAX_K];
    z[..K].copy_from_slice(&acc);
    z
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    println!("hardfault pc={:#010x}", frame.pc());
    process::exit(102)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panic: {}", info);
    process::exit(101)
}
