//! Emulated devices of the coco machine, one file each, plus the buses that
//! route vCPU port and MMIO exits to them.
//!
//! Every device implements [`bus::BusDevice`]: one read and one write entry
//! with the same signature, called with the offset inside the device's range.
//! A device never panics on what a guest writes; anything it does not
//! understand is ignored (and logged once by the bus if no device claims it).

pub mod boot_timer;
pub mod bus;
pub mod debug_exit;
pub mod i8042;
pub mod ignored;
pub mod pci;
pub mod serial;
pub mod vfio;
pub mod virtio9p;
pub mod virtio_pci;
