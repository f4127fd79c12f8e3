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
