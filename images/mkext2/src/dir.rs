//! Encoding directory contents as ext2 directory blocks.
//!
//! A directory is a sequence of whole blocks, each holding variable-length
//! entries `{inode u32, rec_len u16, name_len u8, file_type u8, name}` padded
//! to 4 bytes. Entries never straddle a block: the last entry of each block
//! has its `rec_len` stretched to the block's end. With the `filetype`
//! feature on, the byte after `name_len` holds the entry's file type, which
//! saves readers an inode lookup when listing a directory. No hashed index
//! (`dir_index`) is built: lookups are linear, which is fine for the small
//! directories of a guest ramdisk.

use crate::layout::BLOCK_SIZE;

/// One entry to encode.
#[derive(Debug, Clone, Copy)]
pub struct DirEntry<'a> {
    /// The inode it names.
    pub ino: u32,
    /// Its `FT_*` file type.
    pub file_type: u8,
    /// Its name, 1..=255 bytes.
    pub name: &'a [u8],
}

/// Space an entry needs: 8 header bytes plus the name rounded up to 4.
fn entry_len(name_len: usize) -> usize {
    8 + name_len.div_ceil(4) * 4
}

/// Encodes `entries` (which must start with `.` and `..`) into whole
/// directory blocks. The result is never empty and its length is a
/// multiple of [`BLOCK_SIZE`].
pub fn encode(entries: &[DirEntry<'_>]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    // Offset (into `out`) of the previous entry in the current block, whose
    // rec_len gets stretched when the block is closed.
    let mut last: Option<usize> = None;
    let mut pos = 0usize; // offset of the next entry within the current block

    for e in entries {
        let len = entry_len(e.name.len());
        if last.is_none() || pos + len > BLOCK_SIZE {
            if let Some(prev) = last {
                close_block(&mut out, prev);
            }
            out.resize(out.len() + BLOCK_SIZE, 0);
            pos = 0;
        }
        let at = out.len() - BLOCK_SIZE + pos;
        out[at..at + 4].copy_from_slice(&e.ino.to_le_bytes());
        out[at + 4..at + 6].copy_from_slice(&(len as u16).to_le_bytes());
        out[at + 6] = e.name.len() as u8;
        out[at + 7] = e.file_type;
        out[at + 8..at + 8 + e.name.len()].copy_from_slice(e.name);
        last = Some(at);
        pos += len;
    }
    match last {
        Some(prev) => close_block(&mut out, prev),
        // No entries at all: an empty block is still a valid (if useless)
        // directory block as far as layout goes; callers always pass `.`.
        None => out.resize(BLOCK_SIZE, 0),
    }
    out
}

/// Stretches the entry at `at` to the end of its block.
fn close_block(out: &mut [u8], at: usize) {
    let rec_len = BLOCK_SIZE - at % BLOCK_SIZE;
    out[at + 4..at + 6].copy_from_slice(&(rec_len as u16).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> usize {
        u16::from_le_bytes([b[at], b[at + 1]]) as usize
    }

    /// Walks the blocks the way a reader would, returning the names.
    fn names(b: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for block in b.chunks(BLOCK_SIZE) {
            let mut at = 0;
            while at < BLOCK_SIZE {
                let rec = u16_at(block, at + 4);
                let nl = block[at + 6] as usize;
                assert!(rec >= 8 + nl && rec.is_multiple_of(4) && at + rec <= BLOCK_SIZE);
                out.push(block[at + 8..at + 8 + nl].to_vec());
                at += rec;
            }
            assert_eq!(at, BLOCK_SIZE);
        }
        out
    }

    #[test]
    fn small_directory_fits_one_block() {
        let e = [
            DirEntry {
                ino: 2,
                file_type: 2,
                name: b".",
            },
            DirEntry {
                ino: 2,
                file_type: 2,
                name: b"..",
            },
            DirEntry {
                ino: 12,
                file_type: 1,
                name: b"hello",
            },
        ];
        let b = encode(&e);
        assert_eq!(b.len(), BLOCK_SIZE);
        assert_eq!(
            names(&b),
            vec![b".".to_vec(), b"..".to_vec(), b"hello".to_vec()]
        );
        assert_eq!(u16_at(&b, 4), 12);
        assert_eq!(u16_at(&b, 12 + 4), 12);
        assert_eq!(u16_at(&b, 24 + 4), BLOCK_SIZE - 24);
    }

    #[test]
    fn long_names_spill_into_more_blocks() {
        let long: Vec<Vec<u8>> = (0..100).map(|i| vec![b'a' + (i % 26) as u8; 200]).collect();
        let mut e = vec![
            DirEntry {
                ino: 2,
                file_type: 2,
                name: b".",
            },
            DirEntry {
                ino: 2,
                file_type: 2,
                name: b"..",
            },
        ];
        e.extend(long.iter().map(|n| DirEntry {
            ino: 20,
            file_type: 1,
            name: n,
        }));
        let b = encode(&e);
        // 208 bytes per entry, 19 per block.
        assert_eq!(b.len(), 6 * BLOCK_SIZE);
        assert_eq!(names(&b).len(), 102);
    }
}
