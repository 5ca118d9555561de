//! Running the kernel: fit settings from the command line, a prepared library owned on the
//! heap, and the fit of one spectrum with checks and messages in the terms of the files.
//!
//! The arithmetic is entirely the kernel's ([`unmix::prepare`], [`unmix::PreparedView::fit`]);
//! this module adds only what a desktop user needs around it: axis and length checks against
//! the library, and errors that name the file, spectrum, phase and channel.

use std::fmt;

use unmix::{Background, Error, FitOptions, Method, PreparedView, Shape};

use crate::formats::{Library, Spectrum, SpectrumError};

/// The fitting methods, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodName {
    /// Non-negative least squares (Lawson-Hanson).
    Nnls,
    /// Non-negative, phase coefficients summing to one: for spectra on the library's scale,
    /// not counts.
    Fcls,
    /// Unconstrained least squares.
    Lstsq,
    /// Ridge regression; needs `--lambda`.
    Ridge,
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MethodName::Nnls => "nnls",
            MethodName::Fcls => "fcls",
            MethodName::Lstsq => "lstsq",
            MethodName::Ridge => "ridge",
        })
    }
}

/// Everything that decides a fit besides the library and the spectrum.
///
/// Built once from the command line ([`FitSettings::new`]); `unmix fit` and `unmix stream`
/// share it, so the host and the firmware are asked the same question.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitSettings {
    /// The kernel's method, with the ridge `lambda` inside.
    pub method: Method,
    /// Chebyshev background degree, `None` for no background.
    pub background_degree: Option<u8>,
    /// Compute the Poisson chi-square (a second pass over the library per spectrum).
    pub chi2: bool,
}

impl FitSettings {
    /// Settings from the command-line values. The chi-square is on.
    ///
    /// # Errors
    /// A message when `ridge` has no `lambda`, when `lambda` is given to another method, when
    /// `lambda` is negative or not finite, or when the degree exceeds [`unmix::MAX_DEGREE`].
    pub fn new(
        method: MethodName,
        lambda: Option<f32>,
        background_degree: Option<u8>,
    ) -> Result<Self, String> {
        let method = match (method, lambda) {
            (MethodName::Ridge, Some(l)) if l >= 0.0 && l.is_finite() => {
                Method::Ridge { lambda: l }
            }
            (MethodName::Ridge, Some(l)) => {
                return Err(format!("--lambda must be finite and non-negative, not {l}"));
            }
            (MethodName::Ridge, None) => return Err("--method ridge needs --lambda".into()),
            (other, Some(_)) => {
                return Err(format!(
                    "--lambda applies to --method ridge only, not {other}"
                ));
            }
            (MethodName::Nnls, None) => Method::Nnls,
            (MethodName::Fcls, None) => Method::Fcls,
            (MethodName::Lstsq, None) => Method::Lstsq,
        };
        if let Some(d) = background_degree.filter(|&d| usize::from(d) > unmix::MAX_DEGREE) {
            return Err(format!(
                "--background {d}: the highest Chebyshev degree is {}",
                unmix::MAX_DEGREE
            ));
        }

        Ok(FitSettings {
            method,
            background_degree,
            chi2: true,
        })
    }

    /// The kernel's background for these settings.
    pub fn background(&self) -> Background {
        match self.background_degree {
            None => Background::None,
            Some(degree) => Background::Chebyshev { degree },
        }
    }

    /// The kernel's options for these settings (default iteration cap).
    pub fn options(&self) -> FitOptions {
        FitOptions::new(self.method).with_chi2(self.chi2)
    }
}

/// A library prepared by the kernel, owning its storage, together with the library it came
/// from (names, axis, original columns).
#[derive(Clone, Debug)]
pub struct PreparedLibrary {
    /// The library as read.
    pub library: Library,
    shape: Shape,
    storage: Vec<f32>,
}

/// Why a library could not be prepared, in the library's terms.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PrepareError {
    /// The library file.
    pub path: String,
    /// What is wrong, naming the phase and column.
    pub message: String,
    /// The kernel's error.
    pub kernel: Error,
}

impl PreparedLibrary {
    /// Prepares `library` with `background` (the kernel's QR of the column-scaled library).
    ///
    /// # Errors
    /// [`PrepareError`] naming the phase (or background term) that is linearly dependent on
    /// the columns before it, or the capacity that is exceeded.
    pub fn new(library: Library, background: Background) -> Result<Self, PrepareError> {
        let shape = Shape::new(library.channels(), library.phases(), background);
        let fail = |kernel: Error| PrepareError {
            path: library.path.display().to_string(),
            message: describe_library_error(&library, kernel),
            kernel,
        };
        shape.validate().map_err(fail)?;

        let mut storage = vec![0.0f32; shape.prepared_len()];
        let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
        unmix::prepare(shape, &library.data, &mut storage, &mut scratch).map_err(fail)?;

        Ok(PreparedLibrary {
            library,
            shape,
            storage,
        })
    }

    /// The kernel's view of the prepared library.
    pub fn view(&self) -> PreparedView<'_> {
        PreparedView::new(self.shape, &self.storage)
            .unwrap_or_else(|e| unreachable!("storage written by prepare is valid: {e}"))
    }

    /// The sizes.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The kernel's byte format of the prepared library (for `unmix prepare` and devices).
    pub fn to_bytes(&self) -> Vec<u8> {
        let view = self.view();
        let mut bytes = vec![0u8; view.bytes_len()];
        let written = view
            .to_bytes(&mut bytes)
            .unwrap_or_else(|e| unreachable!("buffer sized by bytes_len: {e}"));
        bytes.truncate(written);
        bytes
    }
}

/// The kernel's library error in the library's terms.
fn describe_library_error(library: &Library, error: Error) -> String {
    let column_name = |column: usize| match library.names.get(column) {
        Some(name) => format!("phase \"{name}\" (column {})", column + 2),
        None => format!("background term T_{}", column - library.phases()),
    };
    match error {
        Error::RankDeficient { column } => format!(
            "library is rank-deficient: {} is (numerically) a combination of the columns \
             before it; remove it or merge it with the phase it duplicates",
            column_name(column)
        ),
        Error::NonFiniteLibrary { channel, column } => format!(
            "{} is not finite at channel {channel} (row {})",
            column_name(column),
            channel + 2
        ),
        Error::TooManyColumns { phases, .. } if phases > unmix::MAX_PHASES => format!(
            "{phases} phases: a library holds at most {} phases",
            unmix::MAX_PHASES
        ),
        other => format!("cannot prepare the library: {other}"),
    }
}

/// Largest axis misalignment accepted, as a fraction of the library's mean channel spacing.
pub const AXIS_TOLERANCE: f64 = 1e-3;

/// Checks that `spectrum` has the library's channel count and, when it carries an axis, the
/// library's axis to within [`AXIS_TOLERANCE`] of a channel.
///
/// # Errors
/// A [`SpectrumError`] naming the first differing channel or the two lengths.
pub fn check_against_library(library: &Library, spectrum: &Spectrum) -> Result<(), SpectrumError> {
    let n = library.channels();
    if spectrum.values.len() != n {
        return Err(spectrum.error(format!(
            "has {} channels, the library ({}) has {n}",
            spectrum.values.len(),
            library.path.display()
        )));
    }

    let Some(axis) = &spectrum.axis else {
        return Ok(());
    };
    let spacing = match (library.axis.first(), library.axis.last()) {
        (Some(a), Some(b)) if n > 1 => (b - a).abs() / (n - 1) as f64,
        _ => 1.0,
    };
    let tolerance = AXIS_TOLERANCE * spacing;
    for (channel, (&mine, &theirs)) in axis.iter().zip(&library.axis).enumerate() {
        if (mine - theirs).abs() > tolerance {
            return Err(spectrum.error(format!(
                "axis differs from the library's at channel {channel}: {mine} here, {theirs} in \
                 {} (more than {AXIS_TOLERANCE} of a channel)",
                library.path.display()
            )));
        }
    }
    Ok(())
}

/// Fits one spectrum: checks it against the library, then runs the kernel.
///
/// # Errors
/// A [`SpectrumError`] for a length or axis mismatch, a non-finite sample (naming the
/// channel), or any other kernel error.
pub fn fit_spectrum(
    prepared: &PreparedLibrary,
    settings: &FitSettings,
    spectrum: &Spectrum,
) -> Result<unmix::Fit, SpectrumError> {
    check_against_library(&prepared.library, spectrum)?;
    fit_checked(prepared, settings, spectrum)
}

/// Fits one spectrum already checked against the library ([`check_against_library`]).
///
/// # Errors
/// A [`SpectrumError`] for a non-finite sample (naming the channel) or another kernel error.
pub fn fit_checked(
    prepared: &PreparedLibrary,
    settings: &FitSettings,
    spectrum: &Spectrum,
) -> Result<unmix::Fit, SpectrumError> {
    prepared
        .view()
        .fit(&spectrum.values, &settings.options())
        .map_err(|e| spectrum.error(describe_fit_error(e)))
}

/// Spectra fitted together by [`fit_checked_lanes`].
pub const LANES: usize = 4;

/// Fits [`LANES`] spectra already checked against the library ([`check_against_library`])
/// in one call of the kernel's [`PreparedView::fit_interleaved`]: each result has the bits
/// [`fit_spectrum`] gives, and the passes over the library cost about half as much on a
/// desktop processor. `block` is scratch space for the interleaved samples.
pub fn fit_checked_lanes(
    prepared: &PreparedLibrary,
    settings: &FitSettings,
    spectra: [&Spectrum; LANES],
    block: &mut Vec<[f32; LANES]>,
) -> [Result<unmix::Fit, SpectrumError>; LANES] {
    interleave(spectra.map(|s| s.values.as_slice()), block);

    let fits = prepared.view().fit_interleaved(block, &settings.options());
    std::array::from_fn(|lane| fits[lane].map_err(|e| spectra[lane].error(describe_fit_error(e))))
}

/// Writes `block[i][lane] = spectra[lane][i]` for the shortest spectrum's length, four
/// channels at a time: four 4 x 4 tiles that the compiler transposes in vector registers.
fn interleave(spectra: [&[f32]; LANES], block: &mut Vec<[f32; LANES]>) {
    let n = spectra.iter().map(|s| s.len()).min().unwrap_or(0);
    block.clear();
    block.resize(n, [0.0; LANES]);

    let [a, b, c, d] = spectra.map(|s| s.get(..n).unwrap_or(&[]).as_chunks::<4>());
    let (tiles, rest) = block.as_chunks_mut::<4>();
    let sources = a.0.iter().zip(b.0).zip(c.0.iter().zip(d.0));
    for (tile, ((a, b), (c, d))) in tiles.iter_mut().zip(sources) {
        for i in 0..4 {
            tile[i] = [a[i], b[i], c[i], d[i]];
        }
    }
    let tails = a.1.iter().zip(b.1).zip(c.1.iter().zip(d.1));
    for (row, ((&a, &b), (&c, &d))) in rest.iter_mut().zip(tails) {
        *row = [a, b, c, d];
    }
}

/// The kernel's per-spectrum error in the spectrum's terms.
pub fn describe_fit_error(error: Error) -> String {
    match error {
        Error::NonFinite { channel } => format!("channel {channel} is not finite"),
        Error::Overflow => {
            "values are so large that f32 sums overflow (samples near 1e19 or above)".into()
        }
        other => other.to_string(),
    }
}
