//! MSI-X for devices the VMM emulates: the capability in configuration
//! space, the vector table and pending-bit array in a BAR, and delivery.
//!
//! Why: a virtio-pci driver with MSI-X touches no device register in its
//! interrupt handler. Each vector is a KVM GSI routed to the message the
//! guest wrote into the table, with an irqfd to fire it, so delivery is one
//! eventfd write from whichever thread completes the work. A masked vector
//! (entry mask or function mask) or MSI-X still disabled records a pending
//! bit instead, and unmasking delivers it (PCI 3.0 §6.8.2).
//!
//! The table logic is pure ([`MsixTable`]); how a message is routed and
//! fired is a [`VectorSink`], KVM's in the VMM, a recorder in the tests.

use std::sync::Arc;

use vmm_sys_util::eventfd::EventFd;

use super::config::ConfigSpace;
use super::msi::MsiMessage;
use crate::vm::irq_routes::{GsiRoutes, RouteError};

/// Capability ID of MSI-X.
pub const CAP_ID_MSIX: u8 = 0x11;
/// Bytes the capability takes in configuration space.
pub const CAP_LEN: usize = 12;
/// Bytes per table entry.
pub const ENTRY_LEN: u64 = 16;

const CONTROL: usize = 2;
const CONTROL_FUNCTION_MASK: u16 = 1 << 14;
const CONTROL_ENABLE: u16 = 1 << 15;
const ENTRY_MASKED: u32 = 1;

/// How vectors reach the guest.
pub trait VectorSink: Send + Sync {
    /// Vector `n` now carries `message` (`None`: no valid message).
    fn route(&self, n: usize, message: Option<MsiMessage>);
    /// Sends vector `n`'s message now.
    fn fire(&self, n: usize);
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    address: u64,
    data: u32,
    control: u32,
    pending: bool,
}

impl Entry {
    fn masked(&self) -> bool {
        self.control & ENTRY_MASKED != 0
    }

    fn message(&self) -> Option<MsiMessage> {
        // An entry the guest never programmed has no usable address.
        (self.address != 0).then_some(MsiMessage {
            address: self.address,
            data: self.data,
        })
    }
}

/// The table, pending bits and capability state of one function.
pub struct MsixTable {
    entries: Vec<Entry>,
    enabled: bool,
    function_masked: bool,
    sink: Arc<dyn VectorSink>,
}

impl std::fmt::Debug for MsixTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsixTable")
            .field("entries", &self.entries)
            .field("enabled", &self.enabled)
            .field("function_masked", &self.function_masked)
            .finish_non_exhaustive()
    }
}

impl MsixTable {
    /// `size` vectors, every one masked (as at reset), delivering to `sink`.
    pub fn new(size: u16, sink: Arc<dyn VectorSink>) -> Self {
        let entry = Entry {
            control: ENTRY_MASKED,
            ..Entry::default()
        };
        MsixTable {
            entries: vec![entry; usize::from(size)],
            enabled: false,
            function_masked: false,
            sink,
        }
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no vectors (never, for a real function).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of the table in the BAR.
    pub fn table_bytes(&self) -> u64 {
        self.entries.len() as u64 * ENTRY_LEN
    }

    /// Writes the capability at `offset` of `config`: table at `table` and
    /// pending bits at `pba` of BAR 0, control writable in bits 14–15.
    pub fn install(&self, config: &mut ConfigSpace, offset: usize, next: u8, table: u32, pba: u32) {
        let size_field = (self.entries.len().saturating_sub(1) & 0x7ff) as u16;
        config.set_bytes(offset, &[CAP_ID_MSIX, next]);
        config.set_u16(offset + CONTROL, size_field);
        config.set_u32(offset + 4, table & !0x7);
        config.set_u32(offset + 8, pba & !0x7);
        config.set_writable(
            offset + CONTROL,
            &(CONTROL_ENABLE | CONTROL_FUNCTION_MASK).to_le_bytes(),
        );
    }

    /// Takes the control bits after a guest configuration write; delivers
    /// what became unmasked.
    pub fn sync_control(&mut self, config: &ConfigSpace, offset: usize) {
        let control = config.u16_at(offset + CONTROL);
        self.enabled = control & CONTROL_ENABLE != 0;
        self.function_masked = control & CONTROL_FUNCTION_MASK != 0;
        self.deliver_pending();
    }

    /// Raises vector `n`: sent now, or left pending while masked or
    /// disabled. A vector outside the table is ignored.
    pub fn trigger(&mut self, n: usize) {
        let deliverable = self.enabled && !self.function_masked;
        let Some(e) = self.entries.get_mut(n) else {
            return;
        };
        if deliverable && !e.masked() && e.message().is_some() {
            self.sink.fire(n);
        } else {
            e.pending = true;
        }
    }

    fn deliver_pending(&mut self) {
        if !self.enabled || self.function_masked {
            return;
        }
        for (n, e) in self.entries.iter_mut().enumerate() {
            if e.pending && !e.masked() && e.message().is_some() {
                e.pending = false;
                self.sink.fire(n);
            }
        }
    }

    /// A guest read of the table at `offset` (aligned 4- or 8-byte access;
    /// anything else reads as zero).
    pub fn read_table(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let Some((n, field)) = self.locate(offset, data.len()) else {
            return;
        };
        let Some(e) = self.entries.get(n) else {
            return;
        };
        let words = [
            e.address as u32,
            (e.address >> 32) as u32,
            e.data,
            e.control,
        ];
        let mut bytes = [0u8; 16];
        for (i, w) in words.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        let at = field as usize;
        for (d, b) in data.iter_mut().zip(&bytes[at..]) {
            *d = *b;
        }
    }

    /// A guest write of the table at `offset`; re-routes the vector when its
    /// message changed and delivers a pending vector it unmasked.
    pub fn write_table(&mut self, offset: u64, data: &[u8]) {
        let Some((n, field)) = self.locate(offset, data.len()) else {
            return;
        };
        let Some(e) = self.entries.get_mut(n) else {
            return;
        };
        let before = (e.message(), e.masked());
        let mut bytes = [0u8; 8];
        for (b, d) in bytes.iter_mut().zip(data) {
            *b = *d;
        }
        let v = u64::from_le_bytes(bytes);
        let lo = v as u32;
        match (field, data.len()) {
            (0, 8) => e.address = v,
            (0, 4) => e.address = (e.address & !0xffff_ffff) | u64::from(lo),
            (4, 4) => e.address = (e.address & 0xffff_ffff) | (u64::from(lo) << 32),
            (8, 4) => e.data = lo,
            (8, 8) => {
                e.data = lo;
                e.control = (v >> 32) as u32 & ENTRY_MASKED;
            }
            (12, 4) => e.control = lo & ENTRY_MASKED,
            _ => {}
        }
        let message = e.message();
        if message != before.0 {
            self.sink.route(n, message);
        }
        if before.1 && !e.masked() {
            self.deliver_pending();
        }
    }

    /// A guest read of the pending-bit array at `offset`.
    pub fn read_pba(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if !matches!(data.len(), 4 | 8) || !offset.is_multiple_of(data.len() as u64) {
            return;
        }
        for (i, d) in data.iter_mut().enumerate() {
            let first = (offset as usize + i) * 8;
            let mut byte = 0u8;
            for bit in 0..8 {
                if self.entries.get(first + bit).is_some_and(|e| e.pending) {
                    byte |= 1 << bit;
                }
            }
            *d = byte;
        }
    }

    /// Entry and byte-in-entry of an aligned 4- or 8-byte table access.
    fn locate(&self, offset: u64, len: usize) -> Option<(usize, u64)> {
        if !matches!(len, 4 | 8) || !offset.is_multiple_of(len as u64) {
            return None;
        }
        let n = usize::try_from(offset / ENTRY_LEN).ok()?;
        (n < self.entries.len()).then_some((n, offset % ENTRY_LEN))
    }
}

/// KVM delivery: one GSI and one irqfd per vector.
pub struct KvmVectors {
    routes: Arc<GsiRoutes>,
    vectors: Vec<(u32, EventFd)>,
}

impl std::fmt::Debug for KvmVectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gsis: Vec<u32> = self.vectors.iter().map(|(g, _)| *g).collect();
        f.debug_struct("KvmVectors").field("gsis", &gsis).finish()
    }
}

/// Why KVM vectors could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// No GSI.
    #[error("allocating a GSI: {0}")]
    Route(#[from] RouteError),
    /// The eventfd or its registration failed.
    #[error("irqfd for GSI {gsi}: {why}")]
    Irqfd {
        /// The GSI.
        gsi: u32,
        /// What failed.
        why: String,
    },
}

impl KvmVectors {
    /// `count` vectors: a GSI each and an irqfd registered on it.
    pub fn new(routes: Arc<GsiRoutes>, count: u16) -> Result<Self, VectorError> {
        let mut vectors = Vec::new();
        for _ in 0..count {
            let gsi = routes.allocate()?;
            let fd = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| VectorError::Irqfd {
                gsi,
                why: e.to_string(),
            })?;
            routes
                .vm()
                .register_irqfd(&fd, gsi)
                .map_err(|e| VectorError::Irqfd {
                    gsi,
                    why: e.to_string(),
                })?;
            vectors.push((gsi, fd));
        }
        Ok(KvmVectors { routes, vectors })
    }
}

impl VectorSink for KvmVectors {
    fn route(&self, n: usize, message: Option<MsiMessage>) {
        if let Some((gsi, _)) = self.vectors.get(n)
            && let Err(e) = self.routes.set_msi(*gsi, message)
        {
            tracing::warn!("MSI-X vector {n} (GSI {gsi}): {e}");
        }
    }

    fn fire(&self, n: usize) {
        if let Some((_, fd)) = self.vectors.get(n) {
            // A full counter still means "interrupt pending".
            let _ = fd.write(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        routes: Mutex<Vec<(usize, Option<MsiMessage>)>>,
        fired: Mutex<Vec<usize>>,
    }

    impl VectorSink for Recorder {
        fn route(&self, n: usize, message: Option<MsiMessage>) {
            self.routes.lock().unwrap().push((n, message));
        }
        fn fire(&self, n: usize) {
            self.fired.lock().unwrap().push(n);
        }
    }

    fn table() -> (MsixTable, Arc<Recorder>) {
        let r = Arc::new(Recorder::default());
        (MsixTable::new(2, r.clone()), r)
    }

    fn program(t: &mut MsixTable, n: u64, address: u64, data: u32) {
        t.write_table(n * 16, &(address as u32).to_le_bytes());
        t.write_table(n * 16 + 4, &((address >> 32) as u32).to_le_bytes());
        t.write_table(n * 16 + 8, &data.to_le_bytes());
    }

    fn unmask(t: &mut MsixTable, n: u64) {
        t.write_table(n * 16 + 12, &0u32.to_le_bytes());
    }

    fn enable(t: &mut MsixTable, control_bits: u16) {
        let mut c = ConfigSpace::new(0x1af4, 0x1049, 0, 1);
        t.install(&mut c, 0x40, 0, 0x800, 0xc00);
        c.write(0x42, &control_bits.to_le_bytes());
        t.sync_control(&c, 0x40);
    }

    #[test]
    fn the_capability_describes_the_table_and_only_control_bits_are_writable() {
        let (t, _) = table();
        let mut c = ConfigSpace::new(0x1af4, 0x1049, 0, 1);
        t.install(&mut c, 0x40, 0x4c, 0x800, 0xc00);
        assert_eq!(c.read_dword(0x40 / 4), 0x0001_4c11, "id, next, size-1 = 1");
        assert_eq!(c.read_dword(0x44 / 4), 0x800, "table in BAR 0");
        assert_eq!(c.read_dword(0x48 / 4), 0xc00, "PBA in BAR 0");
        c.write(0x42, &0xffffu16.to_le_bytes());
        assert_eq!(c.u16_at(0x42), 0xc001);
        c.write(0x44, &0xffff_ffffu32.to_le_bytes());
        assert_eq!(c.read_dword(0x44 / 4), 0x800, "table offset is read-only");
    }

    #[test]
    fn a_programmed_unmasked_vector_fires_once_enabled() {
        let (mut t, r) = table();
        program(&mut t, 1, 0xfee0_0000, 0x41);
        assert_eq!(
            r.routes.lock().unwrap().last(),
            Some(&(
                1,
                Some(MsiMessage {
                    address: 0xfee0_0000,
                    data: 0x41
                })
            ))
        );
        unmask(&mut t, 1);
        t.trigger(1);
        assert!(r.fired.lock().unwrap().is_empty(), "MSI-X still disabled");
        enable(&mut t, CONTROL_ENABLE);
        assert_eq!(*r.fired.lock().unwrap(), [1], "pending delivered on enable");
        t.trigger(1);
        assert_eq!(*r.fired.lock().unwrap(), [1, 1]);
    }

    #[test]
    fn masked_vectors_stay_pending_until_unmasked() {
        let (mut t, r) = table();
        enable(&mut t, CONTROL_ENABLE);
        program(&mut t, 0, 0xfee0_0000, 0x30);
        t.trigger(0);
        assert!(r.fired.lock().unwrap().is_empty(), "entries start masked");
        let mut pba = [0u8; 8];
        t.read_pba(0, &mut pba);
        assert_eq!(pba[0], 1);
        unmask(&mut t, 0);
        assert_eq!(*r.fired.lock().unwrap(), [0]);
        t.read_pba(0, &mut pba);
        assert_eq!(pba[0], 0);
        // The function mask holds every vector.
        enable(&mut t, CONTROL_ENABLE | CONTROL_FUNCTION_MASK);
        t.trigger(0);
        assert_eq!(*r.fired.lock().unwrap(), [0]);
        enable(&mut t, CONTROL_ENABLE);
        assert_eq!(*r.fired.lock().unwrap(), [0, 0]);
    }

    #[test]
    fn table_reads_return_what_was_written_and_bad_accesses_do_nothing() {
        let (mut t, r) = table();
        program(&mut t, 1, 0x1_fee0_1000, 0x4041);
        let mut w = [0u8; 4];
        t.read_table(16 + 4, &mut w);
        assert_eq!(u32::from_le_bytes(w), 1);
        t.read_table(16 + 12, &mut w);
        assert_eq!(u32::from_le_bytes(w), 1, "still masked");
        let routes = r.routes.lock().unwrap().len();
        // Misaligned, odd widths, past the table: ignored.
        t.write_table(16 + 2, &[0xff; 4]);
        t.write_table(16 + 8, &[0xff; 2]);
        t.write_table(2 * 16, &[0xff; 4]);
        t.write_table(u64::MAX - 3, &[0xff; 4]);
        assert_eq!(r.routes.lock().unwrap().len(), routes);
        t.read_table(2 * 16, &mut w);
        assert_eq!(w, [0; 4]);
        t.trigger(5);
        assert!(r.fired.lock().unwrap().is_empty());
        // An unprogrammed vector never fires, even unmasked and enabled.
        enable(&mut t, CONTROL_ENABLE);
        unmask(&mut t, 0);
        t.trigger(0);
        assert!(r.fired.lock().unwrap().is_empty());
    }
}
