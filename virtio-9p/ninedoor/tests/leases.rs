//! GPU leases (LEASE, RELEASE, TTL expiry by the hive's clock), job
//! descriptors and the active-model pointer.

mod common;

use common::*;
use ninedoor::Errno;
use ninedoor::effects::EffectCall;
use ninedoor::identity::Identity;
use ninedoor::sha256::sha256_hex;

fn lease_lines(f: &Fx, gpu: &str) -> Vec<serde_json::Value> {
    read(&f.hive, &queen(), &format!("/gpu/{gpu}/lease"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A GPU worker without a lease (spawned on gpu1, then released).
fn idle_gpu_worker(f: &Fx) -> String {
    let w = spawn_gpu(&f.hive, "gpu1", 600);
    ctl(
        &f.hive,
        "/gpu/gpu1/ctl",
        &format!("RELEASE {w} handing over"),
    )
    .unwrap();
    w
}

#[test]
fn one_active_lease_per_gpu() {
    let f = fixture();
    let a = idle_gpu_worker(&f);
    let b = idle_gpu_worker(&f);
    ctl(
        &f.hive,
        "/gpu/gpu0/ctl",
        &format!("LEASE {a} mem=2048 streams=4 priority=2 ttl=30\n"),
    )
    .unwrap();
    assert!(logged(
        &f.hive,
        &[&format!(
            "leased gpu0 to {a} mem=2048 streams=4 priority=2 ttl=30s"
        )]
    ));
    let l = f.hive.lease("gpu0").unwrap();
    assert_eq!(
        (l.worker.as_str(), l.streams, l.expires_at_ms),
        (a.as_str(), 4, T0 + 30_000)
    );
    let lines = lease_lines(&f, "gpu0");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["schema"], "gpu-lease/v1");
    assert_eq!(lines[0]["state"], "ACTIVE");
    assert_eq!(lines[0]["worker_id"], a.as_str());
    // A second LEASE on the same GPU is refused.
    let e = ctl(
        &f.hive,
        "/gpu/gpu0/ctl",
        &format!("LEASE {b} mem=1 streams=1 priority=0"),
    )
    .unwrap_err();
    assert_eq!(e, Errno::EBUSY);
    assert!(logged(
        &f.hive,
        &[
            "gpu0 ctl line 1 rejected",
            &format!("already leased to {a}")
        ]
    ));
    // A worker holds one GPU at a time.
    assert_eq!(
        ctl(
            &f.hive,
            "/gpu/gpu1/ctl",
            &format!("LEASE {a} mem=1 streams=1 priority=0")
        )
        .unwrap_err(),
        Errno::EBUSY
    );
    // Budget: a leasing GPU worker gets streams × 8 ops.
    assert_eq!(
        f.hive.session_budget(&Identity::gpu(&a), None).ops_left(),
        Some(32)
    );
    assert_eq!(
        f.hive.session_budget(&Identity::gpu(&b), None).ops_left(),
        Some(64)
    );
    // RELEASE ends it, detaches, and frees the GPU.
    ctl(
        &f.hive,
        "/gpu/gpu0/ctl",
        &format!("RELEASE {a} done for today"),
    )
    .unwrap();
    assert!(f.hive.lease("gpu0").is_none());
    let lines = lease_lines(&f, "gpu0");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["state"], "RELEASED");
    assert_eq!(lines[1]["reason"], "done for today");
    assert!(f.fx.calls().contains(&EffectCall::Detach {
        worker: a.clone(),
        gpu: "gpu0".into()
    }));
    assert!(
        !f.hive.is_revoked(&Identity::gpu(&a)),
        "RELEASE does not revoke"
    );
    ctl(
        &f.hive,
        "/gpu/gpu0/ctl",
        &format!("LEASE {b} mem=1 streams=1 priority=0"),
    )
    .unwrap();
    // Releasing what one does not hold.
    assert_eq!(
        ctl(&f.hive, "/gpu/gpu0/ctl", &format!("RELEASE {a}")).unwrap_err(),
        Errno::ENOENT
    );
}

#[test]
fn lease_refusals() {
    let f = fixture();
    let hb = spawn_heartbeat(&f.hive);
    let g = idle_gpu_worker(&f);
    for (line, errno) in [
        (
            format!("LEASE {hb} mem=1 streams=1 priority=0"),
            Errno::EINVAL,
        ),
        (
            "LEASE worker-99 mem=1 streams=1 priority=0".to_owned(),
            Errno::ENOENT,
        ),
        (
            format!("LEASE {g} mem=0 streams=1 priority=0"),
            Errno::EINVAL,
        ),
        (
            format!("LEASE {g} mem=4097 streams=1 priority=0"),
            Errno::EINVAL,
        ),
        (
            format!("LEASE {g} mem=1 streams=65 priority=0"),
            Errno::EINVAL,
        ),
        (
            format!("LEASE {g} mem=1 streams=1 priority=0 ttl=0"),
            Errno::EINVAL,
        ),
        (format!("LEASE {g} mem=1 streams=1"), Errno::EINVAL),
        (format!("GRANT {g}"), Errno::EINVAL),
    ] {
        assert_eq!(
            ctl(&f.hive, "/gpu/gpu0/ctl", &line).unwrap_err(),
            errno,
            "{line}"
        );
    }
    // Line 2 fails: line 1 applied, line 3 not run.
    let e = ctl(
        &f.hive,
        "/gpu/gpu0/ctl",
        &format!("LEASE {g} mem=1 streams=1 priority=0\nLEASE {hb} mem=1 streams=1 priority=0\nRELEASE {g}\n"),
    )
    .unwrap_err();
    assert_eq!(e, Errno::EINVAL, "a heartbeat worker cannot lease");
    assert_eq!(f.hive.lease("gpu0").unwrap().worker, g, "line 3 never ran");
    // No new leases unless ONLINE/DEGRADED.
    ctl(&f.hive, "/gpu/gpu0/ctl", &format!("RELEASE {g}")).unwrap();
    ctl(&f.hive, "/queen/lifecycle/ctl", "cordon").unwrap();
    assert_eq!(
        ctl(
            &f.hive,
            "/gpu/gpu0/ctl",
            &format!("LEASE {g} mem=1 streams=1 priority=0")
        )
        .unwrap_err(),
        Errno::EAGAIN
    );
}

#[test]
fn ttl_expiry_by_the_hive_clock_revokes_the_worker() {
    let f = fixture();
    let w = spawn_gpu(&f.hive, "gpu0", 10);
    let me = Identity::gpu(&w);
    f.hive.attach(&me).unwrap();
    assert_eq!(f.hive.tick(), 0);
    f.clock.advance(9_999);
    assert_eq!(f.hive.tick(), 0);
    assert!(f.hive.check_session(&me).is_ok());
    f.clock.advance(1);
    // The next request notices (check_session runs the expiry first).
    assert_eq!(f.hive.check_session(&me).unwrap_err(), Errno::EKEYREVOKED);
    assert!(f.hive.lease("gpu0").is_none());
    let lines = lease_lines(&f, "gpu0");
    let last = lines.last().unwrap();
    assert_eq!(last["state"], "RELEASED");
    assert_eq!(last["reason"], "ttl expired");
    assert_eq!(last["released_at_ms"], T0 + 10_000);
    assert!(logged(
        &f.hive,
        &[&format!("lease gpu0 of {w} expired (ttl 10s)")]
    ));
    assert!(logged(
        &f.hive,
        &[&format!("revoked {w}: lease on gpu0 expired")]
    ));
    assert!(logged(&f.hive, &[&format!("stopped {w}")]));
    let calls = f.fx.calls();
    let stop = calls
        .iter()
        .position(|c| matches!(c, EffectCall::Stop { id, .. } if *id == w))
        .unwrap();
    let detach = calls
        .iter()
        .position(
            |c| matches!(c, EffectCall::Detach { worker, gpu } if *worker == w && gpu == "gpu0"),
        )
        .unwrap();
    assert!(stop < detach, "stop the VM, then take its partition back");
    assert!(f.hive.workers().is_empty());
    // Only once.
    assert_eq!(f.hive.tick(), 0);
    // The GPU can be leased again.
    spawn_gpu(&f.hive, "gpu0", 10);
}

#[test]
fn expiry_with_failing_effects_is_retryable() {
    let f = fixture();
    let w = spawn_gpu(&f.hive, "gpu0", 1);
    f.fx.fail_detach(true);
    f.clock.advance(1_000);
    assert_eq!(f.hive.expire(T0 + 1_000), 1);
    assert!(f.hive.workers().is_empty(), "stop succeeded");
    assert!(logged(&f.hive, &[&format!("detach gpu0 from {w} failed")]));
    assert!(
        read(&f.hive, &queen(), "/gpu/gpu0/status")
            .unwrap()
            .contains("detach-pending")
    );
    f.fx.fail_detach(false);
    ctl(&f.hive, "/gpu/gpu0/ctl", &format!("RELEASE {w}")).unwrap();
    assert!(logged(
        &f.hive,
        &[&format!("retrying detach of gpu0 from {w}")]
    ));
    assert!(
        read(&f.hive, &queen(), "/gpu/gpu0/status")
            .unwrap()
            .contains("state idle")
    );
}

#[test]
fn job_descriptors_are_validated() {
    let f = fixture();
    let w = spawn_gpu(&f.hive, "gpu0", 600);
    let me = Identity::gpu(&w);
    let h = sha256_hex(b"matmul 64");
    let good = format!(r#"{{"id":"j1","payload":"matmul 64","sha256":"{h}"}}"#);
    write(&f.hive, &me, "/gpu/gpu0/job", &format!("{good}\n{good}\n")).unwrap();
    assert!(
        read(&f.hive, &queen(), "/gpu/gpu0/status")
            .unwrap()
            .contains("jobs 2")
    );
    for bad in [
        "not json".to_owned(),
        "[1,2]".to_owned(),
        r#"{"payload":"matmul 64"}"#.to_owned(),
        format!(r#"{{"payload":"matmul 65","sha256":"{h}"}}"#),
    ] {
        assert_eq!(
            write(&f.hive, &me, "/gpu/gpu0/job", &bad).unwrap_err(),
            Errno::EINVAL,
            "{bad}"
        );
    }
    // A failing line stops later ones.
    assert_eq!(
        write(
            &f.hive,
            &me,
            "/gpu/gpu0/job",
            &format!("{good}\nbad\n{good}\n")
        )
        .unwrap_err(),
        Errno::EINVAL
    );
    let jobs = read(&f.hive, &queen(), "/gpu/gpu0/job").unwrap();
    assert_eq!(jobs.lines().count(), 3);
    for l in jobs.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["sha256"], h.as_str());
    }
    // Jobs are new work.
    ctl(&f.hive, "/queen/lifecycle/ctl", "cordon").unwrap();
    assert_eq!(
        write(&f.hive, &me, "/gpu/gpu0/job", &good).unwrap_err(),
        Errno::EAGAIN
    );
}

#[test]
fn active_model_pointer() {
    let f = fixture();
    let q = queen();
    assert_eq!(f.hive.active_model(), None);
    write(&f.hive, &q, "/gpu/models/active", "stories15m\n").unwrap();
    assert_eq!(f.hive.active_model().as_deref(), Some("stories15m"));
    assert_eq!(
        write(&f.hive, &q, "/gpu/models/active", "gpt-5\n").unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        write(&f.hive, &q, "/gpu/models/active", "tiny stories15m\n").unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(f.hive.active_model().as_deref(), Some("stories15m"));
    write(&f.hive, &q, "/gpu/models/active", "tiny\nstories15m\n").unwrap();
    assert_eq!(f.hive.active_model().as_deref(), Some("stories15m"));
    // Line 1 valid, line 2 not: line 1 stays applied.
    assert_eq!(
        write(
            &f.hive,
            &q,
            "/gpu/models/active",
            "tiny\nnope\nstories15m\n"
        )
        .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(f.hive.active_model().as_deref(), Some("tiny"));
    let text = read(&f.hive, &q, "/gpu/models/active").unwrap();
    assert_eq!(text, "stories15m\ntiny\nstories15m\ntiny\n");
    assert_eq!(
        text.lines().last(),
        Some("tiny"),
        "the last line is the active one"
    );
    assert!(logged(&f.hive, &["active model set to tiny"]));
    assert!(logged(&f.hive, &["model pointer rejected", "gpt-5"]));
}
