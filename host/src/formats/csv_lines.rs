//! File lines of CSV records, for messages.
//!
//! The csv crate counts a record's line as the number of `\n` bytes read before the record
//! starts. A CRLF file ends each record at its `\r`, so the `\n` is read with the next
//! record and every line after the first is reported one too low; blank and comment lines
//! that the reader skips before a record are also counted into the record's start.
//! [`LineIndex`] sits between the file and the csv reader instead, notes where each line
//! starts (a line ends at `\n`, `\r\n` or a lone `\r`) and whether the reader skips it, and
//! maps a record's byte position to the line its first cell is on.

use std::io::{self, Read};

/// A reader that passes bytes through unchanged and indexes the lines they form.
pub struct LineIndex<R> {
    inner: R,
    /// The comment byte the csv reader was given: a line starting with it is skipped.
    comment: u8,
    /// Bytes read so far.
    read: u64,
    /// Byte offset of the start of each line seen; `starts[0]` is line 1.
    starts: Vec<u64>,
    /// Whether the csv reader skips each line (empty, or a comment); one shorter than
    /// `starts` while the first byte of the last line has not arrived.
    skipped: Vec<bool>,
    /// The previous byte was a `\r`, so a `\n` now completes that line break.
    after_cr: bool,
}

impl<R: Read> LineIndex<R> {
    /// Indexes the lines of `inner`; lines starting with `comment` count as skipped.
    pub fn new(inner: R, comment: u8) -> Self {
        LineIndex {
            inner,
            comment,
            read: 0,
            starts: vec![0],
            skipped: Vec::new(),
            after_cr: false,
        }
    }

    /// The 1-based line of the record whose position is `byte` (as the csv crate reports
    /// it: at or before the record's first byte, never inside an earlier record's text).
    pub fn line_of(&self, byte: u64) -> u64 {
        let mut line = self.starts.partition_point(|&start| start < byte);
        while self.skipped.get(line) == Some(&true) {
            line += 1;
        }
        line as u64 + 1
    }

    fn index(&mut self, bytes: &[u8]) {
        for (at, &b) in (self.read..).zip(bytes) {
            if self.after_cr && b == b'\n' {
                // The line break began at the `\r`; the next line starts after the `\n`.
                self.after_cr = false;
                *self.starts.last_mut().expect("line 1 is always there") = at + 1;
                continue;
            }

            self.after_cr = b == b'\r';
            if self.skipped.len() < self.starts.len() {
                let skipped = b == b'\n' || b == b'\r' || b == self.comment;
                self.skipped.push(skipped);
            }
            if b == b'\n' || b == b'\r' {
                self.starts.push(at + 1);
            }
        }
        self.read += bytes.len() as u64;
    }
}

impl<R: Read> Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.index(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of each record as the csv crate, configured as the host's reader, reads
    /// `text`, fed through the index in chunks of `chunk` bytes.
    fn record_lines(text: &[u8], chunk: usize) -> Vec<(String, u64)> {
        struct Chunked<'a>(&'a [u8], usize);
        impl Read for Chunked<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }

        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .from_reader(LineIndex::new(Chunked(text, chunk), b'#'));
        let mut lines = Vec::new();
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).unwrap() {
            let byte = record.position().unwrap().byte();
            lines.push((record[0].to_string(), reader.get_ref().line_of(byte)));
        }
        lines
    }

    #[test]
    fn records_get_their_own_line_whatever_the_line_ending() {
        let lf = "# note\nh\n1\n\n2\n# later\n3\n";
        let expected: Vec<(String, u64)> = [("h", 2), ("1", 3), ("2", 5), ("3", 7)]
            .iter()
            .map(|&(cell, line)| (cell.to_string(), line))
            .collect();

        for ending in ["\n", "\r\n"] {
            let text = lf.replace('\n', ending);
            // Chunks of 1 byte split every `\r\n` between two reads.
            for chunk in [1, 2, 3, 4096] {
                let got = record_lines(text.as_bytes(), chunk);
                assert_eq!(got, expected, "ending {ending:?}, chunks of {chunk}");
            }
        }
    }

    #[test]
    fn lone_carriage_returns_end_lines_too() {
        // No comment here: the csv crate ends a comment at `\n` only.
        let got = record_lines(b"h\r1\r\r2\r", 1);

        assert_eq!(
            got,
            [
                ("h".to_string(), 1),
                ("1".to_string(), 2),
                ("2".to_string(), 4)
            ]
        );
    }

    #[test]
    fn a_quoted_cell_over_several_lines_keeps_the_line_of_its_record() {
        let text = "a,\"x\n\n#y\"\nb,1\n";
        let got = record_lines(text.as_bytes(), 4096);

        assert_eq!(got, [("a".to_string(), 1), ("b".to_string(), 4)]);
    }
}
