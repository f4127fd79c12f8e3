//! In-crate tests that need fault injection (journal failures).

use std::sync::Arc;

use super::*;
use crate::audit::AuditJournal;
use crate::clock::ManualClock;
use crate::config::HiveSpec;
use crate::effects::RecordingEffects;

fn hive() -> (Hive, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let h = Hive::new(
        HiveSpec::default(),
        dir.path(),
        Arc::new(ManualClock::new(1_000)),
        Arc::new(RecordingEffects::new()),
    )
    .unwrap();
    h.set_online().unwrap();
    (h, dir)
}

fn qctl(h: &Hive, line: &str) -> Result<u32, Errno> {
    let q = Identity::queen();
    let n = h.walk_path(&q, "/queen/ctl")?;
    let f = h.open(&q, n, true, false)?;
    h.write(&q, &f, 0, line.as_bytes())
}

#[test]
fn journal_failure_degrades_and_refuses_unaudited_changes() {
    let (h, _dir) = hive();
    qctl(&h, r#"{"spawn":"heartbeat"}"#).unwrap();
    h.inject_journal_failures(usize::MAX);
    // A denial still denies; its record waits in memory.
    let hb = Identity::heartbeat("worker-1");
    assert_eq!(h.walk_path(&hb, "/queen").unwrap_err(), Errno::ENOENT);
    assert!(!h.journal_healthy());
    let lc = h.lifecycle();
    assert_eq!(lc.state, LifecycleState::Degraded);
    assert!(
        lc.reason.contains("audit journal write failed"),
        "{}",
        lc.reason
    );
    assert!(h.queen_log().contains("audit journal write failed"));
    assert!(
        h.queen_log()
            .contains("denied worker-heartbeat:worker-1 walk /queen")
    );
    // State changes are refused while they could not be audited.
    assert_eq!(
        qctl(&h, r#"{"spawn":"heartbeat"}"#).unwrap_err(),
        Errno::EIO
    );
    assert_eq!(qctl(&h, r#"{"kill":"worker-1"}"#).unwrap_err(), Errno::EIO);
    assert_eq!(h.workers().len(), 1);
    // Telemetry (not audited) keeps flowing.
    let n = h.walk_path(&hb, "/worker/worker-1/telemetry").unwrap();
    let f = h.open(&hb, n, true, false).unwrap();
    h.write(&hb, &f, u64::MAX, b"hb\n").unwrap();

    // The disk recovers: pending records are written, in order.
    h.inject_journal_failures(0);
    qctl(&h, r#"{"spawn":"heartbeat"}"#).unwrap();
    assert!(h.journal_healthy());
    let mut texts = Vec::new();
    AuditJournal::replay(h.journal_path(), |r| texts.push(r.text.clone())).unwrap();
    let denial = texts
        .iter()
        .position(|t| t.starts_with("denied worker-heartbeat:worker-1 walk /queen"))
        .unwrap();
    let recovered = texts
        .iter()
        .position(|t| t.starts_with("audit journal recovered"))
        .unwrap();
    let spawned = texts
        .iter()
        .position(|t| t.starts_with("spawned worker-2"))
        .unwrap();
    assert!(denial < recovered && recovered < spawned);
    assert!(AuditJournal::verify(h.journal_path()).is_ok());
    // Degraded stays until the queen says otherwise.
    assert_eq!(h.lifecycle().state, LifecycleState::Degraded);
}
