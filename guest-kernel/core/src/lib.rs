//! coconut-core: the logic of the coconut microkernel that needs no
//! hardware, so it is unit-tested on the host and linked into the kernel.
//!
//! `#![no_std]` and no `alloc`: the kernel has no heap, so every structure
//! here has a fixed capacity (const generics or constants from
//! `coconut-abi`) and can live in a `static`. Everything a shard, a file or
//! the boot manifest controls is hostile input: nothing here panics on it
//! (machine-checked by the clippy lints below) and every loop over on-disk
//! data is bounded. Kernel instructions are emulated (~0.6 µs each) on
//! kvm-pvm hosts, so the hot paths are O(1) or small loops.
//!
//! * [`captable`] — capabilities: grant (needs GRANT), restrict, inspect, cascading revoke.
//! * [`channel`] — bounded message queues; full and too-big are errors, nothing is lost.
//! * [`elf`] — validates a shard's ELF64 image (W^X, user range, alignment).
//! * [`ext2`] — read-only ext2: paths, indirect blocks, `block_of` for mapping.
//! * [`frames`] — the physical frame allocator (knows which frames are still zero).
//! * [`manifest`] — parses the boot manifest `/boot/shards.toml`.
//! * [`perms`] — page permissions and the W^X rule.
//! * [`sched`] — four-priority round-robin run queues and wait deadlines.
//! * [`vmspace`] — per-shard address-space bookkeeping, `mmap` rules, user-range checks.
#![no_std]
// Panic-freedom is a contract of this crate: keep it machine-checked.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

#[cfg(test)]
extern crate std;

pub mod bytes;
pub mod captable;
pub mod channel;
pub mod elf;
pub mod ext2;
pub mod frames;
pub mod manifest;
pub mod perms;
pub mod sched;
#[cfg(test)]
mod testutil;
pub mod vmspace;
