//! Builds a read-only ext2 filesystem image from a directory tree.
//!
//! # Why
//!
//! The coconut guest microkernel boots with an ext2 ramdisk. The image is
//! built at `cargo build` time (from `images/build.rs`) as an ordinary user:
//! no root, no loop devices, no `mkfs`/`debugfs` on the build host. So this
//! crate writes the on-disk format itself, from nothing but `std`.
//!
//! The kernel will map file data pages read-only into user processes
//! instead of copying bytes. That drives two decisions:
//!
//! * **4096-byte blocks.** Every block is one page and, since the image is
//!   loaded page-aligned, every block is page-aligned.
//! * **Each file's data is one contiguous run of blocks.** A file's data
//!   blocks are allocated together, largest files first; its indirect
//!   blocks go elsewhere, never in the middle of its data. The only files
//!   split are those larger than one block group's data area (about
//!   127 MiB), which must cross group metadata; they get one contiguous run
//!   per group. [`ImageSummary::split_files`] counts them. (`e2fsck`
//!   reports files with indirect blocks as "non-contiguous" because it
//!   counts the out-of-line indirect blocks; their data is still one run.)
//!
//! # On-disk format
//!
//! * ext2 revision 1 (dynamic), 4096-byte blocks, 32768 blocks per group,
//!   as many groups as the size needs.
//! * 128-byte inodes (no extended fields: no nanosecond timestamps, no
//!   inline extended attributes), which is all a read-only image needs.
//! * Feature flags: only `filetype` (INCOMPAT 0x2: directory entries carry
//!   the file type, as `mkfs.ext2` does by default), plus `large_file`
//!   (RO_COMPAT 0x2) when some file is 2 GiB or larger. No `sparse_super`:
//!   every group carries a superblock and descriptor-table copy, which
//!   costs two blocks per 128 MiB. No `dir_index`, `ext_attr`,
//!   `resize_inode` or journal.
//! * Each group starts with its superblock copy (group 0's at byte 1024,
//!   after the boot area), the group descriptor table, the block bitmap,
//!   the inode bitmap and the inode table; the rest is data. The data runs
//!   of files, directories and long symlinks are placed first, largest
//!   first, each at the first free extent that holds it whole; indirect
//!   blocks are placed after all of them, in inode order.
//! * Root is inode 2; an empty `lost+found` (one block) is inode 11, as
//!   e2fsck expects; the tree's other entries follow in walk order. Files
//!   use direct, single-, double- and triple-indirect blocks (the last
//!   only for files over 4 GiB, so never under the size limit below; it
//!   is implemented and unit-tested for completeness). Symlinks shorter than 60 bytes are stored in the inode, longer
//!   ones in a data block.
//! * Every inode is owned by uid 0 / gid 0 and keeps the source's
//!   permission bits (including setuid/setgid/sticky). Hard links in the
//!   source become hard links in the image. Sockets, FIFOs and device
//!   nodes are refused. Symlinks are copied, never followed.
//! * No holes: every block of every file is allocated, so every page of a
//!   file can be mapped.
//!
//! # Reproducibility
//!
//! The same tree gives a byte-identical image: directory entries are
//! sorted by name bytes, every timestamp is [`Options::timestamp`], else
//! `SOURCE_DATE_EPOCH`, else 0 (a build script should emit
//! `cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH`), and the UUID is a hash
//! of the image's metadata (names, modes, sizes, layout). The UUID does not
//! cover file contents, to avoid a pass over every data byte, so two trees
//! that differ only in file bytes share a UUID.
//!
//! # Limits
//!
//! Images are at most 4 GiB (the whole image is assembled in memory before
//! it is written), names at most 255 bytes, directories at most 256 levels
//! deep, symlink targets shorter than 4096 bytes, and timestamps clamped to
//! 2038-01-19 (signed 32-bit seconds, as 128-byte inodes store them).

mod alloc;
mod bitmap;
mod blockmap;
mod dir;
mod error;
mod image;
mod inodes;
mod layout;
mod tree;
mod uuid;

use std::fmt;
use std::fs;
use std::path::Path;

pub use error::Error;
pub use layout::BLOCK_SIZE;

/// Largest image this crate builds, in bytes (4 GiB).
pub const MAX_IMAGE_BYTES: u64 = alloc::MAX_BLOCKS * layout::BLOCK_SIZE_U64;

/// How to build an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Volume label, at most 16 bytes (empty for none).
    pub label: String,
    /// The image is at least this many bytes (rounded up to whole blocks);
    /// it is larger if the tree needs more. 0 sizes it to the tree plus a
    /// little slack.
    pub min_size_bytes: u64,
    /// Seconds since the Unix epoch for every timestamp in the image.
    /// `None` uses `SOURCE_DATE_EPOCH` if set, else 0.
    pub timestamp: Option<u64>,
}

/// What a built image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// Image size in bytes (a multiple of [`BLOCK_SIZE`]).
    pub size_bytes: u64,
    /// Total blocks.
    pub blocks: u32,
    /// Free blocks.
    pub free_blocks: u32,
    /// Block groups.
    pub groups: u32,
    /// Total inodes.
    pub inodes: u32,
    /// Free inodes.
    pub free_inodes: u32,
    /// Regular files (distinct inodes; hard links count once).
    pub files: usize,
    /// Directories, including the root and `lost+found`.
    pub directories: usize,
    /// Symbolic links.
    pub symlinks: usize,
    /// Regular files whose data is not one contiguous run (only files
    /// larger than a block group's data area, in practice).
    pub split_files: usize,
    /// The filesystem UUID.
    pub uuid: [u8; 16],
}

impl fmt::Display for ImageSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes, {} blocks in {} group{} ({} free), {} inodes ({} free): \
             {} files, {} directories, {} symlinks",
            self.size_bytes,
            self.blocks,
            self.groups,
            if self.groups == 1 { "" } else { "s" },
            self.free_blocks,
            self.inodes,
            self.free_inodes,
            self.files,
            self.directories,
            self.symlinks,
        )?;
        if self.split_files > 0 {
            write!(f, ", {} split into several runs", self.split_files)?;
        }
        Ok(())
    }
}

/// Builds the ext2 image of the tree at `src_dir` in memory.
pub fn build_image(src_dir: &Path, opts: &Options) -> Result<Vec<u8>, Error> {
    image::build(src_dir, opts).map(|(img, _)| img)
}

/// Builds the ext2 image of the tree at `src_dir` and writes it to `out`.
///
/// The image is written to a temporary file next to `out` and renamed into
/// place, so `out` never holds a partial image. `out` must not lie inside
/// `src_dir`, or the next build would include the previous image.
pub fn write_image(src_dir: &Path, out: &Path, opts: &Options) -> Result<ImageSummary, Error> {
    check_output_outside(src_dir, out)?;
    let (img, summary) = image::build(src_dir, opts)?;

    let name = out.file_name().ok_or_else(|| {
        Error::io(
            out,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        )
    })?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = out.with_file_name(tmp_name);
    if let Err(e) = fs::write(&tmp, &img) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, out) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(out, e));
    }
    Ok(summary)
}

/// Refuses an output path inside the source tree. Paths that cannot be
/// resolved are left for the build or the write to report.
fn check_output_outside(src_dir: &Path, out: &Path) -> Result<(), Error> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let (Ok(src), Ok(parent)) = (fs::canonicalize(src_dir), fs::canonicalize(parent))
        && parent.starts_with(&src)
    {
        return Err(Error::OutputInsideSource {
            path: out.to_path_buf(),
        });
    }
    Ok(())
}
