//! The slice of the Linux VFIO uAPI (`include/uapi/linux/vfio.h`) coco-vmm
//! uses: the legacy container/group interface with the type-1 IOMMU,
//! device info, regions and IRQs. Written out here (ioctl numbers and
//! `#[repr(C)]` structs) rather than taken from a crate: the few dozen lines
//! are stable kernel ABI and keep the dependency set of coco-vmm unchanged.

/// `VFIO_TYPE` (';') and `VFIO_BASE`: every VFIO ioctl is `_IO(';', 100 + n)`.
const fn vfio_io(n: u64) -> u64 {
    ((b';' as u64) << 8) | (100 + n)
}

/// Returns `VFIO_API_VERSION`.
pub const VFIO_GET_API_VERSION: u64 = vfio_io(0);
/// Whether the container supports an IOMMU type.
pub const VFIO_CHECK_EXTENSION: u64 = vfio_io(1);
/// Selects the container's IOMMU type.
pub const VFIO_SET_IOMMU: u64 = vfio_io(2);
/// `struct vfio_group_status`.
pub const VFIO_GROUP_GET_STATUS: u64 = vfio_io(3);
/// Attaches a group to a container (argument: pointer to the container fd).
pub const VFIO_GROUP_SET_CONTAINER: u64 = vfio_io(4);
/// Returns a device fd for a device name (argument: C string).
pub const VFIO_GROUP_GET_DEVICE_FD: u64 = vfio_io(6);
/// `struct vfio_device_info`.
pub const VFIO_DEVICE_GET_INFO: u64 = vfio_io(7);
/// `struct vfio_region_info`.
pub const VFIO_DEVICE_GET_REGION_INFO: u64 = vfio_io(8);
/// `struct vfio_irq_info`.
pub const VFIO_DEVICE_GET_IRQ_INFO: u64 = vfio_io(9);
/// `struct vfio_irq_set` + payload.
pub const VFIO_DEVICE_SET_IRQS: u64 = vfio_io(10);
/// Function-level reset, if the device supports one.
pub const VFIO_DEVICE_RESET: u64 = vfio_io(11);
/// `struct vfio_iommu_type1_dma_map`.
pub const VFIO_IOMMU_MAP_DMA: u64 = vfio_io(13);

/// The only API version there is.
pub const VFIO_API_VERSION: i32 = 0;
/// Type-1 IOMMU.
pub const VFIO_TYPE1_IOMMU: u64 = 1;
/// Type-1 IOMMU, v2 semantics (preferred).
pub const VFIO_TYPE1V2_IOMMU: u64 = 3;

/// Group status: every device of the group is bound to VFIO (or harmless).
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1 << 0;
/// Device info: a PCI device.
pub const VFIO_DEVICE_FLAGS_PCI: u32 = 1 << 1;
/// Device info: `VFIO_DEVICE_RESET` works.
pub const VFIO_DEVICE_FLAGS_RESET: u32 = 1 << 0;

/// Region flags.
pub const VFIO_REGION_INFO_FLAG_READ: u32 = 1 << 0;
/// Region flags.
pub const VFIO_REGION_INFO_FLAG_WRITE: u32 = 1 << 1;
/// Region flags: the region may be mmapped.
pub const VFIO_REGION_INFO_FLAG_MMAP: u32 = 1 << 2;

/// vfio-pci region indices: BARs 0..=5, then ROM, then configuration space.
pub const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
/// vfio-pci IRQ index of MSI.
pub const VFIO_PCI_MSI_IRQ_INDEX: u32 = 1;

/// `VFIO_DEVICE_SET_IRQS` flags.
pub const VFIO_IRQ_SET_DATA_NONE: u32 = 1 << 0;
/// Payload: one eventfd (`i32`) per vector.
pub const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
/// Action: signal the eventfds when the interrupt fires.
pub const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;

/// Type-1 DMA map flags.
pub const VFIO_DMA_MAP_FLAG_READ: u32 = 1 << 0;
/// Type-1 DMA map flags.
pub const VFIO_DMA_MAP_FLAG_WRITE: u32 = 1 << 1;

/// `struct vfio_group_status`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GroupStatus {
    /// Size of the struct.
    pub argsz: u32,
    /// `VFIO_GROUP_FLAGS_*`.
    pub flags: u32,
}

/// `struct vfio_device_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceInfo {
    /// Size of the struct.
    pub argsz: u32,
    /// `VFIO_DEVICE_FLAGS_*`.
    pub flags: u32,
    /// Number of regions.
    pub num_regions: u32,
    /// Number of IRQ indices.
    pub num_irqs: u32,
    /// Capability chain offset (unused).
    pub cap_offset: u32,
    /// Padding.
    pub pad: u32,
}

/// `struct vfio_region_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RegionInfo {
    /// Size of the struct.
    pub argsz: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Region index.
    pub index: u32,
    /// Capability chain offset (unused).
    pub cap_offset: u32,
    /// Region size in bytes.
    pub size: u64,
    /// Offset of the region in the device fd.
    pub offset: u64,
}

/// `struct vfio_irq_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IrqInfo {
    /// Size of the struct.
    pub argsz: u32,
    /// `VFIO_IRQ_INFO_*`.
    pub flags: u32,
    /// IRQ index.
    pub index: u32,
    /// Vectors behind the index.
    pub count: u32,
}

/// `struct vfio_irq_set` with room for one eventfd.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IrqSetOne {
    /// Size of the struct including the payload used.
    pub argsz: u32,
    /// Data and action flags.
    pub flags: u32,
    /// IRQ index.
    pub index: u32,
    /// First vector.
    pub start: u32,
    /// Vectors.
    pub count: u32,
    /// Payload: an eventfd.
    pub fd: i32,
}

/// `struct vfio_iommu_type1_dma_map`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DmaMap {
    /// Size of the struct.
    pub argsz: u32,
    /// `VFIO_DMA_MAP_FLAG_*`.
    pub flags: u32,
    /// Process virtual address of the memory.
    pub vaddr: u64,
    /// Device (IO virtual) address it appears at.
    pub iova: u64,
    /// Bytes.
    pub size: u64,
}

/// `argsz` for a struct.
pub fn argsz<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_and_sizes_match_the_kernel_header() {
        assert_eq!(VFIO_GET_API_VERSION, 0x3b64);
        assert_eq!(VFIO_GROUP_GET_DEVICE_FD, 0x3b6a);
        assert_eq!(VFIO_DEVICE_SET_IRQS, 0x3b6e);
        assert_eq!(VFIO_IOMMU_MAP_DMA, 0x3b71);
        assert_eq!(argsz::<RegionInfo>(), 32);
        assert_eq!(argsz::<DmaMap>(), 32);
        assert_eq!(argsz::<IrqInfo>(), 16);
        assert_eq!(argsz::<IrqSetOne>(), 24);
    }
}
