//! Guests on their virtio-9p bridge: identity fixed by the supervisor,
//! hive.toml workers registered at start, and VM processes that end.

mod common;

use std::io::Read;
use std::os::unix::net::UnixStream;

use common::{fixture, logged, read};
use ninedoor::Errno;
use ninedoor::budget::{SpawnBudget, UNLIMITED};
use ninedoor::identity::{Identity, Role};
use ninedoor::server::SessionFactory;
use ninedoor::session::Session;
use ninedoor::transport::ReplySink;
use secure9p::limits::NOFID;
use secure9p::wire::{self, O_APPEND, O_WRONLY, Request, Response};

struct Guest {
    session: Session,
    sink: ReplySink,
    replies: UnixStream,
    tag: u16,
}

impl Guest {
    fn new(factory: &SessionFactory, name: &str, identity: Identity) -> Guest {
        let (ours, theirs) = UnixStream::pair().unwrap();
        Guest {
            session: factory.guest_session(name, identity),
            sink: ReplySink::new(Box::new(theirs)),
            replies: ours,
            tag: 0,
        }
    }

    fn rpc(&mut self, req: Request) -> Response {
        self.tag += 1;
        let mut frame = Vec::new();
        wire::encode_request(self.tag, &req, &mut frame).unwrap();
        self.session.handle_frame(&frame, &self.sink);
        let mut size = [0u8; 4];
        self.replies.read_exact(&mut size).unwrap();
        let mut reply = size.to_vec();
        reply.resize(u32::from_le_bytes(size) as usize, 0);
        self.replies.read_exact(&mut reply[4..]).unwrap();
        let (tag, resp) = wire::decode_response(&reply, 65536).unwrap();
        assert_eq!(tag, self.tag);
        resp
    }

    fn attach(&mut self, uname: &str) -> Response {
        let v = self.rpc(Request::Version {
            msize: 8192,
            version: "9P2000.L".into(),
        });
        assert!(matches!(v, Response::Version { .. }), "{v:?}");
        self.rpc(Request::Attach {
            fid: 0,
            afid: NOFID,
            uname: uname.into(),
            aname: String::new(),
            n_uname: 0,
        })
    }
}

#[test]
fn a_worker_guest_attaching_as_queen_is_refused_and_audited() {
    let fx = fixture();
    fx.hive
        .register_worker("worker-7", Role::WorkerHeartbeat, SpawnBudget::default())
        .unwrap();
    let factory = SessionFactory::new(fx.hive.clone());
    let mut g = Guest::new(&factory, "worker-7", Identity::heartbeat("worker-7"));
    assert_eq!(
        g.attach("queen"),
        Response::Lerror {
            ecode: Errno::EPERM.raw()
        }
    );
    assert!(logged(
        &fx.hive,
        &["denied attach", "guest(worker-7)", "\"queen\""]
    ));
}

#[test]
fn an_anonymous_or_matching_attach_gets_the_bound_identity() {
    let fx = fixture();
    fx.hive
        .register_worker("worker-3", Role::WorkerHeartbeat, SpawnBudget::default())
        .unwrap();
    let factory = SessionFactory::new(fx.hive.clone());
    for uname in ["nobody", "", "worker-heartbeat:worker-3"] {
        let mut g = Guest::new(&factory, "worker-3", Identity::heartbeat("worker-3"));
        assert!(
            matches!(g.attach(uname), Response::Attach { .. }),
            "{uname:?}"
        );
        // It acts as worker-3: it may append to its own telemetry.
        let walk = g.rpc(Request::Walk {
            fid: 0,
            newfid: 1,
            names: vec!["worker".into(), "worker-3".into(), "telemetry".into()],
        });
        assert!(matches!(walk, Response::Walk { .. }), "{walk:?}");
        let open = g.rpc(Request::Lopen {
            fid: 1,
            flags: O_WRONLY | O_APPEND,
        });
        assert!(matches!(open, Response::Lopen { .. }), "{open:?}");
        let line = format!("{{\"tick\":1,\"ts_ms\":5,\"via\":{uname:?}}}\n");
        let w = g.rpc(Request::Write {
            fid: 1,
            offset: 0,
            data: line.clone().into_bytes(),
        });
        assert_eq!(
            w,
            Response::Write {
                count: line.len() as u32
            }
        );
    }
    let telemetry = read(&fx.hive, &common::queen(), "/worker/worker-3/telemetry").unwrap();
    // The fixture's ring keeps 64 bytes: the newest line is there.
    assert!(
        telemetry.contains(r#""via":"worker-heartbeat:worker-3""#),
        "{telemetry}"
    );
}

#[test]
fn a_guest_bound_as_another_worker_cannot_claim_it() {
    let fx = fixture();
    fx.hive
        .register_worker("worker-1", Role::WorkerHeartbeat, SpawnBudget::default())
        .unwrap();
    fx.hive
        .register_worker("worker-2", Role::WorkerHeartbeat, SpawnBudget::default())
        .unwrap();
    let factory = SessionFactory::new(fx.hive.clone());
    let mut g = Guest::new(&factory, "worker-2", Identity::heartbeat("worker-2"));
    assert_eq!(
        g.attach("worker-heartbeat:worker-1"),
        Response::Lerror {
            ecode: Errno::EPERM.raw()
        }
    );
}

#[test]
fn registered_workers_exist_at_once_and_later_spawns_never_reuse_their_numbers() {
    let fx = fixture();
    fx.hive
        .register_worker("worker-4", Role::WorkerHeartbeat, SpawnBudget::default())
        .unwrap();
    assert!(read(&fx.hive, &common::queen(), "/worker/worker-4/telemetry").is_ok());
    assert_eq!(
        fx.hive
            .register_worker("worker-4", Role::WorkerHeartbeat, SpawnBudget::default()),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        fx.hive
            .register_worker("edge-cam", Role::WorkerHeartbeat, SpawnBudget::default()),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        fx.hive
            .register_worker("worker-9", Role::Queen, SpawnBudget::default()),
        Err(Errno::EINVAL)
    );
    let spawned = common::spawn_heartbeat(&fx.hive);
    assert_eq!(spawned, "worker-5");
    assert!(logged(&fx.hive, &["registered worker-4", "hive.toml"]));
}

#[test]
fn a_worker_whose_vm_process_ends_is_revoked_and_removed_and_the_hive_keeps_going() {
    let fx = fixture();
    fx.hive
        .register_worker("worker-1", Role::WorkerHeartbeat, SpawnBudget::default())
        .unwrap();
    let factory = SessionFactory::new(fx.hive.clone());
    let mut g = Guest::new(&factory, "worker-1", Identity::heartbeat("worker-1"));
    assert!(matches!(g.attach("nobody"), Response::Attach { .. }));
    fx.hive.guest_started("worker-1", 4242);
    fx.hive.guest_exited("worker-1", "killed by signal 9");
    assert!(fx.hive.workers().is_empty());
    assert!(logged(&fx.hive, &["worker-1 exited: killed by signal 9"]));
    let boot = read(&fx.hive, &common::queen(), "/proc/boot").unwrap();
    assert!(
        boot.contains("guest worker-1 VM process started (pid 4242)"),
        "{boot}"
    );
    assert!(
        boot.contains("guest worker-1 VM process ended: killed by signal 9"),
        "{boot}"
    );
    // Its session is revoked.
    let r = g.rpc(Request::Walk {
        fid: 0,
        newfid: 1,
        names: vec!["proc".into()],
    });
    assert!(matches!(r, Response::Lerror { .. }), "{r:?}");
    // The hive still serves everyone else.
    assert_eq!(common::spawn_heartbeat(&fx.hive), "worker-2");
}

/// Attaches `g`, opens its telemetry for appending as fid 1 and appends
/// `n` heartbeats; returns the reply to each append.
fn heartbeats(g: &mut Guest, worker: &str, n: u64) -> Vec<Response> {
    assert!(matches!(g.attach(""), Response::Attach { .. }));
    let walk = g.rpc(Request::Walk {
        fid: 0,
        newfid: 1,
        names: vec!["worker".into(), worker.into(), "telemetry".into()],
    });
    assert!(matches!(walk, Response::Walk { .. }), "{walk:?}");
    let open = g.rpc(Request::Lopen {
        fid: 1,
        flags: O_WRONLY | O_APPEND,
    });
    assert!(matches!(open, Response::Lopen { .. }), "{open:?}");
    (1..=n)
        .map(|tick| {
            g.rpc(Request::Write {
                fid: 1,
                offset: u64::MAX,
                data: format!("{{\"tick\":{tick}}}\n").into_bytes(),
            })
        })
        .collect()
}

const ELIMIT: Response = Response::Lerror {
    ecode: Errno::ELIMIT.raw(),
};

#[test]
fn a_registered_worker_with_a_two_tick_budget_is_refused_its_third_heartbeat() {
    let fx = fixture();
    let budget = SpawnBudget {
        ticks: Some(2),
        ..SpawnBudget::default()
    };
    fx.hive
        .register_worker("worker-1", Role::WorkerHeartbeat, budget)
        .unwrap();
    assert!(logged(
        &fx.hive,
        &["registered worker-1", "hive.toml", r#"budget {"ticks":2}"#]
    ));
    let factory = SessionFactory::new(fx.hive.clone());
    let mut g = Guest::new(&factory, "worker-1", Identity::heartbeat("worker-1"));
    let replies = heartbeats(&mut g, "worker-1", 3);
    assert!(matches!(replies[0], Response::Write { .. }), "{replies:?}");
    assert!(matches!(replies[1], Response::Write { .. }), "{replies:?}");
    assert_eq!(replies[2], ELIMIT);
    assert_eq!(Errno::ELIMIT.raw(), 122);
    assert!(logged(
        &fx.hive,
        &[
            "denied worker-heartbeat:worker-1 Write /worker/worker-1/telemetry",
            "tick budget exhausted",
            "(ELIMIT)"
        ]
    ));
    let telemetry = read(&fx.hive, &common::queen(), "/worker/worker-1/telemetry").unwrap();
    assert!(!telemetry.contains("\"tick\":3"), "{telemetry}");
}

/// Beyond every heartbeat default: 1000 ticks, 10000 ops, 300 s.
const PAST_THE_DEFAULTS: u64 = 10_050;

#[test]
fn an_unlimited_registered_worker_outlives_the_default_ticks_ops_and_ttl() {
    let fx = fixture();
    let unlimited = SpawnBudget {
        ticks: Some(UNLIMITED),
        ops: Some(UNLIMITED),
        ttl_s: Some(UNLIMITED),
    };
    fx.hive
        .register_worker("worker-1", Role::WorkerHeartbeat, unlimited)
        .unwrap();
    fx.hive
        .register_worker("worker-2", Role::WorkerHeartbeat, SpawnBudget::default())
        .unwrap();
    // "unlimited" is no limit at all, as the queen has, not a large number.
    let b = fx
        .hive
        .session_budget(&Identity::heartbeat("worker-1"), None);
    assert_eq!(
        (b.ticks_left(), b.ops_left(), b.expires_at_ms()),
        (None, None, None)
    );
    let factory = SessionFactory::new(fx.hive.clone());

    // The default stops worker-2 at its 1001st heartbeat.
    let mut limited = Guest::new(&factory, "worker-2", Identity::heartbeat("worker-2"));
    let replies = heartbeats(&mut limited, "worker-2", 1001);
    assert!(
        replies[..1000]
            .iter()
            .all(|r| matches!(r, Response::Write { .. }))
    );
    assert_eq!(replies[1000], ELIMIT);

    // worker-1 is not stopped by ticks or ops ...
    let mut free = Guest::new(&factory, "worker-1", Identity::heartbeat("worker-1"));
    let replies = heartbeats(&mut free, "worker-1", PAST_THE_DEFAULTS);
    let refused: Vec<_> = replies
        .iter()
        .enumerate()
        .filter(|(_, r)| !matches!(r, Response::Write { .. }))
        .collect();
    assert!(refused.is_empty(), "{:?}", &refused[..refused.len().min(3)]);

    // ... nor by time: past 300 s worker-2's session has expired, worker-1's
    // has not.
    fx.clock.advance(301_000);
    let stat = |g: &mut Guest| {
        g.rpc(Request::Getattr {
            fid: 1,
            mask: wire::GETATTR_BASIC,
        })
    };
    assert!(matches!(stat(&mut free), Response::Getattr(_)));
    assert_eq!(
        stat(&mut limited),
        Response::Lerror {
            ecode: Errno::EKEYEXPIRED.raw()
        }
    );
    let late = free.rpc(Request::Write {
        fid: 1,
        offset: u64::MAX,
        data: b"{\"tick\":\"late\"}\n".to_vec(),
    });
    assert!(matches!(late, Response::Write { .. }), "{late:?}");
}

#[test]
fn only_a_worker_being_spawned_takes_a_template_budget() {
    let fx = fixture();
    fx.hive
        .register_worker("worker-1", Role::WorkerHeartbeat, SpawnBudget::default())
        .unwrap();
    let fill = SpawnBudget {
        ticks: Some(1),
        ..SpawnBudget::default()
    };
    // A running worker's budget is not changed afterwards, nor an unknown one.
    assert_eq!(
        fx.hive.fill_spawn_budget("worker-1", fill),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        fx.hive.fill_spawn_budget("worker-8", fill),
        Err(Errno::ENOENT)
    );
    let b = fx
        .hive
        .session_budget(&Identity::heartbeat("worker-1"), None);
    assert_eq!(b.ticks_left(), Some(1000));
}
