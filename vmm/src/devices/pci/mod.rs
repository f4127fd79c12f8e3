//! The coco machine's PCI bus (ARCHITECTURE.md §4): one bus, configuration
//! mechanism #1 (ports 0xCF8/0xCFC), a host bridge at 00:00.0 and memory BARs
//! placed by the VMM in the MMIO hole.
//!
//! Why so little: PCI exists in coco only to carry passed-through devices
//! (VFIO) to guests that expect to find them by a bus scan. There is no
//! PCIe extended configuration space (no MCFG), no I/O BARs, no bridges and
//! no legacy INTx: passthrough interrupts are MSI, routed through KVM.
//! The bus is only present when a PCI device is configured, so guests
//! without one see exactly the machine they saw before.

pub mod bars;
pub mod config;
pub mod host_bridge;
pub mod msi;
pub mod msix;
pub mod root;

/// A device on the PCI bus, as its configuration space sees it.
///
/// Accesses come from the root after decoding mechanism #1: `reg` is a
/// dword index (0..64) and a write never crosses a dword. Implementations
/// must tolerate anything a guest sends (ignore what they do not support).
pub trait PciDevice: Send {
    /// Reads configuration dword `reg`.
    fn config_read(&mut self, reg: usize) -> u32;
    /// Writes `data` (1, 2 or 4 bytes) at byte `offset` of the space.
    fn config_write(&mut self, offset: usize, data: &[u8]);
}
