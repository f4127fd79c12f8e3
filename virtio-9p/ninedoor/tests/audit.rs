//! The audit journal as the hive uses it: every queen.log line is durable
//! and chained, the chain resumes after a restart, tampering stops the
//! restart, worker ids are not reused across restarts.

mod common;

use std::sync::Arc;

use common::*;
use ninedoor::Hive;
use ninedoor::audit::{AuditError, AuditJournal};
use ninedoor::clock::ManualClock;
use ninedoor::effects::RecordingEffects;
use ninedoor::hive::HiveError;
use ninedoor::identity::Identity;

fn journal_texts(path: &std::path::Path) -> Vec<String> {
    let mut v = Vec::new();
    AuditJournal::replay(path, |r| v.push(r.text.clone())).unwrap();
    v
}

fn reopen(dir: &std::path::Path) -> Result<Hive, HiveError> {
    Hive::new(
        spec(),
        dir,
        Arc::new(ManualClock::new(T0 + 60_000)),
        Arc::new(RecordingEffects::new()),
    )
}

#[test]
fn queen_log_lines_are_the_durable_journal() {
    let f = fixture();
    let w = spawn_heartbeat(&f.hive);
    let _ = f.hive.walk_path(&Identity::heartbeat(&w), "/queen");
    let path = f.hive.journal_path().to_path_buf();
    let n = AuditJournal::verify(&path).unwrap();
    let texts = journal_texts(&path);
    assert_eq!(n, texts.len());
    assert_eq!(texts, log_lines(&f.hive));
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("denied worker-heartbeat:"))
    );
    assert!(f.hive.journal_healthy());
}

#[test]
fn restart_resumes_the_chain_history_and_worker_numbering() {
    let f = fixture();
    spawn_heartbeat(&f.hive);
    spawn_heartbeat(&f.hive);
    let path = f.hive.journal_path().to_path_buf();
    let before = AuditJournal::verify(&path).unwrap();
    let dir = f.dir.path().to_path_buf();
    let Fx { hive, dir: tmp, .. } = f;
    drop(hive);

    let h = reopen(&dir).unwrap();
    h.set_online().unwrap();
    // The chain continued: more records, still verifying.
    let after = AuditJournal::verify(&path).unwrap();
    assert!(after > before);
    // queen.log shows the history.
    assert!(logged(&h, &["spawned worker-2"]));
    assert!(logged(&h, &["ninedoor started"]));
    // Ids continue after the highest ever spawned.
    assert_eq!(spawn_heartbeat(&h), "worker-3");
    assert!(AuditJournal::verify(&path).is_ok());
    drop(tmp);
}

#[test]
fn a_tampered_journal_stops_the_restart() {
    let f = fixture();
    spawn_heartbeat(&f.hive);
    let path = f.hive.journal_path().to_path_buf();
    let dir = f.dir.path().to_path_buf();
    let Fx { hive, dir: tmp, .. } = f;
    drop(hive);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("spawned worker-1", "spawned worker-7")).unwrap();
    match reopen(&dir) {
        Err(HiveError::Audit(AuditError::Corrupt { reason, .. })) => {
            assert!(reason.contains("hash mismatch"), "{reason}");
        }
        other => panic!("expected a corrupt journal, got {other:?}"),
    }
    drop(tmp);
}
