//! The transport-independent half of a virtio device's register file:
//! feature negotiation, device status, queue setup and activation.
//!
//! Why a separate core: virtio-mmio (a register window) and virtio-pci (a
//! common-configuration structure in a BAR) lay the same fields out
//! differently, but the rules behind them are one set (virtio 1.2 §2–§3):
//! status bits only accumulate until a reset, `FEATURES_OK` only for a
//! subset of the offered features that includes `VERSION_1`, queues are
//! configured only between `FEATURES_OK` and `DRIVER_OK` and validated
//! against guest memory when `DRIVER_OK` arrives. Each transport maps its
//! layout onto these calls; neither re-implements them.

use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemory;

use crate::features;
use crate::interrupt::{self, Interrupt};

pub use coco_virtio_mmio::status;

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

/// Which address of the selected queue a write sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueAddress {
    /// The descriptor table.
    Desc,
    /// The driver (available) ring.
    Driver,
    /// The device (used) ring.
    Device,
}

/// Which half of a 64-bit field a 32-bit access touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// Bits 0..32.
    Low,
    /// Bits 32..64.
    High,
}

/// The state every virtio transport keeps for one device.
#[derive(Debug)]
pub struct VirtioCore<D> {
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
}

impl<D: VirtioDevice> VirtioCore<D> {
    /// The core for `device` raising `irq`.
    pub fn new(device: D, irq: Arc<Interrupt>) -> Self {
        let queues = Self::fresh_queues(&device);
        let bad_size = vec![false; queues.len()];
        VirtioCore {
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

    /// The device model, mutably.
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

    /// Number of queues the device has.
    pub fn num_queues(&self) -> usize {
        self.device.queue_max_sizes().len()
    }

    /// The status as the guest reads it.
    pub fn status(&self) -> u32 {
        let mut s = self.status;
        if self.refused || self.device.needs_reset() {
            s |= status::DEVICE_NEEDS_RESET;
        }
        s
    }

    /// Queues may be configured: `FEATURES_OK` set, `DRIVER_OK` not yet.
    fn config_phase(&self) -> bool {
        self.status & status::FEATURES_OK != 0 && !self.active
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        if self.active {
            return None;
        }
        let i = usize::try_from(self.queue_sel).ok()?;
        self.queues.get_mut(i)
    }

    fn selected_queue_ref(&self) -> Option<&Queue> {
        if self.active {
            return None;
        }
        self.queues.get(usize::try_from(self.queue_sel).ok()?)
    }

    /// `DeviceFeaturesSel` / `device_feature_select`.
    pub fn set_device_features_sel(&mut self, v: u32) {
        self.device_features_sel = v;
    }

    /// `DeviceFeaturesSel`, read back.
    pub fn device_features_sel(&self) -> u32 {
        self.device_features_sel
    }

    /// The 32 feature bits `DeviceFeaturesSel` selects.
    pub fn device_features_word(&self) -> u32 {
        let features = self.device.device_features();
        match self.device_features_sel {
            0 => features as u32,
            1 => (features >> 32) as u32,
            _ => 0,
        }
    }

    /// `DriverFeaturesSel` / `driver_feature_select`.
    pub fn set_driver_features_sel(&mut self, v: u32) {
        self.driver_features_sel = v;
    }

    /// `DriverFeaturesSel`, read back.
    pub fn driver_features_sel(&self) -> u32 {
        self.driver_features_sel
    }

    /// The 32 accepted feature bits `DriverFeaturesSel` selects.
    pub fn driver_features_word(&self) -> u32 {
        match self.driver_features_sel {
            0 => self.driver_features as u32,
            1 => (self.driver_features >> 32) as u32,
            _ => 0,
        }
    }

    /// The driver accepts features (ignored once `FEATURES_OK` is set).
    pub fn write_driver_features(&mut self, v: u32) {
        if self.status & status::FEATURES_OK != 0 {
            return;
        }
        match self.driver_features_sel {
            0 => self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(v),
            1 => self.driver_features = (self.driver_features & 0xffff_ffff) | (u64::from(v) << 32),
            _ => {}
        }
    }

    /// `QueueSel` / `queue_select`.
    pub fn set_queue_sel(&mut self, v: u32) {
        self.queue_sel = v;
    }

    /// `QueueSel`, read back.
    pub fn queue_sel(&self) -> u32 {
        self.queue_sel
    }

    /// The selected queue's largest size (0: no such queue).
    pub fn queue_num_max(&self) -> u16 {
        usize::try_from(self.queue_sel)
            .ok()
            .and_then(|i| self.device.queue_max_sizes().get(i).copied())
            .unwrap_or(0)
    }

    /// The selected queue's size as configured (0: no such queue, or the
    /// device is active and owns the queues).
    pub fn queue_size(&self) -> u16 {
        self.selected_queue_ref().map_or(0, |q| q.size())
    }

    /// Sets the selected queue's size; a size the queue cannot take (not a
    /// power of two, above the maximum) makes activation fail.
    pub fn set_queue_size(&mut self, v: u32) {
        if !self.config_phase() {
            return;
        }
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

    /// Whether the selected queue is ready (enabled).
    pub fn queue_ready(&self) -> bool {
        if self.active {
            // Every queue the device took over was ready.
            usize::try_from(self.queue_sel).is_ok_and(|i| i < self.num_queues())
        } else {
            self.selected_queue_ref().is_some_and(|q| q.ready())
        }
    }

    /// Marks the selected queue ready (or not).
    pub fn set_queue_ready(&mut self, ready: bool) {
        if !self.config_phase() {
            return;
        }
        if let Some(q) = self.selected_queue() {
            q.set_ready(ready);
        }
    }

    /// Sets half of one of the selected queue's addresses.
    pub fn set_queue_address(&mut self, which: QueueAddress, half: Half, v: u32) {
        if !self.config_phase() {
            return;
        }
        let Some(q) = self.selected_queue() else {
            return;
        };
        let (lo, hi) = match half {
            Half::Low => (Some(v), None),
            Half::High => (None, Some(v)),
        };
        match which {
            QueueAddress::Desc => q.set_desc_table_address(lo, hi),
            QueueAddress::Driver => q.set_avail_ring_address(lo, hi),
            QueueAddress::Device => q.set_used_ring_address(lo, hi),
        }
    }

    /// One of the selected queue's addresses, as configured (0 once active).
    pub fn queue_address(&self, which: QueueAddress) -> u64 {
        self.selected_queue_ref().map_or(0, |q| match which {
            QueueAddress::Desc => q.desc_table(),
            QueueAddress::Driver => q.avail_ring(),
            QueueAddress::Device => q.used_ring(),
        })
    }

    /// The driver notified queue `v`.
    pub fn notify(&self, v: u32) -> MmioEvent {
        match u16::try_from(v) {
            Ok(n) if self.active && usize::from(n) < self.num_queues() => MmioEvent::Notify(n),
            _ => MmioEvent::None,
        }
    }

    /// The driver writes the device status; `mem` is the guest's memory,
    /// against which queues are validated at `DRIVER_OK`.
    pub fn write_status<M: GuestMemory>(&mut self, mem: &M, v: u32) -> MmioEvent {
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
            if !all_valid || self.queues.len() != self.num_queues() {
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
