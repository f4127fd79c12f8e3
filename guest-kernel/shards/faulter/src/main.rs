//! faulter: commits the CPU fault its `args` name, so the tests can check
//! that the kernel kills only this shard and says why
//! (`shard <id> (<name>) killed: <fault> at ...`) while the others finish.
//!
//! args (first word): `page-fault` (read of an unmapped user page),
//! `kernel-read` (read of a kernel-half address), `null-write`,
//! `write-code` (write to its own R+X text), `exec-data` (jump into an NX
//! data page), `stack-overflow` (run into the guard page below the stack),
//! `invalid-opcode` (ud2), `divide-error` (div by zero), `privileged`
//! (`hlt` in ring 3: general protection). Anything else: prints the list
//! and exits 2. Reaching the end means the fault did not kill it: exit 1.
#![no_std]
#![no_main]

use coconut_rt::{info, println};
use core::arch::asm;
use core::hint::black_box;

coconut_rt::main!(main);

/// An address in the lower half no shard maps (between the ELF and the
/// file-mapping window).
const UNMAPPED_USER: u64 = 0x0000_1234_5678_0000;
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;

static DATA_PAGE: [u8; 16] = [0xc3; 16]; // `ret`s, in a non-executable segment.

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let pad = black_box([depth; 64]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + pad[3]
}

fn fault(case: &str) -> bool {
    match case {
        "page-fault" => {
            // SAFETY: deliberately reads an unmapped address: the kernel
            // kills this shard before the value is used.
            let v = unsafe { core::ptr::read_volatile(UNMAPPED_USER as *const u64) };
            black_box(v);
        }
        "kernel-read" => {
            // SAFETY: as above, a kernel-half address is never user-readable.
            let v = unsafe { core::ptr::read_volatile(KERNEL_HALF as *const u64) };
            black_box(v);
        }
        "null-write" => {
            // SAFETY: page 0 is never mapped; the write faults.
            unsafe { core::ptr::write_volatile(black_box(0usize) as *mut u64, 1) };
        }
        "write-code" => {
            let code = fault as *const u8 as *mut u8;
            // SAFETY: the text segment is R+X; the write faults.
            unsafe { core::ptr::write_volatile(code, 0xcc) };
        }
        "exec-data" => {
            let f: extern "C" fn() =
                // SAFETY: the page is NX; the call faults on fetch.
                unsafe { core::mem::transmute(DATA_PAGE.as_ptr()) };
            black_box(f)();
        }
        "stack-overflow" => {
            black_box(recurse(0));
        }
        "invalid-opcode" => {
            // SAFETY: ud2 raises #UD; nothing follows.
            unsafe { asm!("ud2", options(nomem, nostack)) };
        }
        "divide-error" => {
            let zero = black_box(0u64);
            // SAFETY: div by zero raises #DE (the Rust `/` would panic
            // instead of faulting, which is not what this case tests).
            unsafe {
                asm!("div {0}", in(reg) zero, inout("rax") 1u64 => _, inout("rdx") 0u64 => _,
                     options(nomem, nostack));
            }
        }
        "privileged" => {
            // SAFETY: hlt in ring 3 raises #GP.
            unsafe { asm!("hlt", options(nomem, nostack)) };
        }
        _ => return false,
    }
    true
}

fn main() -> u64 {
    let case = info::args().split_ascii_whitespace().next().unwrap_or("");
    println!(
        "faulter: shard {} ({}) about to {case}",
        info::id(),
        info::name()
    );
    if !fault(case) {
        println!(
            "faulter: unknown case {case:?}; one of page-fault kernel-read null-write \
             write-code exec-data stack-overflow invalid-opcode divide-error privileged"
        );
        return 2;
    }
    println!("faulter: survived {case}");
    1
}
