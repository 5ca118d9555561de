//! Cases found by fuzzing the readers (`fuzz/`, target `host_readers`), each named after the
//! failure it pins.

mod common;

use common::npy_preamble;
use unmix_host::formats::read_spectra;

/// A version-1 `.npy` file of `float32` values: the preamble, then `data`.
fn npy(shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
    let mut bytes = npy_preamble("<f4", fortran, shape);
    bytes.extend(data);
    bytes
}

/// The error message of reading `bytes` as a `.npy` file, or `None` when it opened.
fn open_error(bytes: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spectra.npy");
    std::fs::write(&path, bytes).unwrap();
    read_spectra(&path).err().map(|e| e.to_string())
}

/// A 100-byte file whose header promised rows of 10^12 channels made the reader allocate a
/// 4 TB row buffer, and the process aborted.
#[test]
fn npy_header_with_rows_longer_than_the_file_is_refused_before_allocating() {
    let bytes = npy("(1, 1000000000000)", false, &[0; 16]);

    let error = open_error(&bytes).expect("the header cannot be read");

    assert!(error.contains("longer than the whole file"), "{error}");
}

/// 2^62 channels of 4 bytes overflowed the row's byte count: a panic in a debug build, a
/// division by zero in release.
#[test]
fn npy_row_byte_count_that_overflows_is_refused_without_a_panic() {
    let bytes = npy("(1, 4611686018427387904)", false, &[0; 16]);

    let error = open_error(&bytes).expect("the header cannot be read");

    assert!(error.contains("longer than the whole file"), "{error}");
}

/// A Fortran-order array is read whole: its size is checked against the file before the
/// buffer is reserved.
#[test]
fn npy_fortran_array_larger_than_the_file_is_refused_before_allocating() {
    let bytes = npy("(1000000000000, 2)", true, &[0; 16]);

    let error = open_error(&bytes).expect("the header cannot be read");

    assert!(error.contains("shorter than its header says"), "{error}");
}

/// The check leaves honest files alone: two rows of three channels open and read.
#[test]
fn npy_rows_within_the_file_still_read() {
    let values: Vec<u8> = (0..6).flat_map(|v| (v as f32).to_le_bytes()).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spectra.npy");
    std::fs::write(&path, npy("(2, 3)", false, &values)).unwrap();

    let rows: Vec<_> = read_spectra(&path).unwrap().map(Result::unwrap).collect();

    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].values, [3.0, 4.0, 5.0]);
}

/// A header promising 10^12 rows of a few channels over a tiny file made the reader report
/// each missing row as an error, one by one: effectively without end.
#[test]
fn npy_header_promising_endless_missing_rows_is_refused() {
    let bytes = npy("(1000000000000, 2)", false, &[0; 16]);

    let error = open_error(&bytes).expect("the header cannot be read");

    assert!(error.contains("the file holds at most 2"), "{error}");
}

/// A version-2 `.npy` file declared a 4 GB header in its length field; the parser reserved
/// that much before reading it, and the process ran out of memory. (The bytes are the
/// fuzzer's, cut to the preamble and part of the header.)
#[test]
fn npy_header_length_beyond_the_file_is_refused_before_allocating() {
    let mut bytes = b"\x93NUMPY\x02\x00\x80\xff\x84\xd8".to_vec();
    bytes.extend(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 10), }  \n");

    let error = open_error(&bytes).expect("the header cannot be read");

    assert!(
        error.contains("header declares 3632594816 bytes, but only 63"),
        "{error}"
    );
}

/// The same check passes a version-2 file whose header fits: its one row reads.
#[test]
fn npy_version_2_header_within_the_file_still_reads() {
    let mut version_1 = npy("(1, 2)", false, &[0, 0, 128, 63, 0, 0, 0, 64]);
    let header_len = u16::from_le_bytes([version_1[8], version_1[9]]);
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend(u32::from(header_len).to_le_bytes());
    bytes.extend(version_1.split_off(10));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spectra.npy");
    std::fs::write(&path, bytes).unwrap();

    let rows: Vec<_> = read_spectra(&path).unwrap().map(Result::unwrap).collect();

    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].values, [1.0, 2.0]);
}

/// A file cut inside its preamble is refused with a message, not read past its end.
#[test]
fn npy_cut_inside_its_preamble_is_refused() {
    let error = open_error(b"\x93NUMPY\x02\x00\x10").expect("the preamble is cut");

    assert!(error.contains("cut short"), "{error}");
}

/// The fuzzer's shape `(0, 11000000000000, 11000000000)`: npyz, which read headers then,
/// multiplied the dimensions into strides unchecked, a panic in builds with overflow checks.
#[test]
fn npy_shape_whose_strides_would_overflow_is_refused_without_a_panic() {
    let bytes = npy("(0, 11000000000000, 11000000000)", false, &[0; 16]);

    let error = open_error(&bytes).expect("the header cannot be read");

    assert!(error.contains("array has 3 dimensions"), "{error}");
}

/// A header of 30,000 nested parentheses: npyz's literal parser stopped at its depth limit
/// and quoted all 60 kB of the line in its message.
#[test]
fn npy_header_nested_deeply_is_refused_in_a_short_message() {
    let nested = format!("{}{}", "(".repeat(30_000), ")".repeat(30_000));
    let bytes = npy(&nested, false, &[0; 16]);

    let error = open_error(&bytes).expect("the header cannot be read");

    assert!(error.contains("not one NumPy writes"), "{error}");
    assert!(error.len() < 400, "{} bytes: {error}", error.len());
}

/// A 180-byte header of nested brackets and a stray `*` kept npyz's backtracking literal
/// parser busy for more than 10 s (the fuzzer's timeout); it is refused at its first bracket.
#[test]
fn npy_header_that_made_the_literal_parser_backtrack_is_refused_at_once() {
    let mut text = b"{'1eucr': '<f6',".to_vec();
    text.extend([b'['; 24]);
    text.extend(b"#[[[[[[e':[({*1,\x902),");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((text.len() as u16).to_le_bytes());
    bytes.extend(&text);

    let error = open_error(&bytes).expect("the header cannot be read");

    assert!(error.contains("unexpected key '1eucr'"), "{error}");
}

/// A format-1 header of length 0 or 1: the preamble read already holds more than that.
#[test]
fn npy_header_shorter_than_the_bytes_read_with_the_preamble_is_refused() {
    for length in [0u8, 1] {
        let bytes = [b"\x93NUMPY\x01\x00".as_slice(), &[length, 0], b"{}\n\n"].concat();

        let error = open_error(&bytes).expect("the header cannot be read");

        assert!(error.contains(".npy"), "{error}");
    }
}
