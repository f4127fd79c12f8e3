//! BARs: what a device asks for in the guest's physical address space.
//!
//! Why: a passthrough VMM has to place every BAR of a device in guest
//! physical space with the same size and attributes — 64-bit BARs may go
//! above 4GiB (large GPU apertures must), prefetchable ones may be mapped
//! write-combined. The kernel publishes all of this, per device, in the sysfs
//! `resource` file: one `start end flags` line per resource, flags being the
//! kernel's `IORESOURCE_*` bits from `include/linux/ioport.h`.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::sysfs::{self, SysfsError};

/// `IORESOURCE_IO` from Linux `include/linux/ioport.h`.
const IORESOURCE_IO: u64 = 0x0000_0100;
/// `IORESOURCE_MEM`.
const IORESOURCE_MEM: u64 = 0x0000_0200;
/// `IORESOURCE_TYPE_BITS`.
const IORESOURCE_TYPE_BITS: u64 = 0x0000_1f00;
/// `IORESOURCE_PREFETCH`: no side effects on read, may be mapped write-combined.
const IORESOURCE_PREFETCH: u64 = 0x0000_2000;
/// `IORESOURCE_MEM_64`: a 64-bit memory BAR.
const IORESOURCE_MEM_64: u64 = 0x0010_0000;
/// `IORESOURCE_UNSET`: the kernel knows the size but assigned no address.
const IORESOURCE_UNSET: u64 = 0x2000_0000;

/// Lines of the sysfs `resource` file, in the order of the kernel's
/// `enum { PCI_STD_RESOURCES .. }` in `include/linux/pci.h`: six BARs, the
/// expansion ROM, then (kernels with `CONFIG_PCI_IOV`) the six VF BARs.
const STD_BARS: usize = 6;
const ROM_LINE: usize = 6;
const IOV_FIRST_LINE: usize = 7;
const IOV_BARS: usize = 6;

/// The address space a BAR decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BarSpace {
    /// Memory space (MMIO).
    Memory,
    /// I/O port space.
    Io,
    /// Some other resource type (not expected for a BAR).
    Other,
}

/// One BAR, ROM or VF BAR as listed in the sysfs `resource` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    /// BAR number (0..=5); for the ROM, 6; for VF BARs, the VF BAR number 0..=5.
    pub index: u8,
    /// Size in bytes (`end - start + 1`).
    pub size: u64,
    /// Address space.
    pub space: BarSpace,
    /// 64-bit memory BAR (`IORESOURCE_MEM_64`).
    pub mem64: bool,
    /// Prefetchable (`IORESOURCE_PREFETCH`).
    pub prefetchable: bool,
    /// Sized but given no address by firmware or the kernel.
    pub unassigned: bool,
}

impl Bar {
    /// Parses one `start end flags` line. `Ok(None)` for an empty slot.
    fn parse(index: u8, line: &str, path: &Path) -> Result<Option<Bar>, SysfsError> {
        const SHAPE: &str = "three hex fields \"start end flags\"";
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [start, end, flags] = fields[..] else {
            return Err(SysfsError::malformed(path, SHAPE, line));
        };
        let start: u64 = sysfs::parse_hex(path, start, SHAPE)?;
        let end: u64 = sysfs::parse_hex(path, end, SHAPE)?;
        let flags: u64 = sysfs::parse_hex(path, flags, SHAPE)?;
        if start == 0 && end == 0 {
            return Ok(None);
        }
        let size = end
            .checked_sub(start)
            .and_then(|d| d.checked_add(1))
            .ok_or_else(|| SysfsError::malformed(path, "end >= start", line))?;
        let space = match flags & IORESOURCE_TYPE_BITS {
            IORESOURCE_MEM => BarSpace::Memory,
            IORESOURCE_IO => BarSpace::Io,
            _ => BarSpace::Other,
        };
        Ok(Some(Bar {
            index,
            size,
            space,
            mem64: flags & IORESOURCE_MEM_64 != 0,
            prefetchable: flags & IORESOURCE_PREFETCH != 0,
            // A start of 0 with a size means the kernel sized the BAR but could
            // not place it (it also sets IORESOURCE_UNSET in that case).
            unassigned: start == 0 || flags & IORESOURCE_UNSET != 0,
        }))
    }
}

impl fmt::Display for Bar {
    /// `256MiB(64-bit,prefetch)`, `128B(io)`, `16MiB(unassigned)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", HumanSize(self.size))?;
        let mut attrs = Vec::new();
        match self.space {
            BarSpace::Memory => {}
            BarSpace::Io => attrs.push("io"),
            BarSpace::Other => attrs.push("other"),
        }
        if self.mem64 {
            attrs.push("64-bit");
        }
        if self.prefetchable {
            attrs.push("prefetch");
        }
        if self.unassigned {
            attrs.push("unassigned");
        }
        if !attrs.is_empty() {
            write!(f, "({})", attrs.join(","))?;
        }
        Ok(())
    }
}

/// A byte count in the largest binary unit that divides it exactly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HumanSize(pub u64);

impl fmt::Display for HumanSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let mut value = self.0;
        let mut unit = "B";
        for next in UNITS {
            if value == 0 || !value.is_multiple_of(1024) {
                break;
            }
            value /= 1024;
            unit = next;
        }
        write!(f, "{value}{unit}")
    }
}

/// The BARs, ROM and VF BARs of one device.
#[derive(Debug, Default)]
pub(crate) struct Resources {
    pub(crate) bars: Vec<Bar>,
    pub(crate) rom: Option<Bar>,
    pub(crate) vf_bars: Vec<Bar>,
}

/// Parses a whole `resource` file; bad lines become notes.
pub(crate) fn parse_resources(text: &str, path: &Path, notes: &mut Vec<String>) -> Resources {
    enum Slot {
        Bar(usize),
        Rom,
        VfBar(usize),
    }
    let mut out = Resources::default();
    for (line_no, line) in text.lines().enumerate() {
        let slot = match line_no {
            n if n < STD_BARS => Slot::Bar(n),
            ROM_LINE => Slot::Rom,
            n if (IOV_FIRST_LINE..IOV_FIRST_LINE + IOV_BARS).contains(&n) => {
                Slot::VfBar(n - IOV_FIRST_LINE)
            }
            // Bridge windows and anything newer kernels append: not BARs.
            _ => continue,
        };
        let index = match slot {
            Slot::Bar(i) | Slot::VfBar(i) => i,
            Slot::Rom => ROM_LINE,
        };
        // Every index is below 7 by construction.
        let index = u8::try_from(index).unwrap_or(u8::MAX);
        match Bar::parse(index, line, path) {
            Ok(None) => {}
            Ok(Some(bar)) => match slot {
                Slot::Bar(_) => out.bars.push(bar),
                Slot::Rom => out.rom = Some(bar),
                Slot::VfBar(_) => out.vf_bars.push(bar),
            },
            Err(e) => notes.push(format!("resource line {line_no}: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_flags_use_ioport_h_bits() {
        let text = "\
0x00000000fb000000 0x00000000fbffffff 0x0000000000040200
0x000000e000000000 0x000000e00fffffff 0x000000000014220c
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x000000000000e000 0x000000000000e07f 0x0000000000040101
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x00000000001fffff 0x0000000020142200
0x00000000fc000000 0x00000000fc07ffff 0x0000000000046200
0x000000f000000000 0x000000f000ffffff 0x000000000014220c
";
        let mut notes = Vec::new();
        let r = parse_resources(text, Path::new("resource"), &mut notes);
        assert!(notes.is_empty(), "{notes:?}");
        let shown: Vec<String> = r.bars.iter().map(|b| format!("{}={b}", b.index)).collect();
        assert_eq!(
            shown,
            [
                "0=16MiB",
                "1=256MiB(64-bit,prefetch)",
                "3=128B(io)",
                "5=2MiB(64-bit,prefetch,unassigned)"
            ]
        );
        assert_eq!(r.rom.unwrap().size, 512 * 1024);
        assert_eq!(r.vf_bars.len(), 1);
        assert_eq!(r.vf_bars[0].index, 0);
        assert_eq!(r.vf_bars[0].size, 16 << 20);
    }

    #[test]
    fn malformed_resource_lines_become_notes() {
        let text = "garbage\n0x10 0x0f 0x200\n0x0 0xffffffffffffffff 0x200\n0x1000 0x1fff 0x200 extra\n0x2000 0x2fff 0x200\n";
        let mut notes = Vec::new();
        let r = parse_resources(text, Path::new("resource"), &mut notes);
        assert_eq!(notes.len(), 4, "{notes:?}");
        assert_eq!(r.bars.len(), 1);
        assert_eq!(r.bars[0].index, 4);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(HumanSize(0).to_string(), "0B");
        assert_eq!(HumanSize(128).to_string(), "128B");
        assert_eq!(HumanSize(1536).to_string(), "1536B");
        assert_eq!(HumanSize(3 << 20).to_string(), "3MiB");
        assert_eq!(HumanSize(32 << 30).to_string(), "32GiB");
        assert_eq!(HumanSize(1 << 63).to_string(), "8EiB");
    }
}
