//! A small synchronous 9P2000.L client session (no_std + alloc).
//!
//! Used by cohsh on the host and by guests over virtio. The transport moves
//! whole frames; the [`Client`] negotiates the version, allocates fids and
//! tags, keeps every message within the negotiated `msize`, and turns
//! `Rlerror` into [`ClientError::Remote`].
//!
//! ```no_run
//! # use secure9p::client::{Client, Transport};
//! # use secure9p::wire::O_RDONLY;
//! # fn demo<T: Transport>(t: T) -> Result<(), secure9p::client::ClientError<T::Error>> {
//! let mut c = Client::connect(t, secure9p::limits::DEFAULT_MSIZE)?;
//! let root = c.attach("queen", "")?;
//! let f = c.walk_path(root, "/proc/lifecycle/state")?;
//! c.lopen(f, O_RDONLY)?;
//! let state = c.read_to_end(f)?;
//! c.clunk(f)?;
//! # let _ = state; Ok(()) }
//! ```
//!
//! # Concurrency model
//! The client is synchronous: every high-level call sends one request and
//! waits for its reply. To keep a request outstanding (e.g. a blocking read
//! of a telemetry stream) use [`Client::send_request`], then either
//! [`Client::recv_response`] or [`Client::flush`]. Replies that arrive for a
//! tag other than the one a call waits for are kept and handed out by later
//! [`Client::recv_response`] calls, so high-level calls may be made while a
//! request is outstanding.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::errno;
use crate::limits::{
    DEFAULT_MSIZE, MAX_MSIZE, MAX_WALK, MIN_MSIZE, NOFID, NONUNAME, NOTAG, VERSION_9P2000L,
    max_io_count,
};
use crate::wire::{
    Attr, DecodeError, DirEntry, EncodeError, Qid, Request, Response, SetAttr, StatFs,
    decode_dirents, decode_response, encode_request, is_plain_name,
};

/// Largest file [`Client::read_to_end`] reads (16 MiB); use
/// [`Client::read_to_end_max`] for another bound.
pub const READ_TO_END_LIMIT: usize = 16 << 20;

/// Most entries [`Client::readdir_all`] collects before giving up (guards
/// against a server whose cookies never advance).
pub const READDIR_MAX_ENTRIES: usize = 1 << 16;

/// Moves whole 9P frames between the client and a server.
///
/// Stream transports (Unix socket, TCP) implement `recv` by reading 4 bytes,
/// checking them with [`frame_size`](crate::wire::frame_size) against
/// [`MAX_MSIZE`] and then reading the rest of the
/// frame. The client decodes (and so re-checks) everything it receives.
///
/// A transport whose `recv` can fail transiently (a read timeout used to
/// notice Ctrl-C before calling [`Client::flush`]) must keep a partly read
/// frame for the next call; the client itself keeps the request in flight.
///
/// ```no_run
/// use std::io::Read;
/// use secure9p::client::Transport;
/// use secure9p::limits::MAX_MSIZE;
/// use secure9p::wire::frame_size;
///
/// struct Stream(std::os::unix::net::UnixStream);
///
/// impl Transport for Stream {
///     type Error = std::io::Error;
///     fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
///         std::io::Write::write_all(&mut self.0, frame)
///     }
///     fn recv(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
///         let mut head = [0u8; 4];
///         self.0.read_exact(&mut head)?;
///         // Checked before allocating: 7 <= size <= 64 KiB.
///         let size = frame_size(&head, MAX_MSIZE)
///             .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
///             .unwrap_or(0);
///         buf.extend_from_slice(&head);
///         buf.resize(size, 0);
///         self.0.read_exact(&mut buf[4..])
///     }
/// }
/// ```
pub trait Transport {
    /// The transport's error (e.g. `std::io::Error`).
    type Error;

    /// Sends one complete frame.
    fn send(&mut self, frame: &[u8]) -> Result<(), Self::Error>;

    /// Receives exactly one complete frame into `buf`, which the client has
    /// cleared beforehand (so appending and replacing are equivalent).
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<(), Self::Error>;
}

/// A fid allocated by a [`Client`]. Release it with [`Client::clunk`] or
/// [`Client::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fid(pub u32);

impl fmt::Display for Fid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fid {}", self.0)
    }
}

/// A failed client call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError<E> {
    /// The transport failed (the session is probably gone).
    Transport(E),
    /// The server sent a malformed frame.
    Protocol(DecodeError),
    /// A request could not be encoded (a name longer than 255 bytes, more
    /// than 16 walk names in a raw request, …).
    Encode(EncodeError),
    /// The server answered `Rlerror` (see [`crate::errno`]). A walk that
    /// stopped early (fewer qids than names) is reported as `ENOENT`.
    Remote {
        /// Linux errno.
        errno: u32,
    },
    /// The server answered something the protocol does not allow here (wrong
    /// reply type, a tag not in flight, a bad version or msize, a read
    /// longer than asked, …).
    Unexpected {
        /// What was wrong.
        what: &'static str,
    },
    /// The caller asked for something the client refuses before sending
    /// (a path component that is empty, `.` or `..`; a request larger than
    /// msize; a Tversion through `send_request`).
    Invalid {
        /// What was wrong.
        what: &'static str,
    },
    /// A client-side bound was reached (no free tag or fid, a file larger
    /// than the read limit, too many directory entries).
    Exhausted {
        /// Which bound.
        what: &'static str,
    },
}

impl<E> ClientError<E> {
    /// The errno of a [`ClientError::Remote`].
    #[must_use]
    pub const fn errno(&self) -> Option<u32> {
        match self {
            ClientError::Remote { errno } => Some(*errno),
            _ => None,
        }
    }
}

impl<E> From<DecodeError> for ClientError<E> {
    fn from(e: DecodeError) -> Self {
        ClientError::Protocol(e)
    }
}

impl<E> From<EncodeError> for ClientError<E> {
    fn from(e: EncodeError) -> Self {
        ClientError::Encode(e)
    }
}

impl<E: fmt::Display> fmt::Display for ClientError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Transport(e) => write!(f, "transport: {e}"),
            ClientError::Protocol(e) => write!(f, "protocol: {e}"),
            ClientError::Encode(e) => write!(f, "cannot encode request: {e}"),
            ClientError::Remote { errno: n } => {
                write!(f, "server error {} ({n})", errno::name(*n))
            }
            ClientError::Unexpected { what } => write!(f, "unexpected reply: {what}"),
            ClientError::Invalid { what } => write!(f, "invalid request: {what}"),
            ClientError::Exhausted { what } => write!(f, "limit reached: {what}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for ClientError<E> {}

type CResult<T, E> = Result<T, ClientError<E>>;

const fn unexpected<E>(what: &'static str) -> ClientError<E> {
    ClientError::Unexpected { what }
}

/// A 9P2000.L session over a [`Transport`].
pub struct Client<T: Transport> {
    transport: T,
    msize: u32,
    next_tag: u16,
    in_flight: Vec<u16>,
    /// Replies received while waiting for another tag, oldest first.
    pending: Vec<(u16, Response)>,
    next_fid: u32,
    free_fids: Vec<u32>,
    out: Vec<u8>,
    inbuf: Vec<u8>,
}

impl<T: Transport> fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("msize", &self.msize)
            .field("next_tag", &self.next_tag)
            .field("in_flight", &self.in_flight)
            .field("pending", &self.pending.len())
            .field("next_fid", &self.next_fid)
            .field("free_fids", &self.free_fids.len())
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Client<T> {
    /// Negotiates the version: sends `Tversion(msize, "9P2000.L")` with
    /// `NOTAG` (`msize` clamped to `MIN_MSIZE..=MAX_MSIZE`; pass
    /// [`DEFAULT_MSIZE`] without a preference) and accepts an `Rversion`
    /// with "9P2000.L" and an msize between [`MIN_MSIZE`] and the one asked.
    pub fn connect(transport: T, msize: u32) -> CResult<Self, T::Error> {
        let want = msize.clamp(MIN_MSIZE, MAX_MSIZE);
        let mut c = Client {
            transport,
            msize: want,
            next_tag: 0,
            in_flight: Vec::new(),
            pending: Vec::new(),
            next_fid: 0,
            free_fids: Vec::new(),
            out: Vec::with_capacity(256),
            inbuf: Vec::with_capacity(256),
        };
        encode_request(
            NOTAG,
            &Request::Version {
                msize: want,
                version: String::from(VERSION_9P2000L),
            },
            &mut c.out,
        )?;
        c.transport.send(&c.out).map_err(ClientError::Transport)?;
        c.inbuf.clear();
        c.transport
            .recv(&mut c.inbuf)
            .map_err(ClientError::Transport)?;
        let (tag, resp) = decode_response(&c.inbuf, want)?;
        if tag != NOTAG {
            return Err(unexpected("Rversion tag is not NOTAG"));
        }
        match resp {
            Response::Version { msize, version } => {
                if version != VERSION_9P2000L {
                    return Err(unexpected("server does not speak 9P2000.L"));
                }
                if !(MIN_MSIZE..=want).contains(&msize) {
                    return Err(unexpected("Rversion msize out of range"));
                }
                c.msize = msize;
                Ok(c)
            }
            Response::Lerror { ecode } => Err(ClientError::Remote { errno: ecode }),
            _ => Err(unexpected("reply to Tversion is not Rversion")),
        }
    }

    /// The negotiated `msize`.
    #[must_use]
    pub const fn msize(&self) -> u32 {
        self.msize
    }

    /// The largest read/write/readdir payload: `msize - IOHDRSZ`.
    #[must_use]
    pub const fn max_io(&self) -> u32 {
        max_io_count(self.msize)
    }

    /// The transport.
    pub const fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably (e.g. to set a timeout).
    pub const fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Ends the session object and returns the transport.
    pub fn into_transport(self) -> T {
        self.transport
    }

    // -- tags, fids, raw messages --------------------------------------------

    fn alloc_tag(&mut self) -> CResult<u16, T::Error> {
        // At most 65535 usable tags (NOTAG excluded), so this loop ends.
        if self.in_flight.len() >= usize::from(NOTAG) {
            return Err(ClientError::Exhausted {
                what: "no free tag",
            });
        }
        loop {
            let tag = self.next_tag;
            self.next_tag = self.next_tag.wrapping_add(1);
            if tag != NOTAG && !self.in_flight.contains(&tag) {
                return Ok(tag);
            }
        }
    }

    fn alloc_fid(&mut self) -> CResult<u32, T::Error> {
        if let Some(fid) = self.free_fids.pop() {
            return Ok(fid);
        }
        if self.next_fid == NOFID {
            return Err(ClientError::Exhausted {
                what: "no free fid",
            });
        }
        let fid = self.next_fid;
        self.next_fid = self.next_fid.saturating_add(1);
        Ok(fid)
    }

    fn release_fid(&mut self, fid: u32) {
        if !self.free_fids.contains(&fid) && fid < self.next_fid {
            self.free_fids.push(fid);
        }
    }

    /// Sends `req` with a fresh tag and returns the tag without waiting for
    /// the reply (collect it with [`Client::recv_response`] or abort it with
    /// [`Client::flush`]). Refuses Tversion (use [`Client::connect`]) and
    /// requests larger than `msize`. Fids inside `req` are the caller's
    /// business.
    pub fn send_request(&mut self, req: &Request) -> CResult<u16, T::Error> {
        if matches!(req, Request::Version { .. }) {
            return Err(ClientError::Invalid {
                what: "Tversion outside connect",
            });
        }
        let tag = self.alloc_tag()?;
        self.out.clear();
        encode_request(tag, req, &mut self.out)?;
        if self.out.len() > self.msize as usize {
            return Err(ClientError::Invalid {
                what: "request larger than msize",
            });
        }
        self.transport
            .send(&self.out)
            .map_err(ClientError::Transport)?;
        self.in_flight.push(tag);
        Ok(tag)
    }

    /// Receives one frame from the transport (ignoring `pending`).
    fn recv_raw(&mut self) -> CResult<(u16, Response), T::Error> {
        self.inbuf.clear();
        self.transport
            .recv(&mut self.inbuf)
            .map_err(ClientError::Transport)?;
        match decode_response(&self.inbuf, self.msize) {
            Ok((tag, resp)) => {
                let Some(i) = self.in_flight.iter().position(|&t| t == tag) else {
                    return Err(unexpected("reply for a tag not in flight"));
                };
                self.in_flight.swap_remove(i);
                Ok((tag, resp))
            }
            Err(e) => {
                if let Some(tag) = e.tag() {
                    self.in_flight.retain(|&t| t != tag);
                }
                Err(ClientError::Protocol(e))
            }
        }
    }

    /// The next reply: one kept from an earlier call first, else the next
    /// frame from the transport. `Rlerror` is returned as
    /// [`Response::Lerror`], not as an error.
    pub fn recv_response(&mut self) -> CResult<(u16, Response), T::Error> {
        if self.pending.is_empty() {
            self.recv_raw()
        } else {
            Ok(self.pending.remove(0))
        }
    }

    /// Sends `req` and waits for its reply (other replies are kept for
    /// [`Client::recv_response`]). `Rlerror` is returned as a response.
    pub fn rpc(&mut self, req: &Request) -> CResult<Response, T::Error> {
        let tag = self.send_request(req)?;
        loop {
            let (t, resp) = self.recv_raw()?;
            if t == tag {
                return Ok(resp);
            }
            self.pending.push((t, resp));
        }
    }

    /// [`Client::rpc`] with `Rlerror` turned into [`ClientError::Remote`].
    fn call(&mut self, req: &Request) -> CResult<Response, T::Error> {
        match self.rpc(req)? {
            Response::Lerror { ecode } => Err(ClientError::Remote { errno: ecode }),
            r => Ok(r),
        }
    }

    /// Aborts the request with `oldtag`: sends `Tflush(oldtag)` and waits for
    /// `Rflush`. Returns the original request's reply if the server answered
    /// it before the flush (or it was already kept), `None` if it was
    /// cancelled. Afterwards `oldtag` is free. Flushing a tag that is not in
    /// flight is harmless (the server answers Rflush).
    pub fn flush(&mut self, oldtag: u16) -> CResult<Option<Response>, T::Error> {
        let mut original = self
            .pending
            .iter()
            .position(|(t, _)| *t == oldtag)
            .map(|i| self.pending.remove(i).1);
        let ftag = self.send_request(&Request::Flush { oldtag })?;
        loop {
            let (t, resp) = self.recv_raw()?;
            if t == ftag {
                self.in_flight.retain(|&x| x != oldtag);
                return match resp {
                    Response::Flush => Ok(original),
                    Response::Lerror { ecode } => Err(ClientError::Remote { errno: ecode }),
                    _ => Err(unexpected("reply to Tflush is not Rflush")),
                };
            }
            if t == oldtag {
                original = Some(resp);
            } else {
                self.pending.push((t, resp));
            }
        }
    }

    // -- high-level calls ----------------------------------------------------

    /// Attaches without authentication (`afid = NOFID`): `uname` is the role
    /// (`queen`, `worker-heartbeat:<id>`, …) and `aname` the ticket text
    /// (empty for none). Returns the root fid.
    pub fn attach(&mut self, uname: &str, aname: &str) -> CResult<Fid, T::Error> {
        let fid = self.alloc_fid()?;
        let req = Request::Attach {
            fid,
            afid: NOFID,
            uname: String::from(uname),
            aname: String::from(aname),
            n_uname: NONUNAME,
        };
        match self.call(&req) {
            Ok(Response::Attach { .. }) => Ok(Fid(fid)),
            Ok(_) => {
                self.release_fid(fid);
                Err(unexpected("reply to Tattach is not Rattach"))
            }
            Err(e) => {
                self.release_fid(fid);
                Err(e)
            }
        }
    }

    /// One Twalk of at most [`MAX_WALK`] names to a new fid.
    fn walk_once(&mut self, from: u32, names: &[&str]) -> CResult<u32, T::Error> {
        let newfid = self.alloc_fid()?;
        let req = Request::Walk {
            fid: from,
            newfid,
            names: names.iter().map(|n| String::from(*n)).collect(),
        };
        let result = match self.call(&req) {
            Ok(Response::Walk { qids }) if qids.len() == names.len() => return Ok(newfid),
            // A walk that stops early does not create newfid.
            Ok(Response::Walk { qids }) if qids.len() < names.len() => Err(ClientError::Remote {
                errno: errno::ENOENT,
            }),
            Ok(_) => Err(unexpected("bad reply to Twalk")),
            Err(e) => Err(e),
        };
        self.release_fid(newfid);
        result
    }

    /// Walks `names` from `from` to a new fid (`from` stays valid). No names
    /// clones `from`. More than [`MAX_WALK`] names are walked in several
    /// Twalks, clunking the intermediate fids. Names are sent as given (see
    /// [`Client::walk_path`] for the checked form). A missing element is
    /// `Remote { errno: ENOENT }` (or the server's error).
    pub fn walk(&mut self, from: Fid, names: &[&str]) -> CResult<Fid, T::Error> {
        if names.len() <= MAX_WALK {
            return self.walk_once(from.0, names).map(Fid);
        }
        let mut cur = from.0;
        let mut owned = false;
        for chunk in names.chunks(MAX_WALK) {
            let next = self.walk_once(cur, chunk);
            if owned {
                // Best effort: a failed clunk still frees the fid server-side.
                let _ = self.clunk(Fid(cur));
            }
            cur = next?;
            owned = true;
        }
        Ok(Fid(cur))
    }

    /// Walks an absolute or relative path (`"/a/b"`, `"a/b"`; one leading
    /// and one trailing `/` are ignored; `"/"` or `""` clone `root`).
    /// Components must be [plain names](crate::wire::is_plain_name): empty
    /// components (`"a//b"`), `.`, `..`, and names over 255 bytes are
    /// refused before anything is sent.
    pub fn walk_path(&mut self, root: Fid, path: &str) -> CResult<Fid, T::Error> {
        if path.is_empty() || path == "/" {
            return self.walk(root, &[]);
        }
        let p = path.strip_prefix('/').unwrap_or(path);
        let p = p.strip_suffix('/').unwrap_or(p);
        let names: Vec<&str> = p.split('/').collect();
        if !names.iter().all(|n| is_plain_name(n)) {
            return Err(ClientError::Invalid {
                what: "path component is empty, '.', '..', too long or has NUL",
            });
        }
        self.walk(root, &names)
    }

    /// Opens `fid` with Linux `flags` (`O_RDONLY`, `O_WRONLY`, `O_RDWR`, …).
    /// Returns the qid and the iounit (0: use [`Client::max_io`]).
    pub fn lopen(&mut self, fid: Fid, flags: u32) -> CResult<(Qid, u32), T::Error> {
        match self.call(&Request::Lopen { fid: fid.0, flags })? {
            Response::Lopen { qid, iounit } => Ok((qid, iounit)),
            _ => Err(unexpected("reply to Tlopen is not Rlopen")),
        }
    }

    /// Creates `name` in directory `fid` and opens it; `fid` then refers to
    /// the new file. Returns the qid and iounit.
    pub fn lcreate(
        &mut self,
        fid: Fid,
        name: &str,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> CResult<(Qid, u32), T::Error> {
        let req = Request::Lcreate {
            fid: fid.0,
            name: String::from(name),
            flags,
            mode,
            gid,
        };
        match self.call(&req)? {
            Response::Lcreate { qid, iounit } => Ok((qid, iounit)),
            _ => Err(unexpected("reply to Tlcreate is not Rlcreate")),
        }
    }

    /// Reads up to `count` bytes (clamped to [`Client::max_io`]) at
    /// `offset`. Empty data means end of file.
    pub fn read(&mut self, fid: Fid, offset: u64, count: u32) -> CResult<Vec<u8>, T::Error> {
        let count = count.min(self.max_io());
        match self.call(&Request::Read {
            fid: fid.0,
            offset,
            count,
        })? {
            Response::Read { data } if data.len() <= count as usize => Ok(data),
            Response::Read { .. } => Err(unexpected("Rread longer than requested")),
            _ => Err(unexpected("reply to Tread is not Rread")),
        }
    }

    /// Reads an open fid from offset 0 until an empty read, up to
    /// [`READ_TO_END_LIMIT`] bytes.
    pub fn read_to_end(&mut self, fid: Fid) -> CResult<Vec<u8>, T::Error> {
        self.read_to_end_max(fid, READ_TO_END_LIMIT)
    }

    /// [`Client::read_to_end`] with an explicit bound: more than `max_bytes`
    /// is [`ClientError::Exhausted`].
    pub fn read_to_end_max(&mut self, fid: Fid, max_bytes: usize) -> CResult<Vec<u8>, T::Error> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        loop {
            let chunk = self.read(fid, offset, self.max_io())?;
            if chunk.is_empty() {
                return Ok(out);
            }
            if out.len().saturating_add(chunk.len()) > max_bytes {
                return Err(ClientError::Exhausted {
                    what: "file larger than the read limit",
                });
            }
            offset = offset
                .checked_add(chunk.len() as u64)
                .ok_or(unexpected("read offset overflow"))?;
            out.extend_from_slice(&chunk);
        }
    }

    /// Writes `data` at `offset`, split into Twrites of at most
    /// [`Client::max_io`] bytes. An `offset` of `u64::MAX` (append to an
    /// append-only file) is kept for every piece; otherwise each piece
    /// follows the previous one. Stops at the first short write and returns
    /// the bytes written. Empty `data` sends one empty Twrite. Note that a
    /// control file that parses each Twrite separately sees the pieces.
    pub fn write(&mut self, fid: Fid, offset: u64, data: &[u8]) -> CResult<u32, T::Error> {
        if u32::try_from(data.len()).is_err() {
            return Err(ClientError::Invalid {
                what: "write larger than 4 GiB",
            });
        }
        let piece = (self.max_io() as usize).max(1);
        let mut total = 0u32;
        let mut off = offset;
        let mut rest = data;
        loop {
            let (now, later) = rest.split_at(rest.len().min(piece));
            let req = Request::Write {
                fid: fid.0,
                offset: off,
                data: now.to_vec(),
            };
            let n = match self.call(&req)? {
                Response::Write { count } => count,
                _ => return Err(unexpected("reply to Twrite is not Rwrite")),
            };
            if n as usize > now.len() {
                return Err(unexpected("Rwrite count larger than the data"));
            }
            total = total.saturating_add(n);
            if (n as usize) < now.len() || later.is_empty() {
                return Ok(total);
            }
            if off != u64::MAX {
                off = off.checked_add(u64::from(n)).ok_or(ClientError::Invalid {
                    what: "write offset overflow",
                })?;
            }
            rest = later;
        }
    }

    /// Forgets `fid`. The fid is released even if the server answers an
    /// error (9P: clunk frees the fid regardless).
    pub fn clunk(&mut self, fid: Fid) -> CResult<(), T::Error> {
        let result = self.call(&Request::Clunk { fid: fid.0 });
        self.release_fid(fid.0);
        match result? {
            Response::Clunk => Ok(()),
            _ => Err(unexpected("reply to Tclunk is not Rclunk")),
        }
    }

    /// Removes the file of `fid` and releases the fid (also on failure).
    pub fn remove(&mut self, fid: Fid) -> CResult<(), T::Error> {
        let result = self.call(&Request::Remove { fid: fid.0 });
        self.release_fid(fid.0);
        match result? {
            Response::Remove => Ok(()),
            _ => Err(unexpected("reply to Tremove is not Rremove")),
        }
    }

    /// Attributes of `fid`; `mask` is `GETATTR_*` bits (e.g.
    /// [`GETATTR_BASIC`](crate::wire::GETATTR_BASIC)). Only the fields in
    /// the returned `valid` are meaningful.
    pub fn getattr(&mut self, fid: Fid, mask: u64) -> CResult<Attr, T::Error> {
        match self.call(&Request::Getattr { fid: fid.0, mask })? {
            Response::Getattr(a) => Ok(a),
            _ => Err(unexpected("reply to Tgetattr is not Rgetattr")),
        }
    }

    /// Changes attributes of `fid`.
    pub fn setattr(&mut self, fid: Fid, attr: SetAttr) -> CResult<(), T::Error> {
        match self.call(&Request::Setattr { fid: fid.0, attr })? {
            Response::Setattr => Ok(()),
            _ => Err(unexpected("reply to Tsetattr is not Rsetattr")),
        }
    }

    /// One Treaddir on an open directory fid: entries after cookie `offset`
    /// (0 at the start) fitting in `count` bytes (clamped to
    /// [`Client::max_io`]). Empty: end of directory.
    pub fn readdir(
        &mut self,
        fid: Fid,
        offset: u64,
        count: u32,
    ) -> CResult<Vec<DirEntry>, T::Error> {
        let count = count.min(self.max_io());
        match self.call(&Request::Readdir {
            fid: fid.0,
            offset,
            count,
        })? {
            Response::Readdir { data } if data.len() <= count as usize => {
                Ok(decode_dirents(&data)?)
            }
            Response::Readdir { .. } => Err(unexpected("Rreaddir longer than requested")),
            _ => Err(unexpected("reply to Treaddir is not Rreaddir")),
        }
    }

    /// Every entry of an open directory fid (open it with
    /// `lopen(fid, O_RDONLY)` first), following the offset cookies; at most
    /// [`READDIR_MAX_ENTRIES`].
    pub fn readdir_all(&mut self, fid: Fid) -> CResult<Vec<DirEntry>, T::Error> {
        let mut all = Vec::new();
        let mut offset = 0u64;
        loop {
            let batch = self.readdir(fid, offset, self.max_io())?;
            let Some(last) = batch.last() else {
                return Ok(all);
            };
            offset = last.offset;
            if all.len().saturating_add(batch.len()) > READDIR_MAX_ENTRIES {
                return Err(ClientError::Exhausted {
                    what: "too many directory entries",
                });
            }
            all.extend(batch);
        }
    }

    /// File system statistics.
    pub fn statfs(&mut self, fid: Fid) -> CResult<StatFs, T::Error> {
        match self.call(&Request::Statfs { fid: fid.0 })? {
            Response::Statfs(s) => Ok(s),
            _ => Err(unexpected("reply to Tstatfs is not Rstatfs")),
        }
    }

    /// Flushes an open fid to stable storage (`datasync`: data only).
    pub fn fsync(&mut self, fid: Fid, datasync: bool) -> CResult<(), T::Error> {
        match self.call(&Request::Fsync {
            fid: fid.0,
            datasync: u32::from(datasync),
        })? {
            Response::Fsync => Ok(()),
            _ => Err(unexpected("reply to Tfsync is not Rfsync")),
        }
    }

    /// Creates directory `name` in `dfid`.
    pub fn mkdir(&mut self, dfid: Fid, name: &str, mode: u32, gid: u32) -> CResult<Qid, T::Error> {
        let req = Request::Mkdir {
            dfid: dfid.0,
            name: String::from(name),
            mode,
            gid,
        };
        match self.call(&req)? {
            Response::Mkdir { qid } => Ok(qid),
            _ => Err(unexpected("reply to Tmkdir is not Rmkdir")),
        }
    }

    /// Removes `name` from directory `dirfid` (`flags`: 0 or
    /// [`AT_REMOVEDIR`](crate::wire::AT_REMOVEDIR)).
    pub fn unlinkat(&mut self, dirfid: Fid, name: &str, flags: u32) -> CResult<(), T::Error> {
        let req = Request::Unlinkat {
            dirfid: dirfid.0,
            name: String::from(name),
            flags,
        };
        match self.call(&req)? {
            Response::Unlinkat => Ok(()),
            _ => Err(unexpected("reply to Tunlinkat is not Runlinkat")),
        }
    }
}

// Keep the default visible in docs of `connect`.
const _: () = assert!(DEFAULT_MSIZE >= MIN_MSIZE && DEFAULT_MSIZE <= MAX_MSIZE);
