//! 32 threads doing mixed operations must neither deadlock nor break the
//! hive's invariants.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use common::*;
use ninedoor::audit::AuditJournal;
use ninedoor::hive::ReadResult;
use ninedoor::identity::Identity;

const THREADS: usize = 32;
const ROUNDS: usize = 60;

#[test]
fn thirty_two_threads_mixed_operations() {
    let f = fixture();
    for _ in 0..4 {
        spawn_heartbeat(&f.hive);
    }
    // An idle GPU worker for the LEASE/RELEASE operations.
    let idle = spawn_gpu(&f.hive, "gpu1", 1_000_000);
    ctl(&f.hive, "/gpu/gpu1/ctl", &format!("RELEASE {idle}")).unwrap();
    let idle = Arc::new(idle);
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel();
    let mut handles = Vec::new();
    for t in 0..THREADS {
        let hive = f.hive.clone();
        let clock = f.clock.clone();
        let done = done_tx.clone();
        let stop = stop.clone();
        let idle = idle.clone();
        handles.push(thread::spawn(move || {
            for i in 0..ROUNDS {
                let q = queen();
                // Uncorrelated with the operation below.
                let worker = format!("worker-{}", 1 + (t * 7 + i * 5) % 16);
                let hb = Identity::heartbeat(&worker);
                let gw = Identity::gpu(&worker);
                match (t + i) % 12 {
                    0 => {
                        let _ = qctl(&hive, r#"{"spawn":"heartbeat","ticks":1}"#);
                    }
                    1 => {
                        let _ = qctl(&hive, &format!(r#"{{"kill":"{worker}"}}"#));
                    }
                    2 => {
                        let _ = qctl(
                            &hive,
                            r#"{"spawn":"gpu","lease":{"gpu_id":"gpu0","mem_mb":1,"streams":1,"ttl_s":2}}"#,
                        );
                    }
                    3 => {
                        let _ = ctl(&hive, "/gpu/gpu0/ctl", &format!("RELEASE {worker} y"));
                        let _ = ctl(
                            &hive,
                            "/gpu/gpu1/ctl",
                            &format!("LEASE {idle} mem=1 streams=1 priority=0 ttl=100000"),
                        );
                        let _ = read(&hive, &Identity::gpu(&idle), "/gpu/gpu1/status");
                        let _ = ctl(&hive, "/gpu/gpu1/ctl", &format!("RELEASE {idle} x"));
                    }
                    4 => {
                        let _ = write(&hive, &hb, &format!("/worker/{worker}/telemetry"), "beat 0123456789\n");
                    }
                    5 => {
                        let _ = read(&hive, &q, &format!("/worker/{worker}/telemetry"));
                        let _ = names(&hive, &q, "/worker");
                        let _ = names(&hive, &hb, "/");
                    }
                    6 => {
                        clock.advance(400);
                        hive.tick();
                    }
                    7 => {
                        let _ = ctl(&hive, "/queen/lifecycle/ctl", "cordon");
                        let _ = ctl(&hive, "/queen/lifecycle/ctl", "resume");
                    }
                    8 => {
                        if let Ok(n) = hive.walk_path(&q, "/log/queen.log") {
                            let end = hive.attr(n).map(|a| a.size).unwrap_or(0);
                            let _ = hive.wait_for_growth(n, end, &stop, Duration::from_millis(5));
                        }
                    }
                    9 => {
                        let _ = read(&hive, &gw, "/gpu/gpu0/status");
                        let _ = hive.check_session(&gw);
                        let _ = hive.attach(&hb);
                    }
                    10 => {
                        let _ = write(&hive, &q, "/gpu/models/active", "tiny\n");
                        let _ = read(&hive, &q, "/proc/boot");
                        hive.append_console(&worker, b"console line\n").ok();
                    }
                    _ => {
                        let _ = qctl(
                            &hive,
                            &format!(r#"{{"bind":{{"from":"/proc/boot","to":"/proc/b{t}-{i}"}}}}"#),
                        );
                        if let Ok(n) = hive.walk_path(&q, "/proc/boot")
                            && let Ok(fh) = hive.open(&q, n, false, false)
                        {
                            let r = hive.read(&q, &fh, 3, 5);
                            assert!(matches!(r, Ok(ReadResult::Data(_))));
                        }
                    }
                }
            }
            let _ = done.send(t);
        }));
    }
    drop(done_tx);
    for _ in 0..THREADS {
        done_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a thread did not finish: deadlock?");
    }
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().expect("no thread panicked");
    }
    // Invariants.
    let workers = f.hive.workers();
    for g in ["gpu0", "gpu1"] {
        if let Some(l) = f.hive.lease(g) {
            let holder = workers
                .iter()
                .find(|w| w.id == l.worker)
                .expect("holder exists");
            assert_eq!(holder.lease_gpu.as_deref(), Some(g));
        }
    }
    let held: Vec<_> = workers.iter().filter_map(|w| w.lease_gpu.clone()).collect();
    let mut dedup = held.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(
        held.len(),
        dedup.len(),
        "one GPU per worker, one worker per GPU"
    );
    AuditJournal::verify(f.hive.journal_path()).unwrap();
    assert!(f.hive.journal_healthy());
    // The mix really happened (checked on the journal: the in-memory
    // queen.log only keeps the most recent 256 KiB).
    let mut texts = Vec::new();
    AuditJournal::replay(f.hive.journal_path(), |r| texts.push(r.text.clone())).unwrap();
    for what in [
        "spawned worker-",
        "killed worker-",
        "leased gpu1",
        "expired",
        "lifecycle ONLINE -> DRAINING",
        "bind /proc/boot",
    ] {
        assert!(texts.iter().any(|t| t.contains(what)), "{what}");
    }
}
