//! A read-only ext2 reader over the ramdisk's bytes.
//!
//! The kernel maps file data into shards instead of copying it, so besides
//! [`Ext2::read`] the reader answers [`Ext2::block_of`]: which disk block
//! holds a file's n-th block (the kernel maps `image + block * block_size`),
//! and [`Ext2::run_at`]: how many of the following blocks are physically
//! consecutive, so a big file is mapped run by run at a few instructions
//! per block.
//!
//! Supported: revision 0 and 1, block sizes 1024..=65536, 128-byte or
//! larger inodes, the `filetype` directory-entry feature, subdirectories,
//! direct, single, double and triple indirect blocks, holes (read as zeros),
//! `large_file` sizes. Refused ([`FsError::Unsupported`]): every other
//! INCOMPAT feature (journal recovery, extents, 64-bit, meta_bg, …) and
//! extent- or inline-data inodes.
//!
//! Every on-disk value is hostile. Block and inode numbers are checked
//! against the superblock's counts *and* the image length; directory
//! walks stop at each entry's `rec_len` (which must be ≥ 8, 4-aligned and
//! inside its block, so every loop advances) and at the directory's size;
//! path components are bounded by the path's length. Nothing here panics
//! on any image (fuzzed in the tests).

use crate::bytes::{u16_at, u32_at};
use coconut_abi::syscall::Error;

/// Byte offset of the primary superblock.
pub const SUPERBLOCK_OFFSET: usize = 1024;
/// The root directory's inode.
pub const ROOT_INO: u32 = 2;
const MAGIC: u16 = 0xef53;
const INCOMPAT_FILETYPE: u32 = 0x2;
/// RO_COMPAT features that do not change how a reader sees the data:
/// sparse_super, large_file, btree_dir (its directories are still linear).
const RO_COMPAT_KNOWN: u32 = 0x1 | 0x2 | 0x4;
const EXTENTS_FL: u32 = 0x8_0000;
const INLINE_DATA_FL: u32 = 0x1000_0000;
const S_IFMT: u16 = 0o170_000;
const S_IFDIR: u16 = 0o040_000;
const S_IFREG: u16 = 0o100_000;
const S_IFLNK: u16 = 0o120_000;
const DIRECT: u64 = 12;

/// Why a filesystem operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No ext2 superblock (too short or wrong magic).
    NotExt2,
    /// A feature this reader does not implement.
    Unsupported,
    /// On-disk data is inconsistent (a number out of range, a bad entry…).
    Corrupt,
    /// No such file or directory.
    NotFound,
    /// A path component is not a directory.
    NotADirectory,
    /// The path names something other than a regular file.
    NotAFile,
    /// The path is not absolute.
    BadPath,
    /// A file block index past the end of the file.
    OutOfRange,
}

impl From<FsError> for Error {
    fn from(e: FsError) -> Error {
        match e {
            FsError::NotFound => Error::NotFound,
            FsError::NotADirectory | FsError::NotAFile => Error::NotAFile,
            FsError::BadPath | FsError::OutOfRange => Error::InvalidArgument,
            FsError::NotExt2 | FsError::Unsupported | FsError::Corrupt => Error::NoDevice,
        }
    }
}

/// An inode's fields this reader uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inode {
    /// Its number.
    pub ino: u32,
    /// `i_mode` (type and permission bits).
    pub mode: u16,
    /// Size in bytes.
    pub size: u64,
    /// `i_block`: 12 direct, single, double, triple indirect.
    pub block: [u32; 15],
}

impl Inode {
    /// A directory?
    pub const fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// A regular file?
    pub const fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// A symbolic link?
    pub const fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

/// Where a file block's pointer lives.
enum Ptr {
    /// Inside the hole of a missing indirect block.
    Hole,
    /// `i_block[i]`.
    Direct(usize),
    /// Pointer `slot` of indirect block `block`.
    InBlock { block: u32, slot: u64 },
}

/// A directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// The inode it names.
    pub ino: u32,
    /// The entry's name.
    pub name: &'a [u8],
}

/// A validated ext2 image.
#[derive(Clone, Copy, Debug)]
pub struct Ext2<'a> {
    img: &'a [u8],
    block_size: u32,
    blocks_count: u32,
    inodes_count: u32,
    inodes_per_group: u32,
    groups: u32,
    inode_size: u32,
    gdt_block: u32,
    filetype: bool,
    label: [u8; 16],
}

impl<'a> Ext2<'a> {
    /// Checks the superblock of `img` and returns a reader.
    pub fn new(img: &'a [u8]) -> Result<Self, FsError> {
        let sb = img
            .get(SUPERBLOCK_OFFSET..SUPERBLOCK_OFFSET.saturating_add(1024))
            .ok_or(FsError::NotExt2)?;
        let r32 = |off| u32_at(sb, off).unwrap_or(0);
        if u16_at(sb, 56) != Some(MAGIC) {
            return Err(FsError::NotExt2);
        }
        let log = r32(24);
        if log > 6 {
            return Err(FsError::Corrupt);
        }
        let block_size = 1024u32 << log;
        let inodes_count = r32(0);
        let blocks_count = r32(4);
        let first_data_block = r32(20);
        let blocks_per_group = r32(32);
        let inodes_per_group = r32(40);
        let rev = r32(76);
        let (inode_size, incompat, ro_compat) = match rev {
            0 => (128, 0, 0),
            1 => (u32::from(u16_at(sb, 88).unwrap_or(0)), r32(96), r32(100)),
            _ => return Err(FsError::Unsupported),
        };
        if incompat & !INCOMPAT_FILETYPE != 0 || ro_compat & !RO_COMPAT_KNOWN != 0 {
            return Err(FsError::Unsupported);
        }
        let sane = inode_size >= 128
            && inode_size.is_power_of_two()
            && inode_size <= block_size
            && blocks_per_group > 0
            && inodes_per_group > 0
            && blocks_count > first_data_block
            && first_data_block == u32::from(block_size == 1024);
        if !sane {
            return Err(FsError::Corrupt);
        }
        let groups = div_ceil(
            u64::from(blocks_count.saturating_sub(first_data_block)),
            u64::from(blocks_per_group),
        );
        let groups = u32::try_from(groups).map_err(|_| FsError::Corrupt)?;
        if u64::from(groups).saturating_mul(u64::from(inodes_per_group)) < u64::from(inodes_count) {
            return Err(FsError::Corrupt);
        }
        let mut label = [0u8; 16];
        if let Some(l) = sb.get(120..136) {
            label.copy_from_slice(l);
        }
        let fs = Ext2 {
            img,
            block_size,
            blocks_count,
            inodes_count,
            inodes_per_group,
            groups,
            inode_size,
            gdt_block: first_data_block.saturating_add(1),
            filetype: incompat & INCOMPAT_FILETYPE != 0,
            label,
        };
        // The descriptor table must be inside the image.
        let gdt_len = u64::from(groups).saturating_mul(32);
        fs.bytes(fs.gdt_block, 0, gdt_len)?;
        Ok(fs)
    }

    /// Bytes per block.
    pub const fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Blocks in the filesystem.
    pub const fn blocks_count(&self) -> u32 {
        self.blocks_count
    }

    /// The volume label (NUL-padded).
    pub const fn label(&self) -> [u8; 16] {
        self.label
    }

    /// Byte offset of block `block` in the image (for mapping); the block
    /// lies wholly inside the image.
    pub fn block_offset(&self, block: u32) -> Result<usize, FsError> {
        self.bytes(block, 0, u64::from(self.block_size))?;
        Ok((block as usize).saturating_mul(self.block_size as usize))
    }

    /// `len` bytes at `offset` inside block `block`, checked.
    fn bytes(&self, block: u32, offset: u64, len: u64) -> Result<&'a [u8], FsError> {
        if block >= self.blocks_count {
            return Err(FsError::Corrupt);
        }
        let start = u64::from(block)
            .checked_mul(u64::from(self.block_size))
            .and_then(|b| b.checked_add(offset))
            .ok_or(FsError::Corrupt)?;
        let end = start.checked_add(len).ok_or(FsError::Corrupt)?;
        let start = usize::try_from(start).map_err(|_| FsError::Corrupt)?;
        let end = usize::try_from(end).map_err(|_| FsError::Corrupt)?;
        self.img.get(start..end).ok_or(FsError::Corrupt)
    }

    /// Reads inode `ino`.
    pub fn inode(&self, ino: u32) -> Result<Inode, FsError> {
        if ino == 0 || ino > self.inodes_count {
            return Err(FsError::Corrupt);
        }
        let index = ino.saturating_sub(1);
        let group = index
            .checked_div(self.inodes_per_group)
            .ok_or(FsError::Corrupt)?;
        let in_group = index
            .checked_rem(self.inodes_per_group)
            .ok_or(FsError::Corrupt)?;
        if group >= self.groups {
            return Err(FsError::Corrupt);
        }
        let gd = self.bytes(self.gdt_block, u64::from(group).saturating_mul(32), 32)?;
        let table = u32_at(gd, 8).ok_or(FsError::Corrupt)?;
        let offset = u64::from(in_group).saturating_mul(u64::from(self.inode_size));
        let per_block = u64::from(self.block_size);
        let block = u64::from(table).saturating_add(offset.checked_div(per_block).unwrap_or(0));
        let block = u32::try_from(block).map_err(|_| FsError::Corrupt)?;
        let raw = self.bytes(block, offset.checked_rem(per_block).unwrap_or(0), 128)?;
        let r32 = |off| u32_at(raw, off).unwrap_or(0);
        let flags = r32(32);
        if flags & (EXTENTS_FL | INLINE_DATA_FL) != 0 {
            return Err(FsError::Unsupported);
        }
        let mode = u16_at(raw, 0).unwrap_or(0);
        let mut size = u64::from(r32(4));
        if mode & S_IFMT == S_IFREG {
            size |= u64::from(r32(108)) << 32;
        }
        let mut block = [0u32; 15];
        for (i, b) in block.iter_mut().enumerate() {
            *b = r32(i.saturating_mul(4).saturating_add(40));
        }
        Ok(Inode {
            ino,
            mode,
            size,
            block,
        })
    }

    /// Blocks a file of `size` bytes spans.
    fn file_blocks(&self, size: u64) -> u64 {
        div_ceil(size, u64::from(self.block_size))
    }

    /// The disk block holding the `index`-th block of `inode`'s data;
    /// `Ok(None)` for a hole. Indices at or past the end of the file are
    /// `OutOfRange`; pointers outside the filesystem are `Corrupt`.
    pub fn block_of(&self, inode: &Inode, index: u64) -> Result<Option<u32>, FsError> {
        match self.locate(inode, index)? {
            Ptr::Hole => Ok(None),
            Ptr::Direct(i) => self.checked(inode.block.get(i).copied().unwrap_or(0)),
            Ptr::InBlock { block, slot } => {
                let raw = self.bytes(block, slot.saturating_mul(4), 4)?;
                self.checked(u32_at(raw, 0).ok_or(FsError::Corrupt)?)
            }
        }
    }

    /// The longest run of physically consecutive disk blocks holding file
    /// blocks `index..index + n`, with `1 <= n <= max` (`max` 0 counts as
    /// 1): `Some((first_disk_block, n))`, or `None` if `index` is a hole.
    ///
    /// For mapping big files: the pointers inside one indirect block are
    /// compared in a tight loop instead of walking the indirect chain again
    /// for every block, so a contiguous 60 MB file costs a few instructions
    /// per block.
    pub fn run_at(
        &self,
        inode: &Inode,
        index: u64,
        max: u64,
    ) -> Result<Option<(u32, u64)>, FsError> {
        let Some(first) = self.block_of(inode, index)? else {
            return Ok(None);
        };
        let left = self.file_blocks(inode.size).saturating_sub(index);
        let limit = left.min(max.max(1));
        let per = u64::from(self.block_size / 4);
        let mut n: u64 = 1;
        'run: while n < limit {
            let want = u64::from(first).saturating_add(n);
            match self.locate(inode, index.saturating_add(n))? {
                Ptr::Hole => break,
                Ptr::Direct(i) => {
                    if inode.block.get(i).map(|&b| u64::from(b)) != Some(want) {
                        break;
                    }
                    n = n.saturating_add(1);
                }
                Ptr::InBlock { block, slot } => {
                    let ptrs = self.bytes(block, slot.saturating_mul(4), {
                        per.saturating_sub(slot).saturating_mul(4)
                    })?;
                    // `first + n` cannot wrap: both are far below 2^64.
                    let mut want = u64::from(first).wrapping_add(n);
                    for ptr in ptrs.chunks_exact(4) {
                        if n >= limit {
                            break 'run;
                        }
                        let ptr = <[u8; 4]>::try_from(ptr).map_or(0, u32::from_le_bytes);
                        if u64::from(ptr) != want {
                            break 'run;
                        }
                        n = n.wrapping_add(1);
                        want = want.wrapping_add(1);
                    }
                }
            }
        }
        // Consecutive after `first`, so only the last one needs checking.
        if u64::from(first).saturating_add(n) > u64::from(self.blocks_count) {
            return Err(FsError::Corrupt);
        }
        Ok(Some((first, n)))
    }

    /// Where the pointer to file block `index` lives.
    fn locate(&self, inode: &Inode, index: u64) -> Result<Ptr, FsError> {
        if index >= self.file_blocks(inode.size) {
            return Err(FsError::OutOfRange);
        }
        if index < DIRECT {
            return Ok(Ptr::Direct(index as usize));
        }
        let per = u64::from(self.block_size / 4);
        let mut rest = index.saturating_sub(DIRECT);
        // (top pointer, levels of indirection); `span` is the blocks that level covers
        let mut span = per;
        for (top, levels) in [(12usize, 1u32), (13, 2), (14, 3)] {
            if rest < span {
                let top = inode.block.get(top).copied().unwrap_or(0);
                return self.walk(top, levels, rest);
            }
            rest = rest.saturating_sub(span);
            span = span.saturating_mul(per);
        }
        Err(FsError::OutOfRange)
    }

    /// Follows `levels - 1` indirect blocks from `top` to the indirect
    /// block holding the pointer to data block `rest` of that range.
    fn walk(&self, top: u32, levels: u32, rest: u64) -> Result<Ptr, FsError> {
        let per = u64::from(self.block_size / 4);
        let mut block = top;
        let mut span = per.saturating_pow(levels.saturating_sub(1));
        let mut rest = rest;
        for _ in 1..levels {
            if self.checked(block)?.is_none() {
                return Ok(Ptr::Hole);
            }
            let slot = rest.checked_div(span).unwrap_or(0);
            rest = rest.checked_rem(span).unwrap_or(0);
            let raw = self.bytes(block, slot.saturating_mul(4), 4)?;
            block = u32_at(raw, 0).ok_or(FsError::Corrupt)?;
            span = span.checked_div(per).unwrap_or(1);
        }
        if self.checked(block)?.is_none() {
            return Ok(Ptr::Hole);
        }
        Ok(Ptr::InBlock { block, slot: rest })
    }

    /// 0 is a hole; anything else must be a block of the filesystem.
    fn checked(&self, block: u32) -> Result<Option<u32>, FsError> {
        match block {
            0 => Ok(None),
            b if b < self.blocks_count => Ok(Some(b)),
            _ => Err(FsError::Corrupt),
        }
    }

    /// Reads up to `buf.len()` bytes of `inode` at `offset`; returns how
    /// many (0 at or past the end). Holes read as zeros.
    pub fn read(&self, inode: &Inode, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let remaining = inode.size.saturating_sub(offset);
        let want = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let bs = u64::from(self.block_size);
        let mut done = 0usize;
        while done < want {
            let pos = offset.saturating_add(done as u64);
            let in_block = pos.checked_rem(bs).unwrap_or(0);
            let chunk = usize::try_from(bs.saturating_sub(in_block))
                .unwrap_or(usize::MAX)
                .min(want.saturating_sub(done));
            let dst = buf
                .get_mut(done..done.saturating_add(chunk))
                .ok_or(FsError::Corrupt)?;
            match self.block_of(inode, pos.checked_div(bs).unwrap_or(0))? {
                Some(b) => dst.copy_from_slice(self.bytes(b, in_block, chunk as u64)?),
                None => dst.fill(0),
            }
            done = done.saturating_add(chunk);
        }
        Ok(done)
    }

    /// Calls `f` for each entry of directory `dir` until it returns `false`.
    pub fn for_each_entry(
        &self,
        dir: &Inode,
        mut f: impl FnMut(DirEntry<'a>) -> bool,
    ) -> Result<(), FsError> {
        if !dir.is_dir() {
            return Err(FsError::NotADirectory);
        }
        let bs = u64::from(self.block_size);
        let blocks = self.file_blocks(dir.size);
        if blocks > u64::from(self.blocks_count) {
            // Larger than the filesystem: refuse instead of walking holes.
            return Err(FsError::Corrupt);
        }
        for index in 0..blocks {
            let Some(block) = self.block_of(dir, index)? else {
                continue;
            };
            let data = self.bytes(block, 0, bs)?;
            let mut pos = 0usize;
            while pos.saturating_add(8) <= data.len() {
                let ino = u32_at(data, pos).ok_or(FsError::Corrupt)?;
                let rec_len =
                    usize::from(u16_at(data, pos.saturating_add(4)).ok_or(FsError::Corrupt)?);
                let name_len = if self.filetype {
                    data.get(pos.saturating_add(6))
                        .map_or(0, |&b| usize::from(b))
                } else {
                    usize::from(u16_at(data, pos.saturating_add(6)).unwrap_or(0))
                };
                let end = pos.checked_add(rec_len).ok_or(FsError::Corrupt)?;
                if rec_len < 8
                    || rec_len % 4 != 0
                    || end > data.len()
                    || name_len.saturating_add(8) > rec_len
                {
                    return Err(FsError::Corrupt);
                }
                if ino != 0 {
                    let name_start = pos.saturating_add(8);
                    let name = data
                        .get(name_start..name_start.saturating_add(name_len))
                        .ok_or(FsError::Corrupt)?;
                    if !f(DirEntry { ino, name }) {
                        return Ok(());
                    }
                }
                pos = end;
            }
        }
        Ok(())
    }

    /// The inode named `name` in directory `dir`.
    pub fn find_in(&self, dir: &Inode, name: &[u8]) -> Result<u32, FsError> {
        let mut found = None;
        self.for_each_entry(dir, |e| {
            if e.name == name {
                found = Some(e.ino);
                false
            } else {
                true
            }
        })?;
        found.ok_or(FsError::NotFound)
    }

    /// Resolves an absolute path (`/a/b/c`; empty components are skipped,
    /// symlinks are not followed) to its inode.
    pub fn lookup(&self, path: &[u8]) -> Result<Inode, FsError> {
        let rest = path.strip_prefix(b"/").ok_or(FsError::BadPath)?;
        let mut node = self.inode(ROOT_INO)?;
        for component in rest.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            if !node.is_dir() {
                return Err(FsError::NotADirectory);
            }
            let ino = self.find_in(&node, component)?;
            node = self.inode(ino)?;
        }
        Ok(node)
    }

    /// Resolves `path` to a regular file.
    pub fn open(&self, path: &[u8]) -> Result<Inode, FsError> {
        let node = self.lookup(path)?;
        if node.is_file() {
            Ok(node)
        } else {
            Err(FsError::NotAFile)
        }
    }
}

/// `a / b` rounded up; 0 when `b` is 0 (`u64::div_ceil` would panic, and
/// the compiler cannot see that block sizes are never 0).
fn div_ceil(a: u64, b: u64) -> u64 {
    let q = a.checked_div(b).unwrap_or(0);
    let r = a.checked_rem(b).unwrap_or(0);
    q.saturating_add(u64::from(r != 0))
}

#[cfg(test)]
mod tests;
