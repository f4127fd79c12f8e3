//! The global allocator: memory comes from `mmap` at the heap's end.
//!
//! The heap starts at `ShardInfo::heap_end` (== `heap_start` at start) and
//! only grows: `mmap(va, pages)` must be called with `va` = the current end,
//! which this allocator tracks. Growth is at least [`GROW_MIN_PAGES`] pages
//! per call to keep kernel entries rare.
//!
//! Blocks up to one page come from power-of-two size classes (16 B..4 KiB),
//! each with its own free list; a class block is aligned to its size.
//! Larger blocks are whole pages, recycled through a first-fit list that
//! splits but does not merge. Simple and predictable, which is what short
//! shard programs need; free memory is never returned to the kernel (the ABI
//! has no unmap).

use crate::lock::SpinLock;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

const PAGE: u64 = 4096;
const MIN_CLASS_SHIFT: u32 = 4;
const MAX_CLASS_SHIFT: u32 = 12;
const CLASSES: usize = (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1) as usize;
/// Smallest growth per `mmap` (64 KiB).
pub const GROW_MIN_PAGES: u64 = 16;

/// A free large block's header, kept in its first bytes.
#[repr(C)]
struct LargeFree {
    next: u64,
    size: u64,
}

/// Where heap memory comes from: the kernel in a shard, a plain buffer in
/// the unit tests.
#[derive(Clone, Copy)]
struct Backing {
    /// The heap's first address.
    start: fn() -> u64,
    /// Maps `pages` at `va`, the current end.
    map: fn(u64, u64) -> Result<u64, coconut_abi::syscall::Error>,
}

/// The kernel: the heap starts at `ShardInfo::heap_end`, grows by `mmap`.
const KERNEL: Backing = Backing {
    start: || crate::info::info().heap_end,
    map: crate::sys::mmap,
};

struct Heap {
    backing: Backing,
    /// Next unused address (0: not yet initialised).
    bump: u64,
    /// End of the mapped heap.
    end: u64,
    /// Free-list heads per size class (0: empty); a free block's first
    /// word is the next block's address.
    small: [u64; CLASSES],
    /// Free large blocks (0: empty).
    large: u64,
}

impl Heap {
    const fn new(backing: Backing) -> Self {
        Heap {
            backing,
            bump: 0,
            end: 0,
            small: [0; CLASSES],
            large: 0,
        }
    }

    fn init(&mut self) {
        if self.bump == 0 {
            let end = (self.backing.start)();
            self.bump = end;
            self.end = end;
        }
    }

    /// Makes `[bump, bump+size)` mapped, aligned to `align`; returns its start.
    fn carve(&mut self, size: u64, align: u64) -> Option<u64> {
        self.init();
        let start = self.bump.checked_add(align - 1)? & !(align - 1);
        let new_bump = start.checked_add(size)?;
        if new_bump > self.end {
            let need = (new_bump - self.end).div_ceil(PAGE).max(GROW_MIN_PAGES);
            let mut left = need;
            while left > 0 {
                let n = left.min(coconut_abi::syscall::MMAP_PAGES_MAX);
                (self.backing.map)(self.end, n).ok()?;
                self.end += n * PAGE;
                left -= n;
            }
        }
        self.bump = new_bump;
        Some(start)
    }

    fn alloc_small(&mut self, class: usize) -> *mut u8 {
        let head = self.small[class];
        if head != 0 {
            // SAFETY: `head` is a free block of this class that we wrote a
            // next pointer into when it was freed.
            self.small[class] = unsafe { ptr::read(head as *const u64) };
            return head as *mut u8;
        }
        let size = 1u64 << (class as u32 + MIN_CLASS_SHIFT);
        self.carve(size, size)
            .map_or(ptr::null_mut(), |a| a as *mut u8)
    }

    fn alloc_large(&mut self, size: u64, align: u64) -> *mut u8 {
        // First fit among free blocks.
        let mut link: *mut u64 = &mut self.large;
        // SAFETY: every address on the list is a free, mapped large block
        // whose header we wrote in `dealloc_large`; `link` points at the
        // list head or at such a header's `next`.
        unsafe {
            while *link != 0 {
                let block = *link;
                let hdr = block as *mut LargeFree;
                let bsize = (*hdr).size;
                if block.is_multiple_of(align) && bsize >= size {
                    let next = (*hdr).next;
                    if bsize > size {
                        let rest = (block + size) as *mut LargeFree;
                        (*rest).next = next;
                        (*rest).size = bsize - size;
                        *link = rest as u64;
                    } else {
                        *link = next;
                    }
                    return block as *mut u8;
                }
                link = &mut (*hdr).next;
            }
        }
        self.carve(size, align)
            .map_or(ptr::null_mut(), |a| a as *mut u8)
    }

    /// Maps `pages` more at the end and gives all of them out: afterwards
    /// the heap ends at the returned block's end.
    fn tail(&mut self, pages: u64) -> Result<u64, coconut_abi::syscall::Error> {
        self.init();
        let start = self.end;
        (self.backing.map)(start, pages)?;
        self.end = start + pages * PAGE;
        self.bump = self.end;
        Ok(start)
    }

    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => self.alloc_small(class),
            None => self.alloc_large(large_size(layout), (layout.align() as u64).max(PAGE)),
        }
    }

    /// # Safety
    /// `p` came from [`Heap::alloc`] with the same `layout` and is not used again.
    unsafe fn dealloc(&mut self, p: *mut u8, layout: Layout) {
        match class_of(layout) {
            Some(class) => {
                // SAFETY: `p` is a block of this class the caller gives
                // back; its first word now holds the list link.
                unsafe { ptr::write(p as *mut u64, self.small[class]) };
                self.small[class] = p as u64;
            }
            None => self.dealloc_large(p as u64, large_size(layout)),
        }
    }

    fn dealloc_large(&mut self, block: u64, size: u64) {
        let hdr = block as *mut LargeFree;
        // SAFETY: the block is ours again (the caller freed it), page
        // aligned and at least one page long.
        unsafe {
            (*hdr).next = self.large;
            (*hdr).size = size;
        }
        self.large = block;
    }
}

/// Which size class a layout falls in, or `None` for page-sized blocks.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_CLASS_SHIFT);
    let shift = usize::BITS - (size - 1).leading_zeros();
    (shift <= MAX_CLASS_SHIFT).then(|| (shift - MIN_CLASS_SHIFT) as usize)
}

fn large_size(layout: Layout) -> u64 {
    (layout.size() as u64).div_ceil(PAGE) * PAGE
}

/// The runtime's allocator (installed as `#[global_allocator]`).
#[derive(Debug, Default)]
pub struct ShardHeap;

static HEAP: SpinLock<Heap> = SpinLock::new(Heap::new(KERNEL));

// SAFETY: blocks never overlap (each is carved once from the bump region
// or handed out once from a free list), are at least `layout.size()` bytes
// and aligned to `layout.align()` (class blocks are aligned to their
// power-of-two size ≥ align; large blocks to max(page, align)).
unsafe impl GlobalAlloc for ShardHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.lock().alloc(layout)
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: the caller gives back a block `alloc` returned for `layout`.
        unsafe { HEAP.lock().dealloc(p, layout) }
    }
}

#[cfg(not(test))]
#[global_allocator]
static ALLOCATOR: ShardHeap = ShardHeap;

/// Bytes the heap has mapped so far (an allocation failure panics, through
/// the runtime's panic handler).
pub fn mapped_bytes() -> u64 {
    let h = HEAP.lock();
    h.end.saturating_sub(crate::info::info().heap_start)
}

/// Maps `pages` fresh zeroed pages at the heap's end and hands them out
/// whole: afterwards the heap ends exactly at the slice's end, so the next
/// page is unmapped until the heap grows again. For shards that need page
/// granular memory or, like the fuzz shard, a known mapped/unmapped boundary.
pub fn tail_pages(pages: u64) -> Result<&'static mut [u8], coconut_abi::syscall::Error> {
    use coconut_abi::syscall::Error;
    if pages == 0 || pages > coconut_abi::syscall::MMAP_PAGES_MAX {
        return Err(Error::InvalidArgument);
    }
    let start = HEAP.lock().tail(pages)?;
    let len = usize::try_from(pages * PAGE).map_err(|_| Error::InvalidArgument)?;
    // SAFETY: the kernel just mapped these pages R+W for this shard; the
    // allocator's bump now lies past them, so nothing else hands them out.
    Ok(unsafe { core::slice::from_raw_parts_mut(start as *mut u8, len) })
}

/// The heap's current end (the first unmapped address above it).
pub fn end() -> u64 {
    let mut h = HEAP.lock();
    h.init();
    h.end
}

#[cfg(test)]
mod tests;
