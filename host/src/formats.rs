//! Readers for reference libraries and measured spectra.
//!
//! A library is a CSV file: a header row, the axis in the first column (`two_theta`,
//! `energy_eV`, ...), one reference spectrum per further column headed by its phase name.
//! Spectra come in the formats instruments write:
//!
//! - `.csv`: like a library, an axis column and one spectrum per further column, named by
//!   the column headers;
//! - `.npy`: a 2-D array, one spectrum per row (a 1-D array is one spectrum), of `float32`,
//!   `float64` or (un)signed integers of 1 to 8 bytes, either byte order; spectra are named
//!   by their row index (`0`, `1`, ...);
//! - `.xy`: two whitespace- or comma-separated columns, axis and intensity, `#` starting a
//!   comment; lines before the first data line that are not two numbers (a column header
//!   such as `2Theta Intensity`) are skipped; one spectrum named after the file stem;
//! - `.msa` (EMSA/MSA, ISO 22029): `#KEYWORD : value` header lines, then `x, y` data lines
//!   (or `y` only, with `#DATATYPE : Y`) between `#SPECTRUM` and `#ENDOFDATA`; one spectrum
//!   named by `#TITLE`, or else the file stem.
//!
//! A directory reads every file with one of these extensions in it, in name order.
//!
//! Empty cells after the last named column of a CSV file, which spreadsheets write as
//! trailing commas, are ignored in the header and in every row; a value there is refused
//! with its row, since the row or the header must be shifted. Rows are reported by their
//! line in the file, whatever the line ending.
//!
//! Failures are split in two. A [`FileError`] stops the whole file (it cannot be opened, is
//! empty, its header or axis is unusable). A [`SpectrumError`] belongs to one spectrum (a
//! non-numeric or non-finite cell, a missing cell, a truncated row) and names the file, the
//! spectrum, its column or row and the offending channel; the reader goes on with the next
//! spectrum, so one bad spectrum never hides the others.
//!
//! A spectra CSV holds a spectrum per column, so it is read whole. A `.npy` file is read in
//! blocks of rows and never held whole, however large: a row-major one as whole rows, a
//! Fortran-order (column-major) one as a segment of each channel's column per block.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod csv_lines;
mod npy_header;

use csv_lines::LineIndex;

/// A reference library: the axis and one reference spectrum per phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Library {
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// Header of the axis column, e.g. `two_theta` or `energy_eV`.
    pub axis_name: String,
    /// Axis value of every channel.
    pub axis: Vec<f64>,
    /// Phase names, in column order.
    pub names: Vec<String>,
    /// Reference values, channel-major: `data[i * phases + j]` is phase `j` at channel `i`
    /// (the layout the kernel's `prepare` takes).
    pub data: Vec<f32>,
}

impl Library {
    /// Builds a library from per-phase columns of equal length `axis.len()`.
    ///
    /// # Panics
    /// When `names` and `columns` differ in length or a column's length differs from the
    /// axis's (a caller bug).
    pub fn from_columns(
        path: impl Into<PathBuf>,
        axis_name: &str,
        axis: Vec<f64>,
        names: Vec<String>,
        columns: &[Vec<f32>],
    ) -> Self {
        assert_eq!(names.len(), columns.len(), "one name per column");
        let n = axis.len();
        let k = columns.len();

        let mut data = vec![0.0f32; n * k];
        for (j, col) in columns.iter().enumerate() {
            assert_eq!(col.len(), n, "column {j} length differs from the axis");
            for (i, &v) in col.iter().enumerate() {
                data[i * k + j] = v;
            }
        }

        Library {
            path: path.into(),
            axis_name: axis_name.to_string(),
            axis,
            names,
            data,
        }
    }

    /// Number of channels `n`.
    pub fn channels(&self) -> usize {
        self.axis.len()
    }

    /// Number of phases `k`.
    pub fn phases(&self) -> usize {
        self.names.len()
    }

    /// Phase `j` as a column of `n` values.
    ///
    /// # Panics
    /// When `j >= self.phases()`.
    pub fn column(&self, j: usize) -> Vec<f32> {
        let k = self.phases();
        assert!(j < k, "phase {j} out of range");
        self.data.iter().skip(j).step_by(k).copied().collect()
    }
}

/// A failure that stops a whole file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file, as given.
        path: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file's content cannot be used at all.
    #[error("{path}: {message}")]
    Format {
        /// The file, as given.
        path: String,
        /// What is wrong, with row and column where they apply.
        message: String,
    },
}

impl FileError {
    fn io(path: &Path, source: io::Error) -> Self {
        FileError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    fn format(path: &Path, message: impl Into<String>) -> Self {
        FileError::Format {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// Where a spectrum sits in its file, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// 1-based column of a CSV file (the axis is column 1).
    Column(usize),
    /// 0-based row of a `.npy` array.
    Row(usize),
    /// The file holds this one spectrum (`.xy`, `.msa`).
    Whole,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Column(c) => write!(f, "column {c}"),
            Place::Row(r) => write!(f, "row {r}"),
            Place::Whole => Ok(()),
        }
    }
}

/// One measured spectrum.
#[derive(Clone, Debug, PartialEq)]
pub struct Spectrum {
    /// Its name (column header, file stem, MSA title or row index).
    pub name: String,
    /// The file it came from.
    pub file: Arc<str>,
    /// Where in the file.
    pub place: Place,
    /// Axis values, when the file has an axis (`.npy` has none); shared between the spectra
    /// of one CSV file.
    pub axis: Option<Arc<[f64]>>,
    /// Intensity per channel; every value is finite.
    pub values: Vec<f32>,
}

impl Spectrum {
    /// An error about this spectrum, located like the spectrum itself.
    pub fn error(&self, message: impl Into<String>) -> SpectrumError {
        SpectrumError {
            file: self.file.clone(),
            spectrum: self.name.clone(),
            place: self.place,
            message: message.into(),
        }
    }
}

/// A failure of one spectrum; the others are unaffected.
///
/// Displays as `spectra.csv: spectrum "s12" (column 13): channel 415 (row 417) is NaN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpectrumError {
    /// The file, as given.
    pub file: Arc<str>,
    /// The spectrum's name.
    pub spectrum: String,
    /// Where in the file.
    pub place: Place,
    /// What is wrong, naming the channel and row where one is at fault.
    pub message: String,
}

impl fmt::Display for SpectrumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: spectrum \"{}\"", self.file, self.spectrum)?;
        if self.place != Place::Whole {
            write!(f, " ({})", self.place)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SpectrumError {}

/// Reads a library CSV (layout in the module docs).
///
/// Every value must be a finite number and the phase names must be distinct; the axis must
/// be strictly monotonic.
///
/// # Errors
/// [`FileError`] naming the row, column and phase of the first bad cell, or what else is
/// wrong with the file.
pub fn read_library(path: impl AsRef<Path>) -> Result<Library, FileError> {
    let path = path.as_ref();
    let table = read_csv_table(path)?;
    let file: Arc<str> = path.display().to_string().into();

    if table.names.is_empty() {
        return Err(FileError::format(
            path,
            "no phase columns after the axis column",
        ));
    }
    for (j, name) in table.names.iter().enumerate() {
        if table.names[..j].contains(name) {
            return Err(FileError::format(
                path,
                format!("phase name \"{name}\" appears twice (column {})", j + 2),
            ));
        }
    }

    let mut columns = Vec::with_capacity(table.names.len());
    for j in 0..table.names.len() {
        let spectrum = table.column(j, &file).map_err(|e| {
            FileError::format(
                path,
                format!("phase \"{}\" (column {}): {}", e.spectrum, j + 2, e.message),
            )
        })?;
        columns.push(spectrum.values);
    }

    Ok(Library::from_columns(
        path,
        &table.axis_name,
        table.axis.to_vec(),
        table.names,
        &columns,
    ))
}

/// Most buffers [`SpectraSource::recycle`] keeps.
pub const MAX_SPARE: usize = 4096;

/// A stream of spectra from one file or directory, in file order.
///
/// Each item is one spectrum or the error that stopped it. Built by [`read_spectra`].
pub struct SpectraSource {
    parts: std::vec::IntoIter<PathBuf>,
    current: Option<Part>,
    total: Option<usize>,
    spare: Vec<Vec<f32>>,
}

enum Part {
    Buffered(std::vec::IntoIter<Result<Spectrum, SpectrumError>>),
    Npy(NpyRows),
}

impl SpectraSource {
    /// Number of spectra in the source when the headers tell it (a single CSV or `.npy` file,
    /// or a directory of `.xy`/`.msa` files); `None` otherwise.
    pub fn total(&self) -> Option<usize> {
        self.total
    }

    /// Hands back sample buffers of spectra that are no longer needed; row-streamed formats
    /// (`.npy`) read the next spectra into them instead of allocating. At most
    /// [`MAX_SPARE`] are kept.
    pub fn recycle(&mut self, buffers: impl IntoIterator<Item = Vec<f32>>) {
        let room = MAX_SPARE.saturating_sub(self.spare.len());
        self.spare.extend(buffers.into_iter().take(room));
    }

    /// Reads up to `max` spectra; an empty vector means the source is exhausted.
    pub fn next_chunk(&mut self, max: usize) -> Vec<Result<Spectrum, SpectrumError>> {
        self.by_ref().take(max).collect()
    }
}

impl Iterator for SpectraSource {
    type Item = Result<Spectrum, SpectrumError>;

    /// The next spectrum. When a further file of a directory cannot be read at all, it
    /// yields one error named after that file's stem and goes on with the file after it.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let item = match &mut self.current {
                Some(Part::Buffered(it)) => it.next(),
                Some(Part::Npy(rows)) => rows.next(&mut self.spare),
                None => None,
            };
            if item.is_some() {
                return item;
            }

            let path = self.parts.next()?;
            match open_part(&path) {
                Ok(part) => self.current = Some(part),
                Err(e) => {
                    self.current = None;
                    let message = match &e {
                        FileError::Io { source, .. } => source.to_string(),
                        FileError::Format { message, .. } => message.clone(),
                    };
                    return Some(Err(SpectrumError {
                        file: path.display().to_string().into(),
                        spectrum: file_stem(&path),
                        place: Place::Whole,
                        message,
                    }));
                }
            }
        }
    }
}

/// Opens spectra from a file (format by extension) or a directory (every supported file in
/// it, in name order).
///
/// # Errors
/// [`FileError`] when the file cannot be opened, has an unknown extension, or its header
/// is unusable; for a directory, when it cannot be listed or holds no spectra file (a file
/// in it that cannot be read yields one failed spectrum instead).
pub fn read_spectra(path: impl AsRef<Path>) -> Result<SpectraSource, FileError> {
    let path = path.as_ref();
    let parts = if path.is_dir() {
        let mut files = Vec::new();
        let entries = std::fs::read_dir(path).map_err(|e| FileError::io(path, e))?;
        for entry in entries {
            let p = entry.map_err(|e| FileError::io(path, e))?.path();
            if p.is_file() && Format::of(&p).is_some() {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(FileError::format(
                path,
                "directory holds no .csv, .npy, .xy or .msa file",
            ));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };

    // A single file opens now, so that a file that cannot be read at all stops the run; the
    // files of a directory open one by one as the iterator reaches them, and one that
    // cannot be read becomes one failed spectrum.
    let single_spectrum_files = parts
        .iter()
        .all(|p| matches!(Format::of(p), Some(Format::Xy | Format::Msa)));
    let count = parts.len();
    let first = if path.is_dir() {
        None
    } else {
        Some(open_part(path)?)
    };
    let total = match &first {
        _ if single_spectrum_files => Some(count),
        Some(Part::Buffered(it)) => Some(it.len()),
        Some(Part::Npy(rows)) => Some(rows.rows),
        None => None,
    };
    let mut parts = parts.into_iter();
    if first.is_some() {
        parts.next();
    }

    Ok(SpectraSource {
        parts,
        current: first,
        total,
        spare: Vec::new(),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Npy,
    Xy,
    Msa,
}

impl Format {
    fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "npy" => Some(Format::Npy),
            "xy" => Some(Format::Xy),
            "msa" | "ems" | "emsa" => Some(Format::Msa),
            _ => None,
        }
    }
}

fn open_part(path: &Path) -> Result<Part, FileError> {
    let file: Arc<str> = path.display().to_string().into();
    match Format::of(path) {
        Some(Format::Csv) => {
            let table = read_csv_table(path)?;
            if table.names.is_empty() {
                return Err(FileError::format(
                    path,
                    "no spectrum columns after the axis column",
                ));
            }
            let items: Vec<_> = (0..table.names.len())
                .map(|j| table.column(j, &file))
                .collect();
            Ok(Part::Buffered(items.into_iter()))
        }
        Some(Format::Npy) => NpyRows::open(path).map(Part::Npy),
        Some(Format::Xy) => {
            let text = read_text(path)?;
            Ok(Part::Buffered(
                vec![parse_xy(&text, path, file)].into_iter(),
            ))
        }
        Some(Format::Msa) => {
            let text = read_text(path)?;
            Ok(Part::Buffered(
                vec![parse_msa(&text, path, file)].into_iter(),
            ))
        }
        None => Err(FileError::format(
            path,
            "unknown extension: spectra are read from .csv, .npy, .xy or .msa",
        )),
    }
}

fn read_text(path: &Path) -> Result<String, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::io(path, e))?;
    if text.trim().is_empty() {
        return Err(FileError::format(path, "the file is empty"));
    }
    Ok(text)
}

/// A CSV file in library/spectra layout, checked for its header and axis only; cells of the
/// data columns are kept as text so that each column fails on its own.
struct CsvTable {
    axis_name: String,
    names: Vec<String>,
    axis: Arc<[f64]>,
    /// The data rows as read (one allocation per row; cell 0 is the axis).
    rows: Vec<csv::StringRecord>,
    /// 1-based file line of each row.
    lines: Vec<u64>,
}

impl CsvTable {
    /// Column `j` (0-based, after the axis) as a spectrum, or the first error in it.
    fn column(&self, j: usize, file: &Arc<str>) -> Result<Spectrum, SpectrumError> {
        let name = self.names[j].clone();
        let place = Place::Column(j + 2);
        let fail = |message: String| SpectrumError {
            file: file.clone(),
            spectrum: name.clone(),
            place,
            message,
        };

        let mut values = Vec::with_capacity(self.rows.len());
        for (channel, (row, &line)) in self.rows.iter().zip(&self.lines).enumerate() {
            let at = format!("channel {channel} (row {line})");
            let cell = row
                .get(j + 1)
                .ok_or_else(|| fail(format!("{at} has no value (the row is short)")))?;
            values.push(parse_sample(cell).map_err(|what| fail(format!("{at} {what}")))?);
        }

        Ok(Spectrum {
            name: name.clone(),
            file: file.clone(),
            place,
            axis: Some(self.axis.clone()),
            values,
        })
    }
}

/// Parses one intensity; the error completes "channel 3 (row 5) ...".
fn parse_sample(cell: &str) -> Result<f32, String> {
    if cell.is_empty() {
        return Err("is empty".to_string());
    }
    match cell.parse::<f32>() {
        Ok(v) if v.is_nan() => Err("is NaN".to_string()),
        Ok(v) if v.is_infinite() => {
            let parsed_finite = cell.parse::<f64>().is_ok_and(f64::is_finite);
            if parsed_finite {
                Err(format!("{cell} overflows f32"))
            } else {
                Err("is infinite".to_string())
            }
        }
        Ok(v) => Ok(v),
        Err(_) => Err(format!("is not a number: \"{cell}\"")),
    }
}

/// The comment byte of CSV files: lines starting with it are skipped.
const CSV_COMMENT: u8 = b'#';

type CsvReader = csv::Reader<LineIndex<File>>;

fn read_csv_table(path: &Path) -> Result<CsvTable, FileError> {
    let file = File::open(path).map_err(|e| FileError::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(CSV_COMMENT))
        .trim(csv::Trim::All)
        .buffer_capacity(1 << 20)
        .from_reader(LineIndex::new(file, CSV_COMMENT));

    let Some((mut header, _)) = next_record(&mut reader, path)? else {
        return Err(FileError::format(path, "the file is empty"));
    };
    // Spreadsheets end rows in empty cells beyond the last column; they name nothing.
    let named = (0..header.len()).rfind(|&c| !header[c].is_empty());
    let width = named.map_or(1, |last| last + 1);
    header.truncate(width);
    let mut cells = header.iter().map(str::to_string);
    let axis_name = cells.next().unwrap_or_default();
    let names: Vec<String> = cells.collect();
    if let Some(pos) = names.iter().position(String::is_empty) {
        return Err(FileError::format(
            path,
            format!("header cell of column {} is empty", pos + 2),
        ));
    }

    let mut axis = Vec::new();
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    while let Some((mut record, line)) = next_record(&mut reader, path)? {
        if record.iter().all(str::is_empty) {
            continue;
        }

        let axis_cell = record.get(0).unwrap_or("");
        let x: f64 = axis_cell.parse().map_err(|_| {
            FileError::format(
                path,
                format!("row {line}, column 1 ({axis_name}): not a number: \"{axis_cell}\""),
            )
        })?;
        if !x.is_finite() {
            return Err(FileError::format(
                path,
                format!("row {line}, column 1 ({axis_name}): axis value is not finite"),
            ));
        }

        // A value beyond the header means the row or the header is shifted, and which
        // spectra took the wrong cells cannot be told: the file is refused, not guessed at.
        let mut extra = record.iter().enumerate().skip(width);
        if let Some((column, cell)) = extra.find(|(_, cell)| !cell.is_empty()) {
            return Err(FileError::format(
                path,
                format!(
                    "row {line}, column {}: \"{cell}\" is beyond the header's last column \
                     ({width}); name the column in the header or remove the extra cells",
                    column + 1
                ),
            ));
        }
        record.truncate(width);

        axis.push(x);
        rows.push(record);
        lines.push(line);
    }

    if axis.is_empty() {
        return Err(FileError::format(path, "no data rows after the header"));
    }
    check_monotonic(&axis).map_err(|m| FileError::format(path, m))?;

    Ok(CsvTable {
        axis_name,
        names,
        axis: axis.into(),
        rows,
        lines,
    })
}

/// The next record of a CSV file and the 1-based file line it starts on; `None` at the end.
fn next_record(
    reader: &mut CsvReader,
    path: &Path,
) -> Result<Option<(csv::StringRecord, u64)>, FileError> {
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(false) => Ok(None),
        Ok(true) => {
            let byte = record.position().map_or(0, csv::Position::byte);
            Ok(Some((record, reader.get_ref().line_of(byte))))
        }
        Err(e) => Err(csv_error(e, reader, path)),
    }
}

/// A csv crate error as a message about the file.
fn csv_error(e: csv::Error, reader: &CsvReader, path: &Path) -> FileError {
    if let csv::ErrorKind::Utf8 { pos, err } = e.kind() {
        let line = reader
            .get_ref()
            .line_of(pos.as_ref().map_or(0, csv::Position::byte));
        return FileError::format(
            path,
            format!(
                "not UTF-8 text at line {line}, column {}: is this a CSV file saved as UTF-8?",
                err.field() + 1
            ),
        );
    }

    let message = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => FileError::io(path, io),
        _ => FileError::format(path, message),
    }
}

/// Checks that an axis strictly increases or strictly decreases.
fn check_monotonic(axis: &[f64]) -> Result<(), String> {
    let increasing = axis.len() < 2 || axis[1] > axis[0];
    for (i, w) in axis.windows(2).enumerate() {
        if (w[1] > w[0]) != increasing || w[1] == w[0] {
            return Err(format!(
                "axis is not strictly monotonic at channel {} ({} after {})",
                i + 1,
                w[1],
                w[0]
            ));
        }
    }
    Ok(())
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

fn parse_xy(text: &str, path: &Path, file: Arc<str>) -> Result<Spectrum, SpectrumError> {
    let name = file_stem(path);
    let fail = |message: String| SpectrumError {
        file: file.clone(),
        spectrum: name.clone(),
        place: Place::Whole,
        message,
    };

    let mut axis = Vec::new();
    let mut values = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let line_no = line_no + 1;
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }

        let mut cells = content
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty());
        let (x, y) = (cells.next(), cells.next());
        let number = |cell: Option<&str>| cell.is_some_and(|c| c.parse::<f64>().is_ok());
        if values.is_empty() && !(number(x) && number(y)) {
            // Instruments write a column header (`2Theta Intensity`) above the data.
            continue;
        }
        let (Some(x), Some(y)) = (x, y) else {
            return Err(fail(format!(
                "line {line_no} has one value, expected axis and intensity"
            )));
        };
        let channel = values.len();
        let x: f64 = x
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
            .ok_or_else(|| {
                fail(format!(
                    "line {line_no}: axis value \"{x}\" is not a finite number"
                ))
            })?;
        let y =
            parse_sample(y).map_err(|w| fail(format!("channel {channel} (line {line_no}) {w}")))?;
        axis.push(x);
        values.push(y);
    }

    if values.is_empty() {
        return Err(fail(
            "no data lines: no line holds two numbers (axis and intensity)".to_string(),
        ));
    }
    check_monotonic(&axis).map_err(fail)?;

    Ok(Spectrum {
        name: name.clone(),
        file: file.clone(),
        place: Place::Whole,
        axis: Some(axis.into()),
        values,
    })
}

/// Parses an EMSA/MSA file (ISO 22029): header keywords, then data lines after `#SPECTRUM`
/// up to `#ENDOFDATA`. `DATATYPE: XY` lines are `x, y`; `DATATYPE: Y` lines hold `NCOLUMNS`
/// intensities and the axis is `OFFSET + i * XPERCHAN`.
fn parse_msa(text: &str, path: &Path, file: Arc<str>) -> Result<Spectrum, SpectrumError> {
    let mut name = file_stem(path);
    let mut npoints: Option<usize> = None;
    let mut xperchan: Option<f64> = None;
    let mut offset = 0.0f64;
    let mut xy = true;
    let mut in_data = false;
    let mut ended = false;
    let mut axis = Vec::new();
    let mut values = Vec::new();
    let mut problem: Option<String> = None;

    for (line_no, line) in text.lines().enumerate() {
        let line_no = line_no + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }

        if let Some(rest) = line.strip_prefix('#') {
            let (key, value) = rest.split_once(':').unwrap_or((rest, ""));
            let key = key.trim().to_ascii_uppercase();
            let value = value.trim();
            let number = |v: &str| -> Result<f64, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("line {line_no}: #{key} \"{v}\" is not a finite number"))
            };
            let result: Result<(), String> = match key.as_str() {
                "TITLE" if !value.is_empty() => {
                    name = value.to_string();
                    Ok(())
                }
                "NPOINTS" => number(value).map(|v| npoints = Some(v as usize)),
                "XPERCHAN" => number(value).map(|v| xperchan = Some(v)),
                "OFFSET" => number(value).map(|v| offset = v),
                "DATATYPE" => {
                    xy = value.eq_ignore_ascii_case("XY");
                    Ok(())
                }
                "SPECTRUM" => {
                    in_data = true;
                    Ok(())
                }
                "ENDOFDATA" => {
                    ended = true;
                    break;
                }
                _ => Ok(()),
            };
            if let Err(m) = result {
                problem.get_or_insert(m);
            }
            continue;
        }

        if !in_data {
            problem.get_or_insert(format!("line {line_no}: data before #SPECTRUM"));
            continue;
        }
        let cells: Vec<&str> = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        if xy {
            let [x, y] = cells.as_slice() else {
                problem.get_or_insert(format!(
                    "line {line_no}: expected \"x, y\", found {} values",
                    cells.len()
                ));
                continue;
            };
            match x.parse::<f64>() {
                Ok(v) if v.is_finite() => axis.push(v),
                _ => {
                    problem.get_or_insert(format!(
                        "line {line_no}: axis value \"{x}\" is not a finite number"
                    ));
                }
            }
            push_msa_sample(y, line_no, &mut values, &mut problem);
        } else {
            for y in cells {
                push_msa_sample(y, line_no, &mut values, &mut problem);
            }
        }
    }

    let fail = |message: String| SpectrumError {
        file: file.clone(),
        spectrum: name.clone(),
        place: Place::Whole,
        message,
    };
    if let Some(m) = problem {
        return Err(fail(m));
    }
    if !in_data || values.is_empty() {
        return Err(fail(
            "no data: #SPECTRUM missing or followed by no values".to_string(),
        ));
    }
    if !ended {
        return Err(fail(
            "#ENDOFDATA missing: the file may be truncated".to_string(),
        ));
    }
    if let Some(n) = npoints.filter(|&n| n != values.len()) {
        return Err(fail(format!(
            "#NPOINTS is {n} but {} values follow",
            values.len()
        )));
    }

    if !xy {
        let step = xperchan.ok_or_else(|| fail("#XPERCHAN missing for DATATYPE Y".to_string()))?;
        axis = (0..values.len())
            .map(|i| offset + i as f64 * step)
            .collect();
    }
    check_monotonic(&axis).map_err(fail)?;

    Ok(Spectrum {
        name: name.clone(),
        file: file.clone(),
        place: Place::Whole,
        axis: Some(axis.into()),
        values,
    })
}

fn push_msa_sample(
    cell: &str,
    line_no: usize,
    values: &mut Vec<f32>,
    problem: &mut Option<String>,
) {
    let channel = values.len();
    match parse_sample(cell) {
        Ok(v) => values.push(v),
        Err(what) => {
            problem.get_or_insert(format!("channel {channel} (line {line_no}) {what}"));
            values.push(0.0);
        }
    }
}

/// How one element of a `.npy` file decodes to `f32`.
#[derive(Clone, Copy, Debug)]
enum Element {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl Element {
    /// The element and whether it is big-endian, from a NumPy dtype string such as `<f4`:
    /// a byte order (`<`, `>`, or `|` for single bytes), a kind (`f`, `i`, `u`) and a size.
    fn from_descr(descr: &str) -> Option<(Element, bool)> {
        let (order, kind_size) = descr.split_at_checked(1)?;
        let element = match kind_size {
            "f4" => Element::F32,
            "f8" => Element::F64,
            "i1" => Element::I8,
            "i2" => Element::I16,
            "i4" => Element::I32,
            "i8" => Element::I64,
            "u1" => Element::U8,
            "u2" => Element::U16,
            "u4" => Element::U32,
            "u8" => Element::U64,
            _ => return None,
        };
        match (order, element.size()) {
            ("<", _) | ("|", 1) => Some((element, false)),
            (">", _) => Some((element, true)),
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            Element::I8 | Element::U8 => 1,
            Element::I16 | Element::U16 => 2,
            Element::F32 | Element::I32 | Element::U32 => 4,
            Element::F64 | Element::I64 | Element::U64 => 8,
        }
    }

    /// Decodes `bytes` (a whole number of elements) into `out`. Integers convert to the
    /// nearest `f32` (exact up to 2^24), `f64` rounds to nearest.
    fn decode(self, big: bool, bytes: &[u8], out: &mut Vec<f32>) {
        out.clear();
        // One loop per byte order, without a branch inside: each compiles to vector code
        // (a plain copy for little-endian `f32`).
        macro_rules! each {
            ($t:ty, $n:expr) => {{
                let (elements, _) = bytes.as_chunks::<$n>();
                if big {
                    out.extend(elements.iter().map(|&e| <$t>::from_be_bytes(e) as f32));
                } else {
                    out.extend(elements.iter().map(|&e| <$t>::from_le_bytes(e) as f32));
                }
            }};
        }
        match self {
            Element::F32 => each!(f32, 4),
            Element::F64 => each!(f64, 8),
            Element::I8 => each!(i8, 1),
            Element::I16 => each!(i16, 2),
            Element::I32 => each!(i32, 4),
            Element::I64 => each!(i64, 8),
            Element::U8 => each!(u8, 1),
            Element::U16 => each!(u16, 2),
            Element::U32 => each!(u32, 4),
            Element::U64 => each!(u64, 8),
        }
    }
}

/// Row-by-row reader of a 2-D `.npy` file, in C or Fortran order.
///
/// Rows are read straight from the file in blocks of about [`NPY_BLOCK`] bytes (whole rows),
/// a size that stays in the processor's L2 cache, and decoded from there: the data crosses
/// memory once on its way in, with no intermediate buffered-reader copy.
///
/// Each block lands in the buffer at the same offset within a 4 KiB page as its bytes have
/// in the file, so the operating system's copy out of the page cache reads and writes at
/// matching addresses. Measured on this project's AMD EPYC machine: a buffer whose offset
/// happened to differ by 16 bytes made that copy about 3x slower (0.40 s of system time
/// instead of 0.12 s for a 512 MiB file), the stores and loads aliasing modulo 4 KiB.
///
/// A Fortran-order file holds each channel's values for all spectra together. A block of
/// [`NPY_COLUMN_SEGMENT`] bytes per channel is read channel by channel (one seek and read
/// each) and laid out as rows in the same buffer, so the rest of the reader is the same.
struct NpyRows {
    file: Arc<str>,
    reader: File,
    element: Element,
    big_endian: bool,
    rows: usize,
    channels: usize,
    next_row: usize,
    /// The buffer of a block of rows, one page longer than [`NpyRows::block_rows`] rows.
    block: Vec<u8>,
    /// Rows per block.
    block_rows: usize,
    /// Where in `block` the rows `block_first ..` start; `block_valid` of them are complete.
    block_at: usize,
    /// Where the rows start in the file.
    data_start: u64,
    block_first: usize,
    block_valid: usize,
    /// Why rows from `block_first + block_valid` on cannot be read, once known.
    broken: Option<String>,
    /// Whether the file is column-major (Fortran order, more than one row).
    fortran: bool,
    /// For a Fortran-order file: one channel's values of a block, as read.
    segment: Vec<u8>,
}

/// Bytes read from a `.npy` file at a time (rounded to whole rows, at least one).
pub const NPY_BLOCK: usize = 256 << 10;

/// Bytes of one channel's column read at a time from a Fortran-order `.npy` file.
pub const NPY_COLUMN_SEGMENT: usize = 4 << 10;

/// The page size the read buffer is aligned to (see [`NpyRows`]).
const PAGE: usize = 4096;

/// Missing rows of a truncated `.npy` reported one by one; beyond this the file is refused.
const NPY_MISSING_ROWS_LIMIT: u64 = 1 << 16;

impl NpyRows {
    fn open(path: &Path) -> Result<NpyRows, FileError> {
        let file = File::open(path).map_err(|e| FileError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| FileError::io(path, e))?.len();
        if file_len == 0 {
            return Err(FileError::format(path, "the file is empty"));
        }
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let header =
            npy_header::read(&mut reader, file_len).map_err(|e| FileError::format(path, e))?;
        let data_start = header.data_start;
        let mut reader = reader.into_inner();
        reader
            .seek(SeekFrom::Start(data_start))
            .map_err(|e| FileError::io(path, e))?;

        let (element, big_endian) = Element::from_descr(&header.descr).ok_or_else(|| {
            FileError::format(
                path,
                format!(
                    "element type '{}' is not supported: use float32/64 or (un)signed integers",
                    header.descr
                ),
            )
        })?;
        let (rows, channels) = match *header.shape.as_slice() {
            [n] => (1, n as usize),
            [m, n] => (m as usize, n as usize),
            ref other => {
                return Err(FileError::format(
                    path,
                    format!(
                        "array has {} dimensions, expected 2 (spectra x channels)",
                        other.len()
                    ),
                ));
            }
        };
        if rows == 0 {
            return Err(FileError::format(
                path,
                format!("the file holds no spectra: its shape is (0, {channels})"),
            ));
        }
        if channels == 0 {
            return Err(FileError::format(path, "spectra have no channels"));
        }
        // The header is checked against the file's size before anything is sized by it: a
        // few bytes could otherwise ask for terabytes, or overflow the byte count.
        let within = |bytes: Option<usize>| bytes.is_some_and(|b| b as u64 <= file_len);
        let row = channels.checked_mul(element.size());
        if !within(row) {
            return Err(FileError::format(
                path,
                format!("one row of {channels} channels is longer than the whole file"),
            ));
        }
        let data_bytes = row.and_then(|r| r.checked_mul(rows));
        let data_end = data_bytes.and_then(|b| (b as u64).checked_add(data_start));
        if header.fortran_order && rows > 1 && data_end.is_none_or(|end| end > file_len) {
            return Err(FileError::format(
                path,
                "the file is shorter than its header says",
            ));
        }
        // A truncated file gets an error row for each spectrum it lost, so nothing vanishes
        // silently; a header promising far more rows than the file could ever hold is not a
        // truncation but a corrupt file, refused before it can ask for endless error rows.
        let held = row.map_or(0, |r| file_len.saturating_sub(data_start) / r.max(1) as u64);
        if rows as u64 > held.saturating_add(NPY_MISSING_ROWS_LIMIT) {
            return Err(FileError::format(
                path,
                format!("the header promises {rows} spectra but the file holds at most {held}"),
            ));
        }

        let row_bytes = channels * element.size();
        let fortran = header.fortran_order && rows > 1;
        let block_rows = if fortran {
            (NPY_COLUMN_SEGMENT / element.size()).max(1)
        } else {
            (NPY_BLOCK / row_bytes).max(1)
        };
        Ok(NpyRows {
            file: path.display().to_string().into(),
            reader,
            element,
            big_endian,
            rows,
            channels,
            next_row: 0,
            block: vec![0u8; block_rows * row_bytes + PAGE],
            block_rows,
            block_at: 0,
            data_start,
            block_first: 0,
            block_valid: 0,
            broken: None,
            fortran,
            segment: vec![
                0u8;
                if fortran {
                    block_rows * element.size()
                } else {
                    0
                }
            ],
        })
    }

    /// Reads the block of rows starting at `first`; short at the end of the file.
    fn read_block(&mut self, first: usize) {
        if self.fortran {
            self.read_columns(first);
            return;
        }
        let row_bytes = self.channels * self.element.size();
        let wanted = self.block_rows.min(self.rows - first);
        let in_page = |at: u64| (at % PAGE as u64) as usize;
        // Blocks are read in order, so the file stands at this row.
        let position = self.data_start + (first * row_bytes) as u64;
        let base = self.block.as_ptr() as u64;
        self.block_at = (in_page(position) + PAGE - in_page(base)) % PAGE;
        let buffer = &mut self.block[self.block_at..self.block_at + wanted * row_bytes];

        let mut got = 0;
        while got < buffer.len() {
            match self.reader.read(&mut buffer[got..]) {
                Ok(0) => {
                    self.broken = Some("the file ends before this row: it is truncated".into());
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.broken = Some(format!("read failed: {e}"));
                    break;
                }
            }
        }
        self.block_first = first;
        self.block_valid = got / row_bytes;
    }

    /// Reads the block of rows starting at `first` from a Fortran-order file, a segment of
    /// each channel's column in turn, into row-major order. The file's length was checked
    /// when it was opened, so only an I/O error can cut a block short; then the whole block
    /// fails, since each of its rows lacks a channel.
    fn read_columns(&mut self, first: usize) {
        let size = self.element.size();
        let row_bytes = self.channels * size;
        let wanted = self.block_rows.min(self.rows - first);
        let segment = &mut self.segment[..wanted * size];
        self.block_first = first;
        self.block_at = 0;
        self.block_valid = 0;

        for channel in 0..self.channels {
            let at = self.data_start + ((channel * self.rows + first) * size) as u64;
            let read = self
                .reader
                .seek(SeekFrom::Start(at))
                .and_then(|_| self.reader.read_exact(segment));
            if let Err(e) = read {
                self.broken = Some(format!("read failed: {e}"));
                return;
            }

            let rows = self.block[..wanted * row_bytes].chunks_exact_mut(row_bytes);
            for (row, value) in rows.zip(segment.chunks_exact(size)) {
                row[channel * size..(channel + 1) * size].copy_from_slice(value);
            }
        }
        self.block_valid = wanted;
    }

    /// The next row, decoded into a spare buffer when there is one.
    fn next(&mut self, spare: &mut Vec<Vec<f32>>) -> Option<Result<Spectrum, SpectrumError>> {
        if self.next_row >= self.rows {
            return None;
        }
        let row = self.next_row;
        self.next_row += 1;
        let name = row.to_string();
        let file = self.file.clone();
        let fail = |message: String| SpectrumError {
            file: file.clone(),
            spectrum: name.clone(),
            place: Place::Row(row),
            message,
        };

        let mut values = spare.pop().unwrap_or_default();
        values.clear();
        if self.broken.is_none() && row >= self.block_first + self.block_valid {
            self.read_block(row);
        }
        if row >= self.block_first + self.block_valid {
            let why = self.broken.clone().unwrap_or_default();
            return Some(Err(fail(why)));
        }

        let row_bytes = self.channels * self.element.size();
        let at = self.block_at + (row - self.block_first) * row_bytes;
        let bytes = &self.block[at..at + row_bytes];
        self.element.decode(self.big_endian, bytes, &mut values);

        // A branch-free test over the row first (it vectorises); the search only on failure.
        let finite = values.iter().fold(true, |finite, v| finite & v.is_finite());
        if !finite && let Some(channel) = values.iter().position(|v| !v.is_finite()) {
            let v = values[channel];
            let what = if v.is_nan() { "NaN" } else { "infinite" };
            return Some(Err(fail(format!("channel {channel} is {what}"))));
        }
        Some(Ok(Spectrum {
            name: name.clone(),
            file: self.file.clone(),
            place: Place::Row(row),
            axis: None,
            values,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<str> {
        "t".into()
    }

    /// A `.npy` file of `rows` rows of three `float32` channels, value `3 r + c`, in C or
    /// Fortran order, with the header padded to `data_start` bytes (a multiple of 64), cut
    /// to `keep` data bytes.
    fn npy_counting(
        dir: &Path,
        rows: usize,
        fortran: bool,
        data_start: usize,
        keep: usize,
    ) -> PathBuf {
        let order = if fortran { "True" } else { "False" };
        let dict = format!("{{'descr': '<f4', 'fortran_order': {order}, 'shape': ({rows}, 3), }}");
        let mut header = dict.into_bytes();
        header.resize(data_start - 10 - 1, b' ');
        header.push(b'\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header);
        let value = |at: usize| {
            if fortran {
                3 * (at % rows) + at / rows
            } else {
                at
            }
        };
        let values = (0..rows * 3).flat_map(|at| (value(at) as f32).to_le_bytes());
        bytes.extend(values.take(keep));
        let path = dir.join(format!("counting-{data_start}-{order}.npy"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Reads `path` and checks that rows `..good` hold `3 r + c` and the others failed as
    /// truncated.
    fn assert_counting(path: &Path, rows: usize, good: usize) {
        let items: Vec<_> = read_spectra(path).unwrap().collect();
        assert_eq!(items.len(), rows);
        for (r, item) in items.iter().enumerate() {
            match item {
                Ok(spectrum) => {
                    assert!(r < good, "row {r} read past the cut");
                    let expected: Vec<f32> = (0..3).map(|c| (3 * r + c) as f32).collect();
                    assert_eq!(spectrum.values, expected, "row {r} of {}", path.display());
                }
                Err(e) => {
                    assert!(r >= good, "row {r}: {}", e.message);
                    assert!(e.message.contains("truncated"), "{}", e.message);
                }
            }
        }
    }

    #[test]
    fn npy_rows_read_back_across_blocks_whatever_the_offset_of_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let row_bytes = 12;
        // Blocks of 12-byte rows do not fill whole pages, so each block starts at another
        // offset within a page and the buffer is re-aligned for each.
        let rows = 3 * NPY_BLOCK / row_bytes + 7;
        for data_start in [128, 192, 4096 + 64] {
            let good = rows - 5;
            let path = npy_counting(dir.path(), rows, false, data_start, good * row_bytes + 4);
            assert_counting(&path, rows, good);
        }
    }

    #[test]
    fn fortran_order_npy_is_read_in_blocks_of_column_segments() {
        let dir = tempfile::tempdir().unwrap();
        let rows = 2 * NPY_COLUMN_SEGMENT / 4 + 7;
        let path = npy_counting(dir.path(), rows, true, 128, rows * 12);
        assert_counting(&path, rows, rows);

        // A column-major file cut short lacks channels of every spectrum: refused whole.
        let path = npy_counting(dir.path(), rows, true, 192, rows * 12 - 4);
        let refused = read_spectra(&path)
            .err()
            .expect("a truncated file is refused");
        assert!(
            refused.to_string().contains("shorter than its header"),
            "{refused}"
        );
    }

    #[test]
    fn msa_of_datatype_y_builds_its_axis_from_offset_and_step() {
        let text = "#FORMAT : EMSA/MAS Spectral Data File\n#TITLE : \n#NPOINTS : 5\n\
                    #NCOLUMNS : 3\n#DATATYPE : Y\n#XPERCHAN : 0.5\n#OFFSET : -1\n\
                    #SPECTRUM : go\n1, 2, 3,\n4, 5\n#ENDOFDATA :\n";
        let s = parse_msa(text, Path::new("dir/edge.msa"), file()).expect("parses");

        assert_eq!(s.name, "edge", "an empty title falls back to the file stem");
        assert_eq!(s.values, [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(s.axis.as_deref(), Some(&[-1.0, -0.5, 0.0, 0.5, 1.0][..]));
    }

    #[test]
    fn msa_without_step_for_datatype_y_is_refused() {
        let text = "#DATATYPE : Y\n#SPECTRUM :\n1\n2\n#ENDOFDATA :\n";
        let e = parse_msa(text, Path::new("a.msa"), file()).unwrap_err();

        assert_eq!(e.message, "#XPERCHAN missing for DATATYPE Y");
    }

    #[test]
    fn xy_takes_comments_commas_and_blank_lines() {
        let text = "# two_theta counts\n\n10.0 5 # first\n10.5,6\n11.0\t7\n";
        let s = parse_xy(text, Path::new("scan.xy"), file()).expect("parses");

        assert_eq!(s.name, "scan");
        assert_eq!(s.values, [5.0, 6.0, 7.0]);
        assert_eq!(s.axis.as_deref(), Some(&[10.0, 10.5, 11.0][..]));
    }

    #[test]
    fn xy_column_header_without_hash_is_skipped() {
        let text = "2Theta Intensity\r\nsample 7\r\n10.0 5\r\n10.5 6\r\n";
        let s = parse_xy(text, Path::new("scan.xy"), file()).expect("parses");

        assert_eq!(s.values, [5.0, 6.0]);
        assert_eq!(s.axis.as_deref(), Some(&[10.0, 10.5][..]));
    }

    #[test]
    fn xy_lines_after_the_first_data_line_are_not_skipped() {
        let e = parse_xy("10 5\nsum 11\n", Path::new("a.xy"), file()).unwrap_err();
        assert_eq!(
            e.message,
            "line 2: axis value \"sum\" is not a finite number"
        );

        let e = parse_xy("x y\n10 NaN\n", Path::new("a.xy"), file()).unwrap_err();
        assert_eq!(
            e.message, "channel 0 (line 2) is NaN",
            "a NaN is data, not a header"
        );

        let e = parse_xy("x y\n", Path::new("a.xy"), file()).unwrap_err();
        assert!(e.message.starts_with("no data lines"), "{}", e.message);
    }

    #[test]
    fn xy_axis_must_be_monotonic() {
        let e = parse_xy("1 1\n2 1\n2 1\n", Path::new("a.xy"), file()).unwrap_err();

        assert_eq!(
            e.message,
            "axis is not strictly monotonic at channel 2 (2 after 2)"
        );
    }

    #[test]
    fn csv_quoted_names_comments_and_a_descending_axis_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.csv");
        std::fs::write(
            &path,
            "# made by hand\nenergy_eV,\"Fe, bcc\",FeO\n3,1,0\n2,0.5,1\n",
        )
        .unwrap();
        let lib = read_library(&path).expect("reads");

        assert_eq!(lib.names, ["Fe, bcc", "FeO"]);
        assert_eq!(lib.axis, [3.0, 2.0]);
        assert_eq!(lib.data, [1.0, 0.0, 0.5, 1.0], "channel-major");
        assert_eq!(lib.column(1), [0.0, 1.0]);
    }

    #[test]
    fn csv_header_ending_in_a_comma_names_no_extra_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.csv");
        std::fs::write(&path, "x,a,b,,\n1,0.5,1\n2,1,0.25,,\n").unwrap();
        let lib = read_library(&path).expect("reads");

        assert_eq!(lib.names, ["a", "b"]);
        assert_eq!(lib.data, [0.5, 1.0, 1.0, 0.25]);
    }

    #[test]
    fn csv_empty_header_cell_before_a_named_one_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.csv");
        std::fs::write(&path, "x,a,,b\n1,0.5,1,2\n").unwrap();
        let e = read_library(&path).unwrap_err();

        assert!(
            e.to_string().ends_with("header cell of column 3 is empty"),
            "{e}"
        );
    }

    #[test]
    fn sample_text_is_classified() {
        assert_eq!(parse_sample("1e3"), Ok(1000.0));
        assert_eq!(parse_sample("nan"), Err("is NaN".to_string()));
        assert_eq!(parse_sample("inf"), Err("is infinite".to_string()));
        assert_eq!(parse_sample("1e39"), Err("1e39 overflows f32".to_string()));
        assert_eq!(parse_sample("x"), Err("is not a number: \"x\"".to_string()));
    }
}
