//! The host bridge at 00:00.0: a configuration space with IDs and class
//! 06/00/00 and nothing else, so a guest's bus scan finds a well-formed bus.

use super::PciDevice;
use super::config::ConfigSpace;

/// Red Hat's vendor ID, used by QEMU for its own PCI devices.
const VENDOR: u16 = 0x1b36;
/// QEMU's PCIe host bridge device ID.
const DEVICE: u16 = 0x0008;
/// Base class 06 (bridge), subclass 00 (host bridge).
const CLASS_HOST_BRIDGE: u32 = 0x06_00_00;

/// The host bridge.
#[derive(Debug)]
pub struct HostBridge {
    config: ConfigSpace,
}

impl Default for HostBridge {
    fn default() -> Self {
        HostBridge {
            config: ConfigSpace::new(VENDOR, DEVICE, CLASS_HOST_BRIDGE, 0),
        }
    }
}

impl PciDevice for HostBridge {
    fn config_read(&mut self, reg: usize) -> u32 {
        self.config.read_dword(reg)
    }

    fn config_write(&mut self, offset: usize, data: &[u8]) {
        self.config.write(offset, data);
    }
}
