//! What a VM is made of, independent of where the request came from
//! (`coco-vmm boot` flags or a hive.toml guest).

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

pub use coco_hive_config::GuestKind;

use crate::boot::image::ImageSource;

/// Everything needed to build one VM.
#[derive(Clone, Debug)]
pub struct VmSpec {
    /// Guest name (console prefix, logs).
    pub name: String,
    /// Image format and boot protocol: coconut (PVH ELF) or linux (bzImage).
    pub kind: GuestKind,
    /// The kernel image.
    pub kernel: ImageSource,
    /// The initial ramdisk / module 0.
    pub initrd: Option<ImageSource>,
    /// Extra command line, appended after the VMM's own options (coconut);
    /// the whole command line for Linux guests (see `guest_cmdline`).
    pub cmdline: String,
    /// RAM in MiB.
    pub memory_mib: u64,
    /// Number of vCPUs.
    pub vcpus: u8,
    /// Append console output to this file.
    pub console_log: Option<PathBuf>,
    /// Echo console lines to stdout.
    pub echo_console: bool,
    /// Host PCI devices to pass through with VFIO (sysfs paths or PCI
    /// addresses); see [`VmSpec::has_pci_bus`].
    pub vfio: Vec<String>,
    /// The virtio-9p device and its bridge to the supervisor, if any.
    pub ninep: Option<NinePSpec>,
}

/// A guest's virtio-9p device: the socket to the supervisor's NineDoor (whose
/// other end is bound to this guest's identity) and the mount tag.
#[derive(Clone, Debug)]
pub struct NinePSpec {
    /// The bridge socket (inherited from the supervisor).
    pub bridge: Arc<OwnedFd>,
    /// The tag a guest mounts (`mount -t 9p <tag> ...`).
    pub mount_tag: String,
    /// How the guest reaches the device.
    pub transport: NinePTransport,
}

/// How a guest reaches its virtio-9p device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NinePTransport {
    /// A virtio-mmio window (announced in the DSDT and, for guest-kernel,
    /// on the command line).
    Mmio,
    /// A virtio-pci function with MSI-X on the VMM's PCI bus: the driver's
    /// interrupt handler touches no register (Linux).
    Pci,
}

impl NinePTransport {
    /// The default for a guest kind: virtio-pci for Linux, virtio-mmio for
    /// coconut (guest-kernel's driver speaks virtio-mmio only).
    pub fn default_for(kind: GuestKind) -> Self {
        match kind {
            GuestKind::Linux => NinePTransport::Pci,
            _ => NinePTransport::Mmio,
        }
    }
}

impl VmSpec {
    /// The machine has a PCI bus: a device is passed through or the 9P
    /// device is a PCI function.
    pub fn has_pci_bus(&self) -> bool {
        !self.vfio.is_empty()
            || self
                .ninep
                .as_ref()
                .is_some_and(|n| n.transport == NinePTransport::Pci)
    }
}
