//! Ticket verification with the hive's role secrets, and budgets from a
//! verified ticket.

mod common;

use common::*;
use ninedoor::Errno;
use ninedoor::budget::{BudgetOp, Ticket};
use ninedoor::config::Secrets;
use ninedoor::identity::{Identity, Role};

const HB_SECRET: &[u8] = b"heartbeat-secret";

fn hive_with_secrets() -> Fx {
    let mut s = spec();
    s.secrets = Secrets {
        queen: Some("queen-secret".into()),
        worker_heartbeat: Some(String::from_utf8(HB_SECRET.to_vec()).unwrap()),
        worker_gpu: None,
    };
    fixture_with(s)
}

#[test]
fn verify_ticket() {
    let f = hive_with_secrets();
    let w = spawn_heartbeat(&f.hive);
    let me = Identity::heartbeat(&w);
    let mut t = Ticket::new(Role::WorkerHeartbeat, T0);
    t.subject = Some(w.clone());
    t.ops = Some(2);
    let text = t.mint(HB_SECRET).unwrap();
    let got = f.hive.verify_ticket(&me, &text).unwrap();
    assert_eq!(got, t);

    // The budget comes from it.
    let mut b = f.hive.session_budget(&me, Some(&got));
    assert_eq!(b.ops_left(), Some(2));
    f.hive.charge(&me, &mut b, BudgetOp::Stat, "/", 0).unwrap();
    f.hive.charge(&me, &mut b, BudgetOp::Stat, "/", 0).unwrap();
    assert_eq!(
        f.hive
            .charge(&me, &mut b, BudgetOp::Stat, "/", 0)
            .unwrap_err(),
        Errno::ELIMIT
    );

    // Wrong secret, garbage, truncated.
    let forged = t.mint(b"guess").unwrap();
    assert_eq!(
        f.hive.verify_ticket(&me, &forged).unwrap_err(),
        Errno::EKEYREJECTED
    );
    assert_eq!(
        f.hive.verify_ticket(&me, "junk").unwrap_err(),
        Errno::EKEYREJECTED
    );
    assert_eq!(
        f.hive
            .verify_ticket(&me, &text[..text.len() - 2])
            .unwrap_err(),
        Errno::EKEYREJECTED
    );
    // A ticket for another worker.
    let other = Identity::heartbeat("worker-99");
    assert_eq!(
        f.hive.verify_ticket(&other, &text).unwrap_err(),
        Errno::EPERM
    );
    // A role with no configured secret.
    let g = Identity::gpu(&w);
    assert_eq!(
        f.hive.verify_ticket(&g, &text).unwrap_err(),
        Errno::EKEYREJECTED
    );
    // A ticket of another role presented under this one.
    let mut q = Ticket::new(Role::Queen, T0);
    q.ttl_s = None;
    let qtext = q.mint(HB_SECRET).unwrap();
    assert_eq!(
        f.hive.verify_ticket(&me, &qtext).unwrap_err(),
        Errno::EKEYREJECTED
    );
    // Expiry at the hive's clock (heartbeat default ttl 300 s).
    f.clock.advance(300_000);
    assert_eq!(
        f.hive.verify_ticket(&me, &text).unwrap_err(),
        Errno::EKEYEXPIRED
    );
}
