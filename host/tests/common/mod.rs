//! Helpers shared by the end-to-end tests: run the built `unmix`, read its CSV output.

// Each test crate compiles this module and uses a different subset of it.
#![allow(
    dead_code,
    reason = "each test crate uses a different subset of the helpers"
)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// `unmix fit` of `spectra.csv` against `library.csv`, before any further options.
pub const FIT_CSV: [&str; 5] = [
    "fit",
    "--library",
    "library.csv",
    "--spectra",
    "spectra.csv",
];

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `unmix` with `args` in `dir`.
pub fn unmix(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_unmix"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the unmix binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `unmix` and requires success.
pub fn unmix_ok(dir: &Path, args: &[&str]) -> Run {
    let run = unmix(dir, args);
    assert_eq!(run.code, 0, "unmix {args:?} failed:\n{}", run.stderr);
    run
}

/// A CSV table: header and rows of cells, parsed with the `csv` crate.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn read(path: &Path) -> Table {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(path)
            .expect("CSV opens");
        let mut records = reader.records().map(|r| {
            r.expect("valid CSV")
                .iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let header = records.next().expect("a header");
        let rows: Vec<_> = records.collect();
        for row in &rows {
            assert_eq!(row.len(), header.len(), "rectangular table");
        }
        Table { header, rows }
    }

    pub fn column(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    /// Rows keyed by their first cell.
    pub fn by_name(&self) -> HashMap<String, Vec<String>> {
        self.rows
            .iter()
            .map(|r| (r[0].clone(), r.clone()))
            .collect()
    }

    /// Cell `name` of `row` as a number.
    pub fn number(&self, row: &[String], name: &str) -> f64 {
        let cell = &row[self.column(name)];
        cell.parse()
            .unwrap_or_else(|_| panic!("{name} = {cell:?} is not a number"))
    }
}

/// The start of a version-1 `.npy` file written by hand (so the reader is checked against the
/// format itself, not the writer it shares a crate with): magic, version, header length and
/// the header dict, padded with spaces to a multiple of 64 bytes. The data follows.
pub fn npy_preamble(descr: &str, fortran: bool, shape: &str) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');

    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes
}
