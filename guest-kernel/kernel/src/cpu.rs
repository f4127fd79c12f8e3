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

/// The time-stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the counter (CR4.TSD restricts ring 3, not ring 0).
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Reads a model-specific register.
///
/// # Safety
/// `msr` must exist on this CPU (a missing MSR raises #GP in ring 0).
#[inline(always)]
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes a model-specific register.
///
/// # Safety
/// `msr` must exist and `value` must be valid for it; the caller answers for
/// what the write changes (entry points, timers, ...).
#[inline(always)]
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the MSR and the value are valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags))
    }
}

/// `cpuid(leaf, subleaf)` → (eax, ebx, ecx, edx).
#[inline(always)]
pub fn cpuid(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    // cpuid has no side effects (core's wrapper preserves RBX for LLVM).
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Reads CR0.
#[inline(always)]
pub fn cr0() -> u64 {
    let value: u64;
    // SAFETY: reading CR0 has no side effects.
    unsafe { asm!("mov {}, cr0", out(reg) value, options(nomem, nostack, preserves_flags)) }
    value
}

/// Writes CR0.
///
/// # Safety
/// The new value must keep paging, protection and WP on.
#[inline(always)]
pub unsafe fn write_cr0(value: u64) {
    // SAFETY: the caller keeps the mode bits.
    unsafe { asm!("mov cr0, {}", in(reg) value, options(nostack, preserves_flags)) }
}

/// Reads CR4.
#[inline(always)]
pub fn cr4() -> u64 {
    let value: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { asm!("mov {}, cr4", out(reg) value, options(nomem, nostack, preserves_flags)) }
    value
}

/// Writes CR4.
///
/// # Safety
/// The new value must keep PAE on and enable only features the CPU has.
#[inline(always)]
pub unsafe fn write_cr4(value: u64) {
    // SAFETY: the caller keeps PAE and names supported features.
    unsafe { asm!("mov cr4, {}", in(reg) value, options(nostack, preserves_flags)) }
}

/// The physical address of the active PML4.
#[inline(always)]
pub fn cr3() -> u64 {
    let value: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) value, options(nomem, nostack, preserves_flags)) }
    value
}

/// Enables interrupts and sleeps until one arrives, then disables them
/// again (the idle step; `sti` delays interrupts by one instruction, so
/// none is lost between the two).
#[inline(always)]
pub fn idle_once() {
    // SAFETY: interrupts are taken on the current (kernel) stack by handlers
    // that return here; IF is off again before Rust code continues.
    // Not `nomem`: the interrupt handler changes kernel state the caller
    // re-reads afterwards.
    unsafe { asm!("sti", "hlt", "cli", options(nostack)) }
}

/// Saves the x87/SSE state into `area`.
///
/// # Safety
/// `area` must point at 512 writable bytes aligned to 16.
#[inline(always)]
pub unsafe fn fxsave(area: *mut u8) {
    // SAFETY: the caller guarantees the area.
    unsafe { asm!("fxsave64 [{}]", in(reg) area, options(nostack, preserves_flags)) }
}

/// Loads the x87/SSE state from `area`.
///
/// # Safety
/// `area` must point at 512 readable bytes aligned to 16 holding a valid
/// image (reserved MXCSR bits clear).
#[inline(always)]
pub unsafe fn fxrstor(area: *const u8) {
    // SAFETY: the caller guarantees the area.
    unsafe { asm!("fxrstor64 [{}]", in(reg) area, options(nostack, preserves_flags, readonly)) }
}

/// Zeroes `qwords` 8-byte words at `dst` with `rep stosq`.
///
/// # Safety
/// The range must be writable kernel memory nothing else uses.
#[inline(always)]
pub unsafe fn zero_qwords(dst: *mut u64, qwords: usize) {
    // SAFETY: the caller guarantees the range.
    unsafe {
        asm!("rep stosq", inout("rdi") dst => _, inout("rcx") qwords => _, in("rax") 0u64,
             options(nostack, preserves_flags))
    }
}

/// Copies `bytes` bytes with `rep movsb` (whole qwords first).
///
/// # Safety
/// Both ranges must be valid and must not overlap.
#[inline(always)]
pub unsafe fn copy_bytes(dst: *mut u8, src: *const u8, bytes: usize) {
    // SAFETY: the caller guarantees the ranges.
    unsafe {
        asm!("mov {tmp}, rcx", "shr rcx, 3", "rep movsq", "mov rcx, {tmp}", "and rcx, 7", "rep movsb",
             tmp = out(reg) _,
             inout("rdi") dst => _, inout("rsi") src => _, inout("rcx") bytes => _,
             options(nostack, preserves_flags))
    }
}
