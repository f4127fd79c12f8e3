//! The allocator's bookkeeping on the host, over a plain buffer standing in
//! for the kernel's `mmap` (which only records how far the heap was grown).

use super::*;
use coconut_abi::syscall::Error;
use std::sync::Mutex;
use std::vec::Vec;

/// A 4 MiB, page-aligned arena per test; `map` grows the "mapped" part.
struct Arena {
    base: u64,
    mapped: u64,
    limit: u64,
    calls: Vec<(u64, u64)>,
}

static ARENA: Mutex<Option<Arena>> = Mutex::new(None);
/// Tests share ARENA; run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn arena_start() -> u64 {
    ARENA.lock().unwrap().as_ref().unwrap().base
}

fn arena_map(va: u64, pages: u64) -> Result<u64, Error> {
    let mut g = ARENA.lock().unwrap();
    let a = g.as_mut().unwrap();
    assert_eq!(va, a.base + a.mapped, "mmap must be called at the heap end");
    assert!((1..=256).contains(&pages));
    if a.mapped + pages * PAGE > a.limit {
        return Err(Error::NoMemory);
    }
    a.mapped += pages * PAGE;
    a.calls.push((va, pages));
    Ok(va)
}

fn with_heap(limit_pages: u64, f: impl FnOnce(&mut Heap)) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let layout = std::alloc::Layout::from_size_align(4 << 20, 1 << 16).unwrap();
    // SAFETY: non-zero size; freed below.
    let mem = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!mem.is_null());
    *ARENA.lock().unwrap() = Some(Arena {
        base: mem as u64,
        mapped: 0,
        limit: (limit_pages * PAGE).min(4 << 20),
        calls: Vec::new(),
    });
    let mut heap = Heap::new(Backing {
        start: arena_start,
        map: arena_map,
    });
    f(&mut heap);
    // SAFETY: allocated above with this layout.
    unsafe { std::alloc::dealloc(mem, layout) };
}

fn calls() -> Vec<(u64, u64)> {
    ARENA.lock().unwrap().as_ref().unwrap().calls.clone()
}

fn l(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

#[test]
fn size_classes_cover_one_page() {
    assert_eq!(class_of(l(1, 1)), Some(0));
    assert_eq!(class_of(l(16, 8)), Some(0));
    assert_eq!(class_of(l(17, 1)), Some(1));
    assert_eq!(class_of(l(8, 64)), Some(2), "alignment rounds up the class");
    assert_eq!(class_of(l(4096, 8)), Some(8));
    assert_eq!(class_of(l(4097, 8)), None);
    assert_eq!(class_of(l(8, 8192)), None);
    assert_eq!(large_size(l(4097, 8)), 8192);
}

#[test]
fn blocks_are_aligned_disjoint_and_reused_after_free() {
    with_heap(64, |h| {
        let mut seen = Vec::new();
        for (size, align) in [
            (1, 1),
            (24, 8),
            (100, 4),
            (64, 64),
            (4000, 16),
            (4096, 4096),
        ] {
            let p = h.alloc(l(size, align)) as u64;
            assert_ne!(p, 0);
            assert_eq!(p % align as u64, 0, "{size}/{align}");
            for &(q, qs) in &seen {
                assert!(p + size as u64 <= q || q + qs <= p, "overlap");
            }
            seen.push((p, size as u64));
        }
        let a = h.alloc(l(40, 8));
        // SAFETY: a came from alloc with this layout.
        unsafe { h.dealloc(a, l(40, 8)) };
        assert_eq!(h.alloc(l(48, 8)), a, "same class reuses the freed block");
    });
}

#[test]
fn growth_is_at_least_sixteen_pages_and_contiguous() {
    with_heap(1024, |h| {
        let first = h.alloc(l(8, 8)) as u64;
        assert_eq!(first, arena_start());
        assert_eq!(calls(), [(first, GROW_MIN_PAGES)]);
        // 1 MiB + 1: one growth of 257 pages, split in ≤ 256-page calls.
        let big = h.alloc(l((1 << 20) + 1, 8)) as u64;
        assert_eq!(big % PAGE, 0);
        let c = calls();
        assert!(c.iter().all(|&(_, n)| n <= 256));
        for w in c.windows(2) {
            assert_eq!(
                w[0].0 + w[0].1 * PAGE,
                w[1].0,
                "each mmap at the previous end"
            );
        }
        assert!(h.end > big + (1 << 20));
    });
}

#[test]
fn large_blocks_are_split_and_recycled() {
    with_heap(256, |h| {
        let big = h.alloc(l(8 * 4096, 8));
        // SAFETY: from alloc with this layout.
        unsafe { h.dealloc(big, l(8 * 4096, 8)) };
        let before = h.end;
        let a = h.alloc(l(3 * 4096, 8));
        let b = h.alloc(l(5 * 4096, 8));
        assert_eq!(a, big, "first fit takes the freed block");
        assert_eq!(b as u64, big as u64 + 3 * 4096, "the rest of it follows");
        assert_eq!(h.end, before, "no growth needed");
    });
}

#[test]
fn out_of_memory_is_a_null_pointer_not_a_crash() {
    with_heap(16, |h| {
        assert!(!h.alloc(l(8, 8)).is_null());
        assert!(h.alloc(l(1 << 20, 8)).is_null());
        // Small blocks still come from what is mapped.
        assert!(!h.alloc(l(8, 8)).is_null());
    });
}

#[test]
fn tail_pages_end_the_heap() {
    with_heap(64, |h| {
        let _ = h.alloc(l(8, 8));
        let t = h.tail(2).unwrap();
        assert_eq!(h.end, t + 2 * PAGE);
        assert_eq!(h.bump, h.end);
        let next = h.alloc(l(8, 8)) as u64;
        assert!(next >= t + 2 * PAGE, "later blocks come after the tail");
    });
}
