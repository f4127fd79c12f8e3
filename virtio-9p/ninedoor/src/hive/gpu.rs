//! `/gpu/<id>/ctl` (LEASE, RELEASE), lease TTL enforcement, GPU job
//! submission and the active-model pointer.
//!
//! TTL expiry does what a kill does: the lease is RELEASED ("ttl expired"),
//! the holder is revoked (`revoked worker-N: lease on gpuX expired`), then,
//! outside the lock, the VMM is asked to stop the worker and detach the GPU.
//! LEASE has no effect call: the `Effects` contract has no attach; a worker
//! gets its partition at spawn (`{"spawn":"gpu",...}`) and the lease record
//! governs what it may see and how long it may keep it.

use crate::ctl::split_lines;
use crate::errno::Errno;
use crate::identity::Role;
use crate::job::validate_job_line;
use crate::lease::{self, GpuCommand, Lease, parse_gpu_line};
use crate::node::NodeId;

use super::Hive;
use super::queen::{CmdResult, Todo};
use super::state::{State, WorkerState};

fn err(errno: Errno, why: impl Into<String>) -> (Errno, String) {
    (errno, why.into())
}

impl Hive {
    /// Enforces lease TTLs as of `now_ms` (see the module docs); returns how
    /// many leases expired. Effect failures are audited and leave the same
    /// retryable records as a failed kill.
    pub fn expire(&self, now_ms: u64) -> usize {
        let (count, todo) = self.with_state(|s| {
            // Records are stamped with the time expiry was decided at.
            s.now_ms = now_ms;
            let expired: Vec<(String, String, u64)> = s
                .gpus
                .iter()
                .filter_map(|(id, g)| {
                    let l = g.lease.as_ref()?;
                    (l.expires_at_ms <= now_ms).then(|| (id.clone(), l.worker.clone(), l.ttl_s))
                })
                .collect();
            let mut todo = Vec::new();
            for (gpu, worker, ttl) in &expired {
                s.audit(&format!("lease {gpu} of {worker} expired (ttl {ttl}s)"));
                s.release_lease(gpu, "ttl expired");
                let reason = format!("lease on {gpu} expired");
                if let Some(w) = s.workers.get_mut(worker)
                    && matches!(w.state, WorkerState::Running | WorkerState::Spawning)
                {
                    w.state = WorkerState::Stopping;
                    s.revoke(worker, &reason);
                    todo.push(Todo::Stop {
                        id: worker.clone(),
                        reason,
                    });
                }
                todo.push(Todo::Detach {
                    worker: worker.clone(),
                    gpu: gpu.clone(),
                });
            }
            (expired.len(), todo)
        });
        if !todo.is_empty() {
            // Failures are audited by run_effects; nobody to return them to.
            let _ = self.run_effects(todo);
        }
        count
    }

    pub(super) fn gpu_ctl(&self, gpu: &str, data: &[u8]) -> Result<(), Errno> {
        let what = format!("{gpu} ctl");
        let lines =
            split_lines(data).map_err(|e| self.reject(&what, 1, "", err(Errno::EINVAL, e)))?;
        for (i, line) in lines.iter().enumerate() {
            let cmd = parse_gpu_line(line)
                .map_err(|e| self.reject(&what, i + 1, line, err(Errno::EINVAL, e)))?;
            self.gpu_cmd(gpu, cmd)
                .map_err(|e| self.reject(&what, i + 1, line, e))?;
        }
        Ok(())
    }

    fn gpu_cmd(&self, gpu: &str, cmd: GpuCommand) -> CmdResult {
        match cmd {
            GpuCommand::Lease {
                worker,
                mem_mb,
                streams,
                priority,
                ttl_s,
            } => self.with_state(|s| s.grant_lease(gpu, &worker, mem_mb, streams, priority, ttl_s)),
            GpuCommand::Release { worker, reason } => {
                let todo = self.with_state(|s| -> Result<Vec<Todo>, (Errno, String)> {
                    s.ensure_journal()
                        .map_err(|e| err(e, "audit journal unavailable"))?;
                    let g = s
                        .gpus
                        .get(gpu)
                        .ok_or_else(|| err(Errno::ENOENT, format!("no gpu {gpu}")))?;
                    if g.lease.as_ref().is_some_and(|l| l.worker == worker) {
                        let reason = if reason.is_empty() {
                            "released by queen".to_owned()
                        } else {
                            reason
                        };
                        s.release_lease(gpu, &reason);
                    } else if g.detach_pending.as_deref() == Some(worker.as_str()) {
                        s.audit(&format!("retrying detach of {gpu} from {worker}"));
                    } else {
                        return Err(err(
                            Errno::ENOENT,
                            format!("{worker} holds no lease on {gpu}"),
                        ));
                    }
                    Ok(vec![Todo::Detach {
                        worker,
                        gpu: gpu.to_owned(),
                    }])
                })?;
                self.run_effects(todo)
            }
        }
    }
}

impl State {
    fn grant_lease(
        &mut self,
        gpu: &str,
        worker: &str,
        mem_mb: u64,
        streams: u32,
        priority: u32,
        ttl_s: Option<u64>,
    ) -> CmdResult {
        self.ensure_journal()
            .map_err(|e| err(e, "audit journal unavailable"))?;
        if !self.lifecycle.state.accepts_new_work() {
            return Err(err(
                Errno::EAGAIN,
                format!("hive is {}: no new leases", self.lifecycle.state),
            ));
        }
        let w = self
            .workers
            .get(worker)
            .ok_or_else(|| err(Errno::ENOENT, format!("no worker {worker}")))?;
        match w.state {
            WorkerState::Running => {}
            WorkerState::Spawning => return Err(err(Errno::EBUSY, "worker is being spawned")),
            WorkerState::Stopping | WorkerState::StopFailed => {
                return Err(err(Errno::ENOENT, format!("{worker} is revoked")));
            }
        }
        if w.role != Role::WorkerGpu {
            return Err(err(Errno::EINVAL, format!("{worker} is not a gpu worker")));
        }
        if let Some(other) = &w.lease_gpu {
            return Err(err(
                Errno::EBUSY,
                format!("{worker} already leases {other}"),
            ));
        }
        let g = self
            .gpus
            .get(gpu)
            .ok_or_else(|| err(Errno::ENOENT, format!("no gpu {gpu}")))?;
        if let Some(l) = &g.lease {
            return Err(err(
                Errno::EBUSY,
                format!("{gpu} already leased to {}", l.worker),
            ));
        }
        if g.busy() {
            return Err(err(Errno::EBUSY, format!("{gpu} is not free")));
        }
        let ttl = ttl_s.unwrap_or(self.spec.default_lease_ttl_s);
        lease::validate(&g.spec, mem_mb, streams, ttl).map_err(|e| err(Errno::EINVAL, e))?;
        let now = self.now_ms;
        let lease = Lease {
            gpu_id: gpu.to_owned(),
            worker: worker.to_owned(),
            mem_mb,
            streams,
            priority,
            ttl_s: ttl,
            issued_at_ms: now,
            expires_at_ms: now.saturating_add(ttl.saturating_mul(1000)),
        };
        let line = lease.active_line();
        let file = g.lease_file;
        if let Some(g) = self.gpus.get_mut(gpu) {
            g.lease = Some(lease);
        }
        if let Some(w) = self.workers.get_mut(worker) {
            w.lease_gpu = Some(gpu.to_owned());
        }
        let _ = self.append_stream(file, line.as_bytes());
        self.audit(&format!(
            "leased {gpu} to {worker} mem={mem_mb} streams={streams} priority={priority} ttl={ttl}s"
        ));
        Ok(())
    }
}

/// Appends validated pointer lines to `/gpu/models/active`.
pub(super) fn write_models_active(s: &mut State, node: NodeId, data: &[u8]) -> Result<(), Errno> {
    let lines = split_lines(data).map_err(|_| Errno::EINVAL)?;
    for line in lines {
        let id = match s.models.check_pointer(line) {
            Ok(id) => id.to_owned(),
            Err(why) => {
                s.audit(&format!("model pointer rejected: {why}"));
                return Err(Errno::EINVAL);
            }
        };
        s.ensure_journal()?;
        s.models.set_active(&id).map_err(|_| Errno::EINVAL)?;
        s.append_stream(node, format!("{id}\n").as_bytes())?;
        s.audit(&format!("active model set to {id}"));
    }
    Ok(())
}

/// Appends validated job descriptors to `/gpu/<id>/job` (the lifecycle
/// gate was checked by the caller).
pub(super) fn write_jobs(s: &mut State, node: NodeId, gpu: &str, data: &[u8]) -> Result<(), Errno> {
    let lines = split_lines(data).map_err(|_| Errno::EINVAL)?;
    for line in lines {
        let job = validate_job_line(line).map_err(|_| Errno::EINVAL)?;
        let mut stored = job.line;
        stored.push('\n');
        s.append_stream(node, stored.as_bytes())?;
        if let Some(g) = s.gpus.get_mut(gpu) {
            g.jobs += 1;
        }
    }
    Ok(())
}
