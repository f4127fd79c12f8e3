//! Physical frames for shard memory and page tables.
//!
//! The pool is the usable RAM of the PVH memory map from 2 MiB (above the
//! kernel image and the loader's low-memory structures) to 4 GiB (the reach
//! of the kernel's frame window), minus the boot modules (the ramdisk, whose
//! pages are mapped into shards, never handed out).
//!
//! Frames come from two sources: a bump cursor over the free ranges, whose
//! frames have never been used since boot and are therefore known to be zero
//! (the VMM hands over zeroed RAM; zeroing in ring 0 costs ~0.3 ms per page
//! on kvm-pvm, so the kernel never zeroes them), and a free list of recycled
//! frames (threaded through the frames themselves, O(1) both ways), which
//! are zeroed with `rep stosq` when a caller needs zeroed memory.
//! Contiguous runs (DMA) come only from the bump cursor. The kernel switches
//! to coconut-core's `frames` module once it lands.

use crate::cpu;
use crate::paging::{self, PAGE_SIZE};

/// Most disjoint free ranges tracked.
const MAX_RANGES: usize = 32;
/// Lowest frame handed out.
const POOL_START: u64 = 2 << 20;
/// One past the highest frame handed out (the frame window's reach).
const POOL_END: u64 = paging::DIRECT_MAP_SIZE;
/// End-of-list marker of the free list.
const NIL: u64 = u64::MAX;

/// The frame allocator.
#[derive(Debug)]
pub struct Frames {
    /// Free `[start, end)` ranges, page aligned; the bump cursor is `ranges[cur].0`.
    ranges: [(u64, u64); MAX_RANGES],
    len: usize,
    cur: usize,
    /// Head of the recycled list (physical address), or [`NIL`].
    free_head: u64,
    /// Frames handed out right now (for the profile and leak checks).
    pub in_use: u64,
    /// Frames available (bump + free list).
    pub available: u64,
}

impl Frames {
    /// An empty pool.
    pub const fn new() -> Self {
        Frames {
            ranges: [(0, 0); MAX_RANGES],
            len: 0,
            cur: 0,
            free_head: NIL,
            in_use: 0,
            available: 0,
        }
    }

    /// Adds usable RAM `[start, end)` minus the `excluded` ranges, and maps
    /// it into the frame window.
    pub fn add_ram(&mut self, start: u64, end: u64, excluded: &[(u64, u64)]) {
        let start = start.max(POOL_START).next_multiple_of(PAGE_SIZE);
        let end = end.min(POOL_END) & !(PAGE_SIZE - 1);
        if start >= end {
            return;
        }
        // Cut the excluded ranges out (they are few and may be in any order).
        let mut pieces = [(start, end); MAX_RANGES];
        let mut n = 1;
        for &(xs, xe) in excluded {
            let xs = xs & !(PAGE_SIZE - 1);
            let xe = xe.next_multiple_of(PAGE_SIZE);
            let mut i = 0;
            while i < n {
                let (s, e) = pieces[i];
                if xe <= s || xs >= e {
                    i += 1;
                    continue;
                }
                // Remove piece i, add what is left on either side.
                pieces[i] = pieces[n - 1];
                n -= 1;
                if s < xs && n < MAX_RANGES {
                    pieces[n] = (s, xs);
                    n += 1;
                }
                if xe < e && n < MAX_RANGES {
                    pieces[n] = (xe, e);
                    n += 1;
                }
            }
        }
        for &(s, e) in &pieces[..n] {
            if s < e && self.len < MAX_RANGES && paging::window_map(s, e - s) {
                self.ranges[self.len] = (s, e);
                self.len += 1;
                self.available += (e - s) / PAGE_SIZE;
            }
        }
    }

    /// One frame; zeroed if `zeroed` (free for never-used frames). `None`
    /// when the pool is empty.
    pub fn alloc(&mut self, zeroed: bool) -> Option<u64> {
        if self.free_head != NIL {
            let pa = self.free_head;
            // SAFETY: a free frame's first word holds the next link; the
            // frame is in the window (only pool frames are ever freed).
            self.free_head = unsafe { (paging::window(pa) as *const u64).read() };
            if zeroed {
                zero_frame(pa);
            } else {
                // Do not leak the link to the new owner.
                // SAFETY: as above; the frame is ours now.
                unsafe { (paging::window(pa) as *mut u64).write(0) };
            }
            self.in_use += 1;
            self.available -= 1;
            return Some(pa);
        }
        self.alloc_contiguous(1)
    }

    /// `pages` physically contiguous never-used (so zero) frames.
    pub fn alloc_contiguous(&mut self, pages: u64) -> Option<u64> {
        let bytes = pages.checked_mul(PAGE_SIZE)?;
        while self.cur < self.len {
            let (s, e) = self.ranges[self.cur];
            if e - s >= bytes {
                self.ranges[self.cur].0 = s + bytes;
                self.in_use += pages;
                self.available -= pages;
                return Some(s);
            }
            if pages == 1 {
                self.cur += 1;
            } else {
                // A later range may be big enough; this one keeps its tail.
                return self.ranges[self.cur + 1..self.len]
                    .iter()
                    .position(|&(s, e)| e - s >= bytes)
                    .map(|i| {
                        let r = &mut self.ranges[self.cur + 1 + i];
                        let pa = r.0;
                        r.0 += bytes;
                        self.in_use += pages;
                        self.available -= pages;
                        pa
                    });
            }
        }
        None
    }

    /// Returns a frame to the pool (it is not zero any more).
    pub fn free(&mut self, pa: u64) {
        // SAFETY: `pa` came from this allocator, so it is a pool frame
        // mapped in the window, and its owner has dropped every mapping.
        unsafe { (paging::window(pa) as *mut u64).write(self.free_head) };
        self.free_head = pa;
        self.in_use -= 1;
        self.available += 1;
    }
}

/// Zeroes one frame through the window (`rep stosq`, 512 stores).
pub fn zero_frame(pa: u64) {
    // SAFETY: pool frames are mapped read-write in the window and owned by
    // the caller.
    unsafe { cpu::zero_qwords(paging::window(pa) as *mut u64, (PAGE_SIZE / 8) as usize) };
}
