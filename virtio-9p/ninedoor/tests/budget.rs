//! Ticket budgets charged through the hive: its clock, and an audit line
//! for every denial.

mod common;

use common::*;
use ninedoor::Errno;
use ninedoor::budget::{BudgetOp, Quotas, Scope, Ticket, Verb};
use ninedoor::identity::Identity;
use ninedoor::identity::Role;

#[test]
fn budget_denials_are_audited() {
    let f = fixture();
    let w = spawn_heartbeat(&f.hive);
    let me = Identity::heartbeat(&w).with_subject("probe");
    let tel = format!("/worker/{w}/telemetry");
    let ticket = Ticket {
        ops: Some(100),
        ticks: Some(2),
        ttl_s: Some(60),
        issued_at_ms: T0,
        scopes: vec![
            Scope {
                path: format!("/worker/{w}"),
                verb: Verb::ReadWrite,
                rate_per_s: 3,
            },
            Scope {
                path: "/proc".into(),
                verb: Verb::Read,
                rate_per_s: 0,
            },
        ],
        quotas: Some(Quotas {
            bandwidth_bytes: 1000,
            cursor_resumes: 0,
            cursor_advances: 0,
        }),
        ..Ticket::new(Role::WorkerHeartbeat, T0)
    };
    let mut b = f.hive.session_budget(&me, Some(&ticket));
    assert_eq!(b.ops_left(), Some(100));
    assert_eq!(b.ticks_left(), Some(2));

    // Scope: writing /proc is outside the ticket (EPERM).
    assert_eq!(
        f.hive
            .charge(&me, &mut b, BudgetOp::Write, "/proc/boot", 1)
            .unwrap_err(),
        Errno::EPERM
    );
    assert!(logged(
        &f.hive,
        &[&format!(
            "denied worker-heartbeat:{w}(probe) Write /proc/boot: ticket scope does not allow writing (EPERM)"
        )]
    ));
    // Rate: 3 per second in the worker scope.
    for _ in 0..2 {
        f.hive
            .charge(&me, &mut b, BudgetOp::Write, &tel, 10)
            .unwrap();
    }
    f.hive
        .charge(&me, &mut b, BudgetOp::Read, &tel, 10)
        .unwrap();
    assert_eq!(
        f.hive
            .charge(&me, &mut b, BudgetOp::Read, &tel, 10)
            .unwrap_err(),
        Errno::ELIMIT
    );
    assert!(logged(&f.hive, &["rate limit 3/s", "(ELIMIT)"]));
    f.clock.advance(1_000);
    // Ticks: two telemetry writes were allowed.
    assert_eq!(
        f.hive
            .charge(&me, &mut b, BudgetOp::Write, &tel, 10)
            .unwrap_err(),
        Errno::ELIMIT
    );
    assert!(logged(&f.hive, &["tick budget exhausted"]));
    // Bandwidth.
    assert_eq!(
        f.hive
            .charge(&me, &mut b, BudgetOp::Read, &tel, 2000)
            .unwrap_err(),
        Errno::ELIMIT
    );
    assert!(logged(&f.hive, &["bandwidth quota exhausted"]));
    f.hive
        .charge(&me, &mut b, BudgetOp::Read, "/proc/boot", 10)
        .unwrap();
    // Expiry by the hive's clock.
    f.clock.advance(60_000);
    assert_eq!(
        f.hive
            .charge(&me, &mut b, BudgetOp::Stat, "/proc/boot", 0)
            .unwrap_err(),
        Errno::EKEYEXPIRED
    );
    assert!(logged(&f.hive, &["ticket expired (EKEYEXPIRED)"]));
}

#[test]
fn ops_budget_exhaustion_and_queen_default() {
    let f = fixture();
    let mut q = f.hive.session_budget(&queen(), None);
    for _ in 0..20_000 {
        f.hive
            .charge(&queen(), &mut q, BudgetOp::Stat, "/", 0)
            .unwrap();
    }
    qctl(&f.hive, r#"{"spawn":"heartbeat","budget":{"ops":3}}"#).unwrap();
    let me = Identity::heartbeat("worker-1");
    let mut b = f.hive.session_budget(&me, None);
    for _ in 0..3 {
        f.hive
            .charge(&me, &mut b, BudgetOp::Walk, "/proc", 0)
            .unwrap();
    }
    assert_eq!(
        f.hive
            .charge(&me, &mut b, BudgetOp::Walk, "/proc", 0)
            .unwrap_err(),
        Errno::ELIMIT
    );
    assert!(logged(
        &f.hive,
        &["denied worker-heartbeat:worker-1 Walk /proc: ops budget exhausted (ELIMIT)"]
    ));
}
