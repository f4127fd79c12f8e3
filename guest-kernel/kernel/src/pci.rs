//! PCI configuration mechanism #1 (ports 0xCF8/0xCFC) on bus 0: just
//! enough to find a device by its IDs and read or program its header.
//!
//! Why port I/O: it is the one configuration mechanism coco's machine has
//! (no MCFG), and `in`/`out` are instructions kvm-pvm's ring-0 emulator
//! handles.

use core::arch::asm;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
const ENABLE: u32 = 1 << 31;
/// Capability ID of MSI.
pub const CAP_MSI: u8 = 0x05;

fn out32(port: u16, value: u32) {
    // SAFETY: port I/O to the PCI configuration ports touches no memory.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    }
}

fn out16(port: u16, value: u16) {
    // SAFETY: as for `out32`.
    unsafe {
        asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags))
    }
}

fn in32(port: u16) -> u32 {
    let value: u32;
    // SAFETY: as for `out32`.
    unsafe {
        asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// A function on bus 0 (function 0 only: coco's bus has no others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    /// Slot 0..32.
    pub slot: u8,
}

impl Device {
    fn select(self, offset: u8) {
        out32(
            CONFIG_ADDRESS,
            ENABLE | (u32::from(self.slot & 0x1f) << 11) | u32::from(offset & 0xfc),
        );
    }

    /// Reads the dword containing `offset`.
    pub fn read32(self, offset: u8) -> u32 {
        self.select(offset);
        in32(CONFIG_DATA)
    }

    /// Reads the byte at `offset`.
    pub fn read8(self, offset: u8) -> u8 {
        (self.read32(offset) >> (8 * (offset & 3))) as u8
    }

    /// Reads the 16-bit register at `offset` (2-byte aligned).
    pub fn read16(self, offset: u8) -> u16 {
        (self.read32(offset) >> (8 * (offset & 2))) as u16
    }

    /// Writes the dword at `offset` (4-byte aligned).
    pub fn write32(self, offset: u8, value: u32) {
        self.select(offset);
        out32(CONFIG_DATA, value);
    }

    /// Writes the 16-bit register at `offset` (2-byte aligned) alone, so
    /// the other half of its dword (a status register, say) is not touched.
    pub fn write16(self, offset: u8, value: u16) {
        self.select(offset);
        out16(CONFIG_DATA + u16::from(offset & 2), value);
    }

    /// Finds capability `id` in the capability list.
    pub fn capability(self, id: u8) -> Option<u8> {
        const STATUS_CAPS: u16 = 1 << 4;
        if self.read16(0x06) & STATUS_CAPS == 0 {
            return None;
        }
        let mut at = self.read8(0x34) & 0xfc;
        for _ in 0..48 {
            if at < 0x40 {
                return None;
            }
            if self.read8(at) == id {
                return Some(at);
            }
            at = self.read8(at + 1) & 0xfc;
        }
        None
    }
}

/// Scans bus 0 for `vendor:device`.
pub fn find(vendor: u16, device: u16) -> Option<Device> {
    let want = (u32::from(device) << 16) | u32::from(vendor);
    (0..32u8)
        .map(|slot| Device { slot })
        .find(|d| d.read32(0) == want)
}
