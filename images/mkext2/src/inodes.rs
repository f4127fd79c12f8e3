//! Turning the walked tree into the list of inodes to write.
//!
//! Inode numbers are fixed here: the root is 2, `lost+found` 11 (the first
//! non-reserved inode, where e2fsck looks for it), and the tree's other
//! nodes follow from 12 in walk order, so numbering depends only on the
//! tree. Directories are encoded here too, since their entries need the
//! numbers and their size decides how many blocks they need.

use std::path::PathBuf;

use crate::alloc::MAX_BLOCKS;
use crate::dir::{self, DirEntry};
use crate::error::Error;
use crate::layout::{
    BLOCK_SIZE_U64, BLOCKS_PER_GROUP, FAST_SYMLINK_MAX, FIRST_INO, FT_DIR, FT_REG_FILE, FT_SYMLINK,
    LOST_FOUND_INO, MAX_INODES_PER_GROUP, ROOT_INO, S_IFDIR, S_IFLNK, S_IFREG,
};
use crate::tree::{Kind, LOST_FOUND, MAX_LINKS, Tree};

/// What goes into an inode's data blocks.
#[derive(Debug)]
pub enum Content {
    /// Encoded directory blocks.
    Dir(Vec<u8>),
    /// A symlink target too long for the inode.
    SlowSymlink(Vec<u8>),
    /// A symlink target stored in `i_block`.
    FastSymlink([u8; 60]),
    /// A regular file to copy.
    File(PathBuf),
}

/// One inode to write.
#[derive(Debug)]
pub struct Planned {
    /// Inode number.
    pub ino: u32,
    /// `i_mode`: type and permission bits.
    pub mode: u16,
    /// `i_links_count`.
    pub links: u16,
    /// `i_size`.
    pub size: u64,
    /// What its data blocks hold.
    pub content: Content,
}

impl Planned {
    /// Data blocks it needs (indirect blocks not counted).
    pub fn data_blocks(&self) -> u64 {
        match self.content {
            Content::FastSymlink(_) => 0,
            _ => self.size.div_ceil(BLOCK_SIZE_U64),
        }
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.content, Content::Dir(_))
    }
}

/// Turns the tree into the list of inodes to write, in inode order.
pub fn plan(tree: &Tree) -> Result<Vec<Planned>, Error> {
    let max_inodes = (MAX_BLOCKS / u64::from(BLOCKS_PER_GROUP)) * u64::from(MAX_INODES_PER_GROUP);
    if tree.nodes.len() as u64 + u64::from(FIRST_INO) > max_inodes {
        // Each group holds at most one bitmap block's worth of inodes.
        let groups = (tree.nodes.len() as u64).div_ceil(u64::from(MAX_INODES_PER_GROUP));
        return Err(Error::ImageTooLarge {
            needed: groups * u64::from(BLOCKS_PER_GROUP) * BLOCK_SIZE_U64,
            limit: MAX_BLOCKS * BLOCK_SIZE_U64,
        });
    }
    // Checked above: every node index fits an inode number.
    let ino = |i: usize| {
        if i == 0 {
            ROOT_INO
        } else {
            FIRST_INO + i as u32
        }
    };
    let file_type = |i: usize| match tree.nodes[i].kind {
        Kind::Dir { .. } => FT_DIR,
        Kind::File { .. } => FT_REG_FILE,
        Kind::Symlink { .. } => FT_SYMLINK,
    };

    let mut planned = Vec::with_capacity(tree.nodes.len() + 1);
    for (i, node) in tree.nodes.iter().enumerate() {
        let links = if i == 0 { node.links + 1 } else { node.links }; // + lost+found's ".."
        if links > MAX_LINKS {
            return Err(Error::TooManyLinks {
                path: node.path.clone(),
                limit: MAX_LINKS,
            });
        }
        let (mode, size, content) = match &node.kind {
            Kind::Dir { parent, entries } => {
                let mut list = vec![
                    DirEntry {
                        ino: ino(i),
                        file_type: FT_DIR,
                        name: b".",
                    },
                    DirEntry {
                        ino: ino(*parent),
                        file_type: FT_DIR,
                        name: b"..",
                    },
                ];
                if i == 0 {
                    list.push(DirEntry {
                        ino: LOST_FOUND_INO,
                        file_type: FT_DIR,
                        name: LOST_FOUND,
                    });
                }
                list.extend(entries.iter().map(|e| DirEntry {
                    ino: ino(e.node),
                    file_type: file_type(e.node),
                    name: &e.name,
                }));
                let bytes = dir::encode(&list);
                (S_IFDIR, bytes.len() as u64, Content::Dir(bytes))
            }
            Kind::File { size } => (S_IFREG, *size, Content::File(node.path.clone())),
            Kind::Symlink { target } => {
                let content = if target.len() < FAST_SYMLINK_MAX {
                    let mut inline = [0u8; 60];
                    inline[..target.len()].copy_from_slice(target);
                    Content::FastSymlink(inline)
                } else {
                    Content::SlowSymlink(target.clone())
                };
                (S_IFLNK, target.len() as u64, content)
            }
        };
        planned.push(Planned {
            ino: ino(i),
            mode: mode | node.perm,
            links: links as u16,
            size,
            content,
        });
        if i == 0 {
            let bytes = dir::encode(&[
                DirEntry {
                    ino: LOST_FOUND_INO,
                    file_type: FT_DIR,
                    name: b".",
                },
                DirEntry {
                    ino: ROOT_INO,
                    file_type: FT_DIR,
                    name: b"..",
                },
            ]);
            planned.push(Planned {
                ino: LOST_FOUND_INO,
                mode: S_IFDIR | 0o700,
                links: 2,
                size: bytes.len() as u64,
                content: Content::Dir(bytes),
            });
        }
    }
    Ok(planned)
}
