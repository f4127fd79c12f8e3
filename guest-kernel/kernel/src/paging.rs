//! Virtual memory layout and the kernel's page tables.
//!
//! ```text
//! 0x0000_0000_0000_0000 ..          lower half: empty in the kernel's own
//!                                   PML4 (shards have theirs). During early boot
//!                                   PML4[0] identity-maps physical 0..2 MiB
//!                                   for the 32-bit stub; `init` removes it.
//! 0xffff_8000_0000_0000 ..+4 GiB    direct map of physical 0..4 GiB
//!                                   (PML4[256]), read-only, no-execute,
//!                                   2 MiB pages installed on demand by
//!                                   `map_phys` for memory the memory map
//!                                   allows reading.
//! 0xffff_8080_0000_0000 ..+4 GiB    frame window (PML4[257]): pool frames
//!                                   and the ramdisk, read-write, NX, 2 MiB
//!                                   pages installed by `window_map`.
//! 0xffff_ffff_8000_0000 + phys      the kernel image (PML4[511], PDPT[510]),
//!                                   4 KiB pages: text R-X, rodata R--,
//!                                   data/bss/stacks RW- (NX), guard pages
//!                                   below both stacks unmapped.
//! 0xffff_ffff_c000_0000 ..+2 MiB    device pages (PDPT[511]): LAPIC, IOAPIC,
//!                                   uncached.
//! ```
//!
//! Shards' lower halves live in their own PML4s, which copy entries
//! 256..512 of this one (uspace.rs).
//!
//! All tables are static and pre-filled in the ELF file (the assembler and
//! linker compute their entries), so reaching long mode costs no loops; the
//! only runtime work is filling one page table for the kernel image (~one
//! store per kernel page) and direct-map entries on demand. Only 4 KiB and
//! 2 MiB pages are used: 1 GiB pages triple-fault on kvm-pvm.
//!
//! The tables live in `.data.page_tables` (not `.bss`), so the loader writes
//! their zeroes and the kernel never clears them itself.

use core::arch::global_asm;

use crate::cpu;

/// Virtual address of physical address 0 in the kernel image window.
pub const KERNEL_VIRT_OFFSET: u64 = 0xffff_ffff_8000_0000;
/// Virtual address of physical address 0 in the direct map.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Physical bytes the direct map can reach (four page directories).
pub const DIRECT_MAP_SIZE: u64 = 4 << 30;
/// Virtual address of physical address 0 in the writable frame window
/// (PML4[257]): RAM the frame allocator owns, mapped read-write, no-execute,
/// so the kernel can fill page tables and shard pages.
pub const WINDOW_BASE: u64 = 0xffff_8080_0000_0000;
/// Virtual address of the device page table (kernel PDPT[511]): one 4 KiB
/// slot per device register page the kernel itself uses (the local APIC).
pub const DEVICE_BASE: u64 = 0xffff_ffff_c000_0000;

/// Bytes of a small page.
pub const PAGE_SIZE: u64 = 4096;
/// Bytes of a large page.
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;

/// Page-table entry bits.
pub const PRESENT: u64 = 1 << 0;
/// Writable.
pub const WRITABLE: u64 = 1 << 1;
/// Reachable from ring 3.
pub const USER: u64 = 1 << 2;
/// Write-through (with [`CACHE_DISABLE`]: uncached, for device registers).
pub const WRITE_THROUGH: u64 = 1 << 3;
/// Cache disable.
pub const CACHE_DISABLE: u64 = 1 << 4;
/// A 2 MiB leaf in a page directory.
pub const LARGE: u64 = 1 << 7;
/// No-execute.
pub const NO_EXECUTE: u64 = 1 << 63;
/// The physical-address bits of an entry.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Flags of an entry pointing at a lower-level table (the leaves restrict).
pub const TABLE: u64 = PRESENT | WRITABLE;

const fn pml4_index(va: u64) -> u64 {
    (va >> 39) & 511
}
const fn pdpt_index(va: u64) -> u64 {
    (va >> 30) & 511
}

// The pre-filled tables below hard-code these slots.
const _: () = assert!(pml4_index(DIRECT_MAP_BASE) == 256 && pdpt_index(DIRECT_MAP_BASE) == 0);
const _: () =
    assert!(pml4_index(KERNEL_VIRT_OFFSET) == 511 && pdpt_index(KERNEL_VIRT_OFFSET) == 510);
const _: () = assert!(DIRECT_MAP_SIZE == 4 * 512 * LARGE_PAGE_SIZE);

global_asm!(
    r#"
    .section .data.page_tables, "aw", @progbits
    .balign 4096
    .globl boot_pml4
boot_pml4:
    .quad (boot_identity_pdpt - ({kvo})) + {table}
    .fill 255, 8, 0
    .quad (direct_pdpt - ({kvo})) + {table}
    .quad (window_pdpt - ({kvo})) + {table}
    .fill 253, 8, 0
    .quad (kernel_pdpt - ({kvo})) + {table}

boot_identity_pdpt:
    .quad (kernel_pd - ({kvo})) + {table}
    .fill 511, 8, 0

kernel_pdpt:
    .fill 510, 8, 0
    .quad (kernel_pd - ({kvo})) + {table}
    .quad (device_pd - ({kvo})) + {table}

window_pdpt:
    .quad (window_pd - ({kvo})) + {table}
    .quad (window_pd + 0x1000 - ({kvo})) + {table}
    .quad (window_pd + 0x2000 - ({kvo})) + {table}
    .quad (window_pd + 0x3000 - ({kvo})) + {table}
    .fill 508, 8, 0

device_pd:
    .quad (device_pt - ({kvo})) + {table}
    .fill 511, 8, 0

    .globl device_pt
device_pt:
    .fill 512, 8, 0

    .globl window_pd
window_pd:
    .fill 2048, 8, 0

direct_pdpt:
    .quad (direct_pd - ({kvo})) + {table}
    .quad (direct_pd + 0x1000 - ({kvo})) + {table}
    .quad (direct_pd + 0x2000 - ({kvo})) + {table}
    .quad (direct_pd + 0x3000 - ({kvo})) + {table}
    .fill 508, 8, 0

    /* Physical 0..2 MiB with one large page until `init` swaps in kernel_pt. */
    .globl kernel_pd
kernel_pd:
    .quad {boot_large}
    .fill 511, 8, 0

    .globl kernel_pt
kernel_pt:
    .fill 512, 8, 0

    .globl direct_pd
direct_pd:
    .fill 2048, 8, 0

    .text
    "#,
    kvo = const KERNEL_VIRT_OFFSET as i64,
    table = const TABLE,
    boot_large = const PRESENT | WRITABLE | LARGE,
    options(att_syntax)
);

unsafe extern "C" {
    static mut boot_pml4: [u64; 512];
    static mut kernel_pd: [u64; 512];
    static mut kernel_pt: [u64; 512];
    static mut direct_pd: [u64; 2048];
    static mut window_pd: [u64; 2048];
    static mut device_pt: [u64; 512];

    // Linker-script symbols (only their addresses mean anything).
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
    static __kernel_virt_start: u8;
    static __df_stack_guard: u8;
    static __df_stack_top: u8;
    static __boot_stack_guard: u8;
}

/// Physical address of a kernel-image object from its virtual address.
fn kernel_phys(va: u64) -> u64 {
    va - KERNEL_VIRT_OFFSET
}

/// The physical range `[start, end)` occupied by the kernel image (boot stub
/// to the top of the stacks).
pub fn kernel_image_phys() -> (u64, u64) {
    let start = kernel_phys(&raw const __kernel_virt_start as u64);
    let end = kernel_phys(&raw const __kernel_end as u64);
    (start, end)
}

/// The top of the double-fault stack (TSS IST1), above its guard page.
pub fn df_stack_top() -> u64 {
    &raw const __df_stack_top as u64
}

/// Maps the kernel image with 4 KiB pages and its real permissions, unmaps
/// the stack guard pages and drops the boot identity map.
///
/// Runs once, first thing in `kmain`, on the boot stack (which stays mapped).
pub fn init() {
    let text_start = &raw const __text_start as u64;
    let text_end = &raw const __text_end as u64;
    let rodata_end = &raw const __rodata_end as u64;
    let end = &raw const __kernel_end as u64;
    let guards = [
        &raw const __df_stack_guard as u64,
        &raw const __boot_stack_guard as u64,
    ];
    let pt = &raw mut kernel_pt as *mut u64;

    let mut va = text_start;
    while va < end {
        let flags = if guards.contains(&va) {
            0
        } else if va < text_end {
            PRESENT
        } else if va < rodata_end {
            PRESENT | NO_EXECUTE
        } else {
            PRESENT | WRITABLE | NO_EXECUTE
        };
        let pa = kernel_phys(va);
        let entry = if flags == 0 { 0 } else { pa | flags };
        // SAFETY: the linker script keeps the image below 2 MiB, so the index
        // is < 512; kernel_pt is not in use yet (kernel_pd[0] is still the
        // boot large page), so writing it changes no live translation.
        unsafe { pt.add(((pa >> 12) & 511) as usize).write(entry) };
        va += PAGE_SIZE;
    }

    let pt_entry = kernel_phys(pt as u64) | TABLE;
    // SAFETY: kernel_pt now maps every page the kernel uses with the same
    // physical addresses as the large page it replaces, so the switch is
    // invisible to the running code; the identity map (PML4[0]) is only used
    // by the 32-bit stub, which is done. The CR3 reload flushes the TLB.
    unsafe {
        (&raw mut kernel_pd as *mut u64).write(pt_entry);
        (&raw mut boot_pml4 as *mut u64).write(0);
        cpu::write_cr3(kernel_phys(&raw const boot_pml4 as u64));
    }
}

/// Makes `[paddr, paddr + len)` readable through the direct map and returns
/// it, or `None` if the direct map does not reach that far.
///
/// # Safety
/// Nothing may write the range (through any mapping, or by DMA) while the
/// returned slice is in use, and it must not hold memory the kernel mutates.
pub unsafe fn map_phys(paddr: u64, len: u64) -> Option<&'static [u8]> {
    let end = paddr.checked_add(len)?;
    if end > DIRECT_MAP_SIZE {
        return None;
    }
    if len > 0 {
        let pd = &raw mut direct_pd as *mut u64;
        for frame in paddr / LARGE_PAGE_SIZE..=(end - 1) / LARGE_PAGE_SIZE {
            // SAFETY: frame < DIRECT_MAP_SIZE / 2 MiB = 2048 entries of
            // direct_pd; the kernel is single-threaded during boot.
            unsafe {
                let slot = pd.add(frame as usize);
                if slot.read() == 0 {
                    slot.write((frame * LARGE_PAGE_SIZE) | PRESENT | LARGE | NO_EXECUTE);
                    cpu::invlpg(DIRECT_MAP_BASE + frame * LARGE_PAGE_SIZE);
                }
            }
        }
    }
    let ptr = (DIRECT_MAP_BASE + paddr) as *const u8;
    // SAFETY: every page of the range is mapped (above) and stays mapped (the
    // direct map is never torn down); the caller guarantees no writers.
    Some(unsafe { core::slice::from_raw_parts(ptr, len as usize) })
}

/// The physical address of the kernel's own PML4 (the one without shards);
/// every shard PML4 copies its upper half.
pub fn kernel_pml4_phys() -> u64 {
    kernel_phys(&raw const boot_pml4 as u64)
}

/// The kernel's PML4 entries 256..512 (the shared kernel half).
pub fn kernel_half() -> &'static [u64] {
    let table = &raw const boot_pml4;
    // SAFETY: boot_pml4 is static; after `init` its upper half is only read
    // (the entries point at static lower-level tables that never move).
    let all: &[u64; 512] = unsafe { &*table };
    &all[256..]
}

/// Maps `[paddr, paddr + len)` read-write into the frame window (2 MiB
/// pages) and returns `false` if the window does not reach that far.
pub fn window_map(paddr: u64, len: u64) -> bool {
    let Some(end) = paddr.checked_add(len) else {
        return false;
    };
    if end > DIRECT_MAP_SIZE {
        return false;
    }
    if len == 0 {
        return true;
    }
    let pd = &raw mut window_pd as *mut u64;
    for frame in paddr / LARGE_PAGE_SIZE..=(end - 1) / LARGE_PAGE_SIZE {
        // SAFETY: frame < 2048 (checked above); single CPU, interrupts off.
        unsafe {
            let slot = pd.add(frame as usize);
            if slot.read() == 0 {
                slot.write((frame * LARGE_PAGE_SIZE) | PRESENT | WRITABLE | LARGE | NO_EXECUTE);
                cpu::invlpg(WINDOW_BASE + frame * LARGE_PAGE_SIZE);
            }
        }
    }
    true
}

/// The window address of physical `paddr` (mapped by [`window_map`]).
pub fn window(paddr: u64) -> *mut u8 {
    (WINDOW_BASE + paddr) as *mut u8
}

/// Maps one device register page uncached at slot `slot` of the device
/// table and returns its virtual address.
pub fn map_device_page(slot: usize, paddr: u64) -> u64 {
    let slot = slot % 512;
    let va = DEVICE_BASE + slot as u64 * PAGE_SIZE;
    // SAFETY: slot < 512; the device table is only written here, with
    // interrupts off on the only running CPU.
    unsafe {
        (&raw mut device_pt as *mut u64).add(slot).write(
            (paddr & ADDR_MASK) | PRESENT | WRITABLE | WRITE_THROUGH | CACHE_DISABLE | NO_EXECUTE,
        );
    }
    cpu::invlpg(va);
    va
}

/// Maps `[paddr, paddr + len)` (device memory below 4 GiB: a BAR, the
/// LAPIC) writable, uncached and no-execute through the direct map and
/// returns its virtual address, or `None` past the direct map's reach.
/// The 2 MiB pages it touches become uncached device mappings for good.
///
/// # Safety
/// The range must not hold RAM the kernel reads through `map_phys` (its
/// pages turn writable and uncached) and accesses must suit the device.
pub unsafe fn map_mmio(paddr: u64, len: u64) -> Option<*mut u8> {
    const CACHE_DISABLE: u64 = 1 << 4;
    const WRITE_THROUGH: u64 = 1 << 3;
    let end = paddr.checked_add(len)?;
    if end > DIRECT_MAP_SIZE || len == 0 {
        return None;
    }
    let pd = &raw mut direct_pd as *mut u64;
    for frame in paddr / LARGE_PAGE_SIZE..=(end - 1) / LARGE_PAGE_SIZE {
        let entry = (frame * LARGE_PAGE_SIZE)
            | PRESENT
            | WRITABLE
            | LARGE
            | CACHE_DISABLE
            | WRITE_THROUGH
            | NO_EXECUTE;
        // SAFETY: frame < 2048 (checked against DIRECT_MAP_SIZE above); the
        // kernel is single-threaded here; invlpg drops any stale entry.
        unsafe { pd.add(frame as usize).write(entry) };
        cpu::invlpg(DIRECT_MAP_BASE + frame * LARGE_PAGE_SIZE);
    }
    Some((DIRECT_MAP_BASE + paddr) as *mut u8)
}
