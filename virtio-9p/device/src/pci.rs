//! The virtio-pci transport, modern only (virtio 1.2 §4.1): the structures
//! a driver finds through vendor capabilities, all in one memory BAR.
//!
//! Why offer it next to virtio-mmio: with MSI-X the driver's interrupt
//! handler touches no device register, where a virtio-mmio driver reads
//! `InterruptStatus` (an exit to the VMM) on every interrupt. Linux guests
//! get it; guest-kernel's driver speaks virtio-mmio.
//!
//! BAR 0 layout (16 KiB, see [`layout`]): the common configuration
//! structure, the MSI-X table and pending-bit array (both handled by the
//! VMM's MSI-X code, not here), the ISR status byte, the device
//! configuration (the mount tag) and one notification address shared by
//! every queue (`notify_off_multiplier` 0), which the VMM backs with an
//! ioeventfd.
//!
//! Accesses must use the width of the field they touch (64-bit queue
//! addresses may be written as two aligned 32-bit halves); anything else
//! reads as zero and is ignored on write, like a stray virtio-mmio access.
//! Which MSI-X entry each interrupt source uses lives in [`Vectors`], shared
//! with whoever delivers the interrupts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use vm_memory::GuestMemory;

use crate::common::{Half, MmioEvent, QueueAddress, VirtioCore, VirtioDevice};
use crate::interrupt::Interrupt;

/// PCI vendor id of virtio devices.
pub const VENDOR_ID: u16 = 0x1af4;
/// A modern virtio device's PCI device id is this plus the virtio id.
pub const DEVICE_ID_BASE: u16 = 0x1040;
/// Revision 1: a modern-only device (legacy drivers do not bind).
pub const REVISION: u8 = 1;
/// "No vector" in `config_msix_vector` / `queue_msix_vector`.
pub const NO_VECTOR: u16 = 0xffff;

/// Where things are in BAR 0.
pub mod layout {
    /// Size of BAR 0.
    pub const BAR_SIZE: u64 = 0x4000;
    /// Common configuration structure.
    pub const COMMON: u64 = 0x0000;
    /// Its length (through `queue_notif_config_data`).
    pub const COMMON_LEN: u64 = 0x3c;
    /// MSI-X table (the VMM's MSI-X code owns it).
    pub const MSIX_TABLE: u64 = 0x0800;
    /// MSI-X pending-bit array (the VMM's MSI-X code owns it).
    pub const MSIX_PBA: u64 = 0x0c00;
    /// ISR status (read-to-clear).
    pub const ISR: u64 = 0x1000;
    /// Its length.
    pub const ISR_LEN: u64 = 4;
    /// Device-specific configuration.
    pub const DEVICE: u64 = 0x2000;
    /// Its length.
    pub const DEVICE_LEN: u64 = 0x1000;
    /// The notification address of every queue.
    pub const NOTIFY: u64 = 0x3000;
    /// Its length.
    pub const NOTIFY_LEN: u64 = 4;
    /// Every queue notifies at the same address.
    pub const NOTIFY_OFF_MULTIPLIER: u32 = 0;
}

/// `cfg_type` of the vendor capabilities (virtio 1.2 §4.1.4).
pub mod cfg_type {
    /// Common configuration.
    pub const COMMON: u8 = 1;
    /// Notifications.
    pub const NOTIFY: u8 = 2;
    /// ISR status.
    pub const ISR: u8 = 3;
    /// Device-specific configuration.
    pub const DEVICE: u8 = 4;
}

/// The common configuration structure's fields (offset in the structure).
mod common_cfg {
    pub const DEVICE_FEATURE_SELECT: u64 = 0x00;
    pub const DEVICE_FEATURE: u64 = 0x04;
    pub const DRIVER_FEATURE_SELECT: u64 = 0x08;
    pub const DRIVER_FEATURE: u64 = 0x0c;
    pub const CONFIG_MSIX_VECTOR: u64 = 0x10;
    pub const NUM_QUEUES: u64 = 0x12;
    pub const DEVICE_STATUS: u64 = 0x14;
    pub const CONFIG_GENERATION: u64 = 0x15;
    pub const QUEUE_SELECT: u64 = 0x16;
    pub const QUEUE_SIZE: u64 = 0x18;
    pub const QUEUE_MSIX_VECTOR: u64 = 0x1a;
    pub const QUEUE_ENABLE: u64 = 0x1c;
    pub const QUEUE_NOTIFY_OFF: u64 = 0x1e;
    pub const QUEUE_DESC: u64 = 0x20;
    pub const QUEUE_DRIVER: u64 = 0x28;
    pub const QUEUE_DEVICE: u64 = 0x30;
    pub const QUEUE_NOTIF_CONFIG_DATA: u64 = 0x38;
}

/// One vendor capability as the VMM writes it into configuration space:
/// `cfg_type`, the BAR-0 region it points at, and (for notifications) the
/// multiplier that follows the generic part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VendorCap {
    /// `cfg_type`.
    pub cfg_type: u8,
    /// Offset in BAR 0.
    pub offset: u32,
    /// Length of the structure.
    pub length: u32,
    /// `notify_off_multiplier` (notification capability only).
    pub notify_off_multiplier: Option<u32>,
}

/// The four capabilities a modern driver needs, in list order.
pub fn vendor_caps() -> [VendorCap; 4] {
    let cap = |cfg_type, offset: u64, length: u64| VendorCap {
        cfg_type,
        offset: offset as u32,
        length: length as u32,
        notify_off_multiplier: None,
    };
    [
        cap(cfg_type::COMMON, layout::COMMON, layout::COMMON_LEN),
        VendorCap {
            notify_off_multiplier: Some(layout::NOTIFY_OFF_MULTIPLIER),
            ..cap(cfg_type::NOTIFY, layout::NOTIFY, layout::NOTIFY_LEN)
        },
        cap(cfg_type::ISR, layout::ISR, layout::ISR_LEN),
        cap(cfg_type::DEVICE, layout::DEVICE, layout::DEVICE_LEN),
    ]
}

/// Which MSI-X entry each interrupt source uses ([`NO_VECTOR`]: none).
/// Written by the transport (the driver's choice), read by the interrupt
/// path on another thread.
#[derive(Debug)]
pub struct Vectors {
    config: AtomicU16,
    queues: Vec<AtomicU16>,
}

impl Vectors {
    /// Every source unassigned, for `queues` queues.
    pub fn new(queues: usize) -> Self {
        Vectors {
            config: AtomicU16::new(NO_VECTOR),
            queues: (0..queues).map(|_| AtomicU16::new(NO_VECTOR)).collect(),
        }
    }

    /// The configuration-change vector.
    pub fn config(&self) -> u16 {
        self.config.load(Ordering::SeqCst)
    }

    /// Queue `n`'s vector.
    pub fn queue(&self, n: usize) -> u16 {
        self.queues
            .get(n)
            .map_or(NO_VECTOR, |v| v.load(Ordering::SeqCst))
    }

    fn reset(&self) {
        self.config.store(NO_VECTOR, Ordering::SeqCst);
        for q in &self.queues {
            q.store(NO_VECTOR, Ordering::SeqCst);
        }
    }
}

/// A virtio-pci function around one device.
#[derive(Debug)]
pub struct PciTransport<D> {
    core: VirtioCore<D>,
    vectors: Arc<Vectors>,
    table_size: u16,
}

impl<D: VirtioDevice> PciTransport<D> {
    /// A transport for `device` raising `irq`, with an MSI-X table of
    /// `table_size` entries.
    pub fn new(device: D, irq: Arc<Interrupt>, table_size: u16) -> Self {
        let vectors = Arc::new(Vectors::new(device.queue_max_sizes().len()));
        Self::with_vectors(device, irq, table_size, vectors)
    }

    /// The same with a vector assignment created beforehand (the interrupt
    /// path needs it before the transport exists). `vectors` should have one
    /// slot per queue; missing slots read as [`NO_VECTOR`].
    pub fn with_vectors(
        device: D,
        irq: Arc<Interrupt>,
        table_size: u16,
        vectors: Arc<Vectors>,
    ) -> Self {
        PciTransport {
            core: VirtioCore::new(device, irq),
            vectors,
            table_size,
        }
    }

    /// The PCI device id of this device.
    pub fn pci_device_id(&self) -> u16 {
        let id = u16::try_from(self.core.device().device_id()).unwrap_or(0);
        DEVICE_ID_BASE.saturating_add(id)
    }

    /// The vector assignments, for the interrupt path.
    pub fn vectors(&self) -> &Arc<Vectors> {
        &self.vectors
    }

    /// The device model.
    pub fn device(&self) -> &D {
        self.core.device()
    }

    /// The device model, mutably.
    pub fn device_mut(&mut self) -> &mut D {
        self.core.device_mut()
    }

    /// The driver set `DRIVER_OK` and the device accepted its queues.
    pub fn is_active(&self) -> bool {
        self.core.is_active()
    }

    /// The device status as the guest reads it.
    pub fn status(&self) -> u32 {
        self.core.status()
    }

    /// Handles a guest read of `data.len()` bytes at `offset` in BAR 0
    /// (MSI-X table and PBA excluded: the caller handles those).
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let len = data.len() as u64;
        let value: u64 = if in_region(offset, len, layout::COMMON, layout::COMMON_LEN) {
            self.read_common(offset - layout::COMMON, len).unwrap_or(0)
        } else if in_region(offset, len, layout::ISR, layout::ISR_LEN) {
            // Read-to-clear, whatever the width.
            u64::from(self.core.interrupt().take_status())
        } else if in_region(offset, len, layout::DEVICE, layout::DEVICE_LEN) {
            self.core
                .device()
                .read_config(offset - layout::DEVICE, data);
            return;
        } else {
            0
        };
        let bytes = value.to_le_bytes();
        for (b, v) in data.iter_mut().zip(bytes) {
            *b = v;
        }
    }

    fn read_common(&self, field: u64, len: u64) -> Option<u64> {
        use common_cfg::*;
        let core = &self.core;
        let v = match (field, len) {
            (DEVICE_FEATURE_SELECT, 4) => u64::from(core.device_features_sel()),
            (DEVICE_FEATURE, 4) => u64::from(core.device_features_word()),
            (DRIVER_FEATURE_SELECT, 4) => u64::from(core.driver_features_sel()),
            (DRIVER_FEATURE, 4) => u64::from(core.driver_features_word()),
            (CONFIG_MSIX_VECTOR, 2) => u64::from(self.vectors.config()),
            (NUM_QUEUES, 2) => core.num_queues() as u64,
            (DEVICE_STATUS, 1) => u64::from(core.status() & 0xff),
            (CONFIG_GENERATION, 1) => 0,
            (QUEUE_SELECT, 2) => u64::from(core.queue_sel() & 0xffff),
            (QUEUE_SIZE, 2) => u64::from(core.queue_size()),
            (QUEUE_MSIX_VECTOR, 2) => u64::from(self.vectors.queue(self.selected()?)),
            (QUEUE_ENABLE, 2) => u64::from(core.queue_ready()),
            (QUEUE_NOTIFY_OFF, 2) => 0,
            (QUEUE_NOTIF_CONFIG_DATA, 2) => 0,
            (f, l) => {
                let (which, half) = queue_address_field(f, l)?;
                let a = core.queue_address(which);
                match half {
                    None => a,
                    Some(Half::Low) => a & 0xffff_ffff,
                    Some(Half::High) => a >> 32,
                }
            }
        };
        Some(v)
    }

    /// The selected queue's index, if it exists.
    fn selected(&self) -> Option<usize> {
        usize::try_from(self.core.queue_sel())
            .ok()
            .filter(|&i| i < self.core.num_queues())
    }

    /// Handles a guest write of `data` at `offset` in BAR 0 (MSI-X table
    /// and PBA excluded); `mem` is the guest's memory.
    pub fn write<M: GuestMemory>(&mut self, mem: &M, offset: u64, data: &[u8]) -> MmioEvent {
        let len = data.len() as u64;
        let mut bytes = [0u8; 8];
        for (b, v) in bytes.iter_mut().zip(data) {
            *b = *v;
        }
        let v = u64::from_le_bytes(bytes);
        if in_region(offset, len, layout::COMMON, layout::COMMON_LEN) {
            return self.write_common(mem, offset - layout::COMMON, len, v);
        }
        if in_region(offset, len, layout::NOTIFY, layout::NOTIFY_LEN)
            && offset == layout::NOTIFY
            && len <= 4
        {
            // Without VIRTIO_F_NOTIFICATION_DATA the value is the queue index.
            return self.core.notify((v & 0xffff) as u32);
        }
        // ISR and device configuration are read-only for this device.
        MmioEvent::None
    }

    fn write_common<M: GuestMemory>(&mut self, mem: &M, field: u64, len: u64, v: u64) -> MmioEvent {
        use common_cfg::*;
        let v32 = v as u32;
        match (field, len) {
            (DEVICE_FEATURE_SELECT, 4) => self.core.set_device_features_sel(v32),
            (DRIVER_FEATURE_SELECT, 4) => self.core.set_driver_features_sel(v32),
            (DRIVER_FEATURE, 4) => self.core.write_driver_features(v32),
            (CONFIG_MSIX_VECTOR, 2) => {
                let vector = self.checked_vector(v as u16);
                self.vectors.config.store(vector, Ordering::SeqCst);
            }
            (DEVICE_STATUS, 1) => {
                let event = self.core.write_status(mem, v32 & 0xff);
                if event == MmioEvent::Reset {
                    self.vectors.reset();
                }
                return event;
            }
            (QUEUE_SELECT, 2) => self.core.set_queue_sel(v32 & 0xffff),
            (QUEUE_SIZE, 2) => self.core.set_queue_size(v32 & 0xffff),
            (QUEUE_MSIX_VECTOR, 2) => {
                let vector = self.checked_vector(v as u16);
                if !self.core.is_active()
                    && let Some(slot) = self.selected().and_then(|i| self.vectors.queues.get(i))
                {
                    slot.store(vector, Ordering::SeqCst);
                }
            }
            // Drivers only ever write 1 (virtio 1.2 §4.1.4.3.2).
            (QUEUE_ENABLE, 2) if v == 1 => self.core.set_queue_ready(true),
            (f, l) => {
                if let Some((which, half)) = queue_address_field(f, l) {
                    match half {
                        Some(h) => self.core.set_queue_address(which, h, v32),
                        None => {
                            self.core.set_queue_address(which, Half::Low, v as u32);
                            self.core
                                .set_queue_address(which, Half::High, (v >> 32) as u32);
                        }
                    }
                }
            }
        }
        MmioEvent::None
    }

    /// A vector the table has, else [`NO_VECTOR`] (the driver reads it back
    /// and knows the assignment failed).
    fn checked_vector(&self, vector: u16) -> u16 {
        if vector < self.table_size {
            vector
        } else {
            NO_VECTOR
        }
    }
}

/// `[offset, offset + len)` lies inside `[start, start + size)`.
fn in_region(offset: u64, len: u64, start: u64, size: u64) -> bool {
    offset >= start
        && len > 0
        && offset
            .checked_add(len)
            .is_some_and(|end| end <= start.saturating_add(size))
}

/// A queue address field: the whole 64 bits (`None`) or one aligned half.
fn queue_address_field(field: u64, len: u64) -> Option<(QueueAddress, Option<Half>)> {
    use common_cfg::*;
    let (which, base) = match field {
        QUEUE_DESC..=0x27 => (QueueAddress::Desc, QUEUE_DESC),
        QUEUE_DRIVER..=0x2f => (QueueAddress::Driver, QUEUE_DRIVER),
        QUEUE_DEVICE..=0x37 => (QueueAddress::Device, QUEUE_DEVICE),
        _ => return None,
    };
    match (field - base, len) {
        (0, 8) => Some((which, None)),
        (0, 4) => Some((which, Some(Half::Low))),
        (4, 4) => Some((which, Some(Half::High))),
        _ => None,
    }
}
