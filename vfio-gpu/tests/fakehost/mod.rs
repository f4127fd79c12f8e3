//! A fake host root (`sys/...`, `dev/...`) in a temporary directory, laid
//! out like real sysfs: device directories under `sys/devices/pci0000:00`,
//! reached through relative symlinks from `sys/bus/pci/devices` and
//! `sys/kernel/iommu_groups/<n>/devices`, with `driver` and `iommu_group`
//! symlinks inside them.

#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

#[derive(Debug)]
pub struct FakeHost {
    dir: TempDir,
}

impl FakeHost {
    pub fn new() -> Self {
        FakeHost {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Writes `content` to `rel`, creating parents.
    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    pub fn mkdir(&self, rel: &str) {
        fs::create_dir_all(self.path(rel)).unwrap();
    }

    /// Creates the symlink `rel` pointing at `target` (kept relative).
    pub fn link(&self, rel: &str, target: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
    }

    pub fn vfio_nodes(&self) {
        self.write("dev/vfio/vfio", "");
        self.write("dev/iommu", "");
    }

    pub fn modules(&self, names: &[&str]) {
        for n in names {
            self.mkdir(&format!("sys/module/{n}"));
        }
    }

    pub fn iommu_unit(&self, name: &str) {
        self.mkdir(&format!("sys/devices/virtual/iommu/{name}"));
        self.link(
            &format!("sys/class/iommu/{name}"),
            &format!("../../devices/virtual/iommu/{name}"),
        );
    }

    pub fn dev_dir(bdf: &str) -> String {
        format!("sys/devices/pci0000:00/{bdf}")
    }

    /// A PCI function with `vendor`, `device`, `class` and an empty `resource`.
    pub fn device(&self, bdf: &str, vendor: u16, device: u16, class: u32) {
        let d = Self::dev_dir(bdf);
        self.write(&format!("{d}/vendor"), &format!("{vendor:#06x}\n"));
        self.write(&format!("{d}/device"), &format!("{device:#06x}\n"));
        self.write(&format!("{d}/class"), &format!("{class:#08x}\n"));
        self.resource(bdf, &[]);
        self.link(
            &format!("sys/bus/pci/devices/{bdf}"),
            &format!("../../../devices/pci0000:00/{bdf}"),
        );
    }

    /// Writes `resource` with `lines` (start, end, flags), padded to 13
    /// lines like a kernel with CONFIG_PCI_IOV.
    pub fn resource(&self, bdf: &str, lines: &[(u64, u64, u64)]) {
        let mut text = String::new();
        for i in 0..13 {
            let (s, e, f) = lines.get(i).copied().unwrap_or((0, 0, 0));
            text.push_str(&format!("0x{s:016x} 0x{e:016x} 0x{f:016x}\n"));
        }
        self.write(&format!("{}/resource", Self::dev_dir(bdf)), &text);
    }

    pub fn bind(&self, bdf: &str, driver: &str) {
        self.mkdir(&format!("sys/bus/pci/drivers/{driver}"));
        self.link(
            &format!("{}/driver", Self::dev_dir(bdf)),
            &format!("../../../bus/pci/drivers/{driver}"),
        );
    }

    /// Puts `bdf` in IOMMU group `group` (both directions of the link).
    pub fn group(&self, bdf: &str, group: u32) {
        self.link(
            &format!("{}/iommu_group", Self::dev_dir(bdf)),
            &format!("../../../kernel/iommu_groups/{group}"),
        );
        self.link(
            &format!("sys/kernel/iommu_groups/{group}/devices/{bdf}"),
            &format!("../../../../devices/pci0000:00/{bdf}"),
        );
    }

    /// `/dev/vfio/<group>` as VFIO creates it for a group it holds.
    pub fn vfio_group_node(&self, group: u32) {
        self.write(&format!("dev/vfio/{group}"), "");
    }

    /// Makes `pf` an SR-IOV PF and `vfs` its enabled VFs.
    pub fn sriov(&self, pf: &str, total: u32, vfs: &[&str]) {
        let d = Self::dev_dir(pf);
        self.write(&format!("{d}/sriov_totalvfs"), &format!("{total}\n"));
        self.write(&format!("{d}/sriov_numvfs"), &format!("{}\n", vfs.len()));
        for (i, vf) in vfs.iter().enumerate() {
            self.link(&format!("{d}/virtfn{i}"), &format!("../{vf}"));
            self.link(
                &format!("{}/physfn", Self::dev_dir(vf)),
                &format!("../{pf}"),
            );
        }
    }
}
