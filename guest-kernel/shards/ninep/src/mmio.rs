//! The virtio-mmio (version 2) register window, as the driver sees it:
//! volatile 32-bit accesses at the offsets of the virtio 1.x spec
//! (§4.2.2), and the device-independent initialisation steps (§3.1.1).
//!
//! Every value read from the window is device-controlled: callers check it.

use core::ptr::{read_volatile, write_volatile};

pub use coco_virtio_mmio::{MAGIC, reg, status};

/// The virtio device id of a 9P transport.
pub const DEVICE_9P: u32 = coco_virtio_mmio::device_id::NINEP;
/// Feature bit 32: the device follows virtio 1.x.
pub const F_VERSION_1: u64 = coco_virtio_mmio::features::VERSION_1;
/// Feature bit 0 of virtio-9p: the config space carries a mount tag.
pub const F_MOUNT_TAG: u64 = coco_virtio_mmio::features::NINEP_MOUNT_TAG;
/// Bytes of one window (one page).
pub const WINDOW_BYTES: usize = coco_virtio_mmio::WINDOW_SIZE as usize;

/// A mapped virtio-mmio window.
#[derive(Debug)]
pub struct Window {
    base: usize,
}

impl Window {
    /// Wraps the mapping `mmio_map` returned.
    ///
    /// # Safety
    /// `base` must be the start of a live, uncached mapping of at least
    /// [`WINDOW_BYTES`] that stays mapped for the life of the value.
    pub unsafe fn new(base: usize) -> Window {
        Window { base }
    }

    /// Reads the 32-bit register at `offset`.
    pub fn read(&self, offset: u64) -> u32 {
        let offset = offset as usize;
        debug_assert!(offset + 4 <= WINDOW_BYTES && offset.is_multiple_of(4));
        // SAFETY: `new`'s contract: the window is mapped for WINDOW_BYTES;
        // every offset used is one of the aligned constants in `reg`
        // (config reads stay below the page end, see `read_config8`).
        unsafe { read_volatile((self.base + (offset & (WINDOW_BYTES - 4))) as *const u32) }
    }

    /// Writes the 32-bit register at `offset`.
    pub fn write(&self, offset: u64, value: u32) {
        let offset = offset as usize;
        debug_assert!(offset + 4 <= WINDOW_BYTES && offset.is_multiple_of(4));
        // SAFETY: as in `read`; the mapping is writable (the manifest grants
        // the window with `write`, checked by `mmio_map`).
        unsafe {
            write_volatile(
                (self.base + (offset & (WINDOW_BYTES - 4))) as *mut u32,
                value,
            )
        }
    }

    /// Reads one byte of the device-specific config space.
    pub fn read_config8(&self, offset: usize) -> Option<u8> {
        let at = (reg::CONFIG as usize).checked_add(offset)?;
        if at >= WINDOW_BYTES {
            return None;
        }
        // SAFETY: `at` is inside the mapped page (checked above).
        Some(unsafe { read_volatile((self.base + at) as *const u8) })
    }

    /// The device's 64 feature bits.
    pub fn device_features(&self) -> u64 {
        self.write(reg::DEVICE_FEATURES_SEL, 0);
        let low = self.read(reg::DEVICE_FEATURES);
        self.write(reg::DEVICE_FEATURES_SEL, 1);
        let high = self.read(reg::DEVICE_FEATURES);
        (u64::from(high) << 32) | u64::from(low)
    }

    /// Tells the device which features the driver accepts.
    pub fn set_driver_features(&self, features: u64) {
        self.write(reg::DRIVER_FEATURES_SEL, 0);
        self.write(reg::DRIVER_FEATURES, features as u32);
        self.write(reg::DRIVER_FEATURES_SEL, 1);
        self.write(reg::DRIVER_FEATURES, (features >> 32) as u32);
    }

    /// Sets the status register.
    pub fn set_status(&self, value: u32) {
        self.write(reg::STATUS, value);
    }

    /// Reads the status register.
    pub fn status(&self) -> u32 {
        self.read(reg::STATUS)
    }

    /// Writes a 64-bit guest-physical address into a LOW/HIGH pair.
    pub fn write_addr(&self, low: u64, high: u64, addr: u64) {
        self.write(low, addr as u32);
        self.write(high, (addr >> 32) as u32);
    }
}
