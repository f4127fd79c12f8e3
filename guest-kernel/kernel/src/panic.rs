//! The Rust panic handler: `panic: <message> at <file>:<line>` on COM1, then
//! the VM ends with `exit::KERNEL_PANIC`.
//!
//! This is the only user of `core::fmt` (to format the message); a message
//! without arguments is printed directly.

use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use coconut_abi::exit;

use crate::cpu;
use crate::serial::{Serial, out};

/// Set by the first panic; a panic while reporting one just stops.
static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if PANICKING.swap(true, Ordering::Relaxed) {
        cpu::exit(exit::KERNEL_PANIC);
    }
    out().s("panic: ");
    let message = info.message();
    match message.as_str() {
        Some(text) => {
            out().s(text);
        }
        None => {
            let _ = write!(Serial, "{message}");
        }
    }
    if let Some(location) = info.location() {
        out()
            .s(" at ")
            .s(location.file())
            .s(":")
            .dec(location.line().into());
    }
    out().nl();
    cpu::exit(exit::KERNEL_PANIC)
}
