//! unmix firmware: boots, runs the kernel, reports over defmt and exits with a status.
//!
//! Under QEMU (`qemu` feature, the default) defmt frames and the exit status travel through
//! semihosting; a panic or HardFault ends QEMU with a failure status instead of hanging.

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use panic_probe as _;

#[cfg(feature = "qemu")]
use defmt_semihosting as _;

#[cfg(feature = "board")]
use defmt_rtt as _;

/// A tiny channel-major basis (4 channels x 2 columns) for the boot self-check.
const BOOT_BASIS: [f32; 8] = [1.0, 0.5, 2.0, 0.25, 3.0, 0.125, 4.0, 0.0625];

/// A spectrum whose projection on [`BOOT_BASIS`] is known exactly.
const BOOT_SPECTRUM: [f32; 4] = [1.0, 1.0, 1.0, 1.0];

#[entry]
fn main() -> ! {
    defmt::info!("unmix firmware {} booting", env!("CARGO_PKG_VERSION"));

    let mut projection = [0.0f32; 2];
    unmix::pass::multiply_add_pass(&BOOT_BASIS, &BOOT_SPECTRUM, &mut projection);
    defmt::info!("boot self-check: B^T y = {}", projection);

    let passed = projection == [10.0, 0.9375];
    if passed {
        defmt::info!("self-check passed");
    } else {
        defmt::error!("self-check failed");
    }
    exit(passed)
}

/// Ends the program: QEMU exits with the status; a real board parks in a breakpoint loop.
fn exit(success: bool) -> ! {
    #[cfg(feature = "qemu")]
    {
        use cortex_m_semihosting::debug;
        debug::exit(if success {
            debug::EXIT_SUCCESS
        } else {
            debug::EXIT_FAILURE
        });
    }

    #[cfg(not(feature = "qemu"))]
    let _ = success;

    loop {
        cortex_m::asm::bkpt();
    }
}

/// A fault (including the `udf` that ends a panic) makes QEMU exit with failure, never hang.
#[cortex_m_rt::exception]
unsafe fn HardFault(_frame: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!("HardFault");
    exit(false)
}
