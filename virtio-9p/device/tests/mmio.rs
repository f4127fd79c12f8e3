//! The virtio-mmio register file driven the way Linux's virtio_mmio driver
//! drives it, and the ways a guest can get it wrong.

use std::sync::Arc;

use coco_virtio9p::mmio::{MAGIC, VENDOR, reg, status};
use coco_virtio9p::{Interrupt, MmioEvent, MmioTransport, Virtio9p, features};
use vm_memory::{GuestAddress, GuestMemoryMmap};

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).expect("guest memory")
}

fn transport() -> MmioTransport<Virtio9p> {
    let irq = Arc::new(Interrupt::new(Box::new(|_| {})));
    MmioTransport::new(Virtio9p::new("hive", Arc::clone(&irq)), irq)
}

fn rd(t: &mut MmioTransport<Virtio9p>, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    t.read(offset, &mut b);
    u32::from_le_bytes(b)
}

fn wr(t: &mut MmioTransport<Virtio9p>, m: &GuestMemoryMmap, offset: u64, v: u32) -> MmioEvent {
    t.write(m, offset, &v.to_le_bytes())
}

fn negotiate(t: &mut MmioTransport<Virtio9p>, m: &GuestMemoryMmap, accept: u64) -> u32 {
    wr(t, m, reg::STATUS, 0);
    wr(t, m, reg::STATUS, status::ACKNOWLEDGE);
    wr(t, m, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    wr(t, m, reg::DRIVER_FEATURES_SEL, 0);
    wr(t, m, reg::DRIVER_FEATURES, accept as u32);
    wr(t, m, reg::DRIVER_FEATURES_SEL, 1);
    wr(t, m, reg::DRIVER_FEATURES, (accept >> 32) as u32);
    wr(
        t,
        m,
        reg::STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    rd(t, reg::STATUS)
}

fn setup_queue(
    t: &mut MmioTransport<Virtio9p>,
    m: &GuestMemoryMmap,
    desc: u64,
    avail: u64,
    used: u64,
) {
    wr(t, m, reg::QUEUE_SEL, 0);
    wr(t, m, reg::QUEUE_NUM, 16);
    wr(t, m, reg::QUEUE_DESC_LOW, desc as u32);
    wr(t, m, reg::QUEUE_DESC_HIGH, (desc >> 32) as u32);
    wr(t, m, reg::QUEUE_DRIVER_LOW, avail as u32);
    wr(t, m, reg::QUEUE_DRIVER_HIGH, (avail >> 32) as u32);
    wr(t, m, reg::QUEUE_DEVICE_LOW, used as u32);
    wr(t, m, reg::QUEUE_DEVICE_HIGH, (used >> 32) as u32);
    wr(t, m, reg::QUEUE_READY, 1);
}

const ALL_OK: u32 = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;

#[test]
fn identity_registers() {
    let mut t = transport();
    assert_eq!(rd(&mut t, reg::MAGIC_VALUE), MAGIC);
    assert_eq!(rd(&mut t, reg::VERSION), 2);
    assert_eq!(rd(&mut t, reg::DEVICE_ID), 9);
    assert_eq!(rd(&mut t, reg::VENDOR_ID), VENDOR);
    let m = mem();
    wr(&mut t, &m, reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(
        rd(&mut t, reg::DEVICE_FEATURES),
        1,
        "VIRTIO_F_VERSION_1 is bit 32"
    );
    wr(&mut t, &m, reg::DEVICE_FEATURES_SEL, 0);
    assert_eq!(
        u64::from(rd(&mut t, reg::DEVICE_FEATURES)) & features::NINEP_MOUNT_TAG,
        1
    );
    assert_eq!(rd(&mut t, reg::QUEUE_NUM_MAX), 128);
    wr(&mut t, &m, reg::QUEUE_SEL, 1);
    assert_eq!(rd(&mut t, reg::QUEUE_NUM_MAX), 0, "there is one queue");
    assert_eq!(
        rd(&mut t, reg::SHM_LEN_LOW),
        u32::MAX,
        "no shared memory regions"
    );
}

#[test]
fn the_linux_sequence_activates_the_device_and_notifies_reach_the_caller() {
    let m = mem();
    let mut t = transport();
    let s = negotiate(&mut t, &m, features::VERSION_1 | features::NINEP_MOUNT_TAG);
    assert_ne!(s & status::FEATURES_OK, 0);
    setup_queue(&mut t, &m, 0x1000, 0x2000, 0x3000);
    assert_eq!(
        wr(&mut t, &m, reg::QUEUE_NOTIFY, 0),
        MmioEvent::None,
        "not active yet"
    );
    assert_eq!(wr(&mut t, &m, reg::STATUS, ALL_OK), MmioEvent::Activated);
    assert!(t.is_active());
    assert_eq!(rd(&mut t, reg::STATUS), ALL_OK);
    assert_eq!(rd(&mut t, reg::QUEUE_READY), 1);
    assert_eq!(wr(&mut t, &m, reg::QUEUE_NOTIFY, 0), MmioEvent::Notify(0));
    assert_eq!(
        wr(&mut t, &m, reg::QUEUE_NOTIFY, 1),
        MmioEvent::None,
        "no queue 1"
    );
    // Mount tag through the window.
    let mut cfg = [0u8; 6];
    t.read(reg::CONFIG, &mut cfg);
    assert_eq!(&cfg, &[4, 0, b'h', b'i', b'v', b'e']);
    // Reset brings everything back.
    assert_eq!(wr(&mut t, &m, reg::STATUS, 0), MmioEvent::Reset);
    assert!(!t.is_active());
    assert_eq!(rd(&mut t, reg::STATUS), 0);
    assert_eq!(rd(&mut t, reg::QUEUE_READY), 0);
}

#[test]
fn a_legacy_driver_without_version_1_is_refused() {
    let m = mem();
    let mut t = transport();
    let s = negotiate(&mut t, &m, features::NINEP_MOUNT_TAG);
    assert_eq!(s & status::FEATURES_OK, 0);
    setup_queue(&mut t, &m, 0x1000, 0x2000, 0x3000);
    assert_eq!(wr(&mut t, &m, reg::STATUS, ALL_OK), MmioEvent::None);
    assert!(!t.is_active());
}

#[test]
fn accepting_features_the_device_does_not_offer_is_refused() {
    let m = mem();
    let mut t = transport();
    let s = negotiate(&mut t, &m, features::VERSION_1 | (1 << 40));
    assert_eq!(s & status::FEATURES_OK, 0);
}

#[test]
fn queues_outside_guest_memory_are_refused_and_the_device_asks_for_a_reset() {
    let m = mem();
    let mut t = transport();
    negotiate(&mut t, &m, features::VERSION_1);
    setup_queue(&mut t, &m, 0x1000, 0x2000, 0x7_0000_0000);
    assert_eq!(
        wr(&mut t, &m, reg::STATUS, ALL_OK),
        MmioEvent::ActivationRefused
    );
    assert!(!t.is_active());
    assert_ne!(rd(&mut t, reg::STATUS) & status::DEVICE_NEEDS_RESET, 0);
    assert_ne!(
        rd(&mut t, reg::INTERRUPT_STATUS) & 2,
        0,
        "config-change interrupt raised"
    );
    wr(&mut t, &m, reg::INTERRUPT_ACK, 2);
    assert_eq!(rd(&mut t, reg::INTERRUPT_STATUS), 0);
    assert_eq!(wr(&mut t, &m, reg::STATUS, 0), MmioEvent::Reset);
    assert_eq!(rd(&mut t, reg::STATUS), 0);
}

#[test]
fn queue_sizes_that_are_not_powers_of_two_are_refused() {
    let m = mem();
    let mut t = transport();
    negotiate(&mut t, &m, features::VERSION_1);
    setup_queue(&mut t, &m, 0x1000, 0x2000, 0x3000);
    wr(&mut t, &m, reg::QUEUE_NUM, 17);
    assert_eq!(
        wr(&mut t, &m, reg::STATUS, ALL_OK),
        MmioEvent::ActivationRefused
    );
}

#[test]
fn stray_unaligned_and_narrow_accesses_change_nothing() {
    let m = mem();
    let mut t = transport();
    assert_eq!(t.write(&m, reg::STATUS, &[1]), MmioEvent::None);
    assert_eq!(
        t.write(&m, reg::STATUS + 1, &1u32.to_le_bytes()),
        MmioEvent::None
    );
    assert_eq!(
        t.write(&m, reg::STATUS, &[1, 0, 0, 0, 0, 0, 0, 0]),
        MmioEvent::None
    );
    assert_eq!(rd(&mut t, reg::STATUS), 0);
    let mut two = [0xffu8; 2];
    t.read(reg::MAGIC_VALUE, &mut two);
    assert_eq!(two, [0, 0]);
    assert_eq!(rd(&mut t, 0xffc), 0, "unknown registers read zero");
    assert_eq!(
        wr(&mut t, &m, 0x900, 5),
        MmioEvent::None,
        "config writes are ignored"
    );
}

#[test]
fn status_bits_cannot_be_taken_back_without_a_reset() {
    let m = mem();
    let mut t = transport();
    negotiate(&mut t, &m, features::VERSION_1);
    wr(&mut t, &m, reg::STATUS, status::ACKNOWLEDGE);
    assert_ne!(rd(&mut t, reg::STATUS) & status::FEATURES_OK, 0);
}

#[test]
fn queue_setup_after_driver_ok_is_ignored() {
    let m = mem();
    let mut t = transport();
    negotiate(&mut t, &m, features::VERSION_1);
    setup_queue(&mut t, &m, 0x1000, 0x2000, 0x3000);
    assert_eq!(wr(&mut t, &m, reg::STATUS, ALL_OK), MmioEvent::Activated);
    wr(&mut t, &m, reg::QUEUE_DESC_LOW, 0xdead_0000);
    wr(&mut t, &m, reg::QUEUE_READY, 0);
    assert_eq!(rd(&mut t, reg::QUEUE_READY), 1);
}
