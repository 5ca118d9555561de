//! Synthetic detector data with known truth, for trying the tool and testing it.
//!
//! A **library** of `k` phases over `n` channels: XRD-like phases are sums of 6 to 12
//! pseudo-Voigt peaks (a mix `eta L + (1 - eta) G` of a Lorentzian and a Gaussian of the same
//! full width at half maximum) on a `two_theta` axis from 10 to 90 degrees; EELS-like phases
//! are 2 to 4 ionisation edges (a logistic step decaying as `(E0 / E)^3`, with a Gaussian
//! white line at the onset) on an `energy_eV` axis from 100 to 2100 eV. Every phase is scaled
//! to unit sum over the channels, so a coefficient is the number of counts the phase
//! contributes.
//!
//! A **spectrum** is `y ~ Poisson(counts * sum_j f_j x_j + b)`: fractions `f` (given, or drawn
//! per spectrum with some phases absent and some at trace level), `counts` expected counts
//! from the phases, and a smooth background `b(t) = B (1.35 T_0(t) - 0.5 T_1(t) + 0.15 T_2(t))`
//! over the channels mapped onto `t` in `[-1, 1]` (the kernel's Chebyshev background of degree
//! 2 represents it exactly), with `B = background_level * counts / n`. The truth written is
//! `w_j = counts * f_j`, `f_j`, and the background's Chebyshev coefficients.
//!
//! Runs are reproducible: the library draws from ChaCha8 stream 0 of `--seed`, spectrum `i`
//! from stream `i + 1`, so the output does not depend on the number of threads.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use npyz::WriterBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, Poisson};
use rayon::prelude::*;

use crate::formats::Library;

/// Phase names used by synthetic XRD libraries, in order.
pub const PHASE_NAMES: [&str; 16] = [
    "austenite",
    "ferrite",
    "cementite",
    "martensite",
    "magnetite",
    "hematite",
    "wustite",
    "quartz",
    "calcite",
    "corundum",
    "rutile",
    "anatase",
    "zincite",
    "periclase",
    "fluorite",
    "halite",
];

/// Phase names used by synthetic EELS libraries, in order.
pub const EELS_PHASE_NAMES: [&str; 16] = [
    "carbon",
    "boron_nitride",
    "titania",
    "hematite",
    "magnetite",
    "wustite",
    "nickel_oxide",
    "cuprite",
    "silica",
    "alumina",
    "ceria",
    "zirconia",
    "manganosite",
    "cobalt_oxide",
    "chromia",
    "vanadia",
];

/// Background shape in Chebyshev coefficients (`T_0, T_1, T_2`), per unit of `B`.
pub const BACKGROUND_SHAPE: [f64; 3] = [1.35, -0.5, 0.15];

/// What kind of spectra to imitate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// X-ray diffraction: pseudo-Voigt peaks over `two_theta`.
    Xrd,
    /// Electron energy loss: edges with white lines over `energy_eV`.
    Eels,
}

/// How to mix the phases into spectra.
#[derive(Clone, Debug, PartialEq)]
pub struct MixSpec {
    /// Number of spectra.
    pub count: usize,
    /// Fixed fractions for every spectrum (normalised to sum 1), or `None` to draw them.
    pub fractions: Option<Vec<f64>>,
    /// Probability that a phase is absent from a drawn mixture.
    pub absent: f64,
    /// Probability that a phase is present at trace level (0.2 % to 1 %).
    pub trace: f64,
    /// Background counts as a multiple of the phase counts.
    pub background_level: f64,
    /// Expected counts from the phases per spectrum.
    pub counts: f64,
    /// Seed of the random streams.
    pub seed: u64,
}

/// The known truth of one spectrum.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    /// Spectrum name.
    pub name: String,
    /// True coefficients `counts * f_j`.
    pub coefficients: Vec<f64>,
    /// True fractions `f_j`.
    pub fractions: Vec<f64>,
    /// True background coefficients of `T_0, T_1, T_2`.
    pub background: [f64; 3],
}

/// Simulated spectra and their truth.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulated {
    /// Spectrum names, zero-padded so that name order is index order (`s01`, `s02`, ...).
    pub names: Vec<String>,
    /// Counts per channel, one vector per spectrum.
    pub spectra: Vec<Vec<f32>>,
    /// The truth per spectrum.
    pub truth: Vec<Truth>,
}

/// A synthetic library of `phases` phases over `channels` channels.
///
/// # Panics
/// When `phases` is 0 or above 16, or `channels` below 2 (caller bugs; the CLI checks).
pub fn synthetic_library(kind: Kind, channels: usize, phases: usize, seed: u64) -> Library {
    assert!((1..=PHASE_NAMES.len()).contains(&phases), "1 to 16 phases");
    assert!(channels >= 2, "at least two channels");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(0);

    let (axis_name, lo, hi) = match kind {
        Kind::Xrd => ("two_theta", 10.0, 90.0),
        Kind::Eels => ("energy_eV", 100.0, 2100.0),
    };
    let step = (hi - lo) / (channels - 1) as f64;
    let axis: Vec<f64> = (0..channels).map(|i| lo + i as f64 * step).collect();

    let columns: Vec<Vec<f32>> = (0..phases)
        .map(|_| {
            let shape = match kind {
                Kind::Xrd => xrd_phase(&axis, step, &mut rng),
                Kind::Eels => eels_phase(&axis, step, &mut rng),
            };
            let sum: f64 = shape.iter().sum();
            shape.iter().map(|v| (v / sum) as f32).collect()
        })
        .collect();
    let names = match kind {
        Kind::Xrd => &PHASE_NAMES[..phases],
        Kind::Eels => &EELS_PHASE_NAMES[..phases],
    };
    let names = names.iter().map(|s| s.to_string()).collect();

    Library::from_columns("synthetic", axis_name, axis, names, &columns)
}

fn xrd_phase(axis: &[f64], step: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let (lo, hi) = (axis[0], axis[axis.len() - 1]);
    let peaks = rng.random_range(6..=12);
    let mut y = vec![0.0f64; axis.len()];

    for p in 0..peaks {
        let centre = rng.random_range(lo + 0.03 * (hi - lo)..hi - 0.03 * (hi - lo));
        let fwhm = rng.random_range(0.15..0.5f64).max(2.5 * step);
        let height = if p == 0 {
            1.0
        } else {
            rng.random_range(0.05..1.0)
        };
        let eta = rng.random_range(0.2..0.8);

        for (v, &x) in y.iter_mut().zip(axis) {
            let u = 4.0 * ((x - centre) / fwhm).powi(2);
            let gauss = (-std::f64::consts::LN_2 * u).exp();
            let lorentz = 1.0 / (1.0 + u);
            *v += height * (eta * lorentz + (1.0 - eta) * gauss);
        }
    }
    y
}

fn eels_phase(axis: &[f64], step: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let (lo, hi) = (axis[0], axis[axis.len() - 1]);
    let edges = rng.random_range(2..=4);
    let mut y = vec![0.0f64; axis.len()];

    for _ in 0..edges {
        let onset = rng.random_range(lo + 0.05 * (hi - lo)..hi - 0.3 * (hi - lo));
        let width = rng.random_range(2.0..8.0f64).max(1.5 * step);
        let height = rng.random_range(0.2..1.0);
        let white = rng.random_range(0.0..2.0);

        for (v, &e) in y.iter_mut().zip(axis) {
            let step_up = 1.0 / (1.0 + (-(e - onset) / width).exp());
            let decay = (onset / e.max(onset)).powi(3);
            let line = white * (-0.5 * ((e - onset - width) / width).powi(2)).exp();
            *v += height * (step_up * decay + line);
        }
    }
    y
}

/// Draws `spec.count` spectra from `library` (see the module docs).
///
/// # Panics
/// When `spec.fractions` has a length other than the library's phase count or no positive
/// entry (the CLI checks both).
pub fn simulate(library: &Library, spec: &MixSpec) -> Simulated {
    let n = library.channels();
    let k = library.phases();
    let width = spec.count.max(1).to_string().len();
    let names: Vec<String> = (1..=spec.count).map(|i| format!("s{i:0width$}")).collect();
    let fixed = spec.fractions.as_ref().map(|f| {
        assert_eq!(f.len(), k, "one fraction per phase");
        let sum: f64 = f.iter().sum();
        assert!(sum > 0.0, "some fraction must be positive");
        f.iter().map(|v| v / sum).collect::<Vec<f64>>()
    });

    let level = spec.background_level * spec.counts / n as f64;
    let background: Vec<f64> = (0..n)
        .map(|i| {
            let t = if n > 1 {
                (2.0 * i as f64 - (n - 1) as f64) / (n - 1) as f64
            } else {
                0.0
            };
            let [a, b, c] = BACKGROUND_SHAPE;
            level * (a + b * t + c * (2.0 * t * t - 1.0))
        })
        .collect();

    let drawn: Vec<(Vec<f32>, Truth)> = names
        .par_iter()
        .enumerate()
        .map(|(i, name)| {
            let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
            rng.set_stream(i as u64 + 1);
            let fractions = match &fixed {
                Some(f) => f.clone(),
                None => draw_fractions(k, spec.absent, spec.trace, &mut rng),
            };

            let mut y = Vec::with_capacity(n);
            for (ch, &b) in background.iter().enumerate() {
                let row = &library.data[ch * k..(ch + 1) * k];
                let signal: f64 = row
                    .iter()
                    .zip(&fractions)
                    .map(|(&x, f)| f64::from(x) * f)
                    .sum();
                let mean = spec.counts * signal + b;
                y.push(poisson(mean, &mut rng) as f32);
            }

            let truth = Truth {
                name: name.clone(),
                coefficients: fractions.iter().map(|f| f * spec.counts).collect(),
                fractions,
                background: BACKGROUND_SHAPE.map(|c| c * level),
            };
            (y, truth)
        })
        .collect();

    let (spectra, truth) = drawn.into_iter().unzip();
    Simulated {
        names,
        spectra,
        truth,
    }
}

/// One Poisson draw of mean `mean` (0 for a mean that is not positive).
fn poisson(mean: f64, rng: &mut ChaCha8Rng) -> f64 {
    match Poisson::new(mean) {
        Ok(d) if mean > 0.0 => d.sample(rng),
        _ => 0.0,
    }
}

/// Random fractions: each phase absent with probability `absent`, at trace level (0.2 % to
/// 1 %) with probability `trace`, otherwise present with an exponentially distributed weight;
/// at least one phase is present.
fn draw_fractions(k: usize, absent: f64, trace: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut f = vec![0.0f64; k];
    let mut present = Vec::new();
    let mut traces = 0.0;
    for (j, v) in f.iter_mut().enumerate() {
        let u: f64 = rng.random();
        if u < absent {
            continue;
        }
        if u < absent + trace {
            *v = rng.random_range(0.002..0.01);
            traces += *v;
        } else {
            present.push(j);
        }
    }
    if present.is_empty() {
        let j = rng.random_range(0..k);
        traces -= f[j];
        f[j] = 0.0;
        present.push(j);
    }

    let weights: Vec<f64> = present.iter().map(|_| Exp1.sample(rng)).collect();
    let total: f64 = weights.iter().sum();
    for (&j, w) in present.iter().zip(weights) {
        f[j] = (1.0 - traces) * w / total;
    }
    f
}

/// Writes a library CSV (axis column, one column per phase).
///
/// # Errors
/// The I/O error of creating or writing `path`.
pub fn write_library(path: &Path, library: &Library) -> io::Result<()> {
    let columns: Vec<Vec<f32>> = (0..library.phases()).map(|j| library.column(j)).collect();
    write_csv_columns(
        path,
        &library.axis_name,
        &library.axis,
        &library.names,
        &columns,
    )
}

/// The formats [`write_spectra`] writes, chosen by the extension of the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpectraFormat {
    /// `.csv`, a column per spectrum.
    Csv,
    /// `.npy`, `float32`, a row per spectrum.
    Npy,
    /// `.xy`, one spectrum per file.
    Xy,
    /// `.msa` (EMSA/MSA), one spectrum per file.
    Msa,
}

impl SpectraFormat {
    /// The format named by `path`'s extension, in any case.
    ///
    /// # Errors
    /// A message listing the formats, for another extension or none (without the path).
    pub fn of(path: &Path) -> Result<Self, String> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        const ALL: [SpectraFormat; 4] = [
            SpectraFormat::Csv,
            SpectraFormat::Npy,
            SpectraFormat::Xy,
            SpectraFormat::Msa,
        ];
        ALL.into_iter()
            .find(|format| format.extension() == ext)
            .ok_or_else(|| "spectra are written as .csv, .npy, .xy or .msa".to_string())
    }

    fn extension(self) -> &'static str {
        match self {
            SpectraFormat::Csv => "csv",
            SpectraFormat::Npy => "npy",
            SpectraFormat::Xy => "xy",
            SpectraFormat::Msa => "msa",
        }
    }
}

/// Writes spectra in the format chosen by `path`'s extension ([`SpectraFormat::of`]). A
/// single spectrum is written to `path`; several `.xy`/`.msa` spectra go to a directory
/// named by `path`'s stem, one file per spectrum named after it. Returns the path to give
/// `unmix fit --spectra`.
///
/// # Errors
/// The I/O error of writing, or `InvalidInput` for another extension (before anything is
/// written).
pub fn write_spectra(
    path: &Path,
    axis_name: &str,
    axis: &[f64],
    names: &[String],
    spectra: &[Vec<f32>],
) -> io::Result<PathBuf> {
    let format =
        SpectraFormat::of(path).map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    match format {
        SpectraFormat::Csv => {
            write_csv_columns(path, axis_name, axis, names, spectra)?;
            Ok(path.to_path_buf())
        }
        SpectraFormat::Npy => {
            write_npy(path, spectra, axis.len())?;
            Ok(path.to_path_buf())
        }
        SpectraFormat::Xy | SpectraFormat::Msa if spectra.len() == 1 => {
            write_single(path, format, axis_name, axis, &names[0], &spectra[0])?;
            Ok(path.to_path_buf())
        }
        SpectraFormat::Xy | SpectraFormat::Msa => {
            let dir = path.with_extension("");
            fs::create_dir_all(&dir)?;
            for (name, y) in names.iter().zip(spectra) {
                let file = dir.join(format!("{name}.{}", format.extension()));
                write_single(&file, format, axis_name, axis, name, y)?;
            }
            Ok(dir)
        }
    }
}

fn write_single(
    path: &Path,
    format: SpectraFormat,
    axis_name: &str,
    axis: &[f64],
    name: &str,
    y: &[f32],
) -> io::Result<()> {
    if format == SpectraFormat::Xy {
        write_xy(path, axis_name, axis, y)
    } else {
        write_msa(path, name, axis_name, axis, y)
    }
}

/// Writes a CSV with an axis column and one column per named series.
///
/// # Errors
/// The I/O error of creating or writing `path`.
pub fn write_csv_columns(
    path: &Path,
    axis_name: &str,
    axis: &[f64],
    names: &[String],
    columns: &[Vec<f32>],
) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    write!(out, "{axis_name}")?;
    for name in names {
        write!(out, ",{name}")?;
    }
    writeln!(out)?;

    for (i, x) in axis.iter().enumerate() {
        write!(out, "{x}")?;
        for col in columns {
            write!(out, ",{}", col[i])?;
        }
        writeln!(out)?;
    }
    out.flush()
}

/// Writes a 2-D `float32` `.npy` file, one row per spectrum.
///
/// # Errors
/// The I/O error of creating or writing `path`.
pub fn write_npy(path: &Path, spectra: &[Vec<f32>], channels: usize) -> io::Result<()> {
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut writer = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&[spectra.len() as u64, channels as u64])
        .writer(file)
        .begin_nd()?;
    for y in spectra {
        writer.extend(y.iter().copied())?;
    }
    writer.finish()
}

/// Writes an `.xy` file: a comment line, then `axis intensity` per line.
///
/// # Errors
/// The I/O error of creating or writing `path`.
pub fn write_xy(path: &Path, axis_name: &str, axis: &[f64], y: &[f32]) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "# {axis_name} intensity (unmix simulate)")?;
    for (x, v) in axis.iter().zip(y) {
        writeln!(out, "{x} {v}")?;
    }
    out.flush()
}

/// Writes an EMSA/MSA file (`DATATYPE: XY`).
///
/// # Errors
/// The I/O error of creating or writing `path`.
pub fn write_msa(
    path: &Path,
    title: &str,
    axis_name: &str,
    axis: &[f64],
    y: &[f32],
) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let step = if axis.len() > 1 {
        axis[1] - axis[0]
    } else {
        1.0
    };
    let units = if axis_name == "energy_eV" {
        "eV"
    } else {
        axis_name
    };
    writeln!(out, "#FORMAT      : EMSA/MAS Spectral Data File")?;
    writeln!(out, "#VERSION     : 1.0")?;
    writeln!(out, "#TITLE       : {title}")?;
    writeln!(out, "#NPOINTS     : {}", y.len())?;
    writeln!(out, "#NCOLUMNS    : 1")?;
    writeln!(out, "#XUNITS      : {units}")?;
    writeln!(out, "#YUNITS      : counts")?;
    writeln!(out, "#DATATYPE    : XY")?;
    writeln!(out, "#XPERCHAN    : {step}")?;
    writeln!(
        out,
        "#OFFSET      : {}",
        axis.first().copied().unwrap_or(0.0)
    )?;
    writeln!(out, "#SPECTRUM    : Spectral Data Starts Here")?;
    for (x, v) in axis.iter().zip(y) {
        writeln!(out, "{x}, {v}")?;
    }
    writeln!(out, "#ENDOFDATA   : End Of Data and File")?;
    out.flush()
}

/// Writes the truth CSV: `spectrum`, true coefficient per phase, `fraction_<phase>` per
/// phase, `background_0..2`.
///
/// # Errors
/// The I/O error of creating or writing `path`.
pub fn write_truth(path: &Path, phases: &[String], truth: &[Truth]) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    write!(out, "spectrum")?;
    for p in phases {
        write!(out, ",{p}")?;
    }
    for p in phases {
        write!(out, ",fraction_{p}")?;
    }
    writeln!(out, ",background_0,background_1,background_2")?;

    for t in truth {
        write!(out, "{}", t.name)?;
        for v in t
            .coefficients
            .iter()
            .chain(&t.fractions)
            .chain(&t.background)
        {
            write!(out, ",{v}")?;
        }
        writeln!(out)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(count: usize) -> MixSpec {
        MixSpec {
            count,
            fractions: None,
            absent: 0.2,
            trace: 0.2,
            background_level: 0.5,
            counts: 1e5,
            seed: 3,
        }
    }

    #[test]
    fn library_columns_have_unit_sum() {
        for kind in [Kind::Xrd, Kind::Eels] {
            let lib = synthetic_library(kind, 512, 5, 1);
            for j in 0..5 {
                let sum: f64 = lib.column(j).iter().map(|&v| f64::from(v)).sum();
                assert!((sum - 1.0).abs() < 1e-5, "{kind:?} phase {j}: sum {sum}");
            }
        }
    }

    #[test]
    fn drawn_fractions_sum_to_one_and_the_run_repeats() {
        let lib = synthetic_library(Kind::Xrd, 256, 6, 9);
        let a = simulate(&lib, &spec(50));
        let b = simulate(&lib, &spec(50));

        assert_eq!(a, b);
        for t in &a.truth {
            let sum: f64 = t.fractions.iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-12,
                "{}: fractions sum to {sum}",
                t.name
            );
            assert!(t.fractions.iter().all(|&f| f >= 0.0));
        }
        let zeros = a
            .truth
            .iter()
            .flat_map(|t| &t.fractions)
            .filter(|&&f| f == 0.0)
            .count();
        assert!(zeros > 0, "some phases are absent");
    }

    #[test]
    fn counts_match_the_requested_level() {
        let lib = synthetic_library(Kind::Xrd, 1024, 3, 2);
        let mut s = spec(20);
        s.background_level = 0.0;
        let sim = simulate(&lib, &s);

        for y in &sim.spectra {
            let total: f64 = y.iter().map(|&v| f64::from(v)).sum();
            // Poisson total of mean 1e5 has standard deviation 316; allow 6 of them.
            assert!((total - 1e5).abs() < 6.0 * 316.3, "total counts {total}");
        }
    }
}
