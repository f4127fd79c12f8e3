//! The PVH entry: from the loader's 32-bit protected mode to `kmain` in the
//! higher half.
//!
//! The loader finds the entry through the Xen ELF note below
//! (XEN_ELFNOTE_PHYS32_ENTRY) and jumps there with paging off, flat 32-bit
//! segments, interrupts off and EBX = physical address of `hvm_start_info`.
//! The stub (section `.boot32`, linked at its physical address):
//!
//! 1. reports milestone KERNEL_ENTRY on the boot-timer port (first thing);
//! 2. loads the GDT (gdt.rs) through its physical address;
//! 3. enables PAE, EFER.LME + EFER.NXE, then paging with the pre-filled
//!    tables of paging.rs (identity 0..2 MiB + the higher-half image), CR0.WP;
//! 4. far-returns into 64-bit code (`lret`: on the emulator's list, unlike
//!    `ljmp`), which jumps to the higher half;
//! 5. there: reloads the GDT by its virtual address, sets the data segments
//!    and the boot stack, zeroes `.bss` and calls `kmain(start_info_phys)`.
//!
//! About 40 instructions end to end (22 in the 32-bit stub), no loops apart
//! from the `.bss` clear (`rep stosq` over ~650 bytes). EBX is preserved
//! throughout. The stub uses only mov, or, out, lgdt, rdmsr/wrmsr, push and
//! lret; the instruction census (images/tests/insn_census.rs) decodes
//! `.boot32` as 32-bit code and everything else as 64-bit.

use core::arch::global_asm;

use coconut_abi::{milestone, ports};

use crate::gdt::{self, GDT_LIMIT, KERNEL_CS, KERNEL_DS};
use crate::paging::KERNEL_VIRT_OFFSET;

/// `XEN_ELFNOTE_PHYS32_ENTRY`.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

const CR0_PE: u32 = 1 << 0;
const CR0_WP: u32 = 1 << 16;
const CR0_PG: u32 = 1 << 31;
const CR4_PAE: u32 = 1 << 5;
const MSR_EFER: u32 = 0xc000_0080;
const EFER_LME: u32 = 1 << 8;
const EFER_NXE: u32 = 1 << 11;

global_asm!(
    r#"
    /* The PVH entry note; 4-byte aligned fields, as loaders expect. */
    .section .xen_pvh_note, "a", @note
    .balign 4
    .long 4                 /* namesz */
    .long 4                 /* descsz */
    .long {note_type}
    .asciz "Xen"
    .long pvh_start32       /* desc: physical entry address */
    .balign 4

    .section .boot.text, "ax", @progbits
    .code32
    .globl pvh_start32
pvh_start32:
    movl ${entry_milestone}, %eax
    movw ${boot_timer}, %dx
    outl %eax, %dx

    /* A stack, only for the lret below (physical address of the boot stack). */
    movl $(__boot_stack_top - ({kvo})), %esp
    lgdtl (gdt_pointer32 - ({kvo}))

    movl %cr4, %eax
    orl ${cr4_pae}, %eax
    movl %eax, %cr4
    movl $(boot_pml4 - ({kvo})), %eax
    movl %eax, %cr3
    movl ${msr_efer}, %ecx
    rdmsr
    orl ${efer_bits}, %eax
    wrmsr
    movl %cr0, %eax
    orl ${cr0_bits}, %eax
    movl %eax, %cr0

    pushl ${kernel_cs}
    pushl $pvh_start64
    lretl

    /* Identity-mapped 64-bit trampoline: its own section so tools that
     * disassemble the image (the instruction census) know its mode. */
    .section .boot64.text, "ax", @progbits
    .code64
pvh_start64:
    movabsq $kernel_entry64, %rax
    jmpq *%rax

    /* Higher half from here on. */
    .section .text.kernel_entry64, "ax", @progbits
kernel_entry64:
    lgdt gdt_pointer64(%rip)
    movl ${kernel_ds}, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    xorl %eax, %eax
    movl %eax, %fs
    movl %eax, %gs
    leaq __boot_stack_top(%rip), %rsp

    leaq __bss_start(%rip), %rdi
    leaq __bss_end(%rip), %rcx
    subq %rdi, %rcx
    shrq $3, %rcx
    rep stosq

    movl %ebx, %edi
    call {kmain}
1:  cli
    hlt
    jmp 1b

    .section .rodata.gdt_pointers, "a", @progbits
    .balign 8
    .word 0, 0, 0
gdt_pointer64:
    .word {gdt_limit}
    .quad {gdt}
    .balign 8
    .word 0, 0, 0
gdt_pointer32:
    .word {gdt_limit}
    .long {gdt} - ({kvo})

    /* Checked by linker.ld against its KERNEL_VIRT_OFFSET. */
    .globl __rust_kernel_virt_offset
    .set __rust_kernel_virt_offset, {kvo_u}

    .text
    "#,
    note_type = const XEN_ELFNOTE_PHYS32_ENTRY,
    entry_milestone = const milestone::KERNEL_ENTRY,
    boot_timer = const ports::BOOT_TIMER,
    kvo = const KERNEL_VIRT_OFFSET as i64,
    kvo_u = const KERNEL_VIRT_OFFSET,
    cr4_pae = const CR4_PAE,
    msr_efer = const MSR_EFER,
    efer_bits = const EFER_LME | EFER_NXE,
    cr0_bits = const CR0_PE | CR0_WP | CR0_PG,
    kernel_cs = const KERNEL_CS,
    kernel_ds = const KERNEL_DS,
    gdt_limit = const GDT_LIMIT,
    gdt = sym gdt::GDT,
    kmain = sym crate::kmain,
    options(att_syntax)
);
