//! `coconut-rt`: the runtime every Rust coconut shard links.
//!
//! A shard is a freestanding static ELF the kernel loads from the ramdisk
//! and runs in ring 3. This crate gives it:
//! - the entry point `_start` and exit with `main`'s code ([`main!`]);
//! - safe wrappers for every system call ([`sys`]), returning
//!   `Result<u64, Error>`, and the raw instruction ([`raw`]);
//! - [`print!`]/[`println!`] over `serial_write`, one write per line;
//! - a panic handler that prints the message and exits with 101;
//! - a global allocator over `mmap` (so `alloc` works: `Vec`, `String`, `Box`);
//! - the ShardInfo page: id, name, args, boot capabilities ([`info`]);
//! - `memcpy`/`memset`/`memmove`/`memcmp`, which no libc provides here.
//!
//! # Target
//! Shards are built for the host's `x86_64-unknown-linux-gnu` target as
//! `#![no_std] #![no_main]` static, non-PIE executables linked at
//! `config::USER_MIN` by `shard.ld` (see `guest-kernel/shards/.cargo/config.toml`).
//! That target's prebuilt `core` uses the SSE2 hard-float ABI, which later
//! shards (inference) need and ring 3 executes natively; the kernel saves
//! and restores SSE state per shard. `x86_64-unknown-none` would be
//! soft-float.
//!
//! # Example
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use coconut_rt::println;
//! coconut_rt::main!(main);
//! fn main() -> u64 {
//!     println!("hello from {}", coconut_rt::info::name());
//!     0
//! }
//! ```
#![no_std]

pub extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod console;
pub mod heap;
pub mod info;
mod lock;
#[cfg(not(test))]
pub mod mem;
pub mod raw;
pub mod start;
pub mod sys;

pub use coconut_abi;
pub use coconut_abi::syscall::Error;
pub use start::Termination;

/// Names the shard's main function: `coconut_rt::main!(main);`. It may
/// return `()`, `u64`, `u32`, `i32` or `Result<(), E: Display>`.
#[macro_export]
macro_rules! main {
    ($f:path) => {
        #[unsafe(no_mangle)]
        fn __coconut_shard_main() -> u64 {
            $crate::Termination::report($f())
        }
    };
}
