//! `budget`: a worker guest's session budget as hive.toml states it.
//!
//! Why it exists: a worker declared in hive.toml is registered by the
//! supervisor with its role's default budget (heartbeat: 1000 ticks, 10000
//! ops, 300 s), so without this table its virtio-9p session dies after five
//! minutes and an operator could not change that. The table only carries
//! what the file says; the supervisor hands it to NineDoor, which merges it
//! with the role defaults exactly as it merges a queen spawn's `budget`.

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// Largest `budget.ticks` and `budget.ops` (more is written `"unlimited"`).
pub const MAX_BUDGET_COUNT: u64 = 1_000_000_000;
/// Largest `budget.ttl_s`: 365 days (longer is written `"unlimited"`).
pub const MAX_BUDGET_TTL_S: u64 = 365 * 24 * 60 * 60;
/// The word that lifts one limit entirely.
pub const UNLIMITED: &str = "unlimited";

/// One limit of a [`GuestBudget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetLimit {
    /// At most this many (ticks, ops) or seconds (ttl); never 0.
    Limited(u64),
    /// `"unlimited"`: no limit at all, as the queen has.
    Unlimited,
}

/// `budget = { ticks = .., ops = .., ttl_s = .. }` of a worker guest. A
/// field that is `None` keeps the role default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GuestBudget {
    /// `ticks`: heartbeats (appends to the worker's telemetry) per session.
    pub ticks: Option<BudgetLimit>,
    /// `ops`: requests per session.
    pub ops: Option<BudgetLimit>,
    /// `ttl_s`: session lifetime in seconds.
    pub ttl_s: Option<BudgetLimit>,
}

impl GuestBudget {
    /// True when no key is set (every limit is the role default).
    pub fn is_empty(&self) -> bool {
        self.ticks.is_none() && self.ops.is_none() && self.ttl_s.is_none()
    }
}

impl Serialize for BudgetLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BudgetLimit::Limited(n) => s.serialize_u64(*n),
            BudgetLimit::Unlimited => s.serialize_str(UNLIMITED),
        }
    }
}

impl Serialize for GuestBudget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fields = [
            ("ticks", self.ticks),
            ("ops", self.ops),
            ("ttl_s", self.ttl_s),
        ];
        let n = fields.iter().filter(|(_, v)| v.is_some()).count();
        let mut st = s.serialize_struct("budget", n)?;
        for (name, value) in fields {
            if let Some(v) = value {
                st.serialize_field(name, &v)?;
            }
        }
        st.end()
    }
}
