//! Where PCI BARs go in guest-physical memory.
//!
//! The VMM, not the guest, places every BAR (as firmware would): memory BARs
//! are allocated upwards from [`PCI_MMIO_START`], each aligned to its size,
//! and must end below [`PCI_MMIO_END`] (the IOAPIC). The window sits in the
//! MMIO hole above the virtio-mmio windows at 0xD000_0000, so it collides
//! with neither RAM nor another device.

use crate::arch::layout::IOAPIC_BASE;

/// First address BARs are placed at.
pub const PCI_MMIO_START: u64 = 0xe000_0000;
/// End of the BAR window (exclusive): the IOAPIC page.
pub const PCI_MMIO_END: u64 = IOAPIC_BASE;

/// Why a BAR could not be placed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocError {
    /// The size is not a power of two (at least one page).
    #[error("BAR size {0:#x} is not a power of two of at least 4 KiB")]
    Size(u64),
    /// The window is full.
    #[error(
        "no room for a {size:#x}-byte BAR in the PCI window {PCI_MMIO_START:#x}..{PCI_MMIO_END:#x}"
    )]
    Full {
        /// The size asked for.
        size: u64,
    },
}

/// A bump allocator over the PCI BAR window.
#[derive(Debug)]
pub struct BarAllocator {
    next: u64,
}

impl Default for BarAllocator {
    fn default() -> Self {
        BarAllocator {
            next: PCI_MMIO_START,
        }
    }
}

impl BarAllocator {
    /// Places a BAR of `size` bytes (rounded up to a page so it can be a KVM
    /// memory slot) and returns its base.
    pub fn alloc(&mut self, size: u64) -> Result<u64, AllocError> {
        if !size.is_power_of_two() {
            return Err(AllocError::Size(size));
        }
        let size = size.max(4096);
        let base = self
            .next
            .checked_next_multiple_of(size)
            .ok_or(AllocError::Full { size })?;
        let end = base.checked_add(size).ok_or(AllocError::Full { size })?;
        if end > PCI_MMIO_END {
            return Err(AllocError::Full { size });
        }
        self.next = end;
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_aligned_and_packed_in_the_window() {
        let mut a = BarAllocator::default();
        assert_eq!(a.alloc(1 << 20), Ok(0xe000_0000));
        assert_eq!(a.alloc(16), Ok(0xe010_0000));
        assert_eq!(a.alloc(1 << 24), Ok(0xe100_0000));
        assert_eq!(a.alloc(0x3000), Err(AllocError::Size(0x3000)));
        assert_eq!(a.alloc(0), Err(AllocError::Size(0)));
        assert_eq!(a.alloc(1 << 30), Err(AllocError::Full { size: 1 << 30 }));
        assert_eq!(a.alloc(1 << 63), Err(AllocError::Full { size: 1 << 63 }));
    }
}
