//! The host inventory: everything `coco-vmm check` reports about GPU
//! passthrough on this machine.
//!
//! Why: before a VM can be given a GPU partition backed by real hardware, an
//! operator needs one place that says whether the IOMMU is on, whether VFIO is
//! usable, which GPUs/accelerators exist and, for each, whether it can be
//! passed through or what to change first. This module only reads sysfs and
//! devfs, never writes, and never fails: whatever it cannot read becomes a
//! note, because it runs on arbitrary hosts.
//!
//! Every path is resolved under a root directory so tests can point it at a
//! fake tree; [`Inventory::probe`] uses `/`.

use std::path::Path;

use serde::Serialize;

use crate::iommu::{self, IommuGroup, IommuStatus};
use crate::pci::{Bdf, PciDevice};
use crate::sysfs;
use crate::vfio::VfioStatus;

/// `/sys/bus/pci/devices/<bdf>`.
const PCI_DEVICES: &str = "sys/bus/pci/devices";

/// What this host could do for GPU passthrough.
///
/// `Display` renders the human report; `Serialize` gives the same data for
/// `coco-vmm check --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// VFIO device nodes and kernel modules.
    pub vfio: VfioStatus,
    /// IOMMU hardware units.
    pub iommu: IommuStatus,
    /// IOMMU groups, sorted by number.
    pub groups: Vec<IommuGroup>,
    /// Every PCI function, sorted by address; [`Inventory::gpus`] filters.
    pub devices: Vec<PciDevice>,
    /// Host-level problems (unreadable directories, odd entries).
    pub notes: Vec<String>,
}

impl Inventory {
    /// Surveys this host (root `/`).
    pub fn probe() -> Inventory {
        Inventory::probe_at(Path::new("/"))
    }

    /// Surveys the tree under `root`, which holds `sys/...` and `dev/...`
    /// laid out as on a real host.
    pub fn probe_at(root: &Path) -> Inventory {
        let mut notes = Vec::new();
        let vfio = VfioStatus::probe(root, &mut notes);
        let iommu = IommuStatus::probe(root, &mut notes);
        let groups = iommu::probe_groups(root, &mut notes);
        let devices = probe_devices(root, &groups, &mut notes);
        Inventory {
            vfio,
            iommu,
            groups,
            devices,
            notes,
        }
    }

    /// Display controllers and processing accelerators.
    pub fn gpus(&self) -> impl Iterator<Item = &PciDevice> {
        self.devices.iter().filter(|d| d.is_gpu())
    }

    /// The device at `bdf`, if present.
    pub fn device(&self, bdf: Bdf) -> Option<&PciDevice> {
        self.devices.iter().find(|d| d.bdf == bdf)
    }

    /// The IOMMU group numbered `id`, if present.
    pub fn group(&self, id: u32) -> Option<&IommuGroup> {
        self.groups.iter().find(|g| g.id == id)
    }
}

fn probe_devices(root: &Path, groups: &[IommuGroup], notes: &mut Vec<String>) -> Vec<PciDevice> {
    let dir = root.join(PCI_DEVICES);
    let names = match sysfs::list_dir(&dir) {
        Ok(Some(names)) => names,
        Ok(None) => {
            notes.push(format!(
                "{} does not exist: no PCI bus visible on this host",
                dir.display()
            ));
            return Vec::new();
        }
        Err(e) => {
            notes.push(e.to_string());
            return Vec::new();
        }
    };
    let mut devices: Vec<PciDevice> = names
        .into_iter()
        .filter_map(|name| match name.parse::<Bdf>() {
            Ok(bdf) => Some(PciDevice::read(&dir.join(&name), bdf, groups)),
            Err(e) => {
                notes.push(format!("{}: skipping entry: {e}", dir.display()));
                None
            }
        })
        .collect();
    devices.sort_by_key(|d| d.bdf);
    devices
}
