//! The guest-facing side of a VFIO device: a PCI function on coco's bus
//! whose configuration space is a shadow of the real one.
//!
//! What the guest sees and what reaches the device:
//! - IDs, class, revision and the capability list: the real values (read
//!   once at attach time).
//! - BARs: memory BARs at addresses coco-vmm placed in the PCI window; the
//!   real BARs are never written. Sizing (all-ones, read back) works. A
//!   guest that programs another address keeps seeing it in the register,
//!   but the BAR stays where coco-vmm put it (logged once): coco's guests
//!   use the firmware-style placement they find.
//! - Command: memory decoding, bus mastering and INTx-disable are forwarded
//!   to the device; everything else in the header is read-only.
//! - MSI: intercepted. The guest's address/data become a KVM MSI route for
//!   a GSI with an irqfd; enabling MSI asks VFIO to signal that irqfd.
//!   INTx and MSI-X are not offered (interrupt pin reads 0; the MSI-X
//!   capability is unlinked from the list).
//!
//! These rules live in [`super::shadow`] (data in, effect out, unit-tested);
//! this file carries the effects out on the device and on KVM.
//! - BAR contents: an mmap of the VFIO region registered as a KVM memory
//!   slot, so guest accesses never exit; a region VFIO does not allow to
//!   mmap is trapped on the MMIO bus and forwarded with pread/pwrite.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use coco_vfio_gpu::pci::Bdf;
use kvm_bindings::kvm_userspace_memory_region;
use tracing::{debug, info, warn};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

use super::VfioError;
use super::host::{self, Container, MappedRegion, Region, VfioDevice};
use super::shadow::{COMMAND_FORWARDED, Effect, GuestView, bar_kind};
use super::sys::{VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_MSI_IRQ_INDEX};
use crate::devices::bus::{Bus, BusDevice};
use crate::devices::pci::PciDevice;
use crate::devices::pci::bars::BarAllocator;
use crate::devices::pci::config::{BAR_COUNT, Bar, BarKind, CONFIG_SIZE, offset};
use crate::devices::pci::msi::MsiChange;
use crate::vm::irq_routes::GsiRoutes;

const PAGE: u64 = 4096;

/// What attaching needs from the VM being built.
#[derive(Debug)]
pub struct AttachContext<'a> {
    /// Guest RAM (mapped for DMA at IOVA = guest-physical address).
    pub memory: &'a GuestMemoryMmap,
    /// GSI routing (and the VM fd).
    pub routes: Arc<GsiRoutes>,
    /// The PCI window.
    pub bars: &'a mut BarAllocator,
    /// The MMIO bus, for BARs that cannot be mmapped.
    pub mmio: &'a mut Bus,
    /// The next free KVM memory slot number (advanced per BAR slot).
    pub next_slot: &'a mut u32,
    /// Trap every BAR instead of mapping it (`--vfio DEVICE,no-mmap`).
    pub no_mmap: bool,
}

/// A BAR as placed for the guest.
#[derive(Clone, Copy, Debug)]
pub struct PlacedBar {
    /// BAR index.
    pub index: usize,
    /// Guest-physical base.
    pub base: u64,
    /// Size.
    pub size: u64,
    /// Whether it is a KVM memory slot (else trapped).
    pub mapped: bool,
}

/// A passed-through PCI function.
pub struct VfioPci {
    device: Arc<VfioDevice>,
    config_region: Region,
    view: GuestView,
    msi_gsi: u32,
    irqfd: EventFd,
    msi_on_device: bool,
    routes: Arc<GsiRoutes>,
    bars: Vec<PlacedBar>,
    relocation_warned: bool,
    // Dropped after the fields above: the mappings back KVM slots and the
    // container holds the IOMMU mappings of guest RAM.
    _mappings: Vec<MappedRegion>,
    _container: Container,
}

impl std::fmt::Debug for VfioPci {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioPci")
            .field("device", &self.device.bdf().to_string())
            .field("bars", &self.bars)
            .field("msi_gsi", &self.msi_gsi)
            .finish()
    }
}

/// A BAR VFIO will not let us mmap: every access is a pread/pwrite.
struct TrappedBar {
    device: Arc<VfioDevice>,
    region: Region,
}

impl BusDevice for TrappedBar {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if let Err(e) = self.device.read_region(&self.region, offset, data) {
            debug!("VFIO BAR read at {offset:#x}: {e}");
            data.fill(0xff);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let Err(e) = self.device.write_region(&self.region, offset, data) {
            debug!("VFIO BAR write at {offset:#x}: {e}");
        }
    }
}

impl VfioPci {
    /// Opens `bdf` through VFIO and wires it into the VM: DMA mappings of
    /// all guest RAM, BARs, the MSI irqfd.
    pub fn attach(bdf: Bdf, mut ctx: AttachContext<'_>) -> Result<Self, VfioError> {
        let started = Instant::now();
        let group_info = host::group_of(bdf)?;
        let group = group_info.id;
        let container = Container::open(&group_info)?;
        let device = Arc::new(container.device(bdf)?);
        if device.reset() {
            debug!("{bdf}: function reset");
        }
        let opened = started.elapsed();
        let mapping_started = Instant::now();
        for region in ctx.memory.iter() {
            // SAFETY: guest memory is mapped for the life of the VM, which
            // outlives this device (it owns the container).
            unsafe {
                container.map_dma(region.start_addr().0, region.as_ptr() as u64, region.len())?
            };
        }

        let dma_mapped = mapping_started.elapsed();
        let config_region = device.region(VFIO_PCI_CONFIG_REGION_INDEX)?;
        let mut real = [0u8; CONFIG_SIZE];
        device
            .read_region(&config_region, 0, &mut real)
            .map_err(|source| VfioError::Host {
                what: format!("{bdf}: reading the configuration space"),
                source,
            })?;
        let msi_vectors = device.irq_count(VFIO_PCI_MSI_IRQ_INDEX).unwrap_or(0);
        let mut view = GuestView::new(real, msi_vectors > 0);

        let mut bars = Vec::new();
        let mut mappings = Vec::new();
        let mut index = 0;
        while index < BAR_COUNT {
            let at = offset::BAR0 + 4 * index;
            let raw = u32::from_le_bytes([real[at], real[at + 1], real[at + 2], real[at + 3]]);
            let kind = bar_kind(raw);
            let step = if matches!(kind, Some(BarKind::Mem64 { .. })) {
                2
            } else {
                1
            };
            let region = device.region(index as u32)?;
            if let (Some(kind), true) = (kind, region.size > 0) {
                let size = region.size.max(16).next_power_of_two();
                let base = ctx.bars.alloc(size.max(PAGE))?;
                view.place_bar(index, Bar { base, size, kind })?;
                let mapped = Self::map_bar(&device, &region, base, &mut ctx, &mut mappings)?;
                if !mapped {
                    ctx.mmio.insert(
                        base,
                        region.size,
                        "vfio-bar",
                        Arc::new(std::sync::Mutex::new(TrappedBar {
                            device: device.clone(),
                            region,
                        })),
                    )?;
                }
                info!(
                    "{bdf}: BAR {index} ({} KiB) at {base:#x}, {}",
                    region.size / 1024,
                    if mapped { "KVM memory slot" } else { "trapped" }
                );
                bars.push(PlacedBar {
                    index,
                    base,
                    size: region.size,
                    mapped,
                });
            }
            index += step;
        }

        let msi_gsi = ctx.routes.allocate()?;
        let irqfd = EventFd::new(libc::EFD_NONBLOCK).map_err(|source| VfioError::Host {
            what: "creating the MSI eventfd".into(),
            source,
        })?;
        ctx.routes
            .vm()
            .register_irqfd(&irqfd, msi_gsi)
            .map_err(|source| VfioError::Kvm {
                what: format!("registering the MSI irqfd on GSI {msi_gsi}"),
                source,
            })?;
        info!(
            "{bdf}: passed through (IOMMU group {group}, guest RAM mapped for DMA, MSI {} on GSI {msi_gsi})",
            if view.has_msi() { "offered" } else { "absent" }
        );
        info!(
            "{bdf}: attach took {:.1} ms: group and device {:.1} ms, DMA mapping of {} MiB {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3,
            opened.as_secs_f64() * 1e3,
            ctx.memory.iter().map(|r| r.len()).sum::<u64>() >> 20,
            dma_mapped.as_secs_f64() * 1e3
        );
        Ok(VfioPci {
            device,
            config_region,
            view,
            msi_gsi,
            irqfd,
            msi_on_device: false,
            routes: ctx.routes,
            bars,
            relocation_warned: false,
            _mappings: mappings,
            _container: container,
        })
    }

    /// mmaps `region` and registers it as a KVM slot at `base`; `false` when
    /// the region cannot be mmapped (so it must be trapped).
    fn map_bar(
        device: &VfioDevice,
        region: &Region,
        base: u64,
        ctx: &mut AttachContext<'_>,
        mappings: &mut Vec<MappedRegion>,
    ) -> Result<bool, VfioError> {
        if ctx.no_mmap || !region.mmappable() || !region.size.is_multiple_of(PAGE) {
            return Ok(false);
        }
        let mapping = match device.mmap_region(region) {
            Ok(m) => m,
            Err(e) => {
                debug!("{}: mmap of a BAR failed ({e}); trapping it", device.bdf());
                return Ok(false);
            }
        };
        let slot = kvm_userspace_memory_region {
            slot: *ctx.next_slot,
            flags: 0,
            guest_phys_addr: base,
            memory_size: region.size,
            userspace_addr: mapping.host_addr(),
        };
        // SAFETY: the mapping lives as long as this device, which lives as
        // long as the VM's buses (after the vCPUs stop); the BAR window
        // overlaps no RAM slot or other BAR (the allocator hands out disjoint
        // ranges in the MMIO hole).
        unsafe { ctx.routes.vm().set_user_memory_region(slot) }.map_err(|source| {
            VfioError::Kvm {
                what: format!("registering BAR memory slot at {base:#x}"),
                source,
            }
        })?;
        *ctx.next_slot += 1;
        mappings.push(mapping);
        Ok(true)
    }

    /// The BARs as placed.
    pub fn bars(&self) -> &[PlacedBar] {
        &self.bars
    }

    fn forward_command(&self, command: u16) {
        let mut real = [0u8; 2];
        if let Err(e) =
            self.device
                .read_region(&self.config_region, offset::COMMAND as u64, &mut real)
        {
            warn!("{}: reading the command register: {e}", self.device.bdf());
            return;
        }
        let value = (u16::from_le_bytes(real) & !COMMAND_FORWARDED) | command;
        if let Err(e) = self.device.write_region(
            &self.config_region,
            offset::COMMAND as u64,
            &value.to_le_bytes(),
        ) {
            warn!("{}: writing the command register: {e}", self.device.bdf());
        }
    }

    fn apply_msi(&mut self, change: MsiChange) {
        let bdf = self.device.bdf();
        match change {
            MsiChange::Enabled(message) => {
                if let Err(e) = self.routes.set_msi(self.msi_gsi, Some(message)) {
                    warn!("{bdf}: MSI route: {e}");
                    return;
                }
                if !self.msi_on_device {
                    match self
                        .device
                        .set_irq_eventfd(VFIO_PCI_MSI_IRQ_INDEX, Some(self.irqfd.as_raw_fd()))
                    {
                        Ok(()) => self.msi_on_device = true,
                        Err(e) => warn!("{bdf}: enabling MSI: {e}"),
                    }
                }
                info!(
                    "{bdf}: MSI enabled by the guest: address {:#x} data {:#x} -> GSI {}",
                    message.address, message.data, self.msi_gsi
                );
            }
            MsiChange::Disabled => {
                if self.msi_on_device {
                    if let Err(e) = self.device.set_irq_eventfd(VFIO_PCI_MSI_IRQ_INDEX, None) {
                        warn!("{bdf}: disabling MSI: {e}");
                    }
                    self.msi_on_device = false;
                }
                if let Err(e) = self.routes.set_msi(self.msi_gsi, None) {
                    warn!("{bdf}: MSI route: {e}");
                }
                info!("{bdf}: MSI disabled by the guest");
            }
        }
    }

    fn bar_moved(&mut self, index: usize, to: u64, placed: u64) {
        if !self.relocation_warned {
            self.relocation_warned = true;
            warn!(
                "{}: guest moved BAR {index} to {to:#x}; BARs stay where coco-vmm placed them ({placed:#x})",
                self.device.bdf()
            );
        }
    }
}

impl Drop for VfioPci {
    fn drop(&mut self) {
        if self.msi_on_device {
            let _ = self.device.set_irq_eventfd(VFIO_PCI_MSI_IRQ_INDEX, None);
        }
    }
}

impl PciDevice for VfioPci {
    fn config_read(&mut self, reg: usize) -> u32 {
        self.view.read(reg)
    }

    fn config_write(&mut self, at: usize, data: &[u8]) {
        match self.view.write(at, data) {
            Some(Effect::Command(bits)) => self.forward_command(bits),
            Some(Effect::Msi(change)) => self.apply_msi(change),
            Some(Effect::BarMoved { index, to, placed }) => self.bar_moved(index, to, placed),
            None => {}
        }
    }
}
