//! The interrupt descriptor table and every way into the kernel.
//!
//! One kernel stack (Hubris/seL4 style): TSS.RSP0 points at the END of the
//! running shard's register save area ([`SaveArea`], in its control block),
//! so an exception or interrupt from ring 3 makes the CPU push the iret
//! frame straight into that save area; the entry stub pushes an error code
//! (0 when the CPU pushes none), the vector and the 15 general registers
//! below it, and the shard's whole state is saved without a copy. Then the
//! stub switches to the one kernel stack and calls [`crate::kernel::trap`],
//! which returns the save area of the shard to run next; `resume_user` pops
//! it and leaves with `iretq` (never `sysretq`: it is fatal on kvm-pvm).
//!
//! The `syscall` gate (hardware KVM, `coco.gate=syscall`): `syscall_entry`
//! is LSTAR. It runs in ring 0 on the user stack with IF cleared by SFMASK,
//! keeps the user RSP in a static (only the boot CPU runs), switches to the
//! save area like the CPU would and builds the same frame (return RIP from
//! RCX, RFLAGS from R11, vector [`SYSCALL_VECTOR`]).
//!
//! The trap gate (kvm-pvm, `coco.gate=trap`): `syscall` reaches LSTAR still
//! in ring 3; LSTAR's page is supervisor-only, so it takes #PF with RIP ==
//! LSTAR, which arrives through the exception path above; the kernel treats
//! that as the system call.
//!
//! From ring 0 (the idle loop's `sti; hlt`): the timer and device
//! interrupts are handled on the current stack and return with `iretq`, as
//! does an NMI; any exception is a kernel bug and ends the VM with `panic: exception <n> (<name>) at rip=0x…
//! err=0x… cr2=0x…` and `exit::KERNEL_PANIC`. A double fault runs on IST1.

use core::arch::{asm, global_asm};
use core::mem::size_of;

use coconut_abi::exit;

use crate::devices::{IRQ_LINES, IRQ_VECTOR_BASE};
use crate::{cpu, gdt, serial::out};

/// The double-fault vector (runs on IST1).
const DOUBLE_FAULT: usize = 8;
/// Distance between entry stubs (`.balign 16` in the block).
const STUB_STRIDE: u64 = 16;
/// Stubs in the block: vectors 0..STUBS (exceptions, the timer, and the
/// IOAPIC lines; 33..48 get no gate).
const STUBS: usize = IRQ_VECTOR_END as usize;
/// The first vector after the IOAPIC lines.
const IRQ_VECTOR_END: u64 = IRQ_VECTOR_BASE + IRQ_LINES as u64;
/// The local APIC timer's vector.
pub const TIMER_VECTOR: u64 = 32;
/// The local APIC's spurious-interrupt vector (its stub only returns).
pub const SPURIOUS_VECTOR: u64 = 0xff;
/// The pseudo-vector the `syscall` stub records.
pub const SYSCALL_VECTOR: u64 = 0x100;

/// A shard's registers as the entry path saves them (lowest address first).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
#[allow(missing_docs, reason = "register names")]
pub struct SaveArea {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Exception vector, [`TIMER_VECTOR`] or [`SYSCALL_VECTOR`].
    pub vector: u64,
    /// The CPU's error code (0 when it pushes none).
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

// The stubs below hard-code this layout: 15 registers, vector, error, then
// the CPU's frame; RSP0 must stay 16-aligned, so the size must be too.
const _: () = assert!(size_of::<SaveArea>() == 22 * 8 && size_of::<SaveArea>().is_multiple_of(16));

/// The user RSP while the `syscall` stub switches stacks.
#[unsafe(no_mangle)]
static mut SYSCALL_USER_RSP: u64 = 0;
/// Mirror of TSS.RSP0 for the `syscall` stub (which the CPU does not switch).
#[unsafe(no_mangle)]
static mut CURRENT_RSP0: u64 = 0;

global_asm!(
    r#"
    .macro entry_stub vector, has_error
    .balign 16
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vector
    jmp trap_common
    .endm

    .section .text.entry_stubs, "ax", @progbits
    .balign 16
    .globl entry_stubs
entry_stubs:
    entry_stub 0, 0
    entry_stub 1, 0
    entry_stub 2, 0
    entry_stub 3, 0
    entry_stub 4, 0
    entry_stub 5, 0
    entry_stub 6, 0
    entry_stub 7, 0
    entry_stub 8, 1
    entry_stub 9, 0
    entry_stub 10, 1
    entry_stub 11, 1
    entry_stub 12, 1
    entry_stub 13, 1
    entry_stub 14, 1
    entry_stub 15, 0
    entry_stub 16, 0
    entry_stub 17, 1
    entry_stub 18, 0
    entry_stub 19, 0
    entry_stub 20, 0
    entry_stub 21, 1
    entry_stub 22, 0
    entry_stub 23, 0
    entry_stub 24, 0
    entry_stub 25, 0
    entry_stub 26, 0
    entry_stub 27, 0
    entry_stub 28, 0
    entry_stub 29, 1
    entry_stub 30, 1
    entry_stub 31, 0
    entry_stub {timer}, 0
    .irp v, 33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71
    entry_stub \v, 0
    .endr
    /* Each stub is at most 9 bytes, so `.balign 16` puts stub n at 16 * n. */

    .balign 16
    .globl spurious_entry
spurious_entry:
    iretq

    /* LSTAR. Ring 0 (hardware gate), user RSP, IF clear. */
    .balign 16
    .globl syscall_entry
syscall_entry:
    movq %rsp, SYSCALL_USER_RSP(%rip)
    movq CURRENT_RSP0(%rip), %rsp
    pushq ${user_ds}
    pushq SYSCALL_USER_RSP(%rip)
    pushq %r11
    pushq ${user_cs}
    pushq %rcx
    pushq $0
    pushq ${syscall_vector}
    jmp save_user

trap_common:
    /* RSP: vector, error, rip, cs, rflags, rsp, ss. */
    testb $3, 24(%rsp)
    jz from_kernel
save_user:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    /* Ring 3 may leave DF set; the kernel's Rust code needs it clear. */
    cld
    movq %rsp, %rdi
    leaq __boot_stack_top(%rip), %rsp
    call {trap}
    movq %rax, %rdi
    .globl resume_user
resume_user:
    /* RDI: the save area to resume (already sanitised by the kernel). */
    movq %rdi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

from_kernel:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    movq %rsp, %rbx
    andq $-16, %rsp
    call {kernel_trap}
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

    .purgem entry_stub
    .text
    "#,
    timer = const TIMER_VECTOR,
    user_ds = const gdt::USER_DS,
    user_cs = const gdt::USER_CS,
    syscall_vector = const SYSCALL_VECTOR,
    trap = sym crate::kernel::trap,
    kernel_trap = sym trap_from_kernel,
    options(att_syntax)
);

unsafe extern "C" {
    /// The block of entry stubs (code, not callable from Rust).
    fn entry_stubs();
    /// The spurious-interrupt stub.
    fn spurious_entry();
    /// LSTAR.
    fn syscall_entry();
    /// Pops a save area and `iretq`s to ring 3 (RDI = the save area).
    fn resume_user(save: *const SaveArea) -> !;
}

/// The address of the `syscall` entry (LSTAR).
pub fn syscall_entry_address() -> u64 {
    syscall_entry as *const () as u64
}

/// Points RSP0 (and the `syscall` stub's mirror of it) at the end of `save`.
pub fn set_save_area(save: *mut SaveArea) {
    let end = save as u64 + size_of::<SaveArea>() as u64;
    gdt::set_rsp0(end);
    // SAFETY: single CPU, interrupts off; the stub reads it on the next entry.
    unsafe { CURRENT_RSP0 = end };
}

/// Enters ring 3 with the registers in `save` (sanitised by the caller).
pub fn enter_user(save: *const SaveArea) -> ! {
    // SAFETY: `save` holds a complete frame with user selectors, a canonical
    // user RIP and safe RFLAGS (the kernel sanitises every frame it resumes);
    // the active CR3 maps the shard and the kernel half.
    unsafe { resume_user(save) }
}

/// 256 gates of two words each.
#[repr(C, align(16))]
struct Idt([u64; 512]);

static mut IDT: Idt = Idt([0; 512]);

/// The operand of `lidt`.
#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

fn set_gate(idt: *mut u64, vector: usize, handler: u64, ist: u64) {
    // Present, DPL 0, 64-bit interrupt gate (IF cleared on entry).
    let low = (handler & 0xffff)
        | (u64::from(gdt::KERNEL_CS) << 16)
        | (ist << 32)
        | (0x8e << 40)
        | (((handler >> 16) & 0xffff) << 48);
    let high = handler >> 32;
    // SAFETY: vector < 256, so both words are inside the 512-word table,
    // which is not loaded yet while `init` fills it.
    unsafe {
        idt.add(2 * vector).write(low);
        idt.add(2 * vector + 1).write(high);
    }
}

/// Fills the IDT with the entry stubs and loads it.
pub fn init() {
    let stubs = entry_stubs as *const () as u64;
    let idt = &raw mut IDT as *mut u64;
    for vector in (0..=TIMER_VECTOR as usize).chain(IRQ_VECTOR_BASE as usize..STUBS) {
        let ist: u64 = if vector == DOUBLE_FAULT { 1 } else { 0 };
        set_gate(idt, vector, stubs + vector as u64 * STUB_STRIDE, ist);
    }
    set_gate(
        idt,
        SPURIOUS_VECTOR as usize,
        spurious_entry as *const () as u64,
        0,
    );
    // The masked legacy PICs' vectors (spurious IRQ7/IRQ15 only).
    let pic = usize::from(crate::timer::PIC_VECTOR_BASE);
    for vector in pic..pic + 16 {
        set_gate(idt, vector, spurious_entry as *const () as u64, 0);
    }
    let pointer = DescriptorPointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: idt as u64,
    };
    // SAFETY: the table holds valid gates to the stubs above.
    unsafe {
        asm!("lidt [{}]", in(reg) &raw const pointer, options(readonly, nostack, preserves_flags))
    };
}

/// The name of an exception vector in kernel panic reports.
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

/// Entries while the CPU was in ring 0: the timer during idle returns; any
/// exception is a kernel bug.
extern "C" fn trap_from_kernel(frame: &SaveArea) {
    if frame.vector == TIMER_VECTOR || (IRQ_VECTOR_BASE..IRQ_VECTOR_END).contains(&frame.vector) {
        crate::kernel::interrupt_in_idle(frame.vector);
        return;
    }
    // An NMI is nobody's bug here either: return to what it interrupted.
    if frame.vector == 2 {
        return;
    }
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
