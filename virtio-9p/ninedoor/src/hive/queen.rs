//! `/queen/ctl` and `/queen/lifecycle/ctl`: spawn, kill, default budget,
//! bind, mount and lifecycle commands, plus running VMM effects outside the
//! lock and recording their outcome.
//!
//! Effects and records:
//! - **spawn**: under the lock the id is allocated (never reused), the
//!   worker's record and `/worker/<id>/` nodes are created in state
//!   `Spawning` (so the new VM may already attach) and a GPU is reserved;
//!   unlocked, `spawn_worker` runs; then either the worker becomes
//!   `Running` (and a GPU spawn's lease becomes ACTIVE) or, if the effect
//!   failed, everything is rolled back — no record, no nodes, no
//!   reservation, the id revoked — and the write fails with `EIO`.
//! - **kill**: under the lock the worker is revoked (its sessions fail from
//!   now on), its lease released; unlocked, `stop_worker` then
//!   `detach_gpu` run; a confirmed stop removes the record and nodes. A
//!   failed stop leaves the record `StopFailed` (visible to the queen) and
//!   fails the write with `EIO`; `kill` again retries. A failed detach
//!   leaves the GPU "detach-pending" (not leasable); `RELEASE` or `kill`
//!   retries it.
//! - **bind** `{"from":F,"to":T}`: `T`'s parent must exist; `T`'s name must
//!   be free; the new entry names the node at `F` (any kind). Policy keeps
//!   judging the node by its canonical path, so a bind never widens
//!   anyone's rights; binds that would make the namespace cyclic are
//!   `ELOOP`; the alias disappears with its target.
//! - **mount** `{"service":S,"at":T}`: a bind whose source is a built-in
//!   service's root, named by service rather than path: `proc`, `queen`,
//!   `worker`, `log`, `gpu`, `models` (`/gpu/models`), `lifecycle`
//!   (`/proc/lifecycle`). Unknown services are `ENOENT`.

use crate::budget::SpawnBudget;
use crate::ctl::{QueenCommand, SpawnKind, parse_queen_line, split_lines};
use crate::effects::{LeaseSpec, SpawnSpec};
use crate::errno::Errno;
use crate::identity::Role;
use crate::lease::{self, Lease};
use crate::lifecycle::{LifecycleCmd, transition};

use super::Hive;
use super::state::{State, Worker, WorkerState};

/// A command failure: errno and reason (for the audit line).
pub(super) type CmdResult = Result<(), (Errno, String)>;

/// An effect to run outside the lock.
#[derive(Debug)]
pub(super) enum Todo {
    Stop { id: String, reason: String },
    Detach { worker: String, gpu: String },
}

/// Built-in services `mount` can attach.
pub const SERVICES: [(&str, &str); 7] = [
    ("proc", "/proc"),
    ("queen", "/queen"),
    ("worker", "/worker"),
    ("log", "/log"),
    ("gpu", "/gpu"),
    ("models", "/gpu/models"),
    ("lifecycle", "/proc/lifecycle"),
];

fn err(errno: Errno, why: impl Into<String>) -> (Errno, String) {
    (errno, why.into())
}

fn journal(s: &mut State) -> CmdResult {
    s.ensure_journal()
        .map_err(|e| err(e, "audit journal unavailable; refusing unaudited changes"))
}

fn short(line: &str) -> String {
    let mut s: String = line.chars().take(160).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

impl Hive {
    /// Audits a rejected control line and returns its errno.
    pub(super) fn reject(
        &self,
        what: &str,
        n: usize,
        line: &str,
        (errno, why): (Errno, String),
    ) -> Errno {
        self.audit(&format!(
            "{what} line {n} rejected: {why} ({errno}): {}",
            short(line)
        ));
        errno
    }

    pub(super) fn queen_ctl(&self, data: &[u8]) -> Result<(), Errno> {
        let lines = split_lines(data)
            .map_err(|e| self.reject("queen ctl", 1, "", err(Errno::EINVAL, e)))?;
        for (i, line) in lines.iter().enumerate() {
            let cmd = parse_queen_line(line)
                .map_err(|e| self.reject("queen ctl", i + 1, line, err(Errno::EINVAL, e)))?;
            self.queen_cmd(cmd)
                .map_err(|e| self.reject("queen ctl", i + 1, line, e))?;
        }
        Ok(())
    }

    fn queen_cmd(&self, cmd: QueenCommand) -> CmdResult {
        match cmd {
            QueenCommand::Spawn { kind, budget } => self.spawn(kind, budget),
            QueenCommand::Kill(id) => self.kill(&id),
            QueenCommand::Budget(b) => self.with_state(|s| {
                journal(s)?;
                s.default_budget = b;
                let json = serde_json::to_string(&b).unwrap_or_default();
                s.audit(&format!("default spawn budget set to {json}"));
                Ok(())
            }),
            QueenCommand::Bind(b) => self.with_state(|s| {
                journal(s)?;
                s.bind(&b.from, &b.to)?;
                s.audit(&format!("bind {} -> {}", b.from, b.to));
                Ok(())
            }),
            QueenCommand::Mount(m) => self.with_state(|s| {
                journal(s)?;
                let (_, root) = SERVICES
                    .iter()
                    .find(|(name, _)| *name == m.service)
                    .ok_or_else(|| err(Errno::ENOENT, format!("no service {:?}", m.service)))?;
                s.bind(root, &m.at)?;
                s.audit(&format!("mount {} ({root}) at {}", m.service, m.at));
                Ok(())
            }),
        }
    }

    fn spawn(&self, kind: SpawnKind, budget: Option<SpawnBudget>) -> CmdResult {
        let spec = self.with_state(|s| -> Result<SpawnSpec, (Errno, String)> {
            journal(s)?;
            if !s.lifecycle.state.accepts_new_work() {
                return Err(err(
                    Errno::EAGAIN,
                    format!("hive is {}: no new work", s.lifecycle.state),
                ));
            }
            let budget = budget.unwrap_or_default().or(s.default_budget);
            let (role, ticks, lease) = match kind {
                SpawnKind::Heartbeat { ticks } => (Role::WorkerHeartbeat, ticks, None),
                SpawnKind::Gpu(req) => {
                    let gpu = s
                        .gpus
                        .get(&req.gpu_id)
                        .ok_or_else(|| err(Errno::ENOENT, format!("no gpu {:?}", req.gpu_id)))?;
                    if gpu.busy() {
                        return Err(err(Errno::EBUSY, format!("{} is not free", req.gpu_id)));
                    }
                    let ttl = req.ttl_s.unwrap_or(s.spec.default_lease_ttl_s);
                    lease::validate(&gpu.spec, req.mem_mb, req.streams, ttl)
                        .map_err(|e| err(Errno::EINVAL, e))?;
                    let spec = LeaseSpec {
                        gpu_id: req.gpu_id,
                        mem_mb: req.mem_mb,
                        streams: req.streams,
                        priority: req.priority.unwrap_or(0),
                        ttl_s: ttl,
                    };
                    (Role::WorkerGpu, None, Some(spec))
                }
            };
            let n = s.next_worker;
            s.next_worker = n
                .checked_add(1)
                .ok_or_else(|| err(Errno::EAGAIN, "worker ids exhausted"))?;
            let id = format!("worker-{n}");
            let dir = s
                .make_worker_nodes(&id)
                .map_err(|e| err(e, "cannot create worker nodes"))?;
            if let Some(l) = &lease
                && let Some(g) = s.gpus.get_mut(&l.gpu_id)
            {
                g.reserved_for = Some(id.clone());
            }
            s.workers.insert(
                id.clone(),
                Worker {
                    role,
                    state: WorkerState::Spawning,
                    budget,
                    dir,
                    lease_gpu: None,
                },
            );
            let spec = SpawnSpec {
                id,
                role,
                ticks,
                budget,
                lease,
            };
            s.audit(&format!("spawning {}", describe(&spec)));
            Ok(spec)
        })?;

        let result = self.effects.spawn_worker(&spec);

        self.with_state(|s| match result {
            Ok(()) => {
                s.commit_spawn(&spec);
                s.audit(&format!("spawned {}", describe(&spec)));
                Ok(())
            }
            Err(e) => {
                if let Some(l) = &spec.lease
                    && let Some(g) = s.gpus.get_mut(&l.gpu_id)
                    && g.reserved_for.as_deref() == Some(spec.id.as_str())
                {
                    g.reserved_for = None;
                }
                s.remove_worker(&spec.id);
                s.revoked.insert(spec.id.clone(), "spawn failed".into());
                s.revocation_epoch += 1;
                s.audit(&format!("spawn {} failed: {e}", spec.id));
                Err(err(Errno::EIO, format!("spawn failed: {e}")))
            }
        })
    }

    fn kill(&self, id: &str) -> CmdResult {
        let todo = self.with_state(|s| -> Result<Vec<Todo>, (Errno, String)> {
            journal(s)?;
            let w = s
                .workers
                .get_mut(id)
                .ok_or_else(|| err(Errno::ENOENT, format!("no worker {id}")))?;
            match w.state {
                WorkerState::Spawning => return Err(err(Errno::EBUSY, "worker is being spawned")),
                WorkerState::Stopping => {
                    return Err(err(Errno::EBUSY, "worker is already being stopped"));
                }
                WorkerState::Running => {
                    w.state = WorkerState::Stopping;
                    s.audit(&format!("killed {id}"));
                    s.revoke(id, "killed by queen");
                    s.release_lease_of(id, "worker killed");
                }
                WorkerState::StopFailed => {
                    w.state = WorkerState::Stopping;
                    s.audit(&format!("retrying stop of {id}"));
                }
            }
            let mut todo = vec![Todo::Stop {
                id: id.to_owned(),
                reason: "killed by queen".into(),
            }];
            todo.extend(s.detaches_of(id));
            Ok(todo)
        })?;
        self.run_effects(todo)
    }

    /// Runs effects in order, recording each outcome; the first failure is
    /// returned (all are attempted and audited).
    pub(super) fn run_effects(&self, todo: Vec<Todo>) -> CmdResult {
        let mut first_err = None;
        for t in todo {
            let failed = match t {
                Todo::Stop { id, reason } => {
                    let r = self.effects.stop_worker(&id, &reason);
                    self.with_state(|s| s.finish_stop(&id, r))
                }
                Todo::Detach { worker, gpu } => {
                    let r = self.effects.detach_gpu(&worker, &gpu);
                    self.with_state(|s| s.finish_detach(&gpu, &worker, r))
                }
            };
            if let Some(e) = failed {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(err(Errno::EIO, e)),
            None => Ok(()),
        }
    }

    pub(super) fn lifecycle_ctl(&self, data: &[u8]) -> Result<(), Errno> {
        let lines = split_lines(data)
            .map_err(|e| self.reject("lifecycle ctl", 1, "", err(Errno::EINVAL, e)))?;
        for (i, line) in lines.iter().enumerate() {
            let cmd = LifecycleCmd::parse(line).ok_or_else(|| {
                self.reject(
                    "lifecycle ctl",
                    i + 1,
                    line,
                    err(Errno::EINVAL, "expected cordon|drain|quiesce|resume|reset"),
                )
            })?;
            self.with_state(|s| {
                journal(s)?;
                let from = s.lifecycle.state;
                let to = transition(from, cmd, s.outstanding()).map_err(|e| {
                    let why = if e == Errno::EBUSY {
                        format!(
                            "cannot {} while workers or leases are outstanding",
                            cmd.as_str()
                        )
                    } else {
                        format!("cannot {} from {from}", cmd.as_str())
                    };
                    err(e, why)
                })?;
                s.set_lifecycle(to, &format!("{} by queen", cmd.as_str()));
                Ok(())
            })
            .map_err(|e| self.reject("lifecycle ctl", i + 1, line, e))?;
        }
        Ok(())
    }
}

/// `worker-N role=… [ticks=…] budget=… [gpu=… mem=… streams=… priority=… ttl=…s]`.
fn describe(spec: &SpawnSpec) -> String {
    let mut d = format!("{} role={}", spec.id, spec.role);
    if let Some(t) = spec.ticks {
        d.push_str(&format!(" ticks={t}"));
    }
    d.push_str(&format!(
        " budget={}",
        serde_json::to_string(&spec.budget).unwrap_or_default()
    ));
    if let Some(l) = &spec.lease {
        d.push_str(&format!(
            " gpu={} mem={} streams={} priority={} ttl={}s",
            l.gpu_id, l.mem_mb, l.streams, l.priority, l.ttl_s
        ));
    }
    d
}

impl State {
    /// Makes a spawned worker running and its GPU lease active.
    fn commit_spawn(&mut self, spec: &SpawnSpec) {
        let now = self.now_ms;
        if let Some(w) = self.workers.get_mut(&spec.id) {
            w.state = WorkerState::Running;
        }
        let Some(l) = &spec.lease else {
            return;
        };
        let Some(g) = self.gpus.get_mut(&l.gpu_id) else {
            return;
        };
        g.reserved_for = None;
        let lease = Lease {
            gpu_id: l.gpu_id.clone(),
            worker: spec.id.clone(),
            mem_mb: l.mem_mb,
            streams: l.streams,
            priority: l.priority,
            ttl_s: l.ttl_s,
            issued_at_ms: now,
            expires_at_ms: now.saturating_add(l.ttl_s.saturating_mul(1000)),
        };
        let line = lease.active_line();
        let file = g.lease_file;
        g.lease = Some(lease);
        if let Some(w) = self.workers.get_mut(&spec.id) {
            w.lease_gpu = Some(l.gpu_id.clone());
        }
        let _ = self.append_stream(file, line.as_bytes());
    }

    /// Detaches still owed to the VMM for `worker`.
    pub(super) fn detaches_of(&self, worker: &str) -> Vec<Todo> {
        self.gpus
            .iter()
            .filter(|(_, g)| g.detach_pending.as_deref() == Some(worker))
            .map(|(id, _)| Todo::Detach {
                worker: worker.to_owned(),
                gpu: id.clone(),
            })
            .collect()
    }

    /// Records a stop outcome; returns the error text on failure.
    fn finish_stop(&mut self, id: &str, r: Result<(), String>) -> Option<String> {
        match r {
            Ok(()) => {
                self.remove_worker(id);
                self.audit(&format!("stopped {id}"));
                None
            }
            Err(e) => {
                if let Some(w) = self.workers.get_mut(id) {
                    w.state = WorkerState::StopFailed;
                }
                let msg = format!("stop {id} failed: {e}");
                self.audit(&msg);
                Some(msg)
            }
        }
    }

    /// Records a detach outcome; returns the error text on failure.
    fn finish_detach(&mut self, gpu: &str, worker: &str, r: Result<(), String>) -> Option<String> {
        match r {
            Ok(()) => {
                if let Some(g) = self.gpus.get_mut(gpu)
                    && g.detach_pending.as_deref() == Some(worker)
                {
                    g.detach_pending = None;
                }
                self.dirty = true;
                self.audit(&format!("detached {gpu} from {worker}"));
                None
            }
            Err(e) => {
                let msg = format!("detach {gpu} from {worker} failed: {e}");
                self.audit(&msg);
                Some(msg)
            }
        }
    }

    /// Adds an alias at absolute path `to` for the node at absolute `from`.
    fn bind(&mut self, from: &str, to: &str) -> CmdResult {
        if !from.starts_with('/') || !to.starts_with('/') {
            return Err(err(Errno::EINVAL, "paths must be absolute"));
        }
        let target = self
            .tree
            .resolve(from)
            .map_err(|e| err(e, format!("cannot resolve {from}")))?;
        let to_trim = to.trim_end_matches('/');
        let (parent, name) = to_trim
            .rsplit_once('/')
            .filter(|(_, n)| !n.is_empty())
            .ok_or_else(|| err(Errno::EINVAL, "cannot bind over /"))?;
        let dir = self
            .tree
            .resolve(if parent.is_empty() { "/" } else { parent })
            .map_err(|e| err(e, format!("no directory {parent:?}")))?;
        self.tree
            .alias(dir, name, target)
            .map_err(|e| err(e, format!("cannot create {to}")))?;
        self.dirty = true;
        Ok(())
    }
}
