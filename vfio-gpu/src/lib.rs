//! GPU partitions for coco (see ARCHITECTURE.md §6).
//!
//! A GPU partition is a VRAM range plus a compute share owned by one VM. It
//! will be backed either by an emulated GPU (the default, and what CI runs) or
//! by real hardware passed through with VFIO.
//!
//! What this crate does today is the groundwork for the VFIO side:
//! [`Inventory`] surveys the host's sysfs and devfs — VFIO nodes and modules,
//! IOMMU units and groups, PCI GPUs and accelerators with their BARs, drivers
//! and SR-IOV state — and says for each GPU whether it could be passed through
//! or what stands in the way ([`Passable`]). `coco-vmm check` prints it. The
//! survey only reads; it never binds drivers or opens VFIO.
//!
//! Not here yet, by design: VFIO passthrough itself (opening groups or
//! iommufd, DMA-mapping guest RAM, mapping BARs, MSI-X through irqfd, config
//! space shadowing) and the emulated GPU (VRAM and register BARs, command
//! ring, host worker threads). Both come in later work; until then this crate
//! exposes no API for them.

pub mod bar;
pub mod inventory;
pub mod iommu;
pub mod passable;
pub mod pci;
mod report;
mod sysfs;
pub mod vfio;

pub use inventory::Inventory;
pub use passable::Passable;
