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

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemory;

use crate::features;
use crate::interrupt::{self, Interrupt};

pub use coco_virtio_mmio::{MAGIC, WINDOW_SIZE, reg, status};

/// The vendor id coco's devices report ("coco").
pub const VENDOR: u32 = u32::from_le_bytes(*b"coco");

/// What a device model offers its transport.
pub trait VirtioDevice {
    /// The virtio device id.
    fn device_id(&self) -> u32;
    /// Every feature bit the device offers (including `VERSION_1`).
    fn device_features(&self) -> u64;
    /// The largest size of each queue; the length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// Reads device config space at `offset` (bytes past the end read as zero).
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// The driver set `DRIVER_OK`: the device now owns `queues` (validated
    /// against guest memory) and the negotiated `features`.
    fn activate(&mut self, features: u64, queues: Vec<Queue>);
    /// The driver wrote 0 to `STATUS`: drop every queue and pending request.
    fn reset(&mut self);
    /// The device failed and waits for a reset (`DEVICE_NEEDS_RESET`).
    fn needs_reset(&self) -> bool;
}

/// What a register write asks the caller to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioEvent {
    /// Nothing.
    None,
    /// The driver notified queue `n`: process it.
    Notify(u16),
    /// The device was activated (`DRIVER_OK` accepted).
    Activated,
    /// The driver reset the device.
    Reset,
    /// `DRIVER_OK` was refused (bad queue setup); the device needs a reset.
    ActivationRefused,
}

/// A virtio-mmio window around one device.
#[derive(Debug)]
pub struct MmioTransport<D> {
    device: D,
    irq: Arc<Interrupt>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: Vec<Queue>,
    /// A size the queue could not take was written to each queue (the
    /// virtio-queue crate keeps its old size then; activation must fail).
    bad_size: Vec<bool>,
    active: bool,
    refused: bool,
    shm_sel: u32,
}

impl<D: VirtioDevice> MmioTransport<D> {
    /// A transport for `device` raising `irq`.
    pub fn new(device: D, irq: Arc<Interrupt>) -> Self {
        let queues = Self::fresh_queues(&device);
        let bad_size = vec![false; queues.len()];
        MmioTransport {
            device,
            irq,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues,
            bad_size,
            active: false,
            refused: false,
            shm_sel: 0,
        }
    }

    fn fresh_queues(device: &D) -> Vec<Queue> {
        device
            .queue_max_sizes()
            .iter()
            .filter_map(|&max| Queue::new(max).ok())
            .collect()
    }

    /// The device model.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device model, mutably (to process queues and complete requests).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The interrupt shared with the device.
    pub fn interrupt(&self) -> &Arc<Interrupt> {
        &self.irq
    }

    /// The driver set `DRIVER_OK` and the device accepted its queues.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The status register as the guest reads it.
    pub fn status(&self) -> u32 {
        let mut s = self.status;
        if self.refused || self.device.needs_reset() {
            s |= status::DEVICE_NEEDS_RESET;
        }
        s
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        if self.active {
            return None;
        }
        let i = usize::try_from(self.queue_sel).ok()?;
        self.queues.get_mut(i)
    }

    /// Handles a guest read of `data.len()` bytes at `offset` in the window.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= reg::CONFIG {
            data.fill(0);
            self.device.read_config(offset - reg::CONFIG, data);
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
        let features = self.device.device_features();
        match offset {
            reg::MAGIC_VALUE => MAGIC,
            reg::VERSION => 2,
            reg::DEVICE_ID => self.device.device_id(),
            reg::VENDOR_ID => VENDOR,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => features as u32,
                1 => (features >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => {
                let max = usize::try_from(self.queue_sel)
                    .ok()
                    .and_then(|i| self.device.queue_max_sizes().get(i).copied());
                u32::from(max.unwrap_or(0))
            }
            reg::QUEUE_READY => {
                if self.active {
                    // Every queue the device took over was ready.
                    u32::from(
                        usize::try_from(self.queue_sel)
                            .is_ok_and(|i| i < self.device.queue_max_sizes().len()),
                    )
                } else {
                    self.selected_queue().map_or(0, |q| u32::from(q.ready()))
                }
            }
            reg::INTERRUPT_STATUS => self.irq.read_status(),
            reg::STATUS => self.status(),
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
        let config_phase = self.status & status::FEATURES_OK != 0 && !self.active;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            reg::DRIVER_FEATURES if self.status & status::FEATURES_OK == 0 => {
                match self.driver_features_sel {
                    0 => {
                        self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(v)
                    }
                    1 => {
                        self.driver_features =
                            (self.driver_features & 0xffff_ffff) | (u64::from(v) << 32)
                    }
                    _ => {}
                }
            }
            reg::QUEUE_SEL => self.queue_sel = v,
            reg::QUEUE_NUM if config_phase => {
                let sel = usize::try_from(self.queue_sel).ok();
                if let Some(q) = self.selected_queue() {
                    let size = u16::try_from(v)
                        .ok()
                        .filter(|&n| n.is_power_of_two() && n <= q.max_size());
                    if let Some(n) = size {
                        q.set_size(n);
                    }
                    if let Some(bad) = sel.and_then(|i| self.bad_size.get_mut(i)) {
                        *bad = size.is_none();
                    }
                }
            }
            reg::QUEUE_READY if config_phase => {
                if let Some(q) = self.selected_queue() {
                    q.set_ready(v == 1);
                }
            }
            reg::QUEUE_DESC_LOW if config_phase => {
                if let Some(q) = self.selected_queue() {
                    q.set_desc_table_address(Some(v), None);
                }
            }
            reg::QUEUE_DESC_HIGH if config_phase => {
                if let Some(q) = self.selected_queue() {
                    q.set_desc_table_address(None, Some(v));
                }
            }
            reg::QUEUE_DRIVER_LOW if config_phase => {
                if let Some(q) = self.selected_queue() {
                    q.set_avail_ring_address(Some(v), None);
                }
            }
            reg::QUEUE_DRIVER_HIGH if config_phase => {
                if let Some(q) = self.selected_queue() {
                    q.set_avail_ring_address(None, Some(v));
                }
            }
            reg::QUEUE_DEVICE_LOW if config_phase => {
                if let Some(q) = self.selected_queue() {
                    q.set_used_ring_address(Some(v), None);
                }
            }
            reg::QUEUE_DEVICE_HIGH if config_phase => {
                if let Some(q) = self.selected_queue() {
                    q.set_used_ring_address(None, Some(v));
                }
            }
            reg::QUEUE_NOTIFY => {
                if self.active
                    && let Ok(n) = u16::try_from(v)
                    && usize::from(n) < self.device.queue_max_sizes().len()
                {
                    return MmioEvent::Notify(n);
                }
            }
            reg::INTERRUPT_ACK => self.irq.ack(v),
            reg::STATUS => return self.write_status(mem, v),
            reg::SHM_SEL => self.shm_sel = v,
            _ => {}
        }
        MmioEvent::None
    }

    fn write_status<M: GuestMemory>(&mut self, mem: &M, v: u32) -> MmioEvent {
        if v == 0 {
            self.reset();
            return MmioEvent::Reset;
        }
        let added = v & !self.status;
        // Bits are only ever added until a reset (virtio 1.2 §3.1.1).
        if v & self.status != self.status {
            return MmioEvent::None;
        }
        if added & status::FEATURES_OK != 0 {
            let offered = self.device.device_features();
            let acceptable = self.driver_features & !offered == 0
                && self.driver_features & features::VERSION_1 != 0;
            if !acceptable {
                // Leave FEATURES_OK clear: the driver reads it back and gives up.
                self.status |= v & !status::FEATURES_OK & !status::DRIVER_OK;
                return MmioEvent::None;
            }
        }
        if added & status::DRIVER_OK != 0 {
            if (self.status | v) & status::FEATURES_OK == 0 {
                return MmioEvent::None;
            }
            self.status |= v;
            let all_valid = self.queues.iter().all(|q| q.ready() && q.is_valid(mem))
                && !self.bad_size.contains(&true);
            if !all_valid || self.queues.len() != self.device.queue_max_sizes().len() {
                self.refused = true;
                self.irq.raise(interrupt::CONFIG_CHANGE);
                return MmioEvent::ActivationRefused;
            }
            let queues = std::mem::take(&mut self.queues);
            self.device.activate(self.driver_features, queues);
            self.active = true;
            return MmioEvent::Activated;
        }
        self.status |= v;
        MmioEvent::None
    }

    fn reset(&mut self) {
        self.device.reset();
        self.queues = Self::fresh_queues(&self.device);
        self.bad_size = vec![false; self.queues.len()];
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.active = false;
        self.refused = false;
        self.irq.clear();
    }
}
