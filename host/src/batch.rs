//! Fitting a whole file: read in chunks, fit each chunk on all cores, write rows in order.
//!
//! A reader thread fills chunks of [`CHUNK`] spectra and hands them over a channel that holds
//! at most two, so reading the next chunk overlaps fitting this one and memory stays bounded
//! by about three chunks for row-streamed inputs (`.npy`). Each chunk is fitted and its rows
//! formatted in parallel with rayon; the rows are written in input order. Failed spectra get
//! their row and a message on the error callback; they never stop the batch. The sample
//! buffers of written chunks go back to the reader ([`SpectraSource::recycle`]), which keeps
//! a long `.npy` run free of per-spectrum allocation (freeing on one thread what another
//! allocated made the allocator grow and trim its arenas, and cost a third of the run).

use std::io::{self, IsTerminal, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::fitting::{
    FitSettings, LANES, PreparedLibrary, check_against_library, fit_checked, fit_checked_lanes,
};
use crate::formats::{SpectraSource, Spectrum, SpectrumError};
use crate::output::{CsvWriter, Table};

/// Spectra per chunk: 8 MiB of `f32` samples at 2048 channels.
pub const CHUNK: usize = 1024;

/// What a batch did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Spectra read (fitted or failed).
    pub spectra: usize,
    /// Spectra that failed.
    pub failed: usize,
    /// Wall time from the first read to the last row written.
    pub elapsed: Duration,
    /// The first spectrum that was fitted, with its fit, when asked for (for plots).
    pub first: Option<(Spectrum, unmix::Fit)>,
}

impl Summary {
    /// Spectra per second over the whole batch.
    pub fn rate(&self) -> f64 {
        self.spectra as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Options of a batch besides the fit itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchOptions {
    /// Show a progress bar on stderr (it is hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Keep the first fitted spectrum and its fit in [`Summary::first`].
    pub keep_first: bool,
}

/// Fits every spectrum of `source` and writes the table to `out`.
///
/// `on_error` is called, in input order, with the error of each failed spectrum.
///
/// # Errors
/// An I/O error writing `out`; spectrum failures are not errors of the batch.
pub fn fit_all<W: Write>(
    prepared: &PreparedLibrary,
    settings: &FitSettings,
    source: SpectraSource,
    out: W,
    options: BatchOptions,
    mut on_error: impl FnMut(&SpectrumError),
) -> io::Result<Summary> {
    let start = Instant::now();
    let table = Table::new(&prepared.library.names, settings.background().terms());
    let mut writer = CsvWriter::new(out, table.clone())?;
    let bar = progress_bar(options.progress, source.total());

    let mut summary = Summary {
        spectra: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        first: None,
    };
    let (sender, receiver) = mpsc::sync_channel::<Vec<Result<Spectrum, SpectrumError>>>(2);
    let (give_back, taken_back) = mpsc::channel::<Vec<Vec<f32>>>();

    std::thread::scope(|scope| -> io::Result<()> {
        scope.spawn(move || {
            let mut source = source;
            loop {
                while let Ok(buffers) = taken_back.try_recv() {
                    source.recycle(buffers);
                }
                let chunk = source.next_chunk(CHUNK);
                if chunk.is_empty() || sender.send(chunk).is_err() {
                    break;
                }
            }
        });

        for chunk in receiver {
            // Sub-chunks of SUB spectra: one text buffer each, few allocations.
            let parts: Vec<Part> = chunk
                .par_chunks(SUB)
                .map(|items| fit_part(prepared, settings, &table, items, options.keep_first))
                .collect();

            for (p, part) in parts.into_iter().enumerate() {
                writer.write_line(&part.text)?;
                summary.failed += part.errors.len();
                part.errors.iter().for_each(&mut on_error);
                if let (None, Some((i, fit))) = (&summary.first, part.first)
                    && let Some(Ok(spectrum)) = chunk.get(p * SUB + i)
                {
                    summary.first = Some((spectrum.clone(), fit));
                }
            }
            summary.spectra += chunk.len();
            bar.inc(chunk.len() as u64);

            // The reader refills these buffers: no allocation per spectrum in steady state.
            let buffers = chunk
                .into_iter()
                .filter_map(|item| item.ok())
                .map(|s| s.values);
            let _ = give_back.send(buffers.collect());
        }
        Ok(())
    })?;

    writer.finish()?;
    bar.finish_and_clear();
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Spectra per parallel task: enough to amortise the task, few enough to balance the cores.
const SUB: usize = 32;

/// The rows of a sub-chunk as text, its failures, and its first fit when asked for.
struct Part {
    text: String,
    errors: Vec<SpectrumError>,
    first: Option<(usize, unmix::Fit)>,
}

fn fit_part(
    prepared: &PreparedLibrary,
    settings: &FitSettings,
    table: &Table,
    items: &[Result<Spectrum, SpectrumError>],
    keep_first: bool,
) -> Part {
    let mut part = Part {
        text: String::with_capacity(items.len() * 24 * table.width()),
        errors: Vec::new(),
        first: None,
    };

    // Spectra that pass the checks against the library are fitted LANES at a time (the same
    // bits as one by one, faster), the few left over one by one.
    let mut results: Vec<Option<Result<unmix::Fit, SpectrumError>>> = vec![None; items.len()];
    let mut ready = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Ok(s) => match check_against_library(&prepared.library, s) {
                Ok(()) => ready.push((i, s)),
                Err(e) => results[i] = Some(Err(e)),
            },
            Err(e) => results[i] = Some(Err(e.clone())),
        }
    }
    let mut block = Vec::new();
    let mut groups = ready.chunks_exact(LANES);
    for group in groups.by_ref() {
        let spectra = std::array::from_fn(|lane| group[lane].1);
        let fits = fit_checked_lanes(prepared, settings, spectra, &mut block);
        for (&(i, _), fit) in group.iter().zip(fits) {
            results[i] = Some(fit);
        }
    }
    for &(i, spectrum) in groups.remainder() {
        results[i] = Some(fit_checked(prepared, settings, spectrum));
    }

    for (i, (item, result)) in items.iter().zip(results).enumerate() {
        match result {
            Some(Ok(fit)) => {
                let name = item.as_ref().map_or("", |spectrum| spectrum.name.as_str());
                table.push_fit(&mut part.text, name, &fit);
                if keep_first && part.first.is_none() {
                    part.first = Some((i, fit));
                }
            }
            Some(Err(e)) => {
                table.push_error(&mut part.text, &e.spectrum, &e.message);
                part.errors.push(e);
            }
            // Not reached: every item got its result above.
            None => {}
        }
    }
    part
}

fn progress_bar(wanted: bool, total: Option<usize>) -> ProgressBar {
    if !wanted || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }

    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let style = ProgressStyle::with_template(
        "{spinner} {pos}/{len} spectra [{bar:40}] {elapsed} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fitting::{MethodName, fit_spectrum};
    use crate::formats::Place;
    use crate::simulate::{Kind, synthetic_library};
    use std::sync::Arc;
    use unmix::Background;

    /// Spectra fitted four at a time give the text of spectra fitted one by one, whatever
    /// failures in between shift the groups of four and however many are left over.
    #[test]
    fn a_part_reads_exactly_like_its_spectra_fitted_one_by_one() {
        let library = synthetic_library(Kind::Xrd, 64, 3, 9);
        let prepared = PreparedLibrary::new(library, Background::Chebyshev { degree: 1 }).unwrap();
        let table = Table::new(&prepared.library.names, 2);
        let spectrum = |i: usize, channels: usize| Spectrum {
            name: format!("s{i}"),
            file: Arc::from("t.npy"),
            place: Place::Row(i),
            axis: None,
            values: (0..channels)
                .map(|c| ((c * 7 + i * 13) % 50) as f32 + 1.0)
                .collect(),
        };
        let items: Vec<Result<Spectrum, SpectrumError>> = (0..15)
            .map(|i| match i {
                2 => Err(spectrum(i, 64).error("unreadable row")),
                7 => Ok(spectrum(i, 63)),
                _ => Ok(spectrum(i, 64)),
            })
            .collect();

        for method in [MethodName::Nnls, MethodName::Fcls, MethodName::Lstsq] {
            let settings = FitSettings::new(method, None, Some(1)).unwrap();
            let part = fit_part(&prepared, &settings, &table, &items, true);

            let mut expected = String::new();
            for item in &items {
                match item
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|s| fit_spectrum(&prepared, &settings, s).map(|fit| (s, fit)))
                {
                    Ok((s, fit)) => table.push_fit(&mut expected, &s.name, &fit),
                    Err(e) => table.push_error(&mut expected, &e.spectrum, &e.message),
                }
            }
            assert_eq!(part.text, expected, "{method}");
            assert_eq!(part.errors.len(), 2);
            assert_eq!(part.first.map(|(i, _)| i), Some(0));
        }
    }
}
