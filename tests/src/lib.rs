//! Cross-target checks for unmix: the same inputs through the host and the bare-metal targets.
//!
//! The golden cases live in `unmix-golden` (`tests/golden`). Their expected bits are in
//! `tests/golden/expected.txt`, produced on the host by [`host_lines`]; the test in
//! `tests/golden.rs` checks the host against it, and `cargo xtask test` checks the Cortex-M4F,
//! Cortex-M0 and RISC-V builds against it under QEMU. After a deliberate change of the
//! kernel's arithmetic, regenerate it with `UNMIX_BLESS=1 cargo test -p unmix-tests`.

use std::fmt::Write as _;

/// Path of the checked-in expectation, relative to this crate.
pub const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/expected.txt");

/// Collects the golden cases as the text lines every target prints.
struct Lines(String);

impl unmix_golden::Report for Lines {
    fn case(&mut self, name: &str, words: &[u32]) {
        // Writing to a String cannot fail.
        let _ = unmix_golden::write_line(&mut self.0, name, words);
    }
}

/// The golden cases computed on this host, one `case ...` line each.
pub fn host_lines() -> String {
    let mut lines = Lines(String::new());
    let cases = unmix_golden::run_all(&mut lines);
    let _ = writeln!(lines.0, "done {cases}");
    lines.0
}
