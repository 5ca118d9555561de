//! `unmix`: fit detector spectra to a library of reference phases, inspect libraries,
//! simulate data, prepare libraries for devices and stream spectra to them.
//!
//! Exit status: 0 when everything succeeded; 1 when the run itself failed (an unusable
//! library or spectra file, options refused here, an I/O error writing results or a plot),
//! with one message; 2 when some spectra failed and the others were fitted and written.
//! Command lines that clap rejects (an unknown option, a missing value) also exit 2, with
//! clap's usage message.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use unmix_host::batch::{self, BatchOptions};
use unmix_host::cli::{FitArgs, StreamArgs};
use unmix_host::fitting::PreparedLibrary;
use unmix_host::formats::{self, SpectrumError};
use unmix_host::simulate::{self, Kind, MixSpec};
use unmix_host::{inspect, plot, stream};

/// Exit status when the run itself failed.
const RUN_FAILED: u8 = 1;
/// Exit status when some spectra failed and the others were fitted.
const SPECTRA_FAILED: u8 = 2;
/// How many spectrum errors are printed one by one before they are only counted.
const SHOWN_ERRORS: usize = 20;

#[derive(Parser)]
#[command(
    name = "unmix",
    version,
    about = "Phase fractions from detector spectra"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit every spectrum of a file to a library and write one CSV row per spectrum.
    Fit(FitCommand),
    /// Report singular values, conditioning, rank and similar phases of a library.
    Inspect(InspectCommand),
    /// Write a synthetic library, spectra with Poisson noise, and their true fractions.
    Simulate(SimulateCommand),
    /// Write the kernel's prepared library as bytes, for a device.
    Prepare(PrepareCommand),
    /// Fit spectra on a device (QEMU or serial) and write the same CSV as `fit`.
    Stream(StreamArgs),
}

#[derive(clap::Args)]
struct FitCommand {
    /// Reference library CSV: axis column, one column per phase.
    #[arg(long, value_name = "LIB")]
    library: PathBuf,
    /// Spectra: .csv (a column per spectrum), .npy (a row per spectrum), .xy, .msa, or a
    /// directory of such files.
    #[arg(long, value_name = "SPECTRA")]
    spectra: PathBuf,
    #[command(flatten)]
    fit: FitArgs,
    /// Result CSV; standard output when absent.
    #[arg(long, value_name = "OUT.csv")]
    out: Option<PathBuf>,
    /// Draw the first fitted spectrum with its phase contributions and residual (PNG).
    #[arg(long, value_name = "FIT.png")]
    plot: Option<PathBuf>,
}

#[derive(clap::Args)]
struct InspectCommand {
    /// Reference library CSV.
    #[arg(long, value_name = "LIB")]
    library: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Draw the singular values on a log scale (PNG).
    #[arg(long, value_name = "SCREE.png")]
    plot: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SimulateCommand {
    /// Mix the phases of this library CSV instead of generating one.
    #[arg(long, value_name = "LIB")]
    library: Option<PathBuf>,
    /// Kind of synthetic library.
    #[arg(long, value_enum, default_value_t = Kind::Xrd)]
    kind: Kind,
    /// Channels of a synthetic library.
    #[arg(long, default_value_t = 2048)]
    channels: usize,
    /// Phases of a synthetic library (1 to 16); defaults to the number of --fractions, or 4.
    #[arg(long)]
    phases: Option<usize>,
    /// Number of spectra.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Fractions of every spectrum, e.g. 0.6,0.3,0.1 (normalised to sum 1); drawn at random
    /// per spectrum when absent.
    #[arg(long, value_delimiter = ',')]
    fractions: Option<Vec<f64>>,
    /// Probability that a phase is absent from a random mixture.
    #[arg(long, default_value_t = 0.2)]
    absent: f64,
    /// Probability that a phase is at trace level (0.2 % to 1 %) in a random mixture.
    #[arg(long, default_value_t = 0.1)]
    trace: f64,
    /// Background counts as a multiple of the phase counts (0: none).
    #[arg(long, default_value_t = 0.5)]
    background_level: f64,
    /// Expected counts from the phases per spectrum (sets the Poisson noise).
    #[arg(long, default_value_t = 1e6)]
    counts: f64,
    /// Seed of the random numbers: equal seeds give equal files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the library CSV (not written when --library is given).
    #[arg(long, default_value = "library.csv")]
    out_library: PathBuf,
    /// Where to write the spectra; the extension picks the format (.csv, .npy, .xy, .msa).
    #[arg(long, default_value = "spectra.csv")]
    out_spectra: PathBuf,
    /// Where to write the true coefficients and fractions.
    #[arg(long, default_value = "truth.csv")]
    out_truth: PathBuf,
}

#[derive(clap::Args)]
struct PrepareCommand {
    /// Reference library CSV.
    #[arg(long, value_name = "LIB")]
    library: PathBuf,
    /// Chebyshev background degree to prepare for.
    #[arg(long, value_name = "DEGREE")]
    background: Option<u8>,
    /// Output file for the prepared bytes.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Fit(c) => run_fit(c),
        Command::Inspect(c) => run_inspect(c),
        Command::Simulate(c) => run_simulate(c),
        Command::Prepare(c) => run_prepare(c),
        Command::Stream(args) => stream::run(args).map_err(|e| e.to_string()),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("unmix: {message}");
            ExitCode::from(RUN_FAILED)
        }
    }
}

type CommandResult = Result<ExitCode, String>;

fn run_fit(c: &FitCommand) -> CommandResult {
    let settings = c.fit.settings()?;
    let library = formats::read_library(&c.library).map_err(|e| e.to_string())?;
    let prepared =
        PreparedLibrary::new(library, settings.background()).map_err(|e| e.to_string())?;
    let source = formats::read_spectra(&c.spectra).map_err(|e| e.to_string())?;

    let out: Box<dyn Write> = match &c.out {
        Some(path) => Box::new(BufWriter::with_capacity(1 << 20, create(path)?)),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let out_name = c
        .out
        .as_ref()
        .map_or("standard output".into(), |p| p.display().to_string());
    let options = BatchOptions {
        progress: true,
        keep_first: c.plot.is_some(),
    };
    let mut shown = 0usize;
    let on_error = |e: &SpectrumError| {
        if shown < SHOWN_ERRORS {
            eprintln!("unmix: {e}");
        }
        shown += 1;
    };
    let summary = batch::fit_all(&prepared, &settings, source, out, options, on_error)
        .map_err(|e| format!("{out_name}: writing results: {e}"))?;

    if summary.failed > SHOWN_ERRORS {
        eprintln!(
            "unmix: ... and {} more failed spectra",
            summary.failed - SHOWN_ERRORS
        );
    }
    // The table is written whatever becomes of the plot, and the summary always follows.
    let plotted = match (&c.plot, &summary.first) {
        (Some(path), Some((spectrum, fit))) => {
            plot::plot_fit(path, &prepared.library, spectrum, fit)
        }
        (Some(path), None) => {
            eprintln!(
                "unmix: no spectrum was fitted, so {} is not drawn",
                path.display()
            );
            Ok(())
        }
        (None, _) => Ok(()),
    };
    if let Err(message) = &plotted {
        eprintln!("unmix: {message}");
    }
    eprintln!(
        "unmix fit: {} spectra, {} failed, {:.2} s, {:.0} spectra/s ({}, {} phases, {} channels)",
        summary.spectra,
        summary.failed,
        summary.elapsed.as_secs_f64(),
        summary.rate(),
        c.fit.method,
        prepared.library.phases(),
        prepared.library.channels(),
    );

    Ok(if plotted.is_err() {
        ExitCode::from(RUN_FAILED)
    } else if summary.failed > 0 {
        ExitCode::from(SPECTRA_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn run_inspect(c: &InspectCommand) -> CommandResult {
    let library = formats::read_library(&c.library).map_err(|e| e.to_string())?;
    let report = inspect::inspect(&library)?;

    if c.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if let Some(path) = &c.plot {
        let title = c.library.display().to_string();
        plot::plot_scree(
            path,
            &title,
            report.singular_values(),
            report.scaled_singular_values(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_simulate(c: &SimulateCommand) -> CommandResult {
    // Checked before anything is written, so a bad name leaves no files behind.
    simulate::SpectraFormat::of(&c.out_spectra)
        .map_err(|m| format!("{}: {m}", c.out_spectra.display()))?;

    let phases = c.phases.or(c.fractions.as_ref().map(Vec::len)).unwrap_or(4);
    let library = match &c.library {
        Some(path) => formats::read_library(path).map_err(|e| e.to_string())?,
        None => {
            if !(1..=simulate::PHASE_NAMES.len()).contains(&phases) {
                return Err(format!("--phases {phases}: choose 1 to 16"));
            }
            if c.channels < 2 * phases {
                return Err(format!(
                    "--channels {}: too few for {phases} phases",
                    c.channels
                ));
            }
            simulate::synthetic_library(c.kind, c.channels, phases, c.seed)
        }
    };
    check_mix(c, library.phases())?;

    let spec = MixSpec {
        count: c.count,
        fractions: c.fractions.clone(),
        absent: c.absent,
        trace: c.trace,
        background_level: c.background_level,
        counts: c.counts,
        seed: c.seed,
    };
    let sim = simulate::simulate(&library, &spec);

    if c.library.is_none() {
        simulate::write_library(&c.out_library, &library)
            .map_err(|e| io_error(&c.out_library, e))?;
        eprintln!(
            "wrote {} ({} phases)",
            c.out_library.display(),
            library.phases()
        );
    }
    let spectra_path = simulate::write_spectra(
        &c.out_spectra,
        &library.axis_name,
        &library.axis,
        &sim.names,
        &sim.spectra,
    )
    .map_err(|e| io_error(&c.out_spectra, e))?;
    simulate::write_truth(&c.out_truth, &library.names, &sim.truth)
        .map_err(|e| io_error(&c.out_truth, e))?;

    eprintln!(
        "wrote {} ({} spectra)",
        spectra_path.display(),
        sim.names.len()
    );
    eprintln!("wrote {}", c.out_truth.display());
    Ok(ExitCode::SUCCESS)
}

fn check_mix(c: &SimulateCommand, phases: usize) -> Result<(), String> {
    if let Some(f) = &c.fractions {
        if f.len() != phases {
            return Err(format!(
                "--fractions has {} values for {phases} phases",
                f.len()
            ));
        }
        if f.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || f.iter().sum::<f64>() <= 0.0 {
            return Err("--fractions must be non-negative with a positive sum".into());
        }
    }
    let probability = |p: f64| (0.0..=1.0).contains(&p);
    if !probability(c.absent) || !probability(c.trace) || c.absent + c.trace > 1.0 {
        return Err("--absent and --trace are probabilities with a sum at most 1".into());
    }
    if !(c.counts > 0.0 && c.counts.is_finite()) {
        return Err("--counts must be positive".into());
    }
    if !(c.background_level >= 0.0 && c.background_level.is_finite()) {
        return Err("--background-level must be non-negative".into());
    }
    if c.count == 0 {
        return Err("--count must be at least 1".into());
    }
    Ok(())
}

fn run_prepare(c: &PrepareCommand) -> CommandResult {
    let settings = unmix_host::fitting::FitSettings::new(
        unmix_host::fitting::MethodName::Nnls,
        None,
        c.background,
    )?;
    let library = formats::read_library(&c.library).map_err(|e| e.to_string())?;
    let prepared =
        PreparedLibrary::new(library, settings.background()).map_err(|e| e.to_string())?;
    let bytes = prepared.to_bytes();

    let mut out = create(&c.out)?;
    out.write_all(&bytes).map_err(|e| io_error(&c.out, e))?;
    let shape = prepared.shape();
    eprintln!(
        "wrote {}: {} bytes, {} channels, {} phases, {} background terms, library id {:016x}",
        c.out.display(),
        bytes.len(),
        shape.channels,
        shape.phases,
        shape.background.terms(),
        prepared.view().library_id()
    );
    Ok(ExitCode::SUCCESS)
}

fn create(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, e: io::Error) -> String {
    format!("{}: {e}", path.display())
}
