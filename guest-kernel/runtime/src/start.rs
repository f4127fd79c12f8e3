//! Entry and exit: `_start`, the shard's main, its exit code, and panics.
//!
//! The kernel enters `_start` in ring 3 with RSP at `config::STACK_TOP`.
//! `_start` aligns the stack, checks the ShardInfo page, calls the function
//! the shard named with [`crate::main!`] and exits with the code it reports.
//! A panic prints `panic in <name>: <message> at <file:line:col>` (one
//! line) and exits with
//! [`PANIC_EXIT_CODE`].

/// Exit code of a shard that panicked (as Rust's std uses).
pub const PANIC_EXIT_CODE: u64 = 101;
/// Exit code when the info page is not the one this runtime was built for.
pub const BAD_INFO_EXIT_CODE: u64 = 102;

#[cfg(not(test))]
unsafe extern "Rust" {
    /// Defined by [`crate::main!`] in the shard.
    safe fn __coconut_shard_main() -> u64;
}

/// The ELF entry point.
///
/// # Safety
/// Only the kernel calls this, once, on a fresh stack.
#[cfg(not(test))]
#[unsafe(naked)]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text._start")]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "and rsp, -16",
        "call {entry}",
        "ud2",
        entry = sym rt_entry,
    )
}

#[cfg(not(test))]
extern "C" fn rt_entry() -> ! {
    if !crate::info::valid() {
        let _ = crate::sys::serial_write(b"coconut-rt: bad ShardInfo page (magic/version)\n");
        crate::sys::exit(BAD_INFO_EXIT_CODE);
    }
    let code = __coconut_shard_main();
    crate::sys::exit(code)
}

/// What a shard's main may return, turned into an exit code.
pub trait Termination {
    /// The exit code.
    fn report(self) -> u64;
}

impl Termination for () {
    fn report(self) -> u64 {
        0
    }
}

impl Termination for u64 {
    fn report(self) -> u64 {
        self
    }
}

impl Termination for u32 {
    fn report(self) -> u64 {
        u64::from(self)
    }
}

impl Termination for i32 {
    fn report(self) -> u64 {
        // Negative codes keep their low 32 bits, as the kernel stores them.
        u64::from(self as u32)
    }
}

impl<E: core::fmt::Display> Termination for Result<(), E> {
    fn report(self) -> u64 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                crate::println!("{}: error: {e}", crate::info::name());
                1
            }
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    crate::console::flush();
    // One line: `panic in <name>: <message> at <file>:<line>:<col>`.
    let mut line = crate::console::LineOut::new();
    let _ = write!(line, "panic in {}: {}", crate::info::name(), info.message());
    if let Some(loc) = info.location() {
        let _ = write!(line, " at {}:{}:{}", loc.file(), loc.line(), loc.column());
    }
    line.finish();
    crate::sys::exit(PANIC_EXIT_CODE)
}

/// The unwinding personality routine the prebuilt `alloc`/`core` of the
/// linux-gnu target reference from their (unused) landing pads. Shards are
/// built with panic=abort, so nothing ever unwinds into it; if something
/// did, the shard ends instead of running on.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {
    crate::sys::exit(PANIC_EXIT_CODE)
}

/// The unwinder entry the prebuilt `alloc` of the linux-gnu target calls
/// from landing pads (e.g. in `alloc::fmt::format`). No shard links an
/// unwinder and none unwinds (panic=abort); reaching it ends the shard.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn _Unwind_Resume() -> ! {
    crate::sys::exit(PANIC_EXIT_CODE)
}
