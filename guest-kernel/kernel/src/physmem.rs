//! Checked read access to guest-physical memory during boot.
//!
//! Boot data (command line, module list, modules, ACPI tables) is reached
//! through pointers the loader chose. [`BootMem`] reads a range only if the
//! memory map says all of it is RAM/reserved/ACPI/NVS memory, the direct map
//! reaches it and it does not overlap the kernel image (which the kernel
//! mutates); then it maps it read-only through the direct map.

use crate::acpi::PhysMem;
use crate::memmap::{MemMap, Readable};
use crate::paging;

/// Whether `[paddr, paddr + len)` overlaps the kernel image.
fn overlaps_kernel(paddr: u64, len: u64) -> bool {
    let (start, end) = paging::kernel_image_phys();
    len > 0 && paddr < end && paddr.saturating_add(len) > start
}

/// Reads loader data that is trusted before the memory map is known (the
/// start info and the memory map itself): only the direct-map and kernel
/// overlap checks apply.
pub fn read_boot_info(paddr: u64, len: u64) -> Option<&'static [u8]> {
    if overlaps_kernel(paddr, len) {
        return None;
    }
    // SAFETY: outside the kernel image; during boot no other CPU runs and no
    // device does DMA, so nothing writes the range while it is read.
    unsafe { paging::map_phys(paddr, len) }
}

/// Physical memory as the memory map describes it.
#[derive(Clone, Copy, Debug)]
pub struct BootMem {
    readable: Readable,
}

impl BootMem {
    /// Reads checked against `map`.
    pub fn new(map: &MemMap<'_>) -> Self {
        BootMem {
            readable: Readable::new(map),
        }
    }

    /// Bytes readable from `paddr` on without a gap in the memory map.
    pub fn readable_from(&self, paddr: u64) -> u64 {
        self.readable.len_from(paddr)
    }

    /// Whether the memory map allows reading all of `[paddr, paddr + len)`.
    pub fn covers(&self, paddr: u64, len: u64) -> bool {
        self.readable.covers(paddr, len)
    }
}

impl PhysMem for BootMem {
    fn read(&self, paddr: u64, len: u64) -> Option<&[u8]> {
        if !self.readable.covers(paddr, len) {
            return None;
        }
        read_boot_info(paddr, len)
    }
}
