//! The supervisor's side of the hive: lifecycle set by the VMM, console
//! output, boot lines, lease-TTL ticks, and read-only views of the records.

use std::path::Path;

use crate::budget::SpawnBudget;
use crate::errno::Errno;
use crate::lease::Lease;
use crate::lifecycle::{Lifecycle, LifecycleState};
use crate::ring::{ByteRing, Overflow};
use crate::tree::check_name;

use super::build::{log_ring, stream};
use super::state::{Content, StreamClass};
use super::{Hive, WorkerInfo};

impl Hive {
    /// The clock the hive decides by.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Enforces lease TTLs at the hive's clock; returns how many leases
    /// expired. Call periodically (the session layer also does, through
    /// [`Hive::check_session`] and [`Hive::attach`]).
    pub fn tick(&self) -> usize {
        self.expire(self.clock.now_ms())
    }

    /// BOOTING → ONLINE, once the supervisor is ready.
    pub fn set_online(&self) -> Result<(), Errno> {
        self.with_state(|s| {
            if s.lifecycle.state != LifecycleState::Booting {
                return Err(Errno::EINVAL);
            }
            s.set_lifecycle(LifecycleState::Online, "online: supervisor ready");
            Ok(())
        })
    }

    /// ONLINE/DEGRADED → DEGRADED with a reason.
    pub fn set_degraded(&self, reason: &str) -> Result<(), Errno> {
        self.with_state(|s| {
            if !matches!(
                s.lifecycle.state,
                LifecycleState::Online | LifecycleState::Degraded
            ) {
                return Err(Errno::EINVAL);
            }
            s.set_lifecycle(LifecycleState::Degraded, reason);
            Ok(())
        })
    }

    /// Any state → OFFLINE (shutdown; terminal).
    pub fn set_offline(&self, reason: &str) {
        self.with_state(|s| s.set_lifecycle(LifecycleState::Offline, reason));
    }

    /// The lifecycle state, reason and entry time.
    #[must_use]
    pub fn lifecycle(&self) -> Lifecycle {
        self.lock().lifecycle.clone()
    }

    /// Appends a guest's console output to `/log/<guest>.console` (created
    /// on first use; keeps the last `log_retain_bytes`).
    pub fn append_console(&self, guest: &str, bytes: &[u8]) -> Result<(), Errno> {
        let name = format!("{guest}.console");
        check_name(&name)?;
        if guest.is_empty() {
            return Err(Errno::EINVAL);
        }
        self.with_state(|s| {
            let node = match s.consoles.get(guest) {
                Some(n) => *n,
                None => {
                    let ring = log_ring(&s.spec);
                    let now = s.now_ms;
                    let n = s.tree.add(
                        s.fixed.log_dir,
                        &name,
                        stream(
                            ByteRing::new(ring.capacity(), Overflow::KeepTail, false),
                            StreamClass::Console,
                        ),
                        now,
                    )?;
                    s.consoles.insert(guest.to_owned(), n);
                    n
                }
            };
            s.append_stream(node, bytes).map(|_| ())
        })
    }

    /// Adds a line to `/proc/boot` (the last 256 are kept).
    pub fn boot_line(&self, text: &str) {
        self.with_state(|s| s.boot_line(text));
    }

    /// Records an audit line (e.g. the session layer's attach failures).
    /// Returns whether it reached the durable journal.
    pub fn audit(&self, text: &str) -> bool {
        self.with_state(|s| s.audit(text))
    }

    /// Whether the audit journal is currently accepting records.
    #[must_use]
    pub fn journal_healthy(&self) -> bool {
        self.lock().pending.is_empty()
    }

    /// The journal file.
    #[must_use]
    pub fn journal_path(&self) -> &Path {
        &self.journal_path
    }

    /// The retained text of `/log/queen.log`.
    #[must_use]
    pub fn queen_log(&self) -> String {
        let g = self.lock();
        match g.tree.get(g.fixed.queen_log).map(|n| &n.content) {
            Some(Content::Stream(s)) => String::from_utf8_lossy(&s.ring.contents()).into_owned(),
            _ => String::new(),
        }
    }

    /// Every worker record.
    #[must_use]
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.lock()
            .workers
            .iter()
            .map(|(id, w)| WorkerInfo {
                id: id.clone(),
                role: w.role,
                state: w.state,
                lease_gpu: w.lease_gpu.clone(),
            })
            .collect()
    }

    /// A GPU's active lease.
    #[must_use]
    pub fn lease(&self, gpu: &str) -> Option<Lease> {
        self.lock().gpus.get(gpu).and_then(|g| g.lease.clone())
    }

    /// The active model.
    #[must_use]
    pub fn active_model(&self) -> Option<String> {
        self.lock().models.active().map(str::to_owned)
    }

    /// The default budget for later spawns.
    #[must_use]
    pub fn default_budget(&self) -> SpawnBudget {
        self.lock().default_budget
    }
}
