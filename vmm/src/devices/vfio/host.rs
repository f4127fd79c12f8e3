//! The host side of VFIO: a container with the type-1 IOMMU, the device's
//! IOMMU group attached to it, and the device fd with its regions and IRQs.
//!
//! Why the container/group API and not iommufd: it is what every kernel
//! with VFIO has (Debian's kernels, the nested tier's L1 included, are built
//! without IOMMUFD). The device's group is found with the `coco-vfio-gpu`
//! inventory, which also names the drivers of the group's other members
//! when the group is not usable.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use coco_vfio_gpu::Inventory;
use coco_vfio_gpu::pci::{Bdf, DriverBinding};
use vmm_sys_util::ioctl::{
    ioctl, ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_ref, ioctl_with_val,
};

use super::VfioError;
use super::sys::{self, DeviceInfo, DmaMap, GroupStatus, IrqInfo, IrqSetOne, RegionInfo};

/// `/dev/vfio/vfio`.
const CONTAINER_NODE: &str = "/dev/vfio/vfio";
/// Where PCI devices are in sysfs.
const SYSFS_PCI: &str = "/sys/bus/pci/devices";

fn last_os(what: impl Into<String>) -> VfioError {
    VfioError::Host {
        what: what.into(),
        source: std::io::Error::last_os_error(),
    }
}

/// A `--vfio` argument: the device and its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceArg {
    /// The device.
    pub bdf: Bdf,
    /// `no-mmap`: trap every BAR access and forward it with pread/pwrite
    /// instead of mapping BARs into the guest (slow; for testing that path
    /// and for devices whose BARs misbehave when mapped).
    pub no_mmap: bool,
}

/// Parses a `--vfio` argument: a sysfs device path, `dddd:bb:dd.f` or
/// `bb:dd.f`, optionally followed by `,no-mmap`.
pub fn parse_device_arg(arg: &str) -> Result<DeviceArg, VfioError> {
    let mut parts = arg.split(',');
    let device = parts.next().unwrap_or_default();
    let mut no_mmap = false;
    for option in parts {
        match option {
            "no-mmap" => no_mmap = true,
            other => {
                return Err(VfioError::BadDevice(format!(
                    "{arg:?}: unknown option {other:?} (known: no-mmap)"
                )));
            }
        }
    }
    Ok(DeviceArg {
        bdf: parse_bdf(device)?,
        no_mmap,
    })
}

fn parse_bdf(arg: &str) -> Result<Bdf, VfioError> {
    let name = Path::new(arg)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(arg);
    let full = if name.matches(':').count() == 1 {
        format!("0000:{name}")
    } else {
        name.to_string()
    };
    full.parse::<Bdf>()
        .map_err(|e| VfioError::BadDevice(format!("{arg:?}: {e}")))
}

/// An IOMMU group as the inventory sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// Group number.
    pub id: u32,
    /// Members bound to a driver other than vfio-pci (`"name (driver)"`).
    /// Not necessarily a problem — the kernel also accepts drivers that
    /// manage their own DMA, such as `pcieport` — but the likely reason
    /// when the kernel calls the group not viable.
    pub held: Vec<String>,
}

/// Finds the IOMMU group of `bdf` with the inventory.
pub fn group_of(bdf: Bdf) -> Result<GroupInfo, VfioError> {
    let inventory = Inventory::probe();
    let device = inventory
        .device(bdf)
        .ok_or_else(|| VfioError::BadDevice(format!("{bdf}: no such PCI device in {SYSFS_PCI}")))?;
    let id = device
        .iommu_group
        .ok_or(VfioError::NoGroup(bdf.to_string()))?;
    let held = inventory
        .group(id)
        .map(|g| {
            g.members
                .iter()
                .filter_map(|m| match &m.driver {
                    DriverBinding::Bound(d) if d != "vfio-pci" => Some(format!("{} ({d})", m.name)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(GroupInfo { id, held })
}

/// A VFIO container with the type-1 IOMMU set and one group attached.
#[derive(Debug)]
pub struct Container {
    container: File,
    group: File,
    group_id: u32,
}

impl Container {
    /// Opens the container and `group`, attaches the group and selects the
    /// type-1 (v2 if available) IOMMU.
    pub fn open(group: &GroupInfo) -> Result<Self, VfioError> {
        let group_id = group.id;
        let rw = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|source| VfioError::Host {
                    what: format!("opening {}", path.display()),
                    source,
                })
        };
        let container = rw(Path::new(CONTAINER_NODE))?;
        // SAFETY: a plain ioctl without argument on a VFIO container fd.
        let version = unsafe { ioctl(&container, sys::VFIO_GET_API_VERSION) };
        if version != sys::VFIO_API_VERSION {
            return Err(VfioError::Api(version));
        }
        let group_path = PathBuf::from(format!("/dev/vfio/{group_id}"));
        let group_file = rw(&group_path)?;
        let mut status = GroupStatus {
            argsz: sys::argsz::<GroupStatus>(),
            flags: 0,
        };
        // SAFETY: the kernel fills `status`, whose size is in argsz.
        if unsafe { ioctl_with_mut_ref(&group_file, sys::VFIO_GROUP_GET_STATUS, &mut status) } < 0 {
            return Err(last_os("VFIO_GROUP_GET_STATUS"));
        }
        if status.flags & sys::VFIO_GROUP_FLAGS_VIABLE == 0 {
            let why = if group.held.is_empty() {
                "the kernel says so".to_string()
            } else {
                format!("members bound to host drivers: {}", group.held.join(", "))
            };
            return Err(VfioError::GroupNotViable {
                group: group_id,
                why,
            });
        }
        let container_fd: i32 = container.as_raw_fd();
        // SAFETY: the argument is a pointer to a live container fd number.
        if unsafe { ioctl_with_ref(&group_file, sys::VFIO_GROUP_SET_CONTAINER, &container_fd) } < 0
        {
            return Err(last_os("VFIO_GROUP_SET_CONTAINER"));
        }
        let mut chosen = None;
        for iommu in [sys::VFIO_TYPE1V2_IOMMU, sys::VFIO_TYPE1_IOMMU] {
            // SAFETY: CHECK_EXTENSION takes an integer argument.
            if unsafe { ioctl_with_val(&container, sys::VFIO_CHECK_EXTENSION, iommu) } > 0 {
                chosen = Some(iommu);
                break;
            }
        }
        let iommu = chosen.ok_or(VfioError::NoType1)?;
        // SAFETY: SET_IOMMU takes an integer argument.
        if unsafe { ioctl_with_val(&container, sys::VFIO_SET_IOMMU, iommu) } < 0 {
            return Err(last_os("VFIO_SET_IOMMU"));
        }
        Ok(Container {
            container,
            group: group_file,
            group_id,
        })
    }

    /// The attached group's number.
    pub fn group_id(&self) -> u32 {
        self.group_id
    }

    /// Maps `[host, host + size)` of this process for device DMA at `iova`
    /// (guest-physical address = IO virtual address), read and write.
    ///
    /// # Safety
    /// The host range must stay mapped (it is pinned by the kernel) for as
    /// long as the container lives: guest memory outlives every device.
    pub unsafe fn map_dma(&self, iova: u64, host: u64, size: u64) -> Result<(), VfioError> {
        let map = DmaMap {
            argsz: sys::argsz::<DmaMap>(),
            flags: sys::VFIO_DMA_MAP_FLAG_READ | sys::VFIO_DMA_MAP_FLAG_WRITE,
            vaddr: host,
            iova,
            size,
        };
        // SAFETY: `map` is a valid dma_map struct; the caller keeps the
        // mapping alive.
        if unsafe { ioctl_with_ref(&self.container, sys::VFIO_IOMMU_MAP_DMA, &map) } < 0 {
            return Err(last_os(format!(
                "VFIO_IOMMU_MAP_DMA iova {iova:#x} size {size:#x}"
            )));
        }
        Ok(())
    }

    /// Opens the device `bdf` of the group.
    pub fn device(&self, bdf: Bdf) -> Result<VfioDevice, VfioError> {
        let name =
            CString::new(bdf.to_string()).map_err(|_| VfioError::BadDevice(bdf.to_string()))?;
        // SAFETY: the argument is a NUL-terminated string that outlives the call.
        let fd =
            unsafe { ioctl_with_ptr(&self.group, sys::VFIO_GROUP_GET_DEVICE_FD, name.as_ptr()) };
        if fd < 0 {
            return Err(last_os(format!("VFIO_GROUP_GET_DEVICE_FD {bdf}")));
        }
        // SAFETY: the kernel returned a new fd that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        VfioDevice::new(file, bdf)
    }
}

/// One region of the device fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Region flags (`VFIO_REGION_INFO_FLAG_*`).
    pub flags: u32,
    /// Size in bytes (0: not implemented).
    pub size: u64,
    /// Offset in the device fd.
    pub offset: u64,
}

impl Region {
    /// Whether the region may be mmapped.
    pub fn mmappable(&self) -> bool {
        self.flags & sys::VFIO_REGION_INFO_FLAG_MMAP != 0
    }
}

/// An open VFIO device.
#[derive(Debug)]
pub struct VfioDevice {
    file: File,
    bdf: Bdf,
    info: DeviceInfo,
}

impl VfioDevice {
    fn new(file: File, bdf: Bdf) -> Result<Self, VfioError> {
        let mut info = DeviceInfo {
            argsz: sys::argsz::<DeviceInfo>(),
            ..Default::default()
        };
        // SAFETY: the kernel fills `info` up to argsz.
        if unsafe { ioctl_with_mut_ref(&file, sys::VFIO_DEVICE_GET_INFO, &mut info) } < 0 {
            return Err(last_os("VFIO_DEVICE_GET_INFO"));
        }
        if info.flags & sys::VFIO_DEVICE_FLAGS_PCI == 0 {
            return Err(VfioError::BadDevice(format!("{bdf}: not a PCI device")));
        }
        Ok(VfioDevice { file, bdf, info })
    }

    /// The device's address.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// Resets the function if VFIO can; returns whether it did.
    pub fn reset(&self) -> bool {
        // SAFETY: RESET takes no argument.
        self.info.flags & sys::VFIO_DEVICE_FLAGS_RESET != 0
            && unsafe { ioctl(&self.file, sys::VFIO_DEVICE_RESET) } == 0
    }

    /// Region `index` (vfio-pci: BARs 0..=5, ROM 6, config 7).
    pub fn region(&self, index: u32) -> Result<Region, VfioError> {
        if index >= self.info.num_regions {
            return Ok(Region {
                flags: 0,
                size: 0,
                offset: 0,
            });
        }
        let mut info = RegionInfo {
            argsz: sys::argsz::<RegionInfo>(),
            index,
            ..Default::default()
        };
        // SAFETY: the kernel fills `info` up to argsz.
        if unsafe { ioctl_with_mut_ref(&self.file, sys::VFIO_DEVICE_GET_REGION_INFO, &mut info) }
            < 0
        {
            return Err(last_os(format!("VFIO_DEVICE_GET_REGION_INFO {index}")));
        }
        Ok(Region {
            flags: info.flags,
            size: info.size,
            offset: info.offset,
        })
    }

    /// Vectors behind IRQ index `index`.
    pub fn irq_count(&self, index: u32) -> Result<u32, VfioError> {
        if index >= self.info.num_irqs {
            return Ok(0);
        }
        let mut info = IrqInfo {
            argsz: sys::argsz::<IrqInfo>(),
            index,
            ..Default::default()
        };
        // SAFETY: the kernel fills `info` up to argsz.
        if unsafe { ioctl_with_mut_ref(&self.file, sys::VFIO_DEVICE_GET_IRQ_INFO, &mut info) } < 0 {
            return Err(last_os(format!("VFIO_DEVICE_GET_IRQ_INFO {index}")));
        }
        Ok(info.count)
    }

    /// Signals `eventfd` for vector 0 of IRQ `index` (`Some`), or turns the
    /// index off (`None`).
    pub fn set_irq_eventfd(&self, index: u32, eventfd: Option<i32>) -> Result<(), VfioError> {
        let set = match eventfd {
            Some(fd) => IrqSetOne {
                argsz: sys::argsz::<IrqSetOne>(),
                flags: sys::VFIO_IRQ_SET_DATA_EVENTFD | sys::VFIO_IRQ_SET_ACTION_TRIGGER,
                index,
                start: 0,
                count: 1,
                fd,
            },
            None => IrqSetOne {
                argsz: sys::argsz::<IrqSetOne>() - 4,
                flags: sys::VFIO_IRQ_SET_DATA_NONE | sys::VFIO_IRQ_SET_ACTION_TRIGGER,
                index,
                start: 0,
                count: 0,
                fd: -1,
            },
        };
        // SAFETY: `set` is a vfio_irq_set whose argsz covers the payload used.
        if unsafe { ioctl_with_ref(&self.file, sys::VFIO_DEVICE_SET_IRQS, &set) } < 0 {
            return Err(last_os(format!("VFIO_DEVICE_SET_IRQS index {index}")));
        }
        Ok(())
    }

    /// Reads `data.len()` bytes at `offset` of `region`; short reads fail.
    pub fn read_region(
        &self,
        region: &Region,
        offset: u64,
        data: &mut [u8],
    ) -> std::io::Result<()> {
        self.file.read_exact_at(data, region.offset + offset)
    }

    /// Writes `data` at `offset` of `region`.
    pub fn write_region(&self, region: &Region, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(data, region.offset + offset)
    }

    /// Maps `region` into this process (shared, read-write).
    pub fn mmap_region(&self, region: &Region) -> Result<MappedRegion, VfioError> {
        let len = usize::try_from(region.size)
            .map_err(|_| VfioError::BadDevice("region too large".into()))?;
        let offset = libc::off_t::try_from(region.offset)
            .map_err(|_| VfioError::BadDevice("region offset too large".into()))?;
        // SAFETY: a fresh shared mapping of the device fd; the kernel checks
        // the offset and length against the region.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_os("mmap of a VFIO region"));
        }
        Ok(MappedRegion {
            ptr: ptr as usize,
            len,
        })
    }
}

/// A region mmapped from the device fd, unmapped on drop.
#[derive(Debug)]
pub struct MappedRegion {
    ptr: usize,
    len: usize,
}

impl MappedRegion {
    /// Host address of the mapping.
    pub fn host_addr(&self) -> u64 {
        self.ptr as u64
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never: regions of size 0 are not mapped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for MappedRegion {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by mmap_region with this length and
        // is unmapped once, here, after the vCPUs have stopped; a KVM slot
        // still naming the range only loses its backing (KVM's MMU notifier
        // drops the translations), which no running vCPU can observe.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_arguments_in_every_spelling() {
        let bdf: Bdf = "0000:00:03.0".parse().unwrap();
        let want = DeviceArg {
            bdf,
            no_mmap: false,
        };
        assert_eq!(parse_device_arg("0000:00:03.0").unwrap(), want);
        assert_eq!(parse_device_arg("00:03.0").unwrap(), want);
        assert_eq!(
            parse_device_arg("/sys/bus/pci/devices/0000:00:03.0").unwrap(),
            want
        );
        assert_eq!(
            parse_device_arg("00:03.0,no-mmap").unwrap(),
            DeviceArg { bdf, no_mmap: true }
        );
        assert!(matches!(
            parse_device_arg("00:03.0,fast"),
            Err(VfioError::BadDevice(_))
        ));
        assert!(matches!(
            parse_device_arg("nonsense"),
            Err(VfioError::BadDevice(_))
        ));
        assert!(parse_device_arg("").is_err());
    }
}
