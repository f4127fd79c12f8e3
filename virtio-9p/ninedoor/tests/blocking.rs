//! Blocking reads: waiting for an append-only node to grow, with wakeup,
//! cancellation, timeout, and removal.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use ninedoor::hive::{ReadResult, WaitResult};
use ninedoor::identity::Identity;

#[test]
fn a_waiter_wakes_when_another_thread_appends() {
    let f = fixture();
    let w = spawn_heartbeat(&f.hive);
    let me = Identity::heartbeat(&w);
    let path = format!("/worker/{w}/telemetry");
    let node = f.hive.walk_path(&me, &path).unwrap();
    let file = f.hive.open(&me, node, false, false).unwrap();
    assert_eq!(
        f.hive.read(&me, &file, 0, 64).unwrap(),
        ReadResult::WouldBlock
    );

    let hive = f.hive.clone();
    let cancel = Arc::new(AtomicBool::new(false));
    let c2 = cancel.clone();
    let waiter = thread::spawn(move || {
        let t = Instant::now();
        let r = hive.wait_for_growth(node, 0, &c2, Duration::from_secs(20));
        (r, t.elapsed())
    });
    thread::sleep(Duration::from_millis(100));
    // The waiter holds no lock: the namespace keeps working meanwhile.
    read(&f.hive, &queen(), "/proc/boot").unwrap();
    write(&f.hive, &me, &path, "beat\n").unwrap();
    let (r, took) = waiter.join().unwrap();
    assert_eq!(r, WaitResult::Grew);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        f.hive.read(&me, &file, 0, 64).unwrap(),
        ReadResult::Data(b"beat\n".to_vec())
    );
    // Already grown: returns at once.
    assert_eq!(
        f.hive
            .wait_for_growth(node, 2, &cancel, Duration::from_secs(20)),
        WaitResult::Grew
    );
}

#[test]
fn cancellation_and_timeout() {
    let f = fixture();
    let node = f.hive.walk_path(&queen(), "/gpu/gpu0/lease").unwrap();
    // Timeout.
    let never = AtomicBool::new(false);
    let t = Instant::now();
    assert_eq!(
        f.hive
            .wait_for_growth(node, 0, &never, Duration::from_millis(120)),
        WaitResult::TimedOut
    );
    assert!(t.elapsed() >= Duration::from_millis(120));
    assert_eq!(
        f.hive.wait_for_growth(node, 0, &never, Duration::ZERO),
        WaitResult::TimedOut
    );
    // Cancellation with an explicit wakeup.
    for explicit_wake in [true, false] {
        let hive = f.hive.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let c2 = cancel.clone();
        let waiter = thread::spawn(move || {
            let t = Instant::now();
            (
                hive.wait_for_growth(node, 0, &c2, Duration::from_secs(30)),
                t.elapsed(),
            )
        });
        thread::sleep(Duration::from_millis(80));
        cancel.store(true, Ordering::SeqCst);
        if explicit_wake {
            f.hive.wake_waiters();
        }
        let (r, took) = waiter.join().unwrap();
        assert_eq!(r, WaitResult::Cancelled);
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    // Already cancelled: immediate.
    let yes = AtomicBool::new(true);
    assert_eq!(
        f.hive
            .wait_for_growth(node, 0, &yes, Duration::from_secs(30)),
        WaitResult::Cancelled
    );
}

#[test]
fn removal_and_non_stream_nodes() {
    let f = fixture();
    let w = spawn_heartbeat(&f.hive);
    let node = f
        .hive
        .walk_path(&queen(), &format!("/worker/{w}/telemetry"))
        .unwrap();
    let hive = f.hive.clone();
    let waiter = thread::spawn(move || {
        hive.wait_for_growth(node, 0, &AtomicBool::new(false), Duration::from_secs(30))
    });
    thread::sleep(Duration::from_millis(80));
    qctl(&f.hive, &format!(r#"{{"kill":"{w}"}}"#)).unwrap();
    assert_eq!(waiter.join().unwrap(), WaitResult::Gone);
    let boot = f.hive.walk_path(&queen(), "/proc/boot").unwrap();
    assert_eq!(
        f.hive
            .wait_for_growth(boot, 0, &AtomicBool::new(false), Duration::from_secs(30)),
        WaitResult::Grew
    );
}

#[test]
fn many_waiters_on_the_audit_log() {
    let f = fixture();
    let node = f.hive.walk_path(&queen(), "/log/queen.log").unwrap();
    let end = f.hive.attr(node).unwrap().size;
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let hive = f.hive.clone();
            thread::spawn(move || {
                hive.wait_for_growth(node, end, &AtomicBool::new(false), Duration::from_secs(30))
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(80));
    spawn_heartbeat(&f.hive);
    for w in waiters {
        assert_eq!(w.join().unwrap(), WaitResult::Grew);
    }
}
