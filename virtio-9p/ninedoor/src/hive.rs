//! The namespace as state plus operations, with no 9P framing: what the
//! session layer calls after it has verified who is asking.
//!
//! # Why this shape
//! The session layer (fids, tags, flush, readdir packing) and the transports
//! are written separately on top of this API. Everything that decides —
//! visibility, permissions, lifecycle gates, leases, revocation, audit —
//! lives here, so every transport gets the same answers.
//!
//! # Locking
//! One `Mutex` guards all state; no operation holds it while calling out:
//! VMM [`Effects`] and the session layer's [`SessionStats`] are called with
//! the lock released, and blocking reads wait on a `Condvar` (which releases
//! the lock) in short slices. Control writes that need effects run in three
//! steps: decide and record under the lock, call the effect unlocked, then
//! record the outcome under the lock.
//!
//! # Semantics the session layer relies on
//! - Handles are [`NodeId`]s (also `qid.path`), never reused. A handle whose
//!   node was removed (a killed worker's telemetry) gets `ENOENT`.
//! - Policy is re-checked on every read and write, not only at open: an open
//!   handle never outlives its holder's rights (a released lease hides the
//!   GPU from its former holder immediately).
//! - Revoked sessions: every identity-taking call fails with `EKEYREVOKED`
//!   once the worker was killed or its lease expired; [`Hive::check_session`]
//!   is the cheap per-request check, [`Hive::revocation_epoch`] lets a
//!   session skip it while nothing was revoked.
//! - Reads of append-only nodes at (or past) the end return
//!   [`ReadResult::WouldBlock`]; the session layer answers 0 bytes (EOF, what
//!   `cat` needs) or waits with [`Hive::wait_for_growth`] (what `tail`
//!   needs). Reads below a ring's retained base are `ERANGE`.
//! - Writes to append-only nodes must be at the current end (the `size`
//!   attribute) or at offset `u64::MAX`, else `ESPIPE`; a session layer that
//!   sees `O_APPEND` in Tlopen should pass `u64::MAX`. Truncation is ignored
//!   on append-only nodes and control sinks.
//! - Control sinks: each line of a write is one command; a failing line fails
//!   the whole write with its errno and stops later lines (earlier lines
//!   stay applied). Success returns the full count.
//! - Audit failures: when the journal cannot be written, the hive goes
//!   DEGRADED, keeps the records in memory, and refuses every state-changing
//!   command with `EIO` until the journal accepts them again.

// Construction (tree, journal resume), the supervisor's API, the control
// languages' handlers, generated text, and the locked state.
mod build;
mod gpu;
mod guests;
mod queen;
mod render;
mod state;
mod supervisor;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::audit::AuditError;
use crate::budget::{BudgetOp, SessionBudget, Ticket};
use crate::clock::Clock;
use crate::config::{Secrets, SpecError};
use crate::effects::Effects;
use crate::errno::Errno;
use crate::identity::{Identity, Role};
use crate::lifecycle::{Lifecycle, LifecycleState};
use crate::node::{COOKIE_DOT, COOKIE_DOTDOT, ListEntry, NodeAttr, NodeId, NodeKind};
use crate::policy::Access;
use crate::ring::RingRead;
use crate::tree::check_name;

pub use state::WorkerState;
use state::{Content, CtlTarget, State, StreamClass, TextSource};

/// Longest single write accepted by any node.
pub const MAX_WRITE: usize = 1024 * 1024;
/// Longest slice a blocked read sleeps before re-checking its cancel flag.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Renders `/proc/9p/sessions`; implemented by the session layer. Called
/// without any hive lock held, so it may take its own locks.
pub trait SessionStats: Send + Sync {
    /// The file's whole text.
    fn render(&self) -> String;
}

/// Hive construction errors.
#[derive(Debug, thiserror::Error)]
pub enum HiveError {
    /// The spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The audit journal cannot be opened or does not verify.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// How a node is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// `O_RDONLY`.
    Read,
    /// `O_WRONLY`.
    Write,
    /// `O_RDWR` (needs both rights).
    ReadWrite,
}

impl OpenMode {
    fn reads(self) -> bool {
        matches!(self, OpenMode::Read | OpenMode::ReadWrite)
    }
    fn writes(self) -> bool {
        matches!(self, OpenMode::Write | OpenMode::ReadWrite)
    }
}

/// An open node. Generated text is snapshotted at open, so a reader that
/// splits its reads sees one consistent text.
#[derive(Clone)]
pub struct OpenFile {
    node: NodeId,
    kind: NodeKind,
    mode: OpenMode,
    snapshot: Option<Arc<[u8]>>,
}

impl fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenFile")
            .field("node", &self.node)
            .field("kind", &self.kind)
            .field("mode", &self.mode)
            .field("snapshot_len", &self.snapshot.as_ref().map(|s| s.len()))
            .finish()
    }
}

impl OpenFile {
    /// The node.
    #[must_use]
    pub fn node(&self) -> NodeId {
        self.node
    }
    /// Its kind.
    #[must_use]
    pub fn kind(&self) -> NodeKind {
        self.kind
    }
    /// The mode it was opened with.
    #[must_use]
    pub fn mode(&self) -> OpenMode {
        self.mode
    }
}

/// Result of a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// Bytes (empty = end of a non-append-only file).
    Data(Vec<u8>),
    /// Nothing at this offset of an append-only node yet.
    WouldBlock,
}

/// Result of [`Hive::wait_for_growth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitResult {
    /// The node's end moved past `known_len` (or it is not append-only).
    Grew,
    /// The deadline passed.
    TimedOut,
    /// The cancel flag was set (e.g. by Tflush).
    Cancelled,
    /// The node no longer exists.
    Gone,
}

/// A worker as the supervisor sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// `worker-N`.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Stage.
    pub state: WorkerState,
    /// Leased GPU.
    pub lease_gpu: Option<String>,
}

/// The hive's namespace.
pub struct Hive {
    state: Mutex<State>,
    grew: Condvar,
    clock: Arc<dyn Clock>,
    effects: Arc<dyn Effects>,
    sessions: RwLock<Option<Arc<dyn SessionStats>>>,
    epoch: AtomicU64,
    root: NodeId,
    secrets: Secrets,
    journal_path: PathBuf,
}

impl fmt::Debug for Hive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hive")
            .field("journal", &self.journal_path)
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Hive {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` under the lock with the clock read, then wakes waiters if
    /// anything changed.
    fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut g = self.lock();
        g.now_ms = self.clock.now_ms();
        let r = f(&mut g);
        let dirty = std::mem::take(&mut g.dirty);
        self.epoch.store(g.revocation_epoch, Ordering::SeqCst);
        drop(g);
        if dirty {
            self.grew.notify_all();
        }
        r
    }

    // ----------------------------------------------------------------
    // Session layer
    // ----------------------------------------------------------------

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> NodeId {
        self.root
    }

    /// Role secrets for ticket verification.
    #[must_use]
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Verifies an attach ticket for `identity` with the role's secret:
    /// no secret configured for the role or a ticket that does not verify
    /// (bad MAC, malformed, another role's) is `EKEYREJECTED`; a worker
    /// ticket whose subject names another worker is `EPERM`; an expired one
    /// `EKEYEXPIRED` (at the hive's clock). The caller audits refusals with
    /// its own context (peer, uname).
    pub fn verify_ticket(&self, identity: &Identity, text: &str) -> Result<Ticket, Errno> {
        let secret = match identity.role() {
            Role::Queen => self.secrets.queen.as_deref(),
            Role::WorkerHeartbeat => self.secrets.worker_heartbeat.as_deref(),
            Role::WorkerGpu => self.secrets.worker_gpu.as_deref(),
            Role::WorkerBus | Role::WorkerLora => None,
        }
        .filter(|s| !s.is_empty())
        .ok_or(Errno::EKEYREJECTED)?;
        let ticket =
            Ticket::verify(text, secret.as_bytes()).map_err(|e| Errno::from_raw(e.errno()))?;
        if ticket.role != identity.role() {
            return Err(Errno::EKEYREJECTED);
        }
        if let (Some(w), Some(subject)) = (identity.worker(), ticket.subject.as_deref())
            && subject != w
        {
            return Err(Errno::EPERM);
        }
        if ticket.expired(self.clock.now_ms()) {
            return Err(Errno::EKEYEXPIRED);
        }
        Ok(ticket)
    }

    /// Installs the `/proc/9p/sessions` renderer.
    pub fn set_session_stats(&self, stats: Arc<dyn SessionStats>) {
        *self
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(stats);
    }

    fn sessions_text(&self) -> String {
        let stats = self
            .sessions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match stats {
            Some(s) => s.render(),
            None => "no session layer attached\n".into(),
        }
    }

    /// Admits an attach: the queen always; a worker when its record exists
    /// (spawning or running) with the same role and the lifecycle accepts
    /// workers (ONLINE, DEGRADED, DRAINING). Refusals are audited: unknown
    /// worker `ENOENT`, revoked `EKEYREVOKED`, role mismatch `EPERM`, gate
    /// `EAGAIN`. Returns the root.
    pub fn attach(&self, identity: &Identity) -> Result<NodeId, Errno> {
        self.tick();
        self.with_state(|s| {
            let Some(w) = identity.worker() else {
                return Ok(s.tree.root());
            };
            let refuse = |s: &mut State, errno: Errno, why: &str| {
                s.audit(&format!("denied {identity} attach: {why} ({errno})"));
                Err(errno)
            };
            if let Some(why) = s.revoked.get(w).cloned() {
                return refuse(s, Errno::EKEYREVOKED, &format!("revoked: {why}"));
            }
            let Some(rec) = s.workers.get(w) else {
                return refuse(s, Errno::ENOENT, "no such worker");
            };
            if rec.role != identity.role() {
                let why = format!("worker is a {}", rec.role);
                return refuse(s, Errno::EPERM, &why);
            }
            if !s.live(identity) {
                return refuse(s, Errno::EKEYREVOKED, "worker is being stopped");
            }
            if !s.lifecycle.state.accepts_workers() {
                let why = format!("hive is {}", s.lifecycle.state);
                return refuse(s, Errno::EAGAIN, &why);
            }
            Ok(s.tree.root())
        })
    }

    /// Changes whenever any worker is revoked; a session may skip
    /// [`Hive::check_session`] while the epoch it last checked at is current.
    #[must_use]
    pub fn revocation_epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Whether `identity`'s sessions are dead (worker killed, lease expired,
    /// or no such worker). Never true for the queen.
    #[must_use]
    pub fn is_revoked(&self, identity: &Identity) -> bool {
        !self.lock().live(identity)
    }

    /// The per-request check: enforces lease TTLs ([`Hive::tick`]), then
    /// fails revoked sessions with `EKEYREVOKED` (audited).
    pub fn check_session(&self, identity: &Identity) -> Result<(), Errno> {
        self.tick();
        self.with_state(|s| s.authorize(identity, "request"))
    }

    /// Walks one name from the directory `parent` (`ENOTDIR` otherwise).
    /// `..` goes to the canonical parent (the root's is itself). Malformed
    /// names are `EINVAL`/`ENAMETOOLONG`, missing ones `ENOENT`, names the
    /// role may not see `ENOENT` (audited).
    pub fn walk(&self, identity: &Identity, parent: NodeId, name: &str) -> Result<NodeId, Errno> {
        self.with_state(|s| {
            s.authorize(identity, "walk")?;
            let p = s.tree.get(parent).ok_or(Errno::ENOENT)?;
            if p.content.kind() != NodeKind::Directory {
                return Err(Errno::ENOTDIR);
            }
            if name == ".." {
                return Ok(p.parent);
            }
            check_name(name)?;
            let target = s.tree.lookup(parent, name)?.ok_or(Errno::ENOENT)?;
            s.check(identity, target, Access::See)?;
            Ok(target)
        })
    }

    /// Walks an absolute path from the root (for tools and tests).
    pub fn walk_path(&self, identity: &Identity, path: &str) -> Result<NodeId, Errno> {
        let mut cur = self.root;
        for name in path.split('/').filter(|c| !c.is_empty()) {
            cur = self.walk(identity, cur, name)?;
        }
        Ok(cur)
    }

    /// A node's canonical path (what policy and ticket scopes use).
    #[must_use]
    pub fn path_of(&self, node: NodeId) -> Option<String> {
        self.lock().tree.get(node).map(|n| n.path.clone())
    }

    /// A node's attributes (see `node` for size and qid rules).
    pub fn attr(&self, node: NodeId) -> Result<NodeAttr, Errno> {
        let text = self.with_state(|s| {
            let n = s.tree.get(node).ok_or(Errno::ENOENT)?;
            Ok(match &n.content {
                Content::Text(TextSource::Sessions) => None,
                Content::Text(src) => Some(render::render(s, src).len() as u64),
                _ => Some(0),
            })
        })?;
        let len = match text {
            Some(l) => l,
            None => self.sessions_text().len() as u64,
        };
        self.lock().attr(node, len).ok_or(Errno::ENOENT)
    }

    /// Lists a directory from the start (see [`Hive::list_from`]).
    pub fn list(&self, identity: &Identity, dir: NodeId) -> Result<Vec<ListEntry>, Errno> {
        self.list_from(identity, dir, 0)
    }

    /// Lists the entries of `dir` whose cookie is greater than
    /// `after_cookie`, in cookie order: `.` (cookie 1), `..` (cookie 2),
    /// then every entry the role may see. Cookies never change while an
    /// entry exists, so resuming from the last cookie returned yields each
    /// entry exactly once even if others come and go; an unknown cookie
    /// just resumes after it (never loops).
    pub fn list_from(
        &self,
        identity: &Identity,
        dir: NodeId,
        after_cookie: u64,
    ) -> Result<Vec<ListEntry>, Errno> {
        self.with_state(|s| {
            s.authorize(identity, "readdir")?;
            s.check(identity, dir, Access::Read)?;
            let node = s.tree.get(dir).ok_or(Errno::ENOENT)?;
            let d = s.tree.dir(dir)?;
            let mut out = Vec::new();
            let dir_entry = |cookie, name: &str, id| {
                s.qid(id).map(|qid| ListEntry {
                    cookie,
                    name: name.to_owned(),
                    qid,
                    dtype: crate::node::DT_DIR,
                })
            };
            if after_cookie < COOKIE_DOT {
                out.extend(dir_entry(COOKIE_DOT, ".", dir));
            }
            if after_cookie < COOKIE_DOTDOT {
                out.extend(dir_entry(COOKIE_DOTDOT, "..", node.parent));
            }
            let start = after_cookie.saturating_add(1).max(COOKIE_DOTDOT + 1);
            for (cookie, e) in d.entries.range(start..) {
                if !s.visible(identity, e.target) {
                    continue;
                }
                let Some(n) = s.tree.get(e.target) else {
                    continue;
                };
                let Some(qid) = s.qid(e.target) else {
                    continue;
                };
                out.push(ListEntry {
                    cookie: *cookie,
                    name: e.name.clone(),
                    qid,
                    dtype: n.content.kind().dtype(),
                });
            }
            Ok(out)
        })
    }

    /// Opens a node: `write` = `O_WRONLY`, otherwise `O_RDONLY` (see
    /// [`Hive::open_mode`] for `O_RDWR`).
    pub fn open(
        &self,
        identity: &Identity,
        node: NodeId,
        write: bool,
        truncate: bool,
    ) -> Result<OpenFile, Errno> {
        let mode = if write {
            OpenMode::Write
        } else {
            OpenMode::Read
        };
        self.open_mode(identity, node, mode, truncate)
    }

    /// Opens a node. Checks rights (audited), refuses writing directories
    /// (`EISDIR`) and read-only nodes (`EACCES`), snapshots generated text.
    /// `truncate` is accepted and ignored: nothing NineDoor serves can be
    /// truncated, and shells open with `O_TRUNC` for `echo cmd > ctl`.
    pub fn open_mode(
        &self,
        identity: &Identity,
        node: NodeId,
        mode: OpenMode,
        truncate: bool,
    ) -> Result<OpenFile, Errno> {
        let _ = truncate;
        let snap = self.with_state(|s| {
            s.authorize(identity, "open")?;
            let kind = s.tree.get(node).ok_or(Errno::ENOENT)?.content.kind();
            if kind == NodeKind::Directory && mode.writes() {
                return Err(Errno::EISDIR);
            }
            s.check(identity, node, Access::See)?;
            if mode.reads() {
                s.check(identity, node, Access::Read)?;
            }
            if mode.writes() {
                s.check(identity, node, Access::Write)?;
            }
            let n = s.tree.get(node).ok_or(Errno::ENOENT)?;
            Ok(match &n.content {
                Content::Text(TextSource::Sessions) => (kind, None),
                Content::Text(src) => (kind, Some(render::render(s, src))),
                _ => (kind, Some(String::new())),
            })
        })?;
        let (kind, text) = snap;
        let snapshot = match (kind, text) {
            (NodeKind::Text, Some(t)) => Some(Arc::from(t.into_bytes())),
            (NodeKind::Text, None) => Some(Arc::from(self.sessions_text().into_bytes())),
            _ => None,
        };
        Ok(OpenFile {
            node,
            kind,
            mode,
            snapshot,
        })
    }

    /// Reads up to `count` bytes at `offset`. Generated text reads its open
    /// snapshot (empty past the end); append-only nodes read absolute
    /// offsets (`WouldBlock` at the end, `ERANGE` below the retained base);
    /// directories are `EISDIR` (use `list_from`).
    pub fn read(
        &self,
        identity: &Identity,
        file: &OpenFile,
        offset: u64,
        count: u32,
    ) -> Result<ReadResult, Errno> {
        if !file.mode.reads() {
            return Err(Errno::EBADF);
        }
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        self.with_state(|s| {
            s.authorize(identity, "read")?;
            s.check(identity, file.node, Access::Read)?;
            let n = s.tree.get(file.node).ok_or(Errno::ENOENT)?;
            match &n.content {
                Content::Dir(_) => Err(Errno::EISDIR),
                Content::Ctl(_) => Err(Errno::EACCES),
                Content::Text(_) => {
                    let snap = file.snapshot.as_deref().unwrap_or_default();
                    let start = usize::try_from(offset)
                        .unwrap_or(usize::MAX)
                        .min(snap.len());
                    let end = start.saturating_add(count).min(snap.len());
                    Ok(ReadResult::Data(
                        snap.get(start..end).unwrap_or_default().to_vec(),
                    ))
                }
                Content::Stream(st) => match st.ring.read(offset, count) {
                    RingRead::Data(d) => Ok(ReadResult::Data(d)),
                    RingRead::AtEnd => Ok(ReadResult::WouldBlock),
                    RingRead::Stale { .. } => Err(Errno::ERANGE),
                },
            }
        })
    }

    /// Writes `data` at `offset`; returns the count written. See the module
    /// docs for append and control semantics.
    pub fn write(
        &self,
        identity: &Identity,
        file: &OpenFile,
        offset: u64,
        data: &[u8],
    ) -> Result<u32, Errno> {
        if !file.mode.writes() {
            return Err(Errno::EBADF);
        }
        if data.len() > MAX_WRITE {
            return Err(Errno::EFBIG);
        }
        let count = u32::try_from(data.len()).map_err(|_| Errno::EFBIG)?;
        let target = self.with_state(|s| {
            s.authorize(identity, "write")?;
            s.check(identity, file.node, Access::Write)?;
            let n = s.tree.get(file.node).ok_or(Errno::ENOENT)?;
            match &n.content {
                Content::Ctl(t) => Ok(Some(t.clone())),
                Content::Stream(st) => {
                    if offset != st.ring.end() && offset != u64::MAX {
                        return Err(Errno::ESPIPE);
                    }
                    let class = st.class.clone();
                    self.write_stream(s, identity, file.node, class, data)?;
                    Ok(None)
                }
                Content::Dir(_) => Err(Errno::EISDIR),
                Content::Text(_) => Err(Errno::EACCES),
            }
        })?;
        match target {
            None => {}
            Some(CtlTarget::Queen) => self.queen_ctl(data)?,
            Some(CtlTarget::Lifecycle) => self.lifecycle_ctl(data)?,
            Some(CtlTarget::Gpu(g)) => self.gpu_ctl(&g, data)?,
        }
        Ok(count)
    }

    /// Appends to an append-only node on behalf of a client (lock held).
    fn write_stream(
        &self,
        s: &mut State,
        identity: &Identity,
        node: NodeId,
        class: StreamClass,
        data: &[u8],
    ) -> Result<(), Errno> {
        let gate = match class {
            StreamClass::Telemetry => s.lifecycle.state.accepts_workers(),
            StreamClass::Job(_) => s.lifecycle.state.accepts_new_work(),
            _ => true,
        };
        if !gate {
            let path = s.tree.get(node).map(|n| n.path.clone()).unwrap_or_default();
            let msg = format!(
                "denied {identity} write {path}: hive is {} (EAGAIN)",
                s.lifecycle.state
            );
            s.audit(&msg);
            return Err(Errno::EAGAIN);
        }
        match class {
            StreamClass::Telemetry => {
                let dropped = s.append_stream(node, data)?;
                if dropped > 0 {
                    self.log_wrap(s, node);
                }
                Ok(())
            }
            StreamClass::ModelsActive => gpu::write_models_active(s, node, data),
            StreamClass::Job(g) => gpu::write_jobs(s, node, &g, data),
            StreamClass::Audit | StreamClass::Console | StreamClass::Lease => Err(Errno::EACCES),
        }
    }

    /// Audits a telemetry ring wrap: once when it starts dropping, then once
    /// per ring's worth of dropped bytes.
    fn log_wrap(&self, s: &mut State, node: NodeId) {
        let Some(n) = s.tree.get_mut(node) else {
            return;
        };
        let path = n.path.clone();
        let Content::Stream(st) = &mut n.content else {
            return;
        };
        let cycles = st.ring.dropped_total().div_ceil(st.ring.capacity() as u64);
        if cycles <= st.wraps_logged {
            return;
        }
        st.wraps_logged = cycles;
        let msg = format!(
            "telemetry {path} wrapped: {} byte(s) dropped so far, oldest kept offset {}",
            st.ring.dropped_total(),
            st.ring.base()
        );
        s.audit(&msg);
    }

    /// Blocks until the append-only `node` has grown past `known_len`, the
    /// deadline passes, `cancel` is set, or the node goes away. The hive lock
    /// is released while waiting; `cancel` is re-checked at least every
    /// 50 ms, and [`Hive::wake_waiters`] makes it immediate. Non-append-only
    /// nodes return `Grew` at once.
    pub fn wait_for_growth(
        &self,
        node: NodeId,
        known_len: u64,
        cancel: &AtomicBool,
        timeout: Duration,
    ) -> WaitResult {
        let deadline = Instant::now().checked_add(timeout);
        let mut g = self.lock();
        loop {
            if cancel.load(Ordering::SeqCst) {
                return WaitResult::Cancelled;
            }
            match g.tree.get(node).map(|n| &n.content) {
                None => return WaitResult::Gone,
                Some(Content::Stream(s)) if s.ring.end() <= known_len => {}
                Some(_) => return WaitResult::Grew,
            }
            let now = Instant::now();
            let slice = match deadline {
                Some(d) if now >= d => return WaitResult::TimedOut,
                Some(d) => (d - now).min(WAIT_SLICE),
                None => WAIT_SLICE,
            };
            g = self
                .grew
                .wait_timeout(g, slice)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Wakes every blocked [`Hive::wait_for_growth`] so it re-checks its
    /// cancel flag (call after setting one).
    pub fn wake_waiters(&self) {
        let _g = self.lock();
        self.grew.notify_all();
    }

    /// Builds a session's budget: role defaults, the worker's spawn budget,
    /// the stream count of its current lease, and the ticket (if any).
    pub fn session_budget(&self, identity: &Identity, ticket: Option<&Ticket>) -> SessionBudget {
        self.with_state(|s| {
            let rec = identity.worker().and_then(|w| s.workers.get(w));
            let spawn = rec.map(|r| r.budget);
            let streams = s
                .leased_gpu(identity)
                .and_then(|g| s.gpus.get(g))
                .and_then(|g| g.lease.as_ref())
                .map(|l| l.streams);
            SessionBudget::new(identity.role(), spawn, streams, ticket, s.now_ms)
        })
    }

    /// Charges a request against a session budget at the hive's clock;
    /// audits and returns the errno of a refusal.
    pub fn charge(
        &self,
        identity: &Identity,
        budget: &mut SessionBudget,
        op: BudgetOp,
        path: &str,
        bytes: u64,
    ) -> Result<(), Errno> {
        let now = self.clock.now_ms();
        match budget.charge(op, path, bytes, now) {
            Ok(()) => Ok(()),
            Err(d) => {
                self.with_state(|s| s.audit(&format!("denied {identity} {op:?} {path}: {d}")));
                Err(d.errno)
            }
        }
    }
}

impl State {
    fn set_lifecycle(&mut self, to: LifecycleState, reason: &str) {
        let from = self.lifecycle.state;
        self.lifecycle = Lifecycle {
            state: to,
            reason: reason.to_owned(),
            since_ms: self.now_ms,
        };
        self.dirty = true;
        self.audit(&format!("lifecycle {from} -> {to}: {reason}"));
    }

    #[cfg(test)]
    pub(crate) fn inject_journal_failures(&mut self, n: usize) {
        self.journal.inject_failures(n);
    }
}

#[cfg(test)]
impl Hive {
    pub(crate) fn inject_journal_failures(&self, n: usize) {
        self.lock().inject_journal_failures(n);
    }
}

#[cfg(test)]
mod tests;
