//! No client input panics the hive: junk into every writable node, every
//! walk, every read offset.

mod common;

use common::*;
use ninedoor::budget::{BudgetOp, Scope, Ticket, Verb};
use ninedoor::hive::OpenMode;
use ninedoor::identity::Identity;
use ninedoor::identity::Role;

/// xorshift64*: deterministic junk without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() % (max as u64 + 1)) as usize;
        const ALPHABET: &[u8] = b"{}[]\":,0123456789 -=\n\r\\/.abcdefghijklmnopqrstuvwxyzLEASERELEASEworker-spawnkillbudgetbindmount\xff\xc3\x00";
        (0..n)
            .map(|_| {
                if self.next().is_multiple_of(8) {
                    self.next() as u8
                } else {
                    ALPHABET[(self.next() % ALPHABET.len() as u64) as usize]
                }
            })
            .collect()
    }
}

const WRITABLE: [&str; 6] = [
    "/queen/ctl",
    "/queen/lifecycle/ctl",
    "/gpu/gpu0/ctl",
    "/gpu/gpu0/job",
    "/gpu/models/active",
    "/worker/worker-1/telemetry",
];

#[test]
fn junk_never_panics() {
    let f = fixture();
    spawn_heartbeat(&f.hive);
    let q = queen();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let files: Vec<_> = WRITABLE
        .iter()
        .map(|p| {
            let n = f.hive.walk_path(&q, p).unwrap();
            (n, f.hive.open_mode(&q, n, OpenMode::Write, true).unwrap())
        })
        .collect();
    for i in 0..4000 {
        let (_, file) = &files[i % files.len()];
        let data = rng.bytes(200);
        let offset = match rng.next() % 3 {
            0 => u64::MAX,
            1 => rng.next(),
            _ => rng.next() % 64,
        };
        let _ = f.hive.write(&q, file, offset, &data);
        // Walks with junk names, reads at junk offsets.
        let name = String::from_utf8_lossy(&rng.bytes(20)).into_owned();
        let _ = f.hive.walk(&q, f.hive.root(), &name);
        let _ = f.hive.walk_path(&Identity::heartbeat("worker-1"), &name);
        let (node, _) = files[5];
        if let Ok(r) = f.hive.open(&q, node, false, false) {
            let _ = f.hive.read(&q, &r, rng.next(), rng.next() as u32);
        }
        let _ = f.hive.list_from(&q, f.hive.root(), rng.next());
        let _ = f.hive.append_console(&name, &data);
        let _ = Identity::from_uname(&name);
    }
    // Budgets with extreme values.
    let t = Ticket {
        ops: Some(u64::MAX),
        ttl_s: Some(u64::MAX),
        issued_at_ms: u64::MAX,
        scopes: vec![Scope {
            path: String::new(),
            verb: Verb::Read,
            rate_per_s: u32::MAX,
        }],
        ..Ticket::new(Role::Queen, 0)
    };
    let mut b = f.hive.session_budget(&q, Some(&t));
    let _ = f.hive.charge(&q, &mut b, BudgetOp::Read, "", u64::MAX);
    let _ = f.hive.charge(&q, &mut b, BudgetOp::Write, "/", 0);
    // The hive still works and its journal still verifies.
    f.hive.tick();
    assert!(read(&f.hive, &q, "/proc/boot").is_ok());
    ninedoor::audit::AuditJournal::verify(f.hive.journal_path()).unwrap();
}
