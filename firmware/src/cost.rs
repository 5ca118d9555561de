//! What one fit costs, counted by the hardware.
//!
//! - QEMU (`qemu` feature): the CMSDK APB timer 0 at `0x4000_0000`, a 32-bit down-counter on
//!   the 25 MHz peripheral clock (`CTRL` +0x0 bit 0 enable, `VALUE` +0x4, `RELOAD` +0x8).
//!   QEMU's cycle counter (DWT) reads 0, but with `-icount shift=0,sleep=off` one instruction
//!   takes exactly 1 ns of virtual time, so one tick is 40 instructions: the count is exact
//!   to 40 and identical run to run. These are instructions, not cycles.
//! - A real part (`board` feature): the DWT cycle counter, in core clock cycles.

use unmix_protocol::CostUnit;

/// A free-running counter that prices a piece of code.
pub trait CostCounter {
    /// The unit of [`CostCounter::cost_since`].
    const UNIT: CostUnit;

    /// The counter now, to pass to [`CostCounter::cost_since`].
    fn now(&self) -> u32;

    /// The cost since `start`, in [`CostCounter::UNIT`] (wraps after 2^32 units).
    fn cost_since(&self, start: u32) -> u32;
}

/// CMSDK timer 0 of the MPS2 boards, counting instructions under QEMU's `-icount`.
#[cfg(feature = "qemu")]
pub struct Timer0(());

#[cfg(feature = "qemu")]
impl Timer0 {
    const BASE: usize = 0x4000_0000;
    /// Instructions per 25 MHz tick at `-icount shift=0` (1 ns per instruction).
    const INSTRUCTIONS_PER_TICK: u32 = 40;

    /// Starts timer 0 counting down from `u32::MAX` with no interrupt.
    ///
    /// # Safety
    /// Call once; nothing else may use timer 0.
    pub unsafe fn start() -> Self {
        let write = |offset: usize, value: u32| {
            // SAFETY: the caller owns timer 0, whose registers these are.
            unsafe { core::ptr::write_volatile((Self::BASE + offset) as *mut u32, value) }
        };
        write(0x0, 0);
        write(0x8, u32::MAX);
        write(0x4, u32::MAX);
        write(0x0, 1);
        Timer0(())
    }
}

#[cfg(feature = "qemu")]
impl CostCounter for Timer0 {
    const UNIT: CostUnit = CostUnit::QemuInstructions;

    fn now(&self) -> u32 {
        // SAFETY: `VALUE` of timer 0, owned by this value; volatile as the timer counts.
        let value = unsafe { core::ptr::read_volatile((Self::BASE + 0x4) as *const u32) };
        u32::MAX - value
    }

    fn cost_since(&self, start: u32) -> u32 {
        self.now()
            .wrapping_sub(start)
            .wrapping_mul(Self::INSTRUCTIONS_PER_TICK)
    }
}

/// The DWT cycle counter of a real Cortex-M3/M4/M7.
#[cfg(feature = "board")]
pub struct Cycles(());

#[cfg(feature = "board")]
impl Cycles {
    /// Enables tracing and the cycle counter.
    pub fn start(mut dcb: cortex_m::peripheral::DCB, mut dwt: cortex_m::peripheral::DWT) -> Self {
        dcb.enable_trace();
        dwt.enable_cycle_counter();
        Cycles(())
    }
}

#[cfg(feature = "board")]
impl CostCounter for Cycles {
    const UNIT: CostUnit = CostUnit::Cycles;

    fn now(&self) -> u32 {
        cortex_m::peripheral::DWT::cycle_count()
    }

    fn cost_since(&self, start: u32) -> u32 {
        self.now().wrapping_sub(start)
    }
}
