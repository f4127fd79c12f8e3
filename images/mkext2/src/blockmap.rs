//! Mapping a file's logical blocks to disk blocks through `i_block`.
//!
//! ext2 inodes hold 15 block numbers: 12 direct, then one single-, one
//! double- and one triple-indirect block. With 4 KiB blocks an indirect
//! block holds 1024 numbers, so the direct slots cover 48 KiB, single
//! indirect the next 4 MiB, double indirect the next 4 GiB and triple
//! indirect the rest. The indirect blocks themselves are allocated apart
//! from the data (see `alloc`), so a file's data stays one contiguous run.

use crate::alloc::Extent;
use crate::layout::PTRS_PER_BLOCK;

/// Direct block slots in an inode.
const N_DIRECT: u64 = 12;
const PTRS: u64 = PTRS_PER_BLOCK as u64;

/// How many indirect blocks a file of `data_blocks` blocks needs, or `None`
/// if it is beyond what triple indirection can address.
pub fn indirect_blocks(data_blocks: u64) -> Option<u64> {
    let mut rest = data_blocks.saturating_sub(N_DIRECT);
    let mut count = 0;
    // Level 1 (single), 2 (double), 3 (triple): a level-`l` tree maps up to
    // PTRS^l blocks and needs, for `n` of them, ceil(n / PTRS^k) blocks at
    // each depth k = 1..=l.
    for level in 1..=3u32 {
        if rest == 0 {
            return Some(count);
        }
        let span = PTRS.pow(level);
        let here = rest.min(span);
        for k in 1..=level {
            count += here.div_ceil(PTRS.pow(k));
        }
        rest -= here;
    }
    (rest == 0).then_some(count)
}

/// Iterates over the disk block numbers of a list of extents, in order.
#[derive(Debug)]
struct Blocks<'a> {
    extents: &'a [Extent],
    next: u32,
    left: u32,
}

impl<'a> Blocks<'a> {
    fn new(extents: &'a [Extent]) -> Self {
        Self {
            extents,
            next: 0,
            left: 0,
        }
    }
}

impl Iterator for Blocks<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while self.left == 0 {
            let (first, rest) = self.extents.split_first()?;
            self.extents = rest;
            self.next = first.start;
            self.left = first.len;
        }
        let b = self.next;
        self.next += 1;
        self.left -= 1;
        Some(b)
    }
}

/// Receives each indirect block's number and contents.
pub type Emit<'e> = dyn FnMut(u32, &[u32; PTRS_PER_BLOCK]) + 'e;

/// Builds `i_block` for a file whose data lives in `data` (logical block 0
/// first) using the blocks in `indirect` for the indirect tree, calling
/// `emit` once per indirect block. Returns `None` if `indirect` does not
/// hold exactly the number of blocks [`indirect_blocks`] asked for.
pub fn build(data: &[Extent], indirect: &[Extent], emit: &mut Emit<'_>) -> Option<[u32; 15]> {
    let mut data = Blocks::new(data).peekable();
    let mut ind = Blocks::new(indirect);
    let mut i_block = [0u32; 15];
    for slot in &mut i_block[..N_DIRECT as usize] {
        match data.next() {
            Some(b) => *slot = b,
            None => break,
        }
    }
    for (level, slot) in (1..=3u32).zip(&mut i_block[N_DIRECT as usize..]) {
        match fill(level, &mut data, &mut ind, emit)? {
            Some(b) => *slot = b,
            None => break,
        }
    }
    // Everything mapped and every indirect block used.
    (data.next().is_none() && ind.next().is_none()).then_some(i_block)
}

/// Fills one indirect block of the given level from `data`. Returns
/// `Some(None)` when there is no data left to map, `None` when the
/// indirect blocks ran out (a bug in the caller's counting).
fn fill(
    level: u32,
    data: &mut std::iter::Peekable<Blocks<'_>>,
    ind: &mut Blocks<'_>,
    emit: &mut Emit<'_>,
) -> Option<Option<u32>> {
    if data.peek().is_none() {
        return Some(None);
    }
    let me = ind.next()?;
    let mut table = [0u32; PTRS_PER_BLOCK];
    for slot in &mut table {
        let child = if level == 1 {
            data.next()
        } else {
            fill(level - 1, data, ind, emit)?
        };
        match child {
            Some(b) => *slot = b,
            None => break,
        }
    }
    emit(me, &table);
    Some(Some(me))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn indirect_counts_at_the_boundaries() {
        assert_eq!(indirect_blocks(0), Some(0));
        assert_eq!(indirect_blocks(12), Some(0));
        assert_eq!(indirect_blocks(13), Some(1));
        assert_eq!(indirect_blocks(12 + 1024), Some(1));
        assert_eq!(indirect_blocks(12 + 1024 + 1), Some(3));
        assert_eq!(indirect_blocks(12 + 1024 + 1024), Some(3));
        assert_eq!(indirect_blocks(12 + 1024 + 1025), Some(4));
        let double_full = 12 + 1024 + 1024 * 1024;
        assert_eq!(indirect_blocks(double_full), Some(1 + 1 + 1024));
        assert_eq!(indirect_blocks(double_full + 1), Some(1 + 1 + 1024 + 3));
        let max = double_full + 1024 * 1024 * 1024;
        assert_eq!(
            indirect_blocks(max),
            Some(1 + 1 + 1024 + 1 + 1024 + 1024 * 1024)
        );
        assert_eq!(indirect_blocks(max + 1), None);
    }

    /// Builds the map for `n` blocks starting at `start` and resolves
    /// sample logical blocks through it the way a reader would.
    fn check(n: u64, start: u32) {
        let data = [Extent {
            start,
            len: n as u32,
        }];
        let nind = indirect_blocks(n).unwrap();
        let ind = [Extent {
            start: 10,
            len: nind as u32,
        }];
        let mut tables: HashMap<u32, Vec<u32>> = HashMap::new();
        let i_block = build(&data, &ind, &mut |b, t| {
            assert!(
                tables.insert(b, t.to_vec()).is_none(),
                "block {b} emitted twice"
            );
        })
        .unwrap();
        assert_eq!(tables.len() as u64, nind);

        let resolve = |lblk: u64| -> u32 {
            if lblk < 12 {
                return i_block[lblk as usize];
            }
            let mut rest = lblk - 12;
            for level in 1..=3u32 {
                let span = PTRS.pow(level);
                if rest < span {
                    let mut b = i_block[11 + level as usize];
                    for k in (0..level).rev() {
                        let idx = (rest / PTRS.pow(k)) % PTRS;
                        b = tables[&b][idx as usize];
                    }
                    return b;
                }
                rest -= span;
            }
            unreachable!()
        };
        let mut samples: Vec<u64> = vec![0, 11, 12, 1035, 1036, 2059, 2060];
        samples.extend([n / 2, n.saturating_sub(2), n.saturating_sub(1)]);
        let d = 12 + 1024 + 1024 * 1024;
        samples.extend([d - 1, d, d + 1, d + 1024 * 1024 + 5]);
        for l in samples.into_iter().filter(|&l| l < n) {
            assert_eq!(resolve(l), start + l as u32, "logical block {l} of {n}");
        }
        // Unused slots past the end stay zero.
        if n > 12 && n < 12 + 1024 {
            assert_eq!(tables[&i_block[12]][(n - 12) as usize], 0);
        }
    }

    #[test]
    fn maps_direct_single_double_and_triple() {
        check(1, 100);
        check(12, 100);
        check(13, 100);
        check(12 + 1024, 100);
        check(12 + 1024 + 1, 5000);
        check(5 * 256 + 7, 5000); // ~5 MiB
        check(12 + 1024 + 1024 * 1024, 5000);
        // Triple indirect: ~4 GiB + 20 KiB, beyond what an image may hold
        // but the mapping must still be right.
        check(12 + 1024 + 1024 * 1024 + 1024 * 1024 + 5, 5000);
    }

    #[test]
    fn follows_split_extents() {
        let data = [
            Extent { start: 50, len: 10 },
            Extent {
                start: 900,
                len: 10,
            },
        ];
        let ind = [Extent { start: 7, len: 1 }];
        let mut tables = HashMap::new();
        let i_block = build(&data, &ind, &mut |b, t| {
            tables.insert(b, t.to_vec());
        })
        .unwrap();
        assert_eq!(
            i_block[..12],
            [50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 900, 901]
        );
        assert_eq!(i_block[12], 7);
        assert_eq!(tables[&7][..9], [902, 903, 904, 905, 906, 907, 908, 909, 0]);
    }

    #[test]
    fn wrong_indirect_count_is_refused() {
        let data = [Extent { start: 50, len: 20 }];
        let none: [Extent; 0] = [];
        assert!(build(&data, &none, &mut |_, _| {}).is_none());
        let two = [Extent { start: 7, len: 2 }];
        assert!(build(&data, &two, &mut |_, _| {}).is_none());
    }
}
