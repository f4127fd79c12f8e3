//! The few privileged x86 instructions the kernel uses, each behind a small
//! safe or unsafe wrapper.
//!
//! Everything here is on kvm-pvm's list of instructions its ring-0 emulator
//! handles (`in`/`out`, control-register moves, `invlpg`, `cli`/`hlt`); see
//! /work/shared/reference/kvm-pvm.md. Keep it that way: an instruction the
//! emulator lacks ends the VM.

use core::arch::asm;

use coconut_abi::ports;

/// Writes a byte to an I/O port.
///
/// The kernel only talks to devices of the coco machine (ARCHITECTURE.md §4)
/// whose writes have no memory side effects, so this is safe to call.
#[inline(always)]
pub fn outb(port: u16, value: u8) {
    // SAFETY: port I/O to the machine's fixed devices does not touch memory
    // the compiler knows about.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// Writes a 32-bit value to an I/O port.
#[inline(always)]
pub fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    }
}

/// Reads a byte from an I/O port.
#[inline(always)]
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: reading the UART status has no effect on memory.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Reports a boot milestone (`coconut_abi::milestone`) to the VMM's boot timer.
#[inline(always)]
pub fn milestone(id: u32) {
    outl(ports::BOOT_TIMER, id);
}

/// The faulting linear address of the last page fault.
#[inline(always)]
pub fn cr2() -> u64 {
    let value: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags)) }
    value
}

/// Reloads CR3, which flushes every non-global TLB entry.
///
/// # Safety
/// `pml4_phys` must be the physical address of a PML4 that maps the running
/// code, its stack and every object the kernel uses afterwards.
#[inline(always)]
pub unsafe fn write_cr3(pml4_phys: u64) {
    // SAFETY: the caller guarantees the new tables map everything in use.
    unsafe { asm!("mov cr3, {}", in(reg) pml4_phys, options(nostack, preserves_flags)) }
}

/// Drops any TLB entry for the page containing `addr`.
#[inline(always)]
pub fn invlpg(addr: u64) {
    // SAFETY: invalidating a translation is always allowed; the next access
    // walks the (already updated) page tables.
    unsafe { asm!("invlpg [{}]", in(reg) addr, options(nostack, preserves_flags)) }
}

/// Ends the VM through the debug-exit port with `status`
/// (`coconut_abi::exit`), and stops this CPU should the write return.
pub fn exit(status: u8) -> ! {
    outb(ports::DEBUG_EXIT, status);
    halt_forever()
}

/// Stops this CPU for good: interrupts off, `hlt` in a loop.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: `cli; hlt` only stops the CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}
