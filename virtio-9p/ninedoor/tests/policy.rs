//! Per-role visibility and write rules, with an audit line for each denial;
//! revocation of killed workers' sessions.

mod common;

use common::*;
use ninedoor::Errno;
use ninedoor::hive::ReadResult;
use ninedoor::identity::Identity;

#[test]
fn queen_sees_everything_and_writes_only_writable_nodes() {
    let f = fixture();
    let q = queen();
    let w = spawn_heartbeat(&f.hive);
    assert_eq!(
        names(&f.hive, &q, "/").unwrap(),
        ["proc", "queen", "worker", "log", "gpu"]
    );
    assert_eq!(names(&f.hive, &q, "/worker").unwrap(), [w.as_str()]);
    assert_eq!(
        names(&f.hive, &q, "/gpu").unwrap(),
        ["gpu0", "gpu1", "models", "telemetry"]
    );
    assert!(
        read(&f.hive, &q, "/log/queen.log")
            .unwrap()
            .contains("spawned")
    );
    // Writable: telemetry, job, models/active, ctl files.
    write(
        &f.hive,
        &q,
        &format!("/worker/{w}/telemetry"),
        "from queen\n",
    )
    .unwrap();
    // Not writable: written by the server only; denial audited.
    for p in [
        "/log/queen.log",
        "/gpu/gpu0/lease",
        "/proc/boot",
        "/gpu/gpu0/info",
    ] {
        assert_eq!(
            write(&f.hive, &q, p, "x").unwrap_err(),
            Errno::EACCES,
            "{p}"
        );
        assert!(logged(&f.hive, &["denied queen write", p, "EACCES"]), "{p}");
    }
}

#[test]
fn heartbeat_worker_sees_proc_and_its_own_worker_dir_only() {
    let f = fixture();
    let w1 = spawn_heartbeat(&f.hive);
    let w2 = spawn_heartbeat(&f.hive);
    let me = Identity::heartbeat(&w1);
    assert_eq!(f.hive.attach(&me).unwrap(), f.hive.root());
    assert_eq!(names(&f.hive, &me, "/").unwrap(), ["proc", "worker"]);
    assert_eq!(names(&f.hive, &me, "/worker").unwrap(), [w1.as_str()]);
    assert_eq!(
        names(&f.hive, &me, &format!("/worker/{w1}")).unwrap(),
        ["telemetry"]
    );
    read(&f.hive, &me, "/proc/boot").unwrap();
    read(&f.hive, &me, "/proc/lifecycle/state").unwrap();
    write(&f.hive, &me, &format!("/worker/{w1}/telemetry"), "hb\n").unwrap();
    assert_eq!(
        read(&f.hive, &me, &format!("/worker/{w1}/telemetry")).unwrap(),
        "hb\n"
    );
    // Invisible: ENOENT, audited with who, what and why.
    for p in [
        "/queen".to_owned(),
        "/queen/ctl".to_owned(),
        "/log".to_owned(),
        "/log/queen.log".to_owned(),
        "/gpu".to_owned(),
        format!("/worker/{w2}"),
        format!("/worker/{w2}/telemetry"),
    ] {
        assert_eq!(f.hive.walk_path(&me, &p).unwrap_err(), Errno::ENOENT, "{p}");
    }
    assert!(logged(
        &f.hive,
        &[&format!(
            "denied worker-heartbeat:{w1} walk /queen: not visible to this role (ENOENT)"
        )]
    ));
    assert!(logged(
        &f.hive,
        &[&format!("denied worker-heartbeat:{w1} walk /worker/{w2}:")]
    ));
    // Visible but read-only: EACCES, audited.
    assert_eq!(
        write(&f.hive, &me, "/proc/boot", "x").unwrap_err(),
        Errno::EACCES
    );
    assert!(logged(
        &f.hive,
        &[&format!(
            "denied worker-heartbeat:{w1} write /proc/boot: not writable by this role (EACCES)"
        )]
    ));
    // Listing a directory with hidden entries is not a denial.
    let before = log_lines(&f.hive).len();
    names(&f.hive, &me, "/").unwrap();
    assert_eq!(log_lines(&f.hive).len(), before);
}

#[test]
fn gpu_worker_sees_only_the_gpu_it_leases_and_models() {
    let f = fixture();
    let w = spawn_gpu(&f.hive, "gpu0", 60);
    let me = Identity::gpu(&w);
    f.hive.attach(&me).unwrap();
    assert_eq!(names(&f.hive, &me, "/").unwrap(), ["proc", "worker", "gpu"]);
    assert_eq!(
        names(&f.hive, &me, "/gpu").unwrap(),
        ["gpu0", "models", "telemetry"]
    );
    assert_eq!(
        names(&f.hive, &me, "/gpu/gpu0").unwrap(),
        ["info", "lease", "status", "job"]
    );
    read(&f.hive, &me, "/gpu/gpu0/info").unwrap();
    read(&f.hive, &me, "/gpu/gpu0/status").unwrap();
    assert!(
        read(&f.hive, &me, "/gpu/gpu0/lease")
            .unwrap()
            .contains("ACTIVE")
    );
    read(
        &f.hive,
        &me,
        "/gpu/models/available/stories15m/manifest.toml",
    )
    .unwrap();
    read(&f.hive, &me, "/gpu/telemetry/schema.json").unwrap();
    let h = ninedoor::sha256::sha256_hex(b"p");
    write(
        &f.hive,
        &me,
        "/gpu/gpu0/job",
        &format!(r#"{{"payload":"p","sha256":"{h}"}}"#),
    )
    .unwrap();
    assert_eq!(
        f.hive.walk_path(&me, "/gpu/gpu1").unwrap_err(),
        Errno::ENOENT
    );
    assert_eq!(
        f.hive.walk_path(&me, "/gpu/gpu0/ctl").unwrap_err(),
        Errno::ENOENT
    );
    assert_eq!(
        write(&f.hive, &me, "/gpu/models/active", "tiny").unwrap_err(),
        Errno::EACCES
    );
    assert_eq!(
        write(&f.hive, &me, "/gpu/gpu0/status", "x").unwrap_err(),
        Errno::EACCES
    );
    assert!(logged(
        &f.hive,
        &[&format!("denied worker-gpu:{w} walk /gpu/gpu1")]
    ));
    assert!(logged(
        &f.hive,
        &[&format!("denied worker-gpu:{w} write /gpu/models/active")]
    ));

    // An open handle does not outlive the lease: after RELEASE the GPU is
    // invisible again, even through a handle opened before.
    let info = f.hive.walk_path(&me, "/gpu/gpu0/info").unwrap();
    let fh = f.hive.open(&me, info, false, false).unwrap();
    ctl(&f.hive, "/gpu/gpu0/ctl", &format!("RELEASE {w} done\n")).unwrap();
    assert_eq!(f.hive.read(&me, &fh, 0, 10).unwrap_err(), Errno::ENOENT);
    assert_eq!(
        names(&f.hive, &me, "/gpu").unwrap(),
        ["models", "telemetry"]
    );
}

#[test]
fn role_and_worker_mismatches_are_refused_at_attach() {
    let f = fixture();
    let hb = spawn_heartbeat(&f.hive);
    assert_eq!(
        f.hive.attach(&Identity::gpu(&hb)).unwrap_err(),
        Errno::EPERM
    );
    assert_eq!(
        f.hive
            .attach(&Identity::heartbeat("worker-999"))
            .unwrap_err(),
        Errno::ENOENT
    );
    assert!(logged(&f.hive, &["denied worker-gpu:", "attach", "EPERM"]));
    assert!(logged(
        &f.hive,
        &["denied worker-heartbeat:worker-999 attach: no such worker"]
    ));
    // A mismatched identity gets nothing from the namespace either.
    assert_eq!(
        f.hive.walk_path(&Identity::gpu(&hb), "/proc").unwrap_err(),
        Errno::EKEYREVOKED
    );
}

#[test]
fn killed_workers_sessions_fail_every_request() {
    let f = fixture();
    let w = spawn_heartbeat(&f.hive);
    let me = Identity::heartbeat(&w);
    f.hive.attach(&me).unwrap();
    let tel = f
        .hive
        .walk_path(&me, &format!("/worker/{w}/telemetry"))
        .unwrap();
    let fh = f.hive.open(&me, tel, true, false).unwrap();
    f.hive.write(&me, &fh, u64::MAX, b"1\n").unwrap();
    let epoch = f.hive.revocation_epoch();
    assert!(!f.hive.is_revoked(&me));
    assert!(f.hive.check_session(&me).is_ok());

    qctl(&f.hive, &format!(r#"{{"kill":"{w}"}}"#)).unwrap();
    assert!(logged(&f.hive, &[&format!("killed {w}")]));
    assert!(logged(&f.hive, &[&format!("revoked {w}: killed by queen")]));
    assert!(f.hive.revocation_epoch() > epoch);
    assert!(f.hive.is_revoked(&me));
    assert_eq!(f.hive.check_session(&me).unwrap_err(), Errno::EKEYREVOKED);
    assert_eq!(
        f.hive.walk(&me, f.hive.root(), "proc").unwrap_err(),
        Errno::EKEYREVOKED
    );
    assert_eq!(
        f.hive.write(&me, &fh, u64::MAX, b"2\n").unwrap_err(),
        Errno::EKEYREVOKED
    );
    assert_eq!(
        f.hive.list(&me, f.hive.root()).unwrap_err(),
        Errno::EKEYREVOKED
    );
    assert_eq!(f.hive.attach(&me).unwrap_err(), Errno::EKEYREVOKED);
    assert!(logged(
        &f.hive,
        &[&format!(
            "denied worker-heartbeat:{w} request: session revoked (killed by queen)"
        )]
    ));
    // The queen's handle on the removed telemetry is cleanly dead.
    let q = queen();
    assert_eq!(
        f.hive.walk_path(&q, &format!("/worker/{w}")).unwrap_err(),
        Errno::ENOENT
    );
    assert!(!f.hive.is_revoked(&q));
    let _ = ReadResult::WouldBlock;
}
