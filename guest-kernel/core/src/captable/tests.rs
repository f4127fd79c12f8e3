use super::*;
use crate::testutil::Rng;
use std::vec::Vec;

type Table = CapTable<8>;

const ALL_TYPES: [u64; 6] = [
    cap_type::CHANNEL,
    cap_type::SHARD,
    cap_type::MEMORY,
    cap_type::GPU_DMA,
    cap_type::IRQ,
    cap_type::FACTORY,
];

fn cap(cap_type: u64, resource: u64, rights: u64) -> Cap {
    Cap {
        cap_type,
        resource,
        rights,
    }
}

fn chan(rights: u64) -> Cap {
    cap(cap_type::CHANNEL, 7, rights)
}

const SRG: u64 = rights::SEND | rights::RECV | rights::GRANT;

/// Every live node's links are consistent: parent live and listing it as a child.
fn check_links(t: &Table) {
    for shard in 0..8 {
        for slot in 0..SLOTS {
            let me = id(shard, slot);
            let n = *t.node(me).unwrap();
            if !n.live {
                assert_eq!(
                    (n.parent, n.first_child, n.prev, n.next),
                    (NONE, NONE, NONE, NONE)
                );
                continue;
            }
            let mut c = n.first_child;
            let mut prev = NONE;
            let mut guard = 0;
            while c != NONE {
                let cn = t.node(c).unwrap();
                assert!(cn.live, "child of a live node is live");
                assert_eq!(cn.parent, me);
                assert_eq!(cn.prev, prev);
                prev = c;
                c = cn.next;
                guard += 1;
                assert!(guard < 1000, "child list is not a cycle");
            }
            if n.parent != NONE {
                assert!(
                    t.node(n.parent).unwrap().live,
                    "parent of a live node is live"
                );
            }
        }
    }
}

#[test]
fn create_lookup_inspect() {
    let mut t = Table::new();
    let h = t.create(1, chan(SRG)).unwrap();
    assert_eq!(h, 0);
    assert_eq!(t.lookup(1, 0, cap_type::CHANNEL, rights::SEND), Ok(7));
    assert_eq!(t.lookup(1, 0, cap_type::SHARD, 0), Err(Error::WrongType));
    assert_eq!(
        t.lookup(1, 1, cap_type::CHANNEL, 0),
        Err(Error::BadHandle),
        "empty slot"
    );
    assert_eq!(
        t.lookup(1, 32, cap_type::CHANNEL, 0),
        Err(Error::BadHandle),
        "out of range"
    );
    assert_eq!(
        t.lookup(1, u64::MAX, cap_type::CHANNEL, 0),
        Err(Error::BadHandle)
    );
    assert_eq!(
        t.lookup(9, 0, cap_type::CHANNEL, 0),
        Err(Error::NoSuchShard)
    );
    assert_eq!(t.inspect(1, 0), Ok((1 << 48) | (7 << 16) | SRG));
    let big = t
        .create(1, cap(cap_type::MEMORY, 0xffff_ffff, rights::MEMORY_DMA))
        .unwrap();
    assert_eq!(
        t.inspect(1, u64::from(big)),
        Ok((3 << 48) | (0xffff_ffff << 16) | 8)
    );
    for bad in [
        cap(0, 1, 0),
        cap(7, 1, 0),
        cap(cap_type::CHANNEL, 1 << 32, 0),
        cap(cap_type::CHANNEL, 1, 0x10),
    ] {
        assert_eq!(t.create(1, bad), Err(Error::InvalidArgument), "{bad:?}");
    }
}

#[test]
fn table_full_is_no_slots() {
    let mut t = Table::new();
    for i in 0..CAP_SLOTS {
        assert_eq!(t.create(2, chan(SRG)), Ok(i as u32));
    }
    assert_eq!(t.create(2, chan(SRG)), Err(Error::NoSlots));
    let src = t.create(3, chan(SRG)).unwrap();
    assert_eq!(t.grant(3, src.into(), 2, SRG), Err(Error::NoSlots));
    t.revoke(2, 5, |_| {}).unwrap();
    assert_eq!(
        t.grant(3, src.into(), 2, SRG),
        Ok(5),
        "the freed slot is reused"
    );
}

#[test]
fn grant_without_grant_is_refused_for_every_type() {
    let mut t = Table::new();
    for ty in ALL_TYPES {
        let without = t
            .create(0, cap(ty, 1, rights::ALL & !rights::GRANT))
            .unwrap();
        assert_eq!(
            t.grant(0, without.into(), 1, rights::ALL),
            Err(Error::NoRight),
            "type {ty}"
        );
        let with = t.create(0, cap(ty, 1, rights::ALL)).unwrap();
        let copy = t.grant(0, with.into(), 1, rights::ALL).unwrap();
        assert_eq!(t.get(1, copy.into()).map(|c| c.cap_type), Ok(ty));
    }
    assert_eq!(t.count(1), ALL_TYPES.len());
}

#[test]
fn grant_masks_rights_and_checks_the_target() {
    let mut t = Table::new();
    let h = t.create(0, chan(SRG)).unwrap();
    let c = t.grant(0, h.into(), 1, rights::SEND).unwrap();
    assert_eq!(t.get(1, c.into()), Ok(chan(rights::SEND)));
    assert_eq!(
        t.grant(1, c.into(), 2, SRG),
        Err(Error::NoRight),
        "the copy cannot re-grant"
    );
    assert_eq!(t.grant(0, h.into(), 8, SRG), Err(Error::NoSuchShard));
    assert_eq!(
        t.grant(0, h.into(), usize::MAX, SRG),
        Err(Error::NoSuchShard)
    );
    assert_eq!(t.grant(0, 3, 1, SRG), Err(Error::BadHandle));
    assert_eq!(t.grant(0, 99, 1, SRG), Err(Error::BadHandle));
    check_links(&t);
}

#[test]
fn restrict_only_shrinks() {
    let mut t = Table::new();
    let h = u64::from(t.create(0, chan(rights::SEND | rights::GRANT)).unwrap());
    assert_eq!(
        t.restrict(0, h, SRG),
        Ok(rights::SEND | rights::GRANT),
        "cannot add RECV"
    );
    assert_eq!(
        t.restrict(0, h, rights::SEND | rights::RECV),
        Ok(rights::SEND)
    );
    assert_eq!(
        t.restrict(0, h, u64::MAX),
        Ok(rights::SEND),
        "cannot grow back"
    );
    assert_eq!(t.grant(0, h, 1, SRG), Err(Error::NoRight));
    assert_eq!(t.restrict(0, 4, 0), Err(Error::BadHandle));
}

#[test]
fn revoke_cascades_across_shards() {
    // 0 → 1 → 2 → 3, 1 → 4, 0 → 5; 0 also holds an unrelated cap
    let mut t = Table::new();
    let root = t.create(0, chan(SRG)).unwrap();
    let other = t.create(0, cap(cap_type::FACTORY, 0, rights::ALL)).unwrap();
    let h1 = t.grant(0, root.into(), 1, SRG).unwrap();
    let h2 = t.grant(1, h1.into(), 2, SRG).unwrap();
    let h3 = t.grant(2, h2.into(), 3, SRG).unwrap();
    let h4 = t.grant(1, h1.into(), 4, rights::RECV).unwrap();
    let h5 = t.grant(0, root.into(), 5, rights::SEND).unwrap();
    let f1 = t.grant(0, other.into(), 1, rights::ALL).unwrap();
    check_links(&t);

    // revoking the middle removes 1, 2, 3, 4 but not root, 5 or the factory copy
    let mut gone = Vec::new();
    assert_eq!(
        t.revoke(1, h1.into(), |r| gone.push((r.shard, r.handle))),
        Ok(4)
    );
    gone.sort();
    assert_eq!(gone, [(1, h1), (2, h2), (3, h3), (4, h4)]);
    assert_eq!(t.get(0, root.into()).map(|c| c.rights), Ok(SRG));
    assert_eq!(t.get(5, h5.into()), Ok(chan(rights::SEND)));
    assert_eq!(
        t.get(1, f1.into()).map(|c| c.cap_type),
        Ok(cap_type::FACTORY)
    );
    for (s, h) in [(1, h1), (2, h2), (3, h3), (4, h4)] {
        assert_eq!(t.get(s, h.into()), Err(Error::BadHandle));
    }
    check_links(&t);

    // revoking the root takes the rest of its tree
    let mut removed = Vec::new();
    assert_eq!(t.revoke(0, root.into(), |r| removed.push(r)), Ok(2));
    assert!(
        removed
            .iter()
            .all(|r| r.cap.cap_type == cap_type::CHANNEL && r.cap.resource == 7)
    );
    assert_eq!(t.count(5), 0);
    assert_eq!(t.revoke(0, root.into(), |_| {}), Err(Error::BadHandle));
    check_links(&t);
}

#[test]
fn a_dead_shards_copies_are_reparented_so_revoke_still_reaches_them() {
    let mut t = Table::new();
    let root = t.create(0, chan(SRG)).unwrap();
    let mid = t.grant(0, root.into(), 1, SRG).unwrap();
    let leaf_a = t.grant(1, mid.into(), 2, SRG).unwrap();
    let leaf_b = t.grant(1, mid.into(), 3, SRG).unwrap();
    let deep = t.grant(3, leaf_b.into(), 4, SRG).unwrap();
    let own = t.create(1, cap(cap_type::SHARD, 1, rights::ALL)).unwrap();
    let own_copy = t.grant(1, own.into(), 2, rights::WAIT).unwrap();

    let mut dropped = Vec::new();
    assert_eq!(t.drop_all(1, |r| dropped.push(r.handle)), 2);
    dropped.sort();
    assert_eq!(dropped, [mid.min(own), mid.max(own)]);
    assert_eq!(t.count(1), 0);
    // the copies survive the middle-man's death…
    assert!(t.get(2, leaf_a.into()).is_ok() && t.get(3, leaf_b.into()).is_ok());
    assert!(t.get(4, deep.into()).is_ok());
    assert!(
        t.get(2, own_copy.into()).is_ok(),
        "a root's orphan becomes a root"
    );
    check_links(&t);
    // …and a revoke at the root still reaches all of them
    assert_eq!(t.revoke(0, root.into(), |_| {}), Ok(4));
    assert_eq!(t.count(2), 1);
    assert_eq!(t.count(3) + t.count(4), 0);
    check_links(&t);
}

#[test]
fn random_operations_keep_the_links_consistent() {
    let mut rng = Rng::new(0xcab);
    let mut t = Table::new();
    for _ in 0..30_000 {
        let shard = rng.below(9) as usize; // 8 is out of range on purpose
        let handle = rng.below(34);
        match rng.below(6) {
            0 => {
                let ty = 1 + rng.below(6);
                let _ = t.create(shard, cap(ty, rng.below(100), rng.below(16)));
            }
            1 | 2 => {
                let _ = t.grant(shard, handle, rng.below(9) as usize, rng.below(16));
            }
            3 => {
                let before: usize = (0..8).map(|s| t.count(s)).sum();
                if let Ok(n) = t.revoke(shard, handle, |_| {}) {
                    let after: usize = (0..8).map(|s| t.count(s)).sum();
                    assert_eq!(before - after, n);
                }
            }
            4 => {
                let _ = t.restrict(shard, handle, rng.below(16));
            }
            _ => {
                if rng.below(10) == 0 {
                    t.drop_all(shard, |_| {});
                    assert_eq!(t.count(shard), 0);
                }
            }
        }
        if rng.below(64) == 0 {
            check_links(&t);
        }
    }
    check_links(&t);
}
