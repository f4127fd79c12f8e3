//! The one `syscall` instruction every call goes through.
//!
//! Register convention (coconut_abi::syscall): RAX = number, RDI, RSI, RDX,
//! R10, R8 = arguments 0..4, result in RAX; RCX, R11 and the argument
//! registers are clobbered. The kernel does not touch the user stack, so the
//! asm needs none (on the trap gate the fault frame goes to the kernel stack).
//!
//! These are `unsafe`: the kernel writes through pointer arguments it is
//! given, so a caller passing a pointer to live Rust data must own it. The
//! fuzz shard uses them directly with hostile values; everything else uses
//! the safe wrappers in [`crate::sys`].

use core::arch::asm;

/// A system call with up to five arguments; returns the raw RAX.
///
/// # Safety
/// Any pointer argument must be valid for what the call does with it (the
/// kernel validates addresses, but cannot know Rust's aliasing rules).
#[inline(always)]
pub unsafe fn syscall(nr: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> u64 {
    let ret: u64;
    // SAFETY: the caller vouches for pointer arguments; the asm declares
    // every register the ABI says the kernel clobbers and touches no stack.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => ret,
            inlateout("rdi") a0 => _,
            inlateout("rsi") a1 => _,
            inlateout("rdx") a2 => _,
            inlateout("r10") a3 => _,
            inlateout("r8") a4 => _,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
