//! IOMMU hardware units and IOMMU groups.
//!
//! Why: VFIO can only give a VM a device whose DMA the IOMMU confines, and it
//! hands out whole IOMMU groups — the smallest set of devices the IOMMU can
//! tell apart. A GPU is only passable if every other device in its group is
//! harmless (see [`crate::passable`]), so the inventory needs each group's
//! members and their drivers, not just the GPU's own group number.

use std::path::Path;

use serde::Serialize;

use crate::pci::DriverBinding;
use crate::sysfs;

/// `/sys/class/iommu`: one entry per IOMMU hardware unit the kernel drives.
const CLASS_IOMMU: &str = "sys/class/iommu";
/// `/sys/kernel/iommu_groups/<n>/devices/<device>`.
const IOMMU_GROUPS: &str = "sys/kernel/iommu_groups";
/// `/dev/vfio/<n>`: a group's VFIO character device, present while the group
/// is bound to VFIO (legacy group/container interface).
const DEV_VFIO: &str = "dev/vfio";

/// IOMMU hardware as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IommuStatus {
    /// Entries of `/sys/class/iommu` (e.g. `dmar0` on Intel VT-d, `ivhd0` on
    /// AMD-Vi), sorted. Empty when no IOMMU is enabled.
    pub units: Vec<String>,
}

impl IommuStatus {
    /// Reads `/sys/class/iommu` under `root`.
    pub(crate) fn probe(root: &Path, notes: &mut Vec<String>) -> Self {
        let units = sysfs::list_dir(&root.join(CLASS_IOMMU)).unwrap_or_else(|e| {
            notes.push(e.to_string());
            None
        });
        IommuStatus {
            units: units.unwrap_or_default(),
        }
    }

    /// Whether the kernel drives at least one IOMMU.
    pub fn enabled(&self) -> bool {
        !self.units.is_empty()
    }
}

/// One device in an IOMMU group. Not necessarily a PCI device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMember {
    /// The device's sysfs name (a PCI address for PCI devices).
    pub name: String,
    /// Its driver.
    pub driver: DriverBinding,
    /// Its 24-bit PCI class code, if it has a readable one.
    pub class: Option<u32>,
}

/// An IOMMU group and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IommuGroup {
    /// Group number.
    pub id: u32,
    /// Members, sorted by name.
    pub members: Vec<GroupMember>,
    /// Whether `/dev/vfio/<id>` exists (the group is held by VFIO).
    pub vfio_node: bool,
    /// Anything that could not be read.
    pub notes: Vec<String>,
}

/// Reads every group under `/sys/kernel/iommu_groups`, sorted by number.
/// A missing directory means a kernel without IOMMU support: no groups, no note.
pub(crate) fn probe_groups(root: &Path, notes: &mut Vec<String>) -> Vec<IommuGroup> {
    let groups_dir = root.join(IOMMU_GROUPS);
    let names = match sysfs::list_dir(&groups_dir) {
        Ok(names) => names.unwrap_or_default(),
        Err(e) => {
            notes.push(e.to_string());
            return Vec::new();
        }
    };
    let mut groups = Vec::new();
    for name in names {
        let Ok(id) = name.parse::<u32>() else {
            notes.push(format!(
                "{}: ignoring {name:?}, not a group number",
                groups_dir.display()
            ));
            continue;
        };
        groups.push(read_group(root, &groups_dir.join(&name), id));
    }
    groups.sort_by_key(|g| g.id);
    groups
}

fn read_group(root: &Path, dir: &Path, id: u32) -> IommuGroup {
    let mut notes = Vec::new();
    let devices_dir = dir.join("devices");
    let names = match sysfs::list_dir(&devices_dir) {
        Ok(Some(names)) => names,
        Ok(None) => {
            notes.push(format!("{} is missing", devices_dir.display()));
            Vec::new()
        }
        Err(e) => {
            notes.push(e.to_string());
            Vec::new()
        }
    };
    let members = names
        .into_iter()
        .map(|name| {
            // Each entry is a symlink to the device's directory, so its
            // `driver` and `class` can be read through it.
            let dev_dir = devices_dir.join(&name);
            let driver = DriverBinding::read(&dev_dir, &mut notes);
            let class = sysfs::read_hex::<u32>(&dev_dir.join("class"), "a hex 24-bit class code")
                .unwrap_or_else(|e| {
                    notes.push(e.to_string());
                    None
                });
            GroupMember {
                name,
                driver,
                class,
            }
        })
        .collect();
    let vfio_node = sysfs::exists(&root.join(DEV_VFIO).join(id.to_string())).unwrap_or_else(|e| {
        notes.push(e.to_string());
        false
    });
    IommuGroup {
        id,
        members,
        vfio_node,
        notes,
    }
}
