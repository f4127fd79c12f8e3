//! Conformance harness: a real [`Server`] on a temporary directory with both
//! host transports (a Unix socket and loopback TCP), clients over either,
//! and a raw-frame connection for sending arbitrary bytes.
//!
//! Every scenario is written once as `fn scenario(kind: Kind)` and run over
//! both transports by [`both_transports!`], which generates `unix::scenario`
//! and `tcp::scenario` tests.
//!
//! Waits are bounded by [`IO_TIMEOUT`], a hang guard (a socket read timeout
//! that fails the test), never a speed check. Time-based rules (ticket and
//! lease TTLs) move the hive's [`ManualClock`].
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ninedoor::Hive;
use ninedoor::clock::ManualClock;
use ninedoor::config::{GpuSpec, HiveSpec, ModelSpec, Secrets};
use ninedoor::effects::RecordingEffects;
use ninedoor::server::Server;
use ninedoor::transport::ListenAddress;
use secure9p::client::{Client, ClientError, Fid, Transport};
use secure9p::limits::{MAX_MSIZE, NOFID, NONUNAME, NOTAG};
use secure9p::wire::{DirEntry, O_RDONLY, O_WRONLY, Qid, decode_dirents};
use secure9p::{Request, Response, Role, Ticket, decode_response, encode_request, frame_size};

/// The hive's clock at start.
pub const T0: u64 = 1_700_000_000_000;
/// Role secrets configured in `HiveSpec.secrets`.
pub const QUEEN_SECRET: &str = "conformance-queen-secret";
/// Heartbeat worker secret.
pub const HB_SECRET: &str = "conformance-heartbeat-secret";
/// GPU worker secret.
pub const GPU_SECRET: &str = "conformance-gpu-secret";
/// Hang guard for every socket read.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Linux errno values as they travel in Rlerror.
pub mod e {
    pub const EPERM: u32 = 1;
    pub const ENOENT: u32 = 2;
    pub const EBADF: u32 = 9;
    pub const EAGAIN: u32 = 11;
    pub const EACCES: u32 = 13;
    pub const EBUSY: u32 = 16;
    pub const ENOTDIR: u32 = 20;
    pub const EISDIR: u32 = 21;
    pub const EINVAL: u32 = 22;
    pub const ESPIPE: u32 = 29;
    pub const EPROTO: u32 = 71;
    pub const EMSGSIZE: u32 = 90;
    pub const EOPNOTSUPP: u32 = 95;
    /// Cohesix's ELIMIT on the wire.
    pub const EDQUOT: u32 = 122;
    pub const EKEYEXPIRED: u32 = 127;
    pub const EKEYREVOKED: u32 = 128;
    pub const EKEYREJECTED: u32 = 129;
}

/// Which host transport a scenario runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The 0600 Unix socket in the state directory.
    Unix,
    /// Loopback TCP.
    Tcp,
}

/// Generates `unix::<name>` and `tcp::<name>` tests calling `name(Kind)`.
macro_rules! both_transports {
    ($($name:ident),* $(,)?) => {
        mod unix {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::support::Kind::Unix)
                }
            )*
        }
        mod tcp {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::support::Kind::Tcp)
                }
            )*
        }
    };
}

/// A byte stream to the server.
#[derive(Debug)]
pub enum Stream {
    /// Unix socket.
    Unix(UnixStream),
    /// TCP.
    Tcp(TcpStream),
}

impl Stream {
    fn set_timeout(&self, t: Option<Duration>) {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t).unwrap(),
            Stream::Tcp(s) => s.set_read_timeout(t).unwrap(),
        }
    }

    /// Shuts the write half (the server sees EOF).
    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

fn hang_guard(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// `secure9p::client::Transport` over a socket: send = write_all, recv =
/// 4-byte size (checked) then the rest.
#[derive(Debug)]
pub struct Wire(pub Stream);

impl Transport for Wire {
    type Error = io::Error;

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.0.write_all(frame)
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut head = [0u8; 4];
        if let Err(e) = self.0.read_exact(&mut head) {
            assert!(
                !hang_guard(&e),
                "hang guard: no reply within {IO_TIMEOUT:?}"
            );
            return Err(e);
        }
        let size = frame_size(&head, MAX_MSIZE)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            .unwrap_or(0);
        buf.extend_from_slice(&head);
        buf.resize(size, 0);
        if let Err(e) = self.0.read_exact(&mut buf[4..]) {
            assert!(
                !hang_guard(&e),
                "hang guard: no reply within {IO_TIMEOUT:?}"
            );
            return Err(e);
        }
        Ok(())
    }
}

/// A client session.
pub type C = Client<Wire>;
/// A client error.
pub type CErr = ClientError<io::Error>;

/// The errno of a failed call (panics on success or on a non-Rlerror failure).
#[track_caller]
pub fn errno<T: std::fmt::Debug>(r: Result<T, CErr>) -> u32 {
    match r {
        Ok(v) => panic!("expected an Rlerror, got success: {v:?}"),
        Err(ClientError::Remote { errno }) => errno,
        Err(other) => panic!("expected an Rlerror, got {other:?}"),
    }
}

/// The test hive spec: two GPUs, two models, 4 KiB telemetry rings, secrets.
pub fn spec() -> HiveSpec {
    let gpu = |id: &str| GpuSpec {
        id: id.into(),
        name: format!("Emulated {id}"),
        memory_mb: 4096,
        sm_count: 8,
        driver_version: "emu-1".into(),
        runtime_version: "emu-rt-1".into(),
    };
    HiveSpec {
        name: "conformance-hive".into(),
        gpus: vec![gpu("gpu0"), gpu("gpu1")],
        models: vec![ModelSpec {
            id: "tiny".into(),
            manifest_toml: "name = \"tiny\"\n".into(),
        }],
        telemetry_ring_bytes: 4096,
        secrets: Secrets {
            queen: Some(QUEEN_SECRET.into()),
            worker_heartbeat: Some(HB_SECRET.into()),
            worker_gpu: Some(GPU_SECRET.into()),
        },
        ..HiveSpec::default()
    }
}

/// A running NineDoor with both transports.
pub struct Harness {
    // Dropped first: stops the listeners and the ticker.
    pub server: Server,
    pub hive: Arc<Hive>,
    pub clock: Arc<ManualClock>,
    pub effects: Arc<RecordingEffects>,
    pub unix_path: PathBuf,
    pub tcp_addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Harness {
    /// Starts a server on a fresh hive.
    pub fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let effects = Arc::new(RecordingEffects::new());
        let hive = Hive::new(spec(), dir.path(), clock.clone(), effects.clone()).unwrap();
        hive.set_online().unwrap();
        let hive = Arc::new(hive);
        let mut server = Server::new(hive.clone());
        let unix_path = dir.path().join("ninedoor.sock");
        server.listen_unix(&unix_path).unwrap();
        let tcp_addr = match server.listen_tcp("127.0.0.1:0".parse().unwrap()).unwrap() {
            ListenAddress::Tcp(a) => a,
            other => panic!("tcp listener at {other:?}"),
        };
        Harness {
            server,
            hive,
            clock,
            effects,
            unix_path,
            tcp_addr,
            dir,
        }
    }

    /// A new connection (read timeout = hang guard).
    pub fn stream(&self, kind: Kind) -> Stream {
        let s = match kind {
            Kind::Unix => Stream::Unix(UnixStream::connect(&self.unix_path).unwrap()),
            Kind::Tcp => Stream::Tcp(TcpStream::connect(self.tcp_addr).unwrap()),
        };
        s.set_timeout(Some(IO_TIMEOUT));
        s
    }

    /// A raw connection, not yet versioned.
    pub fn raw(&self, kind: Kind) -> Raw {
        Raw {
            s: self.stream(kind),
        }
    }

    /// A raw connection after Tversion(msize) and a queen Tattach on fid 0.
    pub fn raw_queen(&self, kind: Kind, msize: u32) -> Raw {
        let mut r = self.raw(kind);
        r.version_ok(msize);
        let aname = self.queen_aname(kind);
        match r.attach(1, 0, "queen", &aname) {
            Response::Attach { .. } => {}
            other => panic!("queen attach over {kind:?}: {other:?}"),
        }
        r
    }

    /// A raw connection attached as `uname` with `aname` on fid 0.
    pub fn raw_attached(&self, kind: Kind, msize: u32, uname: &str, aname: &str) -> Raw {
        let mut r = self.raw(kind);
        r.version_ok(msize);
        match r.attach(1, 0, uname, aname) {
            Response::Attach { .. } => {}
            other => panic!("attach as {uname} over {kind:?}: {other:?}"),
        }
        r
    }

    /// A versioned client (msize 65536).
    pub fn client(&self, kind: Kind) -> C {
        Client::connect(Wire(self.stream(kind)), MAX_MSIZE).unwrap()
    }

    /// What the queen puts in `aname`: nothing on the Unix socket (its 0600
    /// mode is the credential), a queen ticket over TCP.
    pub fn queen_aname(&self, kind: Kind) -> String {
        match kind {
            Kind::Unix => String::new(),
            Kind::Tcp => self.queen_ticket(),
        }
    }

    /// A queen ticket issued now.
    pub fn queen_ticket(&self) -> String {
        Ticket::new(Role::Queen, self.clock_now())
            .mint(QUEEN_SECRET.as_bytes())
            .unwrap()
    }

    /// A heartbeat ticket for `worker`, issued now (role defaults).
    pub fn hb_ticket(&self, worker: &str) -> String {
        let mut t = Ticket::new(Role::WorkerHeartbeat, self.clock_now());
        t.subject = Some(worker.into());
        t.mint(HB_SECRET.as_bytes()).unwrap()
    }

    /// A GPU ticket for `worker`, issued now (role defaults).
    pub fn gpu_ticket(&self, worker: &str) -> String {
        let mut t = Ticket::new(Role::WorkerGpu, self.clock_now());
        t.subject = Some(worker.into());
        t.mint(GPU_SECRET.as_bytes()).unwrap()
    }

    /// The hive's clock.
    pub fn clock_now(&self) -> u64 {
        self.hive.now_ms()
    }

    /// A queen client and its root fid.
    pub fn queen(&self, kind: Kind) -> (C, Fid) {
        let mut c = self.client(kind);
        let root = c.attach("queen", &self.queen_aname(kind)).unwrap();
        (c, root)
    }

    /// A heartbeat worker client (ticket with subject) and its root fid.
    pub fn heartbeat(&self, kind: Kind, worker: &str) -> (C, Fid) {
        let mut c = self.client(kind);
        let root = c
            .attach(
                &format!("worker-heartbeat:{worker}"),
                &self.hb_ticket(worker),
            )
            .unwrap();
        (c, root)
    }

    /// A GPU worker client and its root fid.
    pub fn gpu_worker(&self, kind: Kind, worker: &str) -> (C, Fid) {
        let mut c = self.client(kind);
        let root = c
            .attach(&format!("worker-gpu:{worker}"), &self.gpu_ticket(worker))
            .unwrap();
        (c, root)
    }

    /// Worker ids known to the hive.
    pub fn worker_ids(&self) -> Vec<String> {
        self.hive.workers().into_iter().map(|w| w.id).collect()
    }

    /// Writes `cmds` to /queen/ctl over the wire and returns the ids of the
    /// workers that appeared.
    pub fn spawn_via(&self, c: &mut C, root: Fid, cmds: &str) -> Vec<String> {
        let before = self.worker_ids();
        write_file(c, root, "/queen/ctl", 0, cmds.as_bytes()).unwrap();
        self.worker_ids()
            .into_iter()
            .filter(|w| !before.contains(w))
            .collect()
    }

    /// Spawns one heartbeat worker through /queen/ctl; returns its id.
    pub fn spawn_heartbeat_via(&self, c: &mut C, root: Fid) -> String {
        let mut ids = self.spawn_via(c, root, "{\"spawn\":\"heartbeat\",\"ticks\":10}\n");
        assert_eq!(ids.len(), 1, "one new worker");
        ids.remove(0)
    }
}

/// Walks `path`, opens it write-only, writes `data` at `offset`, clunks.
pub fn write_file(c: &mut C, root: Fid, path: &str, offset: u64, data: &[u8]) -> Result<u32, CErr> {
    let f = c.walk_path(root, path)?;
    let r = c.lopen(f, O_WRONLY).and_then(|_| c.write(f, offset, data));
    let _ = c.clunk(f);
    r
}

/// Walks `path`, opens it read-only, reads to the first empty read, clunks.
pub fn read_file(c: &mut C, root: Fid, path: &str) -> Result<Vec<u8>, CErr> {
    let f = c.walk_path(root, path)?;
    let r = c.lopen(f, O_RDONLY).and_then(|_| c.read_to_end(f));
    let _ = c.clunk(f);
    r
}

/// [`read_file`] as text.
pub fn read_text(c: &mut C, root: Fid, path: &str) -> Result<String, CErr> {
    read_file(c, root, path).map(|b| String::from_utf8(b).unwrap())
}

/// Names in a directory (without `.` and `..`).
pub fn ls(c: &mut C, root: Fid, path: &str) -> Result<Vec<String>, CErr> {
    let f = c.walk_path(root, path)?;
    let r = c.lopen(f, O_RDONLY).and_then(|_| c.readdir_all(f));
    let _ = c.clunk(f);
    Ok(r?
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != "." && n != "..")
        .collect())
}

/// Builds a frame byte by byte (for frames the codec refuses to encode).
#[derive(Debug)]
pub struct FrameBuf(Vec<u8>);

impl FrameBuf {
    /// `size[4]` (patched by [`FrameBuf::finish`]) `type[1] tag[2]`.
    pub fn new(ty: u8, tag: u16) -> FrameBuf {
        let mut v = vec![0u8; 4];
        v.push(ty);
        v.extend_from_slice(&tag.to_le_bytes());
        FrameBuf(v)
    }
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A well-formed string.
    pub fn str(self, s: &str) -> Self {
        self.u16(u16::try_from(s.len()).unwrap())
            .bytes(s.as_bytes())
    }
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    /// The frame with its true size.
    pub fn finish(mut self) -> Vec<u8> {
        let n = u32::try_from(self.0.len()).unwrap();
        self.0[..4].copy_from_slice(&n.to_le_bytes());
        self.0
    }
}

/// A raw 9P connection: arbitrary bytes out, whole frames (or EOF) in.
#[derive(Debug)]
pub struct Raw {
    pub s: Stream,
}

impl Raw {
    /// Sends bytes as they are.
    pub fn send_bytes(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    /// Sends bytes; returns whether the write went through (the server may
    /// already have closed the connection).
    pub fn try_send_bytes(&mut self, b: &[u8]) -> bool {
        self.s.write_all(b).is_ok()
    }

    /// Encodes and sends a request.
    pub fn send(&mut self, tag: u16, req: &Request) {
        let mut out = Vec::new();
        encode_request(tag, req, &mut out).unwrap();
        self.send_bytes(&out);
    }

    /// Reads one whole frame; `None` when the server closed the connection.
    pub fn recv_frame(&mut self) -> Option<Vec<u8>> {
        let mut head = [0u8; 4];
        match read_all(&mut self.s, &mut head) {
            Ok(0) => return None,
            Ok(4) => {}
            Ok(n) => panic!("connection closed inside a frame header ({n} bytes)"),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading a reply: {e}"),
        }
        let size = u32::from_le_bytes(head) as usize;
        assert!(
            (7..=MAX_MSIZE as usize).contains(&size),
            "reply frame declares {size} bytes"
        );
        let mut frame = head.to_vec();
        frame.resize(size, 0);
        match read_all(&mut self.s, &mut frame[4..]) {
            Ok(n) if n == size - 4 => Some(frame),
            Ok(n) => panic!("connection closed inside a {size}-byte frame after {n}"),
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Reads and decodes one reply (panics on EOF).
    pub fn recv(&mut self) -> (u16, Response) {
        let frame = self.recv_frame().expect("a reply, not EOF");
        decode_response(&frame, MAX_MSIZE).unwrap()
    }

    /// Sends `req` on `tag` and returns the reply, which must carry `tag`.
    #[track_caller]
    pub fn call(&mut self, tag: u16, req: &Request) -> Response {
        self.send(tag, req);
        let (t, r) = self.recv();
        assert_eq!(t, tag, "reply tag for {req:?} ({r:?})");
        r
    }

    /// Sends raw bytes and returns the reply on `tag`.
    #[track_caller]
    pub fn call_bytes(&mut self, tag: u16, frame: &[u8]) -> Response {
        self.send_bytes(frame);
        let (t, r) = self.recv();
        assert_eq!(t, tag, "reply tag ({r:?})");
        r
    }

    /// Asserts the server closed the connection (EOF or reset) without
    /// replying.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        if let Some(f) = self.recv_frame() {
            let decoded = decode_response(&f, MAX_MSIZE);
            panic!("expected the connection to be closed, got a frame: {decoded:?}");
        }
    }

    /// Tversion on NOTAG.
    pub fn version(&mut self, msize: u32, version: &str) -> Response {
        self.call(
            NOTAG,
            &Request::Version {
                msize,
                version: version.into(),
            },
        )
    }

    /// Tversion "9P2000.L" that must succeed.
    pub fn version_ok(&mut self, msize: u32) -> u32 {
        match self.version(msize, "9P2000.L") {
            Response::Version { msize, version } if version == "9P2000.L" => msize,
            other => panic!("Tversion: {other:?}"),
        }
    }

    /// Tattach with afid NOFID.
    pub fn attach(&mut self, tag: u16, fid: u32, uname: &str, aname: &str) -> Response {
        self.call(
            tag,
            &Request::Attach {
                fid,
                afid: NOFID,
                uname: uname.into(),
                aname: aname.into(),
                n_uname: NONUNAME,
            },
        )
    }

    /// Twalk.
    pub fn walk(&mut self, tag: u16, fid: u32, newfid: u32, names: &[&str]) -> Response {
        self.call(
            tag,
            &Request::Walk {
                fid,
                newfid,
                names: names.iter().map(|n| n.to_string()).collect(),
            },
        )
    }

    /// Twalk that must fully succeed; returns the qids.
    #[track_caller]
    pub fn walk_ok(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Vec<Qid> {
        match self.walk(1, fid, newfid, names) {
            Response::Walk { qids } if qids.len() == names.len() => qids,
            other => panic!("walk {names:?}: {other:?}"),
        }
    }

    /// Tlopen.
    pub fn lopen(&mut self, tag: u16, fid: u32, flags: u32) -> Response {
        self.call(tag, &Request::Lopen { fid, flags })
    }

    /// Tlopen that must succeed; returns (qid, iounit).
    #[track_caller]
    pub fn lopen_ok(&mut self, fid: u32, flags: u32) -> (Qid, u32) {
        match self.lopen(1, fid, flags) {
            Response::Lopen { qid, iounit } => (qid, iounit),
            other => panic!("lopen fid {fid}: {other:?}"),
        }
    }

    /// Tread.
    pub fn read(&mut self, tag: u16, fid: u32, offset: u64, count: u32) -> Response {
        self.call(tag, &Request::Read { fid, offset, count })
    }

    /// Tread that must succeed.
    #[track_caller]
    pub fn read_ok(&mut self, fid: u32, offset: u64, count: u32) -> Vec<u8> {
        match self.read(1, fid, offset, count) {
            Response::Read { data } => data,
            other => panic!("read fid {fid} at {offset}: {other:?}"),
        }
    }

    /// Twrite.
    pub fn write(&mut self, tag: u16, fid: u32, offset: u64, data: &[u8]) -> Response {
        self.call(
            tag,
            &Request::Write {
                fid,
                offset,
                data: data.to_vec(),
            },
        )
    }

    /// Tclunk.
    pub fn clunk(&mut self, tag: u16, fid: u32) -> Response {
        self.call(tag, &Request::Clunk { fid })
    }

    /// Tgetattr (all bits).
    pub fn getattr(&mut self, tag: u16, fid: u32) -> Response {
        self.call(
            tag,
            &Request::Getattr {
                fid,
                mask: secure9p::wire::GETATTR_ALL,
            },
        )
    }

    /// Tgetattr that must succeed; returns the qid.
    #[track_caller]
    pub fn qid_of(&mut self, fid: u32) -> Qid {
        match self.getattr(1, fid) {
            Response::Getattr(a) => a.qid,
            other => panic!("getattr fid {fid}: {other:?}"),
        }
    }

    /// Treaddir.
    pub fn readdir(&mut self, tag: u16, fid: u32, offset: u64, count: u32) -> Response {
        self.call(tag, &Request::Readdir { fid, offset, count })
    }

    /// Treaddir that must succeed; returns the raw data.
    #[track_caller]
    pub fn readdir_ok(&mut self, fid: u32, offset: u64, count: u32) -> Vec<DirEntry> {
        match self.readdir(1, fid, offset, count) {
            Response::Readdir { data } => {
                assert!(
                    data.len() <= count as usize,
                    "Rreaddir of {} bytes for count {count}",
                    data.len()
                );
                decode_dirents(&data).unwrap()
            }
            other => panic!("readdir fid {fid} at {offset}: {other:?}"),
        }
    }

    /// Reads an open append-only file from `offset` until the first empty
    /// read; returns the bytes and the offset of the end.
    pub fn read_to_eof(&mut self, fid: u32, mut offset: u64) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        loop {
            let d = self.read_ok(fid, offset, u32::MAX);
            if d.is_empty() {
                return (out, offset);
            }
            offset += d.len() as u64;
            out.extend(d);
        }
    }
}

fn read_all(s: &mut Stream, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match s.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if hang_guard(&e) => panic!("hang guard: nothing within {IO_TIMEOUT:?}"),
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Whether the error is the given remote errno.
pub fn is_errno(r: &Response, errno: u32) -> bool {
    matches!(r, Response::Lerror { ecode } if *ecode == errno)
}

/// Asserts an Rlerror with `errno`.
#[track_caller]
pub fn assert_lerror(r: &Response, errno: u32) {
    assert!(
        is_errno(r, errno),
        "expected Rlerror {} ({errno}), got {r:?}",
        secure9p::errno::name(errno)
    );
}

/// Asserts any Rlerror.
#[track_caller]
pub fn assert_any_lerror(r: &Response) {
    assert!(
        matches!(r, Response::Lerror { .. }),
        "expected an Rlerror, got {r:?}"
    );
}
