//! `unmix stream`: send spectra to a device (QEMU or a serial port), read back the fits it
//! computes and write them as `unmix fit` would.
//!
//! Placeholder until the device protocol lands: [`run`] reports that it is not built yet.

use crate::cli::StreamArgs;

/// Runs `unmix stream` with `args`.
///
/// # Errors
/// Always, for now: the command is not built yet.
pub fn run(args: &StreamArgs) -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    Err(format!("unmix stream --device {}: not built yet", args.device).into())
}
