use super::*;
use crate::testutil::Rng;
use std::collections::VecDeque;
use std::vec::Vec;

type S = Sched<32>;

#[test]
fn empty_means_idle() {
    let mut s = S::new();
    assert_eq!(s.pick_next(), None);
    assert_eq!(s.highest_ready(), None);
}

#[test]
fn round_robin_among_equals_is_fair() {
    let mut s = S::new();
    for id in [4, 9, 2] {
        s.make_runnable(id, 1).unwrap();
    }
    let mut current = s.pick_next().unwrap();
    let mut runs = [0usize; 32];
    let mut order = Vec::new();
    for _ in 0..300 {
        runs[current] += 1;
        order.push(current);
        current = s.yield_now(current, 1).unwrap();
    }
    assert_eq!((runs[4], runs[9], runs[2]), (100, 100, 100));
    assert_eq!(&order[..6], &[4, 9, 2, 4, 9, 2], "FIFO rotation");
}

#[test]
fn higher_priority_first_and_lower_runs_only_when_higher_blocks() {
    let mut s = S::new();
    s.make_runnable(1, 3).unwrap();
    s.make_runnable(2, 0).unwrap();
    s.make_runnable(3, 2).unwrap();
    // shard 2 (priority 0) keeps yielding: strict priority never runs the others
    let mut current = s.pick_next().unwrap();
    for _ in 0..50 {
        assert_eq!(current, 2);
        current = s.yield_now(current, 0).unwrap();
    }
    // it blocks (is not put back): priority 2, then 3
    assert_eq!(s.pick_next(), Some(3));
    assert_eq!(s.pick_next(), Some(1));
    assert_eq!(s.pick_next(), None);
    // a wakeup of a higher priority is visible for preemption
    s.make_runnable(1, 3).unwrap();
    assert_eq!(s.highest_ready(), Some(3));
    s.make_runnable(2, 0).unwrap();
    assert_eq!(s.highest_ready(), Some(0));
}

#[test]
fn block_and_remove_take_shards_off_any_queue_position() {
    let mut s = S::new();
    for id in 0..5 {
        s.make_runnable(id, 2).unwrap();
    }
    s.block(2); // middle
    s.block(0); // head
    s.remove(4); // tail
    s.block(7); // never queued: no-op
    assert!(!s.is_queued(2));
    let picked: Vec<usize> = core::iter::from_fn(|| s.pick_next()).collect();
    assert_eq!(picked, [1, 3]);
    // re-queueing an already queued shard moves it to the back (and to the new priority)
    s.make_runnable(1, 2).unwrap();
    s.make_runnable(3, 2).unwrap();
    s.make_runnable(1, 2).unwrap();
    assert_eq!(s.pick_next(), Some(3));
    s.make_runnable(3, 2).unwrap();
    s.make_runnable(3, 0).unwrap();
    assert_eq!(s.pick_next(), Some(3));
    assert_eq!(s.pick_next(), Some(1));
}

#[test]
fn bad_ids_and_priorities_are_refused() {
    let mut s = S::new();
    assert_eq!(s.make_runnable(32, 0), Err(SchedError::BadShard));
    assert_eq!(s.make_runnable(usize::MAX, 0), Err(SchedError::BadShard));
    assert_eq!(s.make_runnable(0, 4), Err(SchedError::BadPriority));
    assert_eq!(s.yield_now(0, 9), Err(SchedError::BadPriority));
    s.block(1000);
    s.remove(1000);
    s.set_deadline(1000, 5);
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn deadlines_expire_in_time_order() {
    let mut s = S::new();
    s.set_deadline(5, 300);
    s.set_deadline(6, 100);
    s.set_deadline(7, 200);
    assert_eq!(s.next_deadline(), Some(100));
    let mut woke = Vec::new();
    assert_eq!(s.expire(99, |id| woke.push(id)), 0);
    assert_eq!(s.expire(200, |id| woke.push(id)), 2);
    woke.sort();
    assert_eq!(woke, [6, 7]);
    assert_eq!(s.next_deadline(), Some(300));
    s.clear_deadline(5);
    assert_eq!(s.next_deadline(), None);
    s.set_deadline(1, u64::MAX - 1);
    s.remove(1);
    assert_eq!(s.expire(u64::MAX, |_| panic!("removed")), 0);
}

#[test]
fn random_operations_match_a_model() {
    let mut rng = Rng::new(0x5c4ed);
    let mut s = S::new();
    let mut model: [VecDeque<usize>; PRIORITIES] = Default::default();
    for _ in 0..50_000 {
        let id = rng.below(32) as usize;
        let prio = rng.below(4) as u8;
        match rng.below(3) {
            0 => {
                s.make_runnable(id, prio).unwrap();
                for q in model.iter_mut() {
                    q.retain(|&x| x != id);
                }
                model[prio as usize].push_back(id);
            }
            1 => {
                s.block(id);
                for q in model.iter_mut() {
                    q.retain(|&x| x != id);
                }
            }
            _ => {
                let want = model
                    .iter_mut()
                    .find(|q| !q.is_empty())
                    .and_then(|q| q.pop_front());
                assert_eq!(s.pick_next(), want);
            }
        }
        for id in 0..32 {
            assert_eq!(s.is_queued(id), model.iter().any(|q| q.contains(&id)));
        }
    }
}
