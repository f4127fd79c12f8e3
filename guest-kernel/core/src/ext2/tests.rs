//! Tests against images built by the repo's own `coco-mkext2` (4 KiB
//! blocks, revision 1) and against a hand-built revision-0 image with
//! 1 KiB blocks (which mkext2 does not make), plus corrupted copies.

use super::*;
use crate::testutil::Rng;
use std::fs;
use std::path::Path;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

/// Deterministic file contents: byte i of file `seed`.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

/// 4 KiB blocks: 12 direct + 1024 single-indirect blocks = 4.05 MiB; this
/// needs the double-indirect block.
const BIG: usize = (12 + 1024 + 300) * 4096 + 123;

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// The tree: small and empty files, nested directories, a double-indirect
/// file, and a directory with enough entries to span several blocks.
fn mkext2_image() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "hello.txt", b"hello, coconut\n");
    write(root, "empty", b"");
    write(root, "boot/shards.toml", b"[[shard]]\n");
    write(root, "a/b/c/deep.bin", &pattern(3, 5000));
    write(root, "models/big.bin", &pattern(7, BIG));
    for i in 0..300 {
        write(
            root,
            &std::format!("many/file-with-a-long-name-{i:04}"),
            &[i as u8],
        );
    }
    let opts = coco_mkext2::Options {
        label: String::from("coco-test"),
        timestamp: Some(0),
        ..Default::default()
    };
    coco_mkext2::build_image(root, &opts).unwrap()
}

fn image() -> &'static [u8] {
    static IMG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    IMG.get_or_init(mkext2_image)
}

fn read_all(fs: &Ext2<'_>, ino: &Inode) -> Vec<u8> {
    let mut out = vec![0u8; ino.size as usize];
    assert_eq!(fs.read(ino, 0, &mut out), Ok(out.len()));
    out
}

#[test]
fn reads_files_and_nested_directories() {
    let fs = Ext2::new(image()).unwrap();
    assert_eq!(fs.block_size(), 4096);
    assert_eq!(&fs.label()[..9], b"coco-test");
    let hello = fs.open(b"/hello.txt").unwrap();
    assert_eq!(read_all(&fs, &hello), b"hello, coconut\n");
    assert_eq!(read_all(&fs, &fs.open(b"/empty").unwrap()), b"");
    assert_eq!(
        read_all(&fs, &fs.open(b"/boot/shards.toml").unwrap()),
        b"[[shard]]\n"
    );
    let deep = fs.open(b"/a/b/c/deep.bin").unwrap();
    assert_eq!(read_all(&fs, &deep), pattern(3, 5000));
    assert_eq!(
        fs.open(b"//a//b/c/deep.bin/").map(|i| i.ino),
        Ok(deep.ino),
        "empty components"
    );
    assert_eq!(
        fs.open(b"/a/b/../b/c/./deep.bin").map(|i| i.ino),
        Ok(deep.ino)
    );
    for i in [0, 137, 299] {
        let f = fs
            .open(std::format!("/many/file-with-a-long-name-{i:04}").as_bytes())
            .unwrap();
        assert_eq!(read_all(&fs, &f), [i as u8]);
    }
    let many = fs.lookup(b"/many").unwrap();
    assert!(many.size > 4096, "the directory spans several blocks");
    let mut n = 0;
    fs.for_each_entry(&many, |_| {
        n += 1;
        true
    })
    .unwrap();
    assert_eq!(n, 302, "300 files, . and ..");
}

#[test]
fn path_errors() {
    let fs = Ext2::new(image()).unwrap();
    assert_eq!(fs.open(b"/missing"), Err(FsError::NotFound));
    assert_eq!(fs.open(b"/a/missing/x"), Err(FsError::NotFound));
    assert_eq!(fs.open(b""), Err(FsError::BadPath), "empty path");
    assert_eq!(fs.open(b"hello.txt"), Err(FsError::BadPath), "relative");
    assert_eq!(fs.open(b"/a/b"), Err(FsError::NotAFile));
    assert_eq!(fs.open(b"/"), Err(FsError::NotAFile));
    assert_eq!(fs.open(b"/hello.txt/x"), Err(FsError::NotADirectory));
    assert_eq!(Error::from(FsError::NotFound), Error::NotFound);
    assert_eq!(Error::from(FsError::NotAFile), Error::NotAFile);
}

#[test]
fn a_double_indirect_file_reads_back_and_maps_block_by_block() {
    let img = image();
    let fs = Ext2::new(img).unwrap();
    let big = fs.open(b"/models/big.bin").unwrap();
    assert_eq!(big.size, BIG as u64);
    assert_ne!(big.block[13], 0, "uses the double-indirect pointer");
    let want = pattern(7, BIG);
    assert_eq!(read_all(&fs, &big), want);
    // block_of gives the blocks the kernel would map, and they hold the file's bytes
    let nblocks = BIG.div_ceil(4096) as u64;
    let first = fs.block_of(&big, 0).unwrap().unwrap();
    for i in 0..nblocks {
        let b = fs.block_of(&big, i).unwrap().unwrap();
        assert_eq!(
            b as u64,
            first as u64 + i,
            "mkext2 stores data contiguously"
        );
        let off = fs.block_offset(b).unwrap();
        let len = 4096.min(BIG - i as usize * 4096);
        assert_eq!(
            &img[off..off + len],
            &want[i as usize * 4096..][..len],
            "block {i}"
        );
    }
    assert_eq!(fs.block_of(&big, nblocks), Err(FsError::OutOfRange));
    assert_eq!(fs.block_of(&big, u64::MAX), Err(FsError::OutOfRange));
    // unaligned reads across indirect boundaries
    let edge = (12 + 1024) * 4096 - 10;
    let mut buf = [0u8; 8200];
    assert_eq!(fs.read(&big, edge as u64, &mut buf), Ok(8200));
    assert_eq!(&buf[..], &want[edge..edge + 8200]);
    assert_eq!(fs.read(&big, BIG as u64 - 5, &mut buf), Ok(5));
    assert_eq!(fs.read(&big, BIG as u64, &mut buf), Ok(0));
    assert_eq!(fs.read(&big, u64::MAX, &mut buf), Ok(0));
}

#[test]
fn refuses_non_ext2_and_unsupported_images() {
    assert_eq!(Ext2::new(&[]).err(), Some(FsError::NotExt2));
    assert_eq!(Ext2::new(&image()[..2000]).err(), Some(FsError::NotExt2));
    let mut img = image().to_vec();
    img[1024 + 56] = 0;
    assert_eq!(Ext2::new(&img).err(), Some(FsError::NotExt2));
    let mut img = image().to_vec();
    img[1024 + 96] |= 0x40; // extents
    assert_eq!(Ext2::new(&img).err(), Some(FsError::Unsupported));
    let mut img = image().to_vec();
    img[1024 + 76] = 2; // revision 2
    assert_eq!(Ext2::new(&img).err(), Some(FsError::Unsupported));
    let mut img = image().to_vec();
    img[1024 + 24] = 7; // 128 KiB blocks
    assert_eq!(Ext2::new(&img).err(), Some(FsError::Corrupt));
    let mut img = image().to_vec();
    img[1024 + 88] = 100; // inode size not a power of two
    assert_eq!(Ext2::new(&img).err(), Some(FsError::Corrupt));
    let img = image();
    let cut = &img[..img.len() / 2]; // blocks_count points past the end
    let fs = Ext2::new(cut).unwrap();
    let mut buf = vec![0u8; BIG];
    // whichever lies past the cut (directory or data) is reported, not read
    let result = fs
        .open(b"/models/big.bin")
        .and_then(|big| fs.read(&big, 0, &mut buf));
    assert_eq!(result, Err(FsError::Corrupt));
}

#[test]
fn corrupted_directory_entries_fail_closed() {
    let img = image();
    let fs = Ext2::new(img).unwrap();
    let root = fs.inode(ROOT_INO).unwrap();
    let off = fs.block_offset(root.block[0]).unwrap();
    for (rec_len, why) in [
        (0u16, "zero"),
        (6, "short"),
        (13, "unaligned"),
        (8192, "past the block"),
    ] {
        let mut bad = img.to_vec();
        bad[off + 4..off + 6].copy_from_slice(&rec_len.to_le_bytes());
        let fs = Ext2::new(&bad).unwrap();
        assert_eq!(
            fs.open(b"/hello.txt").err(),
            Some(FsError::Corrupt),
            "{why}"
        );
    }
    let mut bad = img.to_vec();
    bad[off + 6] = 200; // name longer than the record
    assert_eq!(
        Ext2::new(&bad).unwrap().open(b"/hello.txt").err(),
        Some(FsError::Corrupt)
    );
}

#[test]
fn random_mutations_never_panic() {
    let base = image();
    let fs = Ext2::new(base).unwrap();
    // Mutate the metadata area: superblock, descriptors, inode table, directories.
    let root = fs.inode(ROOT_INO).unwrap();
    let meta_end = (fs.block_offset(root.block[0]).unwrap() + 4096).min(base.len());
    let meta_end = meta_end.max(64 * 4096).min(base.len());
    let mut rng = Rng::new(0xe7f2);
    let paths: [&[u8]; 5] = [
        b"/hello.txt",
        b"/a/b/c/deep.bin",
        b"/models/big.bin",
        b"/many/file-with-a-long-name-0042",
        b"/boot/shards.toml",
    ];
    let mut img = base.to_vec();
    let mut buf = vec![0u8; 9000];
    for round in 0..1500 {
        img[..meta_end].copy_from_slice(&base[..meta_end]);
        let n = 1 + rng.below(20) as usize;
        for _ in 0..n {
            let i = if rng.below(3) == 0 {
                1024 + rng.below(1024) as usize
            } else {
                rng.below(meta_end as u64) as usize
            };
            img[i] = rng.next() as u8;
        }
        let Ok(fs) = Ext2::new(&img) else { continue };
        for p in paths {
            if let Ok(ino) = fs.open(p) {
                let off = if round % 2 == 0 {
                    0
                } else {
                    rng.next() % (ino.size + 1)
                };
                let _ = fs.read(&ino, off, &mut buf);
                let _ = fs.block_of(&ino, rng.below(2000));
            }
        }
        for ino in 0..40 {
            if let Ok(node) = fs.inode(ino) {
                let _ = fs.for_each_entry(&node, |_| true);
                let _ = fs.block_of(&node, rng.next() >> rng.below(64));
            }
        }
    }
}

// ---------------------------------------------------------------------
// A revision-0 image with 1 KiB blocks, built by hand: mkext2 only makes
// revision-1 images with 4 KiB blocks.

const BS: usize = 1024;

struct Rev0 {
    img: Vec<u8>,
    bs: usize,
    itable: u32,
    next_block: u32,
}

impl Rev0 {
    /// 32 inodes. Blocks: superblock (in block 0, or block 1 with 1 KiB
    /// blocks), descriptors, two bitmaps, the inode table, then data.
    fn new(bs: usize, blocks: u32) -> Self {
        let mut img = vec![0u8; blocks as usize * bs];
        let first = u32::from(bs == 1024);
        let sb = 1024;
        img[sb..sb + 4].copy_from_slice(&32u32.to_le_bytes()); // inodes
        img[sb + 4..sb + 8].copy_from_slice(&blocks.to_le_bytes());
        img[sb + 20..sb + 24].copy_from_slice(&first.to_le_bytes());
        img[sb + 24..sb + 28].copy_from_slice(&(bs / 1024).trailing_zeros().to_le_bytes());
        img[sb + 32..sb + 36].copy_from_slice(&(8 * bs as u32).to_le_bytes());
        img[sb + 40..sb + 44].copy_from_slice(&32u32.to_le_bytes());
        img[sb + 56..sb + 58].copy_from_slice(&0xef53u16.to_le_bytes());
        // rev 0: s_rev_level = 0 already
        let gd = (first as usize + 1) * bs;
        let itable = first + 4;
        img[gd..gd + 4].copy_from_slice(&(first + 2).to_le_bytes());
        img[gd + 4..gd + 8].copy_from_slice(&(first + 3).to_le_bytes());
        img[gd + 8..gd + 12].copy_from_slice(&itable.to_le_bytes());
        let next_block = itable + (32 * 128usize).div_ceil(bs) as u32;
        Rev0 {
            img,
            bs,
            itable,
            next_block,
        }
    }

    fn alloc(&mut self) -> u32 {
        self.next_block += 1;
        self.next_block - 1
    }

    fn put32(&mut self, block: u32, index: usize, v: u32) {
        let o = block as usize * self.bs + index * 4;
        self.img[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// An inode; sizes above 4 GiB use `i_size_high` (regular files).
    fn inode(&mut self, ino: u32, mode: u16, size: u64, blocks: [u32; 15]) {
        let o = self.itable as usize * self.bs + (ino as usize - 1) * 128;
        self.img[o..o + 2].copy_from_slice(&mode.to_le_bytes());
        self.img[o + 4..o + 8].copy_from_slice(&(size as u32).to_le_bytes());
        self.img[o + 108..o + 112].copy_from_slice(&((size >> 32) as u32).to_le_bytes());
        for (i, b) in blocks.iter().enumerate() {
            self.img[o + 40 + i * 4..o + 44 + i * 4].copy_from_slice(&b.to_le_bytes());
        }
    }

    /// A rev-0 directory block (16-bit name_len, no file type).
    fn dir(&mut self, entries: &[(u32, &[u8])]) -> u32 {
        let b = self.alloc();
        let mut pos = b as usize * self.bs;
        let end = pos + self.bs;
        for (i, (ino, name)) in entries.iter().enumerate() {
            let len = if i + 1 == entries.len() {
                end - pos
            } else {
                8 + name.len().div_ceil(4) * 4
            };
            self.img[pos..pos + 4].copy_from_slice(&ino.to_le_bytes());
            self.img[pos + 4..pos + 6].copy_from_slice(&(len as u16).to_le_bytes());
            self.img[pos + 6..pos + 8].copy_from_slice(&(name.len() as u16).to_le_bytes());
            self.img[pos + 8..pos + 8 + name.len()].copy_from_slice(name);
            pos += len;
        }
        b
    }

    /// A sparse regular file with one marked block at each of `indices`.
    fn sparse_file(&mut self, ino: u32, indices: &[u64]) {
        let per = (self.bs / 4) as u64;
        let mut top = [0u32; 15];
        for &index in indices {
            let leaf = self.alloc();
            let o = leaf as usize * self.bs;
            self.img[o..o + 8].copy_from_slice(&(index ^ 0xb10c).to_le_bytes());
            if index < 12 {
                top[index as usize] = leaf;
                continue;
            }
            // find the level and the path of slots through it
            let (mut rest, mut level, mut span) = (index - 12, 1u32, per);
            while rest >= span {
                rest -= span;
                level += 1;
                span *= per;
            }
            let slot_top = 11 + level as usize;
            if top[slot_top] == 0 {
                top[slot_top] = self.alloc();
            }
            let mut block = top[slot_top];
            let mut span = span / per;
            for _ in 1..level {
                let slot = (rest / span) as usize;
                rest %= span;
                span /= per;
                let o = block as usize * self.bs + slot * 4;
                let mut next = u32::from_le_bytes(self.img[o..o + 4].try_into().unwrap());
                if next == 0 {
                    next = self.alloc();
                    self.put32(block, slot, next);
                }
                block = next;
            }
            self.put32(block, rest as usize, leaf);
        }
        let size = (indices.iter().max().unwrap() + 1) * self.bs as u64;
        self.inode(ino, 0o100_644, size, top);
    }
}

#[test]
fn every_block_size_reaches_each_indirection_level() {
    for bs in [1024usize, 2048, 4096, 8192, 65536] {
        let per = (bs / 4) as u64;
        let triple = 12 + per + per * per;
        let indices = [
            0,
            11,
            12,
            12 + per - 1,
            12 + per,
            triple - 1,
            triple,
            triple + 5 * per * per,
        ];
        let mut r = Rev0::new(bs, 64);
        r.sparse_file(12, &indices);
        let root = r.dir(&[(2, b"."), (2, b".."), (12, b"f")]);
        let mut rb = [0u32; 15];
        rb[0] = root;
        r.inode(2, 0o040_755, bs as u64, rb);
        let fs = Ext2::new(&r.img).unwrap();
        assert_eq!(fs.block_size() as usize, bs);
        let f = fs.open(b"/f").unwrap();
        for &index in &indices {
            let b = fs
                .block_of(&f, index)
                .unwrap()
                .unwrap_or_else(|| panic!("bs {bs} index {index}"));
            let o = fs.block_offset(b).unwrap();
            assert_eq!(
                r.img[o..o + 8],
                (index ^ 0xb10c).to_le_bytes(),
                "bs {bs} index {index}"
            );
            let mut buf = [0u8; 8];
            assert_eq!(fs.read(&f, index * bs as u64, &mut buf), Ok(8));
            assert_eq!(buf, (index ^ 0xb10c).to_le_bytes());
        }
        assert_eq!(fs.block_of(&f, 1), Ok(None), "bs {bs}: hole");
        assert_eq!(
            fs.block_of(&f, 13),
            Ok(None),
            "bs {bs}: hole in the single-indirect block"
        );
    }
}

/// 1 KiB blocks: 12 direct + 256 single + (more) double-indirect blocks.
const SMALL_BLOCKS: usize = 12 + 256 + 40;

fn rev0_image() -> Vec<u8> {
    let mut r = Rev0::new(BS, 1200);
    // /data: a file whose blocks are placed one by one, some through indirect blocks
    let data = pattern(9, SMALL_BLOCKS * BS - 7);
    let mut blocks = [0u32; 15];
    let single = r.alloc();
    let double = r.alloc();
    let double_leaf = r.alloc();
    blocks[12] = single;
    blocks[13] = double;
    r.put32(double, 0, double_leaf);
    for i in 0..SMALL_BLOCKS {
        let b = r.alloc();
        let o = b as usize * BS;
        let chunk = &data[i * BS..((i + 1) * BS).min(data.len())];
        r.img[o..o + chunk.len()].copy_from_slice(chunk);
        match i {
            0..12 => blocks[i] = b,
            12..268 => r.put32(single, i - 12, b),
            _ => r.put32(double_leaf, i - 268, b),
        }
    }
    r.inode(12, 0o100_644, data.len() as u64, blocks);
    // /sparse: a file with one block far out, reached through the triple-indirect pointer
    let tri_index = 12 + 256 + 256 * 256; // first triple-indirect block
    let (t, d, s, leaf) = (r.alloc(), r.alloc(), r.alloc(), r.alloc());
    r.put32(t, 0, d);
    r.put32(d, 0, s);
    r.put32(s, 0, leaf);
    let o = leaf as usize * BS;
    r.img[o..o + 5].copy_from_slice(b"TRIPL");
    let mut sparse = [0u32; 15];
    sparse[14] = t;
    r.inode(13, 0o100_644, ((tri_index + 1) * BS) as u64, sparse);
    // /sub/data-link: a nested directory
    let sub = r.dir(&[(14, b"."), (2, b".."), (12, b"again")]);
    let mut sub_blocks = [0u32; 15];
    sub_blocks[0] = sub;
    r.inode(14, 0o040_755, BS as u64, sub_blocks);
    let root = r.dir(&[
        (2, b"."),
        (2, b".."),
        (12, b"data"),
        (13, b"sparse"),
        (14, b"sub"),
    ]);
    let mut root_blocks = [0u32; 15];
    root_blocks[0] = root;
    r.inode(2, 0o040_755, BS as u64, root_blocks);
    r.img
}

#[test]
fn revision_0_with_1k_blocks_direct_single_double_and_triple_indirect() {
    let img = rev0_image();
    let fs = Ext2::new(&img).unwrap();
    assert_eq!(fs.block_size(), 1024);
    let data = fs.open(b"/data").unwrap();
    assert_eq!(read_all(&fs, &data), pattern(9, SMALL_BLOCKS * BS - 7));
    assert_eq!(fs.open(b"/sub/again").map(|i| i.ino), Ok(12));
    let sparse = fs.open(b"/sparse").unwrap();
    let tri_index = (12 + 256 + 256 * 256) as u64;
    let leaf = fs.block_of(&sparse, tri_index).unwrap().unwrap();
    assert_eq!(&img[leaf as usize * BS..][..5], b"TRIPL");
    assert_eq!(fs.block_of(&sparse, 0), Ok(None), "hole");
    assert_eq!(
        fs.block_of(&sparse, 300),
        Ok(None),
        "hole under a missing single-indirect block"
    );
    assert_eq!(
        fs.block_of(&sparse, tri_index - 1),
        Ok(None),
        "hole in the double-indirect range"
    );
    let mut buf = [0xffu8; 16];
    assert_eq!(fs.read(&sparse, 5000, &mut buf), Ok(16));
    assert_eq!(buf, [0; 16], "holes read as zeros");
    assert_eq!(fs.read(&sparse, tri_index * 1024, &mut buf[..5]), Ok(5));
    assert_eq!(&buf[..5], b"TRIPL");
}

#[test]
fn pointers_outside_the_filesystem_are_corrupt() {
    let mut img = rev0_image();
    // point /data's first block past blocks_count
    let o = 5 * BS + 11 * 128 + 40;
    img[o..o + 4].copy_from_slice(&5000u32.to_le_bytes());
    let fs = Ext2::new(&img).unwrap();
    let data = fs.open(b"/data").unwrap();
    assert_eq!(fs.block_of(&data, 0), Err(FsError::Corrupt));
    let mut buf = [0u8; 10];
    assert_eq!(fs.read(&data, 0, &mut buf), Err(FsError::Corrupt));
    // inode numbers out of range
    assert_eq!(fs.inode(0), Err(FsError::Corrupt));
    assert_eq!(fs.inode(33), Err(FsError::Corrupt));
    assert_eq!(fs.inode(u32::MAX), Err(FsError::Corrupt));
}

#[test]
fn rev0_random_mutations_never_panic() {
    let base = rev0_image();
    let mut rng = Rng::new(0x1e0);
    let mut buf = vec![0u8; 3000];
    for _ in 0..3000 {
        let mut img = base.clone();
        let n = 1 + rng.below(30) as usize;
        rng.mutate(&mut img[..40 * BS], n);
        let Ok(fs) = Ext2::new(&img) else { continue };
        for p in [&b"/data"[..], b"/sparse", b"/sub/again"] {
            if let Ok(ino) = fs.open(p) {
                let _ = fs.read(&ino, rng.next() % (ino.size + 1), &mut buf);
                let _ = fs.block_of(&ino, rng.next() >> rng.below(64));
            }
        }
    }
}

// ---------------------------------------------------------------------
// Images written by an independent implementation: e2fsprogs' mke2fs
// (installed by scripts/setup) with 1, 2 and 4 KiB blocks, 256-byte
// inodes, sparse_super, resize_inode, dir_index, ext_attr.

fn mke2fs() -> Option<std::path::PathBuf> {
    ["/usr/sbin/mke2fs", "/sbin/mke2fs", "/usr/bin/mke2fs"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn reads_images_made_by_mke2fs() {
    let Some(tool) = mke2fs() else {
        std::eprintln!("SKIPPED: mke2fs not installed (scripts/setup installs e2fsprogs)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tree");
    // 1 KiB blocks: 12 + 256 blocks before the double-indirect range (268 KiB)
    let big = pattern(5, 700 * 1024 + 77);
    write(&src, "x/y/z/big.bin", &big);
    write(&src, "hello", b"hi\n");
    for i in 0..200 {
        write(&src, &std::format!("d/entry-number-{i:03}"), &[i as u8; 3]);
    }
    for bs in [1024usize, 2048, 4096] {
        let img_path = dir.path().join(std::format!("img{bs}"));
        let out = std::process::Command::new(&tool)
            .args(["-q", "-F", "-t", "ext2", "-b", &bs.to_string(), "-d"])
            .arg(&src)
            .arg(&img_path)
            .arg("4M")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mke2fs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let img = fs::read(&img_path).unwrap();
        let fs = Ext2::new(&img).unwrap();
        assert_eq!(fs.block_size() as usize, bs);
        let f = fs.open(b"/x/y/z/big.bin").unwrap();
        if bs == 1024 {
            assert_ne!(f.block[13], 0, "needs the double-indirect block");
        }
        assert_eq!(read_all(&fs, &f), big, "block size {bs}");
        assert_eq!(read_all(&fs, &fs.open(b"/hello").unwrap()), b"hi\n");
        for i in [0, 99, 199] {
            let e = fs
                .open(std::format!("/d/entry-number-{i:03}").as_bytes())
                .unwrap();
            assert_eq!(read_all(&fs, &e), [i as u8; 3]);
        }
        assert_eq!(fs.open(b"/d/entry-number-200"), Err(FsError::NotFound));
        assert_eq!(fs.open(b"/lost+found"), Err(FsError::NotAFile));
    }
}

/// `run_at` agrees with `block_of` block by block and stops where contiguity ends.
fn check_runs(fs: &Ext2<'_>, f: &Inode, rng: &mut Rng) {
    let nblocks = f.size.div_ceil(u64::from(fs.block_size()));
    for _ in 0..50 {
        let index = rng.below(nblocks);
        let max = 1 + rng.below(3000);
        match fs.run_at(f, index, max).unwrap() {
            None => assert_eq!(fs.block_of(f, index), Ok(None)),
            Some((first, n)) => {
                assert!(n >= 1 && n <= max && index + n <= nblocks);
                for k in 0..n {
                    assert_eq!(fs.block_of(f, index + k), Ok(Some(first + k as u32)));
                }
                if n < max && index + n < nblocks {
                    assert_ne!(
                        fs.block_of(f, index + n),
                        Ok(Some(first + n as u32)),
                        "the run is maximal"
                    );
                }
            }
        }
    }
}

#[test]
fn runs_cover_contiguous_files_in_one_step() {
    let fs = Ext2::new(image()).unwrap();
    let big = fs.open(b"/models/big.bin").unwrap();
    let nblocks = BIG.div_ceil(4096) as u64;
    let first = fs.block_of(&big, 0).unwrap().unwrap();
    assert_eq!(
        fs.run_at(&big, 0, u64::MAX),
        Ok(Some((first, nblocks))),
        "the whole file is one run"
    );
    assert_eq!(fs.run_at(&big, 5, 10), Ok(Some((first + 5, 10))));
    assert_eq!(fs.run_at(&big, 7, 0), Ok(Some((first + 7, 1))));
    assert_eq!(fs.run_at(&big, nblocks, 1), Err(FsError::OutOfRange));
    let mut rng = Rng::new(0x2u64);
    check_runs(&fs, &big, &mut rng);
    // holes and scattered blocks in the hand-built images
    let img = rev0_image();
    let fs = Ext2::new(&img).unwrap();
    check_runs(&fs, &fs.open(b"/data").unwrap(), &mut rng);
    let sparse = fs.open(b"/sparse").unwrap();
    assert_eq!(fs.run_at(&sparse, 0, 100), Ok(None));
    let tri = (12 + 256 + 256 * 256) as u64;
    assert_eq!(
        fs.run_at(&sparse, tri, 100).map(|r| r.map(|(_, n)| n)),
        Ok(Some(1))
    );
    check_runs(&fs, &sparse, &mut rng);
}

#[test]
fn runs_on_mutated_images_never_panic() {
    let base = rev0_image();
    let mut rng = Rng::new(0x7a7);
    for _ in 0..2000 {
        let mut img = base.clone();
        let n = 1 + rng.below(40) as usize;
        rng.mutate(&mut img[..40 * BS], n);
        let Ok(fs) = Ext2::new(&img) else { continue };
        if let Ok(f) = fs.open(b"/data") {
            let _ = fs.run_at(&f, rng.below(400), rng.next() >> rng.below(64));
        }
    }
}
