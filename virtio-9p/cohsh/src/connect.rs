//! Where cohsh connects (`unix:/path`, `tcp:127.0.0.1:PORT`) and the byte
//! stream [`Transport`] that carries 9P frames over it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use secure9p::client::Transport;
use secure9p::frame_size;
use secure9p::limits::MAX_MSIZE;

use crate::cancel::CancelToken;

/// How often a waiting `recv` looks at the [`CancelToken`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long a frame may stall half-way before the connection is declared
/// dead (a server never pauses inside a frame).
pub const FRAME_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Time limit for establishing a TCP connection and for each write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `--connect` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `unix:<path>`: the hive's Unix socket.
    Unix(PathBuf),
    /// `tcp:<loopback ip or localhost>:<port>`.
    Tcp(SocketAddr),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Why a `--connect` string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Neither `unix:` nor `tcp:`.
    #[error("connect string must be unix:<path> or tcp:<loopback-ip>:<port>, got {0:?}")]
    Scheme(String),
    /// `unix:` with nothing after it.
    #[error("unix: needs a socket path")]
    EmptyPath,
    /// `tcp:` whose rest is not `host:port`.
    #[error("tcp: needs <ip>:<port> (IPv6 as [::1]:<port>), got {0:?}")]
    BadAddress(String),
    /// A host that is not a loopback address (or `localhost`).
    #[error(
        "refusing non-loopback TCP address {0}: NineDoor's TCP listener is loopback-only; use 127.0.0.1, [::1] or localhost"
    )]
    NotLoopback(String),
}

/// Parses `unix:/path/hive.sock`, `tcp:127.0.0.1:5640`, `tcp:[::1]:5640` or
/// `tcp:localhost:5640`. TCP hosts must be loopback IP literals (any of
/// 127.0.0.0/8, `::1`, or IPv4-mapped loopback) or `localhost`; host names
/// are not resolved, so a DNS answer can never send a ticket off the machine.
pub fn parse_target(s: &str) -> Result<Target, TargetError> {
    if let Some(path) = s.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(TargetError::EmptyPath);
        }
        return Ok(Target::Unix(PathBuf::from(path)));
    }
    let Some(rest) = s.strip_prefix("tcp:") else {
        return Err(TargetError::Scheme(s.to_owned()));
    };
    if let Ok(addr) = rest.parse::<SocketAddr>() {
        return if is_loopback(addr.ip()) {
            Ok(Target::Tcp(addr))
        } else {
            Err(TargetError::NotLoopback(addr.ip().to_string()))
        };
    }
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(TargetError::BadAddress(rest.to_owned()));
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(TargetError::BadAddress(rest.to_owned()));
    };
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(Target::Tcp(SocketAddr::from(([127, 0, 0, 1], port))));
    }
    if host.is_empty()
        || host.contains(':')
        || host.starts_with('[')
        || host.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return Err(TargetError::BadAddress(rest.to_owned()));
    }
    // A host name: never resolved, so never trusted to be loopback.
    Err(TargetError::NotLoopback(host.to_owned()))
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// A byte stream that can wait for input with a time limit.
pub trait FrameStream: Read + Write {
    /// Sets the read timeout (`None`: block).
    fn set_poll_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl FrameStream for UnixStream {
    fn set_poll_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)
    }
}

impl FrameStream for TcpStream {
    fn set_poll_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)
    }
}

/// A connected Unix or TCP stream.
#[derive(Debug)]
pub enum Conn {
    /// Unix socket.
    Unix(UnixStream),
    /// Loopback TCP.
    Tcp(TcpStream),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
        }
    }
}

impl FrameStream for Conn {
    fn set_poll_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.set_read_timeout(timeout),
            Conn::Tcp(s) => s.set_read_timeout(timeout),
        }
    }
}

/// 9P frames over a byte stream: frames are written whole; `recv` reads the
/// 4-byte size, checks it with [`frame_size`] against [`MAX_MSIZE`] before
/// allocating (the client re-checks against the negotiated msize), then the
/// rest. While waiting for the first byte of a frame it polls its
/// [`CancelToken`] every [`POLL_INTERVAL`] (see [`crate::cancel`]).
#[derive(Debug)]
pub struct StreamTransport<S> {
    stream: S,
    cancel: CancelToken,
}

impl<S: FrameStream> StreamTransport<S> {
    /// Wraps `stream` (sets its read timeout to [`POLL_INTERVAL`]).
    pub fn new(stream: S, cancel: CancelToken) -> io::Result<StreamTransport<S>> {
        stream.set_poll_timeout(Some(POLL_INTERVAL))?;
        Ok(StreamTransport { stream, cancel })
    }

    /// The underlying stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Reads exactly `buf.len()` bytes. `frame_started` says whether bytes of
    /// this frame were already consumed (then cancellation is ignored).
    fn read_full(&mut self, buf: &mut [u8], frame_started: bool) -> io::Result<()> {
        let mut got = 0usize;
        let mut stalled_since: Option<Instant> = None;
        while got < buf.len() {
            let Some(rest) = buf.get_mut(got..) else {
                break;
            };
            match self.stream.read(rest) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ));
                }
                Ok(n) => {
                    got = got.saturating_add(n);
                    stalled_since = None;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if got == 0 && !frame_started {
                        if self.cancel.should_abort() {
                            return Err(io::Error::new(
                                io::ErrorKind::Interrupted,
                                "wait cancelled",
                            ));
                        }
                    } else {
                        let since = *stalled_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= FRAME_STALL_TIMEOUT {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "the server stalled in the middle of a frame",
                            ));
                        }
                    }
                }
                // A signal (EINTR) is not a cancellation: retry.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<S: FrameStream> Transport for StreamTransport<S> {
    type Error = io::Error;

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.stream.write_all(frame)?;
        self.stream.flush()
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut header = [0u8; 4];
        self.read_full(&mut header[..1], false)?;
        self.read_full(&mut header[1..], true)?;
        let size = match frame_size(&header, MAX_MSIZE) {
            Ok(Some(size)) => size,
            Ok(None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "short frame header",
                ));
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad frame from the server: {e}"),
                ));
            }
        };
        buf.clear();
        buf.extend_from_slice(&header);
        buf.resize(size, 0);
        if let Some(rest) = buf.get_mut(header.len()..) {
            self.read_full(rest, true)?;
        }
        Ok(())
    }
}

/// Connects to `target` (TCP with [`IO_TIMEOUT`] and `TCP_NODELAY`).
pub fn connect(target: &Target, cancel: CancelToken) -> io::Result<StreamTransport<Conn>> {
    let conn = match target {
        Target::Unix(path) => {
            let s = UnixStream::connect(path)?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            Conn::Unix(s)
        }
        Target::Tcp(addr) => {
            let s = TcpStream::connect_timeout(addr, IO_TIMEOUT)?;
            s.set_nodelay(true)?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            Conn::Tcp(s)
        }
    };
    StreamTransport::new(conn, cancel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_targets() {
        assert_eq!(
            parse_target("unix:/run/coco/hive.sock"),
            Ok(Target::Unix(PathBuf::from("/run/coco/hive.sock")))
        );
        assert_eq!(
            parse_target("unix:rel.sock"),
            Ok(Target::Unix(PathBuf::from("rel.sock")))
        );
        assert_eq!(parse_target("unix:"), Err(TargetError::EmptyPath));
    }

    #[test]
    fn tcp_loopback_ok() {
        for (s, want) in [
            ("tcp:127.0.0.1:5640", "127.0.0.1:5640"),
            ("tcp:127.9.8.7:1", "127.9.8.7:1"),
            ("tcp:[::1]:5640", "[::1]:5640"),
            ("tcp:localhost:5640", "127.0.0.1:5640"),
            ("tcp:LOCALHOST:7", "127.0.0.1:7"),
            ("tcp:[::ffff:127.0.0.1]:9", "[::ffff:127.0.0.1]:9"),
        ] {
            let want: SocketAddr = want.parse().expect("test address");
            assert_eq!(parse_target(s), Ok(Target::Tcp(want)), "{s}");
        }
    }

    #[test]
    fn tcp_non_loopback_refused() {
        for s in [
            "tcp:10.0.0.1:5640",
            "tcp:0.0.0.0:5640",
            "tcp:192.168.1.2:1",
            "tcp:[2001:db8::1]:5640",
            "tcp:[::]:5640",
            "tcp:example.com:5640",
            "tcp:[::ffff:10.0.0.1]:9",
        ] {
            assert!(
                matches!(parse_target(s), Err(TargetError::NotLoopback(_))),
                "{s}: {:?}",
                parse_target(s)
            );
        }
    }

    #[test]
    fn garbage_refused() {
        for s in [
            "",
            "hive.sock",
            "/run/hive.sock",
            "udp:127.0.0.1:1",
            "tcp:",
            "tcp:127.0.0.1",
            "tcp:127.0.0.1:",
            "tcp:127.0.0.1:99999",
            "tcp:127.0.0.1:port",
            "tcp::5640",
            "tcp:[::1:5640",
        ] {
            let r = parse_target(s);
            assert!(
                matches!(r, Err(TargetError::Scheme(_) | TargetError::BadAddress(_))),
                "{s}: {r:?}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["unix:/x/y.sock", "tcp:127.0.0.1:5640", "tcp:[::1]:1"] {
            let t = parse_target(s).expect("valid");
            assert_eq!(t.to_string(), s);
        }
    }
}
