//! Bad input: every case names the file, spectrum and place; the good spectra are still
//! fitted and written and the exit status is 2; a file that cannot be used at all stops the
//! run with exit status 1.

mod common;

use std::fs;
use std::path::Path;

use common::{FIT_CSV, Run, Table, npy_preamble, unmix};

const CHANNELS: usize = 100;

fn axis(i: usize) -> f64 {
    20.0 + 0.5 * i as f64
}

fn phase(j: usize, i: usize) -> f64 {
    let centre = [30.0, 45.0, 60.0][j];
    (-(axis(i) - centre).powi(2) / 8.0).exp()
}

fn write_library(d: &Path) {
    let mut csv = String::from("two_theta,a,b,c\n");
    for i in 0..CHANNELS {
        csv += &format!(
            "{},{},{},{}\n",
            axis(i),
            phase(0, i),
            phase(1, i),
            phase(2, i)
        );
    }
    fs::write(d.join("library.csv"), csv).unwrap();
}

fn mixture(i: usize) -> f64 {
    100.0 * phase(0, i) + 50.0 * phase(1, i) + 25.0 * phase(2, i)
}

/// A spectra CSV of `spectra` columns; `cell(column, channel)` may override a value.
fn write_spectra(d: &Path, spectra: usize, cell: impl Fn(usize, usize) -> Option<String>) {
    let mut csv = String::from("two_theta");
    for s in 1..=spectra {
        csv += &format!(",s{s}");
    }
    csv += "\n";
    for i in 0..CHANNELS {
        csv += &format!("{}", axis(i));
        for s in 1..=spectra {
            let value = cell(s, i).unwrap_or_else(|| format!("{}", mixture(i)));
            csv += &format!(",{value}");
        }
        csv += "\n";
    }
    fs::write(d.join("spectra.csv"), csv).unwrap();
}

fn fit(d: &Path, spectra: &str) -> Run {
    unmix(
        d,
        &[
            "fit",
            "--library",
            "library.csv",
            "--spectra",
            spectra,
            "--out",
            "out.csv",
        ],
    )
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_library(dir.path());
    dir
}

/// Checks the row of `name`: converged with coefficients (100, 50, 25), or failed with a
/// message containing `error`.
fn assert_row(table: &Table, name: &str, error: Option<&str>) {
    let row = table
        .rows
        .iter()
        .find(|r| r[0] == name)
        .expect("a row per spectrum");
    let status = &row[table.column("status")];
    match error {
        None => {
            assert_eq!(status, "converged", "{name}: {row:?}");
            for (p, w) in [("a", 100.0), ("b", 50.0), ("c", 25.0)] {
                let got = table.number(row, p);
                assert!((got - w).abs() < 1e-3 * w, "{name} {p}: {got}");
            }
        }
        Some(message) => {
            assert_eq!(status, "error", "{name}");
            assert!(
                row[table.column("error")].contains(message),
                "{name}: {row:?}"
            );
            assert!(
                row[table.column("a")].is_empty(),
                "no numbers for a failed spectrum"
            );
        }
    }
}

#[test]
fn bad_cells_fail_their_own_spectrum_only() {
    let dir = setup();
    let d = dir.path();
    write_spectra(d, 5, |s, i| match (s, i) {
        (2, 5) => Some("NaN".into()),
        (3, 7) => Some("12x".into()),
        (4, 9) => Some(String::new()),
        (5, 11) => Some("-inf".into()),
        _ => None,
    });

    let run = fit(d, "spectra.csv");
    assert_eq!(run.code, 2, "{}", run.stderr);
    let err = &run.stderr;
    assert!(err.contains(r#"spectra.csv: spectrum "s2" (column 3): channel 5 (row 7) is NaN"#));
    assert!(err.contains(r#"spectrum "s3" (column 4): channel 7 (row 9) is not a number: "12x""#));
    assert!(
        err.contains(r#"spectrum "s4" (column 5): channel 9 (row 11) is empty"#),
        "{err}"
    );
    assert!(err.contains(r#"spectrum "s5" (column 6): channel 11 (row 13) is infinite"#));
    assert!(err.contains("5 spectra, 4 failed"), "{err}");

    let table = Table::read(&d.join("out.csv"));
    assert_eq!(table.rows.len(), 5);
    assert_row(&table, "s1", None);
    assert_row(&table, "s2", Some("channel 5 (row 7) is NaN"));
    assert_row(&table, "s3", Some("is not a number"));
    assert_row(&table, "s4", Some("is empty"));
    assert_row(&table, "s5", Some("is infinite"));
}

#[test]
fn a_short_row_fails_the_spectra_it_lacks() {
    let dir = setup();
    let d = dir.path();
    write_spectra(d, 3, |_, _| None);
    let text = fs::read_to_string(d.join("spectra.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let cut = lines[20].rfind(',').unwrap();
    lines[20].truncate(cut);
    fs::write(d.join("spectra.csv"), lines.join("\n") + "\n").unwrap();

    let run = fit(d, "spectra.csv");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(r#"spectrum "s3" (column 4): channel 19 (row 21) has no value"#)
    );
    let table = Table::read(&d.join("out.csv"));
    assert_row(&table, "s1", None);
    assert_row(&table, "s2", None);
    assert_row(&table, "s3", Some("has no value"));
}

#[test]
fn axis_and_length_mismatches_name_the_spectrum() {
    let dir = setup();
    let d = dir.path();
    let xy = |name: &str, n: usize, shift: f64| {
        let text: String = (0..n)
            .map(|i| format!("{} {}\n", axis(i) + shift, mixture(i)))
            .collect();
        fs::write(d.join("dir").join(name), text).unwrap();
    };
    fs::create_dir(d.join("dir")).unwrap();
    xy("good.xy", CHANNELS, 0.0);
    xy("short.xy", CHANNELS - 1, 0.0);
    xy("shifted.xy", CHANNELS, 0.25);
    fs::write(d.join("dir").join("a_empty.xy"), "").unwrap();

    let run = fit(d, "dir");
    assert_eq!(run.code, 2);
    let err = &run.stderr;
    assert!(
        err.contains(r#"a_empty.xy: spectrum "a_empty": the file is empty"#),
        "{err}"
    );
    assert!(
        err.contains(
            r#"short.xy: spectrum "short": has 99 channels, the library (library.csv) has 100"#
        ),
        "{err}"
    );
    assert!(
        err.contains(
            r#"shifted.xy: spectrum "shifted": axis differs from the library's at channel 0"#
        ),
        "{err}"
    );

    let table = Table::read(&d.join("out.csv"));
    assert_eq!(
        table.rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["a_empty", "good", "shifted", "short"]
    );
    assert_row(&table, "a_empty", Some("the file is empty"));
    assert_row(&table, "good", None);
    assert_row(&table, "short", Some("has 99 channels"));
    assert_row(&table, "shifted", Some("axis differs"));
}

#[test]
fn npy_length_mismatch_and_truncation_keep_the_earlier_rows() {
    let dir = setup();
    let d = dir.path();
    let npy = |name: &str, rows: usize, channels: usize, keep_bytes: Option<usize>| {
        let mut bytes = npy_preamble("<f4", false, &format!("({rows}, {channels})"));
        for _ in 0..rows {
            for i in 0..channels {
                bytes.extend((mixture(i) as f32).to_le_bytes());
            }
        }
        if let Some(keep) = keep_bytes {
            bytes.truncate(keep);
        }
        fs::write(d.join(name), bytes).unwrap();
    };

    npy("short.npy", 2, CHANNELS - 4, None);
    let run = fit(d, "short.npy");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(r#"short.npy: spectrum "0" (row 0): has 96 channels"#),
        "{}",
        run.stderr
    );

    npy("cut.npy", 4, CHANNELS, Some(128 + 4 * CHANNELS * 2 + 10));
    let run = fit(d, "cut.npy");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(r#"spectrum "2" (row 2): the file ends before this row"#),
        "{}",
        run.stderr
    );
    let table = Table::read(&d.join("out.csv"));
    assert_eq!(table.rows.len(), 4);
    assert_row(&table, "0", None);
    assert_row(&table, "1", None);
    assert_row(&table, "2", Some("truncated"));
    assert_row(&table, "3", Some("truncated"));
}

#[test]
fn empty_and_unreadable_files_stop_with_a_named_error() {
    let dir = setup();
    let d = dir.path();
    fs::write(d.join("empty.csv"), "").unwrap();
    fs::write(d.join("empty.npy"), "").unwrap();
    fs::write(d.join("header.csv"), "two_theta,s1\n").unwrap();
    fs::write(d.join("data.txt"), "1 2\n").unwrap();

    for (file, message) in [
        ("empty.csv", "empty.csv: the file is empty"),
        ("empty.npy", "empty.npy: the file is empty"),
        ("header.csv", "header.csv: no data rows after the header"),
        ("data.txt", "data.txt: unknown extension"),
        ("missing.csv", "missing.csv: No such file"),
    ] {
        let run = fit(d, file);
        assert_eq!(run.code, 1, "{file}");
        assert!(run.stderr.contains(message), "{file}: {}", run.stderr);
    }
}

#[test]
fn a_rank_deficient_library_names_the_dependent_phase() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("two_theta,a,b,twice_a\n");
    for i in 0..CHANNELS {
        let a = phase(0, i);
        csv += &format!("{},{a},{},{}\n", axis(i), phase(1, i), 2.0 * a);
    }
    fs::write(d.join("library.csv"), csv).unwrap();
    write_spectra(d, 1, |_, _| None);

    let run = fit(d, "spectra.csv");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains(r#"library.csv: library is rank-deficient: phase "twice_a" (column 4)"#),
        "{}",
        run.stderr
    );
}

#[test]
fn library_cells_are_checked_with_row_and_phase() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("library.csv"),
        "two_theta,a,b\n1,0.5,1\n2,oops,1\n3,1,1\n",
    )
    .unwrap();
    write_spectra(d, 1, |_, _| None);

    let run = fit(d, "spectra.csv");
    assert_eq!(run.code, 1);
    let expected =
        r#"library.csv: phase "a" (column 2): channel 1 (row 3) is not a number: "oops""#;
    assert!(run.stderr.contains(expected), "{}", run.stderr);
}

#[test]
fn msa_faults_fail_that_file_and_the_directory_goes_on() {
    let dir = setup();
    let d = dir.path();
    fs::create_dir(d.join("msa")).unwrap();
    let msa = |name: &str, npoints: usize, end: bool, bad: Option<usize>| {
        let mut text = format!(
            "#FORMAT : EMSA/MAS Spectral Data File\n#TITLE : {name}\n#NPOINTS : {npoints}\n\
             #DATATYPE : Y\n#XPERCHAN : 0.5\n#OFFSET : 20\n#SPECTRUM : data\n"
        );
        for i in 0..CHANNELS {
            if Some(i) == bad {
                text += "NaN,\n";
            } else {
                text += &format!("{},\n", mixture(i));
            }
        }
        if end {
            text += "#ENDOFDATA :\n";
        }
        fs::write(d.join("msa").join(format!("{name}.msa")), text).unwrap();
    };
    msa("a_good", CHANNELS, true, None);
    msa("b_npoints", CHANNELS + 1, true, None);
    msa("c_truncated", CHANNELS, false, None);
    msa("d_nan", CHANNELS, true, Some(42));

    let run = fit(d, "msa");
    assert_eq!(run.code, 2);
    let err = &run.stderr;
    assert!(
        err.contains(
            r#"b_npoints.msa: spectrum "b_npoints": #NPOINTS is 101 but 100 values follow"#
        ),
        "{err}"
    );
    assert!(
        err.contains(r#"spectrum "c_truncated": #ENDOFDATA missing"#),
        "{err}"
    );
    assert!(
        err.contains(r#"spectrum "d_nan": channel 42 (line 50) is NaN"#),
        "{err}"
    );

    let table = Table::read(&d.join("out.csv"));
    assert_eq!(table.rows.len(), 4);
    assert_row(&table, "a_good", None);
    assert_row(&table, "d_nan", Some("is NaN"));
}

#[test]
fn conflicting_fit_options_are_refused() {
    let dir = setup();
    let d = dir.path();
    write_spectra(d, 1, |_, _| None);

    for (extra, message) in [
        (&["--method", "ridge"][..], "--method ridge needs --lambda"),
        (
            &["--lambda", "1"][..],
            "--lambda applies to --method ridge only",
        ),
        (
            &["--method", "ridge", "--lambda", "-1"][..],
            "--lambda must be finite and non-negative",
        ),
        (&["--background", "9"][..], "--background 9"),
    ] {
        let run = unmix(d, &[&FIT_CSV[..], extra].concat());
        assert_eq!(run.code, 1, "{extra:?}");
        assert!(run.stderr.contains(message), "{extra:?}: {}", run.stderr);
    }
}

/// Runs `unmix fit` with the library `library` on `spectra.csv`.
fn fit_library(d: &Path, library: &str) -> Run {
    unmix(
        d,
        &["fit", "--library", library, "--spectra", "spectra.csv"],
    )
}

/// `text` with its lines ended by CRLF instead of LF.
fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

#[test]
fn crlf_files_report_the_same_rows_as_lf_files() {
    let dir = setup();
    let d = dir.path();
    write_spectra(d, 2, |s, i| (s == 2 && i == 9).then(|| "NaN".into()));
    let text = fs::read_to_string(d.join("spectra.csv")).unwrap();
    fs::write(d.join("crlf.csv"), crlf(&text)).unwrap();

    for file in ["spectra.csv", "crlf.csv"] {
        let run = fit(d, file);
        assert_eq!(run.code, 2, "{file}: {}", run.stderr);
        let expected = format!(r#"{file}: spectrum "s2" (column 3): channel 9 (row 11) is NaN"#);
        assert!(run.stderr.contains(&expected), "{}", run.stderr);
    }

    let library = fs::read_to_string(d.join("library.csv")).unwrap();
    let mut lines: Vec<String> = library.lines().map(String::from).collect();
    let mut cells: Vec<&str> = lines[10].split(',').collect();
    cells[2] = "oops";
    lines[10] = cells.join(",");
    let bad = lines.join("\n") + "\n";
    fs::write(d.join("lf_library.csv"), &bad).unwrap();
    fs::write(d.join("crlf_library.csv"), crlf(&bad)).unwrap();

    for library in ["lf_library.csv", "crlf_library.csv"] {
        let run = fit_library(d, library);
        assert_eq!(run.code, 1, "{library}");
        let expected = format!(
            r#"{library}: phase "b" (column 3): channel 9 (row 11) is not a number: "oops""#
        );
        assert!(run.stderr.contains(&expected), "{}", run.stderr);
    }
}

#[test]
fn trailing_empty_cells_as_spreadsheets_write_them_are_ignored() {
    let dir = setup();
    let d = dir.path();
    write_spectra(d, 2, |_, _| None);
    let reference = fit(d, "spectra.csv");
    assert_eq!(reference.code, 0, "{}", reference.stderr);
    let expected = fs::read(d.join("out.csv")).unwrap();

    // `1,2,3,` under the header `a,b,c`, and a comma at the end of every line, header too.
    let text = fs::read_to_string(d.join("spectra.csv")).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let rows_only = format!("{header}\n{}", rows.replace('\n', ",\n"));
    fs::write(d.join("rows.csv"), rows_only).unwrap();
    fs::write(d.join("every_line.csv"), text.replace('\n', ",,\n")).unwrap();
    for file in ["rows.csv", "every_line.csv"] {
        let run = fit(d, file);
        assert_eq!(run.code, 0, "{file}: {}", run.stderr);
        assert_eq!(fs::read(d.join("out.csv")).unwrap(), expected, "{file}");
    }

    let library = fs::read_to_string(d.join("library.csv")).unwrap();
    fs::write(d.join("library.csv"), library.replace('\n', ",\n")).unwrap();
    let run = fit(d, "spectra.csv");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fs::read(d.join("out.csv")).unwrap(), expected, "library");
}

#[test]
fn a_value_beyond_the_header_stops_the_file_naming_its_row_and_the_fix() {
    let dir = setup();
    let d = dir.path();
    write_spectra(d, 2, |_, _| None);
    let text = fs::read_to_string(d.join("spectra.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[6] += ",,5";
    fs::write(d.join("spectra.csv"), lines.join("\n") + "\n").unwrap();

    let run = fit(d, "spectra.csv");
    assert_eq!(run.code, 1);
    let expected = concat!(
        r#"spectra.csv: row 7, column 5: "5" is beyond the header's last column (3); "#,
        "name the column in the header or remove the extra cells"
    );
    assert!(run.stderr.contains(expected), "{}", run.stderr);
}

#[test]
fn files_that_are_not_utf8_text_are_refused_in_words_with_their_line() {
    let dir = setup();
    let d = dir.path();
    write_spectra(d, 2, |_, _| None);
    fs::write(d.join("library.bin"), b"\x93\xff\x00\x12\n\xfe\n").unwrap();
    let text = fs::read_to_string(d.join("spectra.csv")).unwrap();
    let (_, rows) = text.split_once('\n').unwrap();
    // "s\u{e9}" in Latin-1, then a CRLF file with a Latin-1 "\u{b5}" on line 5.
    let latin1_header = [b"two_theta,s1,s\xe9\n".as_slice(), rows.as_bytes()].concat();
    fs::write(d.join("latin1_header.csv"), latin1_header).unwrap();
    let mut lines: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
    lines[4].extend(b"\xb5");
    let latin1_cell = lines.join(&b"\r\n"[..]);
    fs::write(d.join("latin1_cell.csv"), latin1_cell).unwrap();

    let run = fit_library(d, "library.bin");
    assert_eq!(run.code, 1);
    let expected = "library.bin: not UTF-8 text at line 1, column 1: is this a CSV file";
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    assert!(
        !run.stderr.contains("Utf8"),
        "no Debug dump: {}",
        run.stderr
    );

    for (file, place) in [
        ("latin1_header.csv", "line 1, column 3"),
        ("latin1_cell.csv", "line 5, column 3"),
    ] {
        let run = fit(d, file);
        assert_eq!(run.code, 1, "{file}");
        let expected = format!("{file}: not UTF-8 text at {place}: ");
        assert!(run.stderr.contains(&expected), "{}", run.stderr);
    }
}

#[test]
fn npy_of_no_rows_says_it_holds_no_spectra() {
    let dir = setup();
    let d = dir.path();
    fs::write(d.join("none.npy"), npy_preamble("<f4", false, "(0, 128)")).unwrap();

    let run = fit(d, "none.npy");
    assert_eq!(run.code, 1);
    let expected = "none.npy: the file holds no spectra: its shape is (0, 128)";
    assert!(run.stderr.contains(expected), "{}", run.stderr);
}

#[test]
fn a_library_of_17_phases_names_the_limit_of_16() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names: Vec<String> = (0..17).map(|j| format!("p{j}")).collect();
    let mut csv = format!("two_theta,{}\n", names.join(","));
    for i in 0..CHANNELS {
        let peaks: Vec<String> = (0..17)
            .map(|j| format!("{}", (-((i as f64 - 5.0 * j as f64).powi(2)) / 8.0).exp()))
            .collect();
        csv += &format!("{},{}\n", axis(i), peaks.join(","));
    }
    fs::write(d.join("library.csv"), csv).unwrap();
    write_spectra(d, 1, |_, _| None);

    for background in [None, Some("2")] {
        let mut args = FIT_CSV.to_vec();
        args.extend(
            background
                .map(|degree| ["--background", degree])
                .iter()
                .flatten(),
        );
        let run = unmix(d, &args);
        assert_eq!(run.code, 1);
        let expected = "library.csv: 17 phases: a library holds at most 16 phases";
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn io_errors_exit_1_while_clap_usage_errors_keep_2() {
    let dir = setup();
    let d = dir.path();
    write_spectra(d, 1, |_, _| None);

    // Linux's /dev/full refuses every write with ENOSPC.
    if Path::new("/dev/full").exists() {
        let run = unmix(d, &[&FIT_CSV[..], &["--out", "/dev/full"]].concat());
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("/dev/full: writing results: "),
            "{}",
            run.stderr
        );
    }

    let run = unmix(d, &[&FIT_CSV[..], &["--no-such-option"]].concat());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("Usage:"), "{}", run.stderr);
}
