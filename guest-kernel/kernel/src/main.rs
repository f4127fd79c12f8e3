//! coconut guest-kernel: a `no_std` x86-64 capability microkernel for coco
//! guests (docs/guest-kernel.md).
//!
//! PVH entry (boot.rs) → `kmain`, which sets up the CPU tables, reads the
//! boot information the loader left (command line, memory map, modules,
//! ACPI) and reports it on COM1 in the fixed format the tests assert; then
//! `start::shards` loads the boot manifest's shards from the ramdisk and the
//! scheduler runs them in ring 3 until none is left (profiling table, exit
//! status). Without a manifest the kernel acts on `coco.after=` as before.
//!
//! Everything in ring 0 is emulated instruction by instruction on kvm-pvm
//! hosts (/work/shared/reference/kvm-pvm.md), so the kernel does as little
//! as it can: static page tables, no heap, no `core::fmt` outside rare
//! error paths, mappings instead of copies.
//!
//! Module map: `boot` (entry asm), `paging` (layout, kernel page tables,
//! frame window), `gdt` / `idt` (CPU tables, every kernel entry), `kernel`
//! (state, traps, scheduler), `syscalls` / `ipc` / `devices` (the system
//! calls), `uspace` (shard page tables, checked user pointers), `loader` /
//! `ext2` (shards from the ramdisk; ELF validation is coconut-core's), `frames`, `timer`, `start`,
//! `shard` (control block), `serial` (COM1), `cpu` (privileged
//! instructions), `pvh` / `memmap` / `acpi` (parsers), `physmem`, `report`,
//! `panic`.
#![no_std]
#![no_main]

mod acpi;
mod boot;
mod bytes;
mod cpu;
mod devices;
mod edu;
mod ext2;
mod frames;
mod gdt;
mod idt;
mod ipc;
mod kernel;
mod loader;
mod memmap;
mod paging;
mod panic;
mod pci;
mod physmem;
mod pvh;
mod report;
mod serial;
mod shard;
mod start;
mod syscalls;
mod timer;
mod uspace;

use coconut_abi::{After, Selftest, exit, milestone};

use crate::serial::out;

/// The Rust entry point, called by boot.rs on the boot stack with the
/// physical address of `hvm_start_info` (EBX at the PVH entry).
extern "C" fn kmain(start_info_phys: u32) -> ! {
    serial::init();
    gdt::init(paging::df_stack_top());
    idt::init();
    paging::init();

    out()
        .s("coconut guest-kernel ")
        .s(env!("CARGO_PKG_VERSION"))
        .s(" booting (PVH)")
        .nl();
    let options = report::boot_report(u64::from(start_info_phys));

    cpu::milestone(milestone::KERNEL_READY);
    out().s("kernel ready").nl();
    if let Some(status) = edu::run_if_requested(u64::from(start_info_phys)) {
        cpu::exit(status);
    }
    match options.selftest {
        Some(Selftest::Panic) => panic!("selftest: deliberate kernel panic"),
        Some(Selftest::PageFault) => {
            out().s("selftest: reading unmapped address 0x1000").nl();
            // SAFETY: deliberately faulting: the lower half is unmapped after
            // boot, so this read raises #PF, which the IDT reports before it
            // ends the VM with KERNEL_PANIC.
            let _ = unsafe { core::ptr::read_volatile(0x1000 as *const u64) };
            panic!("selftest: reading 0x1000 did not fault")
        }
        None => {}
    }
    start::shards(&options);
    match options.after {
        After::Exit => cpu::exit(exit::SUCCESS),
        After::Halt => {
            out()
                .s("idle: halting until the VMM stops the machine")
                .nl();
            cpu::halt_forever()
        }
    }
}
