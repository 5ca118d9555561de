//! Stack high-water mark: cortex-m-rt's `paint-stack` fills the whole stack region
//! (`_stack_end` up to `_stack_start`) with `0xCCCC_CCCC` before `main`; the deepest word
//! that no longer holds the paint marks the most stack ever used. The scan reads the region
//! from the bottom up and stops at the first changed word, so it costs at most one read per
//! unused word. A function that writes the paint value itself could hide a few words; the
//! figure is then low by at most those words.

use unmix_protocol::StackUsage;

unsafe extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

/// The stack's size and its deepest use so far.
pub fn usage() -> StackUsage {
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let bottom = core::ptr::addr_of!(_stack_end) as usize;

    let mut address = bottom;
    while address < top {
        // SAFETY: `address` is word-aligned and between the linker's `_stack_end` and
        // `_stack_start`, the stack region in RAM; reading a stale word there is harmless.
        let word = unsafe { core::ptr::read_volatile(address as *const u32) };
        if word != cortex_m_rt::STACK_PAINT_VALUE {
            break;
        }
        address += 4;
    }

    StackUsage {
        used: (top - address) as u32,
        size: (top - bottom) as u32,
    }
}
