//! PVH boot (Xen's direct-boot ABI, also QEMU's and Firecracker's):
//! load an ELF whose `XEN_ELFNOTE_PHYS32_ENTRY` note names a 32-bit entry
//! point, place the modules, and describe the machine in `hvm_start_info`.
//!
//! The ELF is loaded with rust-vmm's `linux-loader`; the start info, memory
//! map and module list are written with its PVH boot configurator.

use std::fs::File;

use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::KernelLoader;
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::arch::layout::{
    CMDLINE, CMDLINE_MAX, HIMEM_START, MAX_MEMMAP_ENTRIES, MAX_MODULES, MEMMAP, MapEntry,
    MemoryLayout, PVH_MODLIST, PVH_START_INFO,
};

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Version 1 carries the memory map.
pub const START_INFO_VERSION: u32 = 1;
const PAGE: u64 = 4096;

/// Errors of the PVH loader.
#[derive(Debug, thiserror::Error)]
pub enum PvhError {
    /// linux-loader refused the ELF.
    #[error("cannot load the kernel ELF: {0}")]
    Elf(#[from] linux_loader::loader::Error),
    /// The ELF has no PVH entry note.
    #[error("the kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); is it a PVH ELF?")]
    NoPvhNote,
    /// The entry point is not reachable from 32-bit mode or not in RAM.
    #[error("the PVH entry point {0:#x} is not in low RAM")]
    BadEntry(u64),
    /// The kernel ends above the RAM below the MMIO hole.
    #[error("the kernel needs memory up to {end:#x} but low RAM ends at {ram_end:#x}")]
    KernelTooBig {
        /// End of the kernel image.
        end: u64,
        /// End of low RAM.
        ram_end: u64,
    },
    /// A module does not fit between the kernel and the top of low RAM.
    #[error(
        "module {index} ({size} bytes) does not fit in guest memory: \
         {free} bytes are free above the kernel; give the guest more memory"
    )]
    ModuleTooBig {
        /// Module index.
        index: usize,
        /// Its size.
        size: u64,
        /// Room there was.
        free: u64,
    },
    /// Too many modules.
    #[error("at most {MAX_MODULES} modules are supported")]
    TooManyModules,
    /// Reading a module failed.
    #[error("cannot read module {index}: {source}")]
    ModuleRead {
        /// Module index.
        index: usize,
        /// Why.
        source: std::io::Error,
    },
    /// The command line is too long or contains a NUL.
    #[error("the kernel command line must be shorter than {CMDLINE_MAX} bytes and contain no NUL")]
    BadCmdline,
    /// The memory map has too many entries.
    #[error("the memory map has more than {MAX_MEMMAP_ENTRIES} entries")]
    MemmapTooLong,
    /// Writing to guest memory failed.
    #[error("cannot write PVH boot information: {0}")]
    Write(String),
}

/// Where the kernel landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadedKernel {
    /// The 32-bit PVH entry point.
    pub entry: u64,
    /// One past the highest byte the kernel occupies (BSS included).
    pub end: u64,
}

/// A module placed in guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacedModule {
    /// Guest-physical address (page aligned).
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Loads a PVH kernel ELF.
pub fn load_kernel(
    mem: &GuestMemoryMmap,
    layout: &MemoryLayout,
    kernel: &mut File,
) -> Result<LoadedKernel, PvhError> {
    let result = Elf::load(mem, None, kernel, Some(GuestAddress(HIMEM_START)))?;
    let entry = match result.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(addr) => addr.0,
        _ => return Err(PvhError::NoPvhNote),
    };
    if !(HIMEM_START..layout.low_ram_end()).contains(&entry) {
        return Err(PvhError::BadEntry(entry));
    }
    if result.kernel_end > layout.low_ram_end() {
        return Err(PvhError::KernelTooBig {
            end: result.kernel_end,
            ram_end: layout.low_ram_end(),
        });
    }
    Ok(LoadedKernel {
        entry,
        end: result.kernel_end,
    })
}

/// Places modules from the top of low RAM downwards, page aligned, never
/// below `floor` (the end of the kernel).
pub fn place_modules(
    mem: &GuestMemoryMmap,
    layout: &MemoryLayout,
    floor: u64,
    modules: &mut [File],
) -> Result<Vec<PlacedModule>, PvhError> {
    if modules.len() > MAX_MODULES {
        return Err(PvhError::TooManyModules);
    }
    let floor = floor.div_ceil(PAGE) * PAGE;
    let mut top = layout.low_ram_end();
    let mut placed = Vec::with_capacity(modules.len());
    for (index, file) in modules.iter_mut().enumerate() {
        let size = file
            .metadata()
            .map_err(|source| PvhError::ModuleRead { index, source })?
            .len();
        let free = top.saturating_sub(floor);
        if size > free {
            return Err(PvhError::ModuleTooBig { index, size, free });
        }
        let addr = (top - size) / PAGE * PAGE;
        if addr < floor {
            return Err(PvhError::ModuleTooBig { index, size, free });
        }
        mem.read_exact_volatile_from(GuestAddress(addr), file, size as usize)
            .map_err(|e| PvhError::ModuleRead {
                index,
                source: std::io::Error::other(e.to_string()),
            })?;
        placed.push(PlacedModule { addr, size });
        top = addr;
    }
    Ok(placed)
}

/// The start info and its tables, before they are written.
pub fn start_info(
    memmap: &[MapEntry],
    modules: &[PlacedModule],
    rsdp: u64,
) -> (
    hvm_start_info,
    Vec<hvm_memmap_table_entry>,
    Vec<hvm_modlist_entry>,
) {
    let info = hvm_start_info {
        magic: START_INFO_MAGIC,
        version: START_INFO_VERSION,
        flags: 0,
        nr_modules: modules.len() as u32,
        modlist_paddr: if modules.is_empty() { 0 } else { PVH_MODLIST },
        cmdline_paddr: CMDLINE,
        rsdp_paddr: rsdp,
        memmap_paddr: MEMMAP,
        memmap_entries: memmap.len() as u32,
        reserved: 0,
    };
    let map = memmap
        .iter()
        .map(|e| hvm_memmap_table_entry {
            addr: e.start,
            size: e.len,
            type_: e.kind as u32,
            reserved: 0,
        })
        .collect();
    let mods = modules
        .iter()
        .map(|m| hvm_modlist_entry {
            paddr: m.addr,
            size: m.size,
            cmdline_paddr: 0,
            reserved: 0,
        })
        .collect();
    (info, map, mods)
}

/// Writes the command line, memory map, module list and start info.
pub fn write_boot_info(
    mem: &GuestMemoryMmap,
    cmdline: &str,
    memmap: &[MapEntry],
    modules: &[PlacedModule],
    rsdp: u64,
) -> Result<u64, PvhError> {
    if cmdline.len() >= CMDLINE_MAX || cmdline.as_bytes().contains(&0) {
        return Err(PvhError::BadCmdline);
    }
    if memmap.len() > MAX_MEMMAP_ENTRIES {
        return Err(PvhError::MemmapTooLong);
    }
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    mem.write_slice(&bytes, GuestAddress(CMDLINE))
        .map_err(|e| PvhError::Write(e.to_string()))?;
    let (info, map, mods) = start_info(memmap, modules, rsdp);
    let mut params = BootParams::new(&info, GuestAddress(PVH_START_INFO));
    params.set_sections(&map, GuestAddress(MEMMAP));
    if !mods.is_empty() {
        params.set_modules(&mods, GuestAddress(PVH_MODLIST));
    }
    PvhBootConfigurator::write_bootparams::<GuestMemoryMmap>(&params, mem)
        .map_err(|e| PvhError::Write(e.to_string()))?;
    Ok(PVH_START_INFO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::layout::MIB;
    use std::io::Write;

    fn memory(layout: &MemoryLayout) -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&layout.ram_regions()).unwrap()
    }

    fn read_u32(mem: &GuestMemoryMmap, at: u64) -> u32 {
        mem.read_obj(GuestAddress(at)).unwrap()
    }

    fn read_u64(mem: &GuestMemoryMmap, at: u64) -> u64 {
        mem.read_obj(GuestAddress(at)).unwrap()
    }

    #[test]
    fn start_info_is_laid_out_as_the_pvh_spec_says() {
        let layout = MemoryLayout::new(16 * MIB).unwrap();
        let mem = memory(&layout);
        let modules = [PlacedModule {
            addr: 0x80_0000,
            size: 1234,
        }];
        let at = write_boot_info(&mem, "a=b", &layout.memory_map(), &modules, 0xe0000).unwrap();
        assert_eq!(at, PVH_START_INFO);
        assert_eq!(read_u32(&mem, at), START_INFO_MAGIC);
        assert_eq!(read_u32(&mem, at + 4), 1, "version");
        assert_eq!(read_u32(&mem, at + 12), 1, "nr_modules");
        assert_eq!(read_u64(&mem, at + 16), PVH_MODLIST);
        assert_eq!(read_u64(&mem, at + 24), CMDLINE);
        assert_eq!(read_u64(&mem, at + 32), 0xe0000, "rsdp_paddr");
        assert_eq!(read_u64(&mem, at + 40), MEMMAP);
        assert_eq!(read_u32(&mem, at + 48), 4, "memmap entries");
        // Module list entry.
        assert_eq!(read_u64(&mem, PVH_MODLIST), 0x80_0000);
        assert_eq!(read_u64(&mem, PVH_MODLIST + 8), 1234);
        // Memory map: second RAM entry from 1 MiB to the end.
        assert_eq!(read_u64(&mem, MEMMAP + 3 * 24), 0x10_0000);
        assert_eq!(read_u64(&mem, MEMMAP + 3 * 24 + 8), 15 * MIB);
        assert_eq!(read_u32(&mem, MEMMAP + 3 * 24 + 16), 1);
        // Command line, NUL-terminated.
        let mut buf = [0u8; 4];
        mem.read_slice(&mut buf, GuestAddress(CMDLINE)).unwrap();
        assert_eq!(&buf, b"a=b\0");
    }

    #[test]
    fn bad_command_lines_are_refused() {
        let layout = MemoryLayout::new(16 * MIB).unwrap();
        let mem = memory(&layout);
        let map = layout.memory_map();
        assert!(matches!(
            write_boot_info(&mem, "a\0b", &map, &[], 0),
            Err(PvhError::BadCmdline)
        ));
        let long = "x".repeat(CMDLINE_MAX);
        assert!(matches!(
            write_boot_info(&mem, &long, &map, &[], 0),
            Err(PvhError::BadCmdline)
        ));
    }

    #[test]
    fn modules_go_to_the_top_of_low_ram_and_must_fit() {
        let layout = MemoryLayout::new(8 * MIB).unwrap();
        let mem = memory(&layout);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 5000]).unwrap();
        use std::io::Seek;
        f.rewind().unwrap();
        let placed = place_modules(&mem, &layout, 2 * MIB, &mut [f]).unwrap();
        assert_eq!(placed[0].size, 5000);
        assert_eq!(placed[0].addr % PAGE, 0);
        assert!(placed[0].addr + 5000 <= 8 * MIB);
        let mut b = [0u8; 1];
        mem.read_slice(&mut b, GuestAddress(placed[0].addr + 4999))
            .unwrap();
        assert_eq!(b, [7]);

        let big = tempfile::tempfile().unwrap();
        big.set_len(7 * MIB).unwrap();
        let err = place_modules(&mem, &layout, 2 * MIB, &mut [big]).unwrap_err();
        assert!(
            matches!(err, PvhError::ModuleTooBig { index: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn non_elf_and_missing_note_are_clear_errors() {
        let layout = MemoryLayout::new(8 * MIB).unwrap();
        let mem = memory(&layout);
        let mut junk = tempfile::tempfile().unwrap();
        junk.write_all(b"this is not an ELF file at all, just some bytes......................")
            .unwrap();
        let err = load_kernel(&mem, &layout, &mut junk).unwrap_err();
        assert!(matches!(err, PvhError::Elf(_)), "{err}");
        let mut empty = tempfile::tempfile().unwrap();
        assert!(load_kernel(&mem, &layout, &mut empty).is_err());
    }
}
