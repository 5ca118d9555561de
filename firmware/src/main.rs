//! unmix firmware: receives spectra over a serial link, fits them with the unmix kernel and
//! answers with the phase fractions, logging with defmt.
//!
//! The protocol is `unmix-protocol`'s: CRC-checked COBS frames carrying postcard messages,
//! one reply per request, in order ([`server`]). Bad input (garbage, truncated, corrupted or
//! oversized frames, unknown messages, wrong-length or non-finite spectra, libraries that do
//! not fit) gets an error reply naming the fault, and the loop goes on.
//!
//! Builds:
//! - `qemu` (default): QEMU's `mps2-an386` (Cortex-M4F). The link is the CMSDK UART0
//!   ([`uart`]), fits are priced in instructions by the CMSDK timer 0 under `-icount`
//!   ([`cost`]), defmt frames and the exit status go through semihosting, and a HardFault
//!   ends QEMU with failure.
//! - `board`: an STM32F411 (Nucleo-F411RE) flashed and run by probe-rs. The link is USART2
//!   on the ST-LINK's virtual COM port, set up by stm32f4xx-hal and carried as `embedded-io`
//!   by `unmix_protocol::serial::NbSerial`, fits are priced in cycles by the DWT, and defmt
//!   goes over RTT.
//!
//! Memory: no heap. The buffers are statics taken once ([`static_cell`]); their sizes are
//! in [`server`]. The stack is painted at reset and its high-water mark reported
//! ([`stack`]).

#![no_std]
#![no_main]

mod cost;
mod server;
mod source;
mod stack;
#[cfg(feature = "qemu")]
mod uart;

use cortex_m_rt::entry;
use panic_probe as _;
use static_cell::ConstStaticCell;

#[cfg(feature = "qemu")]
use defmt_semihosting as _;

#[cfg(feature = "board")]
use defmt_rtt as _;

use server::{MAX_CHANNELS, RX_LEN, Server, TX_LEN, UPLOAD_BYTES};

#[cfg(all(feature = "qemu", feature = "board"))]
compile_error!("choose one of the features `qemu` and `board`");

static RX: ConstStaticCell<[u8; RX_LEN]> = ConstStaticCell::new([0; RX_LEN]);
static TX: ConstStaticCell<[u8; TX_LEN]> = ConstStaticCell::new([0; TX_LEN]);
static SPECTRUM: ConstStaticCell<[f32; MAX_CHANNELS]> = ConstStaticCell::new([0.0; MAX_CHANNELS]);
static UPLOAD: ConstStaticCell<[f32; UPLOAD_BYTES / 4]> =
    ConstStaticCell::new([0.0; UPLOAD_BYTES / 4]);

#[entry]
fn main() -> ! {
    defmt::info!(
        "unmix firmware {} booting: frames up to {} bytes, spectra up to {} channels, \
         upload buffer {} bytes",
        env!("CARGO_PKG_VERSION"),
        RX_LEN + 1,
        MAX_CHANNELS,
        UPLOAD_BYTES
    );

    if cfg!(feature = "fault-check") {
        defmt::panic!("deliberate panic of the fault-check build");
    }

    let (mut link, counter, board) = init();
    let mut server = Server::new(board, SPECTRUM.take(), UPLOAD.take(), counter);
    if server.builtin_ok() {
        defmt::info!("self-check passed");
    }

    let (rx, tx) = (RX.take(), TX.take());
    loop {
        let served = server.serve(&mut link, rx, tx);
        if let Err(error) = served {
            defmt::error!("link failed: {}", error);
        }
        if cfg!(feature = "qemu") {
            exit(served.is_ok());
        }
    }
}

/// QEMU: UART0 at 115200 baud (the emulator ignores the rate) and timer 0.
#[cfg(feature = "qemu")]
fn init() -> (uart::CmsdkUart, cost::Timer0, &'static str) {
    // SAFETY: called once, at boot; UART0 and timer 0 are used nowhere else.
    unsafe {
        (
            uart::CmsdkUart::new(uart::UART0, 25_000_000, 115_200),
            cost::Timer0::start(),
            "mps2-an386",
        )
    }
}

/// The board build's link: USART2 of the STM32F411 through its HAL.
#[cfg(feature = "board")]
type BoardLink =
    unmix_protocol::serial::NbSerial<stm32f4xx_hal::serial::Serial<stm32f4xx_hal::pac::USART2, u8>>;

/// Nucleo-F411RE: 84 MHz from the internal oscillator (no crystal needed), USART2 on
/// PA2/PA3 (the ST-LINK's virtual COM port) at 115200 baud 8N1, and the DWT cycle counter.
#[cfg(all(feature = "board", not(feature = "qemu")))]
fn init() -> (BoardLink, cost::Cycles, &'static str) {
    use stm32f4xx_hal::{pac, prelude::*, rcc::Config};

    let (Some(core), Some(device)) = (cortex_m::Peripherals::take(), pac::Peripherals::take())
    else {
        defmt::panic!("peripherals taken twice");
    };
    let mut rcc = device.RCC.freeze(Config::hsi().sysclk(84.MHz()));
    let gpioa = device.GPIOA.split(&mut rcc);
    let serial = device
        .USART2
        .serial((gpioa.pa2, gpioa.pa3), 115_200.bps(), &mut rcc);
    let Ok(serial) = serial else {
        defmt::panic!("USART2 cannot run at 115200 baud from these clocks");
    };
    (
        unmix_protocol::serial::NbSerial::new(serial),
        cost::Cycles::start(core.DCB, core.DWT),
        "nucleo-f411re",
    )
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
