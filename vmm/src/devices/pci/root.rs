//! Configuration mechanism #1: the address register at 0xCF8 and the data
//! window at 0xCFC..0xD00, decoding to the devices of bus 0.
//!
//! Only dword accesses to 0xCF8 reach the address register (as on real
//! chipsets, narrower ones are other I/O); the data window takes 1-, 2- and
//! 4-byte accesses at any byte offset that stays inside the dword. Anything
//! else — the enable bit clear, another bus, a function other than 0, an
//! empty slot, an access crossing the dword — reads all-ones and writes
//! nothing, which is what a guest probing for absent hardware expects.

use std::sync::{Arc, Mutex};

use super::PciDevice;
use crate::devices::bus::BusDevice;

/// First port of the mechanism (the address register).
pub const CONFIG_ADDRESS_PORT: u64 = 0xcf8;
/// Ports the root claims (0xCF8..0xD00).
pub const CONFIG_PORTS_LEN: u64 = 8;
/// Devices on bus 0.
pub const SLOTS: usize = 32;

const ENABLE: u32 = 1 << 31;

/// Why a device cannot be plugged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlugError {
    /// The slot does not exist.
    #[error("PCI slot {0} does not exist (bus 0 has slots 0..32)")]
    NoSuchSlot(usize),
    /// The slot is taken.
    #[error("PCI slot {0} is already in use")]
    Taken(usize),
    /// Every slot is taken.
    #[error("the PCI bus is full")]
    Full,
}

/// A shared PCI device.
pub type SharedPciDevice = Arc<Mutex<dyn PciDevice>>;

/// Bus 0 and its configuration mechanism.
pub struct PciRoot {
    address: u32,
    slots: Vec<Option<SharedPciDevice>>,
}

impl std::fmt::Debug for PciRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used: Vec<usize> = (0..SLOTS).filter(|s| self.slots[*s].is_some()).collect();
        f.debug_struct("PciRoot")
            .field("address", &format_args!("{:#x}", self.address))
            .field("slots", &used)
            .finish()
    }
}

impl Default for PciRoot {
    fn default() -> Self {
        PciRoot {
            address: 0,
            slots: vec![None; SLOTS],
        }
    }
}

impl PciRoot {
    /// Plugs `device` into `slot` (function 0).
    pub fn plug(&mut self, slot: usize, device: SharedPciDevice) -> Result<(), PlugError> {
        let entry = self
            .slots
            .get_mut(slot)
            .ok_or(PlugError::NoSuchSlot(slot))?;
        if entry.is_some() {
            return Err(PlugError::Taken(slot));
        }
        *entry = Some(device);
        Ok(())
    }

    /// Plugs `device` into the lowest free slot and returns it.
    pub fn plug_next(&mut self, device: SharedPciDevice) -> Result<usize, PlugError> {
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(PlugError::Full)?;
        self.plug(slot, device)?;
        Ok(slot)
    }

    /// The device and dword the address register selects, if any.
    fn selected(&self) -> Option<(&SharedPciDevice, usize)> {
        let a = self.address;
        let bus = (a >> 16) & 0xff;
        let slot = ((a >> 11) & 0x1f) as usize;
        let function = (a >> 8) & 0x7;
        if a & ENABLE == 0 || bus != 0 || function != 0 {
            return None;
        }
        let device = self.slots.get(slot)?.as_ref()?;
        Some((device, ((a & 0xfc) >> 2) as usize))
    }
}

impl BusDevice for PciRoot {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        match offset {
            0 if data.len() == 4 => data.copy_from_slice(&self.address.to_le_bytes()),
            4..=7 => {
                let lane = (offset - 4) as usize;
                if lane + data.len() > 4 {
                    return;
                }
                if let Some((device, reg)) = self.selected()
                    && let Ok(mut device) = device.lock()
                {
                    let value = device.config_read(reg).to_le_bytes();
                    data.copy_from_slice(&value[lane..lane + data.len()]);
                }
            }
            _ => {}
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        match offset {
            0 if data.len() == 4 => {
                let mut v = [0u8; 4];
                v.copy_from_slice(data);
                // Bits 1:0 are reserved (read as zero), bits 30:24 too.
                self.address = u32::from_le_bytes(v) & 0x80ff_fffc;
            }
            4..=7 => {
                let lane = (offset - 4) as usize;
                if data.is_empty() || lane + data.len() > 4 {
                    return;
                }
                if let Some((device, reg)) = self.selected()
                    && let Ok(mut device) = device.lock()
                {
                    device.config_write(reg * 4 + lane, data);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::pci::host_bridge::HostBridge;

    fn root() -> PciRoot {
        let mut r = PciRoot::default();
        r.plug(0, Arc::new(Mutex::new(HostBridge::default())))
            .unwrap();
        r
    }

    fn select(r: &mut PciRoot, slot: u32, reg: u32) {
        r.write(0, &(ENABLE | (slot << 11) | (reg << 2)).to_le_bytes());
    }

    fn read(r: &mut PciRoot, offset: u64, len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len];
        r.read(offset, &mut d);
        d
    }

    #[test]
    fn host_bridge_is_found_at_00_00_0() {
        let mut r = root();
        select(&mut r, 0, 0);
        assert_eq!(read(&mut r, 4, 4), [0x36, 0x1b, 0x08, 0x00]);
        assert_eq!(read(&mut r, 6, 2), [0x08, 0x00]);
        select(&mut r, 0, 2);
        assert_eq!(read(&mut r, 7, 1), [0x06]);
        // The address register reads back (reserved bits clear).
        r.write(0, &0xffff_ffffu32.to_le_bytes());
        assert_eq!(read(&mut r, 0, 4), 0x80ff_fffcu32.to_le_bytes());
    }

    #[test]
    fn absent_devices_read_all_ones() {
        let mut r = root();
        select(&mut r, 5, 0);
        assert_eq!(read(&mut r, 4, 4), [0xff; 4]);
        // Function 1 of slot 0.
        r.write(0, &(ENABLE | (1 << 8)).to_le_bytes());
        assert_eq!(read(&mut r, 4, 4), [0xff; 4]);
        // Bus 1.
        r.write(0, &(ENABLE | (1 << 16)).to_le_bytes());
        assert_eq!(read(&mut r, 4, 4), [0xff; 4]);
        // Enable bit clear.
        r.write(0, &0u32.to_le_bytes());
        assert_eq!(read(&mut r, 4, 4), [0xff; 4]);
    }

    #[test]
    fn writes_reach_the_device_at_the_right_lane() {
        let mut r = root();
        select(&mut r, 0, 1);
        r.write(4, &[0x06, 0x00]);
        assert_eq!(read(&mut r, 4, 2), [0x06, 0x00]);
        select(&mut r, 0, 15);
        r.write(4, &[0x0a]);
        assert_eq!(read(&mut r, 4, 1), [0x0a]);
    }

    #[test]
    fn hostile_accesses_do_not_panic_and_change_nothing() {
        let mut r = root();
        select(&mut r, 0, 0);
        // Crossing the dword, too wide, empty.
        assert_eq!(read(&mut r, 6, 4), [0xff; 4]);
        assert_eq!(read(&mut r, 4, 8), [0xff; 8]);
        assert_eq!(read(&mut r, 4, 0), Vec::<u8>::new());
        r.write(7, &[1, 2]);
        r.write(4, &[]);
        r.write(4, &[0; 9]);
        // Narrow accesses to 0xCF8 do not touch the address register.
        r.write(0, &[0]);
        assert_eq!(read(&mut r, 0, 1), [0xff]);
        assert_eq!(read(&mut r, 4, 4), [0x36, 0x1b, 0x08, 0x00]);
        // Offsets past the claimed ports.
        assert_eq!(read(&mut r, 100, 4), [0xff; 4]);
        r.write(u64::MAX, &[0]);
    }

    #[test]
    fn plugging_checks_slots() {
        let mut r = root();
        let dev = || -> SharedPciDevice { Arc::new(Mutex::new(HostBridge::default())) };
        assert_eq!(r.plug(0, dev()), Err(PlugError::Taken(0)));
        assert_eq!(r.plug(32, dev()), Err(PlugError::NoSuchSlot(32)));
        assert_eq!(r.plug_next(dev()), Ok(1));
        for _ in 2..SLOTS {
            r.plug_next(dev()).unwrap();
        }
        assert_eq!(r.plug_next(dev()), Err(PlugError::Full));
    }
}
