//! The result table: one CSV row per spectrum, in input order.
//!
//! Columns, for phases `p1 .. pk` and a background of `t` terms:
//!
//! `spectrum, p1 .. pk, residual_norm, fraction_p1 .. fraction_pk, stderr_p1 .. stderr_pk,
//! background_0 .. background_{t-1}, stderr_background_0 .. , chi_square,
//! reduced_chi_square, iterations, status, error`
//!
//! `background_d` is the coefficient of the Chebyshev polynomial `T_d`. `status` is
//! `converged`, `iteration_cap`, `degenerate` or `error`; a failed spectrum keeps its row,
//! with empty numeric cells, `status` `error` and the message in `error` (empty otherwise).
//! `chi_square` cells are empty when it was not computed.
//!
//! Every number is an `f32` written as Rust's `Display` writes it, the shortest decimal that
//! parses back to the same `f32` (never in exponent form), by a faster route
//! ([`push_display`]). Equal bits therefore give
//! equal text, and the text gives back the bits: `unmix fit` and `unmix stream` write the same
//! bytes for the same results. The writer only formats; it never recomputes.

use std::fmt::Write as _;
use std::io::{self, Write};

use unmix::Status;

/// The numbers of one fit, as the table needs them: a plain struct, so results computed
/// elsewhere (the firmware) can be written exactly like the kernel's [`unmix::Fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct FitRecord {
    /// Phase coefficients, original units.
    pub phases: Vec<f32>,
    /// Background coefficients (`T_0 ..`), empty without background.
    pub background: Vec<f32>,
    /// Phase fractions `w_j / sum(w)`.
    pub fractions: Vec<f32>,
    /// Standard errors of the phases, then of the background terms.
    pub standard_errors: Vec<f32>,
    /// `||y - X w||`.
    pub residual_norm: f32,
    /// Poisson chi-square, when computed.
    pub chi2: Option<f32>,
    /// Chi-square per degree of freedom, when computed.
    pub reduced_chi2: Option<f32>,
    /// Active-set iterations.
    pub iterations: u32,
    /// How the fit ended.
    pub status: Status,
}

impl From<&unmix::Fit> for FitRecord {
    fn from(fit: &unmix::Fit) -> Self {
        FitRecord {
            phases: fit.phases().to_vec(),
            background: fit.background().to_vec(),
            fractions: fit.fractions().to_vec(),
            standard_errors: fit.standard_errors().to_vec(),
            residual_norm: fit.residual_norm(),
            chi2: fit.chi2(),
            reduced_chi2: fit.reduced_chi2(),
            iterations: fit.iterations(),
            status: fit.status(),
        }
    }
}

/// The `status` cell of a fit.
pub fn status_text(status: Status) -> &'static str {
    match status {
        Status::Converged => "converged",
        Status::IterationCap => "iteration_cap",
        Status::Degenerate => "degenerate",
        _ => "unknown",
    }
}

/// The layout of a result table: phase names and background terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Phase names, in library order.
    pub phases: Vec<String>,
    /// Background terms (Chebyshev degree + 1, or 0).
    pub background_terms: usize,
}

impl Table {
    /// A layout for `phases` and `background_terms`.
    pub fn new(phases: &[String], background_terms: usize) -> Self {
        Table {
            phases: phases.to_vec(),
            background_terms,
        }
    }

    /// The header line, with its newline.
    pub fn header(&self) -> String {
        let mut cells: Vec<String> = vec!["spectrum".into()];
        cells.extend(self.phases.iter().cloned());
        cells.push("residual_norm".into());
        cells.extend(self.phases.iter().map(|p| format!("fraction_{p}")));
        cells.extend(self.phases.iter().map(|p| format!("stderr_{p}")));
        cells.extend((0..self.background_terms).map(|d| format!("background_{d}")));
        cells.extend((0..self.background_terms).map(|d| format!("stderr_background_{d}")));
        for c in [
            "chi_square",
            "reduced_chi_square",
            "iterations",
            "status",
            "error",
        ] {
            cells.push(c.into());
        }

        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            push_cell(&mut line, cell);
        }
        line.push('\n');
        line
    }

    /// Number of cells in every line.
    pub fn width(&self) -> usize {
        1 + 3 * self.phases.len() + 1 + 2 * self.background_terms + 5
    }

    /// One row, with its newline: the fit's numbers, or empty numbers and the error message.
    ///
    /// A record with fewer values than the table has columns leaves the missing cells
    /// empty; extra values are not written.
    pub fn row(&self, spectrum: &str, outcome: Result<&FitRecord, &str>) -> String {
        let mut line = String::with_capacity(32 * self.width());
        self.push_row(&mut line, spectrum, outcome.map(Values::from));
        line
    }

    /// Appends the row of a kernel fit to `line`: the same text as [`Table::row`] with the
    /// [`FitRecord`] of `fit`, without building the record.
    pub fn push_fit(&self, line: &mut String, spectrum: &str, fit: &unmix::Fit) {
        self.push_row(line, spectrum, Ok(Values::from(fit)));
    }

    /// Appends the row of a failed spectrum to `line` (see [`Table::row`]).
    pub fn push_error(&self, line: &mut String, spectrum: &str, message: &str) {
        self.push_row(line, spectrum, Err(message));
    }

    /// The one formatting path every row takes.
    fn push_row(&self, line: &mut String, spectrum: &str, outcome: Result<Values<'_>, &str>) {
        let k = self.phases.len();
        let t = self.background_terms;
        push_cell(line, spectrum);

        let fit = match outcome {
            Ok(fit) => fit,
            Err(message) => {
                for _ in 0..self.width() - 3 {
                    line.push(',');
                }
                line.push_str(",error,");
                push_cell(line, message);
                line.push('\n');
                return;
            }
        };

        let (phase_se, background_se) = fit
            .standard_errors
            .split_at_checked(k)
            .unwrap_or((fit.standard_errors, &[]));
        push_numbers(line, fit.phases, k);
        push_number(line, Some(fit.residual_norm));
        push_numbers(line, fit.fractions, k);
        push_numbers(line, phase_se, k);
        push_numbers(line, fit.background, t);
        push_numbers(line, background_se, t);
        push_number(line, fit.chi2);
        push_number(line, fit.reduced_chi2);
        let _ = write!(line, ",{},{},", fit.iterations, status_text(fit.status));
        line.push('\n');
    }
}

/// A borrowed [`FitRecord`], so kernel fits are formatted without copying.
struct Values<'a> {
    phases: &'a [f32],
    background: &'a [f32],
    fractions: &'a [f32],
    standard_errors: &'a [f32],
    residual_norm: f32,
    chi2: Option<f32>,
    reduced_chi2: Option<f32>,
    iterations: u32,
    status: Status,
}

impl<'a> From<&'a FitRecord> for Values<'a> {
    fn from(r: &'a FitRecord) -> Self {
        Values {
            phases: &r.phases,
            background: &r.background,
            fractions: &r.fractions,
            standard_errors: &r.standard_errors,
            residual_norm: r.residual_norm,
            chi2: r.chi2,
            reduced_chi2: r.reduced_chi2,
            iterations: r.iterations,
            status: r.status,
        }
    }
}

impl<'a> From<&'a unmix::Fit> for Values<'a> {
    fn from(f: &'a unmix::Fit) -> Self {
        Values {
            phases: f.phases(),
            background: f.background(),
            fractions: f.fractions(),
            standard_errors: f.standard_errors(),
            residual_norm: f.residual_norm(),
            chi2: f.chi2(),
            reduced_chi2: f.reduced_chi2(),
            iterations: f.iterations(),
            status: f.status(),
        }
    }
}

/// Writes a result table: the header on creation, then one row per call.
pub struct CsvWriter<W: Write> {
    out: W,
    table: Table,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the header for `table` and returns the writer.
    ///
    /// # Errors
    /// The I/O error of writing the header.
    pub fn new(mut out: W, table: Table) -> io::Result<Self> {
        out.write_all(table.header().as_bytes())?;
        Ok(CsvWriter { out, table })
    }

    /// The table layout.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Writes the row of one spectrum: its fit or its error message.
    ///
    /// # Errors
    /// The I/O error of writing.
    pub fn write_row(
        &mut self,
        spectrum: &str,
        outcome: Result<&FitRecord, &str>,
    ) -> io::Result<()> {
        self.out
            .write_all(self.table.row(spectrum, outcome).as_bytes())
    }

    /// Writes the row of a kernel fit (same text as [`CsvWriter::write_row`] with the
    /// [`FitRecord`] of `fit`).
    ///
    /// # Errors
    /// The I/O error of writing.
    pub fn write_fit(&mut self, spectrum: &str, fit: &unmix::Fit) -> io::Result<()> {
        let mut line = String::with_capacity(32 * self.table.width());
        self.table.push_fit(&mut line, spectrum, fit);
        self.out.write_all(line.as_bytes())
    }

    /// Writes text made of whole rows from [`Table::row`], [`Table::push_fit`] or
    /// [`Table::push_error`] (rows formatted in parallel).
    ///
    /// # Errors
    /// The I/O error of writing.
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        self.out.write_all(line.as_bytes())
    }

    /// Flushes and returns the inner writer.
    ///
    /// # Errors
    /// The I/O error of flushing.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Appends `,v` for each of the first `count` values, an empty cell where `values` is short.
fn push_numbers(line: &mut String, values: &[f32], count: usize) {
    for j in 0..count {
        push_number(line, values.get(j).copied());
    }
}

/// Appends `,` and the shortest round-trip text of `value` (nothing for `None`).
fn push_number(line: &mut String, value: Option<f32>) {
    line.push(',');
    if let Some(v) = value {
        push_display(line, v);
    }
}

/// Appends exactly the text `format!("{value}")` gives, several times faster.
///
/// Ryu finds the shortest digits that read back to `value`, the digits `Display` prints, with
/// one difference: when the value lies exactly halfway between two shortest candidates, Ryu
/// picks the even last digit and `Display` the larger one (`51250.5625` is `51250.562` to
/// Ryu, `51250.563` to `Display`). Such halfway cases are recognised exactly, in integers, and
/// moved up. The digits are then spelled as `Display` does, in plain decimal: `0.000000125`,
/// `1`, `100000000000000000000`. A test compares the two over a million random bit patterns
/// and the special values; all 2^32 patterns were compared once (see the README).
pub fn push_display(line: &mut String, value: f32) {
    if !value.is_finite() {
        let _ = write!(line, "{value}");
        return;
    }
    if value.is_sign_negative() {
        line.push('-');
    }
    if value == 0.0 {
        line.push('0');
        return;
    }

    let magnitude = value.abs();
    let mut buffer = ryu::Buffer::new();
    let (mut digits, mut exponent) = shortest_decimal(buffer.format_finite(magnitude));
    if halfway_above(magnitude, digits, exponent) {
        digits += 1;
        while digits % 10 == 0 {
            digits /= 10;
            exponent += 1;
        }
    }

    let mut text = [0u8; 20];
    let mut start = text.len();
    while digits != 0 {
        start -= 1;
        text[start] = b'0' + (digits % 10) as u8;
        digits /= 10;
    }
    let text = &text[start..];
    let point = text.len() as i32 + exponent;
    let push = |line: &mut String, bytes: &[u8]| line.extend(bytes.iter().map(|&d| char::from(d)));
    let zeros = |line: &mut String, count: i32| line.extend((0..count).map(|_| '0'));
    if point <= 0 {
        line.push_str("0.");
        zeros(line, -point);
        push(line, text);
    } else if point as usize >= text.len() {
        push(line, text);
        zeros(line, point - text.len() as i32);
    } else {
        let (integer, decimals) = text.split_at(point as usize);
        push(line, integer);
        line.push('.');
        push(line, decimals);
    }
}

/// Ryu's text of a positive value (`1.25e-7`, `1234.5`, `1.0`, `1e20`) as `digits x
/// 10^exponent`, `digits` without trailing zeros.
fn shortest_decimal(text: &str) -> (u64, i32) {
    let (mut digits, mut exponent) = (0u64, 0i32);
    let mut in_fraction = false;
    for (at, byte) in text.bytes().enumerate() {
        match byte {
            b'0'..=b'9' => {
                digits = digits * 10 + u64::from(byte - b'0');
                exponent -= i32::from(in_fraction);
            }
            b'.' => in_fraction = true,
            _ => {
                exponent += text[at + 1..].parse::<i32>().unwrap_or(0);
                break;
            }
        }
    }
    while digits != 0 && digits % 10 == 0 {
        digits /= 10;
        exponent += 1;
    }
    (digits, exponent)
}

/// Whether the positive `value` is exactly halfway between `digits x 10^exponent` and the
/// next decimal up, `(digits + 1) x 10^exponent`: `2 value = (2 digits + 1) 10^exponent`.
///
/// With `value = m 2^q`, `m` odd, both sides' powers of two and odd parts must agree: for
/// `exponent >= 0`, `q + 1 = exponent` and `m = (2 digits + 1) 5^exponent`; below zero,
/// `q + 1 = exponent` again and `m 5^-exponent = 2 digits + 1`.
fn halfway_above(value: f32, digits: u64, exponent: i32) -> bool {
    let bits = value.to_bits();
    let (biased, fraction) = ((bits >> 23) & 0xff, bits & 0x7f_ffff);
    let (mut m, mut q) = match biased {
        0 => (fraction, -149),
        _ => (fraction | 1 << 23, biased as i32 - 150),
    };
    let shift = m.trailing_zeros();
    m >>= shift;
    q += shift as i32;
    if q + 1 != exponent {
        return false;
    }

    let odd = u128::from(digits) * 2 + 1;
    let m = u128::from(m);
    let power = |e: i32| 5u128.checked_pow(e.unsigned_abs());
    if exponent >= 0 {
        power(exponent).and_then(|p| p.checked_mul(odd)) == Some(m)
    } else {
        power(exponent).and_then(|p| p.checked_mul(m)) == Some(odd)
    }
}

/// Appends a CSV cell, quoted (RFC 4180) when it holds a comma, quote or line break.
fn push_cell(line: &mut String, cell: &str) {
    if cell.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&cell.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(cell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn numbers_are_spelled_exactly_as_display_spells_them() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let special = [
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e-45,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            1e20,
            123456790.0,
            16777216.0,
            0.000012345,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        let random = (0..1_000_000).map(|_| f32::from_bits(rng.random()));
        let mut line = String::new();
        for value in special.into_iter().chain(random) {
            line.clear();
            push_display(&mut line, value);

            assert_eq!(line, format!("{value}"), "bits {:#010x}", value.to_bits());
        }
    }

    fn record() -> FitRecord {
        FitRecord {
            phases: vec![1.5, 0.0],
            background: vec![-2.25],
            fractions: vec![1.0, 0.0],
            standard_errors: vec![0.1, 0.2, 0.3],
            residual_norm: 3.0,
            chi2: Some(4.0),
            reduced_chi2: None,
            iterations: 2,
            status: Status::Converged,
        }
    }

    #[test]
    fn display_of_f32_round_trips_every_bit_pattern_class() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let specials = [
            0.0f32,
            -0.0,
            f32::MIN_POSITIVE,
            1e-45,
            f32::MAX,
            f32::MIN,
            0.1,
            1e-7,
        ];
        let randoms = (0..200_000).map(|_| f32::from_bits(rng.random::<u32>()));

        for v in specials
            .into_iter()
            .chain(randoms)
            .filter(|v| v.is_finite())
        {
            let text = format!("{v}");
            let back: f32 = text.parse().expect("Display output parses");
            assert_eq!(back.to_bits(), v.to_bits(), "{v:e} printed as {text}");
            assert!(!text.contains('e'), "no exponent form: {text}");
        }
    }

    #[test]
    fn header_and_row_have_the_same_width() {
        let table = Table::new(&["a".into(), "b,c".into()], 1);
        let header = table.header();
        let row = table.row("s1", Ok(&record()));
        let failed = table.row("s2", Err("channel 3 (row 5) is NaN"));

        let count = |line: &str| csv_cells(line).len();
        assert_eq!(count(&header), table.width());
        assert_eq!(count(&row), table.width());
        assert_eq!(count(&failed), table.width());
        assert!(header.starts_with("spectrum,a,\"b,c\",residual_norm,fraction_a,"));
        assert_eq!(row, "s1,1.5,0,3,1,0,0.1,0.2,-2.25,0.3,4,,2,converged,\n");
        assert!(failed.ends_with(",error,channel 3 (row 5) is NaN\n"));
    }

    #[test]
    fn messages_with_quotes_and_commas_are_quoted() {
        let table = Table::new(&["a".into()], 0);
        let line = table.row("x", Err("spectrum \"s1\", bad"));

        assert!(line.ends_with(",error,\"spectrum \"\"s1\"\", bad\"\n"));
        assert_eq!(csv_cells(&line).len(), table.width());
    }

    #[test]
    fn kernel_fits_and_their_records_give_the_same_text() {
        let library = [
            1.0f32, 0.0, 2.0, 0.5, 1.0, 1.0, 0.0, 2.0, 0.5, 1.0, 0.0, 0.5,
        ];
        let shape = unmix::Shape::new(6, 2, unmix::Background::Chebyshev { degree: 0 });
        let mut storage = vec![0.0f32; shape.prepared_len()];
        let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
        let view = unmix::prepare(shape, &library, &mut storage, &mut scratch).unwrap();
        let options = unmix::FitOptions::new(unmix::Method::Nnls).with_chi2(true);
        let fit = view
            .fit(&[2.5f32, 3.1, 5.4, 3.3, 6.2, 1.4], &options)
            .unwrap();
        let table = Table::new(&["a".into(), "b".into()], 1);

        let mut pushed = String::new();
        table.push_fit(&mut pushed, "s", &fit);

        assert_eq!(pushed, table.row("s", Ok(&FitRecord::from(&fit))));
        assert_eq!(csv_cells(&pushed).len(), table.width());
    }

    /// Splits one CSV line into cells with the `csv` crate (an independent parser).
    fn csv_cells(line: &str) -> Vec<String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes());
        let record = reader
            .records()
            .next()
            .expect("one record")
            .expect("valid CSV");
        record.iter().map(str::to_string).collect()
    }
}
