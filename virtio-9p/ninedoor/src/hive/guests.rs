//! Guests the supervisor boots itself: workers declared in hive.toml (not
//! spawned by a queen) and the end of any worker's VM process.
//!
//! A declared worker gets the same nodes and state a spawned one would, at
//! once RUNNING, and later spawns never reuse its number. When a worker's VM
//! process ends without a `kill` (the guest powered off, crashed, or its VMM
//! died), its sessions are revoked, its lease is released and its nodes go
//! away, with a line in `/proc/boot` and the audit log; the hive keeps
//! running.

use crate::budget::SpawnBudget;
use crate::errno::Errno;
use crate::identity::{Role, parse_worker_id};

use super::Hive;
use super::state::{Worker, WorkerState};

impl Hive {
    /// Registers a hive.toml worker `id` (`worker-N`) with `role` and the
    /// guest's configured `budget`, merged like a spawn's: its fields first,
    /// then the queen's default budget, then (at attach) the role defaults.
    /// [`UNLIMITED`](crate::budget::UNLIMITED) lifts a limit.
    pub fn register_worker(&self, id: &str, role: Role, budget: SpawnBudget) -> Result<(), Errno> {
        if !matches!(role, Role::WorkerHeartbeat | Role::WorkerGpu) {
            return Err(Errno::EINVAL);
        }
        let n = parse_worker_id(id).ok_or(Errno::EINVAL)?;
        self.with_state(|s| {
            if s.workers.contains_key(id) {
                return Err(Errno::EEXIST);
            }
            let dir = s.make_worker_nodes(id)?;
            let budget = budget.or(s.default_budget);
            s.workers.insert(
                id.to_owned(),
                Worker {
                    role,
                    state: WorkerState::Running,
                    budget,
                    dir,
                    lease_gpu: None,
                },
            );
            s.revoked.remove(id);
            s.next_worker = s.next_worker.max(n.saturating_add(1));
            if budget == SpawnBudget::default() {
                s.audit(&format!("registered {id} ({role}) from hive.toml"));
            } else {
                let json = serde_json::to_string(&budget).unwrap_or_default();
                s.audit(&format!(
                    "registered {id} ({role}) from hive.toml with budget {json}"
                ));
            }
            Ok(())
        })
    }

    /// Fills the fields a spawn left unset in the budget of worker `id`
    /// (still being spawned) from `fallback`, the budget of the hive.toml
    /// guest its VM boots from: the spawn line's budget (and the queen's
    /// default budget) win over the config's. Call before the VM starts,
    /// since a session takes its budget at attach. `ENOENT` if there is no
    /// such worker being spawned.
    pub fn fill_spawn_budget(&self, id: &str, fallback: SpawnBudget) -> Result<(), Errno> {
        self.with_state(|s| {
            let w = s
                .workers
                .get_mut(id)
                .filter(|w| matches!(w.state, WorkerState::Spawning))
                .ok_or(Errno::ENOENT)?;
            let merged = w.budget.or(fallback);
            if merged != w.budget {
                w.budget = merged;
                let json = serde_json::to_string(&merged).unwrap_or_default();
                s.audit(&format!("{id} budget {json} (hive.toml fills the spawn's)"));
            }
            Ok(())
        })
    }

    /// The VM process of guest `name` ended; `how` says how ("status 0",
    /// "killed by signal 9"). If `name` is a live worker (not one a queen is
    /// already stopping), it is revoked and removed.
    pub fn guest_exited(&self, name: &str, how: &str) {
        self.with_state(|s| {
            s.boot_line(&format!("guest {name} VM process ended: {how}"));
            let live = s
                .workers
                .get(name)
                .is_some_and(|w| matches!(w.state, WorkerState::Running | WorkerState::Spawning));
            if live {
                s.audit(&format!("{name} exited: {how}"));
                s.revoke(name, "VM process ended");
                s.release_lease_of(name, "worker exited");
                s.remove_worker(name);
            } else {
                s.audit(&format!("VM process of {name} ended: {how}"));
            }
        });
    }

    /// The VM process of guest `name` started as `pid`.
    pub fn guest_started(&self, name: &str, pid: u32) {
        self.with_state(|s| {
            s.boot_line(&format!("guest {name} VM process started (pid {pid})"));
            s.audit(&format!("started VM process of {name} (pid {pid})"));
        });
    }
}
