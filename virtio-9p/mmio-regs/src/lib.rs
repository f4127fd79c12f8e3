//! The virtio-mmio register contract (virtio 1.2 §4.2.2, version 2
//! "modern" layout), in one place for both sides: coco's device model
//! (`coco-virtio9p`, in the VM process) and guest drivers (guest-kernel's
//! `ninep` shard). `no_std`, no dependencies, so a freestanding shard can
//! use it. Offsets are `u64` (what the device's MMIO handler sees); a driver
//! converts once where it forms an address.
#![no_std]

/// Register offsets in the window.
pub mod reg {
    /// "virt".
    pub const MAGIC_VALUE: u64 = 0x000;
    /// 2.
    pub const VERSION: u64 = 0x004;
    /// The virtio device id.
    pub const DEVICE_ID: u64 = 0x008;
    /// The vendor id.
    pub const VENDOR_ID: u64 = 0x00c;
    /// 32 feature bits selected by `DEVICE_FEATURES_SEL`.
    pub const DEVICE_FEATURES: u64 = 0x010;
    /// Which 32 device feature bits `DEVICE_FEATURES` shows.
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    /// 32 feature bits the driver accepts, selected by `DRIVER_FEATURES_SEL`.
    pub const DRIVER_FEATURES: u64 = 0x020;
    /// Which 32 driver feature bits `DRIVER_FEATURES` sets.
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    /// The queue the QUEUE_* registers address.
    pub const QUEUE_SEL: u64 = 0x030;
    /// Largest size of the selected queue (0: no such queue).
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    /// Size of the selected queue.
    pub const QUEUE_NUM: u64 = 0x038;
    /// The selected queue is ready.
    pub const QUEUE_READY: u64 = 0x044;
    /// A write of a queue index says the queue has new buffers.
    pub const QUEUE_NOTIFY: u64 = 0x050;
    /// Pending interrupt causes.
    pub const INTERRUPT_STATUS: u64 = 0x060;
    /// Acknowledges interrupt causes.
    pub const INTERRUPT_ACK: u64 = 0x064;
    /// Device status.
    pub const STATUS: u64 = 0x070;
    /// Descriptor table address, low half.
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    /// Descriptor table address, high half.
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    /// Available ring address, low half.
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    /// Available ring address, high half.
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    /// Used ring address, low half.
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    /// Used ring address, high half.
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    /// Shared memory region selector.
    pub const SHM_SEL: u64 = 0x0ac;
    /// Shared memory region length, low half (all ones: no such region).
    pub const SHM_LEN_LOW: u64 = 0x0b0;
    /// Shared memory region length, high half.
    pub const SHM_LEN_HIGH: u64 = 0x0b4;
    /// Changes whenever the config space changes.
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    /// Start of the device-specific config space.
    pub const CONFIG: u64 = 0x100;
}

/// Device status bits (virtio 1.2 §2.1).
pub mod status {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 128;
}

/// "virt" in little-endian.
pub const MAGIC: u32 = 0x7472_6976;
/// Size of one device window.
pub const WINDOW_SIZE: u64 = 0x1000;

/// Device-independent and virtio-9p feature bits (virtio 1.2 §6, §5.3).
pub mod features {
    /// The device is a virtio 1.x ("modern") device.
    pub const VERSION_1: u64 = 1 << 32;
    /// The driver may use indirect descriptor tables.
    pub const RING_INDIRECT_DESC: u64 = 1 << 28;
    /// virtio-9p: the config space carries a mount tag.
    pub const NINEP_MOUNT_TAG: u64 = 1 << 0;
}

/// Virtio device ids (virtio 1.2 §5).
pub mod device_id {
    /// The 9P transport.
    pub const NINEP: u32 = 9;
}
