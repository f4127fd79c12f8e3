use super::*;
use crate::elf::Segment;
use crate::testutil::Rng;

const CODE: u64 = 0x40_0000;
const HEAP: u64 = 0x60_0000;

type Space = VmSpace<32>;

fn region(start: u64, pages: u64, perms: Perms, kind: Kind) -> Region {
    Region {
        start,
        pages,
        perms,
        kind,
    }
}

/// The layout a shard starts with: code, data, guard, heap (empty), stack with guard, info.
fn shard() -> Space {
    let mut s = Space::new(HEAP, 1024);
    let stack_base = STACK_TOP - STACK_PAGES * PAGE;
    for r in [
        region(CODE, 4, Perms::RX, Kind::Code),
        region(CODE + 0x4000, 2, Perms::RW, Kind::Data),
        region(CODE + 0x6000, 1, Perms::NONE, Kind::Guard),
        region(stack_base - PAGE, 1, Perms::NONE, Kind::Guard),
        region(stack_base, STACK_PAGES, Perms::RW, Kind::Stack),
        region(INFO_VA, 1, Perms::R, Kind::Info),
    ] {
        s.insert(r).expect("initial layout");
    }
    s
}

#[test]
fn insert_checks_every_rule() {
    let mut s = shard();
    let n = s.regions().len();
    let cases = [
        (
            region(CODE + 1, 1, Perms::R, Kind::Data),
            VmError::Misaligned,
        ),
        (
            region(0x70_0000, 0, Perms::R, Kind::Data),
            VmError::BadLength,
        ),
        (
            region(0x70_0000, u64::MAX / 2, Perms::R, Kind::Data),
            VmError::Overflow,
        ),
        (
            region(0x1000, 1, Perms::R, Kind::Data),
            VmError::OutsideUser,
        ),
        (
            region(USER_END, 1, Perms::R, Kind::Data),
            VmError::OutsideUser,
        ),
        (
            region(0xffff_8000_0000_0000, 1, Perms::R, Kind::Data),
            VmError::OutsideUser,
        ),
        (
            region(0x70_0000, 1, Perms::new(true, true, true), Kind::Code),
            VmError::WriteExecute,
        ),
        (
            region(CODE + 0x3000, 2, Perms::R, Kind::Data),
            VmError::Overlap,
        ),
        (
            region(CODE - 0x1000, 2, Perms::R, Kind::Data),
            VmError::OutsideUser,
        ),
        (
            region(CODE + 0x5000, 1, Perms::R, Kind::Data),
            VmError::Overlap,
        ),
        (
            region(INFO_VA - 0x1000, 2, Perms::R, Kind::Data),
            VmError::Overlap,
        ),
    ];
    for (r, want) in cases {
        assert_eq!(s.insert(r), Err(want), "{r:?}");
    }
    assert_eq!(s.regions().len(), n, "nothing was added");
    assert!(s.regions().windows(2).all(|w| w[0].end() <= w[1].start));
}

#[test]
fn the_table_fills_up_with_an_error() {
    let mut s = VmSpace::<3>::new(HEAP, 0);
    for i in 0..3 {
        s.insert(region(CODE + i * 0x2000, 1, Perms::R, Kind::Data))
            .unwrap();
    }
    assert_eq!(
        s.insert(region(0x80_0000, 1, Perms::R, Kind::Data)),
        Err(VmError::Full)
    );
    assert_eq!(s.remove(CODE + 0x2000).map(|r| r.start), Ok(CODE + 0x2000));
    assert_eq!(s.remove(CODE + 0x2000), Err(VmError::NotFound));
    s.insert(region(0x80_0000, 1, Perms::R, Kind::Data))
        .unwrap();
    let starts: std::vec::Vec<u64> = s.regions().iter().map(|r| r.start).collect();
    assert_eq!(starts, [CODE, CODE + 0x4000, 0x80_0000]);
}

#[test]
fn mmap_grows_one_heap_region_at_the_heap_end() {
    let mut s = shard();
    let n = s.regions().len();
    assert_eq!(s.mmap(HEAP, 1), Ok(HEAP));
    assert_eq!(s.mmap(HEAP + PAGE, 256), Ok(HEAP + PAGE));
    assert_eq!(s.heap_end(), HEAP + 257 * PAGE);
    assert_eq!(s.regions().len(), n + 1, "one heap region");
    assert_eq!(
        s.find(HEAP + 100 * PAGE)
            .map(|r| (r.kind, r.pages, r.perms)),
        Some((Kind::Heap, 257, Perms::RW))
    );
    assert_eq!(s.charged(), 257);
}

#[test]
fn mmap_refuses_the_coconut_fuzz_cases() {
    let mut s = shard();
    s.mmap(HEAP, 2).unwrap();
    let end = s.heap_end();
    assert_eq!(s.mmap(end + 1, 1), Err(VmError::Misaligned), "unaligned");
    assert_eq!(s.mmap(end, 0), Err(VmError::BadLength), "0 pages");
    assert_eq!(s.mmap(end, 257), Err(VmError::BadLength), "257 pages");
    assert_eq!(
        s.mmap(CODE, 1),
        Err(VmError::NotHeapEnd),
        "overlapping code"
    );
    assert_eq!(
        s.mmap(STACK_TOP - PAGE, 1),
        Err(VmError::NotHeapEnd),
        "overlapping stack"
    );
    assert_eq!(
        s.mmap(end + PAGE, 1),
        Err(VmError::NotHeapEnd),
        "non-contiguous"
    );
    assert_eq!(s.mmap(!0xfff, 256), Err(VmError::NotHeapEnd), "overflow");
    // overflow and the stack, had the heap reached them
    let mut top = Space::new(u64::MAX - 0xfff, 1024);
    assert_eq!(top.mmap(u64::MAX - 0xfff, 2), Err(VmError::Overflow));
    let stack_base = STACK_TOP - STACK_PAGES * PAGE;
    let mut near = shard();
    near.heap_end = stack_base - 4 * PAGE;
    assert_eq!(near.mmap(stack_base - 4 * PAGE, 8), Err(VmError::Overlap));
    assert_eq!(
        near.mmap(stack_base - 4 * PAGE, 3),
        Ok(stack_base - 4 * PAGE)
    );
    let mut edge = Space::new(USER_END - PAGE, 10);
    assert_eq!(edge.mmap(USER_END - PAGE, 2), Err(VmError::OutsideUser));
    // the state is untouched by refusals
    assert_eq!(s.heap_end(), end);
    assert_eq!(s.charged(), 2);
}

#[test]
fn mmap_and_charge_obey_the_quota() {
    let mut s = VmSpace::<8>::new(HEAP, 300);
    s.mmap(HEAP, 256).unwrap();
    assert_eq!(s.mmap(s.heap_end(), 45), Err(VmError::Quota));
    s.charge(40).unwrap();
    assert_eq!(s.charge(5), Err(VmError::Quota));
    assert_eq!(s.charge(u64::MAX), Err(VmError::Quota));
    s.uncharge(40);
    assert_eq!(s.mmap(s.heap_end(), 44), Ok(HEAP + 256 * PAGE));
    assert_eq!(Error::from(VmError::Quota), Error::NoMemory);
    assert_eq!(Error::from(VmError::Overlap), Error::Overlap);
    assert_eq!(Error::from(VmError::Misaligned), Error::InvalidArgument);
}

#[test]
fn window_placement_finds_aligned_gaps() {
    let mut s = shard();
    let a = s
        .map_in_window(Window::File, 3, Perms::R, Kind::File)
        .unwrap();
    assert_eq!(a, FILE_MAP_BASE);
    let b = s
        .map_in_window(Window::File, 1, Perms::R, Kind::File)
        .unwrap();
    assert_eq!(b, FILE_MAP_BASE + FILE_ALIGN, "next 2 MiB boundary");
    s.remove(a).unwrap();
    let c = s
        .map_in_window(Window::File, 512, Perms::R, Kind::File)
        .unwrap();
    assert_eq!(c, FILE_MAP_BASE, "a freed gap is reused when it fits");
    let d = s
        .map_in_window(Window::File, 513, Perms::R, Kind::File)
        .unwrap();
    assert_eq!(d, FILE_MAP_BASE + 2 * FILE_ALIGN);
    let dev = s
        .map_in_window(Window::Device, 2, Perms::RW, Kind::Device)
        .unwrap();
    let dma = s
        .map_in_window(Window::Device, 1, Perms::RW, Kind::Dma)
        .unwrap();
    assert_eq!(
        (dev, dma),
        (DEVICE_MAP_BASE, DEVICE_MAP_BASE + 3 * PAGE),
        "one guard page between device windows"
    );
    let window_pages = (DEVICE_MAP_BASE - FILE_MAP_BASE) / PAGE;
    assert_eq!(
        s.map_in_window(Window::File, window_pages, Perms::R, Kind::File),
        Err(VmError::NoSpace)
    );
    assert_eq!(
        s.map_in_window(Window::File, u64::MAX, Perms::R, Kind::File),
        Err(VmError::NoSpace)
    );
    assert_eq!(
        s.map_in_window(Window::File, 0, Perms::R, Kind::File),
        Err(VmError::BadLength)
    );
    assert_eq!(
        s.map_in_window(
            Window::Device,
            1,
            Perms::new(true, true, true),
            Kind::Device
        ),
        Err(VmError::WriteExecute)
    );
}

#[test]
fn user_ranges_are_checked_like_the_fuzz_shard_does() {
    let mut s = shard();
    s.mmap(HEAP, 4).unwrap();
    let data = CODE + 0x4000;
    let bad = Err(Error::BadAddress);
    // fine
    assert_eq!(s.check_user_range(data, 2 * PAGE, true), Ok(()));
    assert_eq!(s.check_user_range(CODE, 100, false), Ok(()));
    assert_eq!(s.check_user_range(INFO_VA, 4096, false), Ok(()));
    assert_eq!(
        s.check_user_range(data, 0, true),
        Ok(()),
        "len 0 touches nothing"
    );
    // code and info are read-only; guards and gaps are not mapped
    assert_eq!(s.check_user_range(CODE, 1, true), bad);
    assert_eq!(s.check_user_range(INFO_VA, 8, true), bad);
    assert_eq!(
        s.check_user_range(CODE + 0x6000, 1, false),
        bad,
        "guard page"
    );
    assert_eq!(s.check_user_range(0, 1, false), bad, "null");
    assert_eq!(
        s.check_user_range(data + PAGE, 2 * PAGE, false),
        bad,
        "runs into the guard"
    );
    assert_eq!(
        s.check_user_range(HEAP + 4 * PAGE - 1, 2, false),
        bad,
        "straddles the heap end"
    );
    // kernel half, wrap-around, past the stack
    assert_eq!(s.check_user_range(0xffff_8000_0000_0000, 8, false), bad);
    assert_eq!(s.check_user_range(0xffff_8000_0000_0000, 0, false), bad);
    assert_eq!(s.check_user_range(u64::MAX, 2, false), bad);
    assert_eq!(s.check_user_range(data, u64::MAX, false), bad);
    assert_eq!(
        s.check_user_range(STACK_TOP, 1, false),
        bad,
        "past the stack"
    );
    assert_eq!(s.check_user_range(STACK_TOP - 8, 16, true), bad);
    assert_eq!(s.check_user_range(STACK_TOP - 8, 8, true), Ok(()));
    // spanning two adjacent regions with the right rights is fine
    let mut t = Space::new(HEAP, 10);
    t.insert(region(0x50_0000, 1, Perms::RW, Kind::Data))
        .unwrap();
    t.insert(region(0x50_1000, 1, Perms::RW, Kind::Dma))
        .unwrap();
    assert_eq!(t.check_user_range(0x50_0ff0, 0x20, true), Ok(()));
}

#[test]
fn random_operations_keep_the_invariants() {
    let mut rng = Rng::new(0x5ace);
    let mut s = shard();
    for _ in 0..20_000 {
        let va = match rng.below(3) {
            0 => rng.next(),
            1 => CODE + (rng.below(0x400) << 12),
            _ => s.heap_end(),
        };
        let pages = rng.below(300);
        match rng.below(4) {
            0 => {
                let perms = Perms::new(true, rng.below(2) == 0, rng.below(2) == 0);
                let _ = s.insert(region(va, pages, perms, Kind::Data));
            }
            1 => {
                let _ = s.mmap(va, pages);
            }
            2 => {
                let _ = s.remove(va);
            }
            _ => {
                let len = rng.next() >> rng.below(64);
                if s.check_user_range(va, len, true).is_ok() && len > 0 {
                    let r = s.find(va).expect("checked start is mapped");
                    assert!(r.perms.write());
                }
            }
        }
        let rs = s.regions();
        assert!(rs.windows(2).all(|w| w[0].end() <= w[1].start));
        assert!(
            rs.iter()
                .all(|r| r.perms.is_wx_safe() && r.start >= USER_MIN && r.end() <= USER_END)
        );
        assert!(s.charged() <= 1024);
    }
}

#[test]
fn device_windows_keep_a_guard_page_and_reuse_freed_gaps() {
    let mut s = shard();
    let a = s
        .map_in_window(Window::Device, 1, Perms::RW, Kind::Device)
        .unwrap();
    let b = s
        .map_in_window(Window::Device, 4, Perms::RW, Kind::Dma)
        .unwrap();
    let c = s
        .map_in_window(Window::Device, 1, Perms::R, Kind::Device)
        .unwrap();
    assert_eq!(a, DEVICE_MAP_BASE);
    assert_eq!(b, a + 2 * PAGE);
    assert_eq!(c, b + 5 * PAGE);
    assert_eq!(s.find(a + PAGE), None, "the guard page is not mapped");
    s.remove(b).unwrap();
    let d = s
        .map_in_window(Window::Device, 3, Perms::RW, Kind::Dma)
        .unwrap();
    assert_eq!(d, b, "3 pages + guard fit where 4 + guard were");
    let e = s
        .map_in_window(Window::Device, 1, Perms::RW, Kind::Dma)
        .unwrap();
    assert_eq!(
        e,
        c + 2 * PAGE,
        "1 page + guard do not fit in the 1 page left"
    );
}

#[test]
fn file_windows_start_at_the_asked_phase_of_a_2mib_slot() {
    let mut s = shard();
    let a = s
        .map_in_window_at(Window::File, 0x3000, 2, Perms::R, Kind::File)
        .unwrap();
    assert_eq!(a, FILE_MAP_BASE + 0x3000);
    // Past a's end (FILE_MAP_BASE + 0x5000), the next start with phase 0x1000.
    let b = s
        .map_in_window_at(Window::File, 0x1000, 1, Perms::R, Kind::File)
        .unwrap();
    assert_eq!(b, FILE_MAP_BASE + 0x1000, "fits below a");
    let b2 = s
        .map_in_window_at(Window::File, 0x1000, 3, Perms::R, Kind::File)
        .unwrap();
    assert_eq!(
        b2,
        FILE_MAP_BASE + FILE_ALIGN + 0x1000,
        "does not fit below a"
    );
    // Phase 0x6000 fits in a's slot after a.
    let c = s
        .map_in_window_at(Window::File, 0x6000, 1, Perms::R, Kind::File)
        .unwrap();
    assert_eq!(c, FILE_MAP_BASE + 0x6000);
    assert_eq!(
        s.map_in_window_at(Window::File, 0x10, 1, Perms::R, Kind::File),
        Err(VmError::Misaligned)
    );
    assert_eq!(
        s.map_in_window_at(Window::File, FILE_ALIGN, 1, Perms::R, Kind::File),
        Err(VmError::OutsideUser)
    );
    assert_eq!(
        s.map_in_window_at(Window::Device, PAGE, 1, Perms::R, Kind::Device),
        Err(VmError::OutsideUser),
        "device windows are page-aligned: no phase"
    );
    let window_pages = (DEVICE_MAP_BASE - FILE_MAP_BASE) / PAGE;
    assert_eq!(
        s.map_in_window_at(Window::File, 0x1000, window_pages - 1, Perms::R, Kind::File),
        Err(VmError::NoSpace)
    );
}

#[test]
fn user_pointers_into_device_windows_are_refused() {
    let mut s = shard();
    let mmio = s
        .map_in_window(Window::Device, 1, Perms::RW, Kind::Device)
        .unwrap();
    let dma = s
        .map_in_window(Window::Device, 1, Perms::RW, Kind::Dma)
        .unwrap();
    assert_eq!(s.check_user_range(mmio, 8, false), Err(Error::BadAddress));
    assert_eq!(s.check_user_range(mmio, 8, true), Err(Error::BadAddress));
    assert_eq!(
        s.check_user_range(dma, 8, true),
        Ok(()),
        "DMA memory is RAM"
    );
}

#[test]
fn the_heap_never_grows_into_the_file_window() {
    let mut s = Space::new(FILE_MAP_BASE - 2 * PAGE, 1024);
    assert_eq!(
        s.mmap(FILE_MAP_BASE - 2 * PAGE, 2),
        Ok(FILE_MAP_BASE - 2 * PAGE)
    );
    assert_eq!(s.mmap(FILE_MAP_BASE, 1), Err(VmError::NoSpace));
    assert_eq!(Error::from(VmError::NoSpace), Error::NoMemory);
    let mut t = Space::new(FILE_MAP_BASE - PAGE, 1024);
    assert_eq!(t.mmap(FILE_MAP_BASE - PAGE, 2), Err(VmError::NoSpace));
    assert_eq!((t.heap_end(), t.charged()), (FILE_MAP_BASE - PAGE, 0));
    assert_eq!(t.quota(), 1024);
}

#[test]
fn a_shard_starts_with_its_segments_stack_guard_and_info_page() {
    let text = Segment {
        vaddr: CODE + 0x120,
        memsz: 0x2000,
        offset: 0x120,
        filesz: 0x2000,
        perms: Perms::RX,
    };
    let data = Segment {
        vaddr: CODE + 0x3000,
        memsz: 0x1800,
        offset: 0x3000,
        filesz: 0x100,
        perms: Perms::RW,
    };
    let end = data.page_end();
    let s = VmSpace::<16>::for_shard(&[text, data], end, 7).unwrap();
    let stack_base = STACK_TOP - STACK_PAGES * PAGE;
    let got: std::vec::Vec<_> = s
        .regions()
        .iter()
        .map(|r| (r.start, r.pages, r.kind))
        .collect();
    assert_eq!(
        got,
        [
            (CODE, 3, Kind::Code),
            (CODE + 0x3000, 2, Kind::Data),
            (stack_base - PAGE, 1, Kind::Guard),
            (stack_base, STACK_PAGES, Kind::Stack),
            (INFO_VA, 1, Kind::Info),
        ]
    );
    assert_eq!(s.heap_end(), end + PAGE, "one guard page above the image");
    assert_eq!((s.quota(), s.charged()), (7, 0));
    assert_eq!(s.check_user_range(CODE, 8, true), Err(Error::BadAddress));
    assert_eq!(s.check_user_range(CODE + 0x3000, 0x2000, true), Ok(()));
    assert_eq!(s.check_user_range(end, 1, false), Err(Error::BadAddress));
}

#[test]
fn a_shard_layout_that_collides_is_refused() {
    let wx = Segment {
        vaddr: CODE,
        memsz: 0x1000,
        offset: 0,
        filesz: 0x1000,
        perms: Perms::new(true, true, true),
    };
    assert_eq!(
        VmSpace::<16>::for_shard(&[wx], CODE + PAGE, 0).map(|_| ()),
        Err(VmError::WriteExecute)
    );
    let over_stack = Segment {
        vaddr: STACK_TOP - PAGE,
        memsz: 0x1000,
        offset: 0,
        filesz: 0x1000,
        perms: Perms::R,
    };
    assert_eq!(
        VmSpace::<16>::for_shard(&[over_stack], STACK_TOP, 0).map(|_| ()),
        Err(VmError::Overlap)
    );
    let low = Segment {
        vaddr: 0x1000,
        memsz: 0x1000,
        offset: 0,
        filesz: 0x1000,
        perms: Perms::R,
    };
    assert_eq!(
        VmSpace::<16>::for_shard(&[low], 0x2000, 0).map(|_| ()),
        Err(VmError::OutsideUser)
    );
    assert_eq!(
        VmSpace::<4>::for_shard(&[], USER_MIN, 0).map(|_| ()),
        Ok(()),
        "guard, stack and info fit in 4 regions"
    );
    assert_eq!(
        VmSpace::<2>::for_shard(&[], USER_MIN, 0).map(|_| ()),
        Err(VmError::Full)
    );
    assert_eq!(
        VmSpace::<4>::for_shard(&[], u64::MAX, 0).map(|_| ()),
        Err(VmError::Overflow)
    );
}
