//! The hive's state behind its one lock: the node tree, worker and GPU
//! records, lifecycle, models, and the audit journal with its in-memory
//! view. Everything here runs with the lock held and never blocks on
//! anything but the journal's own `fsync`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::audit::{AuditJournal, escape};
use crate::budget::SpawnBudget;
use crate::config::{GpuSpec, HiveSpec};
use crate::errno::Errno;
use crate::identity::{Identity, Role};
use crate::lease::Lease;
use crate::lifecycle::{Lifecycle, LifecycleState};
use crate::models::Models;
use crate::node::{NodeAttr, NodeId, NodeKind, Qid, S_IFDIR, S_IFREG};
use crate::policy::{self, Access};
use crate::ring::{ByteRing, Overflow};
use crate::tree::{Dir, MaybeDir, Tree};

/// Generated, read-only text sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TextSource {
    Boot,
    LifecycleState,
    LifecycleReason,
    LifecycleSince,
    Sessions,
    GpuInfo(String),
    GpuStatus(String),
    Manifest(String),
    TelemetrySchema,
}

/// What an append-only stream is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamClass {
    Telemetry,
    Audit,
    Console,
    ModelsActive,
    Lease,
    Job(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Stream {
    pub ring: ByteRing,
    pub class: StreamClass,
    /// `dropped_total / capacity` when a wrap was last audited.
    pub wraps_logged: u64,
}

/// Control sinks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CtlTarget {
    Queen,
    Lifecycle,
    Gpu(String),
}

#[derive(Debug)]
pub(crate) enum Content {
    Dir(Dir),
    Text(TextSource),
    Stream(Stream),
    Ctl(CtlTarget),
}

impl MaybeDir for Content {
    fn dir(&self) -> Option<&Dir> {
        match self {
            Content::Dir(d) => Some(d),
            _ => None,
        }
    }
    fn dir_mut(&mut self) -> Option<&mut Dir> {
        match self {
            Content::Dir(d) => Some(d),
            _ => None,
        }
    }
    fn new_dir() -> Self {
        Content::Dir(Dir::default())
    }
}

impl Content {
    pub fn kind(&self) -> NodeKind {
        match self {
            Content::Dir(_) => NodeKind::Directory,
            Content::Text(_) => NodeKind::Text,
            Content::Ctl(_) => NodeKind::Control,
            Content::Stream(s) => match s.class {
                StreamClass::Telemetry => NodeKind::TelemetryRing,
                StreamClass::Lease | StreamClass::Job(_) => NodeKind::JsonLines,
                StreamClass::Audit | StreamClass::Console | StreamClass::ModelsActive => {
                    NodeKind::AppendLog
                }
            },
        }
    }

    /// Permission bits (see `node` docs: they describe the node).
    fn perm(&self) -> u32 {
        match self {
            Content::Dir(_) => 0o555,
            Content::Text(_) => 0o444,
            Content::Ctl(_) => 0o200,
            Content::Stream(s) => match s.class {
                StreamClass::Telemetry | StreamClass::ModelsActive | StreamClass::Job(_) => 0o644,
                StreamClass::Audit | StreamClass::Console | StreamClass::Lease => 0o444,
            },
        }
    }
}

/// A worker's life stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    /// The VMM is starting it; it may already attach. Rolled back if the
    /// spawn effect fails.
    Spawning,
    /// Running.
    Running,
    /// Revoked; the VMM is stopping it.
    Stopping,
    /// Revoked; stopping failed. `kill` retries.
    StopFailed,
}

#[derive(Clone, Debug)]
pub(crate) struct Worker {
    pub role: Role,
    pub state: WorkerState,
    pub budget: SpawnBudget,
    pub dir: NodeId,
    pub lease_gpu: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Gpu {
    pub spec: GpuSpec,
    pub lease: Option<Lease>,
    /// A GPU spawn in progress holds the GPU for its worker.
    pub reserved_for: Option<String>,
    /// Released, but the VMM has not confirmed the detach yet.
    pub detach_pending: Option<String>,
    pub jobs: u64,
    pub lease_file: NodeId,
}

impl Gpu {
    pub fn busy(&self) -> bool {
        self.lease.is_some() || self.reserved_for.is_some() || self.detach_pending.is_some()
    }
}

/// Fixed nodes the hive refers to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fixed {
    pub worker_dir: NodeId,
    pub log_dir: NodeId,
    pub queen_log: NodeId,
}

/// Pending audit records kept in memory while the journal fails.
const MAX_PENDING: usize = 4096;
/// Supervisor boot lines kept for `/proc/boot`.
const MAX_BOOT_LINES: usize = 256;

#[derive(Debug)]
pub(crate) struct State {
    pub tree: Tree<Content>,
    pub fixed: Fixed,
    pub spec: HiveSpec,
    pub started_ms: u64,
    pub lifecycle: Lifecycle,
    pub workers: BTreeMap<String, Worker>,
    pub next_worker: u64,
    pub gpus: BTreeMap<String, Gpu>,
    pub models: Models,
    pub default_budget: SpawnBudget,
    pub journal: AuditJournal,
    pub pending: VecDeque<String>,
    pub lost: u64,
    pub journal_error: Option<String>,
    pub boot_lines: VecDeque<String>,
    pub consoles: HashMap<String, NodeId>,
    /// Revocation reasons by worker id (ids are never reused).
    pub revoked: HashMap<String, String>,
    pub revocation_epoch: u64,
    /// Set when something a waiter may care about changed.
    pub dirty: bool,
    pub now_ms: u64,
}

impl State {
    /// Appends to a stream node, keeping mtime and waiters in step.
    pub fn append_stream(&mut self, id: NodeId, data: &[u8]) -> Result<u64, Errno> {
        let now = self.now_ms;
        let node = self.tree.get_mut(id).ok_or(Errno::ENOENT)?;
        let Content::Stream(s) = &mut node.content else {
            return Err(Errno::EINVAL);
        };
        let a = s.ring.append(data).map_err(|()| Errno::EFBIG)?;
        node.mtime_ms = now;
        self.dirty = true;
        Ok(a.dropped)
    }

    /// Records an audit line: the in-memory view always, the journal when it
    /// works (otherwise the record waits in `pending` and the hive is
    /// degraded). Returns whether the record is durable.
    pub fn audit(&mut self, text: &str) -> bool {
        let mut line = escape(text);
        line.push('\n');
        let view = self.fixed.queen_log;
        let _ = self.append_stream(view, line.as_bytes());
        self.flush_pending();
        if !self.pending.is_empty() {
            self.keep_pending(text);
            return false;
        }
        match self.journal.append(text) {
            Ok(_) => true,
            Err(e) => {
                self.keep_pending(text);
                self.journal_failed(&e.to_string());
                false
            }
        }
    }

    fn keep_pending(&mut self, text: &str) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            self.lost += 1;
        }
        self.pending.push_back(text.to_owned());
    }

    fn journal_failed(&mut self, err: &str) {
        let first = self.journal_error.is_none();
        self.journal_error = Some(err.to_owned());
        if first {
            let msg = format!("audit journal write failed: {err}");
            let mut line = escape(&msg);
            line.push('\n');
            let view = self.fixed.queen_log;
            let _ = self.append_stream(view, line.as_bytes());
            self.degrade(&msg);
        }
    }

    /// Moves ONLINE to DEGRADED (other states keep their state but take the
    /// reason).
    pub fn degrade(&mut self, reason: &str) {
        let now = self.now_ms;
        if self.lifecycle.state == LifecycleState::Online {
            self.lifecycle = Lifecycle {
                state: LifecycleState::Degraded,
                reason: reason.to_owned(),
                since_ms: now,
            };
        } else {
            self.lifecycle.reason = reason.to_owned();
        }
        self.dirty = true;
    }

    /// Tries to write records that failed earlier.
    pub fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        while let Some(text) = self.pending.front() {
            match self.journal.append(text) {
                Ok(_) => {
                    self.pending.pop_front();
                }
                Err(e) => {
                    self.journal_error = Some(e.to_string());
                    return;
                }
            }
        }
        let msg = format!(
            "audit journal recovered after failure ({}); {} record(s) lost",
            self.journal_error.take().unwrap_or_default(),
            std::mem::take(&mut self.lost)
        );
        if self.journal.append(&msg).is_err() {
            self.keep_pending(&msg);
            return;
        }
        let mut line = escape(&msg);
        line.push('\n');
        let view = self.fixed.queen_log;
        let _ = self.append_stream(view, line.as_bytes());
    }

    /// Fails with `EIO` while audit records cannot be made durable: no state
    /// change may happen unaudited.
    pub fn ensure_journal(&mut self) -> Result<(), Errno> {
        self.flush_pending();
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(Errno::EIO)
        }
    }

    pub fn boot_line(&mut self, text: &str) {
        if self.boot_lines.len() >= MAX_BOOT_LINES {
            self.boot_lines.pop_front();
        }
        self.boot_lines.push_back(escape(text));
    }

    /// The GPU a worker identity may currently see: its lease, or the GPU
    /// reserved for it while it is being spawned.
    pub fn leased_gpu(&self, identity: &Identity) -> Option<&str> {
        let w = identity.worker()?;
        if identity.role() != Role::WorkerGpu {
            return None;
        }
        if let Some(g) = self.workers.get(w).and_then(|r| r.lease_gpu.as_deref()) {
            return Some(g);
        }
        self.gpus
            .iter()
            .find(|(_, g)| g.reserved_for.as_deref() == Some(w))
            .map(|(id, _)| id.as_str())
    }

    /// Whether `identity` is live: the queen, or a worker whose record is
    /// spawning or running with the same role.
    pub fn live(&self, identity: &Identity) -> bool {
        match identity.worker() {
            None => identity.role() == Role::Queen,
            Some(w) => self.workers.get(w).is_some_and(|r| {
                r.role == identity.role()
                    && matches!(r.state, WorkerState::Spawning | WorkerState::Running)
            }),
        }
    }

    /// Revocation check with an audit line on refusal.
    pub fn authorize(&mut self, identity: &Identity, what: &str) -> Result<(), Errno> {
        if self.live(identity) {
            return Ok(());
        }
        let why = identity
            .worker()
            .and_then(|w| self.revoked.get(w).cloned())
            .unwrap_or_else(|| "not a live worker".into());
        self.audit(&format!(
            "denied {identity} {what}: session revoked ({why})"
        ));
        Err(Errno::EKEYREVOKED)
    }

    /// Policy check on a node's canonical path; audits denials.
    pub fn check(&mut self, identity: &Identity, id: NodeId, access: Access) -> Result<(), Errno> {
        let path = self.tree.get(id).ok_or(Errno::ENOENT)?.path.clone();
        let gpu = self.leased_gpu(identity).map(str::to_owned);
        match policy::check(identity, gpu.as_deref(), &path, access) {
            Ok(()) => Ok(()),
            Err(d) => {
                self.audit(&policy::audit_line(identity, access, &path, &d));
                Err(d.errno)
            }
        }
    }

    /// Whether `identity` may see `id` (no audit: used to filter listings).
    pub fn visible(&self, identity: &Identity, id: NodeId) -> bool {
        self.tree
            .get(id)
            .is_some_and(|n| policy::rights(identity, self.leased_gpu(identity), &n.path).see)
    }

    /// Work that blocks drain/quiesce/reset.
    pub fn outstanding(&self) -> bool {
        !self.workers.is_empty() || self.gpus.values().any(Gpu::busy)
    }

    pub fn qid(&self, id: NodeId) -> Option<Qid> {
        let n = self.tree.get(id)?;
        Some(Qid {
            kind: n.content.kind().qid_type(),
            version: 0,
            path: id.raw(),
        })
    }

    /// Attributes; `text_len` is the generated length for text nodes.
    pub fn attr(&self, id: NodeId, text_len: u64) -> Option<NodeAttr> {
        let n = self.tree.get(id)?;
        let kind = n.content.kind();
        let size = match &n.content {
            Content::Dir(_) | Content::Ctl(_) => 0,
            Content::Text(_) => text_len,
            Content::Stream(s) => s.ring.end(),
        };
        let ty = if kind == NodeKind::Directory {
            S_IFDIR
        } else {
            S_IFREG
        };
        Some(NodeAttr {
            qid: self.qid(id)?,
            mode: ty | n.content.perm(),
            size,
            kind,
            mtime_ms: n.mtime_ms,
        })
    }

    /// Creates `/worker/<id>/telemetry`; returns the directory.
    pub fn make_worker_nodes(&mut self, id: &str) -> Result<NodeId, Errno> {
        let now = self.now_ms;
        let dir = self.tree.mkdir(self.fixed.worker_dir, id, now)?;
        let ring = ByteRing::new(self.spec.telemetry_ring_bytes, Overflow::Refuse, false);
        self.tree.add(
            dir,
            "telemetry",
            Content::Stream(Stream {
                ring,
                class: StreamClass::Telemetry,
                wraps_logged: 0,
            }),
            now,
        )?;
        Ok(dir)
    }

    /// Removes a worker's record and nodes.
    pub fn remove_worker(&mut self, id: &str) {
        if let Some(w) = self.workers.remove(id) {
            self.tree.remove(w.dir);
            self.dirty = true;
        }
    }

    /// Revokes a running or spawning worker: its sessions fail from now on.
    pub fn revoke(&mut self, id: &str, reason: &str) {
        self.revoked.insert(id.to_owned(), reason.to_owned());
        self.revocation_epoch += 1;
        self.dirty = true;
        self.audit(&format!("revoked {id}: {reason}"));
    }

    /// Ends a worker's lease (if any). Returns the GPU id.
    pub fn release_lease_of(&mut self, worker: &str, reason: &str) -> Option<String> {
        let gpu_id = self.workers.get(worker)?.lease_gpu.clone()?;
        self.release_lease(&gpu_id, reason)?;
        Some(gpu_id)
    }

    /// Ends a GPU's lease: RELEASED line, audit line, GPU left
    /// detach-pending until the VMM confirms. Returns the former holder.
    pub fn release_lease(&mut self, gpu_id: &str, reason: &str) -> Option<String> {
        let now = self.now_ms;
        let gpu = self.gpus.get_mut(gpu_id)?;
        let lease = gpu.lease.take()?;
        gpu.detach_pending = Some(lease.worker.clone());
        let file = gpu.lease_file;
        if let Some(w) = self.workers.get_mut(&lease.worker) {
            w.lease_gpu = None;
        }
        let line = lease.released_line(now, reason);
        let _ = self.append_stream(file, line.as_bytes());
        self.audit(&format!(
            "released {gpu_id} from {}: {reason}",
            lease.worker
        ));
        Some(lease.worker)
    }
}
