//! Golden cases: libraries and spectra generated deterministically, prepared and fitted by
//! the kernel, and reported as raw 32-bit words (`f32` bits, counts, flags).
//!
//! The same code runs on the host (`unmix-tests` checks it against `expected.txt`) and on
//! every bare-metal target (`tests/targets` prints it under QEMU). Inputs are generated from
//! integers and `libm` only, so they are themselves identical everywhere; any difference in a
//! printed line is a difference in the kernel's arithmetic on that target. Besides the fits,
//! the SVD (`f32` and `f64`, with both vector sets) and the library diagnostics are covered.
//! Sizes stay small
//! (at most 200 channels, 12 columns) so that preparation on a 64 KiB Cortex-M0 fits on its
//! stack: the identity of bits does not depend on size, the benchmarks cover large sizes.

#![no_std]

use unmix::{Background, Error, Fit, FitOptions, Method, PreparedView, Shape, Status};

/// Receives each case: its name and the words that must match on every target.
pub trait Report {
    /// Called once per case, in a fixed order.
    fn case(&mut self, name: &str, words: &[u32]);
}

/// Largest channel count of a golden library.
const MAX_CHANNELS: usize = 200;

/// Largest column count (phases and background terms) of a golden library.
const MAX_COLS: usize = 12;

/// One golden library: how it is generated.
struct LibrarySpec {
    name: &'static str,
    channels: usize,
    phases: usize,
    /// Distance between neighbouring peak centres, in channels: small means nearly collinear.
    spacing: f32,
    /// Peak width (standard deviation), in channels.
    width: f32,
    background: Background,
}

/// The libraries: well conditioned, nearly collinear, with background, and wide.
const LIBRARIES: [LibrarySpec; 4] = [
    LibrarySpec {
        name: "separated",
        channels: 200,
        phases: 4,
        spacing: 37.0,
        width: 4.0,
        background: Background::None,
    },
    LibrarySpec {
        name: "collinear",
        channels: 160,
        phases: 6,
        spacing: 2.5,
        width: 6.0,
        background: Background::None,
    },
    LibrarySpec {
        name: "background",
        channels: 200,
        phases: 5,
        spacing: 21.0,
        width: 5.0,
        background: Background::Chebyshev { degree: 2 },
    },
    LibrarySpec {
        name: "wide",
        channels: 96,
        phases: 12,
        spacing: 7.0,
        width: 2.5,
        background: Background::None,
    },
];

/// Phase weights of the golden mixtures: a trace phase and an absent one, repeated as needed.
const WEIGHTS: [f32; 6] = [120.0, 0.0, 35.5, 0.75, 60.0, 0.0];

/// Runs every golden case in order, handing each result to `report`. Returns the case count.
pub fn run_all(report: &mut impl Report) -> usize {
    let mut cases = 0;
    for spec in &LIBRARIES {
        cases += library_cases(spec, report);
    }
    cases += svd_cases(report);
    cases += diagnostics_case(&LIBRARIES[1], report);
    cases
}

/// Rows and columns of the golden SVD matrix.
const SVD_ROWS: usize = 12;
const SVD_COLS: usize = 8;

/// The SVD with both vector sets, in `f32` and in `f64`, of a graded, nearly
/// rank-deficient matrix: `a_ij = 1 / (i + 2j + 1)` scaled by `2^-j` per column.
fn svd_cases(report: &mut impl Report) -> usize {
    use unmix::svd::{SvdOptions, SvdOutput, svd, svd_scratch_len};

    let entry = |i: usize, j: usize| libm::ldexp(1.0 / (i + 2 * j + 1) as f64, -(j as i32));
    let mut a64 = [0.0f64; SVD_ROWS * SVD_COLS];
    let mut a32 = [0.0f32; SVD_ROWS * SVD_COLS];
    for i in 0..SVD_ROWS {
        for j in 0..SVD_COLS {
            a64[i * SVD_COLS + j] = entry(i, j);
            a32[i * SVD_COLS + j] = entry(i, j) as f32;
        }
    }

    let mut words = [0u32; 2 * (SVD_COLS + SVD_ROWS * SVD_COLS + SVD_COLS * SVD_COLS) + 2];
    let mut scratch32 = [0.0f32; svd_scratch_len(SVD_ROWS, SVD_COLS)];
    let (mut s, mut u, mut v) = (
        [0.0f32; SVD_COLS],
        [0.0f32; SVD_ROWS * SVD_COLS],
        [0.0f32; 64],
    );
    let out = SvdOutput::values(&mut s).with_u(&mut u).with_v(&mut v);
    let len = match svd(
        &a32,
        SVD_ROWS,
        SVD_COLS,
        out,
        &mut scratch32,
        SvdOptions::default(),
    ) {
        Ok(info) => {
            let all = s.iter().chain(&u).chain(&v).map(|x| x.to_bits());
            fill(&mut words, core::iter::once(info.sweeps).chain(all))
        }
        Err(_) => fill(&mut words, [0xdead_0000]),
    };
    report.case("svd/f32", &words[..len]);

    let mut scratch64 = [0.0f64; svd_scratch_len(SVD_ROWS, SVD_COLS)];
    let (mut s, mut u, mut v) = (
        [0.0f64; SVD_COLS],
        [0.0f64; SVD_ROWS * SVD_COLS],
        [0.0f64; 64],
    );
    let out = SvdOutput::values(&mut s).with_u(&mut u).with_v(&mut v);
    let len = match svd(
        &a64,
        SVD_ROWS,
        SVD_COLS,
        out,
        &mut scratch64,
        SvdOptions::default(),
    ) {
        Ok(info) => {
            let all = s
                .iter()
                .chain(&u)
                .chain(&v)
                .flat_map(|x| split(x.to_bits()));
            fill(&mut words, core::iter::once(info.sweeps).chain(all))
        }
        Err(_) => fill(&mut words, [0xdead_0000]),
    };
    report.case("svd/f64", &words[..len]);
    2
}

/// The library diagnostics (computed in `f64`) of one golden library.
fn diagnostics_case(spec: &LibrarySpec, report: &mut impl Report) -> usize {
    let mut library = [0.0f32; MAX_CHANNELS * MAX_COLS];
    let library = &mut library[..spec.channels * spec.phases];
    peak_library(spec, library);

    let mut words = [0u32; 4 * 16 + 8];
    let len =
        match unmix::svd::diagnostics::library_diagnostics(library, spec.channels, spec.phases) {
            Ok(d) => {
                let k = spec.phases;
                let values = d.singular_values[..k]
                    .iter()
                    .chain(&d.scaled_singular_values[..k])
                    .chain([&d.condition, &d.scaled_condition])
                    .flat_map(|x| split(x.to_bits()));
                fill(
                    &mut words,
                    [d.rank as u32, d.scaled_rank as u32]
                        .into_iter()
                        .chain(values),
                )
            }
            Err(_) => fill(&mut words, [0xdead_0000]),
        };
    let mut name = [0u8; 48];
    report.case(join(&mut name, spec.name, "diagnostics"), &words[..len]);
    1
}

/// The low and high words of a 64-bit pattern.
fn split(bits: u64) -> [u32; 2] {
    [bits as u32, (bits >> 32) as u32]
}

/// Writes `values` into the start of `words` (as many as fit) and returns how many.
fn fill(words: &mut [u32], values: impl IntoIterator<Item = u32>) -> usize {
    let mut len = 0;
    for (slot, value) in words.iter_mut().zip(values) {
        *slot = value;
        len += 1;
    }
    len
}

/// Prepares one library on this target and fits its spectra with every method.
fn library_cases(spec: &LibrarySpec, report: &mut impl Report) -> usize {
    let shape = Shape::new(spec.channels, spec.phases, spec.background);
    let mut library = [0.0f32; MAX_CHANNELS * MAX_COLS];
    let mut storage = [0.0f32; MAX_CHANNELS * MAX_COLS + MAX_COLS * MAX_COLS + 2 * MAX_COLS];
    let mut scratch = [0.0f64; MAX_CHANNELS * MAX_COLS + MAX_COLS * MAX_COLS + MAX_COLS];

    let columns = shape.columns();
    let library = &mut library[..spec.channels * spec.phases];
    peak_library(spec, library);

    let storage = storage.get_mut(..shape.prepared_len()).unwrap_or_default();
    let scratch = scratch
        .get_mut(..shape.prepare_scratch_len())
        .unwrap_or_default();
    let prepared = match unmix::prepare(shape, library, storage, scratch) {
        Ok(prepared) => prepared,
        Err(error) => {
            report.case(spec.name, &[0xdead_0000 | error_code(&error)]);
            return 1;
        }
    };

    let id = prepared.library_id();
    report.case(spec.name, &[columns as u32, id as u32, (id >> 32) as u32]);
    let mut cases = 1;

    let mut spectrum = [0.0f32; MAX_CHANNELS];
    let spectrum = &mut spectrum[..spec.channels];
    mixture(spec, library, spectrum);

    let methods = [
        ("lstsq", Method::Lstsq),
        ("ridge", Method::Ridge { lambda: 0.25 }),
        ("nnls", Method::Nnls),
        ("fcls", Method::Fcls),
    ];
    for (label, method) in methods {
        let options = FitOptions::new(method).with_chi2(true);
        report_fit(report, spec.name, label, prepared.fit(spectrum, &options));
        cases += 1;
    }

    cases += count_cases(spec, &prepared, spectrum, report);
    cases
}

/// The same spectrum as integer counts, fitted from `u16` with its fitted spectrum.
fn count_cases(
    spec: &LibrarySpec,
    prepared: &PreparedView<'_>,
    spectrum: &[f32],
    report: &mut impl Report,
) -> usize {
    let mut counts = [0u16; MAX_CHANNELS];
    let counts = &mut counts[..spec.channels];
    for (count, &value) in counts.iter_mut().zip(spectrum) {
        *count = libm::roundf(value.clamp(0.0, 65535.0)) as u16;
    }

    let mut fitted = [0.0f32; MAX_CHANNELS];
    let fitted = &mut fitted[..spec.channels];
    let options = FitOptions::new(Method::Nnls);
    let fit = prepared.fit_with_model(counts, &options, fitted);
    report_fit(report, spec.name, "nnls-u16", fit);

    let mut words = [0u32; MAX_CHANNELS];
    for (word, value) in words.iter_mut().zip(fitted.iter()) {
        *word = value.to_bits();
    }
    let mut name = [0u8; 48];
    report.case(
        join(&mut name, spec.name, "fitted-u16"),
        &words[..spec.channels],
    );
    2
}

/// Reports a fit as its status, counts and every `f32` it holds, or its error code.
fn report_fit(report: &mut impl Report, library: &str, method: &str, fit: Result<Fit, Error>) {
    let mut name = [0u8; 48];
    let name = join(&mut name, library, method);

    let fit = match fit {
        Ok(fit) => fit,
        Err(error) => {
            report.case(name, &[0xdead_0000 | error_code(&error)]);
            return;
        }
    };

    let mut words = [0u32; 4 * MAX_COLS + 8];
    let mut len = 0;
    let mut push = |word: u32| {
        if let Some(slot) = words.get_mut(len) {
            *slot = word;
            len += 1;
        }
    };

    push(status_code(fit.status()));
    push(fit.iterations());
    push(fit.support());
    push(fit.residual_norm().to_bits());
    push(fit.chi2().map_or(u32::MAX, f32::to_bits));
    push(fit.reduced_chi2().map_or(u32::MAX, f32::to_bits));
    for value in fit
        .coefficients()
        .iter()
        .chain(fit.fractions())
        .chain(fit.standard_errors())
    {
        push(value.to_bits());
    }
    report.case(name, &words[..len]);
}

/// Fills a channel-major library with one Gaussian peak per phase, plus a weak shoulder.
fn peak_library(spec: &LibrarySpec, library: &mut [f32]) {
    let first = 10.0;
    for i in 0..spec.channels {
        for j in 0..spec.phases {
            let centre = first + spec.spacing * j as f32;
            let offset = (i as f32 - centre) / spec.width;
            let shoulder = (i as f32 - centre - 3.0 * spec.width) / (2.0 * spec.width);
            let value =
                libm::expf(-0.5 * offset * offset) + 0.2 * libm::expf(-0.5 * shoulder * shoulder);
            if let Some(slot) = library.get_mut(i * spec.phases + j) {
                *slot = 1000.0 * value;
            }
        }
    }
}

/// A mixture of the library's phases with a sloped offset and deterministic noise.
fn mixture(spec: &LibrarySpec, library: &[f32], spectrum: &mut [f32]) {
    let mut state = 0x1234_5678u32 ^ spec.channels as u32;
    for (i, value) in spectrum.iter_mut().enumerate() {
        let mut sum = 0.0f32;
        for j in 0..spec.phases {
            let weight = WEIGHTS[j % WEIGHTS.len()] / 100.0;
            sum += weight * library.get(i * spec.phases + j).copied().unwrap_or(0.0);
        }

        let slope = 20.0 + 0.05 * i as f32;
        let noise = uniform(&mut state) - 0.5;
        *value = sum + slope + 4.0 * noise;
    }
}

/// A uniform number in [0, 1) from a xorshift generator: integers only, then one exact scale.
fn uniform(state: &mut u32) -> f32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    (*state >> 8) as f32 * (1.0 / 16_777_216.0)
}

fn status_code(status: Status) -> u32 {
    match status {
        Status::Converged => 0,
        Status::IterationCap => 1,
        Status::Degenerate => 2,
        _ => 3,
    }
}

/// A stable small code for each error kind (its data is checked by the kernel's own tests).
fn error_code(error: &Error) -> u32 {
    match error {
        Error::NonFinite { .. } => 1,
        Error::RankDeficient { column } => 0x100 | *column as u32,
        Error::LengthMismatch { .. } => 3,
        _ => 0xff,
    }
}

/// Writes `a/b` into `buffer` and returns it as a string (truncated to the buffer).
fn join<'a>(buffer: &'a mut [u8; 48], a: &str, b: &str) -> &'a str {
    let mut len = 0;
    for &byte in a.as_bytes().iter().chain(b"/").chain(b.as_bytes()) {
        if let Some(slot) = buffer.get_mut(len) {
            *slot = byte;
            len += 1;
        }
    }
    core::str::from_utf8(&buffer[..len]).unwrap_or("?")
}

/// Formats one case as the line every target prints: `case <name> <hex words>...`.
pub fn write_line(out: &mut impl core::fmt::Write, name: &str, words: &[u32]) -> core::fmt::Result {
    write!(out, "case {name}")?;
    for word in words {
        write!(out, " {word:08x}")?;
    }
    writeln!(out)
}
