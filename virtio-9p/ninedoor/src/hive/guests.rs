//! Guests the supervisor boots itself: workers declared in hive.toml (not
//! spawned by a queen) and the end of any worker's VM process.
//!
//! A declared worker gets the same nodes and state a spawned one would, at
//! once RUNNING, and later spawns never reuse its number. When a worker's VM
//! process ends without a `kill` (the guest powered off, crashed, or its VMM
//! died), its sessions are revoked, its lease is released and its nodes go
//! away, with a line in `/proc/boot` and the audit log; the hive keeps
//! running.

use crate::errno::Errno;
use crate::identity::{Role, parse_worker_id};

use super::Hive;
use super::state::{Worker, WorkerState};

impl Hive {
    /// Registers a hive.toml worker `id` (`worker-N`) with `role`.
    pub fn register_worker(&self, id: &str, role: Role) -> Result<(), Errno> {
        if !matches!(role, Role::WorkerHeartbeat | Role::WorkerGpu) {
            return Err(Errno::EINVAL);
        }
        let n = parse_worker_id(id).ok_or(Errno::EINVAL)?;
        self.with_state(|s| {
            if s.workers.contains_key(id) {
                return Err(Errno::EEXIST);
            }
            let dir = s.make_worker_nodes(id)?;
            let budget = s.default_budget;
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
            s.audit(&format!("registered {id} ({role}) from hive.toml"));
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
