//! The guest-physical memory map of a coco machine (ARCHITECTURE.md §4).
//!
//! RAM starts at 0. The 32-bit MMIO hole `0xC000_0000..0x1_0000_0000` carries
//! the LAPIC, IOAPIC, virtio-mmio windows and (later) 32-bit PCI BARs, so RAM
//! beyond 3 GiB continues at 4 GiB. Boot structures live in the first MiB at
//! fixed addresses, the way PC firmware leaves them, so every loader (PVH,
//! multiboot, bzImage) finds them in the same place.

use vm_memory::GuestAddress;

/// One KiB.
pub const KIB: u64 = 1 << 10;
/// One MiB.
pub const MIB: u64 = 1 << 20;
/// One GiB.
pub const GIB: u64 = 1 << 30;

/// Where the boot GDT is written (flat 32/64-bit code and data, a TSS).
pub const BOOT_GDT: u64 = 0x500;
/// An empty IDT (interrupts are off at entry).
pub const BOOT_IDT: u64 = 0x520;
/// The GDT of a Linux 64-bit entry: null, null, `__BOOT_CS` (0x10, 64-bit
/// code), `__BOOT_DS` (0x18, data), a 16-byte 64-bit TSS (0x20).
pub const LINUX_BOOT_GDT: u64 = 0x540;
/// Bytes of [`LINUX_BOOT_GDT`] (six 8-byte slots).
pub const LINUX_BOOT_GDT_SIZE: u64 = 6 * 8;
/// PVH `hvm_start_info`.
pub const PVH_START_INFO: u64 = 0x6000;
/// PVH module list, right after the start info.
pub const PVH_MODLIST: u64 = 0x6040;
/// Highest number of boot modules the VMM passes.
pub const MAX_MODULES: usize = 4;
/// The memory map handed to the guest.
pub const MEMMAP: u64 = 0x7000;
/// Highest number of memory-map entries (fits in the page at [`MEMMAP`]).
pub const MAX_MEMMAP_ENTRIES: usize = 128;
/// Linux's zero page (`struct boot_params`, one page), for bzImage guests.
pub const ZERO_PAGE: u64 = 0x8000;
/// Size of the zero page.
pub const ZERO_PAGE_SIZE: u64 = 0x1000;
/// The PML4 of the identity map a Linux 64-bit entry starts on.
pub const BOOT_PML4: u64 = 0x9000;
/// Its one PDPT.
pub const BOOT_PDPT: u64 = 0xa000;
/// Its page directories, one page per GiB, consecutive (2 MiB pages).
pub const BOOT_PD: u64 = 0xb000;
/// GiBs the boot identity map covers (all of the 32-bit space).
pub const BOOT_IDENTITY_GIB: u64 = 4;
/// The kernel command line.
pub const CMDLINE: u64 = 0x2_0000;
/// Longest command line, terminating NUL included.
pub const CMDLINE_MAX: usize = 4096;
/// Start of the extended BIOS data area (reserved up to 1 MiB).
pub const EBDA_START: u64 = 0x9_fc00;
/// The BIOS area searched for the ACPI RSDP; the VMM puts every table here.
pub const ACPI_START: u64 = 0xe_0000;
/// End of the ACPI/BIOS area (and of low memory).
pub const ACPI_END: u64 = 0x10_0000;
/// Where kernels are loaded from (PVH and multiboot ELF segments live above it).
pub const HIMEM_START: u64 = 0x10_0000;

/// The 32-bit MMIO hole.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// End of the 32-bit MMIO hole; RAM resumes here.
pub const MMIO_HOLE_END: u64 = 0x1_0000_0000;
/// First virtio-mmio window; window n is at `VIRTIO_MMIO_BASE + n * VIRTIO_MMIO_SIZE`.
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
/// Size of one virtio-mmio window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// GSI of virtio-mmio window 0; window n uses `VIRTIO_MMIO_GSI_BASE + n`.
pub const VIRTIO_MMIO_GSI_BASE: u32 = 5;
/// The IOAPIC's MMIO base.
pub const IOAPIC_BASE: u64 = 0xfec0_0000;
/// The local APICs' MMIO base.
pub const LAPIC_BASE: u64 = 0xfee0_0000;
/// KVM's TSS area (three pages, inside the MMIO hole, never RAM).
pub const KVM_TSS: u64 = 0xfffb_d000;
/// KVM's identity-map page (Intel real-mode emulation), below the TSS.
pub const KVM_IDENTITY_MAP: u64 = 0xfffb_c000;

/// The smallest guest the VMM will build: boot area + kernel + a little heap.
pub const MIN_MEMORY: u64 = 2 * MIB;
/// The largest guest memory the VMM accepts (matches hive.toml's limit).
pub const MAX_MEMORY: u64 = 256 * GIB;

// The boot structures must not overlap each other or the EBDA: checked at
// compile time, so a layout change that breaks this does not build.
const _: () = {
    assert!(BOOT_GDT + 4 * 8 <= BOOT_IDT);
    assert!(BOOT_IDT + 8 <= LINUX_BOOT_GDT);
    assert!(LINUX_BOOT_GDT + LINUX_BOOT_GDT_SIZE <= PVH_START_INFO);
    assert!(PVH_MODLIST >= PVH_START_INFO + 56);
    assert!(PVH_MODLIST + 32 * MAX_MODULES as u64 <= MEMMAP);
    assert!(MEMMAP + 24 * MAX_MEMMAP_ENTRIES as u64 <= ZERO_PAGE);
    assert!(ZERO_PAGE + ZERO_PAGE_SIZE <= BOOT_PML4);
    assert!(BOOT_PML4 + 0x1000 <= BOOT_PDPT);
    assert!(BOOT_PDPT + 0x1000 <= BOOT_PD);
    assert!(BOOT_PD + BOOT_IDENTITY_GIB * 0x1000 <= CMDLINE);
    assert!(BOOT_IDENTITY_GIB <= 512);
    assert!(CMDLINE + CMDLINE_MAX as u64 <= EBDA_START);
};

/// Memory types of the guest memory map (E820 numbering, which PVH reuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum RegionKind {
    /// Usable RAM.
    Ram = 1,
    /// Reserved; not for the OS.
    Reserved = 2,
    /// ACPI tables (reclaimable after parsing).
    Acpi = 3,
}

/// One entry of the guest memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// What it is.
    pub kind: RegionKind,
}

/// Errors in choosing a layout.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// Less memory than the machine needs to boot anything.
    #[error("guest memory of {got} bytes is too small: at least {min} bytes are needed")]
    TooSmall {
        /// Requested size.
        got: u64,
        /// Minimum size.
        min: u64,
    },
    /// More memory than the VMM supports.
    #[error("guest memory of {got} bytes is too large: at most {max} bytes are supported")]
    TooLarge {
        /// Requested size.
        got: u64,
        /// Maximum size.
        max: u64,
    },
    /// Not a whole number of pages.
    #[error("guest memory size {0:#x} is not a multiple of 4 KiB")]
    Unaligned(u64),
}

/// Where a guest's RAM lives, for a given amount of memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryLayout {
    size: u64,
}

impl MemoryLayout {
    /// A layout for `size` bytes of RAM.
    pub fn new(size: u64) -> Result<Self, LayoutError> {
        if size < MIN_MEMORY {
            return Err(LayoutError::TooSmall {
                got: size,
                min: MIN_MEMORY,
            });
        }
        if size > MAX_MEMORY {
            return Err(LayoutError::TooLarge {
                got: size,
                max: MAX_MEMORY,
            });
        }
        if !size.is_multiple_of(4 * KIB) {
            return Err(LayoutError::Unaligned(size));
        }
        Ok(MemoryLayout { size })
    }

    /// Total RAM in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RAM regions as (guest address, length) pairs, for `vm-memory` and KVM slots.
    pub fn ram_regions(&self) -> Vec<(GuestAddress, usize)> {
        let low = self.size.min(MMIO_HOLE_START);
        let mut regions = vec![(GuestAddress(0), low as usize)];
        if self.size > MMIO_HOLE_START {
            regions.push((
                GuestAddress(MMIO_HOLE_END),
                (self.size - MMIO_HOLE_START) as usize,
            ));
        }
        regions
    }

    /// End of RAM below the MMIO hole (exclusive).
    pub fn low_ram_end(&self) -> u64 {
        self.size.min(MMIO_HOLE_START)
    }

    /// One past the highest RAM address.
    pub fn ram_end(&self) -> u64 {
        if self.size > MMIO_HOLE_START {
            MMIO_HOLE_END + (self.size - MMIO_HOLE_START)
        } else {
            self.size
        }
    }

    /// The memory map the guest is told about, sorted and non-overlapping.
    pub fn memory_map(&self) -> Vec<MapEntry> {
        let mut map = vec![
            MapEntry {
                start: 0,
                len: EBDA_START,
                kind: RegionKind::Ram,
            },
            MapEntry {
                start: EBDA_START,
                len: ACPI_START - EBDA_START,
                kind: RegionKind::Reserved,
            },
            MapEntry {
                start: ACPI_START,
                len: ACPI_END - ACPI_START,
                kind: RegionKind::Acpi,
            },
            MapEntry {
                start: HIMEM_START,
                len: self.low_ram_end() - HIMEM_START,
                kind: RegionKind::Ram,
            },
        ];
        if self.size > MMIO_HOLE_START {
            map.push(MapEntry {
                start: MMIO_HOLE_END,
                len: self.size - MMIO_HOLE_START,
                kind: RegionKind::Ram,
            });
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_guest_is_one_low_region() {
        let layout = MemoryLayout::new(64 * MIB).unwrap();
        assert_eq!(
            layout.ram_regions(),
            vec![(GuestAddress(0), (64 * MIB) as usize)]
        );
        assert_eq!(layout.ram_end(), 64 * MIB);
        let map = layout.memory_map();
        assert_eq!(map.len(), 4);
        assert_eq!(map[3].start + map[3].len, 64 * MIB);
    }

    #[test]
    fn ram_above_three_gib_moves_above_four_gib() {
        let layout = MemoryLayout::new(5 * GIB).unwrap();
        assert_eq!(
            layout.ram_regions(),
            vec![
                (GuestAddress(0), (3 * GIB) as usize),
                (GuestAddress(4 * GIB), (2 * GIB) as usize),
            ]
        );
        assert_eq!(layout.ram_end(), 6 * GIB);
        let map = layout.memory_map();
        let last = map.last().unwrap();
        assert_eq!(
            (last.start, last.len, last.kind),
            (4 * GIB, 2 * GIB, RegionKind::Ram)
        );
        // Nothing in the memory map may overlap the MMIO hole.
        for e in &map {
            assert!(e.start + e.len <= MMIO_HOLE_START || e.start >= MMIO_HOLE_END);
        }
    }

    #[test]
    fn exactly_three_gib_has_no_high_region() {
        let layout = MemoryLayout::new(3 * GIB).unwrap();
        assert_eq!(layout.ram_regions().len(), 1);
        assert_eq!(layout.memory_map().len(), 4);
    }

    #[test]
    fn memory_map_is_sorted_and_disjoint() {
        for size in [2 * MIB, 64 * MIB, 3 * GIB + 4 * KIB, 8 * GIB] {
            let map = MemoryLayout::new(size).unwrap().memory_map();
            for pair in map.windows(2) {
                assert!(pair[0].start + pair[0].len <= pair[1].start, "{map:?}");
            }
            let ram: u64 = map
                .iter()
                .filter(|e| e.kind == RegionKind::Ram)
                .map(|e| e.len)
                .sum();
            // All RAM except the first-MiB holes is reported usable.
            assert_eq!(ram, size - (HIMEM_START - EBDA_START));
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert_eq!(
            MemoryLayout::new(MIB),
            Err(LayoutError::TooSmall {
                got: MIB,
                min: MIN_MEMORY
            })
        );
        assert!(matches!(
            MemoryLayout::new(MAX_MEMORY + GIB),
            Err(LayoutError::TooLarge { .. })
        ));
        assert_eq!(
            MemoryLayout::new(4 * MIB + 1),
            Err(LayoutError::Unaligned(4 * MIB + 1))
        );
    }
}
