//! The PVH boot information (`hvm_start_info`, Xen's
//! `xen/include/public/arch-x86/hvm/start_info.h`), parsed from bytes.
//!
//! The loader leaves the structure in guest memory and its physical address
//! in EBX at the 32-bit entry (boot.rs passes it to `kmain`). Everything here
//! works on byte slices, so it knows nothing about where they came from.

use crate::bytes::{u32_at, u64_at};

/// `hvm_start_info.magic`: "xEn3" with the top bit of the 4th byte set.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Bytes of `hvm_start_info` from version 1 on (adds the memory map).
pub const START_INFO_V1_SIZE: usize = 56;
/// Bytes of one `hvm_modlist_entry`.
pub const MODLIST_ENTRY_SIZE: usize = 32;
/// Bytes of one `hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_SIZE: usize = 24;

/// The fields of `hvm_start_info` the kernel uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartInfo {
    /// Structure version; 1 and up carry the memory map.
    pub version: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Entries in the module list.
    pub nr_modules: u32,
    /// Physical address of the module list.
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated command line, or 0.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP, or 0.
    pub rsdp_paddr: u64,
    /// Physical address of the memory map (version >= 1), or 0.
    pub memmap_paddr: u64,
    /// Entries in the memory map (version >= 1).
    pub memmap_entries: u32,
}

/// Why `hvm_start_info` could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// The magic number is wrong (the value found).
    BadMagic(u32),
    /// Fewer bytes than the structure's version needs.
    Truncated,
}

/// Parses `hvm_start_info` from its bytes (48 for version 0,
/// [`START_INFO_V1_SIZE`] from version 1 on).
pub fn parse_start_info(bytes: &[u8]) -> Result<StartInfo, StartInfoError> {
    let field32 = |offset| u32_at(bytes, offset).ok_or(StartInfoError::Truncated);
    let field64 = |offset| u64_at(bytes, offset).ok_or(StartInfoError::Truncated);
    let magic = field32(0)?;
    if magic != START_INFO_MAGIC {
        return Err(StartInfoError::BadMagic(magic));
    }
    let mut info = StartInfo {
        version: field32(4)?,
        flags: field32(8)?,
        nr_modules: field32(12)?,
        modlist_paddr: field64(16)?,
        cmdline_paddr: field64(24)?,
        rsdp_paddr: field64(32)?,
        ..StartInfo::default()
    };
    if info.version >= 1 {
        info.memmap_paddr = field64(40)?;
        info.memmap_entries = field32(48)?;
    }
    Ok(info)
}

/// One `hvm_modlist_entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    /// Physical address of the module's first byte.
    pub paddr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Physical address of the module's command line, or 0.
    pub cmdline_paddr: u64,
}

/// Module `index` of a module list (`bytes` holds the whole list).
pub fn module(bytes: &[u8], index: usize) -> Option<Module> {
    let base = index.checked_mul(MODLIST_ENTRY_SIZE)?;
    Some(Module {
        paddr: u64_at(bytes, base)?,
        size: u64_at(bytes, base + 8)?,
        cmdline_paddr: u64_at(bytes, base + 16)?,
    })
}
