//! The one error type of the crate.
//!
//! Every failure names the source path it is about when there is one, so a
//! build script that fails can be fixed without re-running anything under a
//! debugger. Nothing in the crate panics on bad input; it returns one of
//! these instead.

use std::io;
use std::path::PathBuf;

/// Why an image could not be built or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the source tree or writing the image failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// The source root exists but is not a directory.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path given as the source root.
        path: PathBuf,
    },

    /// A directory entry's name does not fit ext2's 8-bit name length.
    #[error("{}: name is {len} bytes long; ext2 allows at most 255", path.display())]
    NameTooLong {
        /// The offending entry.
        path: PathBuf,
        /// Its name's length in bytes.
        len: usize,
    },

    /// The tree holds something other than a regular file, directory or
    /// symlink (a FIFO, socket or device node).
    #[error(
        "{}: {kind} is not supported (only regular files, directories and symlinks are)",
        path.display()
    )]
    UnsupportedFileType {
        /// The offending entry.
        path: PathBuf,
        /// What it is, e.g. "FIFO" or "socket".
        kind: &'static str,
    },

    /// A symlink whose target cannot be stored (empty, or not shorter than
    /// one block).
    #[error("{}: symlink target {reason}", path.display())]
    BadSymlink {
        /// The symlink.
        path: PathBuf,
        /// What is wrong with its target.
        reason: &'static str,
    },

    /// The source root holds an entry called `lost+found`, a name the
    /// image reserves for its own (empty) lost+found directory.
    #[error("{}: the name `lost+found` is reserved at the image root", path.display())]
    ReservedName {
        /// The offending entry.
        path: PathBuf,
    },

    /// Directories are nested deeper than the builder accepts.
    #[error("{}: directories nested deeper than {limit} levels", path.display())]
    TooDeep {
        /// The first directory past the limit.
        path: PathBuf,
        /// The nesting limit.
        limit: usize,
    },

    /// A directory is its own ancestor (possible only through bind mounts
    /// or odd filesystems; symlinks are never followed).
    #[error("{}: directory loop (this directory is its own ancestor)", path.display())]
    DirectoryLoop {
        /// The directory reached a second time.
        path: PathBuf,
    },

    /// An inode would get more links than ext2 allows (a directory with too
    /// many subdirectories, or a file with too many hard links).
    #[error("{}: more than {limit} links", path.display())]
    TooManyLinks {
        /// The directory or file.
        path: PathBuf,
        /// ext2's link limit.
        limit: u32,
    },

    /// A file's size changed between walking the tree and copying its data.
    #[error("{}: file changed while the image was being built", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
    },

    /// The image would exceed the size this builder supports.
    #[error("image would need at least {needed} bytes, above the {limit}-byte limit")]
    ImageTooLarge {
        /// A lower bound on the size the image would need, in bytes.
        needed: u64,
        /// The limit, in bytes.
        limit: u64,
    },

    /// The requested volume label cannot be stored.
    #[error("volume label {label:?} {reason}")]
    BadLabel {
        /// The label as given.
        label: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// `SOURCE_DATE_EPOCH` is set but is not a non-negative integer.
    #[error("SOURCE_DATE_EPOCH={value:?} is not a non-negative number of seconds")]
    BadSourceDateEpoch {
        /// The variable's value.
        value: String,
    },

    /// The output file would land inside the source tree, so the next
    /// build would pick up the previous image.
    #[error("{}: output image would be written inside the source tree", path.display())]
    OutputInsideSource {
        /// The output path.
        path: PathBuf,
    },

    /// A bug in this crate: an internal invariant did not hold.
    #[error("internal error in coco-mkext2: {0}")]
    Internal(&'static str),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
