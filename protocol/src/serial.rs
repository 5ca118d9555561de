//! Serial-line faults, and the `embedded-io` traits over a HAL's non-blocking serial port.
//!
//! [`SerialError`] is what the firmware's serial drivers report: each fault loses or damages
//! a byte of the frame being received, which then fails its CRC and gets an error reply.
//!
//! [`NbSerial`] carries any HAL's `embedded_hal_nb::serial::{Read<u8>,
//! Write<u8>}` port as an `embedded-io` byte stream, so that a board's UART serves the
//! protocol unchanged. HALs that implement `embedded-io` themselves may do it for another
//! version of it, or partly: stm32f4xx-hal's implements version 0.6, without `Read`, and with
//! a `write` that can return 0 bytes, which `embedded-io` forbids. `embedded-hal-nb` is the
//! serial interface HALs share, so the adapter is written once, here.

/// A fault of the serial line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SerialError {
    /// A received byte was lost because the one before it was still unread.
    Overrun,
    /// A byte arrived without its stop bit (a wrong baud rate, or a break).
    Framing,
    /// A byte's parity bit was wrong.
    Parity,
    /// The receiver sampled noise on the line.
    Noise,
    /// Any other fault the driver reports.
    Other,
}

impl core::fmt::Display for SerialError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SerialError::Overrun => "serial receive overrun",
            SerialError::Framing => "serial framing error",
            SerialError::Parity => "serial parity error",
            SerialError::Noise => "noise on the serial line",
            SerialError::Other => "serial line fault",
        })
    }
}

impl core::error::Error for SerialError {}

impl embedded_io::Error for SerialError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

pub use adapter::NbSerial;

mod adapter {
    use embedded_hal_nb::serial::{self, ErrorKind};
    use embedded_io::{ErrorType, Read, Write};

    use super::SerialError;

    /// A HAL serial port seen through `embedded-io`: a read waits for the first byte, then
    /// takes the bytes that have already arrived; a write waits until one byte is accepted.
    pub struct NbSerial<S> {
        port: S,
        /// A fault met after a read had taken some bytes. HALs clear a fault by reporting it,
        /// so it is kept here and returned by the next read.
        pending: Option<SerialError>,
    }

    impl<S> NbSerial<S> {
        /// Wraps `port`.
        pub fn new(port: S) -> Self {
            NbSerial {
                port,
                pending: None,
            }
        }

        /// The wrapped port.
        pub fn into_inner(self) -> S {
            self.port
        }
    }

    fn fault(error: impl serial::Error) -> SerialError {
        match error.kind() {
            ErrorKind::Overrun => SerialError::Overrun,
            ErrorKind::FrameFormat => SerialError::Framing,
            ErrorKind::Parity => SerialError::Parity,
            ErrorKind::Noise => SerialError::Noise,
            _ => SerialError::Other,
        }
    }

    impl<S: serial::ErrorType> ErrorType for NbSerial<S> {
        type Error = SerialError;
    }

    impl<S: serial::Read<u8>> Read for NbSerial<S> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, SerialError> {
            let Some((first, rest)) = buf.split_first_mut() else {
                return Ok(0);
            };
            if let Some(error) = self.pending.take() {
                return Err(error);
            }
            *first = nb::block!(self.port.read()).map_err(fault)?;

            let mut taken = 1;
            for slot in rest {
                match self.port.read() {
                    Ok(byte) => *slot = byte,
                    Err(nb::Error::WouldBlock) => break,
                    Err(nb::Error::Other(error)) => {
                        self.pending = Some(fault(error));
                        break;
                    }
                }
                taken += 1;
            }
            Ok(taken)
        }
    }

    impl<S: serial::Write<u8>> Write for NbSerial<S> {
        fn write(&mut self, buf: &[u8]) -> Result<usize, SerialError> {
            let Some(&first) = buf.first() else {
                return Ok(0);
            };
            nb::block!(self.port.write(first)).map_err(fault)?;
            Ok(1)
        }

        fn flush(&mut self) -> Result<(), SerialError> {
            nb::block!(self.port.flush()).map_err(fault)
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::{collections::VecDeque, vec::Vec};

    use embedded_hal_nb::serial::{self, ErrorKind};
    use embedded_io::{Read, Write};

    use super::{NbSerial, SerialError};

    /// One answer of the scripted port to a read or a write.
    #[derive(Clone, Copy)]
    enum Step {
        Byte(u8),
        Busy,
        Fault(ErrorKind),
    }

    /// A port that answers reads from a script and records what is written, refusing every
    /// other write attempt at first as a busy transmitter would.
    #[derive(Default)]
    struct ScriptedPort {
        reads: VecDeque<Step>,
        written: Vec<u8>,
        write_attempts: usize,
        flush_polls: usize,
    }

    #[derive(Debug)]
    struct Fault(ErrorKind);

    impl serial::Error for Fault {
        fn kind(&self) -> ErrorKind {
            self.0
        }
    }

    impl serial::ErrorType for ScriptedPort {
        type Error = Fault;
    }

    impl serial::Read<u8> for ScriptedPort {
        fn read(&mut self) -> nb::Result<u8, Fault> {
            match self.reads.pop_front() {
                Some(Step::Byte(byte)) => Ok(byte),
                Some(Step::Fault(kind)) => Err(nb::Error::Other(Fault(kind))),
                Some(Step::Busy) | None => Err(nb::Error::WouldBlock),
            }
        }
    }

    impl serial::Write<u8> for ScriptedPort {
        fn write(&mut self, byte: u8) -> nb::Result<(), Fault> {
            self.write_attempts += 1;
            if self.write_attempts % 2 == 1 {
                return Err(nb::Error::WouldBlock);
            }
            self.written.push(byte);
            Ok(())
        }

        fn flush(&mut self) -> nb::Result<(), Fault> {
            self.flush_polls += 1;
            if self.flush_polls < 3 {
                Err(nb::Error::WouldBlock)
            } else {
                Ok(())
            }
        }
    }

    fn port(reads: &[Step]) -> NbSerial<ScriptedPort> {
        NbSerial::new(ScriptedPort {
            reads: reads.iter().copied().collect(),
            ..ScriptedPort::default()
        })
    }

    #[test]
    fn a_read_waits_for_the_first_byte_then_takes_what_has_arrived() {
        use Step::{Busy, Byte};
        let mut link = port(&[Busy, Busy, Byte(1), Byte(2), Busy, Byte(3)]);
        let mut buf = [0u8; 8];

        assert_eq!(link.read(&mut buf), Ok(2));
        assert_eq!(buf[..2], [1, 2]);
        assert_eq!(link.read(&mut buf), Ok(1));
        assert_eq!(buf[0], 3);
        assert_eq!(link.read(&mut []), Ok(0));
    }

    #[test]
    fn a_fault_after_some_bytes_is_reported_by_the_next_read_and_not_lost() {
        use Step::{Busy, Byte, Fault};
        let mut link = port(&[Byte(7), Fault(ErrorKind::Overrun), Byte(8), Busy]);
        let mut buf = [0u8; 4];

        assert_eq!(link.read(&mut buf), Ok(1));
        assert_eq!(buf[0], 7);
        assert_eq!(link.read(&mut buf), Err(SerialError::Overrun));
        assert_eq!(link.read(&mut buf), Ok(1));
        assert_eq!(buf[0], 8);
    }

    #[test]
    fn a_fault_on_the_first_byte_is_reported_at_once_with_its_kind() {
        let kinds = [
            (ErrorKind::Overrun, SerialError::Overrun),
            (ErrorKind::FrameFormat, SerialError::Framing),
            (ErrorKind::Parity, SerialError::Parity),
            (ErrorKind::Noise, SerialError::Noise),
            (ErrorKind::Other, SerialError::Other),
        ];
        for (kind, expected) in kinds {
            let mut link = port(&[Step::Fault(kind), Step::Byte(1)]);
            assert_eq!(link.read(&mut [0u8; 2]), Err(expected));
        }
    }

    #[test]
    fn a_write_waits_until_one_byte_is_accepted_and_flush_until_it_has_left() {
        let mut link = port(&[]);

        assert_eq!(link.write(&[]), Ok(0));
        assert_eq!(link.write(&[5, 6, 7]), Ok(1));
        link.write_all(&[6, 7]).unwrap();
        link.flush().unwrap();

        let port = link.into_inner();
        assert_eq!(port.written, [5, 6, 7]);
        assert_eq!(port.write_attempts, 6);
        assert_eq!(port.flush_polls, 3);
    }
}
