//! On-disk ext2 structures: constants, field offsets and encoders.
//!
//! Everything here is plain data turned into little-endian bytes in
//! fixed-size arrays, so offsets are checked against the array sizes at
//! compile time and nothing depends on Rust struct layout. Field offsets
//! follow the ext2 revision 1 ("dynamic") format as described in the Linux
//! kernel's ext2 documentation and Dave Poirier's "The Second Extended File
//! System: Internal Layout". Only the fields this builder sets are named;
//! every other byte stays zero, which is the "unused / feature off" value for
//! all of them.

/// Bytes per block. Page-sized so the guest kernel can map file data blocks
/// straight into user address spaces.
pub const BLOCK_SIZE: usize = 4096;
/// [`BLOCK_SIZE`] as a `u64`, for size arithmetic.
pub const BLOCK_SIZE_U64: u64 = BLOCK_SIZE as u64;
/// `s_log_block_size`: block size is `1024 << 2`.
const LOG_BLOCK_SIZE: u32 = 2;
/// Blocks per group: one block bitmap block covers `8 * BLOCK_SIZE` blocks.
pub const BLOCKS_PER_GROUP: u32 = 8 * BLOCK_SIZE as u32;
/// At most this many inodes per group: one inode bitmap block's worth.
pub const MAX_INODES_PER_GROUP: u32 = 8 * BLOCK_SIZE as u32;
/// Bytes per on-disk inode (the revision 0 size; no extra fields).
pub const INODE_SIZE: usize = 128;
/// Inodes in one inode table block.
pub const INODES_PER_BLOCK: u32 = (BLOCK_SIZE / INODE_SIZE) as u32;
/// Bytes per group descriptor (no 64-bit feature).
pub const GROUP_DESC_SIZE: usize = 32;
/// Group descriptors per block.
pub const DESCS_PER_BLOCK: u32 = (BLOCK_SIZE / GROUP_DESC_SIZE) as u32;
/// Byte offset of the primary superblock in the image (inside block 0).
pub const SUPERBLOCK_OFFSET: usize = 1024;
/// Size of the superblock structure.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// Block numbers per indirect block.
pub const PTRS_PER_BLOCK: usize = BLOCK_SIZE / 4;

/// The root directory's inode.
pub const ROOT_INO: u32 = 2;
/// The first inode not reserved by the format; e2fsck expects
/// `lost+found` here.
pub const FIRST_INO: u32 = 11;
/// `lost+found`'s inode.
pub const LOST_FOUND_INO: u32 = FIRST_INO;

/// The ext2 magic number.
pub const EXT2_MAGIC: u16 = 0xEF53;
/// `s_state`: cleanly unmounted.
const STATE_CLEAN: u16 = 1;
/// `s_errors`: continue on errors (the mkfs default).
const ERRORS_CONTINUE: u16 = 1;
/// `s_rev_level`: dynamic inode sizes and feature flags.
const DYNAMIC_REV: u32 = 1;

/// INCOMPAT feature: directory entries carry a file-type byte.
pub const INCOMPAT_FILETYPE: u32 = 0x0002;
/// RO_COMPAT feature: some file is 2 GiB or larger.
pub const RO_COMPAT_LARGE_FILE: u32 = 0x0002;

/// Inode mode: directory.
pub const S_IFDIR: u16 = 0o040_000;
/// Inode mode: regular file.
pub const S_IFREG: u16 = 0o100_000;
/// Inode mode: symbolic link.
pub const S_IFLNK: u16 = 0o120_000;

/// Directory entry file type: regular file.
pub const FT_REG_FILE: u8 = 1;
/// Directory entry file type: directory.
pub const FT_DIR: u8 = 2;
/// Directory entry file type: symbolic link.
pub const FT_SYMLINK: u8 = 7;

/// Symlink targets shorter than this live in the inode's block array
/// ("fast" symlinks); longer ones get a data block.
pub const FAST_SYMLINK_MAX: usize = 60;

fn put_u16(buf: &mut [u8], off: usize, v: u16) {
    buf[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// The superblock fields this builder sets.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// `s_inodes_count`.
    pub inodes_count: u32,
    /// `s_blocks_count`.
    pub blocks_count: u32,
    /// `s_free_blocks_count`.
    pub free_blocks: u32,
    /// `s_free_inodes_count`.
    pub free_inodes: u32,
    /// `s_inodes_per_group`.
    pub inodes_per_group: u32,
    /// Used for `s_mtime`, `s_wtime` and `s_lastcheck`.
    pub time: u32,
    /// `s_feature_incompat`.
    pub feature_incompat: u32,
    /// `s_feature_ro_compat`.
    pub feature_ro_compat: u32,
    /// `s_uuid`.
    pub uuid: [u8; 16],
    /// `s_volume_name`, NUL-padded.
    pub label: [u8; 16],
    /// `s_block_group_nr`: which group this copy lives in.
    pub block_group_nr: u16,
}

impl Superblock {
    /// Encodes the 1024-byte superblock.
    pub fn encode(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        put_u32(&mut b, 0, self.inodes_count);
        put_u32(&mut b, 4, self.blocks_count);
        // 8: s_r_blocks_count = 0; nothing reserved on a read-only image.
        put_u32(&mut b, 12, self.free_blocks);
        put_u32(&mut b, 16, self.free_inodes);
        // 20: s_first_data_block = 0 with blocks larger than 1 KiB.
        put_u32(&mut b, 24, LOG_BLOCK_SIZE);
        put_u32(&mut b, 28, LOG_BLOCK_SIZE); // s_log_frag_size
        put_u32(&mut b, 32, BLOCKS_PER_GROUP);
        put_u32(&mut b, 36, BLOCKS_PER_GROUP); // s_frags_per_group
        put_u32(&mut b, 40, self.inodes_per_group);
        put_u32(&mut b, 44, self.time); // s_mtime
        put_u32(&mut b, 48, self.time); // s_wtime
        // 52: s_mnt_count = 0.
        put_u16(&mut b, 54, u16::MAX); // s_max_mnt_count = -1: no forced checks
        put_u16(&mut b, 56, EXT2_MAGIC);
        put_u16(&mut b, 58, STATE_CLEAN);
        put_u16(&mut b, 60, ERRORS_CONTINUE);
        // 62: s_minor_rev_level = 0.
        put_u32(&mut b, 64, self.time); // s_lastcheck
        // 68: s_checkinterval = 0 (no time-based checks); 72: s_creator_os = Linux (0).
        put_u32(&mut b, 76, DYNAMIC_REV);
        // 80, 82: s_def_resuid / s_def_resgid = 0.
        put_u32(&mut b, 84, FIRST_INO);
        put_u16(&mut b, 88, INODE_SIZE as u16);
        put_u16(&mut b, 90, self.block_group_nr);
        // 92: s_feature_compat = 0.
        put_u32(&mut b, 96, self.feature_incompat);
        put_u32(&mut b, 100, self.feature_ro_compat);
        b[104..120].copy_from_slice(&self.uuid);
        b[120..136].copy_from_slice(&self.label);
        // 136..: last-mounted path, hash seed, journal fields etc. stay zero.
        b
    }
}

/// One block group descriptor.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupDesc {
    /// `bg_block_bitmap`.
    pub block_bitmap: u32,
    /// `bg_inode_bitmap`.
    pub inode_bitmap: u32,
    /// `bg_inode_table`.
    pub inode_table: u32,
    /// `bg_free_blocks_count`.
    pub free_blocks: u16,
    /// `bg_free_inodes_count`.
    pub free_inodes: u16,
    /// `bg_used_dirs_count`.
    pub used_dirs: u16,
}

impl GroupDesc {
    /// Encodes the 32-byte descriptor.
    pub fn encode(&self) -> [u8; GROUP_DESC_SIZE] {
        let mut b = [0u8; GROUP_DESC_SIZE];
        put_u32(&mut b, 0, self.block_bitmap);
        put_u32(&mut b, 4, self.inode_bitmap);
        put_u32(&mut b, 8, self.inode_table);
        put_u16(&mut b, 12, self.free_blocks);
        put_u16(&mut b, 14, self.free_inodes);
        put_u16(&mut b, 16, self.used_dirs);
        b
    }
}

/// The inode fields this builder sets. Ownership is always root:root and
/// all three timestamps are the same fixed value.
#[derive(Debug, Clone)]
pub struct Inode {
    /// `i_mode`: file type and permission bits.
    pub mode: u16,
    /// File size in bytes (`i_size` and `i_size_high`).
    pub size: u64,
    /// `i_atime`, `i_ctime` and `i_mtime`.
    pub time: u32,
    /// `i_links_count`.
    pub links: u16,
    /// `i_blocks`: 512-byte sectors used, data plus indirect blocks.
    pub sectors: u32,
    /// `i_block`: 15 block numbers, or a fast symlink's target.
    pub block: [u8; 60],
}

impl Inode {
    /// Encodes the 128-byte inode.
    pub fn encode(&self) -> [u8; INODE_SIZE] {
        let mut b = [0u8; INODE_SIZE];
        put_u16(&mut b, 0, self.mode);
        // 2: i_uid = 0.
        put_u32(&mut b, 4, self.size as u32); // low 32 bits; high half at 108
        put_u32(&mut b, 8, self.time); // i_atime
        put_u32(&mut b, 12, self.time); // i_ctime
        put_u32(&mut b, 16, self.time); // i_mtime
        // 20: i_dtime = 0; 24: i_gid = 0.
        put_u16(&mut b, 26, self.links);
        put_u32(&mut b, 28, self.sectors);
        // 32: i_flags = 0; 36: osd1.
        b[40..100].copy_from_slice(&self.block);
        // 100: i_generation; 104: i_file_acl = 0.
        put_u32(&mut b, 108, (self.size >> 32) as u32); // i_size_high
        b
    }
}

/// Packs 15 block numbers into an inode's `i_block` bytes.
pub fn block_array(blocks: &[u32; 15]) -> [u8; 60] {
    let mut b = [0u8; 60];
    for (chunk, v) in b.chunks_exact_mut(4).zip(blocks) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_magic_sits_at_offset_56() {
        let sb = Superblock {
            inodes_count: 32,
            blocks_count: 100,
            free_blocks: 1,
            free_inodes: 2,
            inodes_per_group: 32,
            time: 0,
            feature_incompat: INCOMPAT_FILETYPE,
            feature_ro_compat: 0,
            uuid: [7; 16],
            label: *b"label\0\0\0\0\0\0\0\0\0\0\0",
            block_group_nr: 0,
        };
        let b = sb.encode();
        assert_eq!(&b[56..58], &[0x53, 0xEF]);
        assert_eq!(&b[104..120], &[7; 16]);
        assert_eq!(&b[120..125], b"label");
        assert_eq!(u32::from_le_bytes([b[24], b[25], b[26], b[27]]), 2);
    }

    #[test]
    fn inode_splits_size_into_low_and_high_halves() {
        let ino = Inode {
            mode: S_IFREG | 0o644,
            size: (3 << 32) | 5,
            time: 9,
            links: 1,
            sectors: 8,
            block: [0; 60],
        };
        let b = ino.encode();
        assert_eq!(&b[4..8], &5u32.to_le_bytes());
        assert_eq!(&b[108..112], &3u32.to_le_bytes());
        assert_eq!(&b[0..2], &(S_IFREG | 0o644).to_le_bytes());
    }
}
