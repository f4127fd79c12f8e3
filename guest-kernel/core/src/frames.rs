//! The physical frame allocator.
//!
//! # Representation: two bitmaps and a summary
//!
//! A bitmap over physical addresses `[0, WORDS * 64 * 4096)`: one bit per
//! 4 KiB frame says *free*, a second says *handed out since boot*. The VMM
//! gives the guest zeroed RAM, so a frame never handed out is known to be
//! zero and the kernel can skip zeroing it (on kvm-pvm zeroing a page in ring
//! 0 costs ~0.3 ms). A third, small bitmap has one bit per word of the free
//! bitmap (set when that word has a free frame), so [`Frames::alloc`] finds a
//! free frame in two word scans of at most [`SUMMARY_WORDS`] words — a
//! handful of instructions in the common case, because the summary's first
//! non-zero word is usually the first one looked at.
//!
//! A bitmap rather than a run list because frees come back in any order
//! and its cost is fixed: 2 bits per frame, i.e. 64 KiB per GiB covered
//! (256 KiB + 2 KiB for the 4 GiB maximum, [`MAX_WORDS`]). Memory above the
//! covered range is ignored ([`Frames::ignored_bytes`] says how much).
//!
//! Frame 0 is never handed out (a zero physical address is too easy to
//! confuse with "none").

/// Frame size.
pub const PAGE: u64 = 4096;
/// Largest bitmap: 16384 words of 64 frames = 4 GiB.
pub const MAX_WORDS: usize = 16384;
/// Summary words (one bit per bitmap word, for [`MAX_WORDS`]).
pub const SUMMARY_WORDS: usize = MAX_WORDS / 64;

const BITS: u64 = 64;
const WORD_BITS: usize = 64;

/// Why a frame could not be freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not page-aligned or outside the covered range.
    BadAddress,
    /// The frame is free already, reserved, or was never handed out.
    NotAllocated,
}

/// One allocated frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Physical address.
    pub addr: u64,
    /// Known to be all zeros (never handed out since boot).
    pub zeroed: bool,
}

/// Physically contiguous frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Physical address of the first frame.
    pub addr: u64,
    /// Number of frames.
    pub frames: u64,
    /// Every frame is known to be zero.
    pub zeroed: bool,
}

/// The allocator over `WORDS * 64` frames (see the module documentation).
#[derive(Debug)]
pub struct Frames<const WORDS: usize> {
    free: [u64; WORDS],
    used: [u64; WORDS],
    summary: [u64; SUMMARY_WORDS],
    free_count: u64,
    ignored: u64,
}

impl<const WORDS: usize> Default for Frames<WORDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const WORDS: usize> Frames<WORDS> {
    const FITS: () = assert!(
        WORDS <= MAX_WORDS && WORDS > 0,
        "WORDS must be 1..=MAX_WORDS"
    );

    /// An allocator with no usable memory yet (`const`, so it can be a static).
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::FITS;
        Frames {
            free: [0; WORDS],
            used: [0; WORDS],
            summary: [0; SUMMARY_WORDS],
            free_count: 0,
            ignored: 0,
        }
    }

    /// One past the highest physical address covered.
    pub const fn limit(&self) -> u64 {
        (WORDS as u64).saturating_mul(BITS * PAGE)
    }

    /// Frames currently free.
    pub const fn free_frames(&self) -> u64 {
        self.free_count
    }

    /// Bytes of usable memory given to [`Frames::add_usable`] that lie above [`Frames::limit`].
    pub const fn ignored_bytes(&self) -> u64 {
        self.ignored
    }

    /// Builds the free pool from a memory map: every `(start, len)` range
    /// in `usable`, minus every range in `reserved` (applied after all usable
    /// ranges, so their order does not matter).
    pub fn init(&mut self, usable: &[(u64, u64)], reserved: &[(u64, u64)]) {
        for &(start, len) in usable {
            self.add_usable(start, len);
        }
        for &(start, len) in reserved {
            self.reserve(start, len);
        }
    }

    /// Adds the whole frames inside `[start, start + len)` as free memory.
    /// Call for every usable range of the memory map, then [`Frames::reserve`].
    pub fn add_usable(&mut self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        let first = start.div_ceil(PAGE).max(1);
        let last = end / PAGE; // exclusive
        let covered = self.limit() / PAGE;
        if last > covered {
            let above = last.saturating_sub(first.max(covered));
            self.ignored = self.ignored.saturating_add(above.saturating_mul(PAGE));
        }
        self.set_range(first, last.min(covered), true);
    }

    /// Takes every frame touching `[start, start + len)` out of the free
    /// pool for good (the kernel image, the ramdisk, boot structures).
    pub fn reserve(&mut self, start: u64, len: u64) {
        let first = start / PAGE;
        let last = start.saturating_add(len).div_ceil(PAGE);
        let covered = self.limit() / PAGE;
        self.set_range(first, last.min(covered), false);
    }

    /// Sets the free bit of frames `first..last` a word at a time (boot
    /// marks gigabytes; one frame at a time would cost seconds of emulated
    /// ring-0 instructions on kvm-pvm).
    fn set_range(&mut self, first: u64, last: u64, free: bool) {
        if first >= last {
            return;
        }
        let (full0, full1) = (first.div_ceil(BITS), last / BITS);
        let flipped = if full0 < full1 {
            // Partial words at the ends bit by bit, whole words at one store each.
            let head = fill_bits(&mut self.free, first, full0.saturating_mul(BITS), free);
            let tail = fill_bits(&mut self.free, full1.saturating_mul(BITS), last, free);
            let middle = self.fill_words(full0 as usize, full1 as usize, free);
            head.saturating_add(tail).saturating_add(middle)
        } else {
            fill_bits(&mut self.free, first, last, free)
        };
        self.free_count = if free {
            self.free_count.saturating_add(flipped)
        } else {
            self.free_count.saturating_sub(flipped)
        };
        // Words wholly inside the range are now all free or all taken; the
        // (at most two) partial words at the ends are looked at.
        let (w0, w1) = (
            (first / BITS) as usize,
            (last.saturating_sub(1) / BITS) as usize,
        );
        if full0 < full1 {
            fill_bits(&mut self.summary, full0, full1, free);
        }
        for index in [w0, w1] {
            let nonempty = self.free.get(index).is_some_and(|&w| w != 0);
            self.update_summary(index, nonempty);
        }
    }

    /// Sets free-bitmap words `w0..w1` to all free (or all taken) and
    /// returns how many bits changed. Must run before the summary of those
    /// words is updated: only words the summary marks non-empty are read
    /// (the others are zero), so marking gigabytes at boot costs one store
    /// per word (`fill` becomes `rep stosq`) instead of a read, a count and
    /// a store, each emulated in ring 0 on kvm-pvm.
    fn fill_words(&mut self, w0: usize, w1: usize, free: bool) -> u64 {
        let w1 = w1.min(self.free.len());
        if w0 >= w1 {
            return 0;
        }
        let mut set_before: u64 = 0;
        let mut i = w0;
        while i < w1 {
            let shift = i % WORD_BITS;
            let sword = self.summary.get(i / WORD_BITS).copied().unwrap_or(0) >> shift;
            if sword == 0 {
                // No non-empty word in the rest of this summary word.
                i = (i / WORD_BITS).saturating_add(1).saturating_mul(WORD_BITS);
                continue;
            }
            let j = i.saturating_add(sword.trailing_zeros() as usize);
            if j >= w1 {
                break;
            }
            let ones = self.free.get(j).map_or(0, |w| w.count_ones());
            set_before = set_before.saturating_add(u64::from(ones));
            i = j.saturating_add(1);
        }
        if let Some(words) = self.free.get_mut(w0..w1) {
            words.fill(if free { u64::MAX } else { 0 });
        }
        let total = (w1.saturating_sub(w0) as u64).saturating_mul(BITS);
        if free {
            total.saturating_sub(set_before)
        } else {
            set_before
        }
    }

    fn update_summary(&mut self, index: usize, nonempty: bool) {
        if let Some(s) = self.summary.get_mut(index / WORD_BITS) {
            let sbit = 1 << (index % WORD_BITS);
            if nonempty {
                *s |= sbit;
            } else {
                *s &= !sbit;
            }
        }
    }

    /// Allocates the lowest free frame.
    ///
    /// The kernel's hottest allocator path (every page of `mmap`, every
    /// page table), so it touches each word once: one summary scan, then
    /// the free and used words of one index.
    pub fn alloc(&mut self) -> Option<Frame> {
        let (si, &sword) = self.summary.iter().enumerate().find(|(_, w)| **w != 0)?;
        let index = si
            .checked_mul(WORD_BITS)?
            .checked_add(sword.trailing_zeros() as usize)?;
        let free = self.free.get_mut(index)?;
        let bit_no = free.trailing_zeros();
        let bit = 1u64.checked_shl(bit_no)?;
        *free &= !bit;
        let emptied = *free == 0;
        let used = self.used.get_mut(index)?;
        let zeroed = *used & bit == 0;
        *used |= bit;
        self.free_count = self.free_count.saturating_sub(1);
        if emptied {
            self.update_summary(index, false);
        }
        let frame = (index as u64)
            .checked_mul(BITS)?
            .checked_add(u64::from(bit_no))?;
        Some(Frame {
            addr: frame.checked_mul(PAGE)?,
            zeroed,
        })
    }

    /// Allocates `count` physically contiguous frames ending at or below
    /// `below` (e.g. `1 << 32` for 32-bit DMA; `u64::MAX` for no limit),
    /// the lowest such run. Slow (a linear scan): for device buffers only.
    pub fn alloc_contiguous(&mut self, count: u64, below: u64) -> Option<Run> {
        if count == 0 {
            return None;
        }
        let end = (below.min(self.limit())) / PAGE;
        let mut run_start = 1;
        let mut frame = 1;
        while frame < end {
            if frame.is_multiple_of(BITS) && self.free_word(frame) == 0 {
                // a whole word without a free frame: skip it
                frame = frame.saturating_add(BITS);
                run_start = frame;
                continue;
            }
            if !self.is_free(frame) {
                frame = frame.saturating_add(1);
                run_start = frame;
                continue;
            }
            frame = frame.saturating_add(1);
            if frame.saturating_sub(run_start) == count {
                return Some(self.take_run(run_start, count));
            }
        }
        None
    }

    fn take_run(&mut self, first: u64, count: u64) -> Run {
        let mut zeroed = true;
        for frame in first..first.saturating_add(count) {
            zeroed &= !self.is_used(frame);
            self.set_free(frame, false);
            self.mark_used(frame, true);
        }
        Run {
            addr: first.saturating_mul(PAGE),
            frames: count,
            zeroed,
        }
    }

    /// Returns a frame (its contents are treated as dirty).
    ///
    /// Like [`Frames::alloc`], one look at the frame's two words.
    pub fn free(&mut self, addr: u64) -> Result<(), FrameError> {
        if !addr.is_multiple_of(PAGE) || addr >= self.limit() || addr == 0 {
            return Err(FrameError::BadAddress);
        }
        let frame = addr / PAGE;
        let index = (frame / BITS) as usize;
        let bit = 1u64 << (frame % BITS);
        let used = self.used.get(index).copied().unwrap_or(0);
        let free = self.free.get_mut(index).ok_or(FrameError::BadAddress)?;
        // Allocated = handed out (used) and not free; reserved frames were
        // never handed out, so they cannot be freed.
        if *free & bit != 0 || used & bit == 0 {
            return Err(FrameError::NotAllocated);
        }
        let was_empty = *free == 0;
        *free |= bit;
        self.free_count = self.free_count.saturating_add(1);
        if was_empty {
            self.update_summary(index, true);
        }
        Ok(())
    }

    /// Returns a frame the caller guarantees is all zeros, so the next
    /// [`Frames::alloc`] of it reports `zeroed`.
    pub fn free_zeroed(&mut self, addr: u64) -> Result<(), FrameError> {
        let frame = self.check_allocated(addr)?;
        self.set_free(frame, true);
        self.mark_used(frame, false);
        Ok(())
    }

    fn check_allocated(&self, addr: u64) -> Result<u64, FrameError> {
        if !addr.is_multiple_of(PAGE) || addr >= self.limit() || addr == 0 {
            return Err(FrameError::BadAddress);
        }
        let frame = addr / PAGE;
        // Allocated = handed out (used) and not free. Reserved frames were
        // never handed out, so they cannot be freed.
        if self.is_free(frame) || !self.is_used(frame) {
            return Err(FrameError::NotAllocated);
        }
        Ok(frame)
    }

    /// Is the frame at physical address `addr` free?
    pub fn is_free_addr(&self, addr: u64) -> bool {
        self.is_free(addr / PAGE)
    }

    fn free_word(&self, frame: u64) -> u64 {
        self.free.get((frame / BITS) as usize).copied().unwrap_or(0)
    }

    fn is_free(&self, frame: u64) -> bool {
        self.free_word(frame) & (1 << (frame % BITS)) != 0
    }

    fn is_used(&self, frame: u64) -> bool {
        let word = self.used.get((frame / BITS) as usize).copied().unwrap_or(0);
        word & (1 << (frame % BITS)) != 0
    }

    fn mark_used(&mut self, frame: u64, used: bool) {
        if let Some(word) = self.used.get_mut((frame / BITS) as usize) {
            let bit = 1 << (frame % BITS);
            if used {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    /// Sets a frame's free bit, keeping the count and the summary right.
    fn set_free(&mut self, frame: u64, free: bool) {
        let index = (frame / BITS) as usize;
        let Some(word) = self.free.get_mut(index) else {
            return;
        };
        let bit = 1 << (frame % BITS);
        let was_free = *word & bit != 0;
        if was_free == free {
            return;
        }
        if free {
            *word |= bit;
            self.free_count = self.free_count.saturating_add(1);
        } else {
            *word &= !bit;
            self.free_count = self.free_count.saturating_sub(1);
        }
        let nonempty = *word != 0;
        self.update_summary(index, nonempty);
    }
}

/// Sets (`on`) or clears bits `first..last` of a bitmap, whole words at a
/// time where it can; returns how many bits changed. Bits past the end of
/// `words` are ignored.
fn fill_bits(words: &mut [u64], first: u64, last: u64, on: bool) -> u64 {
    let mut flipped: u64 = 0;
    let mut bit = first;
    while bit < last {
        let index = (bit / BITS) as usize;
        let lo = bit % BITS;
        if lo == 0 && last.saturating_sub(bit) >= BITS {
            let end = ((last / BITS) as usize).min(words.len());
            let Some(run) = words.get_mut(index..end) else {
                return flipped;
            };
            for w in run {
                let flips = if on { !*w } else { *w };
                if flips != 0 {
                    flipped = flipped.saturating_add(if flips == u64::MAX {
                        BITS
                    } else {
                        u64::from(flips.count_ones())
                    });
                    *w = if on { u64::MAX } else { 0 };
                }
            }
            if end <= index {
                return flipped;
            }
            bit = (end as u64).saturating_mul(BITS);
            continue;
        }
        let span = BITS.saturating_sub(lo).min(last.saturating_sub(bit));
        let mask = if span >= BITS {
            u64::MAX
        } else {
            ((1u64 << span).wrapping_sub(1)) << lo
        };
        let Some(w) = words.get_mut(index) else {
            return flipped;
        };
        let flips = if on { mask & !*w } else { mask & *w };
        flipped = flipped.saturating_add(u64::from(flips.count_ones()));
        *w ^= flips;
        bit = bit.saturating_add(span);
    }
    flipped
}

#[cfg(test)]
mod tests;
