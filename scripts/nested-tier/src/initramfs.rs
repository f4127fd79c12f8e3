//! L1's initramfs: busybox, the kernel modules and `/init`, as a newc cpio.

use crate::cpio::CpioWriter;
use crate::modules::KernelModule;

/// Builder of L1's initramfs.
#[derive(Debug)]
pub struct Initramfs;

impl Initramfs {
    /// The path of module `index` (load order) inside the initramfs; the init
    /// script loads them by these paths.
    pub fn module_path(index: usize, module: &KernelModule) -> String {
        format!("/lib/modules/{index:02}-{}.ko", module.name)
    }

    /// A newc cpio holding `/bin/busybox`, the modules (see
    /// [`Initramfs::module_path`]), `/init` (`init_script`, mode 0755),
    /// `/dev/console` (the kernel opens it for init before devtmpfs is
    /// mounted) and the mount points the script uses.
    pub fn build(modules: &[KernelModule], busybox: &[u8], init_script: &str) -> Vec<u8> {
        Self::build_with(modules, busybox, init_script, &[])
    }

    /// [`Initramfs::build`] plus `files` (path, mode 0755, contents), e.g. a
    /// static benchmark program under `/bin`.
    pub fn build_with(
        modules: &[KernelModule],
        busybox: &[u8],
        init_script: &str,
        files: &[(&str, &[u8])],
    ) -> Vec<u8> {
        let mut w = CpioWriter::new();
        for d in [
            "/bin",
            "/sbin",
            "/dev",
            "/proc",
            "/sys",
            "/tmp",
            "/host",
            "/lib",
            "/lib/modules",
        ] {
            w.dir(d, 0o755);
        }
        w.char_dev("/dev/console", 0o600, 5, 1);
        w.char_dev("/dev/null", 0o666, 1, 3);
        w.file("/bin/busybox", 0o755, busybox);
        w.symlink("/bin/sh", "busybox");
        for (i, m) in modules.iter().enumerate() {
            w.file(&Self::module_path(i, m), 0o644, &m.data);
        }
        for (path, data) in files {
            w.file(path, 0o755, data);
        }
        w.file("/init", 0o755, init_script.as_bytes());
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_init_console_busybox_and_modules() {
        let m = KernelModule {
            name: "kvm_amd".into(),
            data: b"\x7fELF".to_vec(),
        };
        let img = Initramfs::build(std::slice::from_ref(&m), b"BB", "#!/bin/sh\necho hi\n");
        let text = String::from_utf8_lossy(&img);
        for name in [
            "init\0",
            "dev/console\0",
            "bin/busybox\0",
            "lib/modules/00-kvm_amd.ko\0",
        ] {
            assert!(text.contains(name), "{name}");
        }
        assert_eq!(Initramfs::module_path(0, &m), "/lib/modules/00-kvm_amd.ko");
    }
}
