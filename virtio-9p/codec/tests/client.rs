//! Client session tests against an in-memory fake server built on the codec.

use std::collections::{HashMap, VecDeque};

use secure9p::client::{Client, ClientError, Fid, READDIR_MAX_ENTRIES, Transport};
use secure9p::errno;
use secure9p::limits::*;
use secure9p::wire::*;

// ------------------------------------------------------------- fake server

enum Kind {
    Dir(Vec<usize>),
    File(Vec<u8>),
    /// Reads never answer until flushed.
    Blocking,
    /// Read replies are deferred until the next request arrives.
    Slow,
    /// Accepts at most 10 bytes per write.
    Short,
}

struct Node {
    name: String,
    parent: usize,
    kind: Kind,
    append: bool,
}

struct FakeServer {
    nodes: Vec<Node>,
    max_msize: u32,
    msize: u32,
    version_reply: &'static str,
    fids: HashMap<u32, (usize, bool)>,
    replies: VecDeque<Vec<u8>>,
    blocked: Option<u16>,
    deferred: Option<Vec<u8>>,
    answer_before_flush: bool,
    garbage_next: bool,
    /// Type byte of every request received.
    log: Vec<u8>,
    /// (offset, len) of every Twrite.
    writes: Vec<(u64, usize)>,
    readdir_counts: Vec<u32>,
}

impl FakeServer {
    fn new() -> Self {
        let mut s = FakeServer {
            nodes: vec![Node {
                name: "/".into(),
                parent: 0,
                kind: Kind::Dir(vec![]),
                append: false,
            }],
            max_msize: MAX_MSIZE,
            msize: 0,
            version_reply: VERSION_9P2000L,
            fids: HashMap::new(),
            replies: VecDeque::new(),
            blocked: None,
            deferred: None,
            answer_before_flush: false,
            garbage_next: false,
            log: vec![],
            writes: vec![],
            readdir_counts: vec![],
        };
        let proc_ = s.add(0, "proc", Kind::Dir(vec![]));
        let boot: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        s.add(proc_, "boot", Kind::File(boot));
        let lc = s.add(proc_, "lifecycle", Kind::Dir(vec![]));
        s.add(lc, "state", Kind::File(b"ONLINE\n".to_vec()));
        let log = s.add(0, "log", Kind::Dir(vec![]));
        let ql = s.add(log, "queen.log", Kind::File(vec![]));
        s.nodes[ql].append = true;
        let mut d = 0;
        for _ in 0..20 {
            d = s.add(d, "d", Kind::Dir(vec![]));
        }
        s.add(d, "leaf", Kind::File(b"leaf!".to_vec()));
        let big = s.add(0, "big", Kind::Dir(vec![]));
        for i in 0..100 {
            s.add(big, &format!("file-{i:03}"), Kind::File(vec![]));
        }
        s.add(0, "tail", Kind::Blocking);
        s.add(0, "slow", Kind::Slow);
        s.add(0, "short", Kind::Short);
        s
    }

    fn add(&mut self, parent: usize, name: &str, kind: Kind) -> usize {
        let i = self.nodes.len();
        self.nodes.push(Node {
            name: name.into(),
            parent,
            kind,
            append: false,
        });
        if let Kind::Dir(ch) = &mut self.nodes[parent].kind {
            ch.push(i);
        }
        i
    }

    fn qid(&self, i: usize) -> Qid {
        let n = &self.nodes[i];
        let mut ty = if matches!(n.kind, Kind::Dir(_)) {
            QTDIR
        } else {
            QTFILE
        };
        if n.append {
            ty |= QTAPPEND;
        }
        Qid {
            ty,
            version: 0,
            path: i as u64,
        }
    }

    fn child(&self, dir: usize, name: &str) -> Option<usize> {
        match &self.nodes[dir].kind {
            Kind::Dir(ch) => ch.iter().copied().find(|&c| self.nodes[c].name == name),
            _ => None,
        }
    }

    fn reply(&mut self, tag: u16, r: Response) {
        let mut out = Vec::new();
        encode_response(tag, &r, &mut out).unwrap();
        assert!(
            out.len() <= self.msize.max(MIN_MSIZE) as usize,
            "reply within msize"
        );
        self.replies.push_back(out);
    }

    fn err(&mut self, tag: u16, e: u32) {
        self.reply(tag, Response::Lerror { ecode: e });
    }

    fn handle(&mut self, frame: &[u8]) {
        if let Some(d) = self.deferred.take() {
            self.replies.push_back(d);
        }
        let msize = if self.msize == 0 {
            MAX_MSIZE
        } else {
            self.msize
        };
        let (tag, req) = match decode_request(frame, msize) {
            Ok(x) => x,
            Err(e) => {
                let tag = e.tag().unwrap_or(NOTAG);
                return self.err(tag, e.errno());
            }
        };
        self.log.push(req.msg_type());
        if self.garbage_next {
            self.garbage_next = false;
            self.replies
                .push_back(vec![9, 0, 0, 0, msg::RCLUNK, 0, 0, 0, 0]);
            return;
        }
        let max_io = max_io_count(self.msize);
        match req {
            Request::Version { msize, version } => {
                self.fids.clear();
                let m = negotiate_msize(msize, self.max_msize).unwrap_or(MIN_MSIZE);
                self.msize = m;
                let v = if version == VERSION_9P2000L {
                    self.version_reply
                } else {
                    VERSION_UNKNOWN
                };
                self.reply(
                    tag,
                    Response::Version {
                        msize: m,
                        version: v.into(),
                    },
                );
            }
            Request::Attach { fid, uname, .. } => {
                if uname != "queen" {
                    return self.err(tag, errno::EPERM);
                }
                if self.fids.contains_key(&fid) {
                    return self.err(tag, errno::EEXIST);
                }
                self.fids.insert(fid, (0, false));
                let q = self.qid(0);
                self.reply(tag, Response::Attach { qid: q });
            }
            Request::Walk { fid, newfid, names } => {
                let Some(&(mut cur, _)) = self.fids.get(&fid) else {
                    return self.err(tag, errno::EBADF);
                };
                if newfid != fid && self.fids.contains_key(&newfid) {
                    return self.err(tag, errno::EEXIST);
                }
                let mut qids = vec![];
                for (i, n) in names.iter().enumerate() {
                    let next = if n == ".." {
                        Some(self.nodes[cur].parent)
                    } else {
                        self.child(cur, n)
                    };
                    match next {
                        Some(c) => {
                            cur = c;
                            qids.push(self.qid(c));
                        }
                        None if i == 0 => return self.err(tag, errno::ENOENT),
                        None => return self.reply(tag, Response::Walk { qids }),
                    }
                }
                self.fids.insert(newfid, (cur, false));
                self.reply(tag, Response::Walk { qids });
            }
            Request::Lopen { fid, .. } => match self.fids.get(&fid).copied() {
                Some((n, false)) => {
                    self.fids.insert(fid, (n, true));
                    let q = self.qid(n);
                    self.reply(tag, Response::Lopen { qid: q, iounit: 0 });
                }
                _ => self.err(tag, errno::EBADF),
            },
            Request::Read { fid, offset, count } => {
                let Some(&(n, true)) = self.fids.get(&fid) else {
                    return self.err(tag, errno::EBADF);
                };
                match &self.nodes[n].kind {
                    Kind::File(data) => {
                        let start = (offset as usize).min(data.len());
                        let end = (start + count.min(max_io) as usize).min(data.len());
                        let d = data[start..end].to_vec();
                        self.reply(tag, Response::Read { data: d });
                    }
                    Kind::Blocking => self.blocked = Some(tag),
                    Kind::Slow => {
                        let mut out = Vec::new();
                        encode_response(
                            tag,
                            &Response::Read {
                                data: b"slow".to_vec(),
                            },
                            &mut out,
                        )
                        .unwrap();
                        self.deferred = Some(out);
                    }
                    _ => self.err(tag, errno::EISDIR),
                }
            }
            Request::Write { fid, offset, data } => {
                let Some(&(n, true)) = self.fids.get(&fid) else {
                    return self.err(tag, errno::EBADF);
                };
                if data.len() > max_io as usize {
                    return self.err(tag, errno::EMSGSIZE);
                }
                self.writes.push((offset, data.len()));
                match &mut self.nodes[n].kind {
                    Kind::File(buf) => {
                        buf.extend_from_slice(&data);
                        self.reply(
                            tag,
                            Response::Write {
                                count: data.len() as u32,
                            },
                        );
                    }
                    Kind::Short => self.reply(
                        tag,
                        Response::Write {
                            count: data.len().min(10) as u32,
                        },
                    ),
                    _ => self.err(tag, errno::EPERM),
                }
            }
            Request::Clunk { fid } => {
                if self.fids.remove(&fid).is_some() {
                    self.reply(tag, Response::Clunk);
                } else {
                    self.err(tag, errno::EBADF);
                }
            }
            Request::Getattr { fid, mask } => {
                let Some(&(n, _)) = self.fids.get(&fid) else {
                    return self.err(tag, errno::EBADF);
                };
                let size = match &self.nodes[n].kind {
                    Kind::File(d) => d.len() as u64,
                    _ => 0,
                };
                let a = Attr {
                    valid: mask & (GETATTR_BASIC),
                    qid: self.qid(n),
                    mode: if matches!(self.nodes[n].kind, Kind::Dir(_)) {
                        0o040555
                    } else {
                        0o100444
                    },
                    size,
                    nlink: 1,
                    ..Attr::default()
                };
                self.reply(tag, Response::Getattr(a));
            }
            Request::Readdir { fid, offset, count } => {
                self.readdir_counts.push(count);
                let Some(&(n, true)) = self.fids.get(&fid) else {
                    return self.err(tag, errno::EBADF);
                };
                let Kind::Dir(ch) = &self.nodes[n].kind else {
                    return self.err(tag, errno::ENOTDIR);
                };
                let entries: Vec<DirEntry> = ch
                    .iter()
                    .enumerate()
                    .skip(offset as usize)
                    .map(|(i, &c)| {
                        let q = self.qid(c);
                        DirEntry {
                            qid: q,
                            offset: i as u64 + 1,
                            ty: dirent_type(&q),
                            name: self.nodes[c].name.clone(),
                        }
                    })
                    .collect();
                let mut data = Vec::new();
                encode_dirents(&entries, count.min(max_io), &mut data);
                self.reply(tag, Response::Readdir { data });
            }
            Request::Statfs { .. } => self.reply(
                tag,
                Response::Statfs(StatFs {
                    ty: 0x0102_1997,
                    bsize: 4096,
                    namelen: MAX_NAME as u32,
                    ..StatFs::default()
                }),
            ),
            Request::Flush { oldtag } => {
                if self.blocked == Some(oldtag) {
                    self.blocked = None;
                    if self.answer_before_flush {
                        self.reply(
                            oldtag,
                            Response::Read {
                                data: b"late".to_vec(),
                            },
                        );
                    }
                }
                self.reply(tag, Response::Flush);
            }
            _ => self.err(tag, errno::EOPNOTSUPP),
        }
    }
}

/// The transport: the fake server answers synchronously inside `send`.
struct Mem(FakeServer);

impl Transport for Mem {
    type Error = String;

    fn send(&mut self, frame: &[u8]) -> Result<(), String> {
        self.0.handle(frame);
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<(), String> {
        let f = self
            .0
            .replies
            .pop_front()
            .ok_or("no reply queued (would block)")?;
        buf.extend_from_slice(&f);
        Ok(())
    }
}

fn session(msize: u32) -> (Client<Mem>, Fid) {
    let mut c = Client::connect(Mem(FakeServer::new()), msize).unwrap();
    let root = c.attach("queen", "").unwrap();
    (c, root)
}

fn srv(c: &Client<Mem>) -> &FakeServer {
    &c.transport().0
}

fn count(c: &Client<Mem>, ty: u8) -> usize {
    srv(c).log.iter().filter(|&&t| t == ty).count()
}

// ---------------------------------------------------------------------- tests

#[test]
fn version_negotiation() {
    let c = Client::connect(Mem(FakeServer::new()), DEFAULT_MSIZE).unwrap();
    assert_eq!(c.msize(), 8192);
    assert_eq!(c.max_io(), 8192 - IOHDRSZ);
    let mut small = FakeServer::new();
    small.max_msize = 4096;
    assert_eq!(Client::connect(Mem(small), 65536).unwrap().msize(), 4096);
    // Too small and too large requests are clamped.
    assert_eq!(
        Client::connect(Mem(FakeServer::new()), 0).unwrap().msize(),
        MIN_MSIZE
    );
    assert_eq!(
        Client::connect(Mem(FakeServer::new()), u32::MAX)
            .unwrap()
            .msize(),
        MAX_MSIZE
    );
    let mut unknown = FakeServer::new();
    unknown.version_reply = VERSION_UNKNOWN;
    assert!(matches!(
        Client::connect(Mem(unknown), 8192),
        Err(ClientError::Unexpected { .. })
    ));
    // The Tversion on the wire.
    let c = Client::connect(Mem(FakeServer::new()), 8192).unwrap();
    assert_eq!(srv(&c).log, [msg::TVERSION]);
}

#[test]
fn attach_refused_frees_fid() {
    let mut c = Client::connect(Mem(FakeServer::new()), 8192).unwrap();
    let e = c.attach("worker-gpu:1", "").unwrap_err();
    assert_eq!(
        e,
        ClientError::Remote {
            errno: errno::EPERM
        }
    );
    assert_eq!(e.errno(), Some(errno::EPERM));
    assert!(e.to_string().contains("EPERM"), "{e}");
    let root = c.attach("queen", "").unwrap();
    assert_eq!(root, Fid(0), "the refused fid was reused");
}

#[test]
fn walk_open_read_to_end() {
    let (mut c, root) = session(8192);
    let f = c.walk_path(root, "/proc/boot").unwrap();
    let (qid, iounit) = c.lopen(f, O_RDONLY).unwrap();
    assert_eq!((qid.ty, iounit), (QTFILE, 0));
    let data = c.read_to_end(f).unwrap();
    let expect: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(data, expect);
    // 20000 bytes at 8168 per read: 3 reads with data + 1 empty.
    assert_eq!(count(&c, msg::TREAD), 4);
    assert!(matches!(
        c.read_to_end_max(f, 10_000),
        Err(ClientError::Exhausted { .. })
    ));
    c.clunk(f).unwrap();
    let s = c.walk_path(root, "proc/lifecycle/state/").unwrap();
    c.lopen(s, O_RDONLY).unwrap();
    assert_eq!(c.read(s, 0, 3).unwrap(), b"ONL");
    assert_eq!(c.read(s, 3, u32::MAX).unwrap(), b"INE\n");
    assert_eq!(c.read(s, 100, 10).unwrap(), b"");
    c.clunk(s).unwrap();
    assert_eq!(srv(&c).fids.len(), 1, "only the root is left");
}

#[test]
fn walk_path_rejects_bad_components_client_side() {
    let (mut c, root) = session(8192);
    let before = srv(&c).log.len();
    for bad in [
        "/proc/../log",
        "/proc/./boot",
        "/proc//boot",
        "//",
        "..",
        ".",
        "/a\0b",
    ] {
        assert!(
            matches!(c.walk_path(root, bad), Err(ClientError::Invalid { .. })),
            "{bad:?}"
        );
    }
    let long = format!("/{}", "n".repeat(256));
    assert!(matches!(
        c.walk_path(root, &long),
        Err(ClientError::Invalid { .. })
    ));
    assert_eq!(srv(&c).log.len(), before, "nothing was sent");
    // "/" and "" clone the root.
    let clone = c.walk_path(root, "/").unwrap();
    assert_ne!(clone, root);
    let clone2 = c.walk_path(root, "").unwrap();
    assert_eq!(srv(&c).fids.len(), 3);
    c.clunk(clone).unwrap();
    c.clunk(clone2).unwrap();
}

#[test]
fn deep_walk_is_chunked() {
    let (mut c, root) = session(8192);
    let path = format!("/{}leaf", "d/".repeat(20));
    let f = c.walk_path(root, &path).unwrap();
    // 21 names: one Twalk of 16, one of 5; the intermediate fid is clunked.
    assert_eq!(count(&c, msg::TWALK), 2);
    assert_eq!(count(&c, msg::TCLUNK), 1);
    assert_eq!(srv(&c).fids.len(), 2);
    c.lopen(f, O_RDONLY).unwrap();
    assert_eq!(c.read_to_end(f).unwrap(), b"leaf!");
    // 40 names: three Twalks.
    let names: Vec<&str> = std::iter::repeat_n("d", 20)
        .chain(std::iter::repeat_n("..", 20))
        .collect();
    let g = c.walk(root, &names).unwrap();
    assert_eq!(count(&c, msg::TWALK), 5);
    assert_eq!(srv(&c).fids.len(), 3);
    assert_eq!(srv(&c).fids[&g.0].0, 0, "back at the root");
    // A failure in a later chunk clunks the intermediate fid too.
    let mut bad: Vec<&str> = vec!["d"; 18];
    bad.push("nope");
    assert_eq!(
        c.walk(root, &bad).unwrap_err(),
        ClientError::Remote {
            errno: errno::ENOENT
        }
    );
    assert_eq!(srv(&c).fids.len(), 3);
}

#[test]
fn missing_names() {
    let (mut c, root) = session(8192);
    assert_eq!(
        c.walk_path(root, "/nope").unwrap_err(),
        ClientError::Remote {
            errno: errno::ENOENT
        }
    );
    // A later element missing: Rwalk with fewer qids, newfid not created.
    assert_eq!(
        c.walk_path(root, "/proc/nope/x").unwrap_err(),
        ClientError::Remote {
            errno: errno::ENOENT
        }
    );
    assert_eq!(srv(&c).fids.len(), 1);
    // The fids were returned to the pool: the next walk reuses one.
    let f = c.walk_path(root, "/proc").unwrap();
    assert_eq!(f, Fid(1));
}

#[test]
fn write_is_split_by_msize() {
    let (mut c, root) = session(512);
    assert_eq!(c.max_io(), 488);
    let f = c.walk_path(root, "/log/queen.log").unwrap();
    let (qid, _) = c.lopen(f, O_WRONLY | O_APPEND).unwrap();
    assert!(qid.is_append());
    let data: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
    assert_eq!(c.write(f, u64::MAX, &data).unwrap(), 2000);
    assert_eq!(
        srv(&c).writes,
        [
            (u64::MAX, 488),
            (u64::MAX, 488),
            (u64::MAX, 488),
            (u64::MAX, 488),
            (u64::MAX, 48)
        ]
    );
    assert_eq!(c.write(f, 100, &data[..1000]).unwrap(), 1000);
    assert_eq!(srv(&c).writes[5..], [(100, 488), (588, 488), (1076, 24)]);
    // An empty write is one Twrite.
    assert_eq!(c.write(f, 0, b"").unwrap(), 0);
    assert_eq!(srv(&c).writes.last(), Some(&(0, 0)));
    // A short write stops the loop.
    let s = c.walk_path(root, "/short").unwrap();
    c.lopen(s, O_WRONLY).unwrap();
    let n = srv(&c).writes.len();
    assert_eq!(c.write(s, 0, &data).unwrap(), 10);
    assert_eq!(srv(&c).writes.len(), n + 1);
    // A raw request larger than msize is refused before sending.
    let big = Request::Write {
        fid: f.0,
        offset: 0,
        data: vec![0; 600],
    };
    assert!(matches!(
        c.send_request(&big),
        Err(ClientError::Invalid { .. })
    ));
}

#[test]
fn readdir_all_small_msize() {
    let (mut c, root) = session(512);
    let d = c.walk_path(root, "/big").unwrap();
    c.lopen(d, O_RDONLY | O_DIRECTORY).unwrap();
    let entries = c.readdir_all(d).unwrap();
    let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    let expect: Vec<String> = (0..100).map(|i| format!("file-{i:03}")).collect();
    assert_eq!(names, expect, "each entry exactly once, in order");
    // 100 entries of 32 bytes in 488-byte replies: 15 per reply → 7 + 1 empty.
    assert_eq!(count(&c, msg::TREADDIR), 8);
    assert!(srv(&c).readdir_counts.iter().all(|&n| n == 488));
    // Root listing.
    let r = c.walk_path(root, "/").unwrap();
    c.lopen(r, O_RDONLY).unwrap();
    let top: Vec<String> = c
        .readdir_all(r)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(top, ["proc", "log", "d", "big", "tail", "slow", "short"]);
    // A tiny count yields nothing (not an error).
    assert!(c.readdir(d, 0, 10).unwrap().is_empty());
    let _ = READDIR_MAX_ENTRIES;
}

#[test]
fn getattr_statfs_clunk_twice() {
    let (mut c, root) = session(8192);
    let f = c.walk_path(root, "/proc/boot").unwrap();
    let a = c.getattr(f, GETATTR_ALL).unwrap();
    assert_eq!(a.valid, GETATTR_BASIC);
    assert_eq!(a.size, 20_000);
    let s = c.statfs(root).unwrap();
    assert_eq!(s.namelen, 255);
    c.clunk(f).unwrap();
    assert_eq!(
        c.clunk(f).unwrap_err(),
        ClientError::Remote {
            errno: errno::EBADF
        }
    );
    // Unsupported helpers map Rlerror.
    assert_eq!(
        c.mkdir(root, "x", 0o755, 0).unwrap_err(),
        ClientError::Remote {
            errno: errno::EOPNOTSUPP
        }
    );
    assert_eq!(
        c.fsync(root, true).unwrap_err().errno(),
        Some(errno::EOPNOTSUPP)
    );
}

#[test]
fn unsupported_message_gets_eopnotsupp_on_its_tag() {
    let (mut c, _root) = session(8192);
    for ty in [msg::TSYMLINK, msg::TLOCK, msg::TSTAT, 0, 200] {
        let tag = c.send_request(&Request::Unsupported { ty }).unwrap();
        let (t, r) = c.recv_response().unwrap();
        assert_eq!(t, tag);
        assert_eq!(
            r,
            Response::Lerror {
                ecode: errno::EOPNOTSUPP
            }
        );
    }
    assert!(matches!(
        c.send_request(&Request::Version {
            msize: 8192,
            version: "9P2000.L".into()
        }),
        Err(ClientError::Invalid { .. })
    ));
}

#[test]
fn flush_a_blocked_read() {
    let (mut c, root) = session(8192);
    let t = c.walk_path(root, "/tail").unwrap();
    c.lopen(t, O_RDONLY).unwrap();
    let tag = c
        .send_request(&Request::Read {
            fid: t.0,
            offset: 0,
            count: 100,
        })
        .unwrap();
    assert_eq!(c.flush(tag).unwrap(), None, "cancelled, no reply");
    // The session goes on, and the tag is free again.
    assert_eq!(c.getattr(root, GETATTR_BASIC).unwrap().qid.ty, QTDIR);
    // This time the server answers the read before the Rflush.
    c.transport_mut().0.answer_before_flush = true;
    let tag2 = c
        .send_request(&Request::Read {
            fid: t.0,
            offset: 0,
            count: 100,
        })
        .unwrap();
    assert_eq!(
        c.flush(tag2).unwrap(),
        Some(Response::Read {
            data: b"late".to_vec()
        })
    );
    // Flushing an unknown tag is harmless.
    assert_eq!(c.flush(4242).unwrap(), None);
}

#[test]
fn replies_for_other_tags_are_kept() {
    let (mut c, root) = session(8192);
    let s = c.walk_path(root, "/slow").unwrap();
    c.lopen(s, O_RDONLY).unwrap();
    let tag = c
        .send_request(&Request::Read {
            fid: s.0,
            offset: 0,
            count: 10,
        })
        .unwrap();
    // The slow reply arrives just before the getattr reply.
    let a = c.getattr(root, GETATTR_BASIC).unwrap();
    assert!(a.qid.is_dir());
    assert_eq!(
        c.recv_response().unwrap(),
        (
            tag,
            Response::Read {
                data: b"slow".to_vec()
            }
        )
    );
    // A kept reply is also what flush returns.
    let tag = c
        .send_request(&Request::Read {
            fid: s.0,
            offset: 0,
            count: 10,
        })
        .unwrap();
    c.getattr(root, GETATTR_BASIC).unwrap();
    assert_eq!(
        c.flush(tag).unwrap(),
        Some(Response::Read {
            data: b"slow".to_vec()
        })
    );
}

#[test]
fn protocol_and_transport_errors() {
    let (mut c, root) = session(8192);
    c.transport_mut().0.garbage_next = true;
    let e = c.getattr(root, GETATTR_BASIC).unwrap_err();
    assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
    assert!(e.to_string().starts_with("protocol:"), "{e}");
    // Nothing queued: the transport reports it.
    let e = c.recv_response().unwrap_err();
    assert!(matches!(e, ClientError::Transport(_)));
    // Names over 255 bytes cannot be encoded.
    let long = "n".repeat(300);
    assert!(matches!(
        c.walk(root, &[&long]),
        Err(ClientError::Encode(EncodeError::NameTooLong { len: 300 }))
    ));
    // Debug never dumps buffers and needs no Debug on the transport.
    let dbg = format!("{c:?}");
    assert!(dbg.contains("msize: 8192"), "{dbg}");
}
