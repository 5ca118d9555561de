//! A polled driver for USART2 of an STM32F411 (the Nucleo-F411RE's ST-LINK virtual COM port
//! on PA2/PA3), implementing the `embedded-io` traits; used by the `board` build.
//!
//! Registers from ST's RM0383 reference manual: RCC `AHB1ENR` +0x30 (bit 0 GPIOA), `APB1ENR`
//! +0x40 (bit 17 USART2); GPIOA `MODER` +0x00 (PA2/PA3 alternate function, 0b10),
//! `AFRL` +0x20 (AF7 = USART2); USART2 `SR` +0x00 (bit 3 overrun, bit 5 RXNE, bit 7 TXE),
//! `DR` +0x04, `BRR` +0x08, `CR1` +0x0C (bit 13 UE, bit 3 TE, bit 2 RE). After reset the
//! part runs from its 16 MHz HSI, which also clocks APB1, and this driver assumes so.
//!
//! A HAL (stm32f4xx-hal) would do the same in more code and pins embedded-io 0.6, while the
//! rest of the firmware uses 0.7; the register sequence is short enough to keep here.

use embedded_io::{ErrorType, Read, ReadReady, Write, WriteReady};

use crate::link::Overrun;

const RCC: usize = 0x4002_3800;
const GPIOA: usize = 0x4002_0000;
const USART2: usize = 0x4000_4400;

const SR: usize = 0x00;
const DR: usize = 0x04;
const BRR: usize = 0x08;
const CR1: usize = 0x0C;

const SR_ORE: u32 = 1 << 3;
const SR_RXNE: u32 = 1 << 5;
const SR_TXE: u32 = 1 << 7;

/// The clock of APB1 after reset (HSI).
pub const APB1_HZ: u32 = 16_000_000;

/// USART2, owned.
pub struct Usart2(());

fn read(address: usize) -> u32 {
    // SAFETY: every address passed here is a documented STM32F411 register (see the module
    // docs), owned by the one `Usart2` value; volatile because the hardware changes it.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

fn write(address: usize, value: u32) {
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile(address as *mut u32, value) }
}

fn modify(address: usize, clear: u32, set: u32) {
    write(address, (read(address) & !clear) | set);
}

impl Usart2 {
    /// Clocks GPIOA and USART2, routes PA2/PA3 to USART2 and enables it at `baud`, 8N1.
    ///
    /// # Safety
    /// Call once; nothing else may use GPIOA pins 2 and 3 or USART2.
    pub unsafe fn new(baud: u32) -> Self {
        modify(RCC + 0x30, 0, 1 << 0);
        modify(RCC + 0x40, 0, 1 << 17);

        modify(GPIOA, 0b1111 << 4, 0b1010 << 4);
        modify(GPIOA + 0x20, 0xFF << 8, 0x77 << 8);

        write(USART2 + BRR, (APB1_HZ + baud / 2) / baud.max(1));
        write(USART2 + CR1, (1 << 13) | (1 << 3) | (1 << 2));
        Usart2(())
    }
}

impl ErrorType for Usart2 {
    type Error = Overrun;
}

impl Read for Usart2 {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Overrun> {
        if buf.is_empty() {
            return Ok(0);
        }
        while read(USART2 + SR) & (SR_RXNE | SR_ORE) == 0 {}

        let mut n = 0;
        for slot in buf.iter_mut() {
            let status = read(USART2 + SR);
            if status & SR_ORE != 0 {
                // Reading SR then DR clears the overrun flag.
                let _ = read(USART2 + DR);
                return Err(Overrun);
            }
            if status & SR_RXNE == 0 {
                break;
            }
            *slot = read(USART2 + DR) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl ReadReady for Usart2 {
    fn read_ready(&mut self) -> Result<bool, Overrun> {
        Ok(read(USART2 + SR) & SR_RXNE != 0)
    }
}

impl Write for Usart2 {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Overrun> {
        let Some(&first) = buf.first() else {
            return Ok(0);
        };
        while read(USART2 + SR) & SR_TXE == 0 {}
        write(USART2 + DR, u32::from(first));
        Ok(1)
    }

    fn flush(&mut self) -> Result<(), Overrun> {
        // Transmission complete (bit 6): the last byte has left the shift register.
        while read(USART2 + SR) & (1 << 6) == 0 {}
        Ok(())
    }
}

impl WriteReady for Usart2 {
    fn write_ready(&mut self) -> Result<bool, Overrun> {
        Ok(read(USART2 + SR) & SR_TXE != 0)
    }
}
