use super::*;
use crate::testutil::Rng;
use std::boxed::Box;
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

type Pool = ChannelPool<4, 96>;

fn pool() -> Box<Pool> {
    Box::new(Pool::new())
}

#[test]
fn fifo_order_and_back_pressure() {
    let mut p = pool();
    let c = p.create(3, 16).unwrap();
    for m in [&b"one"[..], b"two", b"three"] {
        p.try_send(c, m).unwrap();
    }
    assert_eq!(p.try_send(c, b"four"), Err(ChanError::Full));
    assert!(p.is_full(c).unwrap());
    let mut buf = [0u8; 16];
    assert_eq!(p.try_recv(c, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"one");
    p.try_send(c, b"four").unwrap();
    for want in [&b"two"[..], b"three", b"four"] {
        let n = p.try_recv(c, &mut buf).unwrap();
        assert_eq!(&buf[..n], want);
    }
    assert_eq!(p.try_recv(c, &mut buf), Err(ChanError::Empty));
    assert_eq!(Error::from(ChanError::Full), Error::WouldBlock);
}

#[test]
fn a_too_small_buffer_reports_the_length_and_keeps_the_message() {
    let mut p = pool();
    let c = p.create(2, 256).unwrap();
    let msg: Vec<u8> = (0..=255).collect();
    p.try_send(c, &msg).unwrap();
    let mut small = [0u8; 255];
    assert_eq!(
        p.try_recv(c, &mut small),
        Err(ChanError::MessageTooBig { len: 256 })
    );
    assert_eq!(
        p.try_recv(c, &mut []),
        Err(ChanError::MessageTooBig { len: 256 })
    );
    assert_eq!(p.len(c), Ok(1), "still queued");
    assert_eq!(p.peek_len(c), Ok(Some(256)));
    let mut big = [0u8; 300];
    assert_eq!(p.try_recv(c, &mut big), Ok(256));
    assert_eq!(&big[..256], &msg[..]);
    assert_eq!(
        Error::from(ChanError::MessageTooBig { len: 1 }),
        Error::MessageTooBig
    );
}

#[test]
fn the_coconut_fuzz_cases_fail() {
    let mut p = pool();
    let c = p.create(4, 256).unwrap();
    assert_eq!(p.try_send(c, b""), Err(ChanError::EmptyMessage), "len 0");
    assert_eq!(p.try_send(c, &[0; 257]), Err(ChanError::TooLong), "len 257");
    let bad = ChannelId(c.0 ^ 0x0001_0000);
    assert_eq!(
        p.try_send(bad, b"x"),
        Err(ChanError::NoSuchChannel),
        "bad channel"
    );
    assert_eq!(
        p.try_send(ChannelId(3), b"x"),
        Err(ChanError::NoSuchChannel)
    );
    assert_eq!(
        p.try_send(ChannelId(0xffff), b"x"),
        Err(ChanError::NoSuchChannel)
    );
    let small = p.create(1, 8).unwrap();
    assert_eq!(
        p.try_send(small, &[1; 9]),
        Err(ChanError::TooLong),
        "over this channel's msg_max"
    );
    for (cap, max) in [(0, 1), (65, 1), (1, 0), (1, 257), (u64::MAX, u64::MAX)] {
        assert_eq!(
            p.create(cap, max),
            Err(ChanError::InvalidArgument),
            "{cap} {max}"
        );
    }
}

#[test]
fn capacities_are_reserved_so_sends_never_run_out() {
    let mut p = pool();
    let a = p.create(64, 256).unwrap();
    assert_eq!(
        p.create(33, 1),
        Err(ChanError::NoMemory),
        "only 32 buffers left"
    );
    let b = p.create(32, 1).unwrap();
    assert_eq!(p.unreserved(), 0);
    for i in 0..64u8 {
        p.try_send(a, &[i]).unwrap();
    }
    for _ in 0..32 {
        p.try_send(b, b"x").unwrap();
    }
    assert_eq!(p.try_send(a, b"y"), Err(ChanError::Full));
    assert_eq!(p.destroy(a), Ok(64));
    assert_eq!(p.unreserved(), 64);
    assert_eq!(
        p.try_send(a, b"z"),
        Err(ChanError::NoSuchChannel),
        "destroyed"
    );
    let c = p.create(64, 4).unwrap();
    assert_ne!(c, a, "the reused index has a new generation");
    for _ in 0..64 {
        p.try_send(c, b"abcd").unwrap();
    }
}

#[test]
fn channels_run_out_with_an_error() {
    let mut p = pool();
    for _ in 0..4 {
        p.create(1, 1).unwrap();
    }
    assert_eq!(p.create(1, 1), Err(ChanError::NoMemory));
}

#[test]
fn random_traffic_matches_a_model_and_loses_nothing() {
    let mut rng = Rng::new(0xc4a);
    let mut p = pool();
    let mut ids = Vec::new();
    let mut models: Vec<VecDeque<Vec<u8>>> = Vec::new();
    for _ in 0..3 {
        let cap = 1 + rng.below(32);
        let max = 1 + rng.below(256);
        ids.push(p.create(cap, max).unwrap());
        models.push(VecDeque::new());
    }
    for _ in 0..50_000 {
        let i = rng.below(3) as usize;
        let (cap, max) = p.limits(ids[i]).unwrap();
        if rng.below(2) == 0 {
            let mut msg = vec![0u8; rng.below(max as u64 + 2) as usize];
            rng.fill(&mut msg);
            let r = p.try_send(ids[i], &msg);
            if msg.is_empty() {
                assert_eq!(r, Err(ChanError::EmptyMessage));
            } else if msg.len() > max {
                assert_eq!(r, Err(ChanError::TooLong));
            } else if models[i].len() == cap {
                assert_eq!(r, Err(ChanError::Full));
            } else {
                assert_eq!(r, Ok(()));
                models[i].push_back(msg);
            }
        } else {
            let mut buf = vec![0u8; rng.below(260) as usize];
            match (p.try_recv(ids[i], &mut buf), models[i].front()) {
                (Err(ChanError::Empty), None) => {}
                (Err(ChanError::MessageTooBig { len }), Some(m)) => {
                    assert_eq!(len, m.len());
                    assert!(len > buf.len());
                }
                (Ok(n), Some(m)) => {
                    assert_eq!(&buf[..n], &m[..]);
                    models[i].pop_front();
                }
                (r, m) => panic!("pool said {r:?}, model has {m:?}"),
            }
        }
        assert_eq!(p.len(ids[i]), Ok(models[i].len()));
    }
}
