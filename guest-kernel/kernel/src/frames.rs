//! Physical frames for shard memory and page tables: the kernel's side.
//!
//! Which frames are free, which were ever handed out (so are no longer known
//! to be zero) and where a contiguous run is, is coconut-core's
//! [`coconut_core::frames`] bitmap allocator, unit-tested on the host. This
//! file keeps only what needs the machine:
//!
//! * the pool's bounds: usable RAM of the PVH memory map from 2 MiB (above
//!   the kernel image and the loader's low-memory structures) to 4 GiB (the
//!   reach of the frame window), minus the boot modules (the ramdisk, whose
//!   pages are mapped into shards, never handed out);
//! * mapping that RAM into the frame window;
//! * zeroing a recycled frame (`rep stosq`) when a caller needs zeroed
//!   memory. Never-used frames are zero already (the VMM hands over zeroed
//!   RAM; zeroing costs ~0.3 ms per page in ring 0 on kvm-pvm), and core
//!   says which frames those are.

use coconut_core::frames::{Frames as Pool, MAX_WORDS};

use crate::cpu;
use crate::paging::{self, PAGE_SIZE};

/// Lowest frame handed out.
const POOL_START: u64 = 2 << 20;
/// One past the highest frame handed out (the frame window's reach).
const POOL_END: u64 = paging::DIRECT_MAP_SIZE;
/// Bitmap words covering `[0, POOL_END)` (64 frames per word).
const WORDS: usize = (POOL_END / (64 * PAGE_SIZE)) as usize;
const _: () = assert!(WORDS <= MAX_WORDS);

/// The frame allocator.
#[derive(Debug)]
pub struct Frames {
    pool: Pool<WORDS>,
    /// Frames handed out right now (for the profile and leak checks).
    pub in_use: u64,
    /// Frees the kernel got wrong (double or foreign frees); refused by core.
    pub bad_frees: u64,
    /// Recycled frames zeroed on allocation (~0.3 ms each on kvm-pvm).
    pub zeroed: u64,
}

impl Frames {
    /// An empty pool.
    pub const fn new() -> Self {
        Frames {
            pool: Pool::new(),
            in_use: 0,
            bad_frees: 0,
            zeroed: 0,
        }
    }

    /// Frames available.
    pub fn available(&self) -> u64 {
        self.pool.free_frames()
    }

    /// Adds usable RAM `[start, end)` minus the `excluded` `[start, end)`
    /// ranges, and maps it into the frame window.
    pub fn add_ram(&mut self, start: u64, end: u64, excluded: &[(u64, u64)]) {
        let start = start.max(POOL_START).next_multiple_of(PAGE_SIZE);
        let end = end.min(POOL_END) & !(PAGE_SIZE - 1);
        if start >= end || !paging::window_map(start, end - start) {
            return;
        }
        self.pool.add_usable(start, end - start);
        // Every call reserves every excluded range again, so a later usable
        // range cannot hand one back.
        for &(xs, xe) in excluded {
            self.pool.reserve(xs, xe.saturating_sub(xs));
        }
    }

    /// One frame; zeroed if `zeroed` (free for never-used frames). `None`
    /// when the pool is empty.
    pub fn alloc(&mut self, zeroed: bool) -> Option<u64> {
        let frame = self.pool.alloc()?;
        if zeroed && !frame.zeroed {
            zero_frame(frame.addr);
            self.zeroed += 1;
        }
        self.in_use += 1;
        Some(frame.addr)
    }

    /// `pages` physically contiguous zeroed frames (for DMA).
    pub fn alloc_contiguous(&mut self, pages: u64) -> Option<u64> {
        let run = self.pool.alloc_contiguous(pages, POOL_END)?;
        if !run.zeroed {
            for i in 0..run.frames {
                zero_frame(run.addr + i * PAGE_SIZE);
            }
            self.zeroed += run.frames;
        }
        self.in_use += run.frames;
        Some(run.addr)
    }

    /// Returns a frame to the pool (it is not zero any more). A frame that
    /// is not allocated is refused by core and counted in `bad_frees`.
    pub fn free(&mut self, pa: u64) {
        match self.pool.free(pa) {
            Ok(()) => self.in_use -= 1,
            Err(_) => self.bad_frees += 1,
        }
    }
}

/// Zeroes one frame through the window (`rep stosq`, 512 stores).
pub fn zero_frame(pa: u64) {
    // SAFETY: pool frames are mapped read-write in the window and owned by
    // the caller.
    unsafe { cpu::zero_qwords(paging::window(pa) as *mut u64, (PAGE_SIZE / 8) as usize) };
}
