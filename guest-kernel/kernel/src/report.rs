//! The boot report: what the loader handed over, in the exact line formats
//! the boot tests assert (keep them stable):
//!
//! ```text
//! cmdline: <line> | cmdline: (none)
//! memmap: <N> entries
//! memmap: [0x<start:016x>-0x<end:016x>) <ram|reserved|acpi|nvs|unusable|type-<n>>
//! memory: <KiB of RAM> KiB usable
//! modules: <N>
//! module <i>: 0x<paddr> size <bytes>
//! module <i>: ext2, block size <n>, <blocks> blocks, label "<name>" | module <i>: not ext2
//! acpi: ...                                  (acpi.rs)
//! syscall gate: <syscall|trap>
//! ```
//!
//! Lines for situations the format does not cover (data outside the memory
//! map, oversized tables) start with the same prefixes.

use coconut_abi::cmdline::{AFTER, SELFTEST, SYSCALL_GATE};
use coconut_abi::{After, Selftest, SyscallGate, cmdline_value, exit};

use crate::acpi::{self, PhysMem};
use crate::cpu;
use crate::ext2;
use crate::memmap::{Kind, MemMap};
use crate::physmem::{BootMem, read_boot_info};
use crate::pvh::{self, MEMMAP_ENTRY_SIZE, MODLIST_ENTRY_SIZE, START_INFO_V1_SIZE, StartInfoError};
use crate::serial::out;

/// Memory-map entries the kernel looks at (the rest are counted only).
const MAX_MEMMAP_ENTRIES: u32 = 128;
/// Modules the kernel looks at.
const MAX_MODULES: u32 = 64;
/// Longest command line read.
const MAX_CMDLINE: u64 = 4096;

/// Most RAM ranges handed to the frame allocator.
pub const MAX_RAM_RANGES: usize = 32;

/// Boot options read from the command line, and what the kernel needs from
/// the boot information, for `kmain` to act on.
#[derive(Clone, Copy, Debug)]
pub struct BootOptions {
    /// What to do once ready.
    pub after: After,
    /// A deliberate failure to run after boot, if asked for.
    pub selftest: Option<Selftest>,
    /// The whole command line.
    pub cmdline: &'static str,
    /// How shards enter the kernel.
    pub gate: SyscallGate,
    /// Module 0 (the ramdisk) as (physical address, bytes), if it is inside
    /// the memory map.
    pub ramdisk: Option<(u64, u64)>,
    /// Usable RAM `[start, end)` ranges.
    pub ram: [(u64, u64); MAX_RAM_RANGES],
    /// Entries of `ram` used.
    pub ram_len: usize,
}

/// Reads `hvm_start_info` at `start_info_phys` and prints the report.
/// Ends the VM with `exit::BAD_BOOT_INFO` if the start info is unusable.
pub fn boot_report(start_info_phys: u64) -> BootOptions {
    let raw = read_boot_info(start_info_phys, START_INFO_V1_SIZE as u64).unwrap_or(&[]);
    let info = match pvh::parse_start_info(raw) {
        Ok(info) => info,
        Err(StartInfoError::BadMagic(magic)) => {
            out()
                .s("panic: bad hvm_start_info magic ")
                .hex(magic.into())
                .nl();
            cpu::exit(exit::BAD_BOOT_INFO)
        }
        Err(StartInfoError::Truncated) => {
            out()
                .s("panic: hvm_start_info at ")
                .hex(start_info_phys)
                .s(" is unreadable")
                .nl();
            cpu::exit(exit::BAD_BOOT_INFO)
        }
    };

    let shown_entries = info.memmap_entries.min(MAX_MEMMAP_ENTRIES);
    let map = match (info.memmap_paddr, shown_entries) {
        (0, _) | (_, 0) => MemMap::empty(),
        (paddr, n) => read_boot_info(paddr, u64::from(n) * MEMMAP_ENTRY_SIZE as u64)
            .map_or(MemMap::empty(), MemMap::new),
    };
    let mem = BootMem::new(&map);

    let cmdline = report_cmdline(&mem, info.cmdline_paddr);
    report_memmap(&map, info.memmap_entries);
    let ramdisk = report_modules(&mem, info.nr_modules, info.modlist_paddr);
    acpi::report(&mem, info.rsdp_paddr);
    let gate = report_gate(cmdline);
    let mut ram = [(0, 0); MAX_RAM_RANGES];
    let mut ram_len = 0;
    for e in map.iter().filter(|e| e.kind == Kind::Ram && e.size > 0) {
        if ram_len < MAX_RAM_RANGES {
            ram[ram_len] = (e.start, e.end());
            ram_len += 1;
        }
    }
    BootOptions {
        after: cmdline_value(cmdline, AFTER)
            .and_then(After::parse)
            .unwrap_or(After::Exit),
        selftest: cmdline_value(cmdline, SELFTEST).and_then(Selftest::parse),
        cmdline,
        gate,
        ramdisk,
        ram,
        ram_len,
    }
}

/// Prints the `cmdline:` line and returns the command line.
fn report_cmdline(mem: &BootMem, paddr: u64) -> &'static str {
    let o = out();
    o.s("cmdline: ");
    if paddr == 0 {
        o.s("(none)").nl();
        return "";
    }
    let len = mem.readable_from(paddr).min(MAX_CMDLINE);
    let bytes = if mem.covers(paddr, len) {
        read_boot_info(paddr, len)
    } else {
        None
    };
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        o.s("(outside the memory map)").nl();
        return "";
    };
    let bytes = &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())];
    let line = match core::str::from_utf8(bytes) {
        Ok(line) => line,
        Err(error) => core::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or(""),
    };
    o.s(if line.is_empty() { "(none)" } else { line }).nl();
    line
}

/// Prints the `memmap:` lines and the `memory:` total.
fn report_memmap(map: &MemMap<'_>, entries: u32) {
    let o = out();
    o.s("memmap: ").dec(entries.into()).s(" entries").nl();
    for entry in map.iter() {
        o.s("memmap: [")
            .hex16(entry.start)
            .s("-")
            .hex16(entry.end())
            .s(") ");
        match entry.kind {
            Kind::Other(n) => o.s("type-").dec(n.into()),
            kind => o.s(kind.name().unwrap_or("?")),
        };
        o.nl();
    }
    if entries > MAX_MEMMAP_ENTRIES {
        o.s("memmap: only the first ")
            .dec(MAX_MEMMAP_ENTRIES.into())
            .s(" entries are used")
            .nl();
    }
    o.s("memory: ")
        .dec(map.ram_bytes() / 1024)
        .s(" KiB usable")
        .nl();
}

/// Prints the `modules:` / `module <i>:` lines; returns module 0 when it
/// is inside the memory map.
fn report_modules(mem: &BootMem, count: u32, modlist_paddr: u64) -> Option<(u64, u64)> {
    let o = out();
    o.s("modules: ").dec(count.into()).nl();
    if count == 0 {
        return None;
    }
    let mut first = None;
    let shown = count.min(MAX_MODULES);
    let list_len = u64::from(shown) * MODLIST_ENTRY_SIZE as u64;
    let Some(list) = mem
        .read(modlist_paddr, list_len)
        .filter(|_| modlist_paddr != 0)
    else {
        o.s("modules: list at ")
            .hex(modlist_paddr)
            .s(" is outside the memory map")
            .nl();
        return None;
    };
    for index in 0..shown as usize {
        let Some(module) = pvh::module(list, index) else {
            break;
        };
        o.s("module ")
            .dec(index as u64)
            .s(": ")
            .hex(module.paddr)
            .s(" size ")
            .dec(module.size)
            .nl();
        o.s("module ").dec(index as u64).s(": ");
        if !mem.covers(module.paddr, module.size) {
            o.s("outside the memory map").nl();
            continue;
        }
        if index == 0 {
            first = Some((module.paddr, module.size));
        }
        let superblock = (module.size >= ext2::SUPERBLOCK_OFFSET + ext2::SUPERBLOCK_SIZE as u64)
            .then(|| {
                mem.read(
                    module.paddr + ext2::SUPERBLOCK_OFFSET,
                    ext2::SUPERBLOCK_SIZE as u64,
                )
            })
            .flatten()
            .and_then(ext2::parse_superblock);
        match superblock {
            Some(sb) => {
                o.s("ext2, block size ")
                    .dec(sb.block_size.into())
                    .s(", ")
                    .dec(sb.blocks.into());
                o.s(" blocks, label \"").text(sb.label()).s("\"").nl();
            }
            None => {
                o.s("not ext2").nl();
            }
        }
    }
    if count > MAX_MODULES {
        o.s("modules: only the first ")
            .dec(MAX_MODULES.into())
            .s(" are used")
            .nl();
    }
    first
}

/// Prints the `syscall gate:` line from `coco.gate=` and returns the gate.
fn report_gate(cmdline: &str) -> SyscallGate {
    let o = out();
    let gate = match cmdline_value(cmdline, SYSCALL_GATE) {
        None => SyscallGate::Syscall,
        Some(value) => match SyscallGate::parse(value) {
            Some(gate) => gate,
            None => {
                o.s("syscall gate: unknown value \"")
                    .text(value.as_bytes())
                    .s("\", using trap")
                    .nl();
                return SyscallGate::Trap;
            }
        },
    };
    o.s("syscall gate: ").s(gate.as_str()).nl();
    gate
}
