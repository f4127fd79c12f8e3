//! Recognising an ext2 file system image from its superblock.
//!
//! Boot only identifies module 0 (the VMM's ramdisk); the read-only file
//! system comes later. The superblock is 1024 bytes at byte offset 1024.

use coconut_core::ext2::{Ext2, FsError as CoreFsError};

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

/// The ramdisk's file system: coconut-core's host-tested ext2 reader
/// (`coconut_core::ext2`, subdirectories, direct to triple indirect blocks,
/// every on-disk value checked) plus what the kernel adds for mapping and
/// word copies: the image itself, contiguous-run checks and a cursor.
#[derive(Clone, Copy, Debug)]
pub struct Fs {
    core: Ext2<'static>,
    image: &'static [u8],
}

/// An inode (coconut-core's).
pub type Inode = coconut_core::ext2::Inode;

/// Why a path did not resolve (the kernel's three cases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No such entry.
    NotFound,
    /// A file where a directory was needed or the reverse.
    NotAFile,
    /// The image is inconsistent (or the path malformed).
    Corrupt,
}

impl From<CoreFsError> for FsError {
    fn from(e: CoreFsError) -> Self {
        match e {
            CoreFsError::NotFound => FsError::NotFound,
            CoreFsError::NotADirectory | CoreFsError::NotAFile => FsError::NotAFile,
            _ => FsError::Corrupt,
        }
    }
}

impl Fs {
    /// Opens the image; `None` if it is not a usable ext2.
    pub fn new(image: &'static [u8]) -> Option<Self> {
        Some(Fs {
            core: Ext2::new(image).ok()?,
            image,
        })
    }

    /// Bytes per block.
    pub fn block_size(&self) -> u64 {
        u64::from(self.core.block_size())
    }

    /// Resolves an absolute path to its inode.
    pub fn lookup(&self, path: &[u8]) -> Result<Inode, FsError> {
        Ok(self.core.lookup(path)?)
    }

    /// Copies file bytes from `offset` into `buf`; returns the count (0 at
    /// the end or on a corrupt block). Holes read as zeroes.
    pub fn read(&self, inode: &Inode, offset: u64, buf: &mut [u8]) -> usize {
        self.core.read(inode, offset, buf).unwrap_or(0)
    }

    /// The file bytes from `pos` to the end of their block (or of the
    /// file), straight from the image; `None` for a hole or past the end.
    pub fn bytes_at(&self, inode: &Inode, pos: u64) -> Option<&'static [u8]> {
        if pos >= inode.size {
            return None;
        }
        let bs = self.block_size();
        let in_block = pos % bs;
        let n = (bs - in_block).min(inode.size - pos);
        let b = self.core.block_of(inode, pos / bs).ok()??;
        let off = self.core.block_offset(b).ok()? as u64 + in_block;
        self.image.get(off as usize..(off + n) as usize)
    }

    /// The whole file as one slice of the image, if it is stored as one
    /// contiguous run (holes or a split file: `None`).
    pub fn file_bytes(&self, inode: &Inode) -> Option<&'static [u8]> {
        let blocks = inode.size.div_ceil(self.block_size());
        let first = self.contiguous_run(inode, blocks)?;
        let off = self.core.block_offset(first).ok()?;
        self.image
            .get(off..off.checked_add(usize::try_from(inode.size).ok()?)?)
    }

    /// Where the image starts in the kernel's address space.
    pub fn image_start(&self) -> u64 {
        self.image.as_ptr() as u64
    }

    /// If the file's `count` blocks are one physically contiguous run, its
    /// first block (core's `run_at`: one compare per block).
    pub fn contiguous_run(&self, inode: &Inode, count: u64) -> Option<u32> {
        match self.core.run_at(inode, 0, count) {
            Ok(Some((first, n))) if n == count => Some(first),
            _ => None,
        }
    }
}

/// Sequential lookups of a file's blocks: keeps the last physically
/// contiguous run core's `run_at` found, so walking a file costs a compare
/// per block instead of a walk down the indirect tree.
#[derive(Debug)]
pub struct BlockCursor<'a> {
    fs: &'a Fs,
    inode: &'a Inode,
    /// (first file block, first disk block, blocks) of the cached run.
    run: (u64, u32, u64),
}

impl<'a> BlockCursor<'a> {
    /// A cursor over `inode`'s blocks.
    pub fn new(fs: &'a Fs, inode: &'a Inode) -> Self {
        BlockCursor {
            fs,
            inode,
            run: (0, 0, 0),
        }
    }

    /// Like [`Fs::block_of`].
    pub fn block_of(&mut self, index: u64) -> Option<u32> {
        let (start, first, n) = self.run;
        if index >= start && index - start < n {
            return Some(first + (index - start) as u32);
        }
        match self.fs.core.run_at(self.inode, index, u64::MAX) {
            Ok(Some((b, len))) => {
                self.run = (index, b, len);
                Some(b)
            }
            Ok(None) => Some(0),
            Err(_) => None,
        }
    }
}
