//! Ticket budgets and limits as pure logic, for the session layer to charge
//! every request against.
//!
//! A [`SessionBudget`] is built once per session (at attach) from, in order:
//! the role defaults (Cohesix's numbers), the worker's spawn budget (set by
//! the queen, or by hive.toml for a declared worker, overriding the
//! defaults; [`UNLIMITED`] lifts a limit), and the ticket's own fields
//! (which can only tighten: the smaller value wins). The queen has no defaults
//! (unbounded) but a queen ticket's explicit limits still apply.
//!
//! | role             | ticks | ops                                  | ttl   |
//! |------------------|-------|--------------------------------------|-------|
//! | queen            | –     | –                                    | –     |
//! | worker-heartbeat | 1000  | 10000                                | 300 s |
//! | worker-gpu       | –     | 64, or streams × 8 while it leases   | 120 s |
//!
//! [`SessionBudget::charge`] checks, in this order, and charges nothing when
//! it refuses:
//! 1. expiry (`now ≥ issued_at + ttl`) → `EKEYEXPIRED`;
//! 2. scopes (when the ticket has any): reads need a `read`/`rw` scope
//!    covering the path, writes a `write`/`rw` one; navigation (walk, stat,
//!    readdir) is also allowed on the ancestors of a scope, so a client can
//!    reach it → `EPERM`;
//! 3. the ops budget (one op per charged request) → `ELIMIT`;
//! 4. ticks (one per write to a `/worker/*/telemetry` file: a heartbeat) →
//!    `ELIMIT`;
//! 5. the matching scope's rate (`rate_per_s` requests per second, token
//!    bucket with a one-second burst) → `ELIMIT`;
//! 6. the bandwidth quota (total bytes read + written) → `ELIMIT`;
//! 7. cursor quotas (stream reads: resumes and advances) → `ELIMIT`.
//!
//! `ELIMIT` is `EDQUOT` on the wire. The hive's `charge` wrapper audits each
//! denial. Paths passed in should be canonical (`Hive::path_of`).
//!
//! Ticket fields come from a verified `secure9p::Ticket` (re-exported here
//! with its [`Scope`], [`Verb`] and [`Quotas`]); the ticket's mount fields
//! are not used by budgets.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::errno::Errno;
use crate::identity::Role;

pub use secure9p::ticket::{
    GPU_OPS, GPU_TTL_S, HEARTBEAT_OPS, HEARTBEAT_TICKS, HEARTBEAT_TTL_S, Quotas, Scope, Ticket,
    Verb,
};

/// A field of a [`SpawnBudget`] set to this lifts that limit entirely: the
/// session gets no limit there, exactly as the queen has none (hive.toml's
/// `"unlimited"`). Absent (`None`) means "the role default" instead.
pub const UNLIMITED: u64 = u64::MAX;

/// A budget for a worker: the queen's for spawned workers
/// (`{"budget":{...}}`), hive.toml's `budget` for declared ones. Absent
/// fields fall back to the role defaults; [`UNLIMITED`] means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnBudget {
    /// Session lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
    /// Request budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<u64>,
    /// Tick budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticks: Option<u64>,
}

impl SpawnBudget {
    /// Values absent here are taken from `fallback`.
    #[must_use]
    pub fn or(self, fallback: SpawnBudget) -> SpawnBudget {
        SpawnBudget {
            ttl_s: self.ttl_s.or(fallback.ttl_s),
            ops: self.ops.or(fallback.ops),
            ticks: self.ticks.or(fallback.ticks),
        }
    }
}

/// Cohesix's role defaults (see the module table). `lease_streams` is the
/// stream count of the GPU lease a GPU worker holds, if any.
#[must_use]
pub fn role_defaults(role: Role, lease_streams: Option<u32>) -> SpawnBudget {
    match role {
        Role::WorkerHeartbeat => SpawnBudget {
            ticks: Some(HEARTBEAT_TICKS),
            ops: Some(HEARTBEAT_OPS),
            ttl_s: Some(HEARTBEAT_TTL_S),
        },
        Role::WorkerGpu => SpawnBudget {
            ticks: None,
            ops: Some(lease_streams.map_or(GPU_OPS, |s| u64::from(s) * 8)),
            ttl_s: Some(GPU_TTL_S),
        },
        // The queen is unbounded; coco serves no bus or LoRa workers (and
        // Cohesix gives them no defaults either).
        Role::Queen | Role::WorkerBus | Role::WorkerLora => SpawnBudget::default(),
    }
}

/// A request being charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetOp {
    /// Twalk (per target path).
    Walk,
    /// Tgetattr / Tstatfs.
    Stat,
    /// Treaddir.
    Readdir,
    /// Tlopen.
    Open {
        /// Opened for writing.
        write: bool,
    },
    /// Tread of a regular (non-stream) file.
    Read,
    /// Twrite.
    Write,
    /// Tread of an append-only stream; `resume` when it starts at an offset
    /// other than where this fid's previous read ended.
    StreamRead {
        /// The read seeks (resumes) rather than continuing.
        resume: bool,
    },
}

impl BudgetOp {
    fn is_write(self) -> bool {
        matches!(self, BudgetOp::Write | BudgetOp::Open { write: true })
    }
    fn is_navigation(self) -> bool {
        matches!(self, BudgetOp::Walk | BudgetOp::Stat | BudgetOp::Readdir)
    }
}

/// Why a charge was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetDenial {
    /// `EKEYEXPIRED`, `EPERM` or `ELIMIT`.
    pub errno: Errno,
    /// For the audit line.
    pub reason: String,
}

impl BudgetDenial {
    /// The errno to answer with.
    #[must_use]
    pub fn errno(&self) -> Errno {
        self.errno
    }
}

impl fmt::Display for BudgetDenial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.errno)
    }
}

fn deny(errno: Errno, reason: impl Into<String>) -> BudgetDenial {
    BudgetDenial {
        errno,
        reason: reason.into(),
    }
}

#[derive(Clone, Debug)]
struct ScopeState {
    scope: Scope,
    /// Tokens in thousandths of a request.
    tokens_milli: u64,
    last_ms: u64,
}

/// Per-session counters. Pure: time comes in as `now_ms`.
#[derive(Clone, Debug)]
pub struct SessionBudget {
    expires_at_ms: Option<u64>,
    ops_left: Option<u64>,
    ticks_left: Option<u64>,
    scopes: Vec<ScopeState>,
    bandwidth_left: Option<u64>,
    resumes_left: Option<u32>,
    advances_left: Option<u32>,
}

fn tighter(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn nonzero<T: PartialEq + Default>(v: T) -> Option<T> {
    if v == T::default() { None } else { Some(v) }
}

/// Whether `path` is `scope` or inside it (component-wise).
fn under(path: &str, scope: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    scope.is_empty()
        || path == scope
        || (path.starts_with(scope) && path.as_bytes().get(scope.len()) == Some(&b'/'))
}

impl SessionBudget {
    /// A budget with no limit at all.
    #[must_use]
    pub fn unbounded() -> SessionBudget {
        SessionBudget {
            expires_at_ms: None,
            ops_left: None,
            ticks_left: None,
            scopes: Vec::new(),
            bandwidth_left: None,
            resumes_left: None,
            advances_left: None,
        }
    }

    /// Builds a session's budget. `spawn` is the worker's spawn budget (if
    /// it was spawned with one), `lease_streams` the streams of its current
    /// lease, `ticket` the verified ticket (if the session presented one);
    /// `now_ms` is used as the issue time when there is no ticket.
    #[must_use]
    pub fn new(
        role: Role,
        spawn: Option<SpawnBudget>,
        lease_streams: Option<u32>,
        ticket: Option<&Ticket>,
        now_ms: u64,
    ) -> SessionBudget {
        let base = spawn
            .unwrap_or_default()
            .or(role_defaults(role, lease_streams));
        // UNLIMITED becomes no limit at all, as the queen's defaults are.
        let lift = |v: Option<u64>| v.filter(|&n| n != UNLIMITED);
        let base = SpawnBudget {
            ttl_s: lift(base.ttl_s),
            ops: lift(base.ops),
            ticks: lift(base.ticks),
        };
        let issued = ticket.map_or(now_ms, |t| t.issued_at_ms);
        let ttl = tighter(base.ttl_s, ticket.and_then(|t| t.ttl_s));
        let quotas = ticket.and_then(|t| t.quotas).unwrap_or_default();
        SessionBudget {
            expires_at_ms: ttl.map(|s| issued.saturating_add(s.saturating_mul(1000))),
            ops_left: tighter(base.ops, ticket.and_then(|t| t.ops)),
            ticks_left: tighter(base.ticks, ticket.and_then(|t| t.ticks)),
            scopes: ticket
                .map(|t| {
                    t.scopes
                        .iter()
                        .map(|s| ScopeState {
                            scope: s.clone(),
                            tokens_milli: u64::from(s.rate_per_s) * 1000,
                            last_ms: now_ms,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            bandwidth_left: nonzero(quotas.bandwidth_bytes),
            resumes_left: nonzero(quotas.cursor_resumes),
            advances_left: nonzero(quotas.cursor_advances),
        }
    }

    /// When the session expires, if it does.
    #[must_use]
    pub fn expires_at_ms(&self) -> Option<u64> {
        self.expires_at_ms
    }

    /// Requests left, if limited.
    #[must_use]
    pub fn ops_left(&self) -> Option<u64> {
        self.ops_left
    }

    /// Ticks left, if limited.
    #[must_use]
    pub fn ticks_left(&self) -> Option<u64> {
        self.ticks_left
    }

    /// Bytes left, if limited.
    #[must_use]
    pub fn bandwidth_left(&self) -> Option<u64> {
        self.bandwidth_left
    }

    /// Charges one request of kind `op` on `path` moving `bytes` bytes.
    /// Refusals charge nothing (see the module docs for the order).
    pub fn charge(
        &mut self,
        op: BudgetOp,
        path: &str,
        bytes: u64,
        now_ms: u64,
    ) -> Result<(), BudgetDenial> {
        if self.expires_at_ms.is_some_and(|t| now_ms >= t) {
            return Err(deny(Errno::EKEYEXPIRED, "ticket expired"));
        }
        let scope_idx = self.matching_scope(op, path)?;
        if self.ops_left == Some(0) {
            return Err(deny(Errno::ELIMIT, "ops budget exhausted"));
        }
        let tick = op == BudgetOp::Write && is_telemetry(path);
        if tick && self.ticks_left == Some(0) {
            return Err(deny(Errno::ELIMIT, "tick budget exhausted"));
        }
        let mut refilled = None;
        if let Some(i) = scope_idx
            && let Some(s) = self.scopes.get(i)
            && s.scope.rate_per_s > 0
        {
            let rate = u64::from(s.scope.rate_per_s);
            let cap = rate * 1000;
            let elapsed = now_ms.saturating_sub(s.last_ms);
            let tokens = s
                .tokens_milli
                .saturating_add(elapsed.saturating_mul(rate))
                .min(cap);
            if tokens < 1000 {
                return Err(deny(
                    Errno::ELIMIT,
                    format!("rate limit {}/s on {}", rate, s.scope.path),
                ));
            }
            refilled = Some((i, tokens - 1000));
        }
        if self.bandwidth_left.is_some_and(|left| bytes > left) {
            return Err(deny(Errno::ELIMIT, "bandwidth quota exhausted"));
        }
        if let BudgetOp::StreamRead { resume } = op {
            if self.advances_left == Some(0) {
                return Err(deny(Errno::ELIMIT, "cursor advance quota exhausted"));
            }
            if resume && self.resumes_left == Some(0) {
                return Err(deny(Errno::ELIMIT, "cursor resume quota exhausted"));
            }
        }
        // Everything passed: commit.
        if let Some(n) = self.ops_left.as_mut() {
            *n -= 1;
        }
        if tick && let Some(n) = self.ticks_left.as_mut() {
            *n -= 1;
        }
        if let Some((i, tokens)) = refilled
            && let Some(s) = self.scopes.get_mut(i)
        {
            s.tokens_milli = tokens;
            s.last_ms = now_ms;
        }
        if let Some(n) = self.bandwidth_left.as_mut() {
            *n -= bytes;
        }
        if let BudgetOp::StreamRead { resume } = op {
            if let Some(n) = self.advances_left.as_mut() {
                *n -= 1;
            }
            if resume && let Some(n) = self.resumes_left.as_mut() {
                *n -= 1;
            }
        }
        Ok(())
    }

    /// The index of the most specific scope allowing `op` on `path`, `None`
    /// when the ticket has no scopes or when navigation reaches an ancestor
    /// of a scope, or an `EPERM` denial.
    fn matching_scope(&self, op: BudgetOp, path: &str) -> Result<Option<usize>, BudgetDenial> {
        if self.scopes.is_empty() {
            return Ok(None);
        }
        let fits = |s: &Scope| {
            if op.is_navigation() {
                true
            } else if op.is_write() {
                s.verb.allows_write()
            } else {
                s.verb.allows_read()
            }
        };
        let best = self
            .scopes
            .iter()
            .enumerate()
            .filter(|(_, s)| under(path, &s.scope.path) && fits(&s.scope))
            .max_by_key(|(_, s)| s.scope.path.len())
            .map(|(i, _)| i);
        if best.is_some() {
            return Ok(best);
        }
        if op.is_navigation() && self.scopes.iter().any(|s| under(&s.scope.path, path)) {
            return Ok(None);
        }
        if self.scopes.iter().any(|s| under(path, &s.scope.path)) {
            return Err(deny(
                Errno::EPERM,
                if op.is_write() {
                    "ticket scope does not allow writing"
                } else {
                    "ticket scope does not allow reading"
                },
            ));
        }
        Err(deny(Errno::EPERM, "outside the ticket's scopes"))
    }
}

/// Whether a canonical path is a worker telemetry file.
fn is_telemetry(path: &str) -> bool {
    let c: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    matches!(c.as_slice(), ["worker", _, "telemetry"])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEL: &str = "/worker/worker-1/telemetry";

    /// A ticket with no limits of its own (the role defaults of
    /// `Ticket::new` are cleared so each test sets only what it checks).
    fn ticket() -> Ticket {
        Ticket {
            ticks: None,
            ops: None,
            ttl_s: None,
            ..Ticket::new(Role::Queen, 1_000)
        }
    }

    #[test]
    fn defaults_per_role() {
        let q = SessionBudget::new(Role::Queen, None, None, None, 0);
        assert_eq!(q.ops_left(), None);
        assert_eq!(q.expires_at_ms(), None);
        let h = SessionBudget::new(Role::WorkerHeartbeat, None, None, None, 5);
        assert_eq!(h.ops_left(), Some(10_000));
        assert_eq!(h.ticks_left(), Some(1000));
        assert_eq!(h.expires_at_ms(), Some(300_005));
        let g = SessionBudget::new(Role::WorkerGpu, None, None, None, 0);
        assert_eq!(g.ops_left(), Some(64));
        assert_eq!(g.expires_at_ms(), Some(120_000));
        let g = SessionBudget::new(Role::WorkerGpu, None, Some(4), None, 0);
        assert_eq!(g.ops_left(), Some(32));
    }

    #[test]
    fn spawn_budget_overrides_defaults_and_ticket_only_tightens() {
        let spawn = SpawnBudget {
            ops: Some(50_000),
            ..SpawnBudget::default()
        };
        let b = SessionBudget::new(Role::WorkerHeartbeat, Some(spawn), None, None, 0);
        assert_eq!(b.ops_left(), Some(50_000));
        let t = Ticket {
            ops: Some(7),
            ttl_s: Some(10_000),
            ..ticket()
        };
        let b = SessionBudget::new(Role::WorkerHeartbeat, Some(spawn), None, Some(&t), 0);
        assert_eq!(b.ops_left(), Some(7));
        // The ttl is the smaller one, counted from the ticket's issue time.
        assert_eq!(b.expires_at_ms(), Some(1_000 + 300_000));
    }

    #[test]
    fn ops_exhaustion() {
        let t = Ticket {
            ops: Some(2),
            ..ticket()
        };
        let mut b = SessionBudget::new(Role::Queen, None, None, Some(&t), 0);
        assert!(b.charge(BudgetOp::Walk, "/proc", 0, 0).is_ok());
        assert!(b.charge(BudgetOp::Stat, "/proc", 0, 0).is_ok());
        let e = b.charge(BudgetOp::Stat, "/proc", 0, 0).unwrap_err();
        assert_eq!(e.errno, Errno::ELIMIT);
        assert_eq!(e.errno.raw(), 122);
    }

    #[test]
    fn ticks_count_telemetry_writes_only() {
        let t = Ticket {
            ticks: Some(1),
            ..ticket()
        };
        let mut b = SessionBudget::new(Role::WorkerHeartbeat, None, None, Some(&t), 0);
        b.charge(BudgetOp::Read, TEL, 10, 0).unwrap();
        b.charge(BudgetOp::Write, TEL, 10, 0).unwrap();
        let e = b.charge(BudgetOp::Write, TEL, 10, 0).unwrap_err();
        assert_eq!(e.errno, Errno::ELIMIT);
        assert!(e.reason.contains("tick"));
        b.charge(BudgetOp::Read, TEL, 10, 0).unwrap();
    }

    #[test]
    fn ttl_expiry() {
        let t = Ticket {
            ttl_s: Some(2),
            ..ticket()
        };
        let mut b = SessionBudget::new(Role::Queen, None, None, Some(&t), 1_000);
        b.charge(BudgetOp::Stat, "/", 0, 2_999).unwrap();
        let e = b.charge(BudgetOp::Stat, "/", 0, 3_000).unwrap_err();
        assert_eq!(e.errno, Errno::EKEYEXPIRED);
        assert_eq!(e.errno.raw(), 127);
    }

    #[test]
    fn scope_verbs() {
        let t = Ticket {
            scopes: vec![
                Scope {
                    path: "/worker/worker-1".into(),
                    verb: Verb::Write,
                    rate_per_s: 0,
                },
                Scope {
                    path: "/proc/".into(),
                    verb: Verb::Read,
                    rate_per_s: 0,
                },
            ],
            ..ticket()
        };
        let mut b = SessionBudget::new(Role::WorkerHeartbeat, None, None, Some(&t), 0);
        b.charge(BudgetOp::Write, TEL, 4, 0).unwrap();
        b.charge(BudgetOp::Read, "/proc/boot", 4, 0).unwrap();
        // Navigation through ancestors of a scope is fine.
        b.charge(BudgetOp::Walk, "/", 0, 0).unwrap();
        b.charge(BudgetOp::Readdir, "/worker", 0, 0).unwrap();
        let ops = b.ops_left();
        let e = b.charge(BudgetOp::Read, TEL, 4, 0).unwrap_err();
        assert_eq!(e.errno, Errno::EPERM);
        let e = b.charge(BudgetOp::Write, "/proc/boot", 4, 0).unwrap_err();
        assert_eq!(e.errno, Errno::EPERM);
        let e = b.charge(BudgetOp::Walk, "/log", 0, 0).unwrap_err();
        assert_eq!(e.errno, Errno::EPERM);
        // `/proc2` is not under `/proc`.
        let e = b.charge(BudgetOp::Read, "/proc2", 0, 0).unwrap_err();
        assert_eq!(e.errno, Errno::EPERM);
        assert_eq!(b.ops_left(), ops, "denials charge nothing");
    }

    #[test]
    fn rate_limit_over_time() {
        let t = Ticket {
            scopes: vec![Scope {
                path: "/".into(),
                verb: Verb::ReadWrite,
                rate_per_s: 2,
            }],
            ..ticket()
        };
        let mut b = SessionBudget::new(Role::Queen, None, None, Some(&t), 0);
        b.charge(BudgetOp::Stat, "/", 0, 0).unwrap();
        b.charge(BudgetOp::Stat, "/", 0, 0).unwrap();
        let e = b.charge(BudgetOp::Stat, "/", 0, 100).unwrap_err();
        assert_eq!(e.errno, Errno::ELIMIT);
        // Half a second refills one request.
        b.charge(BudgetOp::Stat, "/", 0, 500).unwrap();
        assert!(b.charge(BudgetOp::Stat, "/", 0, 500).is_err());
        // A long pause refills only up to the one-second burst.
        b.charge(BudgetOp::Stat, "/", 0, 60_000).unwrap();
        b.charge(BudgetOp::Stat, "/", 0, 60_000).unwrap();
        assert!(b.charge(BudgetOp::Stat, "/", 0, 60_000).is_err());
    }

    #[test]
    fn bandwidth_and_cursor_quotas() {
        let t = Ticket {
            quotas: Some(Quotas {
                bandwidth_bytes: 100,
                cursor_resumes: 1,
                cursor_advances: 3,
            }),
            ..ticket()
        };
        let mut b = SessionBudget::new(Role::Queen, None, None, Some(&t), 0);
        b.charge(BudgetOp::Read, "/proc/boot", 60, 0).unwrap();
        let e = b.charge(BudgetOp::Read, "/proc/boot", 41, 0).unwrap_err();
        assert_eq!(e.errno, Errno::ELIMIT);
        b.charge(BudgetOp::Read, "/proc/boot", 40, 0).unwrap();
        assert_eq!(b.bandwidth_left(), Some(0));
        b.charge(BudgetOp::StreamRead { resume: true }, TEL, 0, 0)
            .unwrap();
        assert!(
            b.charge(BudgetOp::StreamRead { resume: true }, TEL, 0, 0)
                .is_err()
        );
        b.charge(BudgetOp::StreamRead { resume: false }, TEL, 0, 0)
            .unwrap();
        b.charge(BudgetOp::StreamRead { resume: false }, TEL, 0, 0)
            .unwrap();
        let e = b
            .charge(BudgetOp::StreamRead { resume: false }, TEL, 0, 0)
            .unwrap_err();
        assert!(e.reason.contains("advance"));
    }

    #[test]
    fn spawn_budget_json_is_strict() {
        let b: SpawnBudget = serde_json::from_str(r#"{"ttl_s":5,"ops":3}"#).unwrap();
        assert_eq!(b.ttl_s, Some(5));
        assert!(serde_json::from_str::<SpawnBudget>(r#"{"ttl":5}"#).is_err());
        assert!(serde_json::from_str::<SpawnBudget>(r#"{"ops":-1}"#).is_err());
    }
}
