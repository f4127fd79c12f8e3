//! The virtio-pci common configuration driven the way Linux's
//! virtio_pci_modern driver drives it, and the ways a guest can get it wrong.

use std::sync::Arc;

use coco_virtio9p::mmio::status;
use coco_virtio9p::pci::{DEVICE_ID_BASE, NO_VECTOR, layout};
use coco_virtio9p::{Interrupt, MmioEvent, PciTransport, Virtio9p, features, interrupt};
use vm_memory::{GuestAddress, GuestMemoryMmap};

// Common configuration offsets (virtio 1.2 §4.1.4.3).
const DFSELECT: u64 = 0x00;
const DF: u64 = 0x04;
const GFSELECT: u64 = 0x08;
const GF: u64 = 0x0c;
const MSIX_CONFIG: u64 = 0x10;
const NUM_QUEUES: u64 = 0x12;
const STATUS: u64 = 0x14;
const Q_SELECT: u64 = 0x16;
const Q_SIZE: u64 = 0x18;
const Q_MSIX: u64 = 0x1a;
const Q_ENABLE: u64 = 0x1c;
const Q_NOFF: u64 = 0x1e;
const Q_DESC: u64 = 0x20;
const Q_AVAIL: u64 = 0x28;
const Q_USED: u64 = 0x30;

const TABLE: u16 = 2;

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).expect("guest memory")
}

fn transport() -> (PciTransport<Virtio9p>, Arc<Interrupt>) {
    let irq = Arc::new(Interrupt::new(Box::new(|_| {})));
    let t = PciTransport::new(
        Virtio9p::new("hive", Arc::clone(&irq)),
        Arc::clone(&irq),
        TABLE,
    );
    (t, irq)
}

fn rd(t: &mut PciTransport<Virtio9p>, offset: u64, len: usize) -> u64 {
    let mut b = vec![0u8; len];
    t.read(offset, &mut b);
    let mut a = [0u8; 8];
    a[..len].copy_from_slice(&b);
    u64::from_le_bytes(a)
}

fn wr(
    t: &mut PciTransport<Virtio9p>,
    m: &GuestMemoryMmap,
    offset: u64,
    len: usize,
    v: u64,
) -> MmioEvent {
    t.write(m, offset, &v.to_le_bytes()[..len])
}

const ALL_OK: u64 =
    (status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK) as u64;

/// Linux: reset, ACKNOWLEDGE|DRIVER, read features, write accepted ones,
/// FEATURES_OK and read it back.
fn negotiate(t: &mut PciTransport<Virtio9p>, m: &GuestMemoryMmap, accept: u64) -> u64 {
    wr(t, m, STATUS, 1, 0);
    wr(t, m, STATUS, 1, u64::from(status::ACKNOWLEDGE));
    wr(
        t,
        m,
        STATUS,
        1,
        u64::from(status::ACKNOWLEDGE | status::DRIVER),
    );
    wr(t, m, GFSELECT, 4, 0);
    wr(t, m, GF, 4, accept & 0xffff_ffff);
    wr(t, m, GFSELECT, 4, 1);
    wr(t, m, GF, 4, accept >> 32);
    let s = u64::from(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
    wr(t, m, STATUS, 1, s);
    rd(t, STATUS, 1)
}

/// Linux's setup_vq: select, read the size, assign a vector and read it
/// back, write the three addresses as 32-bit halves, enable.
fn setup_queue(t: &mut PciTransport<Virtio9p>, m: &GuestMemoryMmap, vector: u16) -> u64 {
    wr(t, m, Q_SELECT, 2, 0);
    assert_eq!(rd(t, Q_SIZE, 2), 128, "the size starts at the maximum");
    wr(t, m, Q_SIZE, 2, 16);
    wr(t, m, Q_MSIX, 2, u64::from(vector));
    let got = rd(t, Q_MSIX, 2);
    for (field, addr) in [(Q_DESC, 0x1000u64), (Q_AVAIL, 0x2000), (Q_USED, 0x3000)] {
        wr(t, m, field, 4, addr & 0xffff_ffff);
        wr(t, m, field + 4, 4, addr >> 32);
    }
    wr(t, m, Q_ENABLE, 2, 1);
    got
}

#[test]
fn identity_and_structure() {
    let (mut t, _) = transport();
    assert_eq!(t.pci_device_id(), DEVICE_ID_BASE + 9);
    let m = mem();
    assert_eq!(rd(&mut t, NUM_QUEUES, 2), 1);
    wr(&mut t, &m, DFSELECT, 4, 1);
    assert_eq!(rd(&mut t, DF, 4), 1, "VIRTIO_F_VERSION_1 is bit 32");
    wr(&mut t, &m, DFSELECT, 4, 0);
    assert_eq!(rd(&mut t, DF, 4) & features::NINEP_MOUNT_TAG, 1);
    assert_eq!(
        rd(&mut t, Q_NOFF, 2),
        0,
        "every queue notifies at one address"
    );
    assert_eq!(rd(&mut t, MSIX_CONFIG, 2), u64::from(NO_VECTOR));
    let mut tag = [0u8; 6];
    t.read(layout::DEVICE, &mut tag);
    assert_eq!(&tag, &[4, 0, b'h', b'i', b'v', b'e']);
    wr(&mut t, &m, Q_SELECT, 2, 1);
    assert_eq!(rd(&mut t, Q_SIZE, 2), 0, "there is one queue");
}

#[test]
fn the_linux_sequence_activates_and_notifies_reach_the_caller() {
    let m = mem();
    let (mut t, _) = transport();
    let s = negotiate(&mut t, &m, features::VERSION_1 | features::NINEP_MOUNT_TAG);
    assert_ne!(s & u64::from(status::FEATURES_OK), 0);
    wr(&mut t, &m, MSIX_CONFIG, 2, 0);
    assert_eq!(rd(&mut t, MSIX_CONFIG, 2), 0);
    assert_eq!(setup_queue(&mut t, &m, 1), 1);
    assert_eq!(t.vectors().config(), 0);
    assert_eq!(t.vectors().queue(0), 1);
    assert_eq!(rd(&mut t, Q_DESC, 4), 0x1000);
    assert_eq!(rd(&mut t, Q_USED, 8), 0x3000);
    assert_eq!(rd(&mut t, Q_ENABLE, 2), 1);
    assert_eq!(
        wr(&mut t, &m, layout::NOTIFY, 2, 0),
        MmioEvent::None,
        "not active yet"
    );
    assert_eq!(wr(&mut t, &m, STATUS, 1, ALL_OK), MmioEvent::Activated);
    assert!(t.is_active());
    assert_eq!(rd(&mut t, STATUS, 1), ALL_OK);
    assert_eq!(wr(&mut t, &m, layout::NOTIFY, 2, 0), MmioEvent::Notify(0));
    assert_eq!(wr(&mut t, &m, layout::NOTIFY, 4, 0), MmioEvent::Notify(0));
    assert_eq!(
        wr(&mut t, &m, layout::NOTIFY, 2, 1),
        MmioEvent::None,
        "no queue 1"
    );
}

#[test]
fn vectors_outside_the_table_read_back_as_no_vector() {
    let m = mem();
    let (mut t, _) = transport();
    negotiate(&mut t, &m, features::VERSION_1);
    wr(&mut t, &m, MSIX_CONFIG, 2, u64::from(TABLE));
    assert_eq!(rd(&mut t, MSIX_CONFIG, 2), u64::from(NO_VECTOR));
    assert_eq!(setup_queue(&mut t, &m, 7), u64::from(NO_VECTOR));
    assert_eq!(t.vectors().queue(0), NO_VECTOR);
    // A queue that does not exist takes no vector.
    wr(&mut t, &m, Q_SELECT, 2, 3);
    wr(&mut t, &m, Q_MSIX, 2, 0);
    assert_eq!(rd(&mut t, Q_MSIX, 2), 0, "no such queue reads as 0");
    assert_eq!(t.vectors().queue(3), NO_VECTOR);
}

#[test]
fn reset_clears_status_queues_and_vectors() {
    let m = mem();
    let (mut t, _) = transport();
    negotiate(&mut t, &m, features::VERSION_1);
    wr(&mut t, &m, MSIX_CONFIG, 2, 0);
    setup_queue(&mut t, &m, 1);
    assert_eq!(wr(&mut t, &m, STATUS, 1, ALL_OK), MmioEvent::Activated);
    assert_eq!(wr(&mut t, &m, STATUS, 1, 0), MmioEvent::Reset);
    assert!(!t.is_active());
    assert_eq!(rd(&mut t, STATUS, 1), 0);
    assert_eq!(t.vectors().config(), NO_VECTOR);
    assert_eq!(t.vectors().queue(0), NO_VECTOR);
    assert_eq!(rd(&mut t, Q_DESC, 8), 0);
}

#[test]
fn the_isr_byte_is_read_to_clear() {
    let (mut t, irq) = transport();
    irq.raise(interrupt::USED_BUFFER | interrupt::CONFIG_CHANGE);
    assert_eq!(rd(&mut t, layout::ISR, 1), 3);
    assert_eq!(rd(&mut t, layout::ISR, 1), 0);
    assert_eq!(irq.status(), 0);
}

#[test]
fn wrong_widths_misaligned_halves_and_read_only_fields_change_nothing() {
    let m = mem();
    let (mut t, _) = transport();
    negotiate(&mut t, &m, features::VERSION_1);
    wr(&mut t, &m, Q_SELECT, 2, 0);
    // Status is one byte: a 4-byte write at its offset is ignored.
    assert_eq!(wr(&mut t, &m, STATUS, 4, ALL_OK), MmioEvent::None);
    assert_eq!(rd(&mut t, STATUS, 4), 0, "4-byte read of a 1-byte field");
    // A 2-byte write into the middle of an address, a write straddling two
    // fields, a write to num_queues and to the device config: ignored.
    wr(&mut t, &m, Q_DESC + 2, 2, 0xffff);
    wr(&mut t, &m, Q_DESC + 4, 8, u64::MAX);
    wr(&mut t, &m, NUM_QUEUES, 2, 9);
    wr(&mut t, &m, layout::DEVICE, 4, 0);
    assert_eq!(rd(&mut t, Q_DESC, 8), 0);
    assert_eq!(rd(&mut t, NUM_QUEUES, 2), 1);
    let mut tag = [0u8; 6];
    t.read(layout::DEVICE, &mut tag);
    assert_eq!(&tag[2..], b"hive");
    // Queue enable takes only 1.
    wr(&mut t, &m, Q_ENABLE, 2, 2);
    assert_eq!(rd(&mut t, Q_ENABLE, 2), 0);
    // Past the end of BAR 0 and between structures: zeros, no effect.
    assert_eq!(rd(&mut t, layout::BAR_SIZE, 4), 0);
    assert_eq!(rd(&mut t, layout::COMMON_LEN, 4), 0);
    assert_eq!(wr(&mut t, &m, layout::NOTIFY + 2, 2, 0), MmioEvent::None);
}

#[test]
fn a_bad_queue_setup_refuses_driver_ok() {
    let m = mem();
    let (mut t, _) = transport();
    negotiate(&mut t, &m, features::VERSION_1);
    wr(&mut t, &m, Q_SELECT, 2, 0);
    wr(&mut t, &m, Q_SIZE, 2, 3); // not a power of two
    wr(&mut t, &m, Q_ENABLE, 2, 1);
    assert_eq!(
        wr(&mut t, &m, STATUS, 1, ALL_OK),
        MmioEvent::ActivationRefused
    );
    assert_ne!(
        rd(&mut t, STATUS, 1) & u64::from(status::DEVICE_NEEDS_RESET),
        0
    );
    assert!(!t.is_active());
}

#[test]
fn a_legacy_driver_never_gets_features_ok() {
    let m = mem();
    let (mut t, _) = transport();
    let s = negotiate(&mut t, &m, features::NINEP_MOUNT_TAG);
    assert_eq!(s & u64::from(status::FEATURES_OK), 0);
}
