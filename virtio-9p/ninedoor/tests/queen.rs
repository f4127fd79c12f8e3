//! `/queen/ctl`: strict JSON, spawn and kill through effects, default
//! budgets, bind and mount.

mod common;

use common::*;
use ninedoor::Errno;
use ninedoor::budget::SpawnBudget;
use ninedoor::effects::{EffectCall, LeaseSpec, SpawnSpec};
use ninedoor::hive::WorkerState;
use ninedoor::identity::{Identity, Role};

#[test]
fn strict_json_lines() {
    let f = fixture();
    for bad in [
        r#"{"spawn":"heartbeat","unknown":1}"#,
        r#"{"spawn":"heartbeat","ticks":"ten"}"#,
        r#"{"spawn":"heartbeat","ticks":-3}"#,
        r#"{"kill":7}"#,
        r#"{"spawn":"heartbeat"}{"spawn":"heartbeat"}"#,
        r#"["spawn","heartbeat"]"#,
        r#"{"spawn":"gpu","lease":{"gpu_id":"gpu0","mem_mb":"lots","streams":1}}"#,
        r#"{"budget":{"ops":1,"extra":true}}"#,
        "spawn heartbeat",
    ] {
        assert_eq!(qctl(&f.hive, bad).unwrap_err(), Errno::EINVAL, "{bad}");
    }
    assert!(f.hive.workers().is_empty());
    assert!(f.fx.calls().is_empty());
    // Line 2 fails: line 1 applied, line 3 not.
    let e = qctl(
        &f.hive,
        "{\"spawn\":\"heartbeat\",\"ticks\":3}\n{\"kill\":\"worker-x\"}\n{\"spawn\":\"heartbeat\"}\n",
    )
    .unwrap_err();
    assert_eq!(e, Errno::EINVAL);
    assert_eq!(f.hive.workers().len(), 1);
    assert!(logged(
        &f.hive,
        &["queen ctl line 2 rejected", "bad worker id"]
    ));
}

#[test]
fn spawn_and_kill_call_effects_and_ids_are_never_reused() {
    let f = fixture();
    let a = spawn_heartbeat(&f.hive);
    let b = spawn_heartbeat(&f.hive);
    assert_eq!((a.as_str(), b.as_str()), ("worker-1", "worker-2"));
    assert!(logged(
        &f.hive,
        &["spawned worker-1 role=worker-heartbeat ticks=10"]
    ));
    assert_eq!(
        f.fx.calls()[0],
        EffectCall::Spawn(SpawnSpec {
            id: "worker-1".into(),
            role: Role::WorkerHeartbeat,
            ticks: Some(10),
            budget: SpawnBudget::default(),
            lease: None,
        })
    );
    qctl(&f.hive, r#"{"kill":"worker-2"}"#).unwrap();
    assert!(f.fx.calls().contains(&EffectCall::Stop {
        id: "worker-2".into(),
        reason: "killed by queen".into()
    }));
    assert!(logged(&f.hive, &["killed worker-2"]));
    assert!(logged(&f.hive, &["revoked worker-2: killed by queen"]));
    assert!(logged(&f.hive, &["stopped worker-2"]));
    // Killing it again: gone.
    assert_eq!(
        qctl(&f.hive, r#"{"kill":"worker-2"}"#).unwrap_err(),
        Errno::ENOENT
    );
    assert_eq!(
        qctl(&f.hive, r#"{"kill":"worker-77"}"#).unwrap_err(),
        Errno::ENOENT
    );
    // The next id is 3, not 2.
    assert_eq!(spawn_heartbeat(&f.hive), "worker-3");
    let ids: Vec<_> = f.hive.workers().into_iter().map(|w| w.id).collect();
    assert_eq!(ids, ["worker-1", "worker-3"]);
}

#[test]
fn gpu_spawn_carries_its_lease() {
    let f = fixture();
    let w = spawn_gpu(&f.hive, "gpu1", 30);
    let spawn =
        f.fx.calls()
            .into_iter()
            .find_map(|c| match c {
                EffectCall::Spawn(s) => Some(s),
                _ => None,
            })
            .unwrap();
    assert_eq!(spawn.role, Role::WorkerGpu);
    assert_eq!(
        spawn.lease,
        Some(LeaseSpec {
            gpu_id: "gpu1".into(),
            mem_mb: 1024,
            streams: 2,
            priority: 1,
            ttl_s: 30
        })
    );
    let lease = f.hive.lease("gpu1").unwrap();
    assert_eq!(lease.worker, w);
    assert_eq!(lease.expires_at_ms, T0 + 30_000);
    // The GPU is taken now.
    let e = qctl(
        &f.hive,
        r#"{"spawn":"gpu","lease":{"gpu_id":"gpu1","mem_mb":1,"streams":1}}"#,
    )
    .unwrap_err();
    assert_eq!(e, Errno::EBUSY);
    for (bad, errno) in [
        (
            r#"{"spawn":"gpu","lease":{"gpu_id":"gpu9","mem_mb":1,"streams":1}}"#,
            Errno::ENOENT,
        ),
        (
            r#"{"spawn":"gpu","lease":{"gpu_id":"gpu0","mem_mb":999999,"streams":1}}"#,
            Errno::EINVAL,
        ),
        (
            r#"{"spawn":"gpu","lease":{"gpu_id":"gpu0","mem_mb":1,"streams":0}}"#,
            Errno::EINVAL,
        ),
        (
            r#"{"spawn":"gpu","lease":{"gpu_id":"gpu0","mem_mb":1,"streams":1,"ttl_s":0}}"#,
            Errno::EINVAL,
        ),
    ] {
        assert_eq!(qctl(&f.hive, bad).unwrap_err(), errno, "{bad}");
    }
    // Killing a GPU worker releases its lease and detaches the GPU.
    qctl(&f.hive, &format!(r#"{{"kill":"{w}"}}"#)).unwrap();
    assert!(f.hive.lease("gpu1").is_none());
    assert!(f.fx.calls().contains(&EffectCall::Detach {
        worker: w.clone(),
        gpu: "gpu1".into()
    }));
    let lease_file = read(&f.hive, &queen(), "/gpu/gpu1/lease").unwrap();
    let last: serde_json::Value = serde_json::from_str(lease_file.lines().last().unwrap()).unwrap();
    assert_eq!(last["state"], "RELEASED");
    assert_eq!(last["reason"], "worker killed");
    // And the GPU is free again.
    spawn_gpu(&f.hive, "gpu1", 30);
}

#[test]
fn failing_spawn_effect_leaves_no_worker_record() {
    let f = fixture();
    f.fx.fail_spawn(true);
    let e = qctl(
        &f.hive,
        r#"{"spawn":"gpu","lease":{"gpu_id":"gpu0","mem_mb":1,"streams":1}}"#,
    )
    .unwrap_err();
    assert_eq!(e, Errno::EIO);
    assert!(f.hive.workers().is_empty());
    assert_eq!(
        names(&f.hive, &queen(), "/worker").unwrap(),
        Vec::<String>::new()
    );
    assert!(f.hive.lease("gpu0").is_none());
    assert!(
        read(&f.hive, &queen(), "/gpu/gpu0/status")
            .unwrap()
            .contains("state idle")
    );
    assert!(
        read(&f.hive, &queen(), "/gpu/gpu0/lease")
            .unwrap()
            .is_empty()
    );
    assert!(logged(
        &f.hive,
        &["spawn worker-1 failed: injected failure"]
    ));
    assert!(logged(&f.hive, &["queen ctl line 1 rejected", "EIO"]));
    assert!(!logged(&f.hive, &["spawned worker-1"]));
    assert_eq!(
        f.hive.attach(&Identity::gpu("worker-1")).unwrap_err(),
        Errno::EKEYREVOKED
    );
    // The failed id is not reused.
    f.fx.fail_spawn(false);
    assert_eq!(spawn_heartbeat(&f.hive), "worker-2");
}

#[test]
fn failing_stop_keeps_a_revoked_record_and_kill_retries() {
    let f = fixture();
    let w = spawn_gpu(&f.hive, "gpu0", 60);
    f.fx.fail_stop(true);
    f.fx.fail_detach(true);
    assert_eq!(
        qctl(&f.hive, &format!(r#"{{"kill":"{w}"}}"#)).unwrap_err(),
        Errno::EIO
    );
    // Revoked regardless: fail closed.
    assert!(f.hive.is_revoked(&Identity::gpu(&w)));
    let rec = f.hive.workers().into_iter().find(|r| r.id == w).unwrap();
    assert_eq!(rec.state, WorkerState::StopFailed);
    assert!(logged(
        &f.hive,
        &[&format!("stop {w} failed: injected failure")]
    ));
    assert!(logged(&f.hive, &[&format!("detach gpu0 from {w} failed")]));
    // The GPU cannot be leased while its detach is unconfirmed.
    assert!(
        read(&f.hive, &queen(), "/gpu/gpu0/status")
            .unwrap()
            .contains("detach-pending")
    );
    assert_eq!(
        qctl(
            &f.hive,
            r#"{"spawn":"gpu","lease":{"gpu_id":"gpu0","mem_mb":1,"streams":1}}"#
        )
        .unwrap_err(),
        Errno::EBUSY
    );
    // Lifecycle sees the outstanding record.
    assert_eq!(
        ctl(&f.hive, "/queen/lifecycle/ctl", "quiesce").unwrap_err(),
        Errno::EBUSY
    );
    f.fx.fail_stop(false);
    f.fx.fail_detach(false);
    qctl(&f.hive, &format!(r#"{{"kill":"{w}"}}"#)).unwrap();
    assert!(logged(&f.hive, &[&format!("retrying stop of {w}")]));
    assert!(f.hive.workers().is_empty());
    assert!(
        read(&f.hive, &queen(), "/gpu/gpu0/status")
            .unwrap()
            .contains("state idle")
    );
    ctl(&f.hive, "/queen/lifecycle/ctl", "quiesce").unwrap();
}

#[test]
fn default_budget_applies_to_later_spawns() {
    let f = fixture();
    qctl(&f.hive, r#"{"budget":{"ops":50,"ttl_s":9}}"#).unwrap();
    assert_eq!(f.hive.default_budget().ops, Some(50));
    assert!(logged(
        &f.hive,
        &["default spawn budget set to {\"ttl_s\":9,\"ops\":50}"]
    ));
    qctl(&f.hive, r#"{"spawn":"heartbeat","budget":{"ops":7}}"#).unwrap();
    let spec =
        f.fx.calls()
            .into_iter()
            .find_map(|c| match c {
                EffectCall::Spawn(s) => Some(s),
                _ => None,
            })
            .unwrap();
    assert_eq!(
        spec.budget,
        SpawnBudget {
            ops: Some(7),
            ttl_s: Some(9),
            ticks: None
        }
    );
    let me = Identity::heartbeat(&spec.id);
    let b = f.hive.session_budget(&me, None);
    assert_eq!(b.ops_left(), Some(7));
    assert_eq!(b.ticks_left(), Some(1000));
    assert_eq!(b.expires_at_ms(), Some(T0 + 9_000));
}

#[test]
fn bind_aliases_a_node_without_widening_rights() {
    let f = fixture();
    let q = queen();
    let w = spawn_heartbeat(&f.hive);
    let other = spawn_heartbeat(&f.hive);
    qctl(
        &f.hive,
        &format!(r#"{{"bind":{{"from":"/worker/{other}/telemetry","to":"/proc/other-hb"}}}}"#),
    )
    .unwrap();
    assert!(logged(
        &f.hive,
        &[&format!("bind /worker/{other}/telemetry -> /proc/other-hb")]
    ));
    write(&f.hive, &q, &format!("/worker/{other}/telemetry"), "beat\n").unwrap();
    // The alias reads the same node …
    assert_eq!(read(&f.hive, &q, "/proc/other-hb").unwrap(), "beat\n");
    let a = f.hive.walk_path(&q, "/proc/other-hb").unwrap();
    let b = f
        .hive
        .walk_path(&q, &format!("/worker/{other}/telemetry"))
        .unwrap();
    assert_eq!(a, b);
    // … but a worker that may read /proc still cannot see it through it.
    let me = Identity::heartbeat(&w);
    assert!(
        !names(&f.hive, &me, "/proc")
            .unwrap()
            .contains(&"other-hb".to_owned())
    );
    assert_eq!(
        f.hive.walk_path(&me, "/proc/other-hb").unwrap_err(),
        Errno::ENOENT
    );
    // Errors.
    for (bad, errno) in [
        (r#"{"bind":{"from":"/nope","to":"/proc/x"}}"#, Errno::ENOENT),
        (r#"{"bind":{"from":"/proc","to":"/nope/x"}}"#, Errno::ENOENT),
        (
            r#"{"bind":{"from":"/proc","to":"/proc/boot"}}"#,
            Errno::EEXIST,
        ),
        (
            r#"{"bind":{"from":"/proc","to":"/proc/loop"}}"#,
            Errno::ELOOP,
        ),
        (r#"{"bind":{"from":"/","to":"/gpu/root"}}"#, Errno::ELOOP),
        (r#"{"bind":{"from":"/proc","to":"/"}}"#, Errno::EINVAL),
        (r#"{"bind":{"from":"proc","to":"/x"}}"#, Errno::EINVAL),
        (
            r#"{"bind":{"from":"/proc","to":"/proc/boot/x"}}"#,
            Errno::ENOTDIR,
        ),
    ] {
        assert_eq!(qctl(&f.hive, bad).unwrap_err(), errno, "{bad}");
    }
    // The alias vanishes with its target.
    qctl(&f.hive, &format!(r#"{{"kill":"{other}"}}"#)).unwrap();
    assert_eq!(
        f.hive.walk_path(&q, "/proc/other-hb").unwrap_err(),
        Errno::ENOENT
    );
}

#[test]
fn mount_attaches_a_built_in_service() {
    let f = fixture();
    let q = queen();
    qctl(
        &f.hive,
        r#"{"mount":{"service":"lifecycle","at":"/queen/lc"}}"#,
    )
    .unwrap();
    assert!(logged(
        &f.hive,
        &["mount lifecycle (/proc/lifecycle) at /queen/lc"]
    ));
    assert_eq!(read(&f.hive, &q, "/queen/lc/state").unwrap(), "ONLINE\n");
    assert_eq!(
        names(&f.hive, &q, "/queen/lc").unwrap(),
        ["state", "reason", "since"]
    );
    qctl(&f.hive, r#"{"mount":{"service":"models","at":"/m"}}"#).unwrap();
    assert!(read(&f.hive, &q, "/m/available/tiny/manifest.toml").is_ok());
    // Writes through a mount follow the node's own rules.
    write(&f.hive, &q, "/m/active", "tiny\n").unwrap();
    assert_eq!(f.hive.active_model().as_deref(), Some("tiny"));
    // A GPU worker may read models, including through the mount … but the
    // mount point itself lives at `/m`, whose canonical node is
    // /gpu/models: visible to it.
    let w = spawn_gpu(&f.hive, "gpu0", 60);
    let me = Identity::gpu(&w);
    assert!(names(&f.hive, &me, "/").unwrap().contains(&"m".to_owned()));
    assert_eq!(
        qctl(&f.hive, r#"{"mount":{"service":"nfs","at":"/n"}}"#).unwrap_err(),
        Errno::ENOENT
    );
    assert_eq!(
        qctl(&f.hive, r#"{"mount":{"service":"log","at":"/m"}}"#).unwrap_err(),
        Errno::EEXIST
    );
}
