//! Port-I/O and MMIO buses: address ranges mapped to devices.
//!
//! Lookups happen on every exit from every vCPU, so the map is built once
//! before the vCPUs start and then only read. Accesses nobody claims are
//! logged once per address and otherwise ignored — reads see all-ones, as on
//! a floating PC bus — because real guests probe for hardware that is not
//! there and must not be killed for it.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use tracing::warn;

/// A device on a bus. `offset` is relative to the start of its range; `data`
/// is the access (1, 2, 4 or 8 bytes, little-endian).
pub trait BusDevice: Send {
    /// A guest read; fill `data`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// A guest write.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// A shared device handle.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Errors building a bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// Two devices claim overlapping ranges.
    #[error("{kind} range {base:#x}+{len:#x} overlaps an existing device")]
    Overlap {
        /// "port" or "mmio".
        kind: &'static str,
        /// Start of the new range.
        base: u64,
        /// Length of the new range.
        len: u64,
    },
    /// A zero-length range.
    #[error("{kind} range at {base:#x} has zero length")]
    Empty {
        /// "port" or "mmio".
        kind: &'static str,
        /// Start of the range.
        base: u64,
    },
}

struct Entry {
    len: u64,
    name: &'static str,
    device: SharedDevice,
}

/// One address space (port I/O or MMIO).
pub struct Bus {
    kind: &'static str,
    ranges: BTreeMap<u64, Entry>,
    unclaimed_seen: Mutex<HashSet<u64>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<_> = self
            .ranges
            .iter()
            .map(|(base, e)| format!("{}@{base:#x}+{:#x}", e.name, e.len))
            .collect();
        f.debug_struct("Bus")
            .field("kind", &self.kind)
            .field("ranges", &ranges)
            .finish()
    }
}

impl Bus {
    /// An empty bus; `kind` names it in logs ("port" or "mmio").
    pub fn new(kind: &'static str) -> Self {
        Bus {
            kind,
            ranges: BTreeMap::new(),
            unclaimed_seen: Mutex::new(HashSet::new()),
        }
    }

    /// Claims `[base, base + len)` for `device`.
    pub fn insert(
        &mut self,
        base: u64,
        len: u64,
        name: &'static str,
        device: SharedDevice,
    ) -> Result<(), BusError> {
        let kind = self.kind;
        if len == 0 {
            return Err(BusError::Empty { kind, base });
        }
        let end = base
            .checked_add(len)
            .ok_or(BusError::Overlap { kind, base, len })?;
        let before = self.ranges.range(..end).next_back();
        if let Some((b, e)) = before
            && b + e.len > base
        {
            return Err(BusError::Overlap { kind, base, len });
        }
        self.ranges.insert(base, Entry { len, name, device });
        Ok(())
    }

    fn find(&self, addr: u64) -> Option<(u64, &Entry)> {
        let (base, entry) = self.ranges.range(..=addr).next_back()?;
        (addr - base < entry.len).then_some((addr - base, entry))
    }

    fn unclaimed(&self, what: &str, addr: u64, len: usize) {
        let first = self
            .unclaimed_seen
            .lock()
            .map(|mut seen| seen.insert(addr))
            .unwrap_or(false);
        if first {
            warn!(
                "unclaimed {} {what} at {addr:#x} ({len} bytes); ignored (logged once per address)",
                self.kind
            );
        }
    }

    /// Routes a guest read. Returns whether a device claimed it.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr) {
            Some((offset, entry)) => {
                if let Ok(mut dev) = entry.device.lock() {
                    dev.read(offset, data);
                }
                true
            }
            None => {
                data.fill(0xff);
                self.unclaimed("read", addr, data.len());
                false
            }
        }
    }

    /// Routes a guest write. Returns whether a device claimed it.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr) {
            Some((offset, entry)) => {
                if let Ok(mut dev) = entry.device.lock() {
                    dev.write(offset, data);
                }
                true
            }
            None => {
                self.unclaimed("write", addr, data.len());
                false
            }
        }
    }
}

/// Reads a little-endian value of up to 8 bytes (an access of any width).
pub fn le_value(data: &[u8]) -> u64 {
    data.iter()
        .take(8)
        .enumerate()
        .fold(0, |acc, (i, b)| acc | (u64::from(*b) << (8 * i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        writes: Vec<(u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.writes.push((offset, data.to_vec()));
        }
    }

    #[test]
    fn routes_by_range_with_offsets() {
        let dev = Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::new("port");
        bus.insert(0x3f8, 8, "serial", dev.clone()).unwrap();
        assert!(bus.write(0x3fb, &[0x80]));
        let mut data = [0u8; 1];
        assert!(bus.read(0x3fd, &mut data));
        assert_eq!(data, [5]);
        assert_eq!(dev.lock().unwrap().writes, vec![(3, vec![0x80])]);
    }

    #[test]
    fn unclaimed_accesses_are_ignored_and_read_all_ones() {
        let bus = Bus::new("mmio");
        let mut data = [0u8; 4];
        assert!(!bus.read(0xdead_0000, &mut data));
        assert_eq!(data, [0xff; 4]);
        assert!(!bus.write(0xdead_0000, &[1, 2]));
        assert!(!bus.write(u64::MAX, &[1]));
    }

    #[test]
    fn overlapping_and_empty_ranges_are_refused() {
        let mut bus = Bus::new("port");
        let dev = Arc::new(Mutex::new(Recorder::default()));
        bus.insert(0x40, 4, "pit", dev.clone()).unwrap();
        assert!(bus.insert(0x43, 1, "x", dev.clone()).is_err());
        assert!(bus.insert(0x3e, 3, "x", dev.clone()).is_err());
        assert!(bus.insert(0x50, 0, "x", dev.clone()).is_err());
        assert!(bus.insert(u64::MAX, 2, "x", dev.clone()).is_err());
        bus.insert(0x44, 1, "adjacent", dev.clone()).unwrap();
        bus.insert(0x3c, 4, "adjacent-below", dev).unwrap();
    }

    #[test]
    fn le_value_of_any_width() {
        assert_eq!(le_value(&[0x02]), 2);
        assert_eq!(le_value(&[0x01, 0x02, 0, 0]), 0x0201);
        assert_eq!(le_value(&[]), 0);
        assert_eq!(le_value(&[0xff; 12]), u64::MAX);
    }
}
