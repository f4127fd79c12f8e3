//! Secure9P policy over the wire: tickets (tampered, wrong role, expired,
//! wrong subject), scopes, quotas, revocation, visibility, GPU leases and
//! their TTL, the lifecycle gates, and many concurrent sessions — each over
//! the Unix socket and over loopback TCP.

#[macro_use]
mod support;

use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use secure9p::client::Fid;
use secure9p::wire::{O_RDONLY, O_WRONLY};
use secure9p::{Role, Scope, Ticket, Verb};
use support::*;

both_transports!(
    tampered_ticket_is_rejected,
    ticket_for_another_role_is_rejected,
    expired_ticket_is_rejected,
    ticket_expiring_mid_session_fails_later_requests,
    ticket_subject_must_match_the_uname_worker,
    attach_as_an_unknown_worker_is_refused,
    scope_violation_is_eperm_and_audited,
    scopes_judge_canonical_paths_not_bind_aliases,
    ops_quota_exhaustion_is_elimit,
    scope_rate_limit_is_elimit_and_refills_with_the_clock,
    every_metadata_request_counts_against_the_ops_budget,
    killed_worker_session_gets_ekeyrevoked,
    worker_cannot_see_queen_and_the_denial_is_audited,
    lease_over_the_wire_and_ttl_expiry_revokes,
    lifecycle_cordon_drain_resume_and_spawn_gate,
    thirty_two_concurrent_sessions,
    garbage_connection_while_thirty_one_sessions_work,
);

fn queen_log(h: &Harness, kind: Kind) -> String {
    let (mut q, root) = h.queen(kind);
    read_text(&mut q, root, "/log/queen.log").unwrap()
}

fn hb_uname(w: &str) -> String {
    format!("worker-heartbeat:{w}")
}

/// A heartbeat ticket for `w` with `edit` applied.
fn hb_ticket_with(h: &Harness, w: &str, edit: impl FnOnce(&mut Ticket)) -> String {
    let mut t = Ticket::new(Role::WorkerHeartbeat, h.clock_now());
    t.subject = Some(w.into());
    edit(&mut t);
    t.mint(HB_SECRET.as_bytes()).unwrap()
}

fn kill(h: &Harness, kind: Kind, w: &str) {
    let (mut q, root) = h.queen(kind);
    write_file(
        &mut q,
        root,
        "/queen/ctl",
        0,
        format!("{{\"kill\":\"{w}\"}}\n").as_bytes(),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------
// Tickets
// ---------------------------------------------------------------------------

/// Flips one hex digit at `i` (staying lowercase hex).
fn flip(text: &str, i: usize) -> String {
    let mut b = text.as_bytes().to_vec();
    b[i] = if b[i] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).unwrap()
}

fn tampered_ticket_is_rejected(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let good = h.hb_ticket(&w);
    let dot = good.find('.').unwrap();
    let prefix = "cohesix-ticket-".len();
    for bad in [
        flip(&good, prefix + 5),     // payload
        flip(&good, dot + 3),        // MAC
        flip(&good, good.len() - 1), // MAC, last digit
        good[..good.len() - 2].to_string(),
        format!("{good}00"),
        good.replace("cohesix-ticket-", "cohesix-tickex-"),
        "junk".to_string(),
    ] {
        let mut c = h.client(kind);
        assert_eq!(
            errno(c.attach(&hb_uname(&w), &bad)),
            e::EKEYREJECTED,
            "{bad}"
        );
    }
    // Minted with the wrong secret.
    let mut t = Ticket::new(Role::WorkerHeartbeat, h.clock_now());
    t.subject = Some(w.clone());
    let forged = t.mint(b"guessed-secret").unwrap();
    let mut c = h.client(kind);
    assert_eq!(errno(c.attach(&hb_uname(&w), &forged)), e::EKEYREJECTED);
    // A tampered queen ticket (matters over TCP, where the queen needs one).
    let qt = h.queen_ticket();
    let mut c = h.client(kind);
    assert_eq!(
        errno(c.attach("queen", &flip(&qt, qt.len() - 1))),
        e::EKEYREJECTED
    );
    // The good one still works, and refusals were audited.
    let mut c = h.client(kind);
    c.attach(&hb_uname(&w), &good).unwrap();
    let log = queen_log(&h, kind);
    assert!(
        log.contains(&format!(
            "denied attach as {}: ticket rejected",
            hb_uname(&w)
        )),
        "{log}"
    );
}

fn ticket_for_another_role_is_rejected(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let hb = h.spawn_heartbeat_via(&mut q, root);
    let gpu = h
        .spawn_via(
            &mut q,
            root,
            "{\"spawn\":\"gpu\",\"lease\":{\"gpu_id\":\"gpu1\",\"mem_mb\":512,\"streams\":1,\"ttl_s\":600}}\n",
        )
        .remove(0);
    // A heartbeat ticket presented for a GPU worker (and the reverse).
    let mut c = h.client(kind);
    assert_eq!(
        errno(c.attach(&format!("worker-gpu:{gpu}"), &h.hb_ticket(&gpu))),
        e::EKEYREJECTED
    );
    let mut c = h.client(kind);
    assert_eq!(
        errno(c.attach(&hb_uname(&hb), &h.gpu_ticket(&hb))),
        e::EKEYREJECTED
    );
    // A ticket claiming another role, MACed with this role's secret.
    let queen_role = Ticket::new(Role::Queen, h.clock_now())
        .mint(HB_SECRET.as_bytes())
        .unwrap();
    let mut c = h.client(kind);
    assert_eq!(
        errno(c.attach(&hb_uname(&hb), &queen_role)),
        e::EKEYREJECTED
    );
    // A worker ticket presented as the queen.
    let mut c = h.client(kind);
    assert_eq!(errno(c.attach("queen", &h.hb_ticket(&hb))), e::EKEYREJECTED);
    // A GPU worker's uname for a heartbeat worker, with a proper GPU ticket.
    let mut c = h.client(kind);
    assert_eq!(
        errno(c.attach(&format!("worker-gpu:{hb}"), &h.gpu_ticket(&hb))),
        e::EPERM
    );
    // The right pairs work.
    h.heartbeat(kind, &hb);
    h.gpu_worker(kind, &gpu);
}

fn expired_ticket_is_rejected(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let default_ttl = h.hb_ticket(&w); // 300 s
    let short = hb_ticket_with(&h, &w, |t| t.ttl_s = Some(10));
    h.clock.advance(10_000);
    let mut c = h.client(kind);
    assert_eq!(errno(c.attach(&hb_uname(&w), &short)), e::EKEYEXPIRED);
    let mut c = h.client(kind);
    c.attach(&hb_uname(&w), &default_ttl).unwrap();
    h.clock.advance(290_000);
    let mut c = h.client(kind);
    assert_eq!(errno(c.attach(&hb_uname(&w), &default_ttl)), e::EKEYEXPIRED);
    // A fresh ticket is fine.
    h.heartbeat(kind, &w);
    let log = queen_log(&h, kind);
    assert!(log.contains("ticket rejected"), "{log}");
}

fn ticket_expiring_mid_session_fails_later_requests(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let ticket = hb_ticket_with(&h, &w, |t| t.ttl_s = Some(60));
    let mut c = h.client(kind);
    let wroot = c.attach(&hb_uname(&w), &ticket).unwrap();
    let tel = c
        .walk_path(wroot, &format!("/worker/{w}/telemetry"))
        .unwrap();
    c.lopen(tel, O_WRONLY).unwrap();
    c.write(tel, u64::MAX, b"beat\n").unwrap();
    h.clock.advance(60_000);
    assert_eq!(errno(c.write(tel, u64::MAX, b"late\n")), e::EKEYEXPIRED);
    assert_eq!(errno(c.walk_path(wroot, "/proc/boot")), e::EKEYEXPIRED);
}

fn ticket_subject_must_match_the_uname_worker(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let a = h.spawn_heartbeat_via(&mut q, root);
    let b = h.spawn_heartbeat_via(&mut q, root);
    let mut c = h.client(kind);
    assert_eq!(errno(c.attach(&hb_uname(&b), &h.hb_ticket(&a))), e::EPERM);
    // Nothing about b was granted: a's ticket still works for a only.
    let mut c = h.client(kind);
    let aroot = c.attach(&hb_uname(&a), &h.hb_ticket(&a)).unwrap();
    assert_eq!(
        errno(c.walk_path(aroot, &format!("/worker/{b}/telemetry"))),
        e::ENOENT
    );
    // One session cannot switch identities with a second attach.
    assert_eq!(errno(c.attach(&hb_uname(&b), &h.hb_ticket(&b))), e::EPERM);
}

fn attach_as_an_unknown_worker_is_refused(kind: Kind) {
    let h = Harness::start();
    let mut c = h.client(kind);
    assert_eq!(
        errno(c.attach(&hb_uname("worker-77"), &h.hb_ticket("worker-77"))),
        e::ENOENT
    );
    for bad in [
        "nobody",
        "worker-heartbeat",
        "worker-bus:worker-1",
        "queen:worker-1",
    ] {
        let mut c = h.client(kind);
        assert_eq!(errno(c.attach(bad, &h.queen_ticket())), e::EPERM, "{bad}");
    }
}

// ---------------------------------------------------------------------------
// Scopes, quotas, revocation, visibility
// ---------------------------------------------------------------------------

fn scope_violation_is_eperm_and_audited(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let tel = format!("/worker/{w}/telemetry");
    let scoped = hb_ticket_with(&h, &w, |t| {
        t.scopes = vec![Scope {
            path: tel.clone(),
            verb: Verb::ReadWrite,
            rate_per_s: 0,
        }];
    });
    let mut c = h.client(kind);
    let wroot = c.attach(&hb_uname(&w), &scoped).unwrap();
    // Inside the scope.
    assert_eq!(
        write_file(&mut c, wroot, &tel, u64::MAX, b"ok\n").unwrap(),
        3
    );
    assert_eq!(read_file(&mut c, wroot, &tel).unwrap(), b"ok\n");
    // Outside: /proc/boot is readable by the role, but not by this ticket.
    assert_eq!(errno(c.walk_path(wroot, "/proc/boot")), e::EPERM);
    // A read-only scope refuses writes.
    let ro = hb_ticket_with(&h, &w, |t| {
        t.scopes = vec![Scope {
            path: format!("/worker/{w}"),
            verb: Verb::Read,
            rate_per_s: 0,
        }];
    });
    let mut c = h.client(kind);
    let wroot = c.attach(&hb_uname(&w), &ro).unwrap();
    assert_eq!(read_file(&mut c, wroot, &tel).unwrap(), b"ok\n");
    let f = c.walk_path(wroot, &tel).unwrap();
    assert_eq!(errno(c.lopen(f, O_WRONLY)), e::EPERM);
    let log = queen_log(&h, kind);
    assert!(log.contains("outside the ticket's scopes"), "{log}");
    assert!(log.contains("ticket scope does not allow writing"), "{log}");
}

fn scopes_judge_canonical_paths_not_bind_aliases(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    // An alias inside the worker's directory for a file outside it.
    write_file(
        &mut q,
        root,
        "/queen/ctl",
        0,
        format!("{{\"bind\":{{\"from\":\"/proc/boot\",\"to\":\"/worker/{w}/boot\"}}}}\n")
            .as_bytes(),
    )
    .unwrap();
    let scoped = hb_ticket_with(&h, &w, |t| {
        t.scopes = vec![Scope {
            path: format!("/worker/{w}"),
            verb: Verb::ReadWrite,
            rate_per_s: 0,
        }];
    });
    let mut c = h.client(kind);
    let wroot = c.attach(&hb_uname(&w), &scoped).unwrap();
    // The canonical path is refused by the scope ...
    assert_eq!(errno(c.walk_path(wroot, "/proc/boot")), e::EPERM);
    // ... so the alias must be too: policy (and budgets) judge a node by its
    // canonical path, never by the name it was reached through.
    let via_alias = read_file(&mut c, wroot, &format!("/worker/{w}/boot"));
    assert_eq!(
        errno(via_alias.map(|b| String::from_utf8_lossy(&b).into_owned())),
        e::EPERM,
        "a bind alias widened a ticket's scope"
    );
}

fn ops_quota_exhaustion_is_elimit(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let ticket = hb_ticket_with(&h, &w, |t| t.ops = Some(4));
    let mut c = h.client(kind);
    let wroot = c.attach(&hb_uname(&w), &ticket).unwrap();
    let f = c.walk_path(wroot, "/proc/boot").unwrap(); // 1
    c.lopen(f, O_RDONLY).unwrap(); // 2
    c.read(f, 0, 16).unwrap(); // 3
    c.read(f, 16, 16).unwrap(); // 4
    assert_eq!(errno(c.read(f, 32, 16)), e::EDQUOT);
    assert_eq!(errno(c.walk_path(wroot, "/proc")), e::EDQUOT);
    assert_eq!(errno(c.getattr(f, secure9p::wire::GETATTR_ALL)), e::EDQUOT);
    // Releasing fids stays possible.
    c.clunk(f).unwrap();
    let log = queen_log(&h, kind);
    assert!(log.contains("ops budget exhausted"), "{log}");
}

fn scope_rate_limit_is_elimit_and_refills_with_the_clock(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let ticket = hb_ticket_with(&h, &w, |t| {
        t.scopes = vec![Scope {
            path: "/proc".into(),
            verb: Verb::Read,
            rate_per_s: 3,
        }];
    });
    let mut c = h.client(kind);
    let wroot = c.attach(&hb_uname(&w), &ticket).unwrap();
    let f = c.walk_path(wroot, "/proc/boot").unwrap(); // 1
    c.lopen(f, O_RDONLY).unwrap(); // 2
    c.read(f, 0, 8).unwrap(); // 3
    assert_eq!(errno(c.read(f, 8, 8)), e::EDQUOT);
    // One second on the hive's clock refills the bucket.
    h.clock.advance(1_000);
    c.read(f, 8, 8).unwrap();
    let log = queen_log(&h, kind);
    assert!(log.contains("rate limit 3/s on /proc"), "{log}");
}

/// The ops budget counts requests; `budget.rs` lists Tstatfs with Tgetattr
/// as a `Stat` charge. A session whose budget is spent must not keep
/// getting metadata answers through an uncharged request type.
fn every_metadata_request_counts_against_the_ops_budget(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let ticket = hb_ticket_with(&h, &w, |t| t.ops = Some(2));
    let mut c = h.client(kind);
    let wroot = c.attach(&hb_uname(&w), &ticket).unwrap();
    c.getattr(wroot, secure9p::wire::GETATTR_ALL).unwrap(); // 1
    c.statfs(wroot).unwrap(); // 2
    assert_eq!(
        errno(c.getattr(wroot, secure9p::wire::GETATTR_ALL)),
        e::EDQUOT,
        "Tstatfs was not charged"
    );
    assert_eq!(errno(c.statfs(wroot)), e::EDQUOT);
}

fn killed_worker_session_gets_ekeyrevoked(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let other = h.spawn_heartbeat_via(&mut q, root);
    let (mut c, wroot) = h.heartbeat(kind, &w);
    let (mut o, oroot) = h.heartbeat(kind, &other);
    let boot = c.walk_path(wroot, "/proc/boot").unwrap();
    c.lopen(boot, O_RDONLY).unwrap();
    kill(&h, kind, &w);
    assert_eq!(errno(c.read(boot, 0, 16)), e::EKEYREVOKED);
    assert_eq!(errno(c.walk_path(wroot, "/proc")), e::EKEYREVOKED);
    assert_eq!(
        errno(c.getattr(wroot, secure9p::wire::GETATTR_ALL)),
        e::EKEYREVOKED
    );
    // A new attach is refused too.
    let mut again = h.client(kind);
    assert_eq!(
        errno(again.attach(&hb_uname(&w), &h.hb_ticket(&w))),
        e::EKEYREVOKED
    );
    // Other workers are unaffected.
    read_file(&mut o, oroot, "/proc/boot").unwrap();
    let log = queen_log(&h, kind);
    assert!(log.contains(&format!("killed {w}")), "{log}");
    assert!(
        log.contains(&format!("revoked {w}: killed by queen")),
        "{log}"
    );
}

fn worker_cannot_see_queen_and_the_denial_is_audited(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let other = h.spawn_heartbeat_via(&mut q, root);
    let (mut c, wroot) = h.heartbeat(kind, &w);
    for path in ["/queen", "/queen/ctl", "/log", "/log/queen.log", "/gpu"] {
        assert_eq!(errno(c.walk_path(wroot, path)), e::ENOENT, "{path}");
    }
    assert_eq!(
        errno(c.walk_path(wroot, &format!("/worker/{other}"))),
        e::ENOENT
    );
    let mut top = ls(&mut c, wroot, "/").unwrap();
    top.sort();
    assert_eq!(top, ["proc", "worker"]);
    assert_eq!(ls(&mut c, wroot, "/worker").unwrap(), vec![w.clone()]);
    let log = queen_log(&h, kind);
    let line = format!("denied worker-heartbeat:{w}");
    assert!(
        log.lines()
            .any(|l| l.contains(&line) && l.contains("/queen") && l.contains("ENOENT")),
        "{log}"
    );
}

// ---------------------------------------------------------------------------
// Leases and lifecycle
// ---------------------------------------------------------------------------

fn last_lease_line(q: &mut C, root: Fid, gpu: &str) -> serde_json::Value {
    let text = read_text(q, root, &format!("/gpu/{gpu}/lease")).unwrap();
    serde_json::from_str(text.lines().last().expect("a lease line")).unwrap()
}

fn lease_over_the_wire_and_ttl_expiry_revokes(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    // A GPU worker spawned on gpu1, then released: idle, leasable.
    let w = h
        .spawn_via(
            &mut q,
            root,
            "{\"spawn\":\"gpu\",\"lease\":{\"gpu_id\":\"gpu1\",\"mem_mb\":512,\"streams\":1,\"ttl_s\":600}}\n",
        )
        .remove(0);
    write_file(
        &mut q,
        root,
        "/gpu/gpu1/ctl",
        0,
        format!("RELEASE {w} idle\n").as_bytes(),
    )
    .unwrap();
    let (mut g, groot) = h.gpu_worker(kind, &w);
    assert_eq!(errno(g.walk_path(groot, "/gpu/gpu0")), e::ENOENT);
    // LEASE through /gpu/gpu0/ctl.
    let n = write_file(
        &mut q,
        root,
        "/gpu/gpu0/ctl",
        0,
        format!("LEASE {w} mem=1024 streams=2 priority=1 ttl=30\n").as_bytes(),
    )
    .unwrap();
    assert!(n > 0);
    let active = last_lease_line(&mut q, root, "gpu0");
    assert_eq!(active["state"], "ACTIVE");
    assert_eq!(active["worker_id"], w.as_str());
    assert_eq!(active["streams"], 2);
    // The holder now sees gpu0 (and only gpu0).
    let info = read_text(&mut g, groot, "/gpu/gpu0/info").unwrap();
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["id"], "gpu0");
    assert_eq!(errno(g.walk_path(groot, "/gpu/gpu1")), e::ENOENT);
    let mut gpus = ls(&mut g, groot, "/gpu").unwrap();
    gpus.sort();
    assert!(gpus.contains(&"gpu0".to_string()) && !gpus.contains(&"gpu1".to_string()));
    // A second lease on a busy GPU is refused with its errno.
    assert_eq!(
        errno(write_file(
            &mut q,
            root,
            "/gpu/gpu0/ctl",
            0,
            format!("LEASE {w} mem=1 streams=1 priority=0\n").as_bytes(),
        )),
        e::EBUSY
    );
    // TTL: the hive's clock passes it; the holder's session is revoked.
    h.clock.advance(30_000);
    assert_eq!(errno(g.walk_path(groot, "/proc/boot")), e::EKEYREVOKED);
    let released = last_lease_line(&mut q, root, "gpu0");
    assert_eq!(released["state"], "RELEASED");
    assert_eq!(released["reason"], "ttl expired");
    let log = read_text(&mut q, root, "/log/queen.log").unwrap();
    assert!(
        log.contains(&format!("revoked {w}: lease on gpu0 expired")),
        "{log}"
    );
    // A new attach is refused.
    let mut again = h.client(kind);
    assert_eq!(
        errno(again.attach(&format!("worker-gpu:{w}"), &h.gpu_ticket(&w))),
        e::EKEYREVOKED
    );
}

fn lifecycle_state(q: &mut C, root: Fid) -> String {
    read_text(q, root, "/proc/lifecycle/state")
        .unwrap()
        .trim()
        .to_string()
}

fn lifecycle_cordon_drain_resume_and_spawn_gate(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let lc = |q: &mut C, cmd: &str| {
        write_file(
            q,
            root,
            "/queen/lifecycle/ctl",
            0,
            format!("{cmd}\n").as_bytes(),
        )
    };
    let w = h.spawn_heartbeat_via(&mut q, root);
    assert_eq!(lifecycle_state(&mut q, root), "ONLINE");
    lc(&mut q, "cordon").unwrap();
    assert_eq!(lifecycle_state(&mut q, root), "DRAINING");
    // No new work while DRAINING ...
    assert_eq!(
        errno(write_file(
            &mut q,
            root,
            "/queen/ctl",
            0,
            b"{\"spawn\":\"heartbeat\"}\n"
        )),
        e::EAGAIN
    );
    // ... but existing workers attach and report.
    let (mut c, wroot) = h.heartbeat(kind, &w);
    write_file(
        &mut c,
        wroot,
        &format!("/worker/{w}/telemetry"),
        u64::MAX,
        b"draining\n",
    )
    .unwrap();
    // drain refuses while a worker is outstanding.
    assert_eq!(errno(lc(&mut q, "drain")), e::EBUSY);
    kill(&h, kind, &w);
    lc(&mut q, "drain").unwrap();
    assert_eq!(lifecycle_state(&mut q, root), "QUIESCED");
    assert_eq!(
        errno(write_file(
            &mut q,
            root,
            "/queen/ctl",
            0,
            b"{\"spawn\":\"heartbeat\"}\n"
        )),
        e::EAGAIN
    );
    lc(&mut q, "resume").unwrap();
    assert_eq!(lifecycle_state(&mut q, root), "ONLINE");
    h.spawn_heartbeat_via(&mut q, root);
    let log = read_text(&mut q, root, "/log/queen.log").unwrap();
    for want in [
        "lifecycle ONLINE -> DRAINING",
        "lifecycle DRAINING -> QUIESCED",
        "lifecycle QUIESCED -> ONLINE",
    ] {
        assert!(log.contains(want), "{want}: {log}");
    }
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

/// One worker session: attach, walk, list, read, write telemetry, read it
/// back. Returns an error text instead of panicking so the caller can
/// report which session failed.
fn worker_session(h: &Harness, kind: Kind, w: &str, rounds: usize) -> Result<(), String> {
    let mut c = h.client(kind);
    let root = c
        .attach(&hb_uname(w), &h.hb_ticket(w))
        .map_err(|e| format!("{w} attach: {e}"))?;
    let tel_path = format!("/worker/{w}/telemetry");
    let tel = c
        .walk_path(root, &tel_path)
        .map_err(|e| format!("{w} walk: {e}"))?;
    c.lopen(tel, O_WRONLY)
        .map_err(|e| format!("{w} open: {e}"))?;
    let mut expected = Vec::new();
    for i in 0..rounds {
        let line = format!("{w} beat {i}\n");
        c.write(tel, u64::MAX, line.as_bytes())
            .map_err(|e| format!("{w} write {i}: {e}"))?;
        expected.extend_from_slice(line.as_bytes());
        let boot = read_file(&mut c, root, "/proc/boot").map_err(|e| format!("{w} boot: {e}"))?;
        if boot.is_empty() {
            return Err(format!("{w}: empty /proc/boot"));
        }
        let listed = ls(&mut c, root, "/worker").map_err(|e| format!("{w} ls: {e}"))?;
        if listed != [w.to_string()] {
            return Err(format!("{w} sees {listed:?} in /worker"));
        }
    }
    let back = read_file(&mut c, root, &tel_path).map_err(|e| format!("{w} read back: {e}"))?;
    if back != expected {
        return Err(format!(
            "{w} telemetry: {:?}",
            String::from_utf8_lossy(&back)
        ));
    }
    c.clunk(tel).map_err(|e| format!("{w} clunk: {e}"))?;
    Ok(())
}

fn spawn_workers(h: &Harness, kind: Kind, n: usize) -> Vec<String> {
    let (mut q, root) = h.queen(kind);
    let ids = h.spawn_via(&mut q, root, &"{\"spawn\":\"heartbeat\"}\n".repeat(n));
    assert_eq!(ids.len(), n);
    ids
}

fn run_sessions(h: &Arc<Harness>, kind: Kind, workers: Vec<String>) -> Vec<thread::JoinHandle<()>> {
    let barrier = Arc::new(Barrier::new(workers.len()));
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = workers
        .into_iter()
        .map(|w| {
            let h = h.clone();
            let barrier = barrier.clone();
            let tx = tx.clone();
            thread::spawn(move || {
                barrier.wait();
                let r = worker_session(&h, kind, &w, 12);
                tx.send((w, r)).unwrap();
            })
        })
        .collect();
    drop(tx);
    let mut failures = Vec::new();
    let mut done = 0;
    while done < handles.len() {
        let (w, r) = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("hang guard: a session did not finish");
        if let Err(e) = r {
            failures.push(format!("{w}: {e}"));
        }
        done += 1;
    }
    assert!(failures.is_empty(), "failed sessions: {failures:#?}");
    handles
}

fn thirty_two_concurrent_sessions(kind: Kind) {
    let h = Arc::new(Harness::start());
    let workers = spawn_workers(&h, kind, 32);
    for t in run_sessions(&h, kind, workers) {
        t.join().unwrap();
    }
}

fn garbage_connection_while_thirty_one_sessions_work(kind: Kind) {
    let h = Arc::new(Harness::start());
    let workers = spawn_workers(&h, kind, 31);
    let hg = h.clone();
    let garbage = thread::spawn(move || {
        for i in 0..20u8 {
            let mut r = hg.raw(kind);
            if i % 2 == 1 {
                r.version_ok(8192);
            }
            let junk: Vec<u8> = (0..200u16)
                .map(|j| (j as u8).wrapping_mul(37).wrapping_add(i) | 0x80)
                .collect();
            r.try_send_bytes(&junk);
            r.expect_closed();
        }
    });
    for t in run_sessions(&h, kind, workers) {
        t.join().unwrap();
    }
    garbage.join().expect("garbage connections were closed");
    let (mut q, root) = h.queen(kind);
    let log = read_text(&mut q, root, "/log/queen.log").unwrap();
    assert!(log.matches("bad frame").count() >= 20, "{log}");
    // The server still serves.
    read_file(&mut q, root, "/proc/boot").unwrap();
}
