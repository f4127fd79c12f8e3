//! A type-0 PCI configuration space held by the VMM: 256 bytes, a per-byte
//! mask of the bits a guest may change, and BAR emulation.
//!
//! Why a shadow: the guest must see the BAR addresses coco-vmm chose (not
//! the host's), BAR sizing must work the way PCI specifies it (write
//! all-ones, read back the size mask), and nothing a guest writes may reach
//! a register it has no business changing. Emulated devices (the host
//! bridge) use it alone; the VFIO device layers it over the real device's
//! configuration space.

/// Standard header offsets used by the VMM.
pub mod offset {
    /// Vendor ID (16 bits).
    pub const VENDOR_ID: usize = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: usize = 0x02;
    /// Command register (16 bits).
    pub const COMMAND: usize = 0x04;
    /// Status register (16 bits).
    pub const STATUS: usize = 0x06;
    /// Revision ID (8 bits), then the 24-bit class code.
    pub const REVISION: usize = 0x08;
    /// Header type (8 bits).
    pub const HEADER_TYPE: usize = 0x0e;
    /// BAR 0; BAR n is at `BAR0 + 4 * n`.
    pub const BAR0: usize = 0x10;
    /// Expansion ROM base address.
    pub const ROM: usize = 0x30;
    /// Capabilities pointer (8 bits).
    pub const CAPABILITIES: usize = 0x34;
    /// Interrupt line (8 bits).
    pub const INTERRUPT_LINE: usize = 0x3c;
    /// Interrupt pin (8 bits).
    pub const INTERRUPT_PIN: usize = 0x3d;
}

/// Command register: memory space decoding.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command register: bus mastering (the device may do DMA).
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Status register: the capability list is valid.
pub const STATUS_CAPABILITIES: u16 = 1 << 4;
/// Size of the configuration space the VMM emulates (conventional PCI).
pub const CONFIG_SIZE: usize = 256;
/// Number of BARs of a type-0 header.
pub const BAR_COUNT: usize = 6;

/// What a BAR decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// 32-bit memory BAR.
    Mem32 {
        /// Prefetchable.
        prefetchable: bool,
    },
    /// 64-bit memory BAR (takes this slot and the next).
    Mem64 {
        /// Prefetchable.
        prefetchable: bool,
    },
}

impl BarKind {
    /// The read-only low bits of the BAR register.
    fn flags(self) -> u32 {
        match self {
            BarKind::Mem32 { prefetchable } => u32::from(prefetchable) << 3,
            BarKind::Mem64 { prefetchable } => 0b100 | (u32::from(prefetchable) << 3),
        }
    }
}

/// A memory BAR: its kind, size (a power of two, at least 16 bytes) and the
/// guest-physical address the VMM placed it at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Guest-physical base.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// Decoding.
    pub kind: BarKind,
}

/// Why a BAR cannot be installed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BarError {
    /// The index is not 0..=5 (or 0..=4 for a 64-bit BAR).
    #[error("BAR {0} does not exist in a type-0 header")]
    Index(usize),
    /// The size is not a power of two of at least 16 bytes, or too big for
    /// the kind.
    #[error("BAR size {0:#x} is not a power of two in 16 bytes..=2 GiB (32-bit) or ..=2^63")]
    Size(u64),
    /// The base is not aligned to the size, or does not fit the kind.
    #[error("BAR base {base:#x} is not aligned to its size {size:#x} or does not fit")]
    Base {
        /// The base.
        base: u64,
        /// The size.
        size: u64,
    },
}

/// Which part of a BAR a register is.
#[derive(Clone, Copy, Debug)]
enum BarPart {
    Low,
    High,
}

/// A configuration space shadow.
#[derive(Clone, Debug)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    writable: [u8; CONFIG_SIZE],
    bars: [Option<Bar>; BAR_COUNT],
}

impl ConfigSpace {
    /// A type-0 header with these IDs and class (`class` is the 24-bit
    /// class code: base class, subclass, programming interface). Only the
    /// command register's memory and bus-master bits and the interrupt line
    /// are writable until [`ConfigSpace::set_writable`] says otherwise.
    pub fn new(vendor: u16, device: u16, class: u32, revision: u8) -> Self {
        let mut space = ConfigSpace {
            bytes: [0; CONFIG_SIZE],
            writable: [0; CONFIG_SIZE],
            bars: [None; BAR_COUNT],
        };
        space.set_u16(offset::VENDOR_ID, vendor);
        space.set_u16(offset::DEVICE_ID, device);
        space.set_u32(offset::REVISION, (class << 8) | u32::from(revision));
        space.set_writable(
            offset::COMMAND,
            &(COMMAND_MEMORY | COMMAND_BUS_MASTER).to_le_bytes(),
        );
        space.set_writable(offset::INTERRUPT_LINE, &[0xff]);
        space
    }

    /// A shadow initialised from a device's real 256 bytes. Nothing is
    /// writable and no BAR is installed until the caller says so.
    pub fn from_bytes(bytes: [u8; CONFIG_SIZE]) -> Self {
        ConfigSpace {
            bytes,
            writable: [0; CONFIG_SIZE],
            bars: [None; BAR_COUNT],
        }
    }

    /// Marks the bits set in `mask` (starting at `at`) guest-writable.
    /// Out-of-range parts are ignored.
    pub fn set_writable(&mut self, at: usize, mask: &[u8]) {
        for (i, m) in mask.iter().enumerate() {
            if let Some(w) = self.writable.get_mut(at + i) {
                *w = *m;
            }
        }
    }

    /// Sets bytes directly (VMM side, no write mask). Out-of-range parts are
    /// ignored.
    pub fn set_bytes(&mut self, at: usize, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            if let Some(slot) = self.bytes.get_mut(at + i) {
                *slot = *b;
            }
        }
    }

    /// Sets a 16-bit register (VMM side).
    pub fn set_u16(&mut self, at: usize, v: u16) {
        self.set_bytes(at, &v.to_le_bytes());
    }

    /// Sets a 32-bit register (VMM side).
    pub fn set_u32(&mut self, at: usize, v: u32) {
        self.set_bytes(at, &v.to_le_bytes());
    }

    /// Reads `N` bytes at `at`; all-ones past the end.
    fn get<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0xff; N];
        for (i, b) in out.iter_mut().enumerate() {
            if let Some(v) = self.bytes.get(at + i) {
                *b = *v;
            }
        }
        out
    }

    /// A 16-bit register.
    pub fn u16_at(&self, at: usize) -> u16 {
        u16::from_le_bytes(self.get(at))
    }

    /// A byte.
    pub fn u8_at(&self, at: usize) -> u8 {
        self.get::<1>(at)[0]
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.u16_at(offset::COMMAND)
    }

    /// Reads dword `reg` (0..64); all-ones outside the space.
    pub fn read_dword(&self, reg: usize) -> u32 {
        if reg >= CONFIG_SIZE / 4 {
            return u32::MAX;
        }
        u32::from_le_bytes(self.get(reg * 4))
    }

    /// Installs BAR `index` at `bar.base`. A 64-bit BAR also takes `index + 1`.
    pub fn set_bar(&mut self, index: usize, bar: Bar) -> Result<(), BarError> {
        let is64 = matches!(bar.kind, BarKind::Mem64 { .. });
        if index >= BAR_COUNT || (is64 && index + 1 >= BAR_COUNT) {
            return Err(BarError::Index(index));
        }
        let max = if is64 { 1 << 63 } else { 1 << 31 };
        if !bar.size.is_power_of_two() || bar.size < 16 || bar.size > max {
            return Err(BarError::Size(bar.size));
        }
        let fits = is64 || bar.base.checked_add(bar.size).is_some_and(|e| e <= 1 << 32);
        if !bar.base.is_multiple_of(bar.size) || !fits {
            return Err(BarError::Base {
                base: bar.base,
                size: bar.size,
            });
        }
        self.bars[index] = Some(bar);
        if is64 {
            self.bars[index + 1] = None;
        }
        let at = offset::BAR0 + 4 * index;
        self.set_u32(at, (bar.base as u32 & !0xf) | bar.kind.flags());
        if is64 {
            self.set_u32(at + 4, (bar.base >> 32) as u32);
        }
        Ok(())
    }

    /// The BAR installed at `index`, with the address the guest last
    /// programmed into it.
    pub fn bar(&self, index: usize) -> Option<Bar> {
        let bar = (*self.bars.get(index)?)?;
        let at = offset::BAR0 + 4 * index;
        let low = u64::from(u32::from_le_bytes(self.get(at)) & !0xf);
        let high = match bar.kind {
            BarKind::Mem64 { .. } => u64::from(u32::from_le_bytes(self.get(at + 4))) << 32,
            BarKind::Mem32 { .. } => 0,
        };
        Some(Bar {
            base: high | low,
            ..bar
        })
    }

    fn bar_part(&self, reg: usize) -> Option<(BarPart, Bar)> {
        let index = reg.checked_sub(offset::BAR0 / 4)?;
        if index >= BAR_COUNT {
            return None;
        }
        if let Some(bar) = self.bars[index] {
            return Some((BarPart::Low, bar));
        }
        let below = index.checked_sub(1)?;
        match self.bars[below] {
            Some(bar) if matches!(bar.kind, BarKind::Mem64 { .. }) => Some((BarPart::High, bar)),
            _ => None,
        }
    }

    /// Whether `reg` is a BAR register (installed or not) or the ROM BAR:
    /// registers a passthrough device must never forward.
    pub fn is_bar_register(reg: usize) -> bool {
        (offset::BAR0 / 4..offset::BAR0 / 4 + BAR_COUNT).contains(&reg) || reg == offset::ROM / 4
    }

    /// A guest write of `data` at byte `at`. Bits outside the write mask
    /// keep their value; BAR registers take only the address bits above the
    /// BAR's size, so writing all-ones and reading back gives the size mask.
    /// Writes that cross a dword or leave the space are ignored. Returns
    /// whether a BAR register changed.
    pub fn write(&mut self, at: usize, data: &[u8]) -> bool {
        if data.is_empty() || data.len() > 4 || at % 4 + data.len() > 4 || at >= CONFIG_SIZE {
            return false;
        }
        let reg = at / 4;
        if let Some((part, bar)) = self.bar_part(reg) {
            let mut cur = u32::from_le_bytes(self.get(reg * 4)).to_le_bytes();
            for (i, b) in data.iter().enumerate() {
                cur[at % 4 + i] = *b;
            }
            let value = u32::from_le_bytes(cur);
            let size_mask = !(bar.size - 1);
            let new = match part {
                BarPart::Low => (value & size_mask as u32 & !0xf) | bar.kind.flags(),
                BarPart::High => value & (size_mask >> 32) as u32,
            };
            let old = u32::from_le_bytes(self.get(reg * 4));
            self.set_u32(reg * 4, new);
            return old != new;
        }
        if Self::is_bar_register(reg) {
            return false;
        }
        for (i, b) in data.iter().enumerate() {
            let idx = at + i;
            let mask = self.writable[idx];
            self.bytes[idx] = (self.bytes[idx] & !mask) | (b & mask);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> ConfigSpace {
        let mut s = ConfigSpace::new(0x1234, 0x11e8, 0xff_00_00, 0x10);
        s.set_bar(
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
        s.set_bar(
            2,
            Bar {
                base: 0x1_0000_0000,
                size: 1 << 16,
                kind: BarKind::Mem64 { prefetchable: true },
            },
        )
        .unwrap();
        s
    }

    #[test]
    fn ids_class_and_bars_read_back() {
        let s = space();
        assert_eq!(s.read_dword(0), 0x11e8_1234);
        assert_eq!(s.read_dword(2), 0xff00_0010);
        assert_eq!(s.read_dword(4), 0xe000_0000);
        assert_eq!(s.read_dword(6), 0x0000_000c);
        assert_eq!(s.read_dword(7), 0x1);
        assert_eq!(s.bar(2).unwrap().base, 0x1_0000_0000);
        assert_eq!(s.bar(3), None);
    }

    #[test]
    fn bar_sizing_returns_the_size_mask_and_restores() {
        let mut s = space();
        assert!(s.write(0x10, &u32::MAX.to_le_bytes()));
        assert_eq!(s.read_dword(4), 0xfff0_0000);
        s.write(0x10, &0xe000_0000u32.to_le_bytes());
        assert_eq!(s.bar(0).unwrap().base, 0xe000_0000);
        // 64-bit BAR: both halves size.
        s.write(0x18, &u32::MAX.to_le_bytes());
        s.write(0x1c, &u32::MAX.to_le_bytes());
        assert_eq!(s.read_dword(6), 0xffff_000c);
        assert_eq!(s.read_dword(7), 0xffff_ffff);
        // An uninstalled BAR stays zero.
        s.write(0x20, &u32::MAX.to_le_bytes());
        assert_eq!(s.read_dword(8), 0);
        // The ROM BAR is not writable.
        s.write(0x30, &u32::MAX.to_le_bytes());
        assert_eq!(s.read_dword(12), 0);
    }

    #[test]
    fn only_masked_bits_change() {
        let mut s = space();
        s.write(0x00, &[0, 0, 0, 0]);
        assert_eq!(s.read_dword(0), 0x11e8_1234);
        s.write(0x04, &[0xff, 0xff]);
        assert_eq!(s.command(), COMMAND_MEMORY | COMMAND_BUS_MASTER);
        s.write(0x3c, &[0x0b]);
        assert_eq!(s.u8_at(0x3c), 0x0b);
    }

    #[test]
    fn hostile_accesses_are_ignored() {
        let mut s = space();
        let before = s.read_dword(1);
        assert!(!s.write(0x06, &[0xff, 0xff, 0xff]));
        assert!(!s.write(0x04, &[0xff; 8]));
        assert!(!s.write(0x100, &[0xff]));
        assert!(!s.write(usize::MAX, &[0xff]));
        assert!(!s.write(0x04, &[]));
        assert_eq!(s.read_dword(1), before);
        assert_eq!(s.read_dword(64), u32::MAX);
        assert_eq!(s.read_dword(usize::MAX), u32::MAX);
        assert_eq!(s.u16_at(0xff), 0xff00 | u16::from(s.u8_at(0xff)));
    }

    #[test]
    fn bad_bars_are_refused() {
        let mut s = space();
        let bar = |base, size| Bar {
            base,
            size,
            kind: BarKind::Mem32 {
                prefetchable: false,
            },
        };
        assert_eq!(s.set_bar(6, bar(0, 16)), Err(BarError::Index(6)));
        assert_eq!(s.set_bar(0, bar(0, 24)), Err(BarError::Size(24)));
        assert_eq!(s.set_bar(0, bar(0, 8)), Err(BarError::Size(8)));
        assert!(matches!(
            s.set_bar(0, bar(0x1000, 0x10000)),
            Err(BarError::Base { .. })
        ));
        assert!(matches!(
            s.set_bar(0, bar(0xffff_0000, 0x2_0000)),
            Err(BarError::Base { .. })
        ));
        let b64 = Bar {
            base: 0,
            size: 16,
            kind: BarKind::Mem64 {
                prefetchable: false,
            },
        };
        assert_eq!(s.set_bar(5, b64), Err(BarError::Index(5)));
    }
}
