//! The capability system: who holds which capability, with which rights,
//! and where each copy came from.
//!
//! # Structure
//!
//! Every shard has [`CAP_SLOTS`] slots; a handle is a slot index. A slot
//! holds one capability node: (type, resource, rights) plus derivation
//! links — parent, first child, previous and next sibling — so the slots of
//! all shards together are the global node pool (capacity `SHARDS *
//! CAP_SLOTS`, about 24 bytes per node: 24 KiB for 32 shards) and a node's
//! id is `shard * CAP_SLOTS + slot`. Lookup is O(1); revoke walks only the
//! revoked subtree.
//!
//! # Rules (fixing coconutOS)
//!
//! * [`CapTable::grant`] needs [`rights::GRANT`] on the source for **every**
//!   type; the copy is a child of the source with `rights ∩ mask`.
//! * [`CapTable::restrict`] only shrinks rights.
//! * [`CapTable::revoke`] removes the capability and every capability
//!   transitively derived from it, in every shard, and reports each removal
//!   so the kernel can wake waiters.
//! * [`CapTable::drop_all`] (a shard died) removes the shard's capabilities
//!   but not the copies other shards derived from them: those are
//!   re-parented to the dead capability's parent (or become roots if it was
//!   a root), so a later revoke higher up still reaches them, and a dead
//!   middle-man does not silently revoke what it passed on.

use coconut_abi::syscall::{CAP_SLOTS, Error, cap_type, rights};

const NONE: u32 = u32::MAX;
/// Most capability slots any table has (node ids must fit below [`NONE`]).
const SLOTS: u32 = CAP_SLOTS as u32;

/// A capability's value, as `cap_inspect` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    /// `coconut_abi::syscall::cap_type`.
    pub cap_type: u64,
    /// The object: a channel id, a shard id, a memory window index…
    pub resource: u64,
    /// `coconut_abi::syscall::rights` bits.
    pub rights: u64,
}

impl Cap {
    /// `(type << 48) | (resource << 16) | rights`, the `cap_inspect` result.
    pub const fn inspect(&self) -> u64 {
        (self.cap_type << 48) | ((self.resource & 0xffff_ffff) << 16) | (self.rights & 0xffff)
    }
}

/// A capability [`CapTable::revoke`] or [`CapTable::drop_all`] removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removed {
    /// The shard that held it.
    pub shard: usize,
    /// Its handle there (now free).
    pub handle: u32,
    /// What it was.
    pub cap: Cap,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    live: bool,
    cap_type: u8,
    rights: u8,
    resource: u32,
    parent: u32,
    first_child: u32,
    prev: u32,
    next: u32,
}

const FREE: Node = Node {
    live: false,
    cap_type: 0,
    rights: 0,
    resource: 0,
    parent: NONE,
    first_child: NONE,
    prev: NONE,
    next: NONE,
};

/// The capability tables of `SHARDS` shards.
#[derive(Debug)]
pub struct CapTable<const SHARDS: usize> {
    slots: [[Node; CAP_SLOTS]; SHARDS],
}

impl<const SHARDS: usize> Default for CapTable<SHARDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SHARDS: usize> CapTable<SHARDS> {
    const FITS: () = assert!(
        (SHARDS as u64) * (CAP_SLOTS as u64) < NONE as u64,
        "node ids must fit in u32"
    );

    /// Empty tables (`const`, for a static).
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::FITS;
        CapTable {
            slots: [[FREE; CAP_SLOTS]; SHARDS],
        }
    }

    /// Installs a root capability (from the kernel or the boot manifest) in
    /// the lowest free slot of `shard`; returns its handle.
    pub fn create(&mut self, shard: usize, cap: Cap) -> Result<u32, Error> {
        let valid = (cap_type::CHANNEL..=cap_type::FACTORY).contains(&cap.cap_type)
            && cap.resource <= u64::from(u32::MAX)
            && cap.rights & !rights::ALL == 0;
        if !valid {
            return Err(Error::InvalidArgument);
        }
        let handle = self.free_slot(shard)?;
        let node = self.node_mut(id(shard, handle)).ok_or(Error::NoSuchShard)?;
        *node = Node {
            live: true,
            cap_type: cap.cap_type as u8,
            rights: cap.rights as u8,
            resource: cap.resource as u32,
            ..FREE
        };
        Ok(handle)
    }

    /// The capability at `handle` in `shard`.
    pub fn get(&self, shard: usize, handle: u64) -> Result<Cap, Error> {
        let node = self.live(shard, handle)?;
        Ok(Cap {
            cap_type: u64::from(node.cap_type),
            resource: u64::from(node.resource),
            rights: u64::from(node.rights),
        })
    }

    /// The resource behind `handle` if it is of type `expected` and has
    /// every right in `needed`: `BadHandle`, `WrongType` or `NoRight` otherwise.
    pub fn lookup(
        &self,
        shard: usize,
        handle: u64,
        expected: u64,
        needed: u64,
    ) -> Result<u64, Error> {
        let cap = self.get(shard, handle)?;
        if cap.cap_type != expected {
            return Err(Error::WrongType);
        }
        if cap.rights & needed != needed {
            return Err(Error::NoRight);
        }
        Ok(cap.resource)
    }

    /// `cap_inspect`.
    pub fn inspect(&self, shard: usize, handle: u64) -> Result<u64, Error> {
        self.get(shard, handle).map(|c| c.inspect())
    }

    /// `cap_restrict`: rights ∩= `mask`; returns the new rights.
    pub fn restrict(&mut self, shard: usize, handle: u64, mask: u64) -> Result<u64, Error> {
        self.live(shard, handle)?;
        let node = self
            .node_mut(id(shard, handle as u32))
            .ok_or(Error::BadHandle)?;
        node.rights &= mask as u8;
        Ok(u64::from(node.rights))
    }

    /// `cap_grant`: copies `handle` of `shard` into `target`'s lowest free
    /// slot with rights ∩ `mask`, derived from the source. Needs GRANT on
    /// the source, whatever its type. Returns the target's handle.
    pub fn grant(
        &mut self,
        shard: usize,
        handle: u64,
        target: usize,
        mask: u64,
    ) -> Result<u32, Error> {
        let src = *self.live(shard, handle)?;
        if u64::from(src.rights) & rights::GRANT == 0 {
            return Err(Error::NoRight);
        }
        if target >= SHARDS {
            return Err(Error::NoSuchShard);
        }
        let new_handle = self.free_slot(target)?;
        let parent = id(shard, handle as u32);
        let child = id(target, new_handle);
        if let Some(node) = self.node_mut(child) {
            *node = Node {
                live: true,
                cap_type: src.cap_type,
                rights: src.rights & mask as u8,
                resource: src.resource,
                ..FREE
            };
        }
        self.link(parent, child);
        Ok(new_handle)
    }

    /// `cap_revoke`: removes `handle` and every capability derived from it
    /// (transitively, in every shard), calling `removed` for each. Returns
    /// how many were removed.
    pub fn revoke(
        &mut self,
        shard: usize,
        handle: u64,
        mut removed: impl FnMut(Removed),
    ) -> Result<usize, Error> {
        self.live(shard, handle)?;
        let top = id(shard, handle as u32);
        let mut count = 0usize;
        let mut cur = top;
        // Post-order: descend to a leaf, remove it, continue from its parent.
        // Each removal frees one node, so the loop ends after at most
        // SHARDS * CAP_SLOTS removals; the bound guards against corruption.
        let bound = SHARDS.saturating_mul(CAP_SLOTS).saturating_mul(2);
        for _ in 0..=bound {
            while let Some(child) = self.node(cur).map(|n| n.first_child).filter(|&c| c != NONE) {
                cur = child;
            }
            let parent = self.node(cur).map_or(NONE, |n| n.parent);
            if let Some(r) = self.remove(cur) {
                removed(r);
                count = count.saturating_add(1);
            }
            if cur == top || parent == NONE {
                break;
            }
            cur = parent;
        }
        Ok(count)
    }

    /// A shard is gone: removes all its capabilities (calling `removed` for
    /// each), re-parenting copies derived from them (see the module docs).
    pub fn drop_all(&mut self, shard: usize, mut removed: impl FnMut(Removed)) -> usize {
        let mut count = 0usize;
        for slot in 0..SLOTS {
            let me = id(shard, slot);
            let Some(&node) = self.node(me).filter(|n| n.live) else {
                continue;
            };
            // Move every child to our parent (or make it a root).
            let mut child = node.first_child;
            for _ in 0..SHARDS.saturating_mul(CAP_SLOTS) {
                if child == NONE {
                    break;
                }
                let next = self.node(child).map_or(NONE, |n| n.next);
                self.unlink(child);
                if node.parent != NONE {
                    self.link(node.parent, child);
                }
                child = next;
            }
            if let Some(r) = self.remove(me) {
                removed(r);
                count = count.saturating_add(1);
            }
        }
        count
    }

    /// Live capabilities held by `shard`.
    pub fn count(&self, shard: usize) -> usize {
        self.slots
            .get(shard)
            .map_or(0, |s| s.iter().filter(|n| n.live).count())
    }

    fn free_slot(&self, shard: usize) -> Result<u32, Error> {
        let table = self.slots.get(shard).ok_or(Error::NoSuchShard)?;
        let slot = table.iter().position(|n| !n.live).ok_or(Error::NoSlots)?;
        Ok(slot as u32)
    }

    fn live(&self, shard: usize, handle: u64) -> Result<&Node, Error> {
        let table = self.slots.get(shard).ok_or(Error::NoSuchShard)?;
        let slot = usize::try_from(handle).map_err(|_| Error::BadHandle)?;
        table.get(slot).filter(|n| n.live).ok_or(Error::BadHandle)
    }

    fn node(&self, id: u32) -> Option<&Node> {
        self.slots
            .get((id / SLOTS) as usize)?
            .get((id % SLOTS) as usize)
    }

    fn node_mut(&mut self, id: u32) -> Option<&mut Node> {
        self.slots
            .get_mut((id / SLOTS) as usize)?
            .get_mut((id % SLOTS) as usize)
    }

    /// Makes `child` the first child of `parent`.
    fn link(&mut self, parent: u32, child: u32) {
        let old_first = self.node(parent).map_or(NONE, |n| n.first_child);
        if let Some(c) = self.node_mut(child) {
            c.parent = parent;
            c.prev = NONE;
            c.next = old_first;
        }
        if let Some(f) = self.node_mut(old_first) {
            f.prev = child;
        }
        if let Some(p) = self.node_mut(parent) {
            p.first_child = child;
        }
    }

    /// Takes `node` out of its parent's child list; it becomes a root.
    fn unlink(&mut self, node: u32) {
        let Some(&n) = self.node(node) else {
            return;
        };
        if n.prev != NONE {
            if let Some(p) = self.node_mut(n.prev) {
                p.next = n.next;
            }
        } else if let Some(p) = self.node_mut(n.parent) {
            p.first_child = n.next;
        }
        if let Some(nx) = self.node_mut(n.next) {
            nx.prev = n.prev;
        }
        if let Some(me) = self.node_mut(node) {
            me.parent = NONE;
            me.prev = NONE;
            me.next = NONE;
        }
    }

    /// Frees a node that has no children left.
    fn remove(&mut self, node: u32) -> Option<Removed> {
        self.unlink(node);
        let slot = self.node_mut(node)?;
        let n = *slot;
        *slot = FREE;
        n.live.then_some(Removed {
            shard: (node / SLOTS) as usize,
            handle: node % SLOTS,
            cap: Cap {
                cap_type: u64::from(n.cap_type),
                resource: u64::from(n.resource),
                rights: u64::from(n.rights),
            },
        })
    }
}

/// A node id from a shard and a slot (callers keep both in range).
fn id(shard: usize, slot: u32) -> u32 {
    (shard as u32)
        .saturating_mul(SLOTS)
        .saturating_add(slot % SLOTS)
}

#[cfg(test)]
mod tests;
