//! Where spectra come from: the detector-facing side of the firmware.
//!
//! The fitting path ([`crate::server::Server::fit_from`]) takes any [`SpectrumSource`]. Here
//! the only source is the wire: the samples inside a fit request, read from the UART
//! ([`WireSamples`]). A board whose detector is read by an ADC, SPI or DMA implements the
//! trait over its readout buffer and calls the same fitting path, then sends the
//! [`unmix_protocol::FitResult`] it returns over its link; the arithmetic, and so the bits,
//! are the same whichever way the spectrum arrived.

use unmix_protocol::{ErrorKind, SampleFormat, decode_samples};

/// A source of spectra.
pub trait SpectrumSource {
    /// Writes one spectrum of exactly `out.len()` channels into `out`.
    ///
    /// # Errors
    /// The [`ErrorKind`] to report: typically [`ErrorKind::WrongLength`] when the source
    /// holds another number of channels, or [`ErrorKind::NonFinite`] naming a bad channel.
    fn read_spectrum(&mut self, out: &mut [f32]) -> Result<(), ErrorKind>;
}

/// Samples carried in a fit request: raw little-endian values borrowed from the frame.
pub struct WireSamples<'a> {
    /// The encoding of `bytes`.
    pub format: SampleFormat,
    /// The samples.
    pub bytes: &'a [u8],
}

impl SpectrumSource for WireSamples<'_> {
    fn read_spectrum(&mut self, out: &mut [f32]) -> Result<(), ErrorKind> {
        decode_samples(self.format, self.bytes, out)
    }
}
