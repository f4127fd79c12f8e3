use super::*;
use crate::testutil::Rng;
use std::boxed::Box;
use std::collections::BTreeSet;
use std::vec::Vec;

/// 64 MiB covered: 256 words.
type Small = Frames<256>;

fn small() -> Box<Small> {
    Box::new(Small::new())
}

const MIB: u64 = 1 << 20;

#[test]
fn frames_come_from_usable_ranges_minus_reservations() {
    let mut f = small();
    f.add_usable(0, 640 * 1024); // low memory, minus frame 0
    f.add_usable(MIB + 100, MIB); // unaligned: only whole frames inside count
    f.reserve(MIB, 0x3000); // "kernel image"
    assert_eq!(f.free_frames(), 159 + 255 - 2);
    let mut got = BTreeSet::new();
    while let Some(frame) = f.alloc() {
        assert!(frame.zeroed, "never handed out before");
        assert!(got.insert(frame.addr));
    }
    assert_eq!(got.len(), 159 + 255 - 2);
    assert!(!got.contains(&0));
    assert!(
        got.iter()
            .all(|&a| a < 640 * 1024 || (MIB + 0x3000..2 * MIB).contains(&a))
    );
    assert_eq!(got.first(), Some(&0x1000), "lowest first");
    assert_eq!(f.free_frames(), 0);
    assert_eq!(f.alloc(), None);
}

#[test]
fn freed_frames_are_dirty_unless_freed_zeroed() {
    let mut f = small();
    f.add_usable(0x1000, 0x3000);
    let a = f.alloc().unwrap();
    let b = f.alloc().unwrap();
    assert!(a.zeroed && b.zeroed);
    f.free(a.addr).unwrap();
    f.free_zeroed(b.addr).unwrap();
    let again: Vec<Frame> = (0..3).map(|_| f.alloc().unwrap()).collect();
    assert_eq!(
        again[0],
        Frame {
            addr: a.addr,
            zeroed: false
        }
    );
    assert_eq!(
        again[1],
        Frame {
            addr: b.addr,
            zeroed: true
        }
    );
    assert_eq!(
        again[2],
        Frame {
            addr: 0x3000,
            zeroed: true
        }
    );
}

#[test]
fn free_refuses_double_frees_reserved_and_bad_addresses() {
    let mut f = small();
    f.add_usable(0, 16 * MIB);
    f.reserve(8 * MIB, 1);
    let a = f.alloc().unwrap();
    assert_eq!(f.free(a.addr + 1), Err(FrameError::BadAddress));
    assert_eq!(f.free(0), Err(FrameError::BadAddress));
    assert_eq!(f.free(f.limit()), Err(FrameError::BadAddress));
    assert_eq!(f.free(!0xfff), Err(FrameError::BadAddress));
    assert_eq!(f.free(8 * MIB), Err(FrameError::NotAllocated), "reserved");
    assert_eq!(f.free(2 * MIB), Err(FrameError::NotAllocated), "still free");
    assert_eq!(f.free(a.addr), Ok(()));
    assert_eq!(f.free(a.addr), Err(FrameError::NotAllocated), "double free");
    assert_eq!(f.free_zeroed(a.addr), Err(FrameError::NotAllocated));
}

#[test]
fn memory_above_the_bitmap_is_ignored_and_reported() {
    let mut f = small();
    let limit = f.limit();
    assert_eq!(limit, 64 * MIB);
    f.add_usable(60 * MIB, 8 * MIB);
    assert_eq!(f.free_frames(), 4 * MIB / PAGE);
    assert_eq!(f.ignored_bytes(), 4 * MIB);
    f.add_usable(u64::MAX - 10, 100); // saturates, no overflow
    f.reserve(u64::MAX - 10, 100);
    assert_eq!(f.free_frames(), 4 * MIB / PAGE);
}

#[test]
fn contiguous_runs_respect_the_limit_and_holes() {
    let mut f = small();
    f.add_usable(0, 64 * MIB);
    // punch holes so the first 8-frame run starts at frame 20
    for hole in [3u64, 11, 19] {
        f.reserve(hole * PAGE, PAGE);
    }
    let run = f.alloc_contiguous(8, u64::MAX).unwrap();
    assert_eq!(
        run,
        Run {
            addr: 20 * PAGE,
            frames: 8,
            zeroed: true
        }
    );
    for i in 0..8 {
        assert!(!f.is_free_addr(run.addr + i * PAGE));
    }
    // a run that must end below 1 MiB
    let low = f.alloc_contiguous(16, MIB).unwrap();
    assert!(low.addr + 16 * PAGE <= MIB);
    assert_eq!(
        f.alloc_contiguous(300, MIB),
        None,
        "not enough below the limit"
    );
    assert_eq!(f.alloc_contiguous(0, u64::MAX), None);
    assert_eq!(low.addr, 28 * PAGE, "after the first run");
    // freed frames are dirty, and a run containing one says so
    for i in 0..8 {
        f.free(run.addr + i * PAGE).unwrap();
    }
    f.reserve(PAGE, 2 * PAGE);
    f.reserve(4 * PAGE, 7 * PAGE);
    f.reserve(12 * PAGE, 7 * PAGE);
    let again = f.alloc_contiguous(8, u64::MAX).unwrap();
    assert_eq!(
        again,
        Run {
            addr: run.addr,
            frames: 8,
            zeroed: false
        }
    );
}

#[test]
fn a_run_can_span_word_boundaries_and_skip_full_words() {
    let mut f = small();
    f.add_usable(0, 64 * MIB);
    f.reserve(0, 200 * PAGE); // frames 0..200 taken: words 0..3 mostly full
    let run = f.alloc_contiguous(100, u64::MAX).unwrap();
    assert_eq!(run.addr, 200 * PAGE);
    assert_eq!(f.free_frames(), 64 * MIB / PAGE - 300);
}

#[test]
fn random_alloc_free_matches_a_model() {
    let mut f = small();
    f.add_usable(0, 4 * MIB);
    f.reserve(MIB, 64 * PAGE);
    let mut rng = Rng::new(0xf4a);
    let mut held: Vec<u64> = Vec::new();
    let mut ever = BTreeSet::new();
    let total = f.free_frames();
    for _ in 0..50_000 {
        match rng.below(3) {
            0 | 1 => {
                if let Some(fr) = f.alloc() {
                    assert_eq!(fr.zeroed, !ever.contains(&fr.addr));
                    assert!(!held.contains(&fr.addr));
                    ever.insert(fr.addr);
                    held.push(fr.addr);
                } else {
                    assert_eq!(held.len() as u64, total);
                }
            }
            _ => {
                if !held.is_empty() {
                    let i = rng.below(held.len() as u64) as usize;
                    let addr = held.swap_remove(i);
                    f.free(addr).unwrap();
                    assert_eq!(f.free(addr), Err(FrameError::NotAllocated));
                }
            }
        }
        assert_eq!(f.free_frames() + held.len() as u64, total);
    }
    // hostile frees never corrupt the count
    for _ in 0..10_000 {
        let _ = f.free(rng.next());
        let _ = f.free(rng.below(4 * MIB) & !0xfff);
    }
}

#[test]
fn the_full_size_allocator_can_be_a_static() {
    static mut BIG: Frames<MAX_WORDS> = Frames::new();
    #[allow(static_mut_refs)]
    // SAFETY: only this test touches BIG.
    let big = unsafe { &mut BIG };
    assert_eq!(big.limit(), 4 << 30);
    big.add_usable(0, 8 << 30);
    assert_eq!(big.ignored_bytes(), 4 << 30);
    big.reserve(0, (4 << 30) - PAGE);
    assert_eq!(big.alloc().map(|f| f.addr), Some((4 << 30) - PAGE));
    assert_eq!(big.alloc(), None);
}

#[test]
fn word_wise_ranges_match_frame_by_frame_marking() {
    let mut rng = Rng::new(0xb175);
    for _ in 0..300 {
        let mut fast = small();
        let mut slow = small();
        for _ in 0..8 {
            let start = rng.below(70 * MIB);
            let len = rng.below(8 * MIB) >> rng.below(12);
            let usable = rng.below(3) != 0;
            if usable {
                fast.add_usable(start, len);
            } else {
                fast.reserve(start, len);
            }
            // the same, one frame at a time
            let (first, last) = if usable {
                (start.div_ceil(PAGE).max(1), (start + len) / PAGE)
            } else {
                (start / PAGE, (start + len).div_ceil(PAGE))
            };
            for frame in first..last.min(slow.limit() / PAGE) {
                slow.set_free(frame, usable);
            }
            assert_eq!(fast.free, slow.free);
            assert_eq!(fast.summary, slow.summary);
            assert_eq!(fast.free_frames(), slow.free_frames());
        }
    }
}

#[test]
fn init_applies_reservations_after_every_usable_range() {
    let mut f = small();
    // the reservation comes before the range it punches a hole in
    f.init(
        &[(0, MIB), (2 * MIB, MIB)],
        &[(2 * MIB + 0x800, 0x1000), (0, 0x10_0000 / 2)],
    );
    assert_eq!(f.free_frames(), 128 + 256 - 2);
    assert!(!f.is_free_addr(2 * MIB) && !f.is_free_addr(2 * MIB + PAGE));
    assert!(f.is_free_addr(2 * MIB + 2 * PAGE));
    assert!(!f.is_free_addr(0x7f000) && f.is_free_addr(0x80000));
}

/// The kernel adds one memory-map range at a time and reserves the boot
/// modules after each: a module inside a later range stays out of the pool.
#[test]
fn reserving_after_each_added_range_keeps_a_module_out() {
    let mut f = small();
    let module = (5 * MIB + 0x200, 2 * PAGE); // touches 3 frames
    f.add_usable(2 * MIB, MIB);
    f.reserve(module.0, module.1);
    assert_eq!(f.free_frames(), 256, "the module is not in this range");
    f.add_usable(4 * MIB, 4 * MIB);
    f.reserve(module.0, module.1);
    assert_eq!(f.free_frames(), 256 + 1024 - 3);
    let mut handed = Vec::new();
    while let Some(frame) = f.alloc() {
        handed.push(frame.addr);
    }
    assert!(
        handed
            .iter()
            .all(|&a| a + PAGE <= 5 * MIB || a >= 5 * MIB + 3 * PAGE),
        "no module frame handed out"
    );
    assert_eq!(handed.len(), 256 + 1024 - 3);
}
