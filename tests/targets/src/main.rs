//! Golden-vector runner: computes every golden case (`unmix-golden`) on a bare-metal target
//! and prints the result bits over semihosting, one line per case, for the host to compare.
//!
//! Output lines are `case <name> <hex words...>`, then `done <cases>`; the exit status is
//! success when every case ran. A panic exits with failure, so QEMU never hangs.

#![no_std]
#![no_main]

use semihosting::{print, println, process};

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

/// Prints each case over semihosting.
struct Semihosting;

impl unmix_golden::Report for Semihosting {
    fn case(&mut self, name: &str, words: &[u32]) {
        print!("case {}", name);
        for word in words {
            print!(" {:08x}", word);
        }
        println!();
    }
}

#[entry]
fn main() -> ! {
    let cases = unmix_golden::run_all(&mut Semihosting);
    println!("done {}", cases);
    process::exit(0)
}

/// A fault (a stack overflow, say) ends the run with failure instead of hanging QEMU.
#[cfg(target_arch = "arm")]
#[cortex_m_rt::exception]
unsafe fn HardFault(_frame: &cortex_m_rt::ExceptionFrame) -> ! {
    println!("HardFault");
    process::exit(102)
}

/// A trap (an illegal instruction or a bad access, say) ends the run with failure instead of
/// the runtime's default, a jump to itself that would hold QEMU until its timeout.
#[cfg(target_arch = "riscv32")]
#[unsafe(export_name = "ExceptionHandler")]
fn exception_handler(_frame: &riscv_rt::TrapFrame) -> ! {
    println!("trap");
    process::exit(102)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panic: {}", info);
    process::exit(101)
}
