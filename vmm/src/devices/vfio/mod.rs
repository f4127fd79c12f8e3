//! VFIO passthrough of a host PCI device to a guest.
//!
//! [`host`] talks to the kernel (container, group, device fd, regions,
//! IRQs; raw ioctls from [`sys`]); [`passthrough`] is the guest-facing PCI
//! device: a shadowed configuration space with BARs at addresses coco-vmm
//! chooses, each BAR mmapped and registered as a KVM memory slot (or trapped
//! and forwarded with pread/pwrite when VFIO does not allow mmap), all guest
//! RAM mapped for the device's DMA at IOVA = guest-physical address, and MSI
//! delivered by KVM from an eventfd VFIO signals (irqfd + an MSI GSI route).
//!
//! It lives in coco-vmm, not in `coco-vfio-gpu`, because every piece of it
//! is wired into the VM (KVM slots, irqfds, the buses); the GPU crate keeps
//! the host inventory, which this module uses to find the IOMMU group.

pub mod host;
pub mod passthrough;
pub mod shadow;
pub mod sys;

/// Why a device could not be passed through.
#[derive(Debug, thiserror::Error)]
pub enum VfioError {
    /// The `--vfio` argument names no usable PCI device.
    #[error("VFIO device {0}")]
    BadDevice(String),
    /// The device is in no IOMMU group (no IOMMU, or it is disabled).
    #[error("{0} is in no IOMMU group: is an IOMMU enabled (intel_iommu=on / amd_iommu=on)?")]
    NoGroup(String),
    /// The group cannot be used.
    #[error("IOMMU group {group} is not viable: {why} (bind every member to vfio-pci)")]
    GroupNotViable {
        /// The group.
        group: u32,
        /// Why.
        why: String,
    },
    /// Unknown VFIO API.
    #[error("VFIO API version {0} is not the supported version 0")]
    Api(i32),
    /// No type-1 IOMMU backend.
    #[error("the VFIO container supports no type-1 IOMMU (is vfio_iommu_type1 loaded?)")]
    NoType1,
    /// A host call failed.
    #[error("{what}: {source}")]
    Host {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A KVM call failed.
    #[error("{what}: {source}")]
    Kvm {
        /// What was being done.
        what: String,
        /// The error.
        source: kvm_ioctls::Error,
    },
    /// GSI routing failed.
    #[error(transparent)]
    Route(#[from] crate::vm::irq_routes::RouteError),
    /// A BAR could not be placed.
    #[error(transparent)]
    Alloc(#[from] crate::devices::pci::bars::AllocError),
    /// A BAR could not be installed in the shadow.
    #[error(transparent)]
    Bar(#[from] crate::devices::pci::config::BarError),
    /// The MMIO bus refused a trapped BAR.
    #[error(transparent)]
    Bus(#[from] crate::devices::bus::BusError),
}
