//! PCI devices as the kernel describes them under `/sys/bus/pci/devices`.
//!
//! Why: to decide whether a GPU can be handed to a VM we need its identity
//! (vendor/device/class), which driver owns it, which IOMMU group it is in,
//! its BARs (a passthrough VMM has to place them in guest physical space, and
//! large 64-bit prefetchable BARs need the high MMIO window) and whether it is
//! an SR-IOV physical or virtual function. All of that is plain sysfs text;
//! this module turns it into typed values and records, per device, anything
//! it could not read instead of failing.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::bar::{self, Bar, Resources};
use crate::iommu::IommuGroup;
use crate::passable::{self, Passable};
use crate::sysfs::{self, SysfsError};

/// PCI base class for display controllers (VGA, XGA, 3D, other).
pub const CLASS_DISPLAY: u8 = 0x03;
/// PCI base class for processing accelerators.
pub const CLASS_ACCELERATOR: u8 = 0x12;
/// PCI base class for bridges.
pub const CLASS_BRIDGE: u8 = 0x06;
/// PCI-to-PCI bridge subclass of [`CLASS_BRIDGE`].
pub const SUBCLASS_PCI_BRIDGE: u8 = 0x04;

/// A PCI address: domain (segment), bus, device, function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    /// PCI segment; usually 0, wider than 16 bits on some hosts (e.g. Intel VMD).
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device number, 0..=31.
    pub device: u8,
    /// Function number, 0..=7.
    pub function: u8,
}

/// A string that is not a `dddd:bb:dd.f` PCI address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a PCI address (dddd:bb:dd.f): {0:?}")]
pub struct ParseBdfError(String);

impl FromStr for Bdf {
    type Err = ParseBdfError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseBdfError(s.chars().take(64).collect());
        fn hex(part: &str, min: usize, max: usize) -> Option<u32> {
            if part.len() < min || part.len() > max || !part.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return None;
            }
            u32::from_str_radix(part, 16).ok()
        }
        let (domain, rest) = s.split_once(':').ok_or_else(err)?;
        let (bus, rest) = rest.split_once(':').ok_or_else(err)?;
        let (device, function) = rest.split_once('.').ok_or_else(err)?;
        let domain = hex(domain, 1, 8).ok_or_else(err)?;
        let bus = hex(bus, 2, 2).ok_or_else(err)?;
        let device = hex(device, 2, 2).filter(|d| *d <= 0x1f).ok_or_else(err)?;
        let function = hex(function, 1, 1).filter(|f| *f <= 7).ok_or_else(err)?;
        // The filters above bound every field to u8 range.
        Ok(Bdf {
            domain,
            bus: u8::try_from(bus).map_err(|_| err())?,
            device: u8::try_from(device).map_err(|_| err())?,
            function: u8::try_from(function).map_err(|_| err())?,
        })
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl Serialize for Bdf {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Which driver owns a device, as far as sysfs lets us tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "name")]
pub enum DriverBinding {
    /// No `driver` link: nothing is bound.
    Unbound,
    /// Bound to the named driver (basename of the `driver` link).
    Bound(String),
    /// The `driver` link exists but could not be read; a note says why.
    Unknown,
}

impl DriverBinding {
    /// Reads `<dev_dir>/driver`, pushing a note on failure.
    pub(crate) fn read(dev_dir: &Path, notes: &mut Vec<String>) -> Self {
        match sysfs::link_basename(&dev_dir.join("driver")) {
            Ok(Some(name)) => DriverBinding::Bound(name),
            Ok(None) => DriverBinding::Unbound,
            Err(e) => {
                notes.push(e.to_string());
                DriverBinding::Unknown
            }
        }
    }

    /// The driver's name if bound.
    pub fn name(&self) -> Option<&str> {
        match self {
            DriverBinding::Bound(name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for DriverBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverBinding::Unbound => f.write_str("none"),
            DriverBinding::Bound(name) => f.write_str(name),
            DriverBinding::Unknown => f.write_str("?"),
        }
    }
}

/// What kind of GPU-like device a PCI class code denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuKind {
    /// Class 0x0300, VGA-compatible controller (usually drives a display).
    Vga,
    /// Class 0x0302, 3D controller (compute GPUs, headless boards).
    ThreeD,
    /// Any other display controller subclass (0x03xx).
    OtherDisplay,
    /// Class 0x12xx, processing accelerator.
    Accelerator,
}

impl GpuKind {
    /// Classifies a 24-bit PCI class code (`class` attribute: base, sub, prog-if).
    pub fn from_class(class: u32) -> Option<Self> {
        let [_, base, sub, _] = class.to_be_bytes();
        match (base, sub) {
            (CLASS_DISPLAY, 0x00) => Some(GpuKind::Vga),
            (CLASS_DISPLAY, 0x02) => Some(GpuKind::ThreeD),
            (CLASS_DISPLAY, _) => Some(GpuKind::OtherDisplay),
            (CLASS_ACCELERATOR, _) => Some(GpuKind::Accelerator),
            _ => None,
        }
    }
}

/// Whether a 24-bit class code is a PCI-to-PCI bridge. Such bridges may share
/// an IOMMU group with the devices below them without making it unusable.
pub fn is_pci_bridge(class: u32) -> bool {
    let [_, base, sub, _] = class.to_be_bytes();
    base == CLASS_BRIDGE && sub == SUBCLASS_PCI_BRIDGE
}

/// SR-IOV capability of a physical function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SrIov {
    /// `sriov_totalvfs`: how many VFs the device supports.
    pub total_vfs: u32,
    /// `sriov_numvfs`: how many are enabled now (`None` if unreadable).
    pub num_vfs: Option<u32>,
    /// Per-VF BAR sizes (the VF BAR lines of `resource`).
    pub vf_bars: Vec<Bar>,
}

/// One PCI function and what this host could do with it.
#[derive(Debug, Clone, Serialize)]
pub struct PciDevice {
    /// Address.
    pub bdf: Bdf,
    /// Vendor id, `None` if unreadable.
    pub vendor: Option<u16>,
    /// Device id, `None` if unreadable.
    pub device: Option<u16>,
    /// 24-bit class code (base, subclass, prog-if), `None` if unreadable.
    pub class: Option<u32>,
    /// GPU/accelerator kind derived from `class`, `None` for anything else.
    pub gpu: Option<GpuKind>,
    /// Bound driver.
    pub driver: DriverBinding,
    /// IOMMU group number, `None` without an IOMMU (or if unreadable; see notes).
    pub iommu_group: Option<u32>,
    /// Standard BARs 0..=5 that are implemented.
    pub bars: Vec<Bar>,
    /// Expansion ROM, if any.
    pub rom: Option<Bar>,
    /// SR-IOV capability if this is a physical function that has one.
    pub sriov: Option<SrIov>,
    /// The physical function, if this is an SR-IOV virtual function.
    pub physfn: Option<Bdf>,
    /// Whether and how it could be passed through.
    pub passable: Passable,
    /// Anything that could not be read or parsed.
    pub notes: Vec<String>,
}

impl PciDevice {
    /// Reads the device directory `dir` (normally `/sys/bus/pci/devices/<bdf>`).
    /// `groups` are the host's IOMMU groups, needed to judge passability.
    pub(crate) fn read(dir: &Path, bdf: Bdf, groups: &[IommuGroup]) -> PciDevice {
        let mut notes = Vec::new();
        let vendor: Option<u16> = noted(
            sysfs::read_hex(&dir.join("vendor"), "a hex 16-bit vendor id"),
            &mut notes,
        );
        let device: Option<u16> = noted(
            sysfs::read_hex(&dir.join("device"), "a hex 16-bit device id"),
            &mut notes,
        );
        let class_path = dir.join("class");
        let class: Option<u32> = noted(
            sysfs::read_hex(&class_path, "a hex 24-bit class code"),
            &mut notes,
        );
        let class = match class {
            Some(c) if c > 0xff_ffff => {
                let found = format!("{c:#x}");
                let e = SysfsError::malformed(&class_path, "a hex 24-bit class code", &found);
                notes.push(e.to_string());
                None
            }
            c => c,
        };
        let total_vfs = noted(
            sysfs::read_dec_u32(&dir.join("sriov_totalvfs"), "a decimal VF count"),
            &mut notes,
        );
        let num_vfs = noted(
            sysfs::read_dec_u32(&dir.join("sriov_numvfs"), "a decimal VF count"),
            &mut notes,
        );
        let resource_path = dir.join("resource");
        let resource_text = noted(sysfs::read_attr(&resource_path), &mut notes);
        let physfn_name = noted(sysfs::link_basename(&dir.join("physfn")), &mut notes);

        let resources = match resource_text {
            Some(text) => bar::parse_resources(&text, &resource_path, &mut notes),
            None => Resources::default(),
        };
        let physfn = physfn_name.and_then(|name| match name.parse::<Bdf>() {
            Ok(bdf) => Some(bdf),
            Err(e) => {
                notes.push(format!("physfn link: {e}"));
                None
            }
        });
        // Without a trustworthy group number we cannot judge passability at
        // all, which is different from "no IOMMU" (no link).
        let (iommu_group, group_problem) = match sysfs::link_basename(&dir.join("iommu_group")) {
            Ok(None) => (None, None),
            Ok(Some(name)) => match name.parse::<u32>() {
                Ok(n) => (Some(n), None),
                Err(_) => (
                    None,
                    Some(format!(
                        "iommu_group link names {name:?}, not a group number"
                    )),
                ),
            },
            Err(e) => (None, Some(e.to_string())),
        };
        let driver = DriverBinding::read(dir, &mut notes);
        let passable = match group_problem {
            Some(problem) => {
                notes.push(problem.clone());
                Passable::Unknown { reason: problem }
            }
            None => passable::assess(&bdf.to_string(), &driver, iommu_group, groups),
        };

        PciDevice {
            bdf,
            vendor,
            device,
            class,
            gpu: class.and_then(GpuKind::from_class),
            driver,
            iommu_group,
            bars: resources.bars,
            rom: resources.rom,
            sriov: total_vfs.map(|total_vfs| SrIov {
                total_vfs,
                num_vfs,
                vf_bars: resources.vf_bars,
            }),
            physfn,
            passable,
            notes,
        }
    }

    /// Whether this is a display controller or processing accelerator.
    pub fn is_gpu(&self) -> bool {
        self.gpu.is_some()
    }
}

/// The value of an optional attribute, or `None` with a note if unreadable.
fn noted<T>(read: Result<Option<T>, SysfsError>, notes: &mut Vec<String>) -> Option<T> {
    read.unwrap_or_else(|e| {
        notes.push(e.to_string());
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdf_round_trips_and_rejects_garbage() {
        let bdf: Bdf = "0000:03:00.1".parse().unwrap();
        assert_eq!(
            bdf,
            Bdf {
                domain: 0,
                bus: 3,
                device: 0,
                function: 1
            }
        );
        assert_eq!(bdf.to_string(), "0000:03:00.1");
        assert_eq!(
            "10000:e1:1f.7".parse::<Bdf>().unwrap().to_string(),
            "10000:e1:1f.7"
        );
        for bad in [
            "",
            "0000:03:00",
            "0000:03:20.0",
            "0000:03:00.8",
            "0000:3:00.0",
            "x:03:00.0",
            "0000:03:00.0x",
            "+000:03:00.0",
        ] {
            assert!(bad.parse::<Bdf>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn gpu_classes() {
        assert_eq!(GpuKind::from_class(0x030000), Some(GpuKind::Vga));
        assert_eq!(GpuKind::from_class(0x030200), Some(GpuKind::ThreeD));
        assert_eq!(GpuKind::from_class(0x038000), Some(GpuKind::OtherDisplay));
        assert_eq!(GpuKind::from_class(0x120000), Some(GpuKind::Accelerator));
        assert_eq!(GpuKind::from_class(0x020000), None);
        assert!(is_pci_bridge(0x060400));
        assert!(!is_pci_bridge(0x060000));
    }
}
