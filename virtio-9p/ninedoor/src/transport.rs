//! Host transports: 9P frames over byte streams — a Unix socket (mode 0600,
//! in the hive's state directory) and loopback TCP.
//!
//! Each accepted connection gets its own thread and its own handler, so one
//! client can never stall or crash another. The stream is cut into frames
//! with `secure9p::frame_size`, which checks the declared size against the
//! connection's current msize *before* anything is allocated; a frame that
//! fails that check closes that connection only, with an audit line. Replies
//! go through a [`ReplySink`] shared with the handler's helper threads (a
//! blocked `tail` answers later, from another thread), which writes each
//! frame whole under a lock.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use secure9p::frame_size;
use secure9p::limits::HEADER_LEN;

/// Most connections a listener serves at once; more are refused (and audited).
pub const MAX_CONNECTIONS: usize = 256;
/// A frame larger than the negotiated msize but at most this big is read
/// and discarded in small chunks (never buffered) and answered with an
/// error on its tag, so the session survives an oversized write; anything
/// bigger is treated as a broken stream and closes the connection.
pub const MAX_DISCARDED_FRAME: usize = 1 << 20;

/// Who is on the other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A local process on the Unix socket (credentials from `SO_PEERCRED`).
    Unix {
        /// Peer user id.
        uid: u32,
        /// Peer process id.
        pid: i32,
    },
    /// A loopback TCP client.
    Tcp(SocketAddr),
    /// A guest, through its VM process's virtio-9p bridge.
    Guest(String),
    /// An in-process client (tests, benchmarks).
    Local,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Unix { uid, pid } => write!(f, "unix(uid={uid},pid={pid})"),
            Peer::Tcp(addr) => write!(f, "tcp({addr})"),
            Peer::Guest(name) => write!(f, "guest({name})"),
            Peer::Local => write!(f, "local"),
        }
    }
}

/// Writes whole reply frames to a connection; cheap to clone.
#[derive(Clone)]
pub struct ReplySink {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for ReplySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplySink")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl ReplySink {
    /// A sink writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> ReplySink {
        ReplySink {
            out: Arc::new(Mutex::new(out)),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sends one frame. After a write error or [`ReplySink::close`] every
    /// send fails, so helper threads of a dead connection stop quietly.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut out = self
            .out
            .lock()
            .map_err(|_| io::Error::other("reply sink poisoned"))?;
        let result = out.write_all(frame).and_then(|()| out.flush());
        if result.is_err() {
            self.closed.store(true, Ordering::Release);
        }
        result
    }

    /// Marks the connection closed.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// One connection's protocol handler (a 9P session).
pub trait ConnectionHandler: Send {
    /// Largest frame accepted now (the negotiated msize, or the maximum
    /// before `Tversion`).
    fn max_frame(&self) -> u32;
    /// Handles one whole frame; replies go to `sink` (now or later).
    fn handle(&mut self, frame: &[u8], sink: &ReplySink);
    /// A frame of `size` bytes (more than [`ConnectionHandler::max_frame`])
    /// with tag `tag` was read and discarded; answer it with an error.
    fn oversized(&mut self, tag: u16, size: usize, sink: &ReplySink);
    /// The connection is gone; release everything.
    fn closed(&mut self);
}

/// Makes a handler per connection and records transport-level events.
pub trait HandlerFactory: Send + Sync + 'static {
    /// The handler type.
    type Handler: ConnectionHandler + 'static;
    /// A handler for a new connection from `peer`.
    fn connect(&self, peer: Peer) -> Self::Handler;
    /// An audit line (bad frames, refused connections).
    fn audit(&self, line: &str);
}

/// Why a stream stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The peer closed it between frames.
    Eof,
    /// A frame was malformed (the text says how); the connection was closed.
    BadFrame(String),
    /// Reading failed (including a peer closing mid-frame).
    Io(String),
}

/// Serves one byte stream until it ends: cuts frames, hands them to
/// `handler`. The caller closes the socket afterwards.
pub fn serve_stream(
    mut input: impl Read,
    sink: &ReplySink,
    handler: &mut dyn ConnectionHandler,
) -> StreamEnd {
    let mut frame = Vec::new();
    let end = loop {
        let mut header = [0u8; 4];
        match read_full(&mut input, &mut header) {
            Ok(0) => break StreamEnd::Eof,
            Ok(4) => {}
            Ok(_) => break StreamEnd::Io("connection closed inside a frame header".into()),
            Err(e) => break StreamEnd::Io(e.to_string()),
        }
        let size = match frame_size(&header, handler.max_frame()) {
            Ok(Some(size)) => size,
            Ok(None) => break StreamEnd::Io("short header".into()),
            Err(e) => {
                let declared = u32::from_le_bytes(header) as usize;
                if !(HEADER_LEN..=MAX_DISCARDED_FRAME).contains(&declared) {
                    break StreamEnd::BadFrame(e.to_string());
                }
                match discard_frame(&mut input, declared) {
                    Ok(tag) => {
                        handler.oversized(tag, declared, sink);
                        continue;
                    }
                    Err(e) => break StreamEnd::Io(e.to_string()),
                }
            }
        };
        if size < HEADER_LEN {
            break StreamEnd::BadFrame(format!("frame of {size} bytes"));
        }
        frame.clear();
        frame.extend_from_slice(&header);
        frame.resize(size, 0);
        match read_full(&mut input, &mut frame[4..]) {
            Ok(n) if n == size - 4 => {}
            Ok(_) => break StreamEnd::Io("connection closed inside a frame".into()),
            Err(e) => break StreamEnd::Io(e.to_string()),
        }
        handler.handle(&frame, sink);
        if sink.is_closed() {
            break StreamEnd::Io("reply stream closed".into());
        }
    };
    sink.close();
    handler.closed();
    end
}

/// How long a connection thread polls for the next request before it
/// sleeps in `read`. A sleeping thread costs a scheduler wake-up per
/// request (tens of µs on a virtual machine); a short poll after each reply
/// catches a client's next request without one, for a bounded CPU cost.
pub const POLL_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(50);

/// A socket reader that polls for [`POLL_BEFORE_SLEEP`] before blocking —
/// only while few connections are live: polling threads that outnumber the
/// CPUs take CPU from the threads they wait for, which costs more than the
/// wake-ups they save.
#[derive(Debug)]
pub struct PollingReader<S> {
    inner: S,
    live: Option<(Arc<AtomicUsize>, usize)>,
}

impl<S: Read + AsRawFd> PollingReader<S> {
    /// Wraps a socket; always polls first.
    pub fn new(inner: S) -> Self {
        PollingReader { inner, live: None }
    }

    /// Wraps a socket; polls first only while at most `max_live` of the
    /// connections counted by `live` are open.
    pub fn adaptive(inner: S, live: Arc<AtomicUsize>, max_live: usize) -> Self {
        PollingReader {
            inner,
            live: Some((live, max_live)),
        }
    }

    fn should_poll(&self) -> bool {
        self.live
            .as_ref()
            .is_none_or(|(live, max)| live.load(Ordering::Relaxed) <= *max)
    }
}

/// Connections that may poll at once: one per two CPUs, so a polling server
/// thread and its client fit on the machine.
fn polling_connections() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl<S: Read + AsRawFd> Read for PollingReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.should_poll() {
            return self.inner.read(buf);
        }
        let start = std::time::Instant::now();
        let mut pfd = libc::pollfd {
            fd: self.inner.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        while start.elapsed() < POLL_BEFORE_SLEEP {
            // SAFETY: `pfd` is one valid pollfd for the duration of the call;
            // a zero timeout never blocks.
            let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
            if ready != 0 {
                break;
            }
            std::hint::spin_loop();
        }
        self.inner.read(buf)
    }
}

/// Reads the rest of an oversized frame (the 4 size bytes are consumed)
/// through a small buffer and returns its tag.
fn discard_frame(input: &mut impl Read, size: usize) -> io::Result<u16> {
    let mut head = [0u8; 3];
    if read_full(input, &mut head)? != 3 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut left = size - HEADER_LEN;
    let mut chunk = [0u8; 4096];
    while left > 0 {
        let want = left.min(chunk.len());
        let n = read_full(input, &mut chunk[..want])?;
        if n != want {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        left -= n;
    }
    Ok(u16::from_le_bytes([head[1], head[2]]))
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match input.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn peer_cred(stream: &UnixStream) -> Peer {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given, and
    // the fd is a live Unix socket owned by `stream`.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Peer::Unix {
            uid: cred.uid,
            pid: cred.pid,
        }
    } else {
        Peer::Unix {
            uid: u32::MAX,
            pid: -1,
        }
    }
}

/// A running listener; dropping it (or [`Listener::stop`]) stops accepting.
#[derive(Debug)]
pub struct Listener {
    stop: Arc<AtomicBool>,
    /// A duplicate of the listening socket: shutting it down wakes the
    /// accept thread whatever happened to the socket's path.
    wake: OwnedFd,
    socket_path: Option<PathBuf>,
    thread: Option<JoinHandle<()>>,
    /// Where it listens.
    pub address: ListenAddress,
}

/// A listener's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddress {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

impl Listener {
    /// Stops accepting new connections (existing ones run to their end).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // SAFETY: `wake` is an open descriptor we own (a dup of the listening
        // socket); shutting a listening socket down makes a blocked accept()
        // return, which ends the accept loop.
        unsafe { libc::shutdown(self.wake.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

/// Errors starting a listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The socket path is taken by something that is not a stale socket.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    PathInUse(PathBuf),
    /// TCP must stay on loopback.
    #[error("{0} is not a loopback address; NineDoor only listens on loopback")]
    NotLoopback(SocketAddr),
    /// Binding failed.
    #[error("cannot listen on {what}: {source}")]
    Bind {
        /// The address.
        what: String,
        /// Why.
        source: io::Error,
    },
}

fn connection_thread<F: HandlerFactory>(
    factory: &Arc<F>,
    live: &Arc<AtomicUsize>,
    peer: Peer,
    read: Box<dyn Read + Send>,
    write: Box<dyn Write + Send>,
    shutdown: Box<dyn FnOnce() + Send>,
) {
    if live.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        live.fetch_sub(1, Ordering::SeqCst);
        factory.audit(&format!(
            "refused connection from {peer}: {MAX_CONNECTIONS} already open"
        ));
        shutdown();
        return;
    }
    let thread_factory = factory.clone();
    let thread_live = live.clone();
    let spawned = std::thread::Builder::new()
        .name("ninedoor-conn".into())
        .spawn(move || {
            let mut handler = thread_factory.connect(peer.clone());
            let sink = ReplySink::new(write);
            if let StreamEnd::BadFrame(why) = serve_stream(read, &sink, &mut handler) {
                thread_factory.audit(&format!("closed connection from {peer}: bad frame: {why}"));
            }
            shutdown();
            thread_live.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        // The closure, and with it the connection, is dropped: the peer sees EOF.
        live.fetch_sub(1, Ordering::SeqCst);
        factory.audit(&format!("cannot serve a connection: {e}"));
    }
}

/// A connected stream socket (Unix or TCP), as the accept loop needs it.
trait StreamSocket: Read + Write + AsRawFd + Send + Sized + 'static {
    fn duplicate(&self) -> io::Result<Self>;
    fn shut(&self);
}

impl StreamSocket for UnixStream {
    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shut(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl StreamSocket for std::net::TcpStream {
    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shut(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// Starts the accept thread shared by both transports: every accepted
/// stream whose peer can be named gets a connection thread.
fn spawn_accept_loop<F, S, I>(
    name: &str,
    incoming: I,
    peer_of: fn(&S) -> Option<Peer>,
    factory: Arc<F>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>>
where
    F: HandlerFactory,
    S: StreamSocket,
    I: Iterator<Item = io::Result<S>> + Send + 'static,
{
    let live = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            for stream in incoming {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let Some(peer) = peer_of(&stream) else {
                    continue;
                };
                let (Ok(read), Ok(write)) = (stream.duplicate(), stream.duplicate()) else {
                    continue;
                };
                connection_thread(
                    &factory,
                    &live,
                    peer,
                    Box::new(PollingReader::adaptive(
                        read,
                        live.clone(),
                        polling_connections(),
                    )),
                    Box::new(write),
                    Box::new(move || stream.shut()),
                );
            }
        })
}

/// Listens on a Unix socket at `path` (mode 0600). A stale socket left by a
/// previous run is replaced; any other file there is an error.
pub fn listen_unix<F: HandlerFactory>(
    path: &Path,
    factory: Arc<F>,
) -> Result<Listener, ListenError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ListenError::PathInUse(path.to_path_buf()));
        }
        let _ = std::fs::remove_file(path);
    }
    let bind = |source| ListenError::Bind {
        what: path.display().to_string(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(bind)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind)?;
    let wake = OwnedFd::from(listener.try_clone().map_err(bind)?);
    let stop = Arc::new(AtomicBool::new(false));
    let thread = spawn_accept_loop(
        "ninedoor-unix",
        std::iter::from_fn(move || Some(listener.accept().map(|(s, _)| s))),
        |s: &UnixStream| Some(peer_cred(s)),
        factory,
        stop.clone(),
    )
    .map_err(bind)?;
    Ok(Listener {
        stop,
        wake,
        socket_path: Some(path.to_path_buf()),
        thread: Some(thread),
        address: ListenAddress::Unix(path.to_path_buf()),
    })
}

/// Listens on loopback TCP at `addr` (port 0 picks a free port; see
/// [`Listener::address`]). Non-loopback addresses are refused.
pub fn listen_tcp<F: HandlerFactory>(
    addr: SocketAddr,
    factory: Arc<F>,
) -> Result<Listener, ListenError> {
    if !addr.ip().is_loopback() {
        return Err(ListenError::NotLoopback(addr));
    }
    let bind = |source| ListenError::Bind {
        what: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    let wake = OwnedFd::from(listener.try_clone().map_err(bind)?);
    let stop = Arc::new(AtomicBool::new(false));
    let thread = spawn_accept_loop(
        "ninedoor-tcp",
        std::iter::from_fn(move || Some(listener.accept().map(|(s, _)| s))),
        |s: &std::net::TcpStream| {
            let _ = s.set_nodelay(true);
            s.peer_addr().ok().map(Peer::Tcp)
        },
        factory,
        stop.clone(),
    )
    .map_err(bind)?;
    Ok(Listener {
        stop,
        wake,
        socket_path: None,
        thread: Some(thread),
        address: ListenAddress::Tcp(local),
    })
}
