//! The processor state a guest starts in.
//!
//! PVH (and multiboot) enter in 32-bit protected mode with paging off, flat
//! code and data segments, interrupts off, and EBX pointing at the boot
//! information. The VMM writes a small GDT into guest memory that matches the
//! segment registers it loads, so a guest that reloads a selector before
//! installing its own GDT still gets what it had.
//!
//! Linux's 64-bit boot protocol enters in long mode instead: paging on with
//! an identity map the VMM built, `__BOOT_CS` (0x10) a flat 64-bit code
//! segment, `__BOOT_DS` (0x18) flat data, interrupts off, RSI pointing at
//! the zero page. It has its own GDT ([`LINUX_GDT_ENTRIES`]) so the PVH one
//! stays as it is.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment, kvm_sregs};

use super::layout::{BOOT_GDT, BOOT_IDT, LINUX_BOOT_GDT};

/// Selector of the flat 32-bit code segment.
pub const CODE32_SELECTOR: u16 = 0x08;
/// Selector of the flat data segment.
pub const DATA_SELECTOR: u16 = 0x10;
/// Selector of the boot TSS.
pub const TSS_SELECTOR: u16 = 0x18;

/// `__BOOT_CS` of Linux's boot protocol: flat 64-bit code.
pub const LINUX_CODE64_SELECTOR: u16 = 0x10;
/// `__BOOT_DS`: flat data.
pub const LINUX_DATA_SELECTOR: u16 = 0x18;
/// The 64-bit TSS of the Linux boot GDT.
pub const LINUX_TSS_SELECTOR: u16 = 0x20;

const CR0_PE: u64 = 1;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const RFLAGS_RESERVED: u64 = 1 << 1;

/// Encodes one GDT descriptor. `flags` holds the access byte in bits 0..8 and
/// the G/DB/L/AVL nibble in bits 12..16.
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    let base = base as u64;
    let limit = limit as u64;
    let flags = flags as u64;
    ((base & 0xff00_0000) << 32)
        | ((flags & 0xf0ff) << 40)
        | ((limit & 0x000f_0000) << 32)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0x0000_ffff)
}

/// The boot GDT: null, 32-bit code, data, 32-bit TSS.
pub const BOOT_GDT_ENTRIES: [u64; 4] = [
    0,
    gdt_entry(0xc09b, 0, 0xfffff),
    gdt_entry(0xc093, 0, 0xfffff),
    gdt_entry(0x008b, 0, 0x67),
];

/// The Linux boot GDT: null, null, 64-bit code (`__BOOT_CS`), data
/// (`__BOOT_DS`), and a 64-bit TSS (two slots; the upper half, base bits
/// 32..64, is zero).
pub const LINUX_GDT_ENTRIES: [u64; 6] = [
    0,
    0,
    gdt_entry(0xa09b, 0, 0xfffff),
    gdt_entry(0xc093, 0, 0xfffff),
    gdt_entry(0x008b, 0, 0x67),
    0,
];

/// Decodes a GDT descriptor into the segment register KVM loads.
pub fn segment_from_gdt(entry: u64, selector: u16) -> kvm_segment {
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let raw_limit = (entry & 0xffff) | ((entry >> 32) & 0x000f_0000);
    let access = (entry >> 40) & 0xff;
    let flags = (entry >> 52) & 0xf;
    let granular = flags & 0x8 != 0;
    let limit = if granular {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    };
    kvm_segment {
        base,
        limit: limit as u32,
        selector,
        type_: (access & 0xf) as u8,
        present: ((access >> 7) & 1) as u8,
        dpl: ((access >> 5) & 3) as u8,
        db: ((flags >> 2) & 1) as u8,
        s: ((access >> 4) & 1) as u8,
        l: ((flags >> 1) & 1) as u8,
        g: granular as u8,
        avl: (flags & 1) as u8,
        unusable: 0,
        padding: 0,
    }
}

/// Loads flat segments from a boot GDT at `gdt_base` (`code`, `data` and
/// `tss` are (entry, selector) pairs from it) and the empty boot IDT.
fn load_boot_segments(
    sregs: &mut kvm_sregs,
    gdt: &[u64],
    gdt_base: u64,
    code: (usize, u16),
    data: (usize, u16),
    tss: (usize, u16),
) {
    let data_seg = segment_from_gdt(gdt[data.0], data.1);
    sregs.cs = segment_from_gdt(gdt[code.0], code.1);
    sregs.ds = data_seg;
    sregs.es = data_seg;
    sregs.fs = data_seg;
    sregs.gs = data_seg;
    sregs.ss = data_seg;
    sregs.tr = segment_from_gdt(gdt[tss.0], tss.1);
    sregs.gdt.base = gdt_base;
    sregs.gdt.limit = (gdt.len() * 8 - 1) as u16;
    sregs.idt.base = BOOT_IDT;
    sregs.idt.limit = 7;
}

/// Special registers for a 32-bit protected-mode entry (PVH, multiboot).
/// `base` is what KVM returned for the vCPU; only the boot state is replaced.
pub fn protected_mode_sregs(base: &kvm_sregs) -> kvm_sregs {
    let mut sregs = *base;
    load_boot_segments(
        &mut sregs,
        &BOOT_GDT_ENTRIES,
        BOOT_GDT,
        (1, CODE32_SELECTOR),
        (2, DATA_SELECTOR),
        (3, TSS_SELECTOR),
    );
    sregs.cr0 = CR0_PE | CR0_ET;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    sregs
}

/// Special registers for Linux's 64-bit entry: long mode (CR0 PE|PG, CR4
/// PAE, EFER LME|LMA) on the identity map whose PML4 is at `pml4`, CS the
/// 64-bit `__BOOT_CS`, data segments `__BOOT_DS`, TR the 64-bit TSS.
pub fn long_mode_sregs(base: &kvm_sregs, pml4: u64) -> kvm_sregs {
    let mut sregs = *base;
    load_boot_segments(
        &mut sregs,
        &LINUX_GDT_ENTRIES,
        LINUX_BOOT_GDT,
        (2, LINUX_CODE64_SELECTOR),
        (3, LINUX_DATA_SELECTOR),
        (4, LINUX_TSS_SELECTOR),
    );
    sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
    sregs.cr3 = pml4;
    sregs.cr4 = CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
    sregs
}

/// General registers for Linux's 64-bit entry at `entry` (load address +
/// 0x200) with RSI = the zero page.
pub fn linux64_entry_regs(entry: u64, zero_page: u64) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rsi: zero_page,
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    }
}

/// General registers for a 32-bit entry at `entry` with EBX = `ebx` (and
/// EAX = `eax`, the multiboot magic; 0 for PVH).
pub fn entry_regs(entry: u64, ebx: u64, eax: u64) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rbx: ebx,
        rax: eax,
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    }
}

/// The x87/SSE state at reset.
pub fn reset_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_entries_encode_flat_segments() {
        assert_eq!(BOOT_GDT_ENTRIES[1], 0x00cf_9b00_0000_ffff);
        assert_eq!(BOOT_GDT_ENTRIES[2], 0x00cf_9300_0000_ffff);
        assert_eq!(BOOT_GDT_ENTRIES[3], 0x0000_8b00_0000_0067);
    }

    #[test]
    fn pvh_entry_state_matches_the_spec() {
        let sregs = protected_mode_sregs(&kvm_sregs::default());
        // 32-bit protected mode, paging off.
        assert_eq!(sregs.cr0 & 1, 1);
        assert_eq!(sregs.cr0 & (1 << 31), 0);
        assert_eq!(sregs.efer, 0);
        // CS: 32-bit execute/read, flat 4 GiB.
        assert_eq!((sregs.cs.base, sregs.cs.limit), (0, 0xffff_ffff));
        assert_eq!(
            (sregs.cs.db, sregs.cs.l, sregs.cs.type_, sregs.cs.s),
            (1, 0, 0xb, 1)
        );
        assert_eq!(sregs.cs.selector, CODE32_SELECTOR);
        // DS/ES/SS: 32-bit read/write, flat.
        for seg in [sregs.ds, sregs.es, sregs.ss] {
            assert_eq!(
                (seg.base, seg.limit, seg.type_, seg.db),
                (0, 0xffff_ffff, 0x3, 1)
            );
        }
        // TR: 32-bit busy TSS.
        assert_eq!((sregs.tr.type_, sregs.tr.s, sregs.tr.limit), (0xb, 0, 0x67));
        let regs = entry_regs(0x10_0000, 0x6000, 0);
        assert_eq!((regs.rip, regs.rbx), (0x10_0000, 0x6000));
        // IF and VM clear.
        assert_eq!(regs.rflags & ((1 << 9) | (1 << 17)), 0);
    }

    #[test]
    fn linux_64_bit_entry_state_is_long_mode_with_boot_cs_and_ds() {
        let sregs = long_mode_sregs(&kvm_sregs::default(), 0x9000);
        assert_eq!(sregs.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
        assert_eq!(sregs.cr4 & CR4_PAE, CR4_PAE);
        assert_eq!(sregs.efer, EFER_LME | EFER_LMA);
        assert_eq!(sregs.cr3, 0x9000);
        // CS: 64-bit code (L=1 requires D=0), selector __BOOT_CS.
        assert_eq!(
            (sregs.cs.selector, sregs.cs.l, sregs.cs.db, sregs.cs.type_),
            (0x10, 1, 0, 0xb)
        );
        assert_eq!((sregs.cs.present, sregs.cs.s, sregs.cs.dpl), (1, 1, 0));
        // Data: __BOOT_DS, flat read/write.
        for seg in [sregs.ds, sregs.es, sregs.ss, sregs.fs, sregs.gs] {
            assert_eq!(
                (seg.selector, seg.base, seg.limit, seg.type_),
                (0x18, 0, 0xffff_ffff, 0x3)
            );
        }
        // TR: busy 64-bit TSS; the GDT is the Linux one, TSS in two slots.
        assert_eq!(
            (sregs.tr.selector, sregs.tr.type_, sregs.tr.s),
            (0x20, 0xb, 0)
        );
        assert_eq!(sregs.gdt.base, LINUX_BOOT_GDT);
        assert_eq!(sregs.gdt.limit, 47);
        assert_eq!(LINUX_GDT_ENTRIES[2], 0x00af_9b00_0000_ffff);
        assert_eq!(LINUX_GDT_ENTRIES[3], 0x00cf_9300_0000_ffff);
        assert_eq!(LINUX_GDT_ENTRIES[5], 0);
        let regs = linux64_entry_regs(0x10_0200, 0x8000);
        assert_eq!((regs.rip, regs.rsi), (0x10_0200, 0x8000));
        assert_eq!(regs.rflags, 2);
    }

    #[test]
    fn segment_decoding_round_trips_base_and_limit() {
        let seg = segment_from_gdt(gdt_entry(0x4093, 0x1234_5678, 0xabcde), 0x28);
        assert_eq!(seg.base, 0x1234_5678);
        assert_eq!(seg.limit, 0xabcde);
        assert_eq!((seg.g, seg.db, seg.present, seg.dpl), (0, 1, 1, 0));
    }
}
