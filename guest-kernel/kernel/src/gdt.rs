//! The global descriptor table and the task state segment.
//!
//! Long mode ignores segment bases and limits, but the CPU still needs code
//! and data descriptors, and a TSS for the interrupt stack table: the
//! double-fault handler runs on its own stack (IST1) so a kernel stack
//! overflow into the guard page is reported instead of triple-faulting.
//!
//! The selector order already fits `syscall`/`sysret` (STAR): kernel code,
//! kernel data, then user data and user code. The 32-bit boot stub loads this
//! same table through its physical address (boot.rs).

use core::arch::asm;
use core::mem::size_of;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data/stack selector.
pub const KERNEL_DS: u16 = 0x10;
/// User data/stack selector (RPL 3).
pub const USER_DS: u16 = 0x18 | 3;
/// User 64-bit code selector (RPL 3).
pub const USER_CS: u16 = 0x20 | 3;
/// Task state segment selector.
pub const TSS_SEL: u16 = 0x28;

// Flat descriptors with the accessed bit preset (so loading them never writes
// the table): G, L (code) or D/B (data), P, DPL, S, type.
const KERNEL_CODE64: u64 = 0x00af_9b00_0000_ffff;
const KERNEL_DATA: u64 = 0x00cf_9300_0000_ffff;
const USER_DATA: u64 = 0x00cf_f300_0000_ffff;
const USER_CODE64: u64 = 0x00af_fb00_0000_ffff;

/// The GDT: null, kernel code/data, user data/code, TSS (two slots).
#[repr(C, align(16))]
#[derive(Debug)]
pub struct Gdt(pub [u64; 7]);

/// Bytes of the GDT minus one, as `lgdt` wants it.
pub const GDT_LIMIT: u16 = (size_of::<Gdt>() - 1) as u16;

/// The one GDT (referenced by name from boot.rs; the TSS slots are filled by
/// [`init`]).
pub static mut GDT: Gdt = Gdt([0, KERNEL_CODE64, KERNEL_DATA, USER_DATA, USER_CODE64, 0, 0]);

/// The 64-bit TSS as 26 little-endian words (104 bytes; aligned so it never
/// straddles a page).
#[repr(C, align(128))]
struct Tss([u32; 26]);

/// Bytes of the architectural TSS (the struct is padded to its alignment).
const TSS_SIZE: usize = 26 * 4;
const _: () = assert!(size_of::<Tss>() >= TSS_SIZE);
/// Word index of RSP0 (byte offset 4).
const TSS_RSP0: usize = 1;
/// Word index of IST1 (byte offset 36).
const TSS_IST1: usize = 9;
/// Word holding the I/O map base (byte offset 102, the high half of word 25).
const TSS_IOMAP: usize = 25;

static mut TSS: Tss = Tss([0; 26]);

/// Points IST1 at `df_stack_top`, installs the TSS descriptor and loads the
/// task register.
pub fn init(df_stack_top: u64) {
    let tss = &raw mut TSS as *mut u32;
    let base = tss as u64;
    let limit = (TSS_SIZE - 1) as u64;
    // Available 64-bit TSS, present.
    let low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x89 << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    let high = base >> 32;
    let gdt = &raw mut GDT as *mut u64;
    // SAFETY: runs once on the boot CPU before anything uses the TSS; all
    // indices are inside TSS (26 words) and GDT (7 entries). An I/O map base
    // equal to the TSS size means "no I/O bitmap": ring 3 gets no ports.
    unsafe {
        tss.add(TSS_IST1).write(df_stack_top as u32);
        tss.add(TSS_IST1 + 1).write((df_stack_top >> 32) as u32);
        tss.add(TSS_IOMAP).write((TSS_SIZE as u32) << 16);
        gdt.add(usize::from(TSS_SEL / 8)).write(low);
        gdt.add(usize::from(TSS_SEL / 8) + 1).write(high);
        asm!("ltr {0:x}", in(reg) TSS_SEL, options(nostack, preserves_flags));
    }
}

/// Sets TSS.RSP0, the stack the CPU switches to on an interrupt or
/// exception from ring 3 (the end of the running shard's save area).
pub fn set_rsp0(rsp0: u64) {
    let tss = &raw mut TSS as *mut u32;
    // SAFETY: words 1 and 2 are inside the TSS; single CPU, interrupts off,
    // and the CPU reads RSP0 only on the next ring-3 → ring-0 transition.
    unsafe {
        tss.add(TSS_RSP0).write(rsp0 as u32);
        tss.add(TSS_RSP0 + 1).write((rsp0 >> 32) as u32);
    }
}
