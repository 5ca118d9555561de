//! `unmix-host`: the desktop side of the unmix kernel, as a library for the `unmix` binary,
//! the `unmix stream` command and the tests.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`formats`] | read libraries (CSV) and spectra (CSV, `.npy`, `.xy`, EMSA/MSA) |
//! | [`fitting`] | fit settings, the prepared library, the fit of one spectrum |
//! | [`output`] | the result CSV, byte for byte the same whoever computed the fits |
//! | [`batch`] | fit a whole file on all cores, streaming, in input order |
//! | [`inspect`] | library diagnostics (singular values, conditioning, similar phases) |
//! | [`simulate`] | synthetic detector data with known truth |
//! | [`plot`] | PNG plots of a fit and of a library's singular values |
//! | [`cli`] | the command-line arguments shared by the subcommands |
//! | [`stream`] | `unmix stream`: the same fits computed by a device |
//!
//! The arithmetic of every fit is the kernel's (`unmix`); this crate reads, checks, schedules
//! and writes.

pub mod batch;
pub mod cli;
pub mod fitting;
pub mod formats;
pub mod inspect;
pub mod output;
pub mod plot;
pub mod simulate;
pub mod stream;
