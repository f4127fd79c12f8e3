//! The MSI capability of a device whose configuration space the VMM
//! shadows: which bits a guest may write, and what changed after a write.
//!
//! Why intercept it: the guest programs an MSI address and data meant for
//! its own (virtual) LAPICs; the real device must never see them. The VMM
//! keeps them in the shadow and, when the guest enables MSI, routes the
//! device's host interrupt (an eventfd) to that address/data through KVM
//! instead. One vector only: Multiple Message Enable stays 0.

use super::config::ConfigSpace;

/// Capability ID of MSI.
pub const CAP_ID_MSI: u8 = 0x05;

const CONTROL: usize = 2;
const ADDRESS_LO: usize = 4;
const CONTROL_ENABLE: u16 = 1 << 0;
const CONTROL_64BIT: u16 = 1 << 7;
const CONTROL_MASKABLE: u16 = 1 << 8;

/// A message: where the device writes and what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiMessage {
    /// Address (the LAPIC window, 0xFEEx_xxxx on x86).
    pub address: u64,
    /// Data (vector and delivery mode on x86).
    pub data: u32,
}

/// What a guest write did to MSI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiChange {
    /// MSI is now enabled (or its message changed while enabled).
    Enabled(MsiMessage),
    /// MSI is now disabled.
    Disabled,
}

/// The emulated MSI capability at `offset` of a shadow.
#[derive(Clone, Copy, Debug)]
pub struct MsiCap {
    offset: usize,
    is64: bool,
    maskable: bool,
    state: Option<MsiMessage>,
}

impl MsiCap {
    /// Reads the capability at `offset` of `config`, makes the registers the
    /// guest may program writable and clears Enable and Multiple Message
    /// Enable (the device starts with MSI off, one vector).
    pub fn install(config: &mut ConfigSpace, offset: usize) -> Self {
        let control = config.u16_at(offset + CONTROL);
        let is64 = control & CONTROL_64BIT != 0;
        let maskable = control & CONTROL_MASKABLE != 0;
        let cap = MsiCap {
            offset,
            is64,
            maskable,
            state: None,
        };
        config.set_u16(offset + CONTROL, control & !(CONTROL_ENABLE | 0x70));
        config.set_writable(offset + CONTROL, &CONTROL_ENABLE.to_le_bytes());
        config.set_writable(offset + ADDRESS_LO, &0xffff_fffcu32.to_le_bytes());
        if is64 {
            config.set_writable(offset + 8, &[0xff; 4]);
        }
        config.set_writable(cap.data_offset(), &[0xff, 0xff]);
        if maskable {
            // Mask bits: one vector, so bit 0 only.
            config.set_writable(cap.data_offset() + 4, &[0x01]);
        }
        cap
    }

    fn data_offset(&self) -> usize {
        self.offset + if self.is64 { 0x0c } else { 0x08 }
    }

    /// Bytes the capability covers in the space.
    pub fn len(&self) -> usize {
        (self.data_offset() - self.offset) + if self.maskable { 12 } else { 4 }
    }

    /// Whether capabilities this short never exist (for clippy; never true).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether byte `at` of the space belongs to the capability.
    pub fn contains(&self, at: usize) -> bool {
        (self.offset..self.offset + self.len()).contains(&at)
    }

    /// The message the guest enabled, if MSI is on.
    pub fn enabled(&self) -> Option<MsiMessage> {
        self.state
    }

    /// Compares the shadow with the last known state after a guest write.
    pub fn sync(&mut self, config: &ConfigSpace) -> Option<MsiChange> {
        let control = config.u16_at(self.offset + CONTROL);
        let now = (control & CONTROL_ENABLE != 0).then(|| {
            let lo = config.read_dword((self.offset + ADDRESS_LO) / 4);
            let hi = if self.is64 {
                config.read_dword((self.offset + 8) / 4)
            } else {
                0
            };
            MsiMessage {
                address: (u64::from(hi) << 32) | u64::from(lo),
                data: u32::from(config.u16_at(self.data_offset())),
            }
        });
        if now == self.state {
            return None;
        }
        self.state = now;
        Some(match now {
            Some(message) => MsiChange::Enabled(message),
            None => MsiChange::Disabled,
        })
    }
}

/// Finds capability `id` in the list of `config`, guarding against loops
/// and pointers outside the header.
pub fn find_capability(config: &ConfigSpace, id: u8) -> Option<usize> {
    use super::config::{STATUS_CAPABILITIES, offset};
    if config.u16_at(offset::STATUS) & STATUS_CAPABILITIES == 0 {
        return None;
    }
    let mut at = usize::from(config.u8_at(offset::CAPABILITIES) & 0xfc);
    for _ in 0..48 {
        if at < 0x40 {
            return None;
        }
        if config.u8_at(at) == id {
            return Some(at);
        }
        at = usize::from(config.u8_at(at + 1) & 0xfc);
    }
    None
}

/// Removes capability `id` from the list of `config` (the previous entry,
/// or the capabilities pointer, skips it). Returns whether it was there.
pub fn unlink_capability(config: &mut ConfigSpace, id: u8) -> bool {
    use super::config::offset;
    let Some(at) = find_capability(config, id) else {
        return false;
    };
    let next = config.u8_at(at + 1);
    let mut link = offset::CAPABILITIES;
    for _ in 0..48 {
        let target = usize::from(config.u8_at(link) & 0xfc);
        if target == at {
            config.set_bytes(link, &[next]);
            return true;
        }
        if target < 0x40 {
            break;
        }
        link = target + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::pci::config::{STATUS_CAPABILITIES, offset};

    /// A shadow shaped like QEMU's edu: MSI at 0x40, 64-bit, not maskable.
    fn edu_like(control: u16) -> ConfigSpace {
        let mut bytes = [0u8; 256];
        bytes[offset::STATUS..offset::STATUS + 2]
            .copy_from_slice(&STATUS_CAPABILITIES.to_le_bytes());
        bytes[offset::CAPABILITIES] = 0x40;
        bytes[0x40] = CAP_ID_MSI;
        bytes[0x41] = 0;
        bytes[0x42..0x44].copy_from_slice(&control.to_le_bytes());
        ConfigSpace::from_bytes(bytes)
    }

    #[test]
    fn enable_program_and_disable() {
        let mut c = edu_like(CONTROL_64BIT | CONTROL_ENABLE | 0x10);
        let at = find_capability(&c, CAP_ID_MSI).unwrap();
        assert_eq!(at, 0x40);
        let mut msi = MsiCap::install(&mut c, at);
        assert_eq!(msi.len(), 0x10);
        assert_eq!(c.u16_at(0x42), CONTROL_64BIT, "enable and MME cleared");
        c.write(0x44, &0xfee0_1000u32.to_le_bytes());
        c.write(0x48, &0u32.to_le_bytes());
        c.write(0x4c, &0x0045u16.to_le_bytes());
        assert_eq!(msi.sync(&c), None, "not enabled yet");
        // MME bits are not writable; Enable is.
        c.write(0x42, &(CONTROL_ENABLE | 0x70).to_le_bytes());
        let m = MsiMessage {
            address: 0xfee0_1000,
            data: 0x45,
        };
        assert_eq!(msi.sync(&c), Some(MsiChange::Enabled(m)));
        assert_eq!(c.u16_at(0x42), CONTROL_64BIT | CONTROL_ENABLE);
        assert_eq!(msi.sync(&c), None);
        c.write(0x4c, &[0x46]);
        assert_eq!(
            msi.sync(&c),
            Some(MsiChange::Enabled(MsiMessage { data: 0x46, ..m }))
        );
        c.write(0x42, &[0]);
        assert_eq!(msi.sync(&c), Some(MsiChange::Disabled));
        assert!(msi.contains(0x4f) && !msi.contains(0x50) && !msi.contains(0x3f));
    }

    #[test]
    fn a_32bit_maskable_capability_has_its_own_layout() {
        let mut c = edu_like(CONTROL_MASKABLE);
        let mut msi = MsiCap::install(&mut c, 0x40);
        assert_eq!(msi.len(), 0x14);
        c.write(0x44, &0xfee0_0003u32.to_le_bytes());
        c.write(0x48, &0x31u16.to_le_bytes());
        c.write(0x42, &[1]);
        assert_eq!(
            msi.sync(&c),
            Some(MsiChange::Enabled(MsiMessage {
                address: 0xfee0_0000,
                data: 0x31
            }))
        );
    }

    #[test]
    fn unlinking_keeps_the_rest_of_the_list() {
        let mut c = edu_like(CONTROL_64BIT);
        // 0x34 -> 0x50 (MSI-X) -> 0x40 (MSI) -> 0x60 (PM) -> end.
        c.set_bytes(offset::CAPABILITIES, &[0x50]);
        c.set_bytes(0x50, &[0x11, 0x40]);
        c.set_bytes(0x41, &[0x60]);
        c.set_bytes(0x60, &[0x01, 0x00]);
        assert!(unlink_capability(&mut c, 0x11));
        assert_eq!(find_capability(&c, 0x11), None);
        assert_eq!(find_capability(&c, CAP_ID_MSI), Some(0x40));
        assert_eq!(find_capability(&c, 0x01), Some(0x60));
        assert!(unlink_capability(&mut c, 0x01));
        assert_eq!(c.u8_at(0x41), 0);
        assert_eq!(find_capability(&c, CAP_ID_MSI), Some(0x40));
        assert!(!unlink_capability(&mut c, 0x11));
    }

    #[test]
    fn capability_loops_and_bad_pointers_end_the_search() {
        let mut bytes = [0u8; 256];
        bytes[offset::STATUS] = STATUS_CAPABILITIES as u8;
        bytes[offset::CAPABILITIES] = 0x40;
        bytes[0x40] = 0x09;
        bytes[0x41] = 0x40; // points at itself
        assert_eq!(
            find_capability(&ConfigSpace::from_bytes(bytes), CAP_ID_MSI),
            None
        );
        bytes[0x41] = 0x10; // into the header
        assert_eq!(
            find_capability(&ConfigSpace::from_bytes(bytes), CAP_ID_MSI),
            None
        );
        bytes[offset::STATUS] = 0;
        bytes[0x40] = CAP_ID_MSI;
        assert_eq!(
            find_capability(&ConfigSpace::from_bytes(bytes), CAP_ID_MSI),
            None
        );
    }
}
