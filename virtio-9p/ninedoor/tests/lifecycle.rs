//! `/queen/lifecycle/ctl`: every allowed and refused transition, the
//! outstanding-work refusals, `/proc/lifecycle/*`, and the gates.

mod common;

use common::*;
use ninedoor::Errno;
use ninedoor::identity::Identity;
use ninedoor::lifecycle::LifecycleState as S;

const STATES: [S; 6] = [
    S::Booting,
    S::Online,
    S::Degraded,
    S::Draining,
    S::Quiesced,
    S::Offline,
];
const CMDS: [&str; 5] = ["cordon", "drain", "quiesce", "resume", "reset"];

/// Drives an idle, online hive to `s`.
fn drive(f: &Fx, s: S) {
    match s {
        S::Booting => {
            lc(f, "reset").unwrap();
        }
        S::Online => {}
        S::Degraded => f.hive.set_degraded("gpu0 fan failure").unwrap(),
        S::Draining => {
            lc(f, "cordon").unwrap();
        }
        S::Quiesced => {
            lc(f, "quiesce").unwrap();
        }
        S::Offline => f.hive.set_offline("shutdown"),
    }
    assert_eq!(f.hive.lifecycle().state, s);
}

fn lc(f: &Fx, cmd: &str) -> Result<u32, Errno> {
    ctl(&f.hive, "/queen/lifecycle/ctl", &format!("{cmd}\n"))
}

fn expected(cmd: &str, from: S) -> Option<S> {
    match (cmd, from) {
        ("cordon", S::Online | S::Degraded) => Some(S::Draining),
        ("drain", S::Draining) => Some(S::Quiesced),
        ("quiesce", S::Online | S::Degraded | S::Draining) => Some(S::Quiesced),
        ("resume", S::Booting | S::Degraded | S::Draining | S::Quiesced) => Some(S::Online),
        ("reset", S::Online | S::Degraded | S::Draining | S::Quiesced) => Some(S::Booting),
        _ => None,
    }
}

#[test]
fn every_transition_through_the_ctl_file() {
    for from in STATES {
        for cmd in CMDS {
            let f = fixture();
            drive(&f, from);
            f.clock.advance(5);
            let r = lc(&f, cmd);
            let state = f.hive.lifecycle().state;
            match expected(cmd, from) {
                Some(to) => {
                    assert!(r.is_ok(), "{cmd} from {from}: {r:?}");
                    assert_eq!(state, to, "{cmd} from {from}");
                    assert_eq!(
                        read(&f.hive, &queen(), "/proc/lifecycle/state").unwrap(),
                        format!("{to}\n")
                    );
                    assert_eq!(
                        read(&f.hive, &queen(), "/proc/lifecycle/reason").unwrap(),
                        format!("{cmd} by queen\n")
                    );
                    assert_eq!(
                        read(&f.hive, &queen(), "/proc/lifecycle/since").unwrap(),
                        format!("{}\n", ninedoor::clock::Clock::now_ms(&*f.clock))
                    );
                    assert!(logged(
                        &f.hive,
                        &[&format!("lifecycle {from} -> {to}: {cmd} by queen")]
                    ));
                }
                None => {
                    assert_eq!(r.unwrap_err(), Errno::EINVAL, "{cmd} from {from}");
                    assert_eq!(state, from);
                    assert!(logged(
                        &f.hive,
                        &[
                            "lifecycle ctl line 1 rejected",
                            &format!("cannot {cmd} from {from}")
                        ]
                    ));
                }
            }
        }
    }
}

#[test]
fn drain_quiesce_reset_refuse_while_work_is_outstanding() {
    for from in [S::Online, S::Degraded, S::Draining] {
        for cmd in ["drain", "quiesce", "reset"] {
            let f = fixture();
            let w = spawn_heartbeat(&f.hive);
            drive(&f, from);
            let r = lc(&f, cmd);
            if expected(cmd, from).is_some() {
                assert_eq!(r.unwrap_err(), Errno::EBUSY, "{cmd} from {from}");
                assert!(logged(&f.hive, &["workers or leases are outstanding"]));
            } else {
                assert_eq!(r.unwrap_err(), Errno::EINVAL, "{cmd} from {from}");
            }
            assert_eq!(f.hive.lifecycle().state, from);
            // Once the worker is gone the command goes through.
            qctl(&f.hive, &format!(r#"{{"kill":"{w}"}}"#)).unwrap();
            assert_eq!(lc(&f, cmd).is_ok(), expected(cmd, from).is_some());
        }
    }
    // A lease alone (worker record gone is impossible, so use a live GPU
    // worker) also counts.
    let f = fixture();
    spawn_gpu(&f.hive, "gpu0", 60);
    assert_eq!(lc(&f, "quiesce").unwrap_err(), Errno::EBUSY);
    // cordon/resume do not need idleness.
    lc(&f, "cordon").unwrap();
    lc(&f, "resume").unwrap();
}

#[test]
fn gates() {
    let f = fixture();
    let w = spawn_heartbeat(&f.hive);
    let g = spawn_gpu(&f.hive, "gpu0", 600);
    ctl(&f.hive, "/gpu/gpu0/ctl", &format!("RELEASE {g}")).unwrap();
    lc(&f, "cordon").unwrap();
    // DRAINING: no new work …
    assert_eq!(
        qctl(&f.hive, r#"{"spawn":"heartbeat"}"#).unwrap_err(),
        Errno::EAGAIN
    );
    assert_eq!(
        ctl(
            &f.hive,
            "/gpu/gpu0/ctl",
            &format!("LEASE {g} mem=1 streams=1 priority=0")
        )
        .unwrap_err(),
        Errno::EAGAIN
    );
    assert!(logged(&f.hive, &["hive is DRAINING: no new work"]));
    // … but existing workers attach and report.
    let me = Identity::heartbeat(&w);
    f.hive.attach(&me).unwrap();
    write(
        &f.hive,
        &me,
        &format!("/worker/{w}/telemetry"),
        "still here\n",
    )
    .unwrap();
    // Kill is allowed while draining (that is how draining finishes).
    qctl(&f.hive, &format!(r#"{{"kill":"{w}"}}"#)).unwrap();
    qctl(&f.hive, &format!(r#"{{"kill":"{g}"}}"#)).unwrap();
    lc(&f, "drain").unwrap();
    // QUIESCED: nothing new.
    assert_eq!(
        qctl(&f.hive, r#"{"spawn":"heartbeat"}"#).unwrap_err(),
        Errno::EAGAIN
    );
    lc(&f, "reset").unwrap();
    // BOOTING: nothing new either, until resumed (or set_online).
    assert_eq!(
        qctl(&f.hive, r#"{"spawn":"heartbeat"}"#).unwrap_err(),
        Errno::EAGAIN
    );
    f.hive.set_online().unwrap();
    assert_eq!(f.hive.set_online().unwrap_err(), Errno::EINVAL);
    let w2 = spawn_heartbeat(&f.hive);
    // DEGRADED still accepts new work.
    f.hive.set_degraded("slow disk").unwrap();
    assert_eq!(
        read(&f.hive, &queen(), "/proc/lifecycle/reason").unwrap(),
        "slow disk\n"
    );
    spawn_heartbeat(&f.hive);
    // OFFLINE: workers can neither attach nor report.
    f.hive.set_offline("shutdown");
    assert_eq!(
        f.hive.attach(&Identity::heartbeat(&w2)).unwrap_err(),
        Errno::EAGAIN
    );
    assert_eq!(
        write(
            &f.hive,
            &Identity::heartbeat(&w2),
            &format!("/worker/{w2}/telemetry"),
            "x"
        )
        .unwrap_err(),
        Errno::EAGAIN
    );
    for cmd in CMDS {
        assert_eq!(lc(&f, cmd).unwrap_err(), Errno::EINVAL);
    }
    assert_eq!(f.hive.set_degraded("x").unwrap_err(), Errno::EINVAL);
    assert!(logged(
        &f.hive,
        &[&format!(
            "denied worker-heartbeat:{w2} write /worker/{w2}/telemetry: hive is OFFLINE (EAGAIN)"
        )]
    ));
    // The queen can always attach.
    f.hive.attach(&queen()).unwrap();
}

#[test]
fn a_fresh_hive_boots() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(ninedoor::clock::ManualClock::new(T0));
    let fx = std::sync::Arc::new(ninedoor::effects::RecordingEffects::new());
    let h = ninedoor::Hive::new(spec(), dir.path(), clock, fx).unwrap();
    assert_eq!(h.lifecycle().state, S::Booting);
    assert_eq!(
        qctl(&h, r#"{"spawn":"heartbeat"}"#).unwrap_err(),
        Errno::EAGAIN
    );
    h.set_online().unwrap();
    assert!(logged(&h, &["lifecycle BOOTING -> ONLINE"]));
}
