//! Command-line arguments shared by the subcommands (`fit` and `stream` take the same fit
//! options), so that both ask the kernel exactly the same question.

use std::path::PathBuf;

use crate::fitting::{FitSettings, MethodName};

/// The fit options of `unmix fit` and `unmix stream`.
#[derive(Clone, Debug, clap::Args)]
pub struct FitArgs {
    /// Fitting method. fcls forces the phase coefficients to sum to one, so it is for spectra
    /// on the library's scale (normalised so that they do); on counts use nnls, whose
    /// fraction_ columns are the fractions.
    #[arg(long, value_enum, default_value_t = MethodName::Nnls)]
    pub method: MethodName,
    /// Ridge penalty weight (with `--method ridge` only).
    #[arg(long, allow_negative_numbers = true)]
    pub lambda: Option<f32>,
    /// Degree of a Chebyshev polynomial background fitted beside the phases (free in sign).
    #[arg(long, value_name = "DEGREE")]
    pub background: Option<u8>,
    /// Skip the Poisson chi-square (its second pass over the library is about a third of
    /// the fit's cost); the chi-square cells are left empty.
    #[arg(long)]
    pub no_chi2: bool,
}

impl FitArgs {
    /// The settings these arguments ask for.
    ///
    /// # Errors
    /// The message of [`FitSettings::new`].
    pub fn settings(&self) -> Result<FitSettings, String> {
        let mut settings = FitSettings::new(self.method, self.lambda, self.background)?;
        settings.chi2 = !self.no_chi2;
        Ok(settings)
    }
}

/// Arguments of `unmix stream`.
#[derive(Clone, Debug, clap::Args)]
pub struct StreamArgs {
    /// `qemu` to boot the firmware in QEMU, or a serial port (e.g. `/dev/ttyACM0`).
    #[arg(long, value_name = "qemu|SERIAL_PORT")]
    pub device: String,
    /// Reference library CSV.
    #[arg(long, value_name = "LIB")]
    pub library: PathBuf,
    /// Spectra: .csv, .npy, .xy, .msa or a directory of them.
    #[arg(long, value_name = "SPECTRA")]
    pub spectra: PathBuf,
    /// Fit options, as for `unmix fit`.
    #[command(flatten)]
    pub fit: FitArgs,
    /// Result CSV.
    #[arg(long, value_name = "OUT.csv")]
    pub out: PathBuf,
}
