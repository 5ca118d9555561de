//! End-to-end tests of `unmix simulate`, `fit`, `inspect` and `prepare`: the built binary on
//! files it simulated in a temporary directory.

mod common;

use std::fs;
use std::path::Path;

use common::{FIT_CSV, Table, npy_preamble, unmix, unmix_ok};
use unmix::{Background, FitOptions, Method, PreparedView, Shape};
use unmix_host::formats::{self, Library};

fn simulate(dir: &Path, count: &str, extra: &[&str]) {
    let mut args = vec![
        "simulate",
        "--channels",
        "1024",
        "--phases",
        "4",
        "--count",
        count,
    ];
    args.extend_from_slice(extra);
    unmix_ok(dir, &args);
}

/// Columns of a simulated spectra CSV, read independently of the host's reader.
fn spectra_columns(path: &Path) -> (Vec<String>, Vec<Vec<f32>>) {
    let table = Table::read(path);
    let names = table.header[1..].to_vec();
    let columns = (1..table.header.len())
        .map(|j| {
            table
                .rows
                .iter()
                .map(|r| r[j].parse::<f32>().unwrap())
                .collect()
        })
        .collect();
    (names, columns)
}

fn prepare(library: &Library, background: Background) -> (Shape, Vec<f32>) {
    let shape = Shape::new(library.channels(), library.phases(), background);
    let mut storage = vec![0.0f32; shape.prepared_len()];
    let mut scratch = vec![0.0f64; shape.prepare_scratch_len()];
    unmix::prepare(shape, &library.data, &mut storage, &mut scratch).expect("library prepares");
    (shape, storage)
}

fn bits(cell: &str) -> u32 {
    cell.parse::<f32>()
        .unwrap_or_else(|_| panic!("{cell:?} is not an f32"))
        .to_bits()
}

/// Standard deviations of the least-squares coefficients under Poisson noise of known mean
/// `lambda`: `sqrt(sum_i A_ji^2 lambda_i)` with `A = (X^T X)^-1 X^T`, in `f64`. `X` holds the
/// phases and the Chebyshev terms `T_0 .. T_degree`.
fn poisson_sigmas(library: &Library, lambda: &[f64], degree: usize) -> Vec<f64> {
    let (n, k) = (library.channels(), library.phases());
    let c = k + degree + 1;
    let x: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let t = (2.0 * i as f64 - (n - 1) as f64) / (n - 1) as f64;
            let mut row: Vec<f64> = library.data[i * k..(i + 1) * k]
                .iter()
                .map(|&v| v.into())
                .collect();
            row.extend(
                [1.0, t, 2.0 * t * t - 1.0, 4.0 * t * t * t - 3.0 * t]
                    .iter()
                    .take(degree + 1),
            );
            row
        })
        .collect();

    // Gauss-Jordan inverse of X^T X (well conditioned here; f64 leaves ~1e-12 error).
    let mut g = vec![vec![0.0f64; 2 * c]; c];
    for (a, row) in g.iter_mut().enumerate() {
        for b in 0..c {
            row[b] = x.iter().map(|r| r[a] * r[b]).sum();
        }
        row[c + a] = 1.0;
    }
    for p in 0..c {
        let pivot = g[p][p];
        g[p].iter_mut().for_each(|v| *v /= pivot);
        for r in 0..c {
            if r != p {
                let f = g[r][p];
                let pivot_row = g[p].clone();
                g[r].iter_mut()
                    .zip(&pivot_row)
                    .for_each(|(v, &q)| *v -= f * q);
            }
        }
    }

    (0..c)
        .map(|j| {
            let var: f64 = x
                .iter()
                .zip(lambda)
                .map(|(r, &l)| {
                    let a: f64 = (0..c).map(|b| g[j][c + b] * r[b]).sum();
                    a * a * l
                })
                .sum();
            var.sqrt()
        })
        .collect()
}

/// The tolerance is the estimator's own noise: 6 standard deviations of the least-squares
/// coefficient under the simulated Poisson noise (computed from the true means in `f64`),
/// a Gaussian tail probability of 2e-9 per value. At 1e6 counts that is a few thousand
/// counts, so fractions are checked to 0.005 as well.
#[test]
fn fitted_fractions_match_the_simulated_truth() {
    let dir = tempfile::tempdir().unwrap();
    simulate(dir.path(), "24", &["--counts", "1e6", "--seed", "11"]);

    let run = unmix_ok(dir.path(), &[&FIT_CSV[..], &["--background", "2"]].concat());
    fs::write(dir.path().join("out.csv"), &run.stdout).unwrap();
    let out = Table::read(&dir.path().join("out.csv"));
    let truth = Table::read(&dir.path().join("truth.csv"));
    let truth_rows = truth.by_name();
    let library = formats::read_library(dir.path().join("library.csv")).unwrap();
    assert_eq!(out.rows.len(), 24);

    let phases = &truth.header[1..5];
    for row in &out.rows {
        let t = &truth_rows[&row[0]];
        assert_eq!(row[out.column("status")], "converged");

        let n = library.channels();
        let b: Vec<f64> = (0..3)
            .map(|d| truth.number(t, &format!("background_{d}")))
            .collect();
        let lambda: Vec<f64> = (0..n)
            .map(|i| {
                let tt = (2.0 * i as f64 - (n - 1) as f64) / (n - 1) as f64;
                let signal: f64 = phases
                    .iter()
                    .enumerate()
                    .map(|(j, p)| truth.number(t, p) * f64::from(library.data[i * 4 + j]))
                    .sum();
                signal + b[0] + b[1] * tt + b[2] * (2.0 * tt * tt - 1.0)
            })
            .collect();
        let sigma = poisson_sigmas(&library, &lambda, 2);

        for (j, p) in phases.iter().enumerate() {
            let w = out.number(row, p);
            let w_true = truth.number(t, p);
            let tol = 6.0 * sigma[j];
            assert!(
                tol > 0.0 && tol < 1e4,
                "{}: 6 sigma of {p} is {tol}",
                row[0]
            );
            assert!(
                (w - w_true).abs() <= tol,
                "{} {p}: {w} vs {w_true} (6 sigma {tol})",
                row[0]
            );

            let f = out.number(row, &format!("fraction_{p}"));
            let f_true = truth.number(t, &format!("fraction_{p}"));
            assert!(
                (f - f_true).abs() < 5e-3,
                "{} {p}: fraction {f} vs {f_true}",
                row[0]
            );
        }
        let reduced = out.number(row, "reduced_chi_square");
        assert!(
            (0.8..1.25).contains(&reduced),
            "{}: reduced chi-square {reduced}",
            row[0]
        );
    }
}

#[test]
fn output_equals_the_kernel_bit_for_bit_for_every_method() {
    let dir = tempfile::tempdir().unwrap();
    simulate(dir.path(), "24", &["--seed", "5", "--trace", "0.3"]);
    let library = formats::read_library(dir.path().join("library.csv")).unwrap();
    let (names, columns) = spectra_columns(&dir.path().join("spectra.csv"));

    let cases: [(&[&str], Method, Background); 4] = [
        (
            &["--background", "2"],
            Method::Nnls,
            Background::Chebyshev { degree: 2 },
        ),
        (&["--method", "fcls"], Method::Fcls, Background::None),
        (
            &["--method", "lstsq", "--background", "1"],
            Method::Lstsq,
            Background::Chebyshev { degree: 1 },
        ),
        (
            &["--method", "ridge", "--lambda", "0.5"],
            Method::Ridge { lambda: 0.5 },
            Background::None,
        ),
    ];
    for (flags, method, background) in cases {
        let mut args = FIT_CSV.to_vec();
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--out", "out.csv"]);
        unmix_ok(dir.path(), &args);
        let out = Table::read(&dir.path().join("out.csv"));

        let (shape, storage) = prepare(&library, background);
        let view = PreparedView::new(shape, &storage).unwrap();
        let options = FitOptions::new(method).with_chi2(true);
        for (row, (name, y)) in out.rows.iter().zip(names.iter().zip(&columns)) {
            let fit = view.fit(y, &options).expect("the kernel fits");
            assert_eq!(&row[0], name, "input order is kept");

            let mut expected: Vec<f32> = fit.phases().to_vec();
            expected.push(fit.residual_norm());
            expected.extend(fit.fractions());
            expected.extend(fit.standard_errors().iter().take(library.phases()));
            expected.extend(fit.background());
            expected.extend(fit.standard_errors().iter().skip(library.phases()));
            expected.push(fit.chi2().unwrap());
            expected.push(fit.reduced_chi2().unwrap());

            for (j, &e) in expected.iter().enumerate() {
                let cell = &row[1 + j];
                assert_eq!(
                    bits(cell),
                    e.to_bits(),
                    "{args:?}: {name} {}: {cell} vs {e}",
                    out.header[1 + j]
                );
            }
            assert_eq!(out.number(row, "iterations") as u32, fit.iterations());
        }
    }
}

/// The same counts in every reader's format give the same fitted bits.
#[test]
fn every_spectra_format_gives_the_same_fits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulate(d, "3", &["--seed", "8"]);
    for out in ["spectra.npy", "spectra.msa"] {
        unmix_ok(
            d,
            &[
                "simulate",
                "--library",
                "library.csv",
                "--count",
                "3",
                "--seed",
                "8",
                "--out-spectra",
                out,
            ],
        );
    }
    let (_, columns) = spectra_columns(&d.join("spectra.csv"));
    let one = vec![columns[0].clone()];
    let npy = |name: &str, f: &dyn Fn(f32) -> Vec<u8>, descr: &str, fortran: bool| {
        write_npy(&d.join(name), &columns, descr, fortran, f);
    };
    npy(
        "f64.npy",
        &|v| f64::from(v).to_le_bytes().to_vec(),
        "<f8",
        false,
    );
    npy(
        "u16.npy",
        &|v| (v as u16).to_le_bytes().to_vec(),
        "<u2",
        false,
    );
    npy(
        "u32be.npy",
        &|v| (v as u32).to_be_bytes().to_vec(),
        ">u4",
        false,
    );
    npy(
        "i32f.npy",
        &|v| (v as i32).to_le_bytes().to_vec(),
        "<i4",
        true,
    );
    write_npy(&d.join("one.npy"), &one, "<f4", false, &|v| {
        v.to_le_bytes().to_vec()
    });

    let fit = |spectra: &str| -> Vec<Vec<String>> {
        unmix_ok(
            d,
            &[
                "fit",
                "--library",
                "library.csv",
                "--spectra",
                spectra,
                "--out",
                "o.csv",
            ],
        );
        let table = Table::read(&d.join("o.csv"));
        table.rows.into_iter().map(|r| r[1..].to_vec()).collect()
    };
    let reference = fit("spectra.csv");
    assert_eq!(reference.len(), 3);

    for input in ["spectra.npy", "f64.npy", "u16.npy", "u32be.npy", "i32f.npy"] {
        assert_eq!(fit(input), reference, "{input}");
    }
    fs::rename(d.join("spectra"), d.join("msa_dir")).unwrap();
    unmix_ok(
        d,
        &[
            "simulate",
            "--library",
            "library.csv",
            "--count",
            "3",
            "--seed",
            "8",
            "--out-spectra",
            "spectra.xy",
        ],
    );
    assert_eq!(fit("spectra"), reference, "directory of .xy files");
    assert_eq!(fit("msa_dir"), reference, "directory of .msa files");
    assert_eq!(fit("spectra/s1.xy"), reference[..1], "one .xy file");
    assert_eq!(fit("msa_dir/s1.msa"), reference[..1], "one .msa file");
    assert_eq!(fit("one.npy"), reference[..1], "a one-row .npy file");
}

/// Writes a 2-D `.npy` (version 1.0) by hand ([`npy_preamble`]).
fn write_npy(
    path: &Path,
    rows: &[Vec<f32>],
    descr: &str,
    fortran: bool,
    f: &dyn Fn(f32) -> Vec<u8>,
) {
    let (m, n) = (rows.len(), rows[0].len());
    let mut bytes = npy_preamble(descr, fortran, &format!("({m}, {n})"));
    if fortran {
        for i in 0..n {
            for row in rows {
                bytes.extend(f(row[i]));
            }
        }
    } else {
        for row in rows {
            for &v in row {
                bytes.extend(f(v));
            }
        }
    }
    fs::write(path, bytes).unwrap();
}

#[test]
fn inspect_reports_the_kernel_diagnostics_and_flags_similar_phases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("two_theta,a,b,c\n");
    for i in 0..200 {
        let x = i as f64 / 10.0;
        let a = (-(x - 5.0) * (x - 5.0)).exp();
        let b = (-(x - 5.05) * (x - 5.05)).exp();
        let c = (-(x - 14.0) * (x - 14.0) / 4.0).exp();
        csv += &format!("{x},{a},{b},{c}\n");
    }
    fs::write(d.join("lib.csv"), csv).unwrap();

    let run = unmix_ok(
        d,
        &[
            "inspect",
            "--library",
            "lib.csv",
            "--json",
            "--plot",
            "scree.png",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    let library = formats::read_library(d.join("lib.csv")).unwrap();
    let kernel =
        unmix::svd::diagnostics::library_diagnostics(&library.data, 200, 3).expect("diagnoses");

    let values: Vec<f64> = serde_json::from_value(json["singular_values"].clone()).unwrap();
    assert_eq!(values, kernel.singular_values[..3]);
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "descending");
    let scaled: Vec<f64> =
        serde_json::from_value(json["scaled"]["singular_values"].clone()).unwrap();
    assert_eq!(scaled, kernel.scaled_singular_values[..3]);
    assert_eq!(json["rank"], 3);
    assert_eq!(json["scaled"]["rank"], 3);
    assert_eq!(json["condition_number"].as_f64().unwrap(), kernel.condition);
    assert_eq!(
        json["scaled"]["condition_number"].as_f64().unwrap(),
        kernel.scaled_condition
    );
    assert_eq!(json["similar_pairs"][0]["a"], "a");
    assert_eq!(json["similar_pairs"][0]["b"], "b");
    let warnings = json["warnings"].to_string();
    assert!(
        warnings.contains("\\\"a\\\" and \\\"b\\\" are nearly collinear"),
        "{warnings}"
    );

    let png = fs::read(d.join("scree.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000);

    let text = unmix_ok(d, &["inspect", "--library", "lib.csv"]).stdout;
    assert!(text.contains("a / b: 0.99"), "{text}");
}

#[test]
fn prepare_writes_the_kernel_byte_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulate(d, "1", &[]);
    unmix_ok(
        d,
        &[
            "prepare",
            "--library",
            "library.csv",
            "--background",
            "1",
            "--out",
            "lib.bin",
        ],
    );

    let bytes = fs::read(d.join("lib.bin")).unwrap();
    let library = formats::read_library(d.join("library.csv")).unwrap();
    let (shape, storage) = prepare(&library, Background::Chebyshev { degree: 1 });
    let view = PreparedView::new(shape, &storage).unwrap();
    let mut expected = vec![0u8; view.bytes_len()];
    view.to_bytes(&mut expected).unwrap();
    assert_eq!(bytes, expected);

    let header = unmix::bytes::read_header(&bytes).unwrap();
    let mut loaded = vec![0.0f32; header.shape.prepared_len()];
    let back = PreparedView::from_bytes(&bytes, &mut loaded).expect("loads");
    assert_eq!(back.library_id(), view.library_id());
}

#[test]
fn fit_plot_is_a_png() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulate(d, "2", &[]);
    let options = ["--background", "2", "--out", "o.csv", "--plot", "fit.png"];
    let run = unmix_ok(d, &[&FIT_CSV[..], &options].concat());

    let png = fs::read(d.join("fit.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000);
    assert!(run.stderr.contains("2 spectra, 0 failed"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "the table went to --out");
}

#[test]
fn a_plot_that_cannot_be_written_leaves_the_table_and_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulate(d, "2", &[]);
    let options = ["--out", "o.csv", "--plot", "missing/fit.png"];

    let run = unmix(d, &[&FIT_CSV[..], &options].concat());

    assert_eq!(run.code, 1, "{}", run.stderr);
    let expected = "unmix: missing/fit.png: cannot write the plot: No such file or directory";
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    assert!(
        !run.stderr.contains("Error("),
        "no Debug dump: {}",
        run.stderr
    );
    assert!(run.stderr.contains("2 spectra, 0 failed"), "{}", run.stderr);
    assert_eq!(Table::read(&d.join("o.csv")).rows.len(), 2);
}

#[test]
fn simulate_refuses_an_unknown_spectra_extension_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["simulate", "--channels", "64", "--count", "2"];

    let run = unmix(d, &[&args[..], &["--out-spectra", "q.foo"]].concat());

    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim(),
        "unmix: q.foo: spectra are written as .csv, .npy, .xy or .msa"
    );
    let written: Vec<_> = fs::read_dir(d).unwrap().collect();
    assert!(written.is_empty(), "wrote {written:?}");
}

#[test]
fn simulate_is_reproducible_and_honours_fixed_fractions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "simulate",
        "--channels",
        "300",
        "--fractions",
        "0.6,0.3,0.1",
        "--count",
        "4",
        "--seed",
        "9",
    ];
    unmix_ok(d, &args);
    let first = fs::read(d.join("spectra.csv")).unwrap();
    unmix_ok(d, &args);
    assert_eq!(
        fs::read(d.join("spectra.csv")).unwrap(),
        first,
        "same seed, same bytes"
    );

    let truth = Table::read(&d.join("truth.csv"));
    for row in &truth.rows {
        let f: Vec<f64> = ["austenite", "ferrite", "cementite"]
            .iter()
            .map(|p| truth.number(row, &format!("fraction_{p}")))
            .collect();
        for (got, want) in f.iter().zip([0.6, 0.3, 0.1]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    let bad = unmix(d, &["simulate", "--fractions", "0.5,0.5", "--phases", "3"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("--fractions has 2 values for 3 phases"),
        "{}",
        bad.stderr
    );
}
