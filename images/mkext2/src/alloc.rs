//! Image geometry and block allocation.
//!
//! Every block group starts with the same fixed metadata: a superblock copy
//! (the primary one in group 0, inside block 0 after the 1 KiB boot area),
//! the group descriptor table (copied in every group, as `sparse_super` is
//! off), the block bitmap, the inode bitmap and the inode table. The rest of
//! the group is data.
//!
//! Allocation is a pure computation over block counts, done before any
//! byte is written, so the image can be sized by trying a size and growing
//! it until the plan fits:
//!
//! 1. Each inode's data (file contents, directory blocks, a slow symlink's
//!    target) is placed as **one contiguous run**, largest first, at the
//!    first free extent that can take it. Placing large runs first keeps
//!    the free space in few, large extents.
//! 2. Then each inode's indirect blocks are placed, again as a run where
//!    possible, in whatever space is left. They never sit between data
//!    blocks of a file.
//!
//! A run can only be split when no free extent is large enough: for a file
//! bigger than one group's data area (about 127 MiB), whose data must cross
//! group metadata, or when the image is too full. The sizing loop grows the
//! image to avoid the second case, so in practice only files larger than a
//! group are split, one run per group.

use crate::layout::{
    BLOCK_SIZE_U64, BLOCKS_PER_GROUP, DESCS_PER_BLOCK, INODES_PER_BLOCK, MAX_INODES_PER_GROUP,
};

/// Largest image, in blocks, this builder makes (4 GiB).
pub const MAX_BLOCKS: u64 = (4 << 30) / BLOCK_SIZE_U64;
/// The last group must have at least this many data blocks, so it is not
/// all metadata.
const MIN_LAST_GROUP_DATA: u32 = 16;
/// Give up on re-sizing for contiguity after this many attempts; the
/// image is still valid, just with a split file.
const MAX_SIZING_ROUNDS: usize = 64;

/// A run of consecutive blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First block number.
    pub start: u32,
    /// Number of blocks.
    pub len: u32,
}

/// Sizes and positions of everything that is not data.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Total blocks in the image.
    pub blocks: u32,
    /// Number of block groups.
    pub groups: u32,
    /// Inodes per group (a multiple of [`INODES_PER_BLOCK`]).
    pub inodes_per_group: u32,
    /// Blocks holding the group descriptor table.
    pub gdt_blocks: u32,
    /// Blocks per group holding the inode table.
    pub itable_blocks: u32,
}

impl Geometry {
    /// The smallest valid geometry of at least `min_blocks` blocks with
    /// room for `inodes` inodes, or `Err(blocks)` with the size it would
    /// need if that exceeds [`MAX_BLOCKS`].
    pub fn fit(min_blocks: u64, inodes: u64) -> Result<Self, u64> {
        let bpg = u64::from(BLOCKS_PER_GROUP);
        let mut blocks = min_blocks.max(1);
        loop {
            if blocks > MAX_BLOCKS {
                return Err(blocks);
            }
            let groups = blocks.div_ceil(bpg);
            if inodes > groups * u64::from(MAX_INODES_PER_GROUP) {
                blocks = groups * bpg + 1; // one more group
                continue;
            }
            let per_block = u64::from(INODES_PER_BLOCK);
            let ipg = inodes.div_ceil(groups).div_ceil(per_block).max(1) * per_block;
            let gdt_blocks = groups.div_ceil(u64::from(DESCS_PER_BLOCK));
            let itable_blocks = ipg / per_block;
            let overhead = 1 + gdt_blocks + 2 + itable_blocks;
            let last_len = blocks - (groups - 1) * bpg;
            let last_min = overhead + u64::from(MIN_LAST_GROUP_DATA);
            if last_len < last_min {
                blocks = (groups - 1) * bpg + last_min;
                continue;
            }
            // All values are bounded by MAX_BLOCKS / MAX_INODES_PER_GROUP,
            // which fit in u32.
            return Ok(Self {
                blocks: blocks as u32,
                groups: groups as u32,
                inodes_per_group: ipg as u32,
                gdt_blocks: gdt_blocks as u32,
                itable_blocks: itable_blocks as u32,
            });
        }
    }

    /// First block of group `g` (its superblock copy).
    pub fn group_start(&self, g: u32) -> u32 {
        g * BLOCKS_PER_GROUP
    }

    /// Number of blocks in group `g` (the last group may be short).
    pub fn group_len(&self, g: u32) -> u32 {
        (self.blocks - self.group_start(g)).min(BLOCKS_PER_GROUP)
    }

    /// Metadata blocks at the start of every group.
    pub fn overhead(&self) -> u32 {
        1 + self.gdt_blocks + 2 + self.itable_blocks
    }

    /// Group `g`'s block bitmap.
    pub fn block_bitmap(&self, g: u32) -> u32 {
        self.group_start(g) + 1 + self.gdt_blocks
    }

    /// Group `g`'s inode bitmap.
    pub fn inode_bitmap(&self, g: u32) -> u32 {
        self.block_bitmap(g) + 1
    }

    /// Group `g`'s first inode table block.
    pub fn inode_table(&self, g: u32) -> u32 {
        self.block_bitmap(g) + 2
    }

    /// Total inodes.
    pub fn inodes(&self) -> u32 {
        self.groups * self.inodes_per_group
    }

    /// Data blocks across all groups.
    pub fn data_capacity(&self) -> u64 {
        u64::from(self.blocks) - u64::from(self.groups) * u64::from(self.overhead())
    }

    /// Data blocks of one full group: the longest possible contiguous run.
    pub fn max_run(&self) -> u32 {
        BLOCKS_PER_GROUP - self.overhead()
    }
}

/// What one inode needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request {
    /// Data blocks.
    pub data: u64,
    /// Indirect blocks.
    pub indirect: u64,
}

/// Where one inode's blocks went.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// Data blocks in logical order; one extent unless split.
    pub data: Vec<Extent>,
    /// Indirect blocks, in the order the block map uses them.
    pub indirect: Vec<Extent>,
}

/// A finished allocation plan.
#[derive(Debug)]
pub struct Layout {
    /// The image geometry.
    pub geo: Geometry,
    /// One placement per request, in request order.
    pub placements: Vec<Placement>,
}

/// Picks an image size of at least `min_blocks` blocks, with `slack` free
/// data blocks and room for `inodes` inodes, and places every request.
/// `Err(blocks)` gives a lower bound on the size needed when that exceeds
/// [`MAX_BLOCKS`].
pub fn plan(requests: &[Request], inodes: u64, min_blocks: u64, slack: u64) -> Result<Layout, u64> {
    let needed = requests
        .iter()
        .try_fold(0u64, |acc, r| {
            acc.checked_add(r.data)?.checked_add(r.indirect)
        })
        .and_then(|n| n.checked_add(slack))
        .unwrap_or(u64::MAX);
    if needed > MAX_BLOCKS {
        return Err(needed);
    }
    let mut blocks = min_blocks.max(needed);
    let mut rounds = 0;
    loop {
        let geo = Geometry::fit(blocks, inodes)?;
        let capacity = geo.data_capacity();
        if capacity < needed {
            blocks = u64::from(geo.blocks) + (needed - capacity);
            continue;
        }
        rounds += 1;
        match allocate(&geo, requests) {
            Some((placements, avoidable)) => {
                if avoidable == 0 || rounds >= MAX_SIZING_ROUNDS {
                    return Ok(Layout { geo, placements });
                }
                // A run that fits in one group got split: grow the image
                // by that run's size so it finds room in the last group.
                blocks = u64::from(geo.blocks) + avoidable;
            }
            // Cannot happen once the capacity check passed, but grow
            // rather than fail if it does.
            None => blocks = u64::from(geo.blocks) + u64::from(BLOCKS_PER_GROUP),
        }
        if blocks > MAX_BLOCKS {
            return Err(blocks);
        }
    }
}

/// Places every request in `geo`. Returns the placements and the size of
/// the largest data run that was split although it would fit in one group
/// (0 if none), or `None` if the image is too small.
fn allocate(geo: &Geometry, requests: &[Request]) -> Option<(Vec<Placement>, u64)> {
    let mut free: Vec<Extent> = (0..geo.groups)
        .map(|g| Extent {
            start: geo.group_start(g) + geo.overhead(),
            len: geo.group_len(g) - geo.overhead(),
        })
        .collect();
    let mut placements = vec![Placement::default(); requests.len()];

    let mut order: Vec<usize> = (0..requests.len()).collect();
    // Stable sort: equal sizes keep request (inode) order.
    order.sort_by(|&a, &b| requests[b].data.cmp(&requests[a].data));
    let mut avoidable = 0;
    for i in order {
        let n = requests[i].data;
        if n == 0 {
            continue;
        }
        let runs = take(&mut free, n)?;
        if runs.len() > 1 && n <= u64::from(geo.max_run()) {
            avoidable = avoidable.max(n);
        }
        placements[i].data = runs;
    }
    for (req, placement) in requests.iter().zip(&mut placements) {
        if req.indirect > 0 {
            placement.indirect = take(&mut free, req.indirect)?;
        }
    }
    Some((placements, avoidable))
}

/// Takes `n` blocks from `free`: from the first extent that holds them
/// all, or else from the front of as many extents as it takes.
fn take(free: &mut [Extent], n: u64) -> Option<Vec<Extent>> {
    if let Some(e) = free.iter_mut().find(|e| u64::from(e.len) >= n) {
        // n <= e.len, so it fits in u32.
        return Some(vec![carve(e, n as u32)]);
    }
    let total: u64 = free.iter().map(|e| u64::from(e.len)).sum();
    if total < n {
        return None;
    }
    let mut runs = Vec::new();
    let mut left = n;
    for e in free.iter_mut().filter(|e| e.len > 0) {
        let k = left.min(u64::from(e.len)) as u32;
        runs.push(carve(e, k));
        left -= u64::from(k);
        if left == 0 {
            break;
        }
    }
    Some(runs)
}

/// Cuts `n` blocks off the front of `e`.
fn carve(e: &mut Extent, n: u32) -> Extent {
    let run = Extent {
        start: e.start,
        len: n,
    };
    e.start += n;
    e.len -= n;
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(data: u64, indirect: u64) -> Request {
        Request { data, indirect }
    }

    #[test]
    fn tiny_image_is_one_short_group() {
        let g = Geometry::fit(1, 20).unwrap();
        assert_eq!(g.groups, 1);
        assert_eq!(g.inodes_per_group, 32);
        assert_eq!(g.overhead(), 5);
        assert_eq!(g.blocks, 5 + MIN_LAST_GROUP_DATA);
    }

    #[test]
    fn short_last_group_is_grown() {
        let g = Geometry::fit(u64::from(BLOCKS_PER_GROUP) + 3, 100).unwrap();
        assert_eq!(g.groups, 2);
        assert!(g.group_len(1) >= g.overhead() + MIN_LAST_GROUP_DATA);
    }

    #[test]
    fn many_inodes_need_more_groups() {
        let g = Geometry::fit(10, 40_000).unwrap();
        assert_eq!(g.groups, 2);
        assert!(g.inodes() >= 40_000);
        assert!(Geometry::fit(MAX_BLOCKS + 1, 10).is_err());
    }

    #[test]
    fn data_runs_are_contiguous_and_indirect_blocks_come_after() {
        let reqs = [req(3, 0), req(15_000, 3), req(15_000, 3), req(1, 0)];
        let l = plan(&reqs, 20, 0, 32).unwrap();
        assert_eq!(l.geo.groups, 1);
        for p in &l.placements {
            assert_eq!(p.data.len(), 1);
        }
        let first_data = l.geo.overhead();
        assert_eq!(l.placements[1].data[0].start, first_data);
        assert_eq!(l.placements[2].data[0].start, first_data + 15_000);
        assert!(l.placements[1].indirect[0].start > l.placements[3].data[0].start);
    }

    #[test]
    fn runs_that_fit_a_group_are_not_split() {
        // Two 20000-block files cannot share a group: the second must land
        // whole in group 1 rather than be split over the gap.
        let reqs = [req(20_000, 3), req(20_000, 3)];
        let l = plan(&reqs, 20, 0, 32).unwrap();
        assert_eq!(l.geo.groups, 2);
        for p in &l.placements {
            assert_eq!(p.data.len(), 1, "{p:?}");
        }
    }

    #[test]
    fn huge_run_is_split_per_group() {
        let reqs = [req(40_000, 42)];
        let l = plan(&reqs, 20, 0, 0).unwrap();
        assert_eq!(l.placements[0].data.len(), 2);
        let total: u32 = l.placements[0].data.iter().map(|e| e.len).sum();
        assert_eq!(total, 40_000);
    }

    #[test]
    fn too_large_is_refused() {
        let reqs = [req(MAX_BLOCKS, 0)];
        assert!(plan(&reqs, 20, 0, 0).is_err());
        assert!(plan(&[], 20, MAX_BLOCKS + 1, 0).is_err());
        assert!(plan(&[req(u64::MAX, 1)], 20, 0, 0).is_err());
    }
}
