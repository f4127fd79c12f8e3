//! Assembling the image: from a walked tree to the final bytes.
//!
//! The steps, in order:
//!
//! 1. walk the source tree (`tree`);
//! 2. number the inodes and encode the directories (`inodes`);
//! 3. size the image and place every block (`alloc::plan`);
//! 4. fill a zeroed buffer: contents, indirect blocks, inodes, bitmaps,
//!    group descriptors and superblocks, with free counts taken from the
//!    bitmaps so they cannot disagree.
//!
//! File data is read straight into its place in the buffer, one read per
//! contiguous run, never touched byte by byte.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use crate::alloc::{self, Extent, Geometry, Layout, MAX_BLOCKS, Placement, Request};
use crate::bitmap::{count_ones, set_bits};
use crate::blockmap;
use crate::error::Error;
use crate::inodes::{self, Content, Planned};
use crate::layout::{
    self, BLOCK_SIZE, BLOCK_SIZE_U64, BLOCKS_PER_GROUP, FIRST_INO, GROUP_DESC_SIZE, GroupDesc,
    INCOMPAT_FILETYPE, INODE_SIZE, Inode, MAX_INODES_PER_GROUP, RO_COMPAT_LARGE_FILE,
    SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock,
};
use crate::tree;
use crate::uuid::MetaHash;
use crate::{ImageSummary, Options};

/// Free inodes left over beyond what the tree needs.
const INODE_SLACK: u64 = 16;
/// Free data blocks left over: this many plus 1/64 of what the tree needs.
const BLOCK_SLACK: u64 = 32;
/// Files this large or larger need the `large_file` feature.
const LARGE_FILE: u64 = 1 << 31;

/// Builds the image for `src`.
pub fn build(src: &Path, opts: &Options) -> Result<(Vec<u8>, ImageSummary), Error> {
    let label = encode_label(&opts.label)?;
    let time = resolve_time(opts.timestamp)?;
    let min_blocks = opts.min_size_bytes.div_ceil(BLOCK_SIZE_U64);
    if min_blocks > MAX_BLOCKS {
        return Err(too_large(min_blocks));
    }

    let tree = tree::walk(src)?;
    let planned = inodes::plan(&tree)?;
    let max_ino = planned.iter().map(|p| p.ino).max().unwrap_or(FIRST_INO);
    let layout = place(&planned, max_ino, min_blocks)?;
    let geo = layout.geo;

    let len = usize::try_from(u64::from(geo.blocks) * BLOCK_SIZE_U64)
        .map_err(|_| too_large(u64::from(geo.blocks)))?;
    let mut img = vec![0u8; len];
    let mut hash = MetaHash::new();
    let written = write_inodes(&mut img, &planned, &layout, time, &mut hash)?;
    let counts = write_groups(
        &mut img,
        &geo,
        &planned,
        &written.block_bits,
        max_ino,
        &mut hash,
    );

    let mut sb = Superblock {
        inodes_count: geo.inodes(),
        blocks_count: geo.blocks,
        free_blocks: counts.free_blocks,
        free_inodes: counts.free_inodes,
        inodes_per_group: geo.inodes_per_group,
        time,
        feature_incompat: INCOMPAT_FILETYPE,
        feature_ro_compat: if written.large_file {
            RO_COMPAT_LARGE_FILE
        } else {
            0
        },
        uuid: [0; 16],
        label,
        block_group_nr: 0,
    };
    hash.update(&sb.encode());
    sb.uuid = hash.uuid();
    for g in 0..geo.groups {
        // Group 0's superblock follows the 1 KiB boot area; the backups
        // start their groups' first blocks.
        let at = match g {
            0 => SUPERBLOCK_OFFSET,
            _ => geo.group_start(g) as usize * BLOCK_SIZE,
        };
        sb.block_group_nr = g as u16;
        img[at..at + SUPERBLOCK_SIZE].copy_from_slice(&sb.encode());
    }

    let count = |f: fn(&Content) -> bool| planned.iter().filter(|p| f(&p.content)).count();
    let summary = ImageSummary {
        size_bytes: img.len() as u64,
        blocks: geo.blocks,
        free_blocks: counts.free_blocks,
        groups: geo.groups,
        inodes: geo.inodes(),
        free_inodes: counts.free_inodes,
        files: count(|c| matches!(c, Content::File(_))),
        directories: count(|c| matches!(c, Content::Dir(_))),
        symlinks: count(|c| matches!(c, Content::FastSymlink(_) | Content::SlowSymlink(_))),
        split_files: written.split_files,
        uuid: sb.uuid,
    };
    Ok((img, summary))
}

/// Sizes the image and places every inode's blocks.
fn place(planned: &[Planned], max_ino: u32, min_blocks: u64) -> Result<Layout, Error> {
    let mut requests = Vec::with_capacity(planned.len());
    for p in planned {
        let data = p.data_blocks();
        let indirect = blockmap::indirect_blocks(data).ok_or_else(|| too_large(data))?;
        requests.push(Request { data, indirect });
    }
    let payload = requests
        .iter()
        .fold(0u64, |acc, r| acc.saturating_add(r.data + r.indirect));
    let slack = BLOCK_SLACK + payload / 64;
    let inodes = u64::from(max_ino) + INODE_SLACK;
    alloc::plan(&requests, inodes, min_blocks, slack).map_err(too_large)
}

/// What writing the inodes found out.
#[derive(Debug)]
struct Written {
    /// Blocks used by inodes, one bit per block across all groups.
    block_bits: Vec<u8>,
    /// Regular files whose data is in more than one run.
    split_files: usize,
    /// Whether some file needs the `large_file` feature.
    large_file: bool,
}

/// Writes every inode, its contents and its indirect blocks.
fn write_inodes(
    img: &mut [u8],
    planned: &[Planned],
    placed: &Layout,
    time: u32,
    hash: &mut MetaHash,
) -> Result<Written, Error> {
    let geo = &placed.geo;
    let mut written = Written {
        block_bits: vec![0u8; geo.groups as usize * BLOCK_SIZE],
        split_files: 0,
        large_file: false,
    };
    for (p, place) in planned.iter().zip(&placed.placements) {
        let block = match &p.content {
            Content::FastSymlink(target) => *target,
            Content::Dir(bytes) | Content::SlowSymlink(bytes) => {
                write_runs(img, &place.data, bytes)?;
                hash.update(bytes);
                write_block_map(img, place, hash)?
            }
            Content::File(path) => {
                copy_file(img, &place.data, path, p.size)?;
                if place.data.len() > 1 {
                    written.split_files += 1;
                }
                write_block_map(img, place, hash)?
            }
        };
        let mut used = 0;
        for e in place.data.iter().chain(&place.indirect) {
            set_bits(&mut written.block_bits, e.start.into(), e.len.into());
            used += e.len;
        }
        written.large_file |= p.size >= LARGE_FILE;
        let inode = Inode {
            mode: p.mode,
            size: p.size,
            time,
            links: p.links,
            // At most MAX_BLOCKS * 8: no overflow.
            sectors: used * (BLOCK_SIZE as u32 / 512),
            block,
        };
        let bytes = inode.encode();
        let at = inode_offset(geo, p.ino);
        img[at..at + INODE_SIZE].copy_from_slice(&bytes);
        hash.update(&bytes);
    }
    Ok(written)
}

/// Writes the indirect blocks of `place` and returns the inode's `i_block`.
fn write_block_map(
    img: &mut [u8],
    place: &Placement,
    hash: &mut MetaHash,
) -> Result<[u8; 60], Error> {
    let i_block = blockmap::build(&place.data, &place.indirect, &mut |b, table| {
        let at = b as usize * BLOCK_SIZE;
        let block = &mut img[at..at + BLOCK_SIZE];
        for (dst, v) in block.chunks_exact_mut(4).zip(table) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        hash.update(block);
    })
    .ok_or(Error::Internal("indirect block count mismatch"))?;
    Ok(layout::block_array(&i_block))
}

/// Free counts over the whole image.
#[derive(Debug)]
struct Counts {
    free_blocks: u32,
    free_inodes: u32,
}

/// Writes every group's bitmaps and every copy of the group descriptor
/// table. Free counts are read back from the bitmaps, so descriptors and
/// bitmaps cannot disagree.
fn write_groups(
    img: &mut [u8],
    geo: &Geometry,
    planned: &[Planned],
    inode_blocks: &[u8],
    max_ino: u32,
    hash: &mut MetaHash,
) -> Counts {
    let mut block_bits = inode_blocks.to_vec();
    for g in 0..geo.groups {
        set_bits(
            &mut block_bits,
            geo.group_start(g).into(),
            geo.overhead().into(),
        );
    }
    // Bits past the end of the image (in a short last group) are set, as
    // e2fsck expects.
    let padded = u64::from(geo.groups) * u64::from(BLOCKS_PER_GROUP);
    set_bits(
        &mut block_bits,
        geo.blocks.into(),
        padded - u64::from(geo.blocks),
    );

    let mut dirs_per_group = vec![0u16; geo.groups as usize];
    for p in planned.iter().filter(|p| p.is_dir()) {
        // At most 32768 inodes, one bitmap's worth, live in a group.
        dirs_per_group[((p.ino - 1) / geo.inodes_per_group) as usize] += 1;
    }

    let mut counts = Counts {
        free_blocks: 0,
        free_inodes: 0,
    };
    let mut gdt = vec![0u8; geo.gdt_blocks as usize * BLOCK_SIZE];
    for (g, desc) in (0..geo.groups).zip(gdt.chunks_exact_mut(GROUP_DESC_SIZE)) {
        let gi = g as usize;
        let bits = &block_bits[gi * BLOCK_SIZE..(gi + 1) * BLOCK_SIZE];
        let at = geo.block_bitmap(g) as usize * BLOCK_SIZE;
        img[at..at + BLOCK_SIZE].copy_from_slice(bits);
        let free_blocks = BLOCKS_PER_GROUP - count_ones(bits);

        // Inodes 1..=max_ino are in use; bits past the group's inodes are
        // padding and set.
        let mut ibits = [0u8; BLOCK_SIZE];
        let first = g * geo.inodes_per_group + 1;
        let used = (max_ino + 1)
            .saturating_sub(first)
            .min(geo.inodes_per_group);
        set_bits(&mut ibits, 0, used.into());
        set_bits(
            &mut ibits,
            geo.inodes_per_group.into(),
            (MAX_INODES_PER_GROUP - geo.inodes_per_group).into(),
        );
        let at = geo.inode_bitmap(g) as usize * BLOCK_SIZE;
        img[at..at + BLOCK_SIZE].copy_from_slice(&ibits);
        let free_inodes = MAX_INODES_PER_GROUP - count_ones(&ibits);

        let d = GroupDesc {
            block_bitmap: geo.block_bitmap(g),
            inode_bitmap: geo.inode_bitmap(g),
            inode_table: geo.inode_table(g),
            // Both at most 32768, one bitmap's worth.
            free_blocks: free_blocks as u16,
            free_inodes: free_inodes as u16,
            used_dirs: dirs_per_group[gi],
        };
        desc.copy_from_slice(&d.encode());
        counts.free_blocks += free_blocks;
        counts.free_inodes += free_inodes;
    }
    hash.update(&gdt);
    // Every group holds a copy of the table, right after its superblock.
    for g in 0..geo.groups {
        let at = (geo.group_start(g) as usize + 1) * BLOCK_SIZE;
        img[at..at + gdt.len()].copy_from_slice(&gdt);
    }
    counts
}

/// Byte offset of inode `ino` in the image.
fn inode_offset(geo: &Geometry, ino: u32) -> usize {
    let idx = ino - 1;
    let g = idx / geo.inodes_per_group;
    let within = idx % geo.inodes_per_group;
    geo.inode_table(g) as usize * BLOCK_SIZE + within as usize * INODE_SIZE
}

/// Copies `bytes` into the blocks of `runs`, in order.
fn write_runs(img: &mut [u8], runs: &[Extent], mut bytes: &[u8]) -> Result<(), Error> {
    for run in runs {
        let at = run.start as usize * BLOCK_SIZE;
        let n = bytes.len().min(run.len as usize * BLOCK_SIZE);
        let (head, rest) = bytes.split_at(n);
        img.get_mut(at..at + n)
            .ok_or(Error::Internal("data run outside the image"))?
            .copy_from_slice(head);
        bytes = rest;
    }
    if bytes.is_empty() {
        Ok(())
    } else {
        Err(Error::Internal("data runs shorter than the content"))
    }
}

/// Reads the `size`-byte file at `path` into the blocks of `runs`.
fn copy_file(img: &mut [u8], runs: &[Extent], path: &Path, size: u64) -> Result<(), Error> {
    let changed = || Error::FileChanged {
        path: path.to_path_buf(),
    };
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() || meta.len() != size {
        return Err(changed());
    }
    let mut left = size;
    for run in runs {
        let at = run.start as usize * BLOCK_SIZE;
        let n = left.min(u64::from(run.len) * BLOCK_SIZE_U64) as usize;
        let dst = img
            .get_mut(at..at + n)
            .ok_or(Error::Internal("data run outside the image"))?;
        f.read_exact(dst).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => changed(),
            _ => Error::io(path, e),
        })?;
        left -= n as u64;
    }
    if left != 0 {
        return Err(Error::Internal("data runs shorter than the file"));
    }
    // The file must end where it did when the tree was walked.
    let mut probe = [0u8; 1];
    loop {
        match f.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err(changed()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
}

/// The label as the 16 NUL-padded bytes of `s_volume_name`.
fn encode_label(label: &str) -> Result<[u8; 16], Error> {
    let bad = |reason| Error::BadLabel {
        label: label.to_owned(),
        reason,
    };
    if label.len() > 16 {
        return Err(bad("is longer than 16 bytes"));
    }
    if label.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let mut out = [0u8; 16];
    out[..label.len()].copy_from_slice(label.as_bytes());
    Ok(out)
}

/// The timestamp for every inode and the superblock: the option, else
/// `SOURCE_DATE_EPOCH`, else 0; clamped to the largest time a signed 32-bit
/// ext2 timestamp holds (early 2038).
fn resolve_time(explicit: Option<u64>) -> Result<u32, Error> {
    let secs = match explicit {
        Some(t) => t,
        None => match std::env::var_os("SOURCE_DATE_EPOCH") {
            None => 0,
            Some(v) if v.is_empty() => 0,
            Some(v) => v
                .to_str()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| Error::BadSourceDateEpoch {
                    value: v.to_string_lossy().into_owned(),
                })?,
        },
    };
    Ok(secs.min(i32::MAX as u64) as u32)
}

fn too_large(blocks: u64) -> Error {
    Error::ImageTooLarge {
        needed: blocks.saturating_mul(BLOCK_SIZE_U64),
        limit: MAX_BLOCKS * BLOCK_SIZE_U64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked() {
        assert_eq!(&encode_label("coco").unwrap()[..5], b"coco\0");
        assert!(encode_label("0123456789abcdef").is_ok());
        assert!(matches!(
            encode_label("0123456789abcdefg"),
            Err(Error::BadLabel { .. })
        ));
        assert!(encode_label("a\0b").is_err());
    }

    #[test]
    fn explicit_time_is_clamped() {
        assert_eq!(resolve_time(Some(5)).unwrap(), 5);
        assert_eq!(resolve_time(Some(u64::MAX)).unwrap(), i32::MAX as u32);
    }
}
