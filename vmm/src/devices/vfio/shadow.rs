//! The guest's view of a passed-through function's configuration space,
//! and what each guest write means for the real device.
//!
//! Kept apart from the VFIO plumbing so the rules are plain data in, effect
//! out, and unit-tested: which writes reach the device (only the command
//! bits in [`COMMAND_FORWARDED`]), which never do (BARs, MSI, everything
//! else in the header), and which need the VMM to act (MSI enable/disable,
//! a BAR the guest tries to move).

use crate::devices::pci::config::{
    BAR_COUNT, Bar, BarError, BarKind, COMMAND_BUS_MASTER, COMMAND_MEMORY, CONFIG_SIZE,
    ConfigSpace, offset,
};
use crate::devices::pci::msi::{CAP_ID_MSI, MsiCap, MsiChange, find_capability, unlink_capability};

/// Command register: INTx disable.
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// Command bits a guest may change, and that are forwarded to the device.
pub const COMMAND_FORWARDED: u16 = COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE;
/// Capability ID of MSI-X (not offered yet, so hidden from the list).
const CAP_ID_MSIX: u8 = 0x11;

/// What a guest write asks of the VMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Write these command bits (of [`COMMAND_FORWARDED`]) to the device.
    Command(u16),
    /// MSI was enabled, reprogrammed or disabled.
    Msi(MsiChange),
    /// The guest wrote an address other than where the BAR is (not a
    /// sizing pattern); the BAR stays where it was placed.
    BarMoved {
        /// BAR index.
        index: usize,
        /// What the guest wrote.
        to: u64,
        /// Where the BAR is.
        placed: u64,
    },
}

/// The kind of a memory BAR from its register's low bits; `None` for I/O
/// BARs (not supported) and reserved encodings.
pub fn bar_kind(raw: u32) -> Option<BarKind> {
    if raw & 1 != 0 {
        return None;
    }
    let prefetchable = raw & 0b1000 != 0;
    match (raw >> 1) & 0b11 {
        0 => Some(BarKind::Mem32 { prefetchable }),
        2 => Some(BarKind::Mem64 { prefetchable }),
        _ => None,
    }
}

/// The shadow and the state behind it.
#[derive(Clone, Debug)]
pub struct GuestView {
    config: ConfigSpace,
    msi: Option<MsiCap>,
    placed: [Option<u64>; BAR_COUNT],
}

impl GuestView {
    /// The view of a device whose real space is `real`: BARs and ROM
    /// cleared (placed later with [`GuestView::place_bar`]), no INTx
    /// (interrupt pin 0), MSI-X hidden, MSI emulated if `msi` (VFIO offers
    /// it) and the device has the capability, else hidden too.
    pub fn new(real: [u8; CONFIG_SIZE], msi: bool) -> Self {
        let mut config = ConfigSpace::from_bytes(real);
        for i in 0..BAR_COUNT {
            config.set_u32(offset::BAR0 + 4 * i, 0);
        }
        config.set_u32(offset::ROM, 0);
        config.set_bytes(offset::INTERRUPT_LINE, &[0, 0]);
        config.set_writable(offset::COMMAND, &COMMAND_FORWARDED.to_le_bytes());
        config.set_writable(offset::INTERRUPT_LINE, &[0xff]);
        while unlink_capability(&mut config, CAP_ID_MSIX) {}
        let msi = match find_capability(&config, CAP_ID_MSI) {
            Some(at) if msi => Some(MsiCap::install(&mut config, at)),
            Some(_) => {
                while unlink_capability(&mut config, CAP_ID_MSI) {}
                None
            }
            None => None,
        };
        GuestView {
            config,
            msi,
            placed: [None; BAR_COUNT],
        }
    }

    /// Whether MSI is offered to the guest.
    pub fn has_msi(&self) -> bool {
        self.msi.is_some()
    }

    /// Installs BAR `index` where the VMM placed it.
    pub fn place_bar(&mut self, index: usize, bar: Bar) -> Result<(), BarError> {
        self.config.set_bar(index, bar)?;
        self.placed[index] = Some(bar.base);
        Ok(())
    }

    /// A guest read of dword `reg`.
    pub fn read(&self, reg: usize) -> u32 {
        self.config.read_dword(reg)
    }

    /// A guest write of `data` at byte `at`, and what it asks of the VMM.
    pub fn write(&mut self, at: usize, data: &[u8]) -> Option<Effect> {
        let reg = at / 4;
        if ConfigSpace::is_bar_register(reg) {
            if !self.config.write(at, data) {
                return None;
            }
            return self.moved_bar(reg);
        }
        if let Some(mut msi) = self.msi.filter(|m| m.contains(at)) {
            self.config.write(at, data);
            let change = msi.sync(&self.config);
            self.msi = Some(msi);
            return change.map(Effect::Msi);
        }
        let before = self.config.command();
        self.config.write(at, data);
        let after = self.config.command();
        (after != before).then_some(Effect::Command(after & COMMAND_FORWARDED))
    }

    fn moved_bar(&self, reg: usize) -> Option<Effect> {
        let slot = reg - offset::BAR0 / 4;
        // The register is the BAR itself or the high half of a 64-bit one.
        let index = if self.placed[slot].is_some() {
            slot
        } else {
            slot.checked_sub(1)?
        };
        let placed = self.placed[index]?;
        let now = self.config.bar(index)?;
        let mask = !(now.size - 1);
        let sizing = match now.kind {
            BarKind::Mem32 { .. } => now.base == mask & 0xffff_ffff,
            // Either half may be all-ones while the guest sizes.
            BarKind::Mem64 { .. } => {
                now.base & 0xffff_ffff == mask & 0xffff_ffff || now.base >> 32 == 0xffff_ffff
            }
        };
        (now.base != placed && !sizing).then_some(Effect::BarMoved {
            index,
            to: now.base,
            placed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::pci::msi::MsiMessage;

    /// An edu-like real space: IDs, BAR0 32-bit 1 MiB at a host address,
    /// INTx pin 1 line 11, capabilities MSI-X (0x50) -> MSI (0x40, 64-bit).
    fn real() -> [u8; CONFIG_SIZE] {
        let mut r = [0u8; CONFIG_SIZE];
        r[0..4].copy_from_slice(&0x11e8_1234u32.to_le_bytes());
        r[0x06] = 0x10;
        r[0x08..0x0c].copy_from_slice(&0x00ff_0010u32.to_le_bytes());
        r[0x10..0x14].copy_from_slice(&0xfea0_0000u32.to_le_bytes());
        r[0x30..0x34].copy_from_slice(&0xfeb0_0001u32.to_le_bytes());
        r[0x34] = 0x50;
        r[0x3c] = 11;
        r[0x3d] = 1;
        r[0x40] = CAP_ID_MSI;
        r[0x42] = 0x80;
        r[0x50] = CAP_ID_MSIX;
        r[0x51] = 0x40;
        r
    }

    fn view() -> GuestView {
        let mut v = GuestView::new(real(), true);
        v.place_bar(
            0,
            Bar {
                base: 0xe000_0000,
                size: 1 << 20,
                kind: BarKind::Mem32 {
                    prefetchable: false,
                },
            },
        )
        .unwrap();
        v
    }

    #[test]
    fn bar_kinds_from_register_bits() {
        let mem32 = BarKind::Mem32 {
            prefetchable: false,
        };
        assert_eq!(bar_kind(0xfea0_0000), Some(mem32));
        assert_eq!(
            bar_kind(0x0000_000c),
            Some(BarKind::Mem64 { prefetchable: true })
        );
        assert_eq!(bar_kind(0xc001), None, "I/O BAR");
        assert_eq!(bar_kind(0x2), None, "reserved below-1MiB type");
    }

    #[test]
    fn the_guest_sees_ids_and_placed_bars_but_no_host_addresses_intx_or_msix() {
        let v = view();
        assert_eq!(v.read(0), 0x11e8_1234);
        assert_eq!(v.read(2), 0x00ff_0010);
        assert_eq!(v.read(4), 0xe000_0000);
        assert_eq!(v.read(12), 0, "ROM hidden");
        assert_eq!(v.read(15) >> 8 & 0xff, 0, "interrupt pin 0");
        assert_eq!(v.read(13) & 0xff, 0x40, "the list starts at MSI now");
        assert!(v.has_msi());
        let without = GuestView::new(real(), false);
        assert!(!without.has_msi());
        assert_eq!(without.read(13) & 0xff, 0, "no capabilities left");
    }

    #[test]
    fn only_command_bits_are_forwarded() {
        let mut v = view();
        assert_eq!(
            v.write(0x04, &[0x06, 0x00]),
            Some(Effect::Command(COMMAND_MEMORY | COMMAND_BUS_MASTER))
        );
        assert_eq!(v.write(0x04, &[0x06, 0x00]), None, "no change, no effect");
        assert_eq!(
            v.write(0x04, &0xffffu16.to_le_bytes()),
            Some(Effect::Command(COMMAND_FORWARDED))
        );
        for (at, data) in [
            (0x00, &[0u8, 0, 0, 0][..]),
            (0x08, &[0xff; 4][..]),
            (0x34, &[0x00][..]),
            (0x3c, &[0x05][..]),
            (0x40, &[0xff, 0xff][..]),
            (0xfc, &[0xff; 4][..]),
        ] {
            assert_eq!(v.write(at, data), None, "write at {at:#x}");
        }
        assert_eq!(v.read(0), 0x11e8_1234);
        assert_eq!(v.read(13) & 0xff, 0x40);
        assert_eq!(v.read(15) & 0xff, 0x05, "interrupt line is scratch");
    }

    #[test]
    fn bar_sizing_is_quiet_and_moving_is_reported() {
        let mut v = view();
        assert_eq!(v.write(0x10, &u32::MAX.to_le_bytes()), None);
        assert_eq!(v.read(4), 0xfff0_0000);
        assert_eq!(v.write(0x10, &0xe000_0000u32.to_le_bytes()), None);
        assert_eq!(
            v.write(0x10, &0xd000_0000u32.to_le_bytes()),
            Some(Effect::BarMoved {
                index: 0,
                to: 0xd000_0000,
                placed: 0xe000_0000
            })
        );
        // BARs that are not placed stay zero and report nothing.
        assert_eq!(v.write(0x14, &u32::MAX.to_le_bytes()), None);
        assert_eq!(v.read(5), 0);
    }

    #[test]
    fn msi_programming_becomes_effects() {
        let mut v = view();
        assert_eq!(v.write(0x44, &0xfee0_0000u32.to_le_bytes()), None);
        assert_eq!(v.write(0x4c, &0x45u16.to_le_bytes()), None);
        let m = MsiMessage {
            address: 0xfee0_0000,
            data: 0x45,
        };
        assert_eq!(
            v.write(0x42, &[1, 0]),
            Some(Effect::Msi(MsiChange::Enabled(m)))
        );
        assert_eq!(
            v.write(0x42, &[0, 0]),
            Some(Effect::Msi(MsiChange::Disabled))
        );
    }
}
