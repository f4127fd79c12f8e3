//! Walking the source directory into an in-memory tree.
//!
//! The walk reads only metadata (names, types, sizes, modes, symlink
//! targets); file data is copied later straight into the image buffer.
//! Entries are sorted by their raw name bytes so the result does not depend
//! on the order the host filesystem returns them in. Symlinks are never
//! followed, so symlinked directories cannot make the walk loop; a depth
//! limit and an ancestor check cover the remaining ways (bind mounts) a tree
//! can be deeper or loopier than it looks.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::layout::BLOCK_SIZE;

/// Longest name a directory entry can hold.
pub const MAX_NAME_LEN: usize = 255;
/// Deepest directory nesting accepted below the source root.
pub const MAX_DEPTH: usize = 256;
/// ext2's link count limit (`EXT2_LINK_MAX`).
pub const MAX_LINKS: u32 = 32_000;
/// The root-level name the image reserves for its own directory.
pub const LOST_FOUND: &[u8] = b"lost+found";

/// The walked tree. `nodes[0]` is the root directory.
#[derive(Debug)]
pub struct Tree {
    /// One node per distinct inode, in walk (pre-)order.
    pub nodes: Vec<Node>,
}

/// One distinct inode of the source tree (hard links share a node).
#[derive(Debug)]
pub struct Node {
    /// Where it lives in the source tree (the first path seen, for hard
    /// links).
    pub path: PathBuf,
    /// Permission bits (`mode & 0o7777`).
    pub perm: u16,
    /// Number of directory entries naming it, plus `.` and children's `..`
    /// for directories.
    pub links: u32,
    /// What it is.
    pub kind: Kind,
}

/// The kinds of node the image can hold.
#[derive(Debug)]
pub enum Kind {
    /// A directory and its entries, sorted by name.
    Dir {
        /// Node index of the parent directory (the root is its own parent).
        parent: usize,
        /// The entries, sorted by name bytes.
        entries: Vec<Entry>,
    },
    /// A regular file of `size` bytes.
    File {
        /// Size in bytes when the tree was walked.
        size: u64,
    },
    /// A symlink and its target, stored verbatim.
    Symlink {
        /// The target bytes.
        target: Vec<u8>,
    },
}

/// One directory entry.
#[derive(Debug)]
pub struct Entry {
    /// The name bytes (1..=255 of them, no `/` or NUL).
    pub name: Vec<u8>,
    /// Index of the node it names.
    pub node: usize,
}

/// Walks `root` (which may itself be a symlink to a directory).
pub fn walk(root: &Path) -> Result<Tree, Error> {
    let meta = fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if !meta.is_dir() {
        return Err(Error::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let mut walker = Walker {
        nodes: vec![Node {
            path: root.to_path_buf(),
            perm: perm_bits(meta.mode()),
            links: 2,
            kind: Kind::Dir {
                parent: 0,
                entries: Vec::new(),
            },
        }],
        hard_links: HashMap::new(),
        ancestors: vec![(meta.dev(), meta.ino())],
    };
    walker.dir(0, root, 0)?;
    Ok(Tree {
        nodes: walker.nodes,
    })
}

struct Walker {
    nodes: Vec<Node>,
    /// (device, inode) of multiply-linked regular files seen so far.
    hard_links: HashMap<(u64, u64), usize>,
    /// (device, inode) of the directories on the current path.
    ancestors: Vec<(u64, u64)>,
}

impl Walker {
    fn dir(&mut self, idx: usize, path: &Path, depth: usize) -> Result<(), Error> {
        let mut names: Vec<OsString> = Vec::new();
        for entry in fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            names.push(entry.map_err(|e| Error::io(path, e))?.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));

        for name in names {
            let child = path.join(&name);
            let name = name.as_bytes().to_vec();
            check_name(&name, idx == 0, &child)?;
            let meta = fs::symlink_metadata(&child).map_err(|e| Error::io(&child, e))?;
            let ft = meta.file_type();
            let node = if ft.is_dir() {
                if depth + 1 > MAX_DEPTH {
                    return Err(Error::TooDeep {
                        path: child,
                        limit: MAX_DEPTH,
                    });
                }
                let key = (meta.dev(), meta.ino());
                if self.ancestors.contains(&key) {
                    return Err(Error::DirectoryLoop { path: child });
                }
                self.add_link(idx)?;
                let sub = self.push(
                    &child,
                    &meta,
                    Kind::Dir {
                        parent: idx,
                        entries: Vec::new(),
                    },
                );
                self.nodes[sub].links = 2;
                self.ancestors.push(key);
                self.dir(sub, &child, depth + 1)?;
                self.ancestors.pop();
                sub
            } else if ft.is_file() {
                let key = (meta.dev(), meta.ino());
                match self.hard_links.get(&key) {
                    Some(&existing) => {
                        self.add_link(existing)?;
                        existing
                    }
                    _ => {
                        let n = self.push(&child, &meta, Kind::File { size: meta.len() });
                        if meta.nlink() > 1 {
                            self.hard_links.insert(key, n);
                        }
                        n
                    }
                }
            } else if ft.is_symlink() {
                let target = fs::read_link(&child).map_err(|e| Error::io(&child, e))?;
                let target = target.as_os_str().as_bytes().to_vec();
                if target.is_empty() {
                    return Err(Error::BadSymlink {
                        path: child,
                        reason: "is empty",
                    });
                }
                if target.len() >= BLOCK_SIZE {
                    return Err(Error::BadSymlink {
                        path: child,
                        reason: "is 4096 bytes or longer",
                    });
                }
                self.push(&child, &meta, Kind::Symlink { target })
            } else {
                let kind = if ft.is_fifo() {
                    "FIFO"
                } else if ft.is_socket() {
                    "socket"
                } else if ft.is_char_device() {
                    "character device"
                } else if ft.is_block_device() {
                    "block device"
                } else {
                    "file of unknown type"
                };
                return Err(Error::UnsupportedFileType { path: child, kind });
            };
            if let Kind::Dir { entries, .. } = &mut self.nodes[idx].kind {
                entries.push(Entry { name, node });
            }
        }
        Ok(())
    }

    /// Adds a node with one link and returns its index.
    fn push(&mut self, path: &Path, meta: &fs::Metadata, kind: Kind) -> usize {
        self.nodes.push(Node {
            path: path.to_path_buf(),
            perm: perm_bits(meta.mode()),
            links: 1,
            kind,
        });
        self.nodes.len() - 1
    }

    /// Counts one more link to `idx`, refusing to pass ext2's limit.
    fn add_link(&mut self, idx: usize) -> Result<(), Error> {
        let node = &mut self.nodes[idx];
        if node.links >= MAX_LINKS {
            return Err(Error::TooManyLinks {
                path: node.path.clone(),
                limit: MAX_LINKS,
            });
        }
        node.links += 1;
        Ok(())
    }
}

/// Refuses names ext2 cannot hold (longer than 255 bytes; Linux itself
/// caps names at 255, but other systems and FUSE filesystems may not) and
/// the reserved `lost+found` at the root.
fn check_name(name: &[u8], at_root: bool, path: &Path) -> Result<(), Error> {
    if name.len() > MAX_NAME_LEN {
        return Err(Error::NameTooLong {
            len: name.len(),
            path: path.to_path_buf(),
        });
    }
    if at_root && name == LOST_FOUND {
        return Err(Error::ReservedName {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn perm_bits(mode: u32) -> u16 {
    (mode & 0o7777) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_of_256_bytes_is_refused() {
        let name = vec![b'n'; 256];
        let path = Path::new("/src/nnn");
        match check_name(&name, false, path) {
            Err(Error::NameTooLong { len: 256, path: p }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
        assert!(check_name(&name[..255], false, path).is_ok());
        let msg = check_name(&name, false, path).unwrap_err().to_string();
        assert!(msg.contains("/src/nnn") && msg.contains("256"), "{msg}");
    }

    #[test]
    fn lost_found_is_reserved_only_at_the_root() {
        let p = Path::new("x/lost+found");
        assert!(matches!(
            check_name(LOST_FOUND, true, p),
            Err(Error::ReservedName { .. })
        ));
        assert!(check_name(LOST_FOUND, false, p).is_ok());
    }
}
