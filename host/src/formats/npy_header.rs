//! The header of a `.npy` file (NumPy format versions 1 to 3), read in one linear pass.
//!
//! After the magic `\x93NUMPY`, the version and the header's length (2 bytes in version 1,
//! 4 in versions 2 and 3, little-endian), NumPy writes the header as the repr of a dict:
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 2048), }`, padded with spaces
//! and ending in a newline. This reader accepts that grammar (the three keys once each, in any
//! order, either quote, optional trailing commas, Python 2's `L` suffix on integers) and
//! refuses everything else, including the structured and sub-array dtypes `unmix` does not
//! read.
//!
//! It is written here rather than taken from npyz, whose general Python-literal parser
//! (py_literal, on pest) backtracks: fuzzing found a 180-byte header that kept it busy for
//! more than 10 s, nesting that exhausted its stack limit, a declared length it allocated
//! before reading (4 GB from 4 bytes) and shapes it multiplied unchecked. Here the declared
//! length is checked against the file before anything is read, and every dimension is parsed
//! with checked arithmetic.

use std::io::Read;

/// Longest header accepted. NumPy writes a few hundred bytes for the arrays read here (and
/// its own loader refuses more than 10,000 by default).
pub const HEADER_LIMIT: u64 = 1 << 16;

/// What the header says about the array that follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype string as written, e.g. `<f4`.
    pub descr: String,
    /// Column-major element order.
    pub fortran_order: bool,
    /// The dimensions, outermost first.
    pub shape: Vec<u64>,
    /// Offset of the first data byte from the start of the file.
    pub data_start: u64,
}

/// Reads the preamble and header from `reader`, positioned at the start of a file of
/// `file_len` bytes, leaving it at the first data byte.
///
/// # Errors
/// A message naming what is wrong: no magic, an unknown version, a header cut short or longer
/// than the file or [`HEADER_LIMIT`], or a header outside the grammar above.
pub fn read(reader: &mut impl Read, file_len: u64) -> Result<NpyHeader, String> {
    let mut preamble = [0u8; 8];
    read_exactly(reader, &mut preamble)?;
    if &preamble[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (no \\x93NUMPY magic at its start)".into());
    }

    let declared = match preamble[6] {
        1 => {
            let mut length = [0u8; 2];
            read_exactly(reader, &mut length)?;
            u64::from(u16::from_le_bytes(length))
        }
        2 | 3 => {
            let mut length = [0u8; 4];
            read_exactly(reader, &mut length)?;
            u64::from(u32::from_le_bytes(length))
        }
        major => {
            return Err(format!(
                ".npy format version {major} is not supported (1 to 3 are)"
            ));
        }
    };
    let preamble_len = if preamble[6] == 1 { 10 } else { 12 };

    let available = file_len.saturating_sub(preamble_len);
    if declared > available {
        return Err(format!(
            "the .npy header declares {declared} bytes, but only {available} follow the preamble"
        ));
    }
    if declared > HEADER_LIMIT {
        return Err(format!(
            "the .npy header declares {declared} bytes, more than the {HEADER_LIMIT} accepted"
        ));
    }
    let mut text = vec![0u8; declared as usize];
    read_exactly(reader, &mut text)?;

    let (descr, fortran_order, shape) = Parser { text: &text, at: 0 }
        .dict()
        .map_err(|e| format!("the .npy header is not one NumPy writes: {e}"))?;
    Ok(NpyHeader {
        descr,
        fortran_order,
        shape,
        data_start: preamble_len + declared,
    })
}

fn read_exactly(reader: &mut impl Read, buffer: &mut [u8]) -> Result<(), String> {
    reader.read_exact(buffer).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the .npy header is cut short".to_string(),
        _ => format!("cannot read the .npy header: {e}"),
    })
}

/// A cursor over the header's bytes. Every method consumes what it accepts and moves forward
/// only, so parsing is linear in the header's length.
struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    /// The dict of the three keys, then nothing but white space.
    fn dict(mut self) -> Result<(String, bool, Vec<u64>), String> {
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        self.expect(b'{')?;
        loop {
            self.skip_space();
            if self.eat(b'}') {
                break;
            }
            let key = self.string()?;
            self.skip_space();
            self.expect(b':')?;
            self.skip_space();
            let fresh = match key.as_str() {
                "descr" => descr.replace(self.string()?).is_none(),
                "fortran_order" => fortran_order.replace(self.boolean()?).is_none(),
                "shape" => shape.replace(self.tuple()?).is_none(),
                _ => return Err(format!("unexpected key '{}'", shorten(&key))),
            };
            if !fresh {
                return Err(format!("key '{key}' given twice"));
            }
            self.skip_space();
            if !self.eat(b',') {
                self.skip_space();
                self.expect(b'}')?;
                break;
            }
        }
        self.skip_space();
        if self.at != self.text.len() {
            return Err(format!(
                "unexpected bytes after the dict at byte {}",
                self.at
            ));
        }

        let missing = |key: &str| format!("key '{key}' missing");
        Ok((
            descr.ok_or_else(|| missing("descr"))?,
            fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape.ok_or_else(|| missing("shape"))?,
        ))
    }

    /// A quoted string without escapes (dtype strings and key names need none).
    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.wanted("a quoted string")),
        };
        self.at += 1;
        let start = self.at;
        while let Some(byte) = self.peek() {
            match byte {
                b'\\' => return Err(format!("escape in a string at byte {}", self.at)),
                b'\n' => break,
                _ if byte == quote => {
                    let body = &self.text[start..self.at];
                    self.at += 1;
                    return String::from_utf8(body.to_vec())
                        .map_err(|_| format!("string at byte {start} is not UTF-8"));
                }
                _ => self.at += 1,
            }
        }
        Err(format!("string at byte {start} is not closed"))
    }

    fn boolean(&mut self) -> Result<bool, String> {
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.text[self.at..].starts_with(word) {
                self.at += word.len();
                return Ok(value);
            }
        }
        Err(self.wanted("True or False"))
    }

    /// `()`, `(n,)` or `(n, m, ...)` with an optional trailing comma.
    fn tuple(&mut self) -> Result<Vec<u64>, String> {
        self.expect(b'(')?;
        let mut dimensions = Vec::new();
        loop {
            self.skip_space();
            if self.eat(b')') {
                return Ok(dimensions);
            }
            dimensions.push(self.dimension()?);
            self.skip_space();
            if !self.eat(b',') {
                self.skip_space();
                self.expect(b')')?;
                return Ok(dimensions);
            }
        }
    }

    /// A non-negative decimal integer that fits in 64 bits.
    fn dimension(&mut self) -> Result<u64, String> {
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .ok_or_else(|| format!("dimension at byte {start} does not fit in 64 bits"))?;
            self.at += 1;
        }
        if self.at == start {
            return Err(self.wanted("a dimension (a non-negative integer)"));
        }
        self.eat(b'L');
        Ok(value)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.wanted(&format!("'{}'", char::from(byte))))
        }
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn wanted(&self, what: &str) -> String {
        match self.peek() {
            Some(byte) => format!(
                "expected {what} at byte {}, found {:?}",
                self.at,
                char::from(byte)
            ),
            None => format!("expected {what} at byte {}, found the end", self.at),
        }
    }
}

/// At most 40 characters of `text`, for messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> Result<NpyHeader, String> {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((text.len() as u16).to_le_bytes());
        bytes.extend(text.as_bytes());
        read(&mut bytes.as_slice(), bytes.len() as u64)
    }

    #[test]
    fn what_numpy_writes_reads_back() {
        let h = header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2048), }    \n")
            .expect("parses");

        assert_eq!(h.descr, "<f4");
        assert!(!h.fortran_order);
        assert_eq!(h.shape, [3, 2048]);
        assert_eq!(h.data_start, 10 + 67);
    }

    #[test]
    fn one_and_zero_dimensions_keys_in_any_order_and_python_2_longs_read() {
        let h = header("{\"shape\": (5L,), \"fortran_order\": True, \"descr\": \">u2\"}\n")
            .expect("parses");
        assert_eq!(
            (h.shape.as_slice(), h.fortran_order, h.descr.as_str()),
            (&[5][..], true, ">u2")
        );

        let h = header("{'descr': '|u1', 'fortran_order': False, 'shape': ()}").expect("parses");
        assert!(h.shape.is_empty());
    }

    #[test]
    fn anything_else_is_refused_with_its_position() {
        let cases = [
            (
                "{'descr': '<f4', 'fortran_order': False}",
                "key 'shape' missing",
            ),
            (
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
                "byte 10",
            ),
            ("{'descr': '<f4', 'descr': '<f4'}", "given twice"),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
                "True or False",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
                "non-negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                "64 bits",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x",
                "after the dict",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': ((((1,)}",
                "non-negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,",
                "found the end",
            ),
        ];
        for (text, expected) in cases {
            let error = header(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
