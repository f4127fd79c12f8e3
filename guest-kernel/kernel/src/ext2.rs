//! Recognising an ext2 file system image from its superblock.
//!
//! Boot only identifies module 0 (the VMM's ramdisk); the read-only file
//! system comes later. The superblock is 1024 bytes at byte offset 1024.

use crate::bytes::{array, u16_at, u32_at};

/// Byte offset of the superblock in the image.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Bytes of the superblock.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// `s_magic`.
pub const MAGIC: u16 = 0xef53;
/// Largest `s_log_block_size` accepted: 64 KiB blocks, the ext2 maximum.
const MAX_LOG_BLOCK_SIZE: u32 = 6;

/// What the boot report shows about an ext2 image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Bytes per block (1024 << `s_log_block_size`).
    pub block_size: u32,
    /// `s_blocks_count`.
    pub blocks: u32,
    /// `s_volume_name`, NUL padded.
    pub label: [u8; 16],
}

impl Superblock {
    /// The volume label without its NUL padding.
    pub fn label(&self) -> &[u8] {
        let len = self
            .label
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.label.len());
        &self.label[..len]
    }
}

/// Parses the superblock (`bytes` starts at image offset 1024); `None` if it
/// is not an ext2 superblock.
pub fn parse_superblock(bytes: &[u8]) -> Option<Superblock> {
    if bytes.len() < SUPERBLOCK_SIZE || u16_at(bytes, 56)? != MAGIC {
        return None;
    }
    let log_block_size = u32_at(bytes, 24)?;
    if log_block_size > MAX_LOG_BLOCK_SIZE {
        return None;
    }
    Some(Superblock {
        block_size: 1024 << log_block_size,
        blocks: u32_at(bytes, 4)?,
        label: array(bytes, 120)?,
    })
}

/// A read-only ext2 file system over the ramdisk's bytes: path lookup with
/// subdirectories, regular files with direct, single, double and triple
/// indirect blocks. Every on-disk number is checked before use; loops over
/// directory entries always advance. (The kernel switches to coconut-core's
/// `ext2` once it lands; this is the minimum the shard loader needs.)
#[derive(Clone, Copy, Debug)]
pub struct Fs {
    image: &'static [u8],
    block_size: u64,
    inodes_per_group: u32,
    inode_size: u64,
    inodes_count: u32,
    groups: u32,
    first_data_block: u32,
}

/// An inode's fields the kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inode {
    /// `i_mode`.
    pub mode: u16,
    /// File size in bytes.
    pub size: u64,
    /// `i_block`: 12 direct, single, double, triple indirect.
    pub block: [u32; 15],
}

/// Why a path did not resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No such entry.
    NotFound,
    /// A file where a directory was needed or the reverse.
    NotAFile,
    /// The image is inconsistent.
    Corrupt,
}

const ROOT_INODE: u32 = 2;
const MODE_TYPE: u16 = 0xf000;
const MODE_DIR: u16 = 0x4000;
const MODE_FILE: u16 = 0x8000;

impl Inode {
    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & MODE_TYPE == MODE_DIR
    }
    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & MODE_TYPE == MODE_FILE
    }
}

impl Fs {
    /// Opens the image; `None` if it is not a usable ext2.
    pub fn new(image: &'static [u8]) -> Option<Self> {
        let sb = image.get(SUPERBLOCK_OFFSET as usize..)?;
        let parsed = parse_superblock(sb)?;
        let rev = u32_at(sb, 76)?;
        let inode_size = if rev >= 1 {
            u64::from(u16_at(sb, 88)?)
        } else {
            128
        };
        let inodes_per_group = u32_at(sb, 40)?;
        let blocks_per_group = u32_at(sb, 32)?;
        if inode_size < 128 || inodes_per_group == 0 || blocks_per_group == 0 {
            return None;
        }
        let first_data_block = u32_at(sb, 20)?;
        let groups = (parsed.blocks.checked_sub(first_data_block)?).div_ceil(blocks_per_group);
        Some(Fs {
            image,
            block_size: u64::from(parsed.block_size),
            inodes_per_group,
            inode_size,
            inodes_count: u32_at(sb, 0)?,
            groups,
            first_data_block,
        })
    }

    /// Bytes per block.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Block `n` of the image.
    fn block(&self, n: u32) -> Option<&'static [u8]> {
        let start = u64::from(n).checked_mul(self.block_size)?;
        let end = start.checked_add(self.block_size)?;
        self.image.get(start as usize..end as usize)
    }

    /// Inode number `ino`.
    pub fn inode(&self, ino: u32) -> Result<Inode, FsError> {
        if ino == 0 || ino > self.inodes_count {
            return Err(FsError::Corrupt);
        }
        let group = (ino - 1) / self.inodes_per_group;
        let index = u64::from((ino - 1) % self.inodes_per_group);
        if group >= self.groups {
            return Err(FsError::Corrupt);
        }
        let gdt_block = self.first_data_block + 1;
        let gdt = self.block(gdt_block).ok_or(FsError::Corrupt)?;
        // Group descriptors are 32 bytes; the table may span blocks.
        let desc_off = u64::from(group) * 32;
        let table_block = if desc_off + 32 <= self.block_size {
            u32_at(gdt, desc_off as usize + 8)
        } else {
            let blk = gdt_block + (desc_off / self.block_size) as u32;
            self.block(blk)
                .and_then(|b| u32_at(b, (desc_off % self.block_size) as usize + 8))
        }
        .ok_or(FsError::Corrupt)?;
        let off = u64::from(table_block)
            .checked_mul(self.block_size)
            .and_then(|b| b.checked_add(index * self.inode_size))
            .ok_or(FsError::Corrupt)? as usize;
        let raw = self.image.get(off..off + 128).ok_or(FsError::Corrupt)?;
        let mut block = [0u32; 15];
        for (i, b) in block.iter_mut().enumerate() {
            *b = u32_at(raw, 40 + 4 * i).ok_or(FsError::Corrupt)?;
        }
        let size_lo = u64::from(u32_at(raw, 4).ok_or(FsError::Corrupt)?);
        let size_hi = u64::from(u32_at(raw, 108).ok_or(FsError::Corrupt)?);
        let mode = u16_at(raw, 0).ok_or(FsError::Corrupt)?;
        let size = if mode & MODE_TYPE == MODE_FILE {
            size_lo | (size_hi << 32)
        } else {
            size_lo
        };
        Ok(Inode { mode, size, block })
    }

    /// The image block holding file block `index` of `inode` (0 = a hole).
    pub fn block_of(&self, inode: &Inode, index: u64) -> Option<u32> {
        let per = self.block_size / 4;
        let indirect = |blk: u32, i: u64| -> Option<u32> {
            if blk == 0 {
                return Some(0);
            }
            u32_at(self.block(blk)?, (i * 4) as usize)
        };
        if index < 12 {
            return Some(inode.block[index as usize]);
        }
        let mut i = index - 12;
        if i < per {
            return indirect(inode.block[12], i);
        }
        i -= per;
        if i < per * per {
            let l1 = indirect(inode.block[13], i / per)?;
            return indirect(l1, i % per);
        }
        i -= per * per;
        if i < per * per * per {
            let l1 = indirect(inode.block[14], i / (per * per))?;
            let l2 = indirect(l1, (i / per) % per)?;
            return indirect(l2, i % per);
        }
        None
    }

    /// The file bytes from `pos` to the end of their block (or of the
    /// file), straight from the image; `None` for a hole or past the end.
    pub fn bytes_at(&self, inode: &Inode, pos: u64) -> Option<&'static [u8]> {
        if pos >= inode.size {
            return None;
        }
        let in_block = pos % self.block_size;
        let n = (self.block_size - in_block).min(inode.size - pos);
        let b = self.block_of(inode, pos / self.block_size)?;
        if b == 0 {
            return None;
        }
        self.block(b)?
            .get(in_block as usize..(in_block + n) as usize)
    }

    /// Looks `name` up in directory `dir`.
    fn find(&self, dir: &Inode, name: &[u8]) -> Result<u32, FsError> {
        let blocks = dir.size.div_ceil(self.block_size);
        for b in 0..blocks {
            let blk = self.block_of(dir, b).ok_or(FsError::Corrupt)?;
            if blk == 0 {
                continue;
            }
            let data = self.block(blk).ok_or(FsError::Corrupt)?;
            let mut off = 0usize;
            while off + 8 <= data.len() {
                let ino = u32_at(data, off).ok_or(FsError::Corrupt)?;
                let rec_len = usize::from(u16_at(data, off + 4).ok_or(FsError::Corrupt)?);
                let name_len = usize::from(data[off + 6]);
                if rec_len < 8 {
                    return Err(FsError::Corrupt); // would not advance
                }
                if ino != 0 && data.get(off + 8..off + 8 + name_len) == Some(name) {
                    return Ok(ino);
                }
                off += rec_len;
            }
        }
        Err(FsError::NotFound)
    }

    /// Resolves an absolute path to its inode.
    pub fn lookup(&self, path: &[u8]) -> Result<Inode, FsError> {
        if path.first() != Some(&b'/') {
            return Err(FsError::NotFound);
        }
        let mut inode = self.inode(ROOT_INODE)?;
        for part in path.split(|&c| c == b'/').filter(|p| !p.is_empty()) {
            if !inode.is_dir() {
                return Err(FsError::NotAFile);
            }
            let ino = self.find(&inode, part)?;
            inode = self.inode(ino)?;
        }
        Ok(inode)
    }

    /// Copies file bytes from `offset` into `buf`; returns the count (0 at
    /// the end). Holes read as zeroes.
    pub fn read(&self, inode: &Inode, offset: u64, buf: &mut [u8]) -> usize {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            if pos >= inode.size {
                break;
            }
            let in_block = pos % self.block_size;
            let n =
                ((self.block_size - in_block).min(inode.size - pos) as usize).min(buf.len() - done);
            let src = self
                .block_of(inode, pos / self.block_size)
                .and_then(|b| if b == 0 { None } else { self.block(b) })
                .and_then(|b| b.get(in_block as usize..in_block as usize + n));
            match src {
                Some(s) => buf[done..done + n].copy_from_slice(s),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        done
    }
}
