//! Shared fixtures: one value of every message variant, and a tiny PRNG.
#![allow(dead_code)]

use secure9p::limits::{NOFID, NONUNAME, NOTAG};
use secure9p::wire::*;

pub fn qid(ty: u8, path: u64) -> Qid {
    Qid {
        ty,
        version: 7,
        path,
    }
}

pub fn sample_attr() -> Attr {
    Attr {
        valid: GETATTR_ALL,
        qid: qid(QTFILE, 42),
        mode: 0o100644,
        uid: 1000,
        gid: 1000,
        nlink: 1,
        rdev: 0,
        size: 12345,
        blksize: 4096,
        blocks: 4,
        atime_sec: 1,
        atime_nsec: 2,
        mtime_sec: 3,
        mtime_nsec: 4,
        ctime_sec: 5,
        ctime_nsec: 6,
        btime_sec: 7,
        btime_nsec: 8,
        generation: 9,
        data_version: u64::MAX,
    }
}

/// (tag, request) for every Request variant, plus a few unsupported types.
pub fn all_requests() -> Vec<(u16, Request)> {
    vec![
        (
            NOTAG,
            Request::Version {
                msize: 8192,
                version: "9P2000.L".into(),
            },
        ),
        (
            1,
            Request::Auth {
                afid: 5,
                uname: "queen".into(),
                aname: "".into(),
                n_uname: NONUNAME,
            },
        ),
        (
            2,
            Request::Attach {
                fid: 0,
                afid: NOFID,
                uname: "worker-gpu:worker-3".into(),
                aname: "cohesix-ticket-0102.ff".into(),
                n_uname: 0,
            },
        ),
        (3, Request::Flush { oldtag: 2 }),
        (
            4,
            Request::Walk {
                fid: 0,
                newfid: 1,
                names: vec!["proc".into(), "lifecycle".into(), "state".into()],
            },
        ),
        (
            4,
            Request::Walk {
                fid: 0,
                newfid: 1,
                names: vec![],
            },
        ),
        (
            4,
            Request::Walk {
                fid: 0,
                newfid: 1,
                names: (0..16).map(|i| format!("n{i}")).collect(),
            },
        ),
        (
            5,
            Request::Lopen {
                fid: 1,
                flags: O_RDWR,
            },
        ),
        (
            6,
            Request::Lcreate {
                fid: 1,
                name: "new".into(),
                flags: O_CREAT | O_WRONLY,
                mode: 0o644,
                gid: 10,
            },
        ),
        (
            7,
            Request::Read {
                fid: 1,
                offset: u64::MAX - 1,
                count: 8168,
            },
        ),
        (
            8,
            Request::Write {
                fid: 1,
                offset: 9,
                data: b"{\"kill\":\"worker-1\"}\n".to_vec(),
            },
        ),
        (
            8,
            Request::Write {
                fid: 1,
                offset: 0,
                data: vec![],
            },
        ),
        (9, Request::Clunk { fid: 1 }),
        (10, Request::Remove { fid: 2 }),
        (
            11,
            Request::Getattr {
                fid: 1,
                mask: GETATTR_BASIC,
            },
        ),
        (
            12,
            Request::Setattr {
                fid: 1,
                attr: SetAttr {
                    valid: SETATTR_SIZE | SETATTR_MTIME,
                    mode: 1,
                    uid: 2,
                    gid: 3,
                    size: 4,
                    atime_sec: 5,
                    atime_nsec: 6,
                    mtime_sec: 7,
                    mtime_nsec: 8,
                },
            },
        ),
        (
            13,
            Request::Readdir {
                fid: 1,
                offset: 3,
                count: 512,
            },
        ),
        (14, Request::Statfs { fid: 0 }),
        (
            15,
            Request::Fsync {
                fid: 1,
                datasync: 1,
            },
        ),
        (
            16,
            Request::Xattrwalk {
                fid: 1,
                newfid: 9,
                name: "".into(),
            },
        ),
        (
            17,
            Request::Mkdir {
                dfid: 0,
                name: "d".into(),
                mode: 0o755,
                gid: 0,
            },
        ),
        (
            18,
            Request::Unlinkat {
                dirfid: 0,
                name: "d".into(),
                flags: AT_REMOVEDIR,
            },
        ),
        (19, Request::Unsupported { ty: msg::TSYMLINK }),
        (20, Request::Unsupported { ty: msg::TSTAT }),
        (21, Request::Unsupported { ty: 0 }),
        (22, Request::Unsupported { ty: 255 }),
    ]
}

/// (tag, response) for every Response variant.
pub fn all_responses() -> Vec<(u16, Response)> {
    vec![
        (
            NOTAG,
            Response::Version {
                msize: 8192,
                version: "9P2000.L".into(),
            },
        ),
        (
            NOTAG,
            Response::Version {
                msize: 8192,
                version: "unknown".into(),
            },
        ),
        (
            1,
            Response::Auth {
                aqid: qid(QTAUTH, 1),
            },
        ),
        (2, Response::Attach { qid: qid(QTDIR, 0) }),
        (3, Response::Flush),
        (
            4,
            Response::Walk {
                qids: vec![qid(QTDIR, 1), qid(QTDIR, 2), qid(QTFILE, 3)],
            },
        ),
        (4, Response::Walk { qids: vec![] }),
        (
            4,
            Response::Walk {
                qids: (0..16).map(|i| qid(QTDIR, i)).collect(),
            },
        ),
        (
            5,
            Response::Lopen {
                qid: qid(QTAPPEND, 4),
                iounit: 8168,
            },
        ),
        (
            6,
            Response::Lcreate {
                qid: qid(QTFILE, 5),
                iounit: 0,
            },
        ),
        (
            7,
            Response::Read {
                data: b"ONLINE\n".to_vec(),
            },
        ),
        (7, Response::Read { data: vec![] }),
        (8, Response::Write { count: 20 }),
        (9, Response::Clunk),
        (10, Response::Remove),
        (11, Response::Getattr(sample_attr())),
        (12, Response::Setattr),
        (
            13,
            Response::Readdir {
                data: vec![1, 2, 3],
            },
        ),
        (
            14,
            Response::Statfs(StatFs {
                ty: 0x0102_1997,
                bsize: 4096,
                blocks: 1,
                bfree: 2,
                bavail: 3,
                files: 4,
                ffree: 5,
                fsid: 6,
                namelen: 255,
            }),
        ),
        (15, Response::Fsync),
        (16, Response::Xattrwalk { size: 77 }),
        (17, Response::Mkdir { qid: qid(QTDIR, 9) }),
        (18, Response::Unlinkat),
        (
            19,
            Response::Lerror {
                ecode: secure9p::errno::EOPNOTSUPP,
            },
        ),
    ]
}

pub fn enc_req(tag: u16, r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(tag, r, &mut out).expect("encode request");
    out
}

pub fn enc_resp(tag: u16, r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    encode_response(tag, r, &mut out).expect("encode response");
    out
}

/// xorshift64*: deterministic, no dependencies.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}
