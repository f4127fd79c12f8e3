//! The 9P2000.L session: one per connection. It owns the connection's fids,
//! its outstanding blocked reads and its ticket budget, validates every
//! request fully against the rules of `ninep.md`, and only then asks the
//! [`Hive`] to act. Every request gets exactly one reply, built in one place
//! ([`Session::handle`]), except a read that blocks: that one is answered
//! later from its own thread, or not at all if a `Tflush` cancels it first.
//!
//! Identity: a session attaches as the role in `uname`, proven by the ticket
//! in `aname` — except the queen on the Unix socket (the socket is 0600 in
//! the hive's state directory, so its file permissions are the credential),
//! and guests on virtio-9p, whose identity the supervisor bound to their
//! socket ([`Binding::Bound`]): a guest cannot attach as anything else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use secure9p::limits::{
    IOHDRSZ, MAX_MSIZE, MAX_WALK, NOFID, NOTAG, VERSION_9P2000L, VERSION_UNKNOWN,
};
use secure9p::wire::{
    Attr, DirEntry, GETATTR_BASIC, O_ACCMODE, O_APPEND, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, Qid,
    Request, Response, SETATTR_ATIME, SETATTR_ATIME_SET, SETATTR_CTIME, SETATTR_MTIME,
    SETATTR_MTIME_SET, StatFs,
};
use secure9p::{Ticket, decode_request, encode_dirents, encode_response};

use crate::budget::{BudgetOp, SessionBudget};
use crate::errno::Errno;
use crate::hive::{Hive, OpenFile, ReadResult};
use crate::identity::Identity;
use crate::node::{NodeId, NodeKind};
use crate::transport::{ConnectionHandler, Peer, ReplySink};

/// Most fids one session may hold.
pub const MAX_FIDS: usize = 1024;
/// Most reads one session may have blocked at once.
pub const MAX_BLOCKED_READS: usize = 32;
/// Smallest msize a client may negotiate.
pub const MIN_MSIZE: u32 = secure9p::limits::MIN_MSIZE;
/// Empty reads a fid gets at the end of an append-only file before a read
/// there blocks. Two, because Linux's v9fs (netfs, 6.x) asks twice before it
/// believes end-of-file: a read that returns nothing is retried once. With
/// one, `cat` of a telemetry file would hang on Linux; with two, `cat` ends
/// and `tail -f`'s next read waits for growth.
pub const EMPTY_READS_BEFORE_BLOCKING: u8 = 2;
/// How long a blocked read sleeps between checks of revocation and expiry.
const BLOCKED_READ_POLL: Duration = Duration::from_millis(250);
/// `statfs` f_type for 9P file systems (V9FS_MAGIC).
const V9FS_MAGIC: u32 = 0x0102_1997;

/// How a connection's identity is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// By `uname` + ticket at attach (host transports).
    Open,
    /// Fixed by the supervisor (a guest's virtio-9p socket).
    Bound(Identity),
}

/// A fid and what it points at.
#[derive(Debug, Clone)]
struct FidState {
    node: NodeId,
    open: Option<OpenState>,
}

#[derive(Debug, Clone)]
struct OpenState {
    file: Arc<OpenFile>,
    read: bool,
    write: bool,
    /// Opened with `O_APPEND`: writes go to the end of append-only files.
    append: bool,
    /// Where the previous stream read on this fid ended (for cursor quotas).
    stream_pos: Option<u64>,
    /// Empty reads this fid has had in a row at the end of an append-only
    /// file, and where: after [`EMPTY_READS_BEFORE_BLOCKING`] of them, a read
    /// there blocks until the file grows.
    eof: Option<(u64, u8)>,
    /// The previous read on this fid was short: it ended at `.0` with `.1`
    /// of its count still wanted. A read asking for exactly that rest is the
    /// client finishing the same read (Linux's netfs does this), not the
    /// client having seen the end, so it does not arm `eof_at`.
    short: Option<(u64, u32)>,
}

/// A blocked read waiting for its file to grow.
#[derive(Debug)]
struct Pending {
    cancel: Arc<AtomicBool>,
    done: Arc<(Mutex<bool>, Condvar)>,
}

type PendingTable = Arc<Mutex<HashMap<u16, Pending>>>;

struct Attached {
    identity: Identity,
    budget: SessionBudget,
}

/// Counters for `/proc/9p`.
#[derive(Debug, Default)]
pub struct SessionStats {
    /// Requests answered.
    pub requests: std::sync::atomic::AtomicU64,
    /// Requests answered with Rlerror.
    pub errors: std::sync::atomic::AtomicU64,
}

/// One 9P session.
pub struct Session {
    hive: Arc<Hive>,
    peer: Peer,
    binding: Binding,
    msize: u32,
    versioned: bool,
    attached: Option<Attached>,
    fids: HashMap<u32, FidState>,
    pending: PendingTable,
    stats: Arc<SessionStats>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("msize", &self.msize)
            .field("fids", &self.fids.len())
            .finish_non_exhaustive()
    }
}

/// What a request produced.
enum Outcome {
    Reply(Response),
    /// A blocked read took over the reply.
    Deferred,
    /// Reply, then close the connection.
    Close(Response),
}

fn err(e: Errno) -> Outcome {
    Outcome::Reply(Response::Lerror { ecode: e.raw() })
}

fn wire_qid(q: crate::node::Qid) -> Qid {
    Qid {
        ty: q.kind,
        version: q.version,
        path: q.path,
    }
}

impl Session {
    /// A session for `peer`, attaching according to `binding`.
    pub fn new(hive: Arc<Hive>, peer: Peer, binding: Binding, stats: Arc<SessionStats>) -> Session {
        Session {
            hive,
            peer,
            binding,
            msize: MAX_MSIZE,
            versioned: false,
            attached: None,
            fids: HashMap::new(),
            pending: Arc::new(Mutex::new(HashMap::new())),
            stats,
        }
    }

    fn max_io(&self) -> u32 {
        self.msize.saturating_sub(IOHDRSZ)
    }

    fn audit(&self, text: &str) {
        self.hive.audit(&format!("9p {}: {text}", self.peer));
    }

    /// Handles one frame; replies (now, or later for a blocked read) go to `sink`.
    pub fn handle_frame(&mut self, frame: &[u8], sink: &ReplySink) {
        let (tag, outcome) = match decode_request(frame, self.msize) {
            Ok((tag, req)) => (tag, self.dispatch(tag, req, sink)),
            Err(e) => {
                self.audit(&format!("malformed request: {e}"));
                match e.tag() {
                    // No readable tag: the stream cannot be trusted any more.
                    None => (NOTAG, Outcome::Close(Response::Lerror { ecode: e.errno() })),
                    Some(tag) => (tag, Outcome::Reply(Response::Lerror { ecode: e.errno() })),
                }
            }
        };
        let (response, close) = match outcome {
            Outcome::Reply(r) => (r, false),
            Outcome::Close(r) => (r, true),
            Outcome::Deferred => return,
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if matches!(response, Response::Lerror { .. }) {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        send(sink, tag, &response);
        if close {
            sink.close();
        }
    }

    fn dispatch(&mut self, tag: u16, req: Request, sink: &ReplySink) -> Outcome {
        if let Request::Version { msize, version } = req {
            return self.version(msize, &version);
        }
        if !self.versioned {
            return err(Errno::EPROTO);
        }
        if let Request::Flush { oldtag } = req {
            return self.flush(oldtag);
        }
        if tag == NOTAG || self.pending_has(tag) {
            return err(Errno::EINVAL);
        }
        if let Some(a) = &self.attached {
            if let Err(e) = self.hive.check_session(&a.identity) {
                return err(e);
            }
        } else {
            self.hive.tick();
        }
        match req {
            Request::Auth { .. } => err(Errno::ENOENT),
            Request::Attach {
                fid,
                afid,
                uname,
                aname,
                ..
            } => self.attach(fid, afid, &uname, &aname),
            Request::Walk { fid, newfid, names } => self.walk(fid, newfid, &names),
            Request::Lopen { fid, flags } => self.lopen(fid, flags),
            Request::Read { fid, offset, count } => self.read(tag, fid, offset, count, sink),
            Request::Write { fid, offset, data } => self.write(fid, offset, &data),
            Request::Clunk { fid } => match self.fids.remove(&fid) {
                Some(_) => Outcome::Reply(Response::Clunk),
                None => err(Errno::EBADF),
            },
            Request::Remove { fid } => match self.fids.remove(&fid) {
                // Tremove clunks even when it fails; nothing here can be removed.
                Some(_) => err(Errno::EPERM),
                None => err(Errno::EBADF),
            },
            Request::Getattr { fid, mask } => self.getattr(fid, mask),
            Request::Setattr { fid, attr } => self.setattr(fid, attr.valid),
            Request::Readdir { fid, offset, count } => self.readdir(fid, offset, count),
            Request::Statfs { fid } => match self.fids.get(&fid).map(|f| f.node) {
                Some(node) => match self.charge(BudgetOp::Stat, node, 0) {
                    Err(e) => err(e),
                    Ok(()) => Outcome::Reply(Response::Statfs(StatFs {
                        ty: V9FS_MAGIC,
                        bsize: 4096,
                        blocks: 0,
                        bfree: 0,
                        bavail: 0,
                        files: 0,
                        ffree: 0,
                        fsid: 0,
                        namelen: secure9p::limits::MAX_NAME as u32,
                    })),
                },
                None => err(Errno::EBADF),
            },
            Request::Fsync { fid, .. } => match self.fids.get(&fid) {
                Some(_) => Outcome::Reply(Response::Fsync),
                None => err(Errno::EBADF),
            },
            Request::Lcreate { fid, .. } | Request::Xattrwalk { fid, .. } => {
                if self.fids.contains_key(&fid) {
                    if matches!(req, Request::Xattrwalk { .. }) {
                        err(Errno::EOPNOTSUPP)
                    } else {
                        err(Errno::EPERM)
                    }
                } else {
                    err(Errno::EBADF)
                }
            }
            Request::Mkdir { dfid, .. } => self.refuse_change(dfid),
            Request::Unlinkat { dirfid, .. } => self.refuse_change(dirfid),
            Request::Unsupported { .. } => err(Errno::EOPNOTSUPP),
            Request::Version { .. } | Request::Flush { .. } => err(Errno::EPROTO),
        }
    }

    fn refuse_change(&self, fid: u32) -> Outcome {
        if self.fids.contains_key(&fid) {
            err(Errno::EPERM)
        } else {
            err(Errno::EBADF)
        }
    }

    fn version(&mut self, msize: u32, version: &str) -> Outcome {
        // A new Tversion aborts everything: outstanding reads and every fid.
        self.cancel_all_pending();
        self.fids.clear();
        self.attached = None;
        let Some(msize) = secure9p::limits::negotiate_msize(msize, MAX_MSIZE) else {
            self.versioned = false;
            return err(Errno::EINVAL);
        };
        if version != VERSION_9P2000L && !version.starts_with("9P2000.L.") {
            self.versioned = false;
            return Outcome::Reply(Response::Version {
                msize,
                version: VERSION_UNKNOWN.to_string(),
            });
        }
        self.msize = msize;
        self.versioned = true;
        Outcome::Reply(Response::Version {
            msize,
            version: VERSION_9P2000L.to_string(),
        })
    }

    fn identity_for(&self, uname: &str, aname: &str) -> Result<(Identity, Option<Ticket>), Errno> {
        if let Binding::Bound(bound) = &self.binding {
            // A client that names no one (Linux v9fs sends its default
            // "nobody" unless mounted with uname=) gets the bound identity;
            // naming anyone else is refused.
            let anonymous = uname.is_empty() || uname == "nobody";
            if uname != bound.uname() && !anonymous {
                self.hive.audit(&format!(
                    "denied attach: {} is bound to {} and tried to attach as {uname:?}",
                    self.peer,
                    bound.uname()
                ));
                return Err(Errno::EPERM);
            }
            return Ok((bound.clone(), None));
        }
        let Some(identity) = Identity::from_uname(uname) else {
            self.audit(&format!("denied attach: unknown role {uname:?}"));
            return Err(Errno::EPERM);
        };
        let queen_on_socket = identity.role() == crate::identity::Role::Queen
            && matches!(self.peer, Peer::Unix { .. } | Peer::Local);
        if aname.is_empty() {
            if queen_on_socket {
                return Ok((identity, None));
            }
            self.audit(&format!("denied attach as {uname}: no ticket"));
            return Err(Errno::EACCES);
        }
        let ticket = self.hive.verify_ticket(&identity, aname).inspect_err(|e| {
            self.audit(&format!("denied attach as {uname}: ticket rejected ({e})"));
        })?;
        let identity = match &ticket.subject {
            Some(subject) => identity.with_subject(subject),
            None => identity,
        };
        Ok((identity, Some(ticket)))
    }

    fn attach(&mut self, fid: u32, afid: u32, uname: &str, aname: &str) -> Outcome {
        if afid != NOFID {
            return err(Errno::EINVAL);
        }
        if self.fids.contains_key(&fid) {
            return err(Errno::EBADF);
        }
        if self.fids.len() >= MAX_FIDS {
            return err(Errno::ELIMIT);
        }
        let (identity, ticket) = match self.identity_for(uname, aname) {
            Ok(v) => v,
            Err(e) => return err(e),
        };
        if let Some(existing) = &self.attached {
            if existing.identity != identity {
                self.audit(&format!(
                    "denied attach as {uname}: session already attached as {}",
                    existing.identity.uname()
                ));
                return err(Errno::EPERM);
            }
        } else {
            if let Err(e) = self.hive.attach(&identity) {
                return err(e);
            }
            let budget = self.hive.session_budget(&identity, ticket.as_ref());
            self.attached = Some(Attached { identity, budget });
        }
        let root = self.hive.root();
        let qid = match self.hive.attr(root) {
            Ok(a) => wire_qid(a.qid),
            Err(e) => return err(e),
        };
        self.fids.insert(
            fid,
            FidState {
                node: root,
                open: None,
            },
        );
        Outcome::Reply(Response::Attach { qid })
    }

    fn identity(&self) -> Result<&Identity, Errno> {
        self.attached
            .as_ref()
            .map(|a| &a.identity)
            .ok_or(Errno::EBADF)
    }

    /// Charges the ticket budget for an operation on `node`, judged on the
    /// node's canonical path (so a bind alias never widens a ticket's
    /// scope); the hive audits refusals.
    fn charge(&mut self, op: BudgetOp, node: NodeId, bytes: u64) -> Result<(), Errno> {
        let path = self.hive.path_of(node).ok_or(Errno::ENOENT)?;
        let Some(attached) = self.attached.as_mut() else {
            return Err(Errno::EBADF);
        };
        self.hive
            .charge(&attached.identity, &mut attached.budget, op, &path, bytes)
    }

    fn walk(&mut self, fid: u32, newfid: u32, names: &[String]) -> Outcome {
        let Some(start) = self.fids.get(&fid).cloned() else {
            return err(Errno::EBADF);
        };
        if newfid != fid && self.fids.contains_key(&newfid) {
            return err(Errno::EBADF);
        }
        if newfid != fid && self.fids.len() >= MAX_FIDS {
            return err(Errno::ELIMIT);
        }
        if names.len() > MAX_WALK {
            return err(Errno::EINVAL);
        }
        if names
            .iter()
            .any(|n| n.is_empty() || n == "." || n.contains('/'))
        {
            return err(Errno::EINVAL);
        }
        let identity = match self.identity() {
            Ok(i) => i.clone(),
            Err(e) => return err(e),
        };
        let mut node = start.node;
        let mut qids = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            // Only directories can be walked, `..` included.
            let step = match self.hive.attr(node) {
                Ok(a) if a.kind != NodeKind::Directory => Err(Errno::ENOTDIR),
                Ok(_) => self.hive.walk(&identity, node, name),
                Err(e) => Err(e),
            };
            let qid = step.and_then(|next| self.hive.attr(next).map(|a| (next, wire_qid(a.qid))));
            match qid {
                Ok((next, qid)) => {
                    node = next;
                    qids.push(qid);
                }
                Err(e) if i == 0 => return err(e),
                // A later name is missing: report how far we got, no newfid.
                Err(_) => return Outcome::Reply(Response::Walk { qids }),
            }
        }
        if !names.is_empty()
            && let Err(e) = self.charge(BudgetOp::Walk, node, 0)
        {
            return err(e);
        }
        let state = FidState { node, open: None };
        self.fids.insert(newfid, state);
        Outcome::Reply(Response::Walk { qids })
    }

    fn lopen(&mut self, fid: u32, flags: u32) -> Outcome {
        let Some(state) = self.fids.get(&fid).cloned() else {
            return err(Errno::EBADF);
        };
        if state.open.is_some() {
            return err(Errno::EBADF);
        }
        let (read, write) = match flags & O_ACCMODE {
            O_RDONLY => (true, false),
            O_WRONLY => (false, true),
            O_RDWR => (true, true),
            _ => return err(Errno::EINVAL),
        };
        let identity = match self.identity() {
            Ok(i) => i.clone(),
            Err(e) => return err(e),
        };
        let node = state.node;
        let attr = match self.hive.attr(node) {
            Ok(a) => a,
            Err(e) => return err(e),
        };
        if attr.kind == NodeKind::Directory && write {
            return err(Errno::EISDIR);
        }
        if let Err(e) = self.charge(BudgetOp::Open { write }, state.node, 0) {
            return err(e);
        }
        let file = match self.hive.open(&identity, node, write, flags & O_TRUNC != 0) {
            Ok(f) => f,
            Err(e) => return err(e),
        };
        let iounit = self.max_io();
        if let Some(s) = self.fids.get_mut(&fid) {
            s.open = Some(OpenState {
                file: Arc::new(file),
                read,
                write,
                append: flags & O_APPEND != 0,
                stream_pos: None,
                eof: None,
                short: None,
            });
        }
        Outcome::Reply(Response::Lopen {
            qid: wire_qid(attr.qid),
            iounit,
        })
    }

    fn read(&mut self, tag: u16, fid: u32, offset: u64, count: u32, sink: &ReplySink) -> Outcome {
        let Some(state) = self.fids.get(&fid).cloned() else {
            return err(Errno::EBADF);
        };
        let Some(open) = state.open.clone().filter(|o| o.read) else {
            return err(Errno::EBADF);
        };
        let node = state.node;
        let attr = match self.hive.attr(node) {
            Ok(a) => a,
            Err(e) => return err(e),
        };
        if attr.kind == NodeKind::Directory {
            return err(Errno::EISDIR);
        }
        let asked = count;
        let count = count.min(self.max_io());
        let op = if attr.kind.is_append_only() {
            BudgetOp::StreamRead {
                resume: open.stream_pos.is_some_and(|p| p != offset),
            }
        } else {
            BudgetOp::Read
        };
        if let Err(e) = self.charge(op, state.node, u64::from(count)) {
            return err(e);
        }
        let identity = match self.identity() {
            Ok(i) => i.clone(),
            Err(e) => return err(e),
        };
        match self.hive.read(&identity, &open.file, offset, count) {
            Ok(ReadResult::Data(data)) => {
                let got = u32::try_from(data.len()).unwrap_or(u32::MAX);
                let end = offset.saturating_add(u64::from(got));
                let short = (got < asked).then(|| (end, asked - got));
                self.note_stream_read(fid, end, None, short);
                Outcome::Reply(Response::Read { data })
            }
            // The rest of a short read, asked for at once: end-of-file for
            // that read, which does not yet mean the client saw the end.
            Ok(ReadResult::WouldBlock) if open.short == Some((offset, asked)) => {
                self.note_stream_read(fid, offset, None, None);
                Outcome::Reply(Response::Read { data: Vec::new() })
            }
            // The first reads at the end report end-of-file (so `cat` ends);
            // reading there once more on the same fid waits for growth
            // (`tail -f`). See EMPTY_READS_BEFORE_BLOCKING for why two.
            Ok(ReadResult::WouldBlock) => {
                let seen = match open.eof {
                    Some((at, n)) if at == offset => n,
                    _ => 0,
                };
                if seen < EMPTY_READS_BEFORE_BLOCKING {
                    self.note_stream_read(
                        fid,
                        offset,
                        Some((offset, seen.saturating_add(1))),
                        None,
                    );
                    Outcome::Reply(Response::Read { data: Vec::new() })
                } else {
                    self.block_read(tag, identity, open.file, node, offset, count, sink)
                }
            }
            Err(e) => err(e),
        }
    }

    fn note_stream_read(
        &mut self,
        fid: u32,
        pos: u64,
        eof: Option<(u64, u8)>,
        short: Option<(u64, u32)>,
    ) {
        if let Some(open) = self.fids.get_mut(&fid).and_then(|s| s.open.as_mut()) {
            open.stream_pos = Some(pos);
            open.eof = eof;
            open.short = short;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn block_read(
        &mut self,
        tag: u16,
        identity: Identity,
        file: Arc<OpenFile>,
        node: NodeId,
        offset: u64,
        count: u32,
        sink: &ReplySink,
    ) -> Outcome {
        let mut table = match self.pending.lock() {
            Ok(t) => t,
            Err(_) => return err(Errno::EIO),
        };
        if table.len() >= MAX_BLOCKED_READS {
            return err(Errno::EAGAIN);
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        table.insert(
            tag,
            Pending {
                cancel: cancel.clone(),
                done: done.clone(),
            },
        );
        drop(table);
        let hive = self.hive.clone();
        let sink = sink.clone();
        let pending = self.pending.clone();
        let stats = self.stats.clone();
        let spawned = std::thread::Builder::new()
            .name("ninedoor-tail".into())
            .spawn(move || {
                let reply = wait_and_read(&hive, &identity, &file, node, offset, count, &cancel);
                // Reply and free the tag under the table's lock: the client may
                // reuse the tag the moment the reply arrives, and a Tflush
                // (which takes the same lock) then answers after the reply.
                if let Ok(mut table) = pending.lock() {
                    if let Some(response) = reply.filter(|_| !cancel.load(Ordering::SeqCst)) {
                        stats.requests.fetch_add(1, Ordering::Relaxed);
                        send(&sink, tag, &response);
                    }
                    if table.get(&tag).is_some_and(|p| Arc::ptr_eq(&p.done, &done)) {
                        table.remove(&tag);
                    }
                }
                let (lock, cv) = &*done;
                if let Ok(mut finished) = lock.lock() {
                    *finished = true;
                    cv.notify_all();
                }
            });
        match spawned {
            Ok(_) => Outcome::Deferred,
            Err(_) => {
                if let Ok(mut table) = self.pending.lock() {
                    table.remove(&tag);
                }
                err(Errno::EAGAIN)
            }
        }
    }

    fn pending_has(&self, tag: u16) -> bool {
        self.pending
            .lock()
            .map(|t| t.contains_key(&tag))
            .unwrap_or(false)
    }

    /// Tflush: cancel the blocked read with `oldtag` (if any), wait until it
    /// has either answered or given up, then answer Rflush.
    fn flush(&mut self, oldtag: u16) -> Outcome {
        let pending = self.pending.lock().ok().and_then(|mut t| t.remove(&oldtag));
        if let Some(p) = pending {
            p.cancel.store(true, Ordering::SeqCst);
            self.hive.wake_waiters();
            wait_done(&p.done);
        }
        Outcome::Reply(Response::Flush)
    }

    fn cancel_all_pending(&mut self) {
        let drained: Vec<Pending> = match self.pending.lock() {
            Ok(mut t) => t.drain().map(|(_, p)| p).collect(),
            Err(_) => Vec::new(),
        };
        for p in &drained {
            p.cancel.store(true, Ordering::SeqCst);
        }
        if !drained.is_empty() {
            self.hive.wake_waiters();
        }
        for p in &drained {
            wait_done(&p.done);
        }
    }

    fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Outcome {
        let Some(state) = self.fids.get(&fid).cloned() else {
            return err(Errno::EBADF);
        };
        let Some(open) = state.open.clone().filter(|o| o.write) else {
            return err(Errno::EBADF);
        };
        if data.len() > self.max_io() as usize {
            return err(Errno::EMSGSIZE);
        }
        if let Err(e) = self.charge(BudgetOp::Write, state.node, data.len() as u64) {
            return err(e);
        }
        let identity = match self.identity() {
            Ok(i) => i.clone(),
            Err(e) => return err(e),
        };
        let offset = if open.append && open.file.kind().is_append_only() {
            u64::MAX
        } else {
            offset
        };
        match self.hive.write(&identity, &open.file, offset, data) {
            Ok(count) => Outcome::Reply(Response::Write { count }),
            Err(e) => err(e),
        }
    }

    fn getattr(&mut self, fid: u32, mask: u64) -> Outcome {
        let Some(state) = self.fids.get(&fid).cloned() else {
            return err(Errno::EBADF);
        };
        if let Err(e) = self.charge(BudgetOp::Stat, state.node, 0) {
            return err(e);
        }
        let attr = match self.hive.attr(state.node) {
            Ok(a) => a,
            Err(e) => return err(e),
        };
        let secs = attr.mtime_ms / 1000;
        let nsecs = (attr.mtime_ms % 1000) * 1_000_000;
        let _ = mask;
        Outcome::Reply(Response::Getattr(Attr {
            // Everything basic is filled, whatever was asked (the mask is a hint).
            valid: GETATTR_BASIC,
            qid: wire_qid(attr.qid),
            mode: attr.mode,
            uid: 0,
            gid: 0,
            nlink: if attr.kind == NodeKind::Directory {
                2
            } else {
                1
            },
            rdev: 0,
            size: attr.size,
            blksize: 4096,
            blocks: attr.size.div_ceil(512),
            atime_sec: secs,
            atime_nsec: nsecs,
            mtime_sec: secs,
            mtime_nsec: nsecs,
            ctime_sec: secs,
            ctime_nsec: nsecs,
            btime_sec: 0,
            btime_nsec: 0,
            generation: 0,
            data_version: 0,
        }))
    }

    fn setattr(&mut self, fid: u32, valid: u32) -> Outcome {
        let Some(state) = self.fids.get(&fid) else {
            return err(Errno::EBADF);
        };
        // Timestamps-only changes (`touch`) are accepted and ignored: the
        // namespace's times are its own. Anything else is refused.
        let times =
            SETATTR_ATIME | SETATTR_MTIME | SETATTR_CTIME | SETATTR_ATIME_SET | SETATTR_MTIME_SET;
        if valid & !times == 0 {
            return Outcome::Reply(Response::Setattr);
        }
        let path = self.hive.path_of(state.node).unwrap_or_default();
        if let Ok(identity) = self.identity() {
            self.hive.audit(&format!(
                "denied setattr {path} by {}: synthetic files cannot change attributes",
                identity.uname()
            ));
        }
        err(Errno::EPERM)
    }

    fn readdir(&mut self, fid: u32, offset: u64, count: u32) -> Outcome {
        let Some(state) = self.fids.get(&fid).cloned() else {
            return err(Errno::EBADF);
        };
        if state.open.as_ref().is_none_or(|o| !o.read) {
            return err(Errno::EBADF);
        }
        let node = state.node;
        match self.hive.attr(node) {
            Ok(a) if a.kind != NodeKind::Directory => return err(Errno::ENOTDIR),
            Ok(_) => {}
            Err(e) => return err(e),
        }
        if let Err(e) = self.charge(BudgetOp::Readdir, state.node, 0) {
            return err(e);
        }
        let identity = match self.identity() {
            Ok(i) => i.clone(),
            Err(e) => return err(e),
        };
        let entries = match self.hive.list_from(&identity, node, offset) {
            Ok(e) => e,
            Err(e) => return err(e),
        };
        let entries: Vec<DirEntry> = entries
            .into_iter()
            .map(|e| DirEntry {
                qid: wire_qid(e.qid),
                offset: e.cookie,
                ty: e.dtype,
                name: e.name,
            })
            .collect();
        let mut data = Vec::new();
        encode_dirents(&entries, count.min(self.max_io()), &mut data);
        Outcome::Reply(Response::Readdir { data })
    }
}

fn wait_done(done: &Arc<(Mutex<bool>, Condvar)>) {
    let (lock, cv) = &**done;
    let Ok(mut finished) = lock.lock() else {
        return;
    };
    while !*finished {
        match cv.wait(finished) {
            Ok(f) => finished = f,
            Err(_) => return,
        }
    }
}

/// The body of a blocked read: wait for growth, re-read, until data, an
/// error, revocation, or cancellation (then no reply at all).
fn wait_and_read(
    hive: &Hive,
    identity: &Identity,
    file: &OpenFile,
    node: NodeId,
    offset: u64,
    count: u32,
    cancel: &AtomicBool,
) -> Option<Response> {
    loop {
        if cancel.load(Ordering::SeqCst) {
            return None;
        }
        if let Err(e) = hive.check_session(identity) {
            return Some(Response::Lerror { ecode: e.raw() });
        }
        match hive.read(identity, file, offset, count) {
            Ok(ReadResult::Data(data)) => return Some(Response::Read { data }),
            Ok(ReadResult::WouldBlock) => {}
            Err(e) => return Some(Response::Lerror { ecode: e.raw() }),
        }
        hive.wait_for_growth(node, offset, cancel, BLOCKED_READ_POLL);
    }
}

fn send(sink: &ReplySink, tag: u16, response: &Response) {
    let mut frame = Vec::new();
    let encoded = encode_response(tag, response, &mut frame).or_else(|_| {
        frame.clear();
        encode_response(
            tag,
            &Response::Lerror {
                ecode: Errno::EIO.raw(),
            },
            &mut frame,
        )
    });
    if encoded.is_ok() {
        // A failed send marks the sink closed; the reader loop then ends.
        let _ = sink.send(&frame);
    }
}

impl ConnectionHandler for Session {
    fn max_frame(&self) -> u32 {
        self.msize
    }

    fn handle(&mut self, frame: &[u8], sink: &ReplySink) {
        self.handle_frame(frame, sink);
    }

    fn oversized(&mut self, tag: u16, size: usize, sink: &ReplySink) {
        self.audit(&format!(
            "refused a {size}-byte request (msize {}); session continues",
            self.msize
        ));
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        send(
            sink,
            tag,
            &Response::Lerror {
                ecode: Errno::EMSGSIZE.raw(),
            },
        );
    }

    fn closed(&mut self) {
        self.cancel_all_pending();
        self.fids.clear();
    }
}
