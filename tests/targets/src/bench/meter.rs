//! Instruction counts and stack high-water marks on QEMU's `mps2-an386`.
//!
//! QEMU does not model the DWT cycle counter. Under `-icount shift=0,sleep=off` every guest
//! instruction advances virtual time by 1 ns, and the CMSDK APB Timer0 (0x4000_0000, clocked
//! at 25 MHz) then counts down once every 40 instructions, the same on every run. A region's
//! cost is therefore `40 * ticks` instructions, known to within 40; a region repeated `reps`
//! times gives `40 / reps` per call. These are instruction counts, not cycles: QEMU models
//! neither the pipeline nor flash wait states.
//!
//! The stack high-water mark of a region is found by painting: before the region, the words
//! from the current stack pointer down to [`PAINT_BYTES`] below it (never below the end of
//! the static data) are set to [`PAINT`]; after it, the lowest word that no longer holds the
//! pattern marks the deepest point the region reached.

use core::ptr;

/// CMSDK Timer0 on `mps2-an386`.
const TIMER0: usize = 0x4000_0000;
/// Control register: bit 0 enables the counter.
const CTRL: *mut u32 = TIMER0 as *mut u32;
/// Current value, counting down at 25 MHz.
const VALUE: *mut u32 = (TIMER0 + 0x4) as *mut u32;
/// Value loaded when the counter reaches zero.
const RELOAD: *mut u32 = (TIMER0 + 0x8) as *mut u32;

/// Instructions per timer tick under `-icount shift=0` (1 GHz virtual clock, 25 MHz timer).
pub const INSTRUCTIONS_PER_TICK: u32 = 40;

/// The word painted below the stack pointer.
pub const PAINT: u32 = 0xA5C3_5A3C;

/// How far below the stack pointer the paint reaches; a deeper region reports this size.
pub const PAINT_BYTES: usize = 96 * 1024;

unsafe extern "C" {
    /// End of `.bss`/`.uninit`, where cortex-m-rt lets the stack end (its linker script).
    static __sheap: u32;
}

/// Starts Timer0 counting down from `u32::MAX` (171 s of virtual time before it wraps).
pub fn start_timer() {
    // SAFETY: Timer0's registers are memory-mapped on mps2-an386 at these fixed addresses;
    // nothing else in the program touches them, and these are plain 32-bit register writes.
    unsafe {
        ptr::write_volatile(CTRL, 0);
        ptr::write_volatile(RELOAD, u32::MAX);
        ptr::write_volatile(VALUE, u32::MAX);
        ptr::write_volatile(CTRL, 1);
    }
}

#[inline(always)]
fn now() -> u32 {
    // SAFETY: a 32-bit read of Timer0's VALUE register, which has no side effect.
    unsafe { ptr::read_volatile(VALUE) }
}

#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies SP into a register; touches no memory and no flags.
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    sp
}

/// One measured region.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    /// Timer ticks from before the first repetition to after the last.
    pub ticks: u32,
    /// Deepest stack use below the caller's frame, bytes (a multiple of 4).
    pub stack: usize,
    /// Whether the paint was used up, so `stack` is only a lower bound.
    pub saturated: bool,
}

/// Runs `body` `reps` times and returns the timer ticks and stack depth of the whole region.
///
/// The stack pointer read here, after this function's own frame is set up, is the top of the
/// painted area; the repetitions run in [`run`], a frame below it, so that locals of a kernel
/// inlined into the loop are counted too. The closure should pass its inputs and outputs
/// through `core::hint::black_box` so that the repetitions cannot be merged.
#[inline(never)]
pub fn measure(reps: u32, mut body: impl FnMut()) -> Reading {
    let top = stack_pointer() & !3;
    let limit = ptr::addr_of!(__sheap) as usize;
    let bottom = top.saturating_sub(PAINT_BYTES).max(limit);

    let mut word = bottom;
    while word < top {
        // SAFETY: [bottom, top) lies between the end of the static data and the live stack
        // pointer, so no live object is there; nothing runs concurrently (no interrupts are
        // enabled), and the loop itself keeps its state in registers.
        unsafe { ptr::write_volatile(word as *mut u32, PAINT) };
        word += 4;
    }

    let (start, end) = run(reps, &mut body);

    let mut lowest = top;
    let mut word = bottom;
    while word < top {
        // SAFETY: the same words painted above; reading them has no side effect.
        if unsafe { ptr::read_volatile(word as *const u32) } != PAINT {
            lowest = word;
            break;
        }
        word += 4;
    }

    Reading {
        ticks: start.wrapping_sub(end),
        stack: top - lowest,
        saturated: lowest == bottom && bottom < top,
    }
}

/// The timed loop of [`measure`], kept out of line so that everything the body puts on the
/// stack lies below the painted area's top. Returns the timer values before and after.
#[inline(never)]
fn run(reps: u32, body: &mut impl FnMut()) -> (u32, u32) {
    let start = now();
    for _ in 0..reps {
        body();
    }
    (start, now())
}
