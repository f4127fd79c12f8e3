//! CPU exceptions (vectors 0–31): every one is fatal during boot. The stub
//! prints `panic: exception <n> (<name>) at rip=0x… err=0x… cr2=0x…` on COM1
//! and ends the VM with `exit::KERNEL_PANIC`.
//!
//! The 32 entry stubs are 16 bytes apart in one block, each pushing a zero
//! error code where the CPU pushes none, then the vector, so the Rust handler
//! sees one frame layout. A double fault (#DF) switches to its own stack
//! (IST1, see gdt.rs), which is what makes a boot-stack overflow into the
//! guard page reportable.
//!
//! Interrupt gates are used (IF cleared on entry); nothing returns.

use core::arch::{asm, global_asm};
use core::mem::size_of;

use coconut_abi::exit;

use crate::{cpu, gdt, serial::out};

/// The double-fault vector (runs on IST1).
const DOUBLE_FAULT: usize = 8;
/// Distance between entry stubs (`.balign 16` in the block).
const STUB_STRIDE: u64 = 16;
const VECTORS: usize = 32;

global_asm!(
    r#"
    .macro exception_stub vector, has_error
    .balign 16
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vector
    jmp exception_common
    .endm

    .section .text.exception_stubs, "ax", @progbits
    .balign 16
    .globl exception_stubs
exception_stubs:
    exception_stub 0, 0
    exception_stub 1, 0
    exception_stub 2, 0
    exception_stub 3, 0
    exception_stub 4, 0
    exception_stub 5, 0
    exception_stub 6, 0
    exception_stub 7, 0
    exception_stub 8, 1
    exception_stub 9, 0
    exception_stub 10, 1
    exception_stub 11, 1
    exception_stub 12, 1
    exception_stub 13, 1
    exception_stub 14, 1
    exception_stub 15, 0
    exception_stub 16, 0
    exception_stub 17, 1
    exception_stub 18, 0
    exception_stub 19, 0
    exception_stub 20, 0
    exception_stub 21, 1
    exception_stub 22, 0
    exception_stub 23, 0
    exception_stub 24, 0
    exception_stub 25, 0
    exception_stub 26, 0
    exception_stub 27, 0
    exception_stub 28, 0
    exception_stub 29, 1
    exception_stub 30, 1
    exception_stub 31, 0
    /* Each stub is at most 9 bytes, so `.balign 16` puts stub n at 16 * n. */

exception_common:
    /* RSP points at the frame: vector, error, rip, cs, rflags, rsp, ss. */
    movq %rsp, %rdi
    andq $-16, %rsp
    call {handler}
1:  cli
    hlt
    jmp 1b

    .purgem exception_stub
    .text
    "#,
    handler = sym exception_entry,
    options(att_syntax)
);

unsafe extern "C" {
    /// The block of entry stubs (code, not callable from Rust).
    fn exception_stubs();
}

/// What the stub leaves on the stack (the CPU pushes rip..ss; vectors 8,
/// 10–14, 17, 21, 29 and 30 come with an error code, the stub pushes 0 for
/// the others).
#[repr(C)]
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "the layout is the CPU's; the report uses some fields"
)]
struct ExceptionFrame {
    vector: u64,
    error: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// 32 gates of two words each.
#[repr(C, align(16))]
struct Idt([u64; 2 * VECTORS]);

static mut IDT: Idt = Idt([0; 2 * VECTORS]);

/// The operand of `lidt`.
#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// Fills the IDT with the exception stubs and loads it.
pub fn init() {
    let stubs = exception_stubs as *const () as u64;
    let idt = &raw mut IDT as *mut u64;
    for vector in 0..VECTORS {
        let handler = stubs + vector as u64 * STUB_STRIDE;
        let ist: u64 = if vector == DOUBLE_FAULT { 1 } else { 0 };
        // Present, DPL 0, 64-bit interrupt gate.
        let low = (handler & 0xffff)
            | (u64::from(gdt::KERNEL_CS) << 16)
            | (ist << 32)
            | (0x8e << 40)
            | (((handler >> 16) & 0xffff) << 48);
        let high = handler >> 32;
        // SAFETY: 2 * vector + 1 < 2 * VECTORS; the IDT is not loaded yet.
        unsafe {
            idt.add(2 * vector).write(low);
            idt.add(2 * vector + 1).write(high);
        }
    }
    let pointer = DescriptorPointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: idt as u64,
    };
    // SAFETY: the table holds valid gates to stubs that never return.
    unsafe {
        asm!("lidt [{}]", in(reg) &raw const pointer, options(readonly, nostack, preserves_flags))
    };
}

fn name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error",
        1 => "debug",
        2 => "non-maskable interrupt",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range exceeded",
        6 => "invalid opcode",
        7 => "device not available",
        8 => "double fault",
        9 => "coprocessor segment overrun",
        10 => "invalid tss",
        11 => "segment not present",
        12 => "stack-segment fault",
        13 => "general protection",
        14 => "page fault",
        16 => "x87 floating-point",
        17 => "alignment check",
        18 => "machine check",
        19 => "simd floating-point",
        20 => "virtualization",
        21 => "control protection",
        28 => "hypervisor injection",
        29 => "vmm communication",
        30 => "security",
        _ => "reserved",
    }
}

/// Called by `exception_common` with the frame the stub built.
extern "C" fn exception_entry(frame: &ExceptionFrame) -> ! {
    let cr2 = cpu::cr2();
    out()
        .s("panic: exception ")
        .dec(frame.vector)
        .s(" (")
        .s(name(frame.vector))
        .s(") at rip=")
        .hex(frame.rip)
        .s(" err=")
        .hex(frame.error)
        .s(" cr2=")
        .hex(cr2)
        .nl();
    cpu::exit(exit::KERNEL_PANIC)
}
