//! The virtio-9p device as a PCI function: configuration space with the
//! virtio vendor capabilities and MSI-X, and BAR 0 routed to the transport
//! or the MSI-X table.
//!
//! Why here and not in `coco-virtio9p`: configuration space, BAR placement
//! and MSI-X delivery are the VMM's PCI machinery (shared with VFIO); the
//! crate owns only the virtio rules ([`PciTransport`]).

use std::sync::{Arc, Mutex};

use coco_virtio9p::pci::{PciTransport, REVISION, VENDOR_ID, Vectors, layout, vendor_caps};
use coco_virtio9p::{MmioEvent, Virtio9p, interrupt, ninep};
use vm_memory::GuestMemoryMmap;

use super::pci::config::{Bar, BarError, BarKind, ConfigSpace, STATUS_CAPABILITIES, offset};
use super::pci::msix::{CAP_LEN, MsixTable};

/// MSI-X vectors: configuration changes and the request queue.
pub const MSIX_VECTORS: u16 = 2;
/// Where the MSI-X capability sits; the virtio capabilities follow it.
const MSIX_CAP: usize = 0x40;
/// Vendor-specific capability ID (virtio structures).
const CAP_ID_VENDOR: u8 = 0x09;
/// Class 01/80/00: mass storage, other.
const CLASS: u32 = 0x01_80_00;
/// Subsystem IDs (vendor = virtio's).
const SUBSYSTEM_ID: u16 = 0x1100;

/// The PCI side of a virtio-9p device.
#[derive(Debug)]
pub struct PciFunction {
    transport: PciTransport<Virtio9p>,
    config: ConfigSpace,
    msix: Arc<Mutex<MsixTable>>,
    /// Bytes of the MSI-X table in BAR 0 (fixed at creation).
    msix_table_bytes: u64,
}

impl PciFunction {
    /// A virtio-9p device exporting `mount_tag` as a PCI function with BAR 0
    /// at `bar_base` (aligned to its 16 KiB, below 4 GiB), its interrupts
    /// delivered through `msix`. Returns the function and the device's
    /// interrupt (the event loop needs it).
    pub fn new(
        mount_tag: &str,
        msix: Arc<Mutex<MsixTable>>,
        bar_base: u64,
    ) -> Result<(Self, Arc<interrupt::Interrupt>), BarError> {
        let vectors = Arc::new(Vectors::new(ninep::QUEUES));
        let irq = Arc::new(interrupt::Interrupt::new(signal(
            vectors.clone(),
            msix.clone(),
        )));
        let device = Virtio9p::new(mount_tag, irq.clone());
        let transport = PciTransport::with_vectors(device, irq.clone(), MSIX_VECTORS, vectors);
        let mut config = ConfigSpace::new(VENDOR_ID, transport.pci_device_id(), CLASS, REVISION);
        config.set_u16(0x2c, VENDOR_ID);
        config.set_u16(0x2e, SUBSYSTEM_ID);
        config.set_u16(offset::STATUS, STATUS_CAPABILITIES);
        config.set_bytes(offset::CAPABILITIES, &[MSIX_CAP as u8]);
        // The BAR is placed by the VMM and stays where it is (sizing works).
        config.set_bar(
            0,
            Bar {
                base: bar_base,
                size: layout::BAR_SIZE,
                kind: BarKind::Mem32 {
                    prefetchable: false,
                },
            },
        )?;
        let mut at = MSIX_CAP + CAP_LEN;
        let mut msix_table_bytes = 0;
        if let Ok(table) = msix.lock() {
            msix_table_bytes = table.table_bytes();
            table.install(
                &mut config,
                MSIX_CAP,
                at as u8,
                layout::MSIX_TABLE as u32,
                layout::MSIX_PBA as u32,
            );
        }
        let caps = vendor_caps();
        for (i, cap) in caps.iter().enumerate() {
            let len = if cap.notify_off_multiplier.is_some() {
                20
            } else {
                16
            };
            let next = if i + 1 == caps.len() { 0 } else { at + len };
            config.set_bytes(
                at,
                &[
                    CAP_ID_VENDOR,
                    next as u8,
                    len as u8,
                    cap.cfg_type,
                    0,
                    0,
                    0,
                    0,
                ],
            );
            config.set_u32(at + 8, cap.offset);
            config.set_u32(at + 12, cap.length);
            if let Some(m) = cap.notify_off_multiplier {
                config.set_u32(at + 16, m);
            }
            at += len;
        }
        Ok((
            PciFunction {
                transport,
                config,
                msix,
                msix_table_bytes,
            },
            irq,
        ))
    }

    /// The virtio transport.
    pub fn transport(&self) -> &PciTransport<Virtio9p> {
        &self.transport
    }

    /// The virtio transport, mutably.
    pub fn transport_mut(&mut self) -> &mut PciTransport<Virtio9p> {
        &mut self.transport
    }

    /// Configuration dword `reg`.
    pub fn config_read(&self, reg: usize) -> u32 {
        self.config.read_dword(reg)
    }

    /// A configuration write; MSI-X control changes take effect at once.
    pub fn config_write(&mut self, at: usize, data: &[u8]) {
        self.config.write(at, data);
        if at < MSIX_CAP + CAP_LEN
            && at + data.len() > MSIX_CAP
            && let Ok(mut table) = self.msix.lock()
        {
            table.sync_control(&self.config, MSIX_CAP);
        }
    }

    /// A read of BAR 0 at `offset`.
    pub fn bar_read(&mut self, offset: u64, data: &mut [u8]) {
        if let Some(at) = self.msix_offset(offset, layout::MSIX_TABLE) {
            if let Ok(table) = self.msix.lock() {
                table.read_table(at, data);
            }
        } else if let Some(at) = self.msix_offset(offset, layout::MSIX_PBA) {
            if let Ok(table) = self.msix.lock() {
                table.read_pba(at, data);
            }
        } else {
            self.transport.read(offset, data);
        }
    }

    /// A write of BAR 0 at `offset`.
    pub fn bar_write(&mut self, memory: &GuestMemoryMmap, offset: u64, data: &[u8]) -> MmioEvent {
        if let Some(at) = self.msix_offset(offset, layout::MSIX_TABLE) {
            if let Ok(mut table) = self.msix.lock() {
                table.write_table(at, data);
            }
            return MmioEvent::None;
        }
        if self.msix_offset(offset, layout::MSIX_PBA).is_some() {
            // The pending-bit array is read-only.
            return MmioEvent::None;
        }
        self.transport.write(memory, offset, data)
    }

    /// `offset` relative to an MSI-X structure starting at `start`, if it
    /// falls inside (the table is 16 bytes per vector, the PBA 8 bytes).
    fn msix_offset(&self, offset: u64, start: u64) -> Option<u64> {
        let len = if start == layout::MSIX_TABLE {
            self.msix_table_bytes
        } else {
            8
        };
        (offset >= start && offset < start + len).then(|| offset - start)
    }
}

/// The interrupt path of a PCI function: used buffers go to the queue's
/// vector, configuration changes to the configuration vector; an
/// unassigned vector drops the message (the ISR bit stays set).
fn signal(vectors: Arc<Vectors>, msix: Arc<Mutex<MsixTable>>) -> interrupt::Signal {
    Box::new(move |bits| {
        let mut targets = [None, None];
        if bits & interrupt::USED_BUFFER != 0 {
            targets[0] = Some(vectors.queue(0));
        }
        if bits & interrupt::CONFIG_CHANGE != 0 {
            targets[1] = Some(vectors.config());
        }
        let Ok(mut table) = msix.lock() else {
            return;
        };
        for v in targets.into_iter().flatten() {
            if v != coco_virtio9p::pci::NO_VECTOR {
                table.trigger(usize::from(v));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::pci::msi::MsiMessage;
    use crate::devices::pci::msix::VectorSink;

    struct Null;
    impl VectorSink for Null {
        fn route(&self, _: usize, _: Option<MsiMessage>) {}
        fn fire(&self, _: usize) {}
    }

    fn function() -> PciFunction {
        let msix = Arc::new(Mutex::new(MsixTable::new(MSIX_VECTORS, Arc::new(Null))));
        PciFunction::new("hive", msix, 0xe000_0000).unwrap().0
    }

    /// Walks the capability list the way Linux's virtio_pci_modern does and
    /// returns (id, cfg_type, offset, length) of each.
    fn caps(f: &PciFunction) -> Vec<(u8, u8, u32, u32)> {
        let byte = |at: usize| (f.config_read(at / 4) >> ((at % 4) * 8)) as u8;
        let dword = |at: usize| f.config_read(at / 4);
        let mut out = Vec::new();
        let mut at = usize::from(byte(offset::CAPABILITIES));
        while at != 0 && out.len() < 16 {
            out.push((byte(at), byte(at + 3), dword(at + 8), dword(at + 12)));
            at = usize::from(byte(at + 1));
        }
        out
    }

    #[test]
    fn the_configuration_space_is_a_modern_virtio_9p_function() {
        let f = function();
        assert_eq!(
            f.config_read(0),
            0x1049_1af4,
            "vendor 1af4, device 1040 + 9"
        );
        assert_eq!(f.config_read(2) & 0xff, 1, "revision 1: modern only");
        assert_eq!(f.config_read(4), 0xe000_0000, "BAR 0, 32-bit memory");
        assert_eq!(f.config_read(0x3c / 4) >> 8 & 0xff, 0, "no INTx pin");
        let caps = caps(&f);
        assert_eq!(caps.len(), 5);
        assert_eq!(caps[0].0, 0x11, "MSI-X first");
        let virtio: Vec<(u8, u32, u32)> = caps[1..].iter().map(|c| (c.1, c.2, c.3)).collect();
        assert_eq!(
            virtio,
            [
                (1, 0x0000, 0x3c),
                (2, 0x3000, 4),
                (3, 0x1000, 4),
                (4, 0x2000, 0x1000)
            ]
        );
        assert!(caps[1..].iter().all(|c| c.0 == 0x09));
    }

    #[test]
    fn bar_sizing_reports_16_kib_and_the_bar_stays_put() {
        let mut f = function();
        f.config_write(0x10, &u32::MAX.to_le_bytes());
        assert_eq!(f.config_read(4), 0xffff_c000);
        f.config_write(0x10, &0xe000_0000u32.to_le_bytes());
        assert_eq!(f.config_read(4), 0xe000_0000);
    }

    #[test]
    fn bar_accesses_reach_the_msix_table_or_the_transport() {
        let mut f = function();
        let m = GuestMemoryMmap::from_ranges(&[(vm_memory::GuestAddress(0), 1 << 20)]).unwrap();
        f.bar_write(&m, layout::MSIX_TABLE + 8, &0x41u32.to_le_bytes());
        let mut w = [0u8; 4];
        f.bar_read(layout::MSIX_TABLE + 8, &mut w);
        assert_eq!(u32::from_le_bytes(w), 0x41);
        f.bar_read(layout::MSIX_TABLE + 12, &mut w);
        assert_eq!(u32::from_le_bytes(w), 1, "vectors start masked");
        let mut two = [0u8; 2];
        f.bar_read(0x12, &mut two);
        assert_eq!(u16::from_le_bytes(two), 1, "num_queues from the transport");
        // The PBA is read-only.
        f.bar_write(&m, layout::MSIX_PBA, &u64::MAX.to_le_bytes());
        let mut pba = [0u8; 8];
        f.bar_read(layout::MSIX_PBA, &mut pba);
        assert_eq!(pba, [0; 8]);
    }

    #[test]
    fn random_configuration_and_bar_accesses_never_panic_or_move_the_function() {
        // A guest may write anything anywhere at any width; the function
        // stays a virtio-9p function at its BAR and still activates.
        let m = GuestMemoryMmap::from_ranges(&[(vm_memory::GuestAddress(0), 1 << 20)]).unwrap();
        let mut f = function();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..50_000 {
            let r = next();
            let len = [1usize, 2, 3, 4, 8][(r % 5) as usize];
            let value = next().to_le_bytes();
            match (r >> 8) % 4 {
                0 => f.config_write(((r >> 16) % 300) as usize, &value[..len.min(4)]),
                1 => {
                    let _ = f.config_read(((r >> 16) % 80) as usize);
                }
                2 => {
                    let _ = f.bar_write(&m, (r >> 16) % (layout::BAR_SIZE + 64), &value[..len]);
                }
                _ => {
                    let mut out = vec![0u8; len];
                    f.bar_read((r >> 16) % (layout::BAR_SIZE + 64), &mut out);
                }
            }
        }
        assert_eq!(f.config_read(0), 0x1049_1af4);
        f.config_write(0x10, &0xe000_0000u32.to_le_bytes());
        assert_eq!(
            f.config_read(4),
            0xe000_0000,
            "the BAR register reads back where the VMM put it"
        );
        assert_eq!(caps(&f).len(), 5, "the capability list is read-only");
        // A reset and the Linux sequence still bring it up.
        let w = |f: &mut PciFunction, off: u64, v: &[u8]| f.bar_write(&m, off, v);
        w(&mut f, 0x14, &[0]);
        w(&mut f, 0x14, &[1 | 2]);
        w(&mut f, 0x08, &0u32.to_le_bytes());
        w(&mut f, 0x0c, &0u32.to_le_bytes());
        w(&mut f, 0x08, &1u32.to_le_bytes());
        w(&mut f, 0x0c, &1u32.to_le_bytes());
        w(&mut f, 0x14, &[1 | 2 | 8]);
        w(&mut f, 0x16, &0u16.to_le_bytes());
        w(&mut f, 0x18, &16u16.to_le_bytes());
        for (field, addr) in [(0x20u64, 0x1000u32), (0x28, 0x2000), (0x30, 0x3000)] {
            w(&mut f, field, &addr.to_le_bytes());
            w(&mut f, field + 4, &0u32.to_le_bytes());
        }
        w(&mut f, 0x1c, &1u16.to_le_bytes());
        assert_eq!(w(&mut f, 0x14, &[1 | 2 | 8 | 4]), MmioEvent::Activated);
    }
}
