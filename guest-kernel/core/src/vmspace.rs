//! Per-shard address-space bookkeeping: which user ranges are mapped, with
//! which permissions and for what. No page tables here — the kernel edits
//! those; this decides whether an edit is allowed, and answers the first
//! question of every system call that takes a pointer: may the shard access
//! `[va, va + len)` ([`VmSpace::check_user_range`])?
//!
//! Regions are kept sorted by address in a fixed array, so lookups are a
//! binary search and every rule is checked on insert and returned as a
//! typed error, never asserted:
//!
//! * page-aligned, at least one page, no overflow, inside
//!   `[USER_MIN, USER_END)`;
//! * never writable and executable (W^X);
//! * never overlapping another region.
//!
//! `mmap` follows the ABI (`coconut_abi::syscall::nr::MMAP`): `va` must be
//! the current heap end, 1..=`MMAP_PAGES_MAX` pages, within the page quota;
//! consecutive `mmap`s grow one heap region instead of using more slots;
//! a heap below the file window never grows into it.
//!
//! Placement in the file and device windows ([`VmSpace::map_in_window`])
//! takes the lowest gap: file mappings at a chosen offset inside a 2 MiB
//! slot (so the kernel can use large pages), device and DMA windows with one
//! unmapped guard page after each, so an access past a window's end faults
//! instead of reaching the next window.

use crate::elf::Segment;
use crate::perms::Perms;
use coconut_abi::syscall::Error;
use coconut_abi::syscall::MMAP_PAGES_MAX;
use coconut_abi::syscall::config::{
    DEVICE_MAP_BASE, FILE_MAP_BASE, INFO_VA, STACK_PAGES, STACK_TOP, USER_END, USER_MIN,
};

/// Page size.
pub const PAGE: u64 = 4096;
/// Alignment of file mappings (2 MiB: large-page friendly).
pub const FILE_ALIGN: u64 = 2 << 20;
/// End of the device window (1 GiB below the stack top, so the stack and its guard stay clear).
pub const DEVICE_MAP_END: u64 = STACK_TOP - (1 << 30);

/// What a region is for (reports and placement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ELF code (R+X).
    Code,
    /// ELF data and bss.
    Data,
    /// `mmap`ed memory.
    Heap,
    /// The stack.
    Stack,
    /// An inaccessible guard.
    Guard,
    /// The read-only `ShardInfo` page.
    Info,
    /// A file mapped by `fs_map`.
    File,
    /// An MMIO window.
    Device,
    /// Memory from `dma_alloc`.
    Dma,
}

/// A mapped (or guard) range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address (page-aligned).
    pub start: u64,
    /// Length in pages (≥ 1).
    pub pages: u64,
    /// Permissions (never W+X).
    pub perms: Perms,
    /// What it is for.
    pub kind: Kind,
}

impl Region {
    /// One past the last byte (does not overflow for an inserted region).
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.pages.saturating_mul(PAGE))
    }
}

/// Why an address-space change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmError {
    /// An address is not page-aligned.
    Misaligned,
    /// Zero pages, or more than `MMAP_PAGES_MAX` for `mmap`.
    BadLength,
    /// The end address overflows.
    Overflow,
    /// Outside `[USER_MIN, USER_END)` (or outside the placement window).
    OutsideUser,
    /// Writable and executable.
    WriteExecute,
    /// Overlaps an existing region.
    Overlap,
    /// The region table is full.
    Full,
    /// `mmap` at an address other than the heap end.
    NotHeapEnd,
    /// Over the page quota.
    Quota,
    /// No gap large enough in the placement window.
    NoSpace,
    /// No region starts at that address.
    NotFound,
}

impl From<VmError> for Error {
    fn from(e: VmError) -> Error {
        match e {
            VmError::Misaligned
            | VmError::BadLength
            | VmError::Overflow
            | VmError::OutsideUser
            | VmError::WriteExecute
            | VmError::NotHeapEnd
            | VmError::NotFound => Error::InvalidArgument,
            VmError::Overlap => Error::Overlap,
            VmError::Full | VmError::Quota | VmError::NoSpace => Error::NoMemory,
        }
    }
}

/// Where [`VmSpace::map_in_window`] places a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// `[FILE_MAP_BASE, DEVICE_MAP_BASE)`, 2 MiB-aligned.
    File,
    /// `[DEVICE_MAP_BASE, DEVICE_MAP_END)`, page-aligned.
    Device,
}

/// One shard's address space, with room for `N` regions.
#[derive(Clone, Copy, Debug)]
pub struct VmSpace<const N: usize> {
    regions: [Region; N],
    len: usize,
    heap_end: u64,
    quota: u64,
    charged: u64,
}

const EMPTY: Region = Region {
    start: 0,
    pages: 0,
    perms: Perms::NONE,
    kind: Kind::Guard,
};

impl<const N: usize> VmSpace<N> {
    /// An empty space whose heap starts (empty) at `heap_start` and whose
    /// `mmap`/`dma_alloc` quota is `quota` pages.
    pub const fn new(heap_start: u64, quota: u64) -> Self {
        VmSpace {
            regions: [EMPTY; N],
            len: 0,
            heap_end: heap_start,
            quota,
            charged: 0,
        }
    }

    /// A shard's starting layout: every ELF segment (`Code` if executable,
    /// else `Data`, with its own permissions), the stack (`STACK_PAGES`
    /// below `STACK_TOP`, R+W) with an inaccessible guard page below it, and
    /// the read-only info page at `INFO_VA`; the heap starts empty one guard
    /// page above the highest segment (`image_end`), and `quota` pages may be
    /// mapped by `mmap` and `dma_alloc`. Fails on any collision or rule.
    pub fn for_shard(segments: &[Segment], image_end: u64, quota: u64) -> Result<Self, VmError> {
        let heap_start = image_end.checked_add(PAGE).ok_or(VmError::Overflow)?;
        let mut space = Self::new(heap_start, quota);
        for seg in segments {
            space.insert(Region {
                start: seg.page_start(),
                pages: seg.pages(),
                perms: seg.perms,
                kind: if seg.perms.exec() {
                    Kind::Code
                } else {
                    Kind::Data
                },
            })?;
        }
        let stack_base = STACK_TOP.saturating_sub(STACK_PAGES.saturating_mul(PAGE));
        for (start, pages, perms, kind) in [
            (stack_base.saturating_sub(PAGE), 1, Perms::NONE, Kind::Guard),
            (stack_base, STACK_PAGES, Perms::RW, Kind::Stack),
            (INFO_VA, 1, Perms::R, Kind::Info),
        ] {
            space.insert(Region {
                start,
                pages,
                perms,
                kind,
            })?;
        }
        Ok(space)
    }

    /// The regions, sorted by address.
    pub fn regions(&self) -> &[Region] {
        self.regions.get(..self.len).unwrap_or(&[])
    }

    /// The current heap end (where the next `mmap` must be).
    pub const fn heap_end(&self) -> u64 {
        self.heap_end
    }

    /// Pages charged against the quota so far.
    pub const fn charged(&self) -> u64 {
        self.charged
    }

    /// The `mmap`/`dma_alloc` page quota.
    pub const fn quota(&self) -> u64 {
        self.quota
    }

    /// The region containing `va`.
    pub fn find(&self, va: u64) -> Option<&Region> {
        let i = self.regions().partition_point(|r| r.start <= va);
        self.regions()
            .get(i.checked_sub(1)?)
            .filter(|r| va < r.end())
    }

    /// Adds a region after checking every rule (see the module documentation).
    pub fn insert(&mut self, region: Region) -> Result<(), VmError> {
        if !region.start.is_multiple_of(PAGE) {
            return Err(VmError::Misaligned);
        }
        if region.pages == 0 {
            return Err(VmError::BadLength);
        }
        let end = region
            .pages
            .checked_mul(PAGE)
            .and_then(|len| region.start.checked_add(len))
            .ok_or(VmError::Overflow)?;
        if region.start < USER_MIN || end > USER_END {
            return Err(VmError::OutsideUser);
        }
        if !region.perms.is_wx_safe() {
            return Err(VmError::WriteExecute);
        }
        let at = self.regions().partition_point(|r| r.start < region.start);
        let prev_ok = at
            .checked_sub(1)
            .and_then(|p| self.regions().get(p))
            .is_none_or(|p| p.end() <= region.start);
        let next_ok = self.regions().get(at).is_none_or(|n| end <= n.start);
        if !(prev_ok && next_ok) {
            return Err(VmError::Overlap);
        }
        if self.len >= N {
            return Err(VmError::Full);
        }
        // Shift the tail up by one (N is small: a few dozen regions).
        let mut i = self.len;
        while i > at {
            let below = i.saturating_sub(1);
            if let Some(&r) = self.regions.get(below)
                && let Some(slot) = self.regions.get_mut(i)
            {
                *slot = r;
            }
            i = below;
        }
        if let Some(slot) = self.regions.get_mut(at) {
            *slot = region;
        }
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    /// Removes the region that starts at `start` and returns it.
    pub fn remove(&mut self, start: u64) -> Result<Region, VmError> {
        let at = self
            .regions()
            .iter()
            .position(|r| r.start == start)
            .ok_or(VmError::NotFound)?;
        let removed = self.regions.get(at).copied().ok_or(VmError::NotFound)?;
        let last = self.len.saturating_sub(1);
        for i in at..last {
            if let Some(&r) = self.regions.get(i.saturating_add(1))
                && let Some(slot) = self.regions.get_mut(i)
            {
                *slot = r;
            }
        }
        self.len = last;
        Ok(removed)
    }

    /// `mmap(va, pages)` per the ABI: R+W+NX heap pages at the heap end.
    /// Returns `va`; the kernel then maps zeroed frames there.
    pub fn mmap(&mut self, va: u64, pages: u64) -> Result<u64, VmError> {
        if pages == 0 || pages > MMAP_PAGES_MAX {
            return Err(VmError::BadLength);
        }
        if !va.is_multiple_of(PAGE) {
            return Err(VmError::Misaligned);
        }
        if va != self.heap_end {
            return Err(VmError::NotHeapEnd);
        }
        // pages <= 256, so this product cannot overflow; the sum can.
        let end = va
            .checked_add(pages.saturating_mul(PAGE))
            .ok_or(VmError::Overflow)?;
        if va < USER_MIN || end > USER_END {
            return Err(VmError::OutsideUser);
        }
        let charged = self.charged.saturating_add(pages);
        if charged > self.quota {
            return Err(VmError::Quota);
        }
        // Grow the heap region that ends at va, if there is one and nothing follows it.
        let at = self.regions().partition_point(|r| r.start < va);
        if self.regions().get(at).is_some_and(|n| n.start < end) {
            return Err(VmError::Overlap);
        }
        // A heap that starts below the file window stops at its base.
        if va <= FILE_MAP_BASE && end > FILE_MAP_BASE {
            return Err(VmError::NoSpace);
        }
        let grow = at.checked_sub(1).filter(|&p| {
            self.regions()
                .get(p)
                .is_some_and(|r| r.kind == Kind::Heap && r.end() == va)
        });
        match grow.and_then(|p| self.regions.get_mut(p)) {
            Some(heap) => heap.pages = heap.pages.saturating_add(pages),
            None => self.insert(Region {
                start: va,
                pages,
                perms: Perms::RW,
                kind: Kind::Heap,
            })?,
        }
        self.heap_end = end;
        self.charged = charged;
        Ok(va)
    }

    /// Charges `pages` against the quota (for `dma_alloc`, whose frames are
    /// placed with [`VmSpace::map_in_window`]).
    pub fn charge(&mut self, pages: u64) -> Result<(), VmError> {
        let charged = self.charged.checked_add(pages).ok_or(VmError::Quota)?;
        if charged > self.quota {
            return Err(VmError::Quota);
        }
        self.charged = charged;
        Ok(())
    }

    /// Returns `pages` to the quota.
    pub fn uncharge(&mut self, pages: u64) {
        self.charged = self.charged.saturating_sub(pages);
    }

    /// Places `pages` in the lowest free gap of `window` and inserts the
    /// region there; returns its address. File mappings start on a 2 MiB
    /// boundary; device windows keep a guard page after them.
    pub fn map_in_window(
        &mut self,
        window: Window,
        pages: u64,
        perms: Perms,
        kind: Kind,
    ) -> Result<u64, VmError> {
        self.map_in_window_at(window, 0, pages, perms, kind)
    }

    /// Like [`VmSpace::map_in_window`], but the start is `phase` bytes past
    /// an alignment boundary of the window (for `fs_map`: the file's offset
    /// inside its 2 MiB ramdisk page, so whole 2 MiB pieces map with large
    /// pages). `phase` must be page-aligned and below the alignment.
    pub fn map_in_window_at(
        &mut self,
        window: Window,
        phase: u64,
        pages: u64,
        perms: Perms,
        kind: Kind,
    ) -> Result<u64, VmError> {
        let (base, limit, align, guard) = match window {
            Window::File => (FILE_MAP_BASE, DEVICE_MAP_BASE, FILE_ALIGN, 0),
            Window::Device => (DEVICE_MAP_BASE, DEVICE_MAP_END, PAGE, PAGE),
        };
        if pages == 0 {
            return Err(VmError::BadLength);
        }
        if !phase.is_multiple_of(PAGE) {
            return Err(VmError::Misaligned);
        }
        if phase >= align {
            return Err(VmError::OutsideUser);
        }
        // Room for the mapping and its guard.
        let len = pages
            .checked_mul(PAGE)
            .and_then(|l| l.checked_add(guard))
            .ok_or(VmError::NoSpace)?;
        let mut candidate = base.checked_add(phase).ok_or(VmError::NoSpace)?;
        for r in self.regions() {
            if r.end() <= candidate.saturating_sub(guard) {
                continue;
            }
            let fits = candidate.checked_add(len).is_some_and(|end| end <= r.start);
            if fits {
                break;
            }
            // The lowest start after r (and r's guard) with the right phase.
            let after = r.end().checked_add(guard).ok_or(VmError::NoSpace)?;
            candidate = phased_at_or_above(after, align, phase).ok_or(VmError::NoSpace)?;
        }
        let end = candidate.checked_add(len).ok_or(VmError::NoSpace)?;
        if end > limit {
            return Err(VmError::NoSpace);
        }
        self.insert(Region {
            start: candidate,
            pages,
            perms,
            kind,
        })?;
        Ok(candidate)
    }

    /// May the shard read (and, if `write`, write) every byte of
    /// `[va, va + len)`? The first gate of the kernel's checked user
    /// pointers.
    ///
    /// `len == 0` touches nothing and passes for any user-half `va`
    /// (`va <= USER_END`); calls whose lengths must be non-zero check that
    /// themselves. Otherwise the range must not wrap, must end at or below
    /// `USER_END`, and every page must lie in consecutive regions with the
    /// needed permissions (guards, gaps and read-only regions fail). Device
    /// (MMIO) windows always fail: the kernel never touches device registers
    /// on a shard's behalf.
    pub fn check_user_range(&self, va: u64, len: u64, write: bool) -> Result<(), Error> {
        if len == 0 {
            return if va <= USER_END {
                Ok(())
            } else {
                Err(Error::BadAddress)
            };
        }
        let end = va.checked_add(len).ok_or(Error::BadAddress)?;
        if end > USER_END {
            return Err(Error::BadAddress);
        }
        let regions = self.regions();
        // The last region starting at or below va (a search on starts only).
        let mut i = regions
            .partition_point(|r| r.start <= va)
            .checked_sub(1)
            .ok_or(Error::BadAddress)?;
        let mut pos = va;
        loop {
            let r = regions.get(i).ok_or(Error::BadAddress)?;
            let r_end = r.end();
            if r.start > pos
                || pos >= r_end
                || !r.perms.read()
                || (write && !r.perms.write())
                || r.kind == Kind::Device
            {
                return Err(Error::BadAddress);
            }
            if r_end >= end {
                return Ok(());
            }
            pos = r_end;
            i = i.saturating_add(1);
        }
    }
}

/// The lowest `x >= v` with `x % align == phase` (`align` a power of two,
/// `phase < align`).
fn phased_at_or_above(v: u64, align: u64, phase: u64) -> Option<u64> {
    let mask = align.checked_sub(1)?;
    let x = (v & !mask).checked_add(phase)?;
    if x >= v {
        Some(x)
    } else {
        x.checked_add(align)
    }
}

#[cfg(test)]
mod tests;
