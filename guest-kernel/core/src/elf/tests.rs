use super::*;
use crate::testutil::Rng;
use std::vec;
use std::vec::Vec;

/// A program header to put in a test image.
#[derive(Clone, Copy)]
struct Ph {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

const TEXT: u64 = 0x40_1000;
const DATA: u64 = 0x40_3000;

fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
    Ph {
        p_type: PT_LOAD,
        flags,
        offset,
        vaddr,
        filesz,
        memsz,
    }
}

/// A typical static shard: text R+X at 0x401000, data R+W at 0x403000 with bss.
fn good_phdrs() -> Vec<Ph> {
    vec![
        load(PF_R | PF_X, 0x1000, TEXT, 0x1800, 0x1800),
        load(PF_R | PF_W, 0x3000, DATA, 0x100, 0x5000),
        Ph {
            p_type: 0x6474_e551, // PT_GNU_STACK: ignored
            flags: PF_R | PF_W,
            offset: 0,
            vaddr: 0,
            filesz: 0,
            memsz: 0,
        },
    ]
}

fn build(entry: u64, phdrs: &[Ph]) -> Vec<u8> {
    let mut img = vec![0u8; 0x4000];
    img[..4].copy_from_slice(b"\x7fELF");
    img[4] = 2;
    img[5] = 1;
    img[6] = 1;
    img[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
    img[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    img[20..24].copy_from_slice(&1u32.to_le_bytes());
    img[24..32].copy_from_slice(&entry.to_le_bytes());
    img[32..40].copy_from_slice(&64u64.to_le_bytes());
    img[52..54].copy_from_slice(&64u16.to_le_bytes());
    img[54..56].copy_from_slice(&56u16.to_le_bytes());
    img[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
    for (i, ph) in phdrs.iter().enumerate() {
        let o = 64 + i * 56;
        img[o..o + 4].copy_from_slice(&ph.p_type.to_le_bytes());
        img[o + 4..o + 8].copy_from_slice(&ph.flags.to_le_bytes());
        img[o + 8..o + 16].copy_from_slice(&ph.offset.to_le_bytes());
        img[o + 16..o + 24].copy_from_slice(&ph.vaddr.to_le_bytes());
        img[o + 24..o + 32].copy_from_slice(&ph.vaddr.to_le_bytes());
        img[o + 32..o + 40].copy_from_slice(&ph.filesz.to_le_bytes());
        img[o + 40..o + 48].copy_from_slice(&ph.memsz.to_le_bytes());
        img[o + 48..o + 56].copy_from_slice(&PAGE.to_le_bytes());
    }
    img
}

fn with_seg(i: usize, f: impl FnOnce(&mut Ph)) -> Vec<u8> {
    let mut ph = good_phdrs();
    f(&mut ph[i]);
    build(TEXT + 0x10, &ph)
}

#[test]
fn accepts_a_typical_static_executable() {
    let img = parse(&build(TEXT + 0x10, &good_phdrs())).expect("valid image");
    assert_eq!(img.entry, TEXT + 0x10);
    let segs = img.segments();
    assert_eq!(segs.len(), 2, "PT_GNU_STACK is not loaded");
    assert_eq!(segs[0].perms, Perms::RX);
    assert_eq!((segs[0].page_start(), segs[0].pages()), (TEXT, 2));
    assert_eq!(segs[1].perms, Perms::RW);
    assert_eq!(
        (segs[1].offset, segs[1].filesz, segs[1].memsz),
        (0x3000, 0x100, 0x5000)
    );
    assert_eq!(img.end(), DATA + 0x5000);
}

#[test]
fn refuses_bad_headers() {
    let good = build(TEXT, &good_phdrs());
    let cases: [(usize, u8, ElfError); 7] = [
        (0, 0x7e, ElfError::BadMagic),
        (4, 1, ElfError::NotElf64),
        (5, 2, ElfError::NotLittleEndian),
        (6, 0, ElfError::BadVersion),
        (18, 3, ElfError::NotX86_64),
        (16, 3, ElfError::NotExecutable), // ET_DYN
        (54, 32, ElfError::BadPhentsize),
    ];
    for (at, value, want) in cases {
        let mut img = good.clone();
        img[at] = value;
        assert_eq!(parse(&img), Err(want), "byte {at} = {value}");
    }
    assert_eq!(parse(&good[..63]), Err(ElfError::TooShort));
    assert_eq!(parse(&[]), Err(ElfError::TooShort));
    let mut img = good.clone();
    img[56..58].copy_from_slice(&0u16.to_le_bytes());
    assert_eq!(parse(&img), Err(ElfError::BadPhnum));
    img[56..58].copy_from_slice(&65u16.to_le_bytes());
    assert_eq!(parse(&img), Err(ElfError::BadPhnum));
    let mut img = good.clone();
    img[32..40].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
    assert_eq!(parse(&img), Err(ElfError::PhdrsOutsideFile));
    img[32..40].copy_from_slice(&(0x4000u64 - 100).to_le_bytes());
    assert_eq!(parse(&img), Err(ElfError::PhdrsOutsideFile));
}

#[test]
fn refuses_dynamic_and_segmentless_images() {
    let mut ph = good_phdrs();
    ph[2].p_type = PT_INTERP;
    assert_eq!(parse(&build(TEXT, &ph)), Err(ElfError::Dynamic));
    ph[2].p_type = PT_DYNAMIC;
    assert_eq!(parse(&build(TEXT, &ph)), Err(ElfError::Dynamic));
    let only_stack = [good_phdrs()[2]];
    assert_eq!(parse(&build(TEXT, &only_stack)), Err(ElfError::NoSegments));
}

#[test]
fn refuses_writable_executable_segments() {
    let img = with_seg(1, |p| p.flags = PF_R | PF_W | PF_X);
    assert_eq!(parse(&img), Err(ElfError::WriteAndExecute { index: 1 }));
    let img = with_seg(0, |p| p.flags = PF_W | PF_X);
    assert_eq!(parse(&img), Err(ElfError::WriteAndExecute { index: 0 }));
}

#[test]
fn refuses_bad_segment_geometry() {
    type Case = (usize, fn(&mut Ph), ElfError);
    let cases: [Case; 10] = [
        (1, |p| p.memsz = 0, ElfError::EmptySegment { index: 1 }),
        (
            1,
            |p| p.filesz = 0x6000,
            ElfError::FileszAboveMemsz { index: 1 },
        ),
        (0, |p| p.offset = 0x1008, ElfError::Misaligned { index: 0 }),
        (1, |p| p.filesz = 0x1001, ElfError::OutsideFile { index: 1 }),
        (
            1,
            |p| {
                p.offset = u64::MAX - 0xfff;
                p.vaddr = DATA;
            },
            ElfError::OutsideFile { index: 1 },
        ),
        (
            1,
            |p| {
                p.offset = 0xffff_ffff_ffff_f000;
                p.filesz = 0x2000;
                p.memsz = 0x2000;
            },
            ElfError::Overflow { index: 1 },
        ),
        (
            1,
            |p| {
                p.vaddr = u64::MAX - 0xeff;
                p.offset = 0x3100;
                p.filesz = 0;
            },
            ElfError::Overflow { index: 1 },
        ),
        (
            0,
            |p| p.vaddr = 0x1000,
            ElfError::OutsideUserSpace { index: 0 },
        ),
        (
            1,
            |p| {
                p.vaddr = USER_END - 0x1000;
                p.memsz = 0x1001;
            },
            ElfError::OutsideUserSpace { index: 1 },
        ),
        (
            1,
            |p| p.vaddr = 0xffff_8000_0000_0000,
            ElfError::OutsideUserSpace { index: 1 },
        ),
    ];
    for (i, f, want) in cases {
        let mut ph = good_phdrs();
        f(&mut ph[i]);
        assert_eq!(parse(&build(TEXT + 0x10, &ph)), Err(want));
    }
}

#[test]
fn refuses_overlapping_unsorted_and_page_sharing_segments() {
    // data starts in text's last page
    let img = with_seg(1, |p| {
        p.vaddr = TEXT + 0x1900;
        p.offset = 0x3900;
        p.filesz = 0;
    });
    assert_eq!(parse(&img), Err(ElfError::OverlapOrUnsorted { index: 1 }));
    // data below text
    let img = with_seg(1, |p| {
        p.vaddr = 0x40_0000;
        p.offset = 0;
    });
    assert_eq!(parse(&img), Err(ElfError::OverlapOrUnsorted { index: 1 }));
}

#[test]
fn entry_must_be_in_executable_file_bytes() {
    for entry in [0, TEXT - 1, TEXT + 0x1800, DATA, DATA + 0x10, u64::MAX] {
        assert_eq!(
            parse(&build(entry, &good_phdrs())),
            Err(ElfError::BadEntry),
            "{entry:#x}"
        );
    }
    assert!(parse(&build(TEXT, &good_phdrs())).is_ok());
    assert!(parse(&build(TEXT + 0x17ff, &good_phdrs())).is_ok());
}

#[test]
fn too_many_segments_fill_the_table_then_fail() {
    let mut ph = Vec::new();
    for i in 0..=MAX_SEGMENTS as u64 {
        ph.push(load(PF_R | PF_X, 0x1000, TEXT + i * 0x1000, 0x10, 0x10));
    }
    assert_eq!(parse(&build(TEXT, &ph)), Err(ElfError::TooManySegments));
    ph.pop();
    assert_eq!(
        parse(&build(TEXT, &ph)).map(|i| i.segments().len()),
        Ok(MAX_SEGMENTS)
    );
}

#[test]
fn random_mutations_never_panic_and_accepted_images_obey_the_rules() {
    let base = build(TEXT + 0x10, &good_phdrs());
    let mut rng = Rng::new(0xe1f);
    let mut accepted = 0;
    for round in 0..20_000 {
        let mut img = base.clone();
        // mutate mostly the headers, where the interesting bytes are
        let n = 1 + rng.below(6) as usize;
        let head = 64 + 56 * 3;
        rng.mutate(&mut img[..head], n);
        if round % 7 == 0 {
            img.truncate(rng.below(base.len() as u64) as usize);
        }
        if let Ok(parsed) = parse(&img) {
            accepted += 1;
            let mut prev = 0;
            for s in parsed.segments() {
                assert!(s.perms.is_wx_safe());
                assert!(s.vaddr >= USER_MIN && s.page_end() <= USER_END);
                assert!(s.page_start() >= prev);
                assert!(s.offset + s.filesz <= img.len() as u64);
                prev = s.page_end();
            }
        }
    }
    assert!(accepted > 0, "some mutations are harmless");
    let mut junk = vec![0u8; 512];
    for _ in 0..2000 {
        rng.fill(&mut junk);
        junk[..4].copy_from_slice(b"\x7fELF");
        let _ = parse(&junk);
    }
}
