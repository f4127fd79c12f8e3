//! The virtio-mmio transport, version 2 ("modern" registers, virtio 1.2 §4.2).
//!
//! One 4 KiB window per device. The guest discovers the window from the ACPI
//! DSDT (`LNRO0005`) or the command line, negotiates features, hands over
//! its queue addresses and sets `DRIVER_OK`; from then on the device owns the
//! queues. Register accesses other than config space must be aligned 32-bit
//! accesses; anything else reads as zero and is ignored on write (a hostile
//! or buggy guest cannot move the state machine with a stray byte store).
//! Legacy (version 1) drivers are refused by not accepting `FEATURES_OK`
//! without `VIRTIO_F_VERSION_1`.

use std::sync::Arc;

use vm_memory::GuestMemory;

use crate::common::{Half, QueueAddress, VirtioCore};
pub use crate::common::{MmioEvent, VirtioDevice};
use crate::interrupt::Interrupt;

pub use coco_virtio_mmio::{MAGIC, WINDOW_SIZE, reg, status};

/// The vendor id coco's devices report ("coco").
pub const VENDOR: u32 = u32::from_le_bytes(*b"coco");

/// A virtio-mmio window around one device.
#[derive(Debug)]
pub struct MmioTransport<D> {
    core: VirtioCore<D>,
    shm_sel: u32,
}

impl<D: VirtioDevice> MmioTransport<D> {
    /// A transport for `device` raising `irq`.
    pub fn new(device: D, irq: Arc<Interrupt>) -> Self {
        MmioTransport {
            core: VirtioCore::new(device, irq),
            shm_sel: 0,
        }
    }

    /// The device model.
    pub fn device(&self) -> &D {
        self.core.device()
    }

    /// The device model, mutably (to process queues and complete requests).
    pub fn device_mut(&mut self) -> &mut D {
        self.core.device_mut()
    }

    /// The interrupt shared with the device.
    pub fn interrupt(&self) -> &Arc<Interrupt> {
        self.core.interrupt()
    }

    /// The driver set `DRIVER_OK` and the device accepted its queues.
    pub fn is_active(&self) -> bool {
        self.core.is_active()
    }

    /// The status register as the guest reads it.
    pub fn status(&self) -> u32 {
        self.core.status()
    }

    /// Handles a guest read of `data.len()` bytes at `offset` in the window.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= reg::CONFIG {
            data.fill(0);
            self.core.device().read_config(offset - reg::CONFIG, data);
            return;
        }
        let value = if data.len() == 4 && offset.is_multiple_of(4) {
            self.register(offset)
        } else {
            0
        };
        let bytes = value.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(0);
        }
    }

    fn register(&mut self, offset: u64) -> u32 {
        let core = &self.core;
        match offset {
            reg::MAGIC_VALUE => MAGIC,
            reg::VERSION => 2,
            reg::DEVICE_ID => core.device().device_id(),
            reg::VENDOR_ID => VENDOR,
            reg::DEVICE_FEATURES => core.device_features_word(),
            reg::QUEUE_NUM_MAX => u32::from(core.queue_num_max()),
            reg::QUEUE_READY => u32::from(core.queue_ready()),
            reg::INTERRUPT_STATUS => core.interrupt().read_status(),
            reg::STATUS => core.status(),
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH => {
                let _ = self.shm_sel;
                u32::MAX
            }
            reg::CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    /// Handles a guest write of `data` at `offset`; `mem` is the guest's
    /// memory, against which queues are validated at `DRIVER_OK`.
    pub fn write<M: GuestMemory>(&mut self, mem: &M, offset: u64, data: &[u8]) -> MmioEvent {
        if offset >= reg::CONFIG {
            // virtio-9p's config space is read-only; writes are ignored.
            return MmioEvent::None;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return MmioEvent::None;
        };
        if !offset.is_multiple_of(4) {
            return MmioEvent::None;
        }
        let v = u32::from_le_bytes(bytes);
        let core = &mut self.core;
        match offset {
            reg::DEVICE_FEATURES_SEL => core.set_device_features_sel(v),
            reg::DRIVER_FEATURES_SEL => core.set_driver_features_sel(v),
            reg::DRIVER_FEATURES => core.write_driver_features(v),
            reg::QUEUE_SEL => core.set_queue_sel(v),
            reg::QUEUE_NUM => core.set_queue_size(v),
            reg::QUEUE_READY => core.set_queue_ready(v == 1),
            reg::QUEUE_DESC_LOW => core.set_queue_address(QueueAddress::Desc, Half::Low, v),
            reg::QUEUE_DESC_HIGH => core.set_queue_address(QueueAddress::Desc, Half::High, v),
            reg::QUEUE_DRIVER_LOW => core.set_queue_address(QueueAddress::Driver, Half::Low, v),
            reg::QUEUE_DRIVER_HIGH => core.set_queue_address(QueueAddress::Driver, Half::High, v),
            reg::QUEUE_DEVICE_LOW => core.set_queue_address(QueueAddress::Device, Half::Low, v),
            reg::QUEUE_DEVICE_HIGH => core.set_queue_address(QueueAddress::Device, Half::High, v),
            reg::QUEUE_NOTIFY => return core.notify(v),
            reg::INTERRUPT_ACK => core.interrupt().ack(v),
            reg::STATUS => return core.write_status(mem, v),
            reg::SHM_SEL => self.shm_sel = v,
            _ => {}
        }
        MmioEvent::None
    }
}
