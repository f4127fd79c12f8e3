//! Kernel modules for L1: find them in the unpacked Debian kernel package,
//! resolve `depends=` from each module's `.modinfo` (Debian ships no
//! `modules.dep` in a bare `dpkg -x`), and return them decompressed in load
//! order. Debian's 6.12 ships `.ko.xz`; busybox `insmod` wants plain ELF, so
//! the host decompresses with `xz`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{Error, Result, elf, tool};

/// The modules L1 needs for the tenants: virtio-pci and 9p for the host
/// share, a hardware-style KVM, and VFIO (vfio-pci to hold the `edu`
/// device, the type-1 IOMMU backend, which nothing `depends=` on because
/// VFIO loads it on demand). Their dependencies (virtio_ring, virtio, netfs,
/// 9pnet, irqbypass, kvm, ccp, vfio, vfio_pci_core, ...) come from
/// `depends=`; built-in ones (Debian 6.12 builds virtio and virtio_pci in)
/// are skipped.
pub const L1_MODULES: &[&str] = &[
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "kvm_amd",
    "vfio_iommu_type1",
    "vfio_pci",
];

/// A module ready for `insmod`.
#[derive(Debug, Clone)]
pub struct KernelModule {
    /// Its name (`kvm_amd`).
    pub name: String,
    /// The uncompressed ELF object.
    pub data: Vec<u8>,
}

/// The modules of one kernel release: files by name, and the built-in set.
#[derive(Debug)]
pub struct ModuleTree {
    files: BTreeMap<String, PathBuf>,
    builtin: BTreeSet<String>,
}

/// `kvm-amd.ko.xz` -> `kvm_amd`.
fn module_name(file: &str) -> Option<String> {
    let stem = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    Some(stem.replace('-', "_"))
}

impl ModuleTree {
    /// Indexes `lib/modules/<release>` of an unpacked kernel package.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.join("kernel")];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|e| Error::io("read", &d, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("read", &d, e))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(|e| Error::io("stat", &path, e))?;
                if kind.is_dir() {
                    stack.push(path);
                } else if let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(module_name)
                {
                    files.insert(name, path);
                }
            }
        }
        let builtin_list = dir.join("modules.builtin");
        let builtin = std::fs::read_to_string(&builtin_list)
            .map_err(|e| Error::io("read", &builtin_list, e))?
            .lines()
            .filter_map(|l| l.rsplit('/').next())
            .filter_map(module_name)
            .collect();
        Ok(Self { files, builtin })
    }

    /// Whether `name` is compiled into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(name)
    }

    /// Reads (and decompresses) one module file.
    fn load(&self, name: &str) -> Result<Vec<u8>> {
        let path = self
            .files
            .get(name)
            .ok_or_else(|| Error::UnknownModule(name.to_string()))?;
        let file = path.to_string_lossy();
        let decompressor = if file.ends_with(".xz") {
            Some("xz")
        } else if file.ends_with(".zst") {
            Some("zstd")
        } else if file.ends_with(".gz") {
            Some("gzip")
        } else {
            None
        };
        match decompressor {
            None => std::fs::read(path).map_err(|e| Error::io("read", path, e)),
            Some(prog) => {
                if tool::which(prog).is_none() {
                    return Err(Error::MissingTool(prog.to_string()));
                }
                let out = tool::run(
                    Command::new(prog).arg("-dc").arg(path),
                    Duration::from_secs(60),
                )?;
                Ok(out.stdout)
            }
        }
    }

    /// `wanted` and their dependencies, dependencies first, without
    /// built-in modules. A wanted module that is built in is fine; one that
    /// is neither built in nor shipped is an error.
    pub fn resolve(&self, wanted: &[&str]) -> Result<Vec<KernelModule>> {
        let mut done = BTreeSet::new();
        let mut out = Vec::new();
        for w in wanted {
            self.visit(w, &mut done, &mut out, 0)?;
        }
        Ok(out)
    }

    fn visit(
        &self,
        name: &str,
        done: &mut BTreeSet<String>,
        out: &mut Vec<KernelModule>,
        depth: usize,
    ) -> Result<()> {
        let name = name.replace('-', "_");
        if done.contains(&name) || self.is_builtin(&name) {
            return Ok(());
        }
        if depth > 32 {
            return Err(Error::BadModule {
                path: PathBuf::from(&name),
                reason: "dependency cycle".into(),
            });
        }
        let data = self.load(&name)?;
        let path = self.files.get(&name).cloned().unwrap_or_default();
        let depends =
            elf::modinfo(&data, "depends").map_err(|reason| Error::BadModule { path, reason })?;
        for dep in depends.iter().flat_map(|d| d.split(',')) {
            if !dep.is_empty() {
                self.visit(dep, done, out, depth + 1)?;
            }
        }
        done.insert(name.clone());
        out.push(KernelModule { name, data });
        Ok(())
    }
}

/// Shorthand: open `dir` and resolve `wanted`.
pub fn resolve(dir: &Path, wanted: &[&str]) -> Result<Vec<KernelModule>> {
    ModuleTree::open(dir)?.resolve(wanted)
}

#[cfg(test)]
mod tests {
    use super::module_name;

    #[test]
    fn file_names_map_to_module_names() {
        assert_eq!(module_name("kvm-amd.ko.xz").as_deref(), Some("kvm_amd"));
        assert_eq!(
            module_name("9pnet_virtio.ko").as_deref(),
            Some("9pnet_virtio")
        );
        assert_eq!(module_name("README"), None);
    }
}
