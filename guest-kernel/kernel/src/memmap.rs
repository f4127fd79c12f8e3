//! The PVH memory map (`hvm_memmap_table_entry[]`, E820 types) and the one
//! question the kernel asks it during boot: may these physical bytes be read?
//!
//! The kernel reads nothing the loader points at (command line, modules,
//! ACPI tables) unless the memory map says the whole range is RAM, reserved,
//! ACPI or NVS memory: a bogus pointer must not make it touch MMIO or a hole.

use crate::bytes::{u32_at, u64_at};
use crate::pvh::MEMMAP_ENTRY_SIZE;

/// An E820 / PVH memory type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 1: usable RAM.
    Ram,
    /// 2: reserved (firmware, BIOS area, ...).
    Reserved,
    /// 3: ACPI tables, reclaimable.
    Acpi,
    /// 4: ACPI non-volatile storage.
    Nvs,
    /// 5: unusable (bad) memory.
    Unusable,
    /// Any other type number.
    Other(u32),
}

impl Kind {
    /// The memory type for an E820 type number.
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Kind::Ram,
            2 => Kind::Reserved,
            3 => Kind::Acpi,
            4 => Kind::Nvs,
            5 => Kind::Unusable,
            n => Kind::Other(n),
        }
    }

    /// The name printed in the boot report (`type-<n>` for unknown types is
    /// printed by the caller; this returns `None` for those).
    pub fn name(self) -> Option<&'static str> {
        match self {
            Kind::Ram => Some("ram"),
            Kind::Reserved => Some("reserved"),
            Kind::Acpi => Some("acpi"),
            Kind::Nvs => Some("nvs"),
            Kind::Unusable => Some("unusable"),
            Kind::Other(_) => None,
        }
    }

    /// Whether the kernel may read boot data (tables, modules) from it.
    pub fn readable(self) -> bool {
        matches!(self, Kind::Ram | Kind::Reserved | Kind::Acpi | Kind::Nvs)
    }
}

/// One memory-map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// First physical address.
    pub start: u64,
    /// Bytes.
    pub size: u64,
    /// Memory type.
    pub kind: Kind,
}

impl Entry {
    /// One past the last address (saturating at the top of the address space).
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

/// A memory map as the loader laid it out (`MEMMAP_ENTRY_SIZE` bytes per entry).
#[derive(Clone, Copy, Debug)]
pub struct MemMap<'a> {
    raw: &'a [u8],
}

impl<'a> MemMap<'a> {
    /// Wraps the raw table; a trailing partial entry is ignored.
    pub fn new(raw: &'a [u8]) -> Self {
        MemMap { raw }
    }

    /// A map with no entries (nothing is readable).
    pub fn empty() -> Self {
        MemMap { raw: &[] }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.raw.len() / MEMMAP_ENTRY_SIZE
    }

    /// Entry `index`.
    pub fn get(&self, index: usize) -> Option<Entry> {
        let base = index.checked_mul(MEMMAP_ENTRY_SIZE)?;
        Some(Entry {
            start: u64_at(self.raw, base)?,
            size: u64_at(self.raw, base + 8)?,
            kind: Kind::from_raw(u32_at(self.raw, base + 16)?),
        })
    }

    /// All entries in map order.
    pub fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Total bytes of usable RAM.
    pub fn ram_bytes(&self) -> u64 {
        self.iter()
            .filter(|e| e.kind == Kind::Ram)
            .fold(0u64, |sum, e| sum.saturating_add(e.size))
    }
}

/// Most separate readable ranges tracked; ranges past this many (after
/// merging adjacent ones) are treated as unreadable.
pub const MAX_READABLE_RANGES: usize = 32;

/// The readable parts of a memory map, sorted and merged, so that a range
/// check is one short scan instead of a walk over the raw entries.
#[derive(Clone, Copy, Debug)]
pub struct Readable {
    ranges: [(u64, u64); MAX_READABLE_RANGES],
    len: usize,
}

impl Readable {
    /// Collects the readable entries of `map` (in any order, possibly
    /// overlapping) into sorted, disjoint, non-adjacent `[start, end)` ranges.
    pub fn new(map: &MemMap<'_>) -> Self {
        let mut this = Readable {
            ranges: [(0, 0); MAX_READABLE_RANGES],
            len: 0,
        };
        for entry in map.iter().filter(|e| e.kind.readable() && e.size > 0) {
            this.insert(entry.start, entry.end());
        }
        this
    }

    fn insert(&mut self, start: u64, end: u64) {
        // Insertion sort by start; maps have a handful of entries.
        let mut at = self.len;
        while at > 0 && self.ranges[at - 1].0 > start {
            at -= 1;
        }
        if self.len == MAX_READABLE_RANGES {
            return;
        }
        self.ranges.copy_within(at..self.len, at + 1);
        self.ranges[at] = (start, end);
        self.len += 1;
        // Merge neighbours that now touch or overlap.
        let mut out = 0;
        for i in 1..self.len {
            let (s, e) = self.ranges[i];
            if s <= self.ranges[out].1 {
                self.ranges[out].1 = self.ranges[out].1.max(e);
            } else {
                out += 1;
                self.ranges[out] = (s, e);
            }
        }
        self.len = out + 1;
    }

    /// How many bytes from `addr` on are readable without a gap.
    pub fn len_from(&self, addr: u64) -> u64 {
        self.ranges[..self.len]
            .iter()
            .find(|&&(start, end)| start <= addr && addr < end)
            .map_or(0, |&(_, end)| end - addr)
    }

    /// Whether all of `[addr, addr + len)` is readable.
    pub fn covers(&self, addr: u64, len: u64) -> bool {
        len == 0 || self.len_from(addr) >= len
    }
}
