//! A tiny synthetic 9P2000.L server for cohsh's tests only (the real
//! end-to-end tests run against NineDoor). It knows just enough for the
//! verbs: a fixed tree, append-only rings with a retained base (reads below
//! it are ERANGE, reads at the end park until data arrives or a Tflush),
//! control files, tickets. Shared by the lib's unit tests (`#[path]`) and
//! the CLI tests, so it names no crate but secure9p and serde_json.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use secure9p::client::Transport;
use secure9p::limits::{MAX_MSIZE, max_io_count};
use secure9p::ticket::{Ticket, split_uname};
use secure9p::wire::{
    Attr, DT_DIR, DT_REG, DirEntry, GETATTR_BASIC, O_ACCMODE, O_RDONLY, O_WRONLY, QTAPPEND, QTDIR,
    QTFILE, Qid, Request, Response, decode_request, encode_dirents, encode_response, frame_size,
};

/// The role secret the fake verifies tickets with.
pub const FAKE_SECRET: &[u8] = b"fake-secret";

const ENOENT: u32 = 2;
const EBADF: u32 = 9;
const EACCES: u32 = 13;
const EEXIST: u32 = 17;
const ENOTDIR: u32 = 20;
const EISDIR: u32 = 21;
const EINVAL: u32 = 22;
const ESPIPE: u32 = 29;
const ERANGE: u32 = 34;
const EOPNOTSUPP: u32 = 95;
const EKEYREJECTED: u32 = 129;

#[derive(Debug)]
enum Kind {
    Dir,
    Text(Vec<u8>),
    LifecycleState,
    Ctl,
    Append {
        data: Vec<u8>,
        base: u64,
        cap: usize,
    },
}

#[derive(Debug)]
struct Node {
    name: String,
    kind: Kind,
    children: Vec<usize>,
}

#[derive(Debug)]
struct FidState {
    node: usize,
    open: Option<u32>,
}

#[derive(Debug)]
struct Parked {
    tag: u16,
    node: usize,
    offset: u64,
    count: u32,
}

/// The fake server state.
#[derive(Debug)]
pub struct FakeServer {
    nodes: Vec<Node>,
    fids: HashMap<u32, FidState>,
    parked: Vec<Parked>,
    outbox: VecDeque<(u16, Response)>,
    msize: u32,
    /// Every line written to a control file: (path, line).
    pub ctl_lines: Vec<(String, String)>,
    /// Every write: (path, offset, data).
    pub writes: Vec<(String, u64, String)>,
    /// Tflush requests received.
    pub flushes: usize,
    /// Of those, how many cancelled a parked read.
    pub flushed_parked: usize,
    /// Current lifecycle state.
    pub lifecycle: String,
    /// Whether a read at the end of a ring parks (else: empty reply).
    pub block_at_end: bool,
    /// Requests received, by name.
    pub requests: Vec<&'static str>,
    next_worker: u32,
}

impl Default for FakeServer {
    fn default() -> Self {
        FakeServer::new()
    }
}

impl FakeServer {
    /// The standard tree.
    pub fn new() -> FakeServer {
        let mut s = FakeServer {
            nodes: vec![Node {
                name: String::new(),
                kind: Kind::Dir,
                children: Vec::new(),
            }],
            fids: HashMap::new(),
            parked: Vec::new(),
            outbox: VecDeque::new(),
            msize: 8192,
            ctl_lines: Vec::new(),
            writes: Vec::new(),
            flushes: 0,
            flushed_parked: 0,
            lifecycle: "ONLINE".into(),
            block_at_end: true,
            requests: Vec::new(),
            next_worker: 2,
        };
        let proc_ = s.add(0, "proc", Kind::Dir);
        s.add(
            proc_,
            "boot",
            Kind::Text(b"coco boot ok\nline two".to_vec()),
        );
        let lc = s.add(proc_, "lifecycle", Kind::Dir);
        s.add(lc, "state", Kind::LifecycleState);
        let queen = s.add(0, "queen", Kind::Dir);
        s.add(queen, "ctl", Kind::Ctl);
        let qlc = s.add(queen, "lifecycle", Kind::Dir);
        s.add(qlc, "ctl", Kind::Ctl);
        let worker = s.add(0, "worker", Kind::Dir);
        let w1 = s.add(worker, "worker-1", Kind::Dir);
        s.add(w1, "telemetry", ring(64));
        let log = s.add(0, "log", Kind::Dir);
        s.add(log, "queen.log", ring(4096));
        let gpu = s.add(0, "gpu", Kind::Dir);
        let g0 = s.add(gpu, "gpu0", Kind::Dir);
        s.add(
            g0,
            "info",
            Kind::Text(br#"{"id":"gpu0","memory_mb":1024}"#.to_vec()),
        );
        s.add(g0, "ctl", Kind::Ctl);
        let models = s.add(gpu, "models", Kind::Dir);
        let avail = s.add(models, "available", Kind::Dir);
        for m in ["stories15m", "tinyllama"] {
            let d = s.add(avail, m, Kind::Dir);
            s.add(
                d,
                "manifest.toml",
                Kind::Text(format!("id = \"{m}\"\n").into_bytes()),
            );
        }
        s.add(models, "active", ring(4096));
        let _ = s.append_path("/gpu/models/active", b"stories15m\n");
        s
    }

    fn add(&mut self, parent: usize, name: &str, kind: Kind) -> usize {
        self.nodes.push(Node {
            name: name.into(),
            kind,
            children: Vec::new(),
        });
        let id = self.nodes.len() - 1;
        self.nodes[parent].children.push(id);
        id
    }

    fn lookup(&self, path: &str) -> Option<usize> {
        let mut cur = 0;
        for n in path.split('/').filter(|n| !n.is_empty()) {
            cur = *self.nodes[cur]
                .children
                .iter()
                .find(|&&c| self.nodes[c].name == n)?;
        }
        Some(cur)
    }

    fn path_of(&self, node: usize) -> String {
        fn walk(s: &FakeServer, cur: usize, target: usize, acc: &mut Vec<usize>) -> bool {
            if cur == target {
                return true;
            }
            for &c in &s.nodes[cur].children {
                acc.push(c);
                if walk(s, c, target, acc) {
                    return true;
                }
                acc.pop();
            }
            false
        }
        let mut acc = Vec::new();
        walk(self, 0, node, &mut acc);
        let mut p = String::new();
        for n in acc {
            p.push('/');
            p.push_str(&self.nodes[n].name);
        }
        if p.is_empty() { "/".into() } else { p }
    }

    fn qid(&self, node: usize) -> Qid {
        let ty = match self.nodes[node].kind {
            Kind::Dir => QTDIR,
            Kind::Append { .. } => QTAPPEND,
            _ => QTFILE,
        };
        Qid {
            ty,
            version: 0,
            path: node as u64,
        }
    }

    fn size(&self, node: usize) -> u64 {
        match &self.nodes[node].kind {
            Kind::Text(t) => t.len() as u64,
            Kind::LifecycleState => self.lifecycle.len() as u64 + 1,
            Kind::Append { data, base, .. } => base + data.len() as u64,
            _ => 0,
        }
    }

    /// Appends to the ring at `path` (test hook) and answers parked reads.
    pub fn append_path(&mut self, path: &str, data: &[u8]) -> Result<u64, u32> {
        let node = self.lookup(path).ok_or(ENOENT)?;
        self.append_node(node, data)
    }

    fn append_node(&mut self, node: usize, bytes: &[u8]) -> Result<u64, u32> {
        let Kind::Append { data, base, cap } = &mut self.nodes[node].kind else {
            return Err(EINVAL);
        };
        let at = *base + data.len() as u64;
        data.extend_from_slice(bytes);
        if data.len() > *cap {
            let drop = data.len() - *cap;
            data.drain(..drop);
            *base += drop as u64;
        }
        let parked = std::mem::take(&mut self.parked);
        for p in parked {
            if p.node == node {
                let r = self.read_node(p.node, p.offset, p.count);
                match r {
                    Some(resp) => self.outbox.push_back((p.tag, resp)),
                    None => self.parked.push(p),
                }
            } else {
                self.parked.push(p);
            }
        }
        Ok(at)
    }

    /// The content of a ring (from its base).
    pub fn ring(&self, path: &str) -> Vec<u8> {
        match self.lookup(path).map(|n| &self.nodes[n].kind) {
            Some(Kind::Append { data, .. }) => data.clone(),
            _ => Vec::new(),
        }
    }

    /// Whether any read is parked.
    pub fn has_parked(&self) -> bool {
        !self.parked.is_empty()
    }

    /// Open fids (leak checks).
    pub fn fid_count(&self) -> usize {
        self.fids.len()
    }

    /// The next reply to send, if any.
    pub fn take_reply(&mut self) -> Option<(u16, Response)> {
        self.outbox.pop_front()
    }

    /// `None`: park (a read at the end of a ring).
    fn read_node(&self, node: usize, offset: u64, count: u32) -> Option<Response> {
        let count = count.min(max_io_count(self.msize)) as usize;
        let slice = |d: &[u8], off: u64| {
            let start = (off as usize).min(d.len());
            let end = (start + count).min(d.len());
            Response::Read {
                data: d[start..end].to_vec(),
            }
        };
        Some(match &self.nodes[node].kind {
            Kind::Dir => Response::Lerror { ecode: EISDIR },
            Kind::Ctl => Response::Lerror { ecode: EACCES },
            Kind::Text(t) => slice(t, offset),
            Kind::LifecycleState => slice(format!("{}\n", self.lifecycle).as_bytes(), offset),
            Kind::Append { data, base, .. } => {
                let end = base + data.len() as u64;
                if offset < *base {
                    Response::Lerror { ecode: ERANGE }
                } else if offset >= end {
                    if self.block_at_end {
                        return None;
                    }
                    Response::Read { data: Vec::new() }
                } else {
                    slice(data, offset - base)
                }
            }
        })
    }

    fn ctl_write(&mut self, node: usize, text: &str) -> Result<(), u32> {
        let path = self.path_of(node);
        let line = text.strip_suffix('\n').ok_or(EINVAL)?;
        if line.contains('\n') {
            return Err(EINVAL);
        }
        self.ctl_lines.push((path.clone(), line.to_owned()));
        match path.as_str() {
            "/queen/ctl" => {
                let v: serde_json::Value = serde_json::from_str(line).map_err(|_| EINVAL)?;
                let obj = v.as_object().ok_or(EINVAL)?;
                if let Some(w) = obj.get("kill") {
                    let w = w.as_str().ok_or(EINVAL)?;
                    let node = self.lookup(&format!("/worker/{w}")).ok_or(EINVAL)?;
                    let wd = self.lookup("/worker").ok_or(EINVAL)?;
                    self.nodes[wd].children.retain(|&c| c != node);
                    let _ = self.append_path("/log/queen.log", format!("killed {w}\n").as_bytes());
                } else if obj.get("spawn").and_then(|s| s.as_str()) == Some("heartbeat") {
                    let id = format!("worker-{}", self.next_worker);
                    self.next_worker += 1;
                    let wd = self.lookup("/worker").ok_or(EINVAL)?;
                    let d = self.add(wd, &id, Kind::Dir);
                    self.add(d, "telemetry", ring(64));
                    let _ =
                        self.append_path("/log/queen.log", format!("spawned {id}\n").as_bytes());
                } else if !(obj.contains_key("spawn")
                    || obj.contains_key("bind")
                    || obj.contains_key("mount"))
                {
                    return Err(EINVAL);
                }
                Ok(())
            }
            "/queen/lifecycle/ctl" => {
                self.lifecycle = match line {
                    "cordon" => "DRAINING",
                    "drain" | "quiesce" => "QUIESCED",
                    "resume" => "ONLINE",
                    "reset" => "BOOTING",
                    _ => return Err(EINVAL),
                }
                .into();
                Ok(())
            }
            p if p.starts_with("/gpu/") => {
                if line.starts_with("LEASE worker-") || line.starts_with("RELEASE worker-") {
                    Ok(())
                } else {
                    Err(EINVAL)
                }
            }
            _ => Err(EINVAL),
        }
    }

    /// Handles one request; the reply goes to the outbox (or the read parks).
    pub fn handle(&mut self, tag: u16, req: Request) {
        self.requests.push(req.name());
        let resp = match self.dispatch(tag, req) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(ecode) => Response::Lerror { ecode },
        };
        self.outbox.push_back((tag, resp));
    }

    fn fid(&self, fid: u32) -> Result<&FidState, u32> {
        self.fids.get(&fid).ok_or(EBADF)
    }

    fn dispatch(&mut self, tag: u16, req: Request) -> Result<Option<Response>, u32> {
        Ok(Some(match req {
            Request::Version { msize, .. } => {
                self.msize = msize.min(8192);
                self.fids.clear();
                Response::Version {
                    msize: self.msize,
                    version: "9P2000.L".into(),
                }
            }
            Request::Attach {
                fid, uname, aname, ..
            } => {
                if self.fids.contains_key(&fid) {
                    return Err(EEXIST);
                }
                let (role, _) = split_uname(&uname).ok_or(EINVAL)?;
                if !(role.as_str() == "queen" && aname.is_empty()) {
                    let t = Ticket::verify(&aname, FAKE_SECRET).map_err(|_| EKEYREJECTED)?;
                    if t.role != role {
                        return Err(EKEYREJECTED);
                    }
                }
                self.fids.insert(
                    fid,
                    FidState {
                        node: 0,
                        open: None,
                    },
                );
                Response::Attach { qid: self.qid(0) }
            }
            Request::Flush { oldtag } => {
                self.flushes += 1;
                let before = self.parked.len();
                self.parked.retain(|p| p.tag != oldtag);
                self.flushed_parked += before - self.parked.len();
                Response::Flush
            }
            Request::Walk { fid, newfid, names } => {
                let start = self.fid(fid)?.node;
                if newfid != fid && self.fids.contains_key(&newfid) {
                    return Err(EEXIST);
                }
                let mut cur = start;
                let mut qids = Vec::new();
                for n in &names {
                    if !matches!(self.nodes[cur].kind, Kind::Dir) {
                        if qids.is_empty() {
                            return Err(ENOTDIR);
                        }
                        break;
                    }
                    match self.nodes[cur]
                        .children
                        .iter()
                        .find(|&&c| self.nodes[c].name == *n)
                    {
                        Some(&c) => {
                            cur = c;
                            qids.push(self.qid(c));
                        }
                        None if qids.is_empty() => return Err(ENOENT),
                        None => break,
                    }
                }
                if qids.len() == names.len() {
                    self.fids.insert(
                        newfid,
                        FidState {
                            node: cur,
                            open: None,
                        },
                    );
                }
                Response::Walk { qids }
            }
            Request::Lopen { fid, flags } => {
                let st = self.fid(fid)?;
                if st.open.is_some() {
                    return Err(EBADF);
                }
                let node = st.node;
                let mode = flags & O_ACCMODE;
                match (&self.nodes[node].kind, mode) {
                    (Kind::Ctl, O_RDONLY) => return Err(EACCES),
                    (Kind::Text(_) | Kind::LifecycleState | Kind::Dir, m) if m != O_RDONLY => {
                        return Err(EACCES);
                    }
                    _ => {}
                }
                if let Some(st) = self.fids.get_mut(&fid) {
                    st.open = Some(flags);
                }
                Response::Lopen {
                    qid: self.qid(node),
                    iounit: 0,
                }
            }
            Request::Read { fid, offset, count } => {
                let st = self.fid(fid)?;
                if st.open.is_none_or(|f| f & O_ACCMODE == O_WRONLY) {
                    return Err(EBADF);
                }
                let node = st.node;
                match self.read_node(node, offset, count) {
                    Some(r) => r,
                    None => {
                        self.parked.push(Parked {
                            tag,
                            node,
                            offset,
                            count,
                        });
                        return Ok(None);
                    }
                }
            }
            Request::Write { fid, offset, data } => {
                let st = self.fid(fid)?;
                if st.open.is_none_or(|f| f & O_ACCMODE == O_RDONLY) {
                    return Err(EBADF);
                }
                let node = st.node;
                let path = self.path_of(node);
                self.writes
                    .push((path, offset, String::from_utf8_lossy(&data).into_owned()));
                let n = data.len() as u32;
                match &self.nodes[node].kind {
                    Kind::Append { .. } => {
                        let end = self.size(node);
                        if offset != u64::MAX && offset != end {
                            return Err(ESPIPE);
                        }
                        self.append_node(node, &data)?;
                    }
                    Kind::Ctl => {
                        let text = String::from_utf8(data).map_err(|_| EINVAL)?;
                        self.ctl_write(node, &text)?;
                    }
                    _ => return Err(EACCES),
                }
                Response::Write { count: n }
            }
            Request::Clunk { fid } => {
                self.fids.remove(&fid).ok_or(EBADF)?;
                Response::Clunk
            }
            Request::Getattr { fid, .. } => {
                let node = self.fid(fid)?.node;
                let dir = matches!(self.nodes[node].kind, Kind::Dir);
                Response::Getattr(Attr {
                    valid: GETATTR_BASIC,
                    qid: self.qid(node),
                    mode: if dir { 0o040_755 } else { 0o100_644 },
                    uid: 0,
                    gid: 0,
                    nlink: 1,
                    rdev: 0,
                    size: self.size(node),
                    blksize: 4096,
                    blocks: 0,
                    atime_sec: 0,
                    atime_nsec: 0,
                    mtime_sec: 0,
                    mtime_nsec: 0,
                    ctime_sec: 0,
                    ctime_nsec: 0,
                    btime_sec: 0,
                    btime_nsec: 0,
                    generation: 0,
                    data_version: 0,
                })
            }
            Request::Readdir { fid, offset, count } => {
                let st = self.fid(fid)?;
                if st.open.is_none() {
                    return Err(EBADF);
                }
                let node = st.node;
                if !matches!(self.nodes[node].kind, Kind::Dir) {
                    return Err(ENOTDIR);
                }
                let mut entries = vec![
                    DirEntry {
                        qid: self.qid(node),
                        offset: 1,
                        ty: DT_DIR,
                        name: ".".into(),
                    },
                    DirEntry {
                        qid: self.qid(node),
                        offset: 2,
                        ty: DT_DIR,
                        name: "..".into(),
                    },
                ];
                for (i, &c) in self.nodes[node].children.iter().enumerate() {
                    let dir = matches!(self.nodes[c].kind, Kind::Dir);
                    entries.push(DirEntry {
                        qid: self.qid(c),
                        offset: i as u64 + 3,
                        ty: if dir { DT_DIR } else { DT_REG },
                        name: self.nodes[c].name.clone(),
                    });
                }
                let skip = (offset as usize).min(entries.len());
                let mut data = Vec::new();
                encode_dirents(
                    &entries[skip..],
                    count.min(max_io_count(self.msize)),
                    &mut data,
                );
                Response::Readdir { data }
            }
            _ => return Err(EOPNOTSUPP),
        }))
    }
}

fn ring(cap: usize) -> Kind {
    Kind::Append {
        data: Vec::new(),
        base: 0,
        cap,
    }
}

fn lock(s: &Mutex<FakeServer>) -> MutexGuard<'_, FakeServer> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// An in-memory transport to a shared [`FakeServer`]. `recv` polls `abort`
/// (the cancel contract: `io::ErrorKind::Interrupted` when it says so and
/// no reply is ready).
pub struct FakeTransport {
    pub server: Arc<Mutex<FakeServer>>,
    abort: Box<dyn Fn() -> bool + Send>,
    /// Give up (as a dead transport) after waiting this long.
    pub give_up: Duration,
}

impl std::fmt::Debug for FakeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeTransport")
    }
}

impl FakeTransport {
    pub fn new(server: Arc<Mutex<FakeServer>>, abort: impl Fn() -> bool + Send + 'static) -> Self {
        FakeTransport {
            server,
            abort: Box::new(abort),
            give_up: Duration::from_secs(20),
        }
    }
}

impl Transport for FakeTransport {
    type Error = io::Error;

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let (tag, req) = decode_request(frame, MAX_MSIZE)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        lock(&self.server).handle(tag, req);
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let start = std::time::Instant::now();
        loop {
            if let Some((tag, resp)) = lock(&self.server).take_reply() {
                buf.clear();
                encode_response(tag, &resp, buf)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                return Ok(());
            }
            if (self.abort)() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
            }
            if start.elapsed() > self.give_up {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "fake server: no reply",
                ));
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Serves one Unix stream connection until EOF.
pub fn serve_stream(server: Arc<Mutex<FakeServer>>, stream: UnixStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(2)));
    serve(server, stream);
}

/// Serves one TCP connection until EOF.
pub fn serve_tcp(server: Arc<Mutex<FakeServer>>, stream: std::net::TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(2)));
    serve(server, stream);
}

/// Frames in, replies out, until EOF. `stream` must have a short read
/// timeout (parked reads are answered between reads).
fn serve(server: Arc<Mutex<FakeServer>>, mut stream: impl Read + Write) {
    let mut inbuf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        loop {
            let size = match frame_size(&inbuf, MAX_MSIZE) {
                Ok(Some(size)) if inbuf.len() >= size => size,
                Ok(_) => break,
                Err(_) => return,
            };
            let frame: Vec<u8> = inbuf.drain(..size).collect();
            let Ok((tag, req)) = decode_request(&frame, MAX_MSIZE) else {
                return;
            };
            lock(&server).handle(tag, req);
        }
        loop {
            let Some((tag, resp)) = lock(&server).take_reply() else {
                break;
            };
            let mut out = Vec::new();
            if encode_response(tag, &resp, &mut out).is_err() || stream.write_all(&out).is_err() {
                return;
            }
        }
    }
}
