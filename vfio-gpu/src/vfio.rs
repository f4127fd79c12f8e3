//! The host's VFIO plumbing: device nodes and kernel modules.
//!
//! Why: passthrough needs a userspace door into VFIO — the legacy container
//! node `/dev/vfio/vfio` (with `vfio_iommu_type1`) or the newer iommufd node
//! `/dev/iommu` — and the `vfio_pci` driver to hold the device. Reporting
//! which of these exist tells an operator which `modprobe` is missing before
//! anything else is tried.

use std::path::Path;

use serde::Serialize;

use crate::sysfs;

/// Legacy VFIO container node.
const DEV_VFIO_CONTAINER: &str = "dev/vfio/vfio";
/// iommufd node.
const DEV_IOMMUFD: &str = "dev/iommu";
/// `/sys/module/<name>` exists for loaded modules.
const SYS_MODULE: &str = "sys/module";
/// Modules VFIO passthrough depends on, in load order.
pub const MODULES: [&str; 4] = ["vfio", "vfio_pci", "vfio_iommu_type1", "iommufd"];

/// A kernel module and whether `/sys/module/<name>` exists.
///
/// A module built into the kernel shows up there only if it has parameters
/// or a version, so `present: false` means "not seen", not "certainly absent".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelModule {
    /// Module name as in `/sys/module`.
    pub name: &'static str,
    /// Whether `/sys/module/<name>` exists.
    pub present: bool,
}

/// VFIO device nodes and modules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VfioStatus {
    /// `/dev/vfio/vfio` exists (legacy container interface).
    pub container_node: bool,
    /// `/dev/iommu` exists (iommufd interface).
    pub iommufd_node: bool,
    /// The modules in [`MODULES`], in that order.
    pub modules: Vec<KernelModule>,
}

impl VfioStatus {
    /// Looks under `root` for the VFIO nodes and modules.
    pub(crate) fn probe(root: &Path, notes: &mut Vec<String>) -> Self {
        let mut exists = |rel: &Path| {
            sysfs::exists(&root.join(rel)).unwrap_or_else(|e| {
                notes.push(e.to_string());
                false
            })
        };
        let container_node = exists(Path::new(DEV_VFIO_CONTAINER));
        let iommufd_node = exists(Path::new(DEV_IOMMUFD));
        let modules = MODULES
            .into_iter()
            .map(|name| KernelModule {
                name,
                present: exists(&Path::new(SYS_MODULE).join(name)),
            })
            .collect();
        VfioStatus {
            container_node,
            iommufd_node,
            modules,
        }
    }
}
