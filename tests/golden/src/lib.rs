//! Golden cases: libraries and spectra generated deterministically, fitted by the kernel, and
//! reported as raw `f32` bits.
//!
//! The same code runs on the host (`unmix-tests` checks it against `expected.txt`) and on
//! every bare-metal target (`tests/targets` prints it under QEMU). Inputs are generated from
//! integers and `libm` only, so they are themselves identical everywhere; any difference in a
//! printed line is a difference in the kernel's arithmetic on that target.

#![no_std]

/// Receives each case: its name and the values whose bits must match on every target.
pub trait Report {
    /// Called once per case, in a fixed order.
    fn case(&mut self, name: &str, values: &[f32]);
}

/// Runs every golden case in order, handing each result to `report`. Returns the case count.
pub fn run_all(report: &mut impl Report) -> usize {
    let mut cases = 0;

    cases += pass_case(report);

    cases
}

/// The bare multiply-add pass on a small basis.
fn pass_case(report: &mut impl Report) -> usize {
    const BASIS: [f32; 8] = [1.0, 0.5, 2.0, 0.25, 3.0, 0.125, 4.0, 0.0625];
    const SPECTRUM: [f32; 4] = [0.1, 0.2, 0.3, 0.4];

    let mut projection = [0.0f32; 2];
    unmix::pass::multiply_add_pass(&BASIS, &SPECTRUM, &mut projection);
    report.case("pass", &projection);
    1
}

/// Formats one case as the line every target prints: `case <name> <hex bits>...`.
pub fn write_line(
    out: &mut impl core::fmt::Write,
    name: &str,
    values: &[f32],
) -> core::fmt::Result {
    write!(out, "case {name}")?;
    for value in values {
        write!(out, " {:08x}", value.to_bits())?;
    }
    writeln!(out)
}
