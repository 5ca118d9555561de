//! A polled driver for the CMSDK APB UART of Arm's MPS2 boards (UART0 of QEMU's
//! `mps2-an386` at `0x4000_4000`), implementing the `embedded-io` traits.
//!
//! Registers (Arm CMSDK technical reference, "APB UART"): `DATA` +0x0, `STATE` +0x4 (bit 0 TX
//! buffer full, bit 1 RX buffer full, bits 2/3 TX/RX overrun), `CTRL` +0x8 (bit 0 TX enable,
//! bit 1 RX enable), `BAUDDIV` +0x10 (clock / baud, at least 16). The UART holds one byte
//! each way and has no FIFO, so a byte that arrives while the previous one is unread is lost
//! (RX overrun): the protocol keeps one request in flight, and the host sends the next only
//! after the reply, which is when this driver is reading.
//!
//! No crate drives this UART; it is a handful of registers, so the driver is written here.

use embedded_io::{ErrorType, Read, ReadReady, Write, WriteReady};

use unmix_protocol::serial::SerialError;

const DATA: usize = 0x0;
const STATE: usize = 0x4;
const CTRL: usize = 0x8;
const BAUDDIV: usize = 0x10;

const TX_FULL: u32 = 1 << 0;
const RX_FULL: u32 = 1 << 1;
const RX_OVERRUN: u32 = 1 << 3;
const TX_ENABLE: u32 = 1 << 0;
const RX_ENABLE: u32 = 1 << 1;

/// Base address of UART0 on `mps2-an386`.
pub const UART0: usize = 0x4000_4000;

/// One CMSDK APB UART, owned.
pub struct CmsdkUart {
    base: usize,
}

impl CmsdkUart {
    /// Takes the UART at `base`, sets `BAUDDIV = clock_hz / baud` and enables both directions.
    ///
    /// # Safety
    /// `base` must be the address of a CMSDK APB UART that nothing else uses.
    pub unsafe fn new(base: usize, clock_hz: u32, baud: u32) -> Self {
        let uart = CmsdkUart { base };
        uart.write_reg(BAUDDIV, (clock_hz / baud.max(1)).max(16));
        uart.write_reg(CTRL, TX_ENABLE | RX_ENABLE);
        uart
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract makes `base + offset` a register of this UART, which only
        // this value touches; volatile because the hardware changes it.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_reg`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    fn state(&self) -> u32 {
        self.read_reg(STATE)
    }
}

impl ErrorType for CmsdkUart {
    type Error = SerialError;
}

impl Read for CmsdkUart {
    /// Waits for at least one byte, then takes the bytes available without waiting.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SerialError> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.state() & RX_FULL == 0 {}

        let mut n = 0;
        for slot in buf.iter_mut() {
            let state = self.state();
            if state & RX_OVERRUN != 0 {
                // Writing 1 clears the flag.
                self.write_reg(STATE, RX_OVERRUN);
                return Err(SerialError::Overrun);
            }
            if state & RX_FULL == 0 {
                break;
            }
            *slot = self.read_reg(DATA) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl ReadReady for CmsdkUart {
    fn read_ready(&mut self) -> Result<bool, SerialError> {
        Ok(self.state() & RX_FULL != 0)
    }
}

impl Write for CmsdkUart {
    /// Waits until the transmit buffer is free, then writes as many bytes as go without
    /// waiting again (one, as the UART holds one).
    fn write(&mut self, buf: &[u8]) -> Result<usize, SerialError> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.state() & TX_FULL != 0 {}

        let mut n = 0;
        for &byte in buf {
            if self.state() & TX_FULL != 0 {
                break;
            }
            self.write_reg(DATA, u32::from(byte));
            n += 1;
        }
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), SerialError> {
        while self.state() & TX_FULL != 0 {}
        Ok(())
    }
}

impl WriteReady for CmsdkUart {
    fn write_ready(&mut self) -> Result<bool, SerialError> {
        Ok(self.state() & TX_FULL == 0)
    }
}
