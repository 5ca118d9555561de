//! What the serial drivers share: their one error.

use embedded_io::ErrorKind;

/// A received byte was lost because the one before it was still unread (receive overrun).
/// The frame it belonged to then fails its CRC and is answered with an error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub struct Overrun;

impl core::fmt::Display for Overrun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("serial receive overrun")
    }
}

impl core::error::Error for Overrun {}

impl embedded_io::Error for Overrun {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}
