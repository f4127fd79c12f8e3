//! 9P2000.L messages and their bounded, panic-free codec.
//!
//! # Framing
//! Every message is `size[4] type[1] tag[2] body`, little-endian, where `size`
//! counts the whole frame including itself. Strings are `len[2]` + UTF-8 and a
//! qid is `type[1] version[4] path[8]`. R-type = T-type + 1.
//!
//! * Stream transports (Unix socket, TCP) read 4+ bytes, call [`frame_size`]
//!   (which checks `7 <= size <= msize` *before* anything is allocated), then
//!   read the rest of the frame and call [`decode_request`] /
//!   [`decode_response`] on exactly that frame.
//! * Message transports (virtio) hand the whole buffer to the decoder, which
//!   performs the same checks and additionally requires `size == frame.len()`.
//!
//! # What the codec checks and what it leaves to the server
//! The codec enforces the *shape*: sizes, field bounds, string lengths and
//! UTF-8, at most [`MAX_WALK`] walk names, names at most [`MAX_NAME`] bytes,
//! Twrite/Rread/Rreaddir data exactly filling the frame, no trailing bytes.
//! It does not judge *meaning*: `"."`, `".."`, `""` or names containing `/` are
//! decoded as they are (see [`is_plain_name`] for the usual rule), read counts
//! larger than [`max_io_count`]`(msize)` are decoded (the server clamps them),
//! and fids/tags are not tracked.
//!
//! Every T-message type the codec does not implement (Tsymlink, Tmknod,
//! Trename, Treadlink, Txattrcreate, Tlock, Tgetlock, Tlink, Trenameat, the
//! plain 9P2000 Topen/Tcreate/Tstat/Twstat, any unknown byte) decodes to
//! [`Request::Unsupported`] with its tag, so a server answers
//! `Rlerror(EOPNOTSUPP)` on that tag instead of dropping the connection.
//!
//! # Errors
//! A [`DecodeError`] carries the tag whenever the header was readable and
//! suggests an errno ([`DecodeError::errno`]) for the Rlerror a server sends
//! back; the session can continue after any error on a complete frame.
//!
//! [`max_io_count`]: crate::limits::max_io_count

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::errno;
use crate::limits::{HEADER_LEN, MAX_MSIZE, MAX_NAME, MAX_WALK};

/// Message type numbers (Linux `include/net/9p/9p.h`, `enum p9_msg_t`).
pub mod msg {
    /// Tlerror: not a valid request (never sent).
    pub const TLERROR: u8 = 6;
    /// Rlerror: `ecode[4]`.
    pub const RLERROR: u8 = 7;
    /// Tstatfs: `fid[4]`.
    pub const TSTATFS: u8 = 8;
    /// Rstatfs.
    pub const RSTATFS: u8 = 9;
    /// Tlopen: `fid[4] flags[4]`.
    pub const TLOPEN: u8 = 12;
    /// Rlopen: `qid[13] iounit[4]`.
    pub const RLOPEN: u8 = 13;
    /// Tlcreate: `fid[4] name[s] flags[4] mode[4] gid[4]`.
    pub const TLCREATE: u8 = 14;
    /// Rlcreate: `qid[13] iounit[4]`.
    pub const RLCREATE: u8 = 15;
    /// Tsymlink (unsupported by coco).
    pub const TSYMLINK: u8 = 16;
    /// Tmknod (unsupported by coco).
    pub const TMKNOD: u8 = 18;
    /// Trename (unsupported by coco).
    pub const TRENAME: u8 = 20;
    /// Treadlink (unsupported by coco).
    pub const TREADLINK: u8 = 22;
    /// Tgetattr: `fid[4] request_mask[8]`.
    pub const TGETATTR: u8 = 24;
    /// Rgetattr: see [`super::Attr`].
    pub const RGETATTR: u8 = 25;
    /// Tsetattr: `fid[4]` + [`super::SetAttr`].
    pub const TSETATTR: u8 = 26;
    /// Rsetattr: empty.
    pub const RSETATTR: u8 = 27;
    /// Txattrwalk: `fid[4] newfid[4] name[s]`.
    pub const TXATTRWALK: u8 = 30;
    /// Rxattrwalk: `size[8]`.
    pub const RXATTRWALK: u8 = 31;
    /// Txattrcreate (unsupported by coco).
    pub const TXATTRCREATE: u8 = 32;
    /// Treaddir: `fid[4] offset[8] count[4]`.
    pub const TREADDIR: u8 = 40;
    /// Rreaddir: `count[4] data[count]`.
    pub const RREADDIR: u8 = 41;
    /// Tfsync: `fid[4] datasync[4]`.
    pub const TFSYNC: u8 = 50;
    /// Rfsync: empty.
    pub const RFSYNC: u8 = 51;
    /// Tlock (unsupported by coco).
    pub const TLOCK: u8 = 52;
    /// Tgetlock (unsupported by coco).
    pub const TGETLOCK: u8 = 54;
    /// Tlink (unsupported by coco).
    pub const TLINK: u8 = 70;
    /// Tmkdir: `dfid[4] name[s] mode[4] gid[4]`.
    pub const TMKDIR: u8 = 72;
    /// Rmkdir: `qid[13]`.
    pub const RMKDIR: u8 = 73;
    /// Trenameat (unsupported by coco).
    pub const TRENAMEAT: u8 = 74;
    /// Tunlinkat: `dirfd[4] name[s] flags[4]`.
    pub const TUNLINKAT: u8 = 76;
    /// Runlinkat: empty.
    pub const RUNLINKAT: u8 = 77;
    /// Tversion: `msize[4] version[s]`.
    pub const TVERSION: u8 = 100;
    /// Rversion: `msize[4] version[s]`.
    pub const RVERSION: u8 = 101;
    /// Tauth: `afid[4] uname[s] aname[s] n_uname[4]`.
    pub const TAUTH: u8 = 102;
    /// Rauth: `aqid[13]`.
    pub const RAUTH: u8 = 103;
    /// Tattach: `fid[4] afid[4] uname[s] aname[s] n_uname[4]`.
    pub const TATTACH: u8 = 104;
    /// Rattach: `qid[13]`.
    pub const RATTACH: u8 = 105;
    /// Terror: not a valid message (9P2000).
    pub const TERROR: u8 = 106;
    /// Rerror: 9P2000's string error (never sent by coco; not decoded).
    pub const RERROR: u8 = 107;
    /// Tflush: `oldtag[2]`.
    pub const TFLUSH: u8 = 108;
    /// Rflush: empty.
    pub const RFLUSH: u8 = 109;
    /// Twalk: `fid[4] newfid[4] nwname[2] nwname*(wname[s])`.
    pub const TWALK: u8 = 110;
    /// Rwalk: `nwqid[2] nwqid*(qid[13])`.
    pub const RWALK: u8 = 111;
    /// Topen: plain 9P2000 (unsupported by coco).
    pub const TOPEN: u8 = 112;
    /// Tcreate: plain 9P2000 (unsupported by coco).
    pub const TCREATE: u8 = 114;
    /// Tread: `fid[4] offset[8] count[4]`.
    pub const TREAD: u8 = 116;
    /// Rread: `count[4] data[count]`.
    pub const RREAD: u8 = 117;
    /// Twrite: `fid[4] offset[8] count[4] data[count]`.
    pub const TWRITE: u8 = 118;
    /// Rwrite: `count[4]`.
    pub const RWRITE: u8 = 119;
    /// Tclunk: `fid[4]`.
    pub const TCLUNK: u8 = 120;
    /// Rclunk: empty.
    pub const RCLUNK: u8 = 121;
    /// Tremove: `fid[4]`.
    pub const TREMOVE: u8 = 122;
    /// Rremove: empty.
    pub const RREMOVE: u8 = 123;
    /// Tstat: plain 9P2000 (unsupported by coco).
    pub const TSTAT: u8 = 124;
    /// Twstat: plain 9P2000 (unsupported by coco).
    pub const TWSTAT: u8 = 126;

    /// The conventional name of a message type (`"Twalk"`, `"Rlerror"`,
    /// `"Tsymlink"`), or `"unknown"`.
    #[must_use]
    pub const fn name(ty: u8) -> &'static str {
        match ty {
            TLERROR => "Tlerror",
            RLERROR => "Rlerror",
            TSTATFS => "Tstatfs",
            RSTATFS => "Rstatfs",
            TLOPEN => "Tlopen",
            RLOPEN => "Rlopen",
            TLCREATE => "Tlcreate",
            RLCREATE => "Rlcreate",
            TSYMLINK => "Tsymlink",
            17 => "Rsymlink",
            TMKNOD => "Tmknod",
            19 => "Rmknod",
            TRENAME => "Trename",
            21 => "Rrename",
            TREADLINK => "Treadlink",
            23 => "Rreadlink",
            TGETATTR => "Tgetattr",
            RGETATTR => "Rgetattr",
            TSETATTR => "Tsetattr",
            RSETATTR => "Rsetattr",
            TXATTRWALK => "Txattrwalk",
            RXATTRWALK => "Rxattrwalk",
            TXATTRCREATE => "Txattrcreate",
            33 => "Rxattrcreate",
            TREADDIR => "Treaddir",
            RREADDIR => "Rreaddir",
            TFSYNC => "Tfsync",
            RFSYNC => "Rfsync",
            TLOCK => "Tlock",
            53 => "Rlock",
            TGETLOCK => "Tgetlock",
            55 => "Rgetlock",
            TLINK => "Tlink",
            71 => "Rlink",
            TMKDIR => "Tmkdir",
            RMKDIR => "Rmkdir",
            TRENAMEAT => "Trenameat",
            75 => "Rrenameat",
            TUNLINKAT => "Tunlinkat",
            RUNLINKAT => "Runlinkat",
            TVERSION => "Tversion",
            RVERSION => "Rversion",
            TAUTH => "Tauth",
            RAUTH => "Rauth",
            TATTACH => "Tattach",
            RATTACH => "Rattach",
            TERROR => "Terror",
            RERROR => "Rerror",
            TFLUSH => "Tflush",
            RFLUSH => "Rflush",
            TWALK => "Twalk",
            RWALK => "Rwalk",
            TOPEN => "Topen",
            113 => "Ropen",
            TCREATE => "Tcreate",
            115 => "Rcreate",
            TREAD => "Tread",
            RREAD => "Rread",
            TWRITE => "Twrite",
            RWRITE => "Rwrite",
            TCLUNK => "Tclunk",
            RCLUNK => "Rclunk",
            TREMOVE => "Tremove",
            RREMOVE => "Rremove",
            TSTAT => "Tstat",
            125 => "Rstat",
            TWSTAT => "Twstat",
            127 => "Rwstat",
            _ => "unknown",
        }
    }

    /// Whether `ty` is a T-message the codec decodes into a dedicated
    /// [`super::Request`] variant (everything else is `Unsupported`).
    #[must_use]
    pub const fn is_supported_request(ty: u8) -> bool {
        matches!(
            ty,
            TVERSION
                | TAUTH
                | TATTACH
                | TFLUSH
                | TWALK
                | TLOPEN
                | TLCREATE
                | TREAD
                | TWRITE
                | TCLUNK
                | TREMOVE
                | TGETATTR
                | TSETATTR
                | TREADDIR
                | TSTATFS
                | TFSYNC
                | TXATTRWALK
                | TMKDIR
                | TUNLINKAT
        )
    }
}

// ---------------------------------------------------------------------------
// Qids, attributes, flags
// ---------------------------------------------------------------------------

/// Qid type bit: a directory.
pub const QTDIR: u8 = 0x80;
/// Qid type bit: an append-only file (writes only at the end).
pub const QTAPPEND: u8 = 0x40;
/// Qid type bit: an exclusive-use file.
pub const QTEXCL: u8 = 0x20;
/// Qid type bit: an authentication file (the afid of Tauth).
pub const QTAUTH: u8 = 0x08;
/// Qid type bit: a non-backed-up ("temporary") file.
pub const QTTMP: u8 = 0x04;
/// Qid type bit: a symbolic link.
pub const QTSYMLINK: u8 = 0x02;
/// Qid type of a plain file.
pub const QTFILE: u8 = 0x00;

/// A server's unique identity for a file: `type[1] version[4] path[8]`.
///
/// coco's synthetic files use `version` 0 ("uncacheable") and a `path` that
/// is stable for the life of the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Qid {
    /// `QT*` bits.
    pub ty: u8,
    /// Version (0 for synthetic, uncacheable files).
    pub version: u32,
    /// Unique path number.
    pub path: u64,
}

impl Qid {
    /// Encoded length of a qid.
    pub const LEN: usize = 13;

    /// Whether the qid names a directory.
    #[must_use]
    pub const fn is_dir(&self) -> bool {
        self.ty & QTDIR != 0
    }

    /// Whether the qid names an append-only file.
    #[must_use]
    pub const fn is_append(&self) -> bool {
        self.ty & QTAPPEND != 0
    }
}

/// Tgetattr mask / Rgetattr `valid` bit: `mode`.
pub const GETATTR_MODE: u64 = 0x0000_0001;
/// Tgetattr mask bit: `nlink`.
pub const GETATTR_NLINK: u64 = 0x0000_0002;
/// Tgetattr mask bit: `uid`.
pub const GETATTR_UID: u64 = 0x0000_0004;
/// Tgetattr mask bit: `gid`.
pub const GETATTR_GID: u64 = 0x0000_0008;
/// Tgetattr mask bit: `rdev`.
pub const GETATTR_RDEV: u64 = 0x0000_0010;
/// Tgetattr mask bit: `atime`.
pub const GETATTR_ATIME: u64 = 0x0000_0020;
/// Tgetattr mask bit: `mtime`.
pub const GETATTR_MTIME: u64 = 0x0000_0040;
/// Tgetattr mask bit: `ctime`.
pub const GETATTR_CTIME: u64 = 0x0000_0080;
/// Tgetattr mask bit: the inode number (`qid.path`).
pub const GETATTR_INO: u64 = 0x0000_0100;
/// Tgetattr mask bit: `size`.
pub const GETATTR_SIZE: u64 = 0x0000_0200;
/// Tgetattr mask bit: `blocks`.
pub const GETATTR_BLOCKS: u64 = 0x0000_0400;
/// Tgetattr mask bit: `btime`.
pub const GETATTR_BTIME: u64 = 0x0000_0800;
/// Tgetattr mask bit: `gen` ([`Attr::generation`]).
pub const GETATTR_GEN: u64 = 0x0000_1000;
/// Tgetattr mask bit: `data_version`.
pub const GETATTR_DATA_VERSION: u64 = 0x0000_2000;
/// Everything `stat(2)` needs (mode through blocks).
pub const GETATTR_BASIC: u64 = 0x0000_07ff;
/// Every defined bit.
pub const GETATTR_ALL: u64 = 0x0000_3fff;

/// Rgetattr body (after the header): which fields are `valid` (a subset of the
/// request mask) and the attributes. Fields whose bit is not in `valid` are
/// meaningless and should be zero.
///
/// Wire: `valid[8] qid[13] mode[4] uid[4] gid[4] nlink[8] rdev[8] size[8]`
/// `blksize[8] blocks[8] atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8]`
/// `ctime_sec[8] ctime_nsec[8] btime_sec[8] btime_nsec[8] gen[8]`
/// `data_version[8]` (153 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct Attr {
    /// `GETATTR_*` bits of the fields that are filled in.
    pub valid: u64,
    pub qid: Qid,
    /// `st_mode`: file type bits (`S_IFDIR 0o040000`, `S_IFREG 0o100000`) and
    /// permissions.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime_sec: u64,
    pub atime_nsec: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
    pub ctime_sec: u64,
    pub ctime_nsec: u64,
    pub btime_sec: u64,
    pub btime_nsec: u64,
    /// Inode generation (`gen` on the wire; `gen` is a reserved word in Rust 2024).
    pub generation: u64,
    pub data_version: u64,
}

impl Attr {
    /// Encoded length of an Rgetattr body.
    pub const LEN: usize = 153;
}

/// Tsetattr `valid` bit: set `mode`.
pub const SETATTR_MODE: u32 = 0x0000_0001;
/// Tsetattr `valid` bit: set `uid`.
pub const SETATTR_UID: u32 = 0x0000_0002;
/// Tsetattr `valid` bit: set `gid`.
pub const SETATTR_GID: u32 = 0x0000_0004;
/// Tsetattr `valid` bit: set `size` (truncate).
pub const SETATTR_SIZE: u32 = 0x0000_0008;
/// Tsetattr `valid` bit: set atime (to now unless `SETATTR_ATIME_SET`).
pub const SETATTR_ATIME: u32 = 0x0000_0010;
/// Tsetattr `valid` bit: set mtime (to now unless `SETATTR_MTIME_SET`).
pub const SETATTR_MTIME: u32 = 0x0000_0020;
/// Tsetattr `valid` bit: set ctime.
pub const SETATTR_CTIME: u32 = 0x0000_0040;
/// Tsetattr `valid` bit: atime is given in `atime_sec/nsec`.
pub const SETATTR_ATIME_SET: u32 = 0x0000_0080;
/// Tsetattr `valid` bit: mtime is given in `mtime_sec/nsec`.
pub const SETATTR_MTIME_SET: u32 = 0x0000_0100;

/// Tsetattr body after the fid.
///
/// Wire: `valid[4] mode[4] uid[4] gid[4] size[8] atime_sec[8] atime_nsec[8]`
/// `mtime_sec[8] mtime_nsec[8]` (56 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct SetAttr {
    /// `SETATTR_*` bits of the fields to change.
    pub valid: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime_sec: u64,
    pub atime_nsec: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
}

impl SetAttr {
    /// Encoded length.
    pub const LEN: usize = 56;
}

/// Rstatfs body (`struct statfs` subset).
///
/// Wire: `type[4] bsize[4] blocks[8] bfree[8] bavail[8] files[8] ffree[8]`
/// `fsid[8] namelen[4]` (60 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub struct StatFs {
    /// File system type magic (V9FS_MAGIC is 0x01021997).
    pub ty: u32,
    pub bsize: u32,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: u64,
    /// Longest name: coco reports [`MAX_NAME`].
    pub namelen: u32,
}

impl StatFs {
    /// Encoded length.
    pub const LEN: usize = 60;
}

/// Tlopen/Tlcreate flags (Linux `O_*` values, `P9_DOTL_*` in 9p.h): read only.
pub const O_RDONLY: u32 = 0o0;
/// Write only.
pub const O_WRONLY: u32 = 0o1;
/// Read and write.
pub const O_RDWR: u32 = 0o2;
/// Mask of the access mode bits.
pub const O_ACCMODE: u32 = 0o3;
/// Create.
pub const O_CREAT: u32 = 0o100;
/// Exclusive create.
pub const O_EXCL: u32 = 0o200;
/// Truncate.
pub const O_TRUNC: u32 = 0o1000;
/// Append.
pub const O_APPEND: u32 = 0o2000;
/// Non-blocking.
pub const O_NONBLOCK: u32 = 0o4000;
/// Must be a directory.
pub const O_DIRECTORY: u32 = 0o200000;
/// Do not follow symlinks.
pub const O_NOFOLLOW: u32 = 0o400000;
/// Close on exec (meaningless to a server).
pub const O_CLOEXEC: u32 = 0o2000000;

/// Tunlinkat flag: remove a directory.
pub const AT_REMOVEDIR: u32 = 0x200;

/// Directory entry type (`DT_*`): unknown.
pub const DT_UNKNOWN: u8 = 0;
/// Directory entry type: directory.
pub const DT_DIR: u8 = 4;
/// Directory entry type: regular file.
pub const DT_REG: u8 = 8;
/// Directory entry type: symbolic link.
pub const DT_LNK: u8 = 10;

/// The `DT_*` type a directory entry for `qid` should carry.
#[must_use]
pub const fn dirent_type(qid: &Qid) -> u8 {
    if qid.ty & QTDIR != 0 {
        DT_DIR
    } else if qid.ty & QTSYMLINK != 0 {
        DT_LNK
    } else {
        DT_REG
    }
}

/// The usual rule for a single path component: non-empty, at most
/// [`MAX_NAME`] bytes, not `"."` or `".."`, and no `/` or NUL byte.
///
/// The decoder does not apply it (name semantics are the server's): a server
/// answering Twalk handles `".."` itself (at the root it stays at the root)
/// and refuses the rest of what this rejects; the client applies it to every
/// component of [`walk_path`](crate::client::Client::walk_path).
#[must_use]
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name != "."
        && name != ".."
        && !name.bytes().any(|b| b == b'/' || b == 0)
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// A decoded T-message (client → server). Fids are `u32`, tags travel beside
/// the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Tversion: `msize[4] version[s]`. Tag is [`NOTAG`](crate::limits::NOTAG).
    Version {
        /// The client's maximum message size.
        msize: u32,
        /// `"9P2000.L"` (anything else is answered `"unknown"`).
        version: String,
    },
    /// Tauth: `afid[4] uname[s] aname[s] n_uname[4]`.
    Auth {
        /// Fid to use for the authentication file.
        afid: u32,
        /// User name.
        uname: String,
        /// Tree name.
        aname: String,
        /// Numeric user id ([`NONUNAME`](crate::limits::NONUNAME) if none).
        n_uname: u32,
    },
    /// Tattach: `fid[4] afid[4] uname[s] aname[s] n_uname[4]`.
    ///
    /// In Secure9P `uname` is the role (`queen`, `worker-heartbeat:<id>`, …)
    /// and `aname` the ticket text (up to
    /// [`MAX_TICKET_TEXT`](crate::ticket::MAX_TICKET_TEXT) bytes).
    Attach {
        /// The new root fid.
        fid: u32,
        /// [`NOFID`](crate::limits::NOFID) without authentication.
        afid: u32,
        /// Role.
        uname: String,
        /// Ticket.
        aname: String,
        /// Numeric user id ([`NONUNAME`](crate::limits::NONUNAME) if none).
        n_uname: u32,
    },
    /// Tflush: `oldtag[2]`.
    Flush {
        /// The tag of the request to abort.
        oldtag: u16,
    },
    /// Twalk: `fid[4] newfid[4] nwname[2] nwname*(wname[s])`; at most
    /// [`MAX_WALK`] names, each at most [`MAX_NAME`] bytes.
    Walk {
        /// Starting fid.
        fid: u32,
        /// Fid to create (may equal `fid`).
        newfid: u32,
        /// Path elements (empty: clone `fid`).
        names: Vec<String>,
    },
    /// Tlopen: `fid[4] flags[4]` (`O_*`).
    Lopen {
        /// Fid to open.
        fid: u32,
        /// Linux open flags.
        flags: u32,
    },
    /// Tlcreate: `fid[4] name[s] flags[4] mode[4] gid[4]`.
    Lcreate {
        /// Directory fid (becomes the new file on success).
        fid: u32,
        /// New file name.
        name: String,
        /// Linux open flags.
        flags: u32,
        /// Permission bits.
        mode: u32,
        /// Group.
        gid: u32,
    },
    /// Tread: `fid[4] offset[8] count[4]`.
    Read {
        /// Open fid.
        fid: u32,
        /// Byte offset.
        offset: u64,
        /// Bytes wanted (the server clamps to `msize - IOHDRSZ`).
        count: u32,
    },
    /// Twrite: `fid[4] offset[8] count[4] data[count]`.
    Write {
        /// Open fid.
        fid: u32,
        /// Byte offset (`u64::MAX` appends to an append-only file).
        offset: u64,
        /// Payload; its length is the count.
        data: Vec<u8>,
    },
    /// Tclunk: `fid[4]`.
    Clunk {
        /// Fid to forget.
        fid: u32,
    },
    /// Tremove: `fid[4]`.
    Remove {
        /// Fid to remove (and clunk, even on failure).
        fid: u32,
    },
    /// Tgetattr: `fid[4] request_mask[8]`.
    Getattr {
        /// Fid.
        fid: u32,
        /// `GETATTR_*` bits wanted.
        mask: u64,
    },
    /// Tsetattr: `fid[4]` + [`SetAttr`].
    Setattr {
        /// Fid.
        fid: u32,
        /// What to change.
        attr: SetAttr,
    },
    /// Treaddir: `fid[4] offset[8] count[4]`.
    Readdir {
        /// Open directory fid.
        fid: u32,
        /// 0 or the `offset` cookie of the last entry received.
        offset: u64,
        /// Bytes wanted.
        count: u32,
    },
    /// Tstatfs: `fid[4]`.
    Statfs {
        /// Any fid of the file system.
        fid: u32,
    },
    /// Tfsync: `fid[4] datasync[4]`.
    Fsync {
        /// Open fid.
        fid: u32,
        /// Non-zero: only data.
        datasync: u32,
    },
    /// Txattrwalk: `fid[4] newfid[4] name[s]` (empty name: list).
    Xattrwalk {
        /// Fid.
        fid: u32,
        /// Fid for the attribute.
        newfid: u32,
        /// Attribute name.
        name: String,
    },
    /// Tmkdir: `dfid[4] name[s] mode[4] gid[4]`.
    Mkdir {
        /// Parent directory fid.
        dfid: u32,
        /// New directory name.
        name: String,
        /// Permission bits.
        mode: u32,
        /// Group.
        gid: u32,
    },
    /// Tunlinkat: `dirfd[4] name[s] flags[4]`.
    Unlinkat {
        /// Parent directory fid.
        dirfid: u32,
        /// Name to remove.
        name: String,
        /// 0 or [`AT_REMOVEDIR`].
        flags: u32,
    },
    /// Any other message type (see the module docs). The body is ignored;
    /// the server answers `Rlerror(EOPNOTSUPP)` on the frame's tag.
    Unsupported {
        /// The message type byte.
        ty: u8,
    },
}

impl Request {
    /// The message type byte.
    #[must_use]
    pub const fn msg_type(&self) -> u8 {
        match self {
            Request::Version { .. } => msg::TVERSION,
            Request::Auth { .. } => msg::TAUTH,
            Request::Attach { .. } => msg::TATTACH,
            Request::Flush { .. } => msg::TFLUSH,
            Request::Walk { .. } => msg::TWALK,
            Request::Lopen { .. } => msg::TLOPEN,
            Request::Lcreate { .. } => msg::TLCREATE,
            Request::Read { .. } => msg::TREAD,
            Request::Write { .. } => msg::TWRITE,
            Request::Clunk { .. } => msg::TCLUNK,
            Request::Remove { .. } => msg::TREMOVE,
            Request::Getattr { .. } => msg::TGETATTR,
            Request::Setattr { .. } => msg::TSETATTR,
            Request::Readdir { .. } => msg::TREADDIR,
            Request::Statfs { .. } => msg::TSTATFS,
            Request::Fsync { .. } => msg::TFSYNC,
            Request::Xattrwalk { .. } => msg::TXATTRWALK,
            Request::Mkdir { .. } => msg::TMKDIR,
            Request::Unlinkat { .. } => msg::TUNLINKAT,
            Request::Unsupported { ty } => *ty,
        }
    }

    /// The message's conventional name (`"Twalk"`), for logs.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        msg::name(self.msg_type())
    }
}

/// A decoded R-message (server → client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Rversion: `msize[4] version[s]` (`"unknown"` if the version is refused).
    Version {
        /// Negotiated maximum message size.
        msize: u32,
        /// Agreed version.
        version: String,
    },
    /// Rauth: `aqid[13]`.
    Auth {
        /// Qid of the authentication file.
        aqid: Qid,
    },
    /// Rattach: `qid[13]`.
    Attach {
        /// Qid of the root.
        qid: Qid,
    },
    /// Rflush.
    Flush,
    /// Rwalk: `nwqid[2] nwqid*(qid[13])`; fewer qids than names means the walk
    /// stopped early and `newfid` was not created.
    Walk {
        /// One qid per name walked.
        qids: Vec<Qid>,
    },
    /// Rlopen: `qid[13] iounit[4]`.
    Lopen {
        /// Qid of the opened file.
        qid: Qid,
        /// Largest I/O the server promises to do atomically (0: msize − 24).
        iounit: u32,
    },
    /// Rlcreate: `qid[13] iounit[4]`.
    Lcreate {
        /// Qid of the created file.
        qid: Qid,
        /// As for Rlopen.
        iounit: u32,
    },
    /// Rread: `count[4] data[count]`.
    Read {
        /// The bytes read (empty: end of file).
        data: Vec<u8>,
    },
    /// Rwrite: `count[4]`.
    Write {
        /// Bytes written.
        count: u32,
    },
    /// Rclunk.
    Clunk,
    /// Rremove.
    Remove,
    /// Rgetattr: [`Attr`].
    Getattr(Attr),
    /// Rsetattr.
    Setattr,
    /// Rreaddir: `count[4] data[count]`; `data` is packed directory entries,
    /// see [`encode_dirents`] and [`decode_dirents`].
    Readdir {
        /// Packed entries (empty: end of directory).
        data: Vec<u8>,
    },
    /// Rstatfs: [`StatFs`].
    Statfs(StatFs),
    /// Rfsync.
    Fsync,
    /// Rxattrwalk: `size[8]`.
    Xattrwalk {
        /// Size of the attribute value.
        size: u64,
    },
    /// Rmkdir: `qid[13]`.
    Mkdir {
        /// Qid of the new directory.
        qid: Qid,
    },
    /// Runlinkat.
    Unlinkat,
    /// Rlerror: `ecode[4]` (a Linux errno, see [`crate::errno`]).
    Lerror {
        /// Errno.
        ecode: u32,
    },
}

impl Response {
    /// The message type byte.
    #[must_use]
    pub const fn msg_type(&self) -> u8 {
        match self {
            Response::Version { .. } => msg::RVERSION,
            Response::Auth { .. } => msg::RAUTH,
            Response::Attach { .. } => msg::RATTACH,
            Response::Flush => msg::RFLUSH,
            Response::Walk { .. } => msg::RWALK,
            Response::Lopen { .. } => msg::RLOPEN,
            Response::Lcreate { .. } => msg::RLCREATE,
            Response::Read { .. } => msg::RREAD,
            Response::Write { .. } => msg::RWRITE,
            Response::Clunk => msg::RCLUNK,
            Response::Remove => msg::RREMOVE,
            Response::Getattr(_) => msg::RGETATTR,
            Response::Setattr => msg::RSETATTR,
            Response::Readdir { .. } => msg::RREADDIR,
            Response::Statfs(_) => msg::RSTATFS,
            Response::Fsync => msg::RFSYNC,
            Response::Xattrwalk { .. } => msg::RXATTRWALK,
            Response::Mkdir { .. } => msg::RMKDIR,
            Response::Unlinkat => msg::RUNLINKAT,
            Response::Lerror { .. } => msg::RLERROR,
        }
    }

    /// The message's conventional name (`"Rwalk"`), for logs.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        msg::name(self.msg_type())
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// What was wrong with a frame (see [`DecodeError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Fewer than 7 bytes, or a declared size below 7. On a stream this loses
    /// the framing: close the connection.
    TooShort,
    /// The declared size exceeds `msize` (clamped to [`MAX_MSIZE`]). Nothing
    /// was allocated; a stream server may answer on the tag (if known) and
    /// discard `size - bytes_already_read` bytes, or close.
    Oversized {
        /// Declared frame size.
        size: u32,
        /// The effective `msize` it was checked against.
        msize: u32,
    },
    /// The declared size differs from the length of the frame given.
    SizeMismatch {
        /// Declared frame size.
        declared: u32,
        /// Bytes actually given.
        actual: usize,
    },
    /// A field (or a string, or a count of data) runs past the end.
    Truncated,
    /// Bytes left over after the last field.
    TrailingBytes,
    /// A string is not UTF-8.
    BadUtf8,
    /// A name is longer than [`MAX_NAME`] bytes.
    NameTooLong {
        /// Its length.
        len: usize,
    },
    /// A Twalk with more than [`MAX_WALK`] names, or an Rwalk with more than
    /// [`MAX_WALK`] qids.
    TooManyWalkNames {
        /// The count on the wire.
        count: u16,
    },
    /// [`decode_response`] only: a type that is not a known R-message.
    UnknownType {
        /// The type byte.
        ty: u8,
    },
}

/// A frame that could not be decoded. Carries the tag (and type) whenever the
/// header was readable, so a server can answer `Rlerror(self.errno())` on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    tag: Option<u16>,
    ty: Option<u8>,
}

impl DecodeError {
    /// An error without header information (e.g. from [`decode_dirents`]).
    #[must_use]
    pub const fn new(kind: DecodeErrorKind) -> Self {
        Self {
            kind,
            tag: None,
            ty: None,
        }
    }

    /// What was wrong.
    #[must_use]
    pub const fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// The frame's tag, if the 7-byte header was readable.
    #[must_use]
    pub const fn tag(&self) -> Option<u16> {
        self.tag
    }

    /// The frame's type byte, if the 7-byte header was readable.
    #[must_use]
    pub const fn msg_type(&self) -> Option<u8> {
        self.ty
    }

    /// The errno a server should put in the Rlerror it answers with:
    /// `EMSGSIZE` for an oversized frame, `ENAMETOOLONG` for a long name,
    /// `EINVAL` for bad UTF-8 and too many walk names, `EOPNOTSUPP` for an
    /// unknown type and `EPROTO` for every other malformation.
    #[must_use]
    pub const fn errno(&self) -> u32 {
        match self.kind {
            DecodeErrorKind::Oversized { .. } => errno::EMSGSIZE,
            DecodeErrorKind::NameTooLong { .. } => errno::ENAMETOOLONG,
            DecodeErrorKind::BadUtf8 | DecodeErrorKind::TooManyWalkNames { .. } => errno::EINVAL,
            DecodeErrorKind::UnknownType { .. } => errno::EOPNOTSUPP,
            DecodeErrorKind::TooShort
            | DecodeErrorKind::SizeMismatch { .. }
            | DecodeErrorKind::Truncated
            | DecodeErrorKind::TrailingBytes => errno::EPROTO,
        }
    }

    const fn with_header(kind: DecodeErrorKind, tag: u16, ty: u8) -> Self {
        Self {
            kind,
            tag: Some(tag),
            ty: Some(ty),
        }
    }
}

impl From<DecodeErrorKind> for DecodeError {
    fn from(kind: DecodeErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeErrorKind::TooShort => f.write_str("frame shorter than the 7-byte header"),
            DecodeErrorKind::Oversized { size, msize } => {
                write!(f, "frame of {size} bytes exceeds msize {msize}")
            }
            DecodeErrorKind::SizeMismatch { declared, actual } => {
                write!(f, "frame declares {declared} bytes but has {actual}")
            }
            DecodeErrorKind::Truncated => f.write_str("a field runs past the end of the frame"),
            DecodeErrorKind::TrailingBytes => f.write_str("trailing bytes after the last field"),
            DecodeErrorKind::BadUtf8 => f.write_str("string is not UTF-8"),
            DecodeErrorKind::NameTooLong { len } => {
                write!(f, "name of {len} bytes exceeds {MAX_NAME}")
            }
            DecodeErrorKind::TooManyWalkNames { count } => {
                write!(f, "{count} walk elements exceed {MAX_WALK}")
            }
            DecodeErrorKind::UnknownType { ty } => write!(f, "unknown message type {ty}"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed 9P message")?;
        match (self.ty, self.tag) {
            (Some(ty), Some(tag)) => write!(f, " ({} tag {tag})", msg::name(ty))?,
            (None, Some(tag)) => write!(f, " (tag {tag})")?,
            _ => {}
        }
        write!(f, ": {}", self.kind)
    }
}

impl core::error::Error for DecodeError {}

/// A message that cannot be encoded. `out` is left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The frame would be larger than `u32::MAX` bytes.
    FrameTooLarge {
        /// Its length.
        len: usize,
    },
    /// A string longer than `u16::MAX` bytes.
    StringTooLong {
        /// Its length.
        len: usize,
    },
    /// A name longer than [`MAX_NAME`] bytes.
    NameTooLong {
        /// Its length.
        len: usize,
    },
    /// More than [`MAX_WALK`] walk names or qids.
    TooManyWalkNames {
        /// How many.
        count: usize,
    },
    /// Data longer than `u32::MAX` bytes.
    DataTooLarge {
        /// Its length.
        len: usize,
    },
    /// `Request::Unsupported` with the type of a supported request (which
    /// would not decode back to itself).
    ReservedType {
        /// The type byte.
        ty: u8,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::FrameTooLarge { len } => write!(f, "frame of {len} bytes is too large"),
            EncodeError::StringTooLong { len } => {
                write!(f, "string of {len} bytes exceeds 65535")
            }
            EncodeError::NameTooLong { len } => {
                write!(f, "name of {len} bytes exceeds {MAX_NAME}")
            }
            EncodeError::TooManyWalkNames { count } => {
                write!(f, "{count} walk elements exceed {MAX_WALK}")
            }
            EncodeError::DataTooLarge { len } => write!(f, "data of {len} bytes is too large"),
            EncodeError::ReservedType { ty } => write!(
                f,
                "type {ty} ({}) is a supported request, not Unsupported",
                msg::name(ty)
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// A bounds-checked cursor over a message body. Every accessor fails with
/// `Truncated` instead of reading past the end.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

type Res<T> = Result<T, DecodeErrorKind>;

impl<'a> Reader<'a> {
    const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(DecodeErrorKind::Truncated)?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeErrorKind::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        let a = *self
            .rest()
            .first_chunk::<N>()
            .ok_or(DecodeErrorKind::Truncated)?;
        self.pos = self.pos.saturating_add(N);
        Ok(a)
    }

    fn u8(&mut self) -> Res<u8> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u16(&mut self) -> Res<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Res<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Res<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn qid(&mut self) -> Res<Qid> {
        Ok(Qid {
            ty: self.u8()?,
            version: self.u32()?,
            path: self.u64()?,
        })
    }

    /// `len[2]` + UTF-8, bounded by the frame.
    fn string(&mut self) -> Res<String> {
        let len = usize::from(self.u16()?);
        self.utf8(len)
    }

    /// A string of at most [`MAX_NAME`] bytes (checked before reading it).
    fn name(&mut self) -> Res<String> {
        let len = usize::from(self.u16()?);
        if len > MAX_NAME {
            return Err(DecodeErrorKind::NameTooLong { len });
        }
        self.utf8(len)
    }

    fn utf8(&mut self, len: usize) -> Res<String> {
        let bytes = self.take(len)?;
        let s = core::str::from_utf8(bytes).map_err(|_| DecodeErrorKind::BadUtf8)?;
        Ok(String::from(s))
    }

    /// `count[4]` + `data[count]`, where the data must end the frame exactly.
    fn tail_data(&mut self) -> Res<Vec<u8>> {
        let count = usize::try_from(self.u32()?).map_err(|_| DecodeErrorKind::Truncated)?;
        let rem = self.remaining();
        if count > rem {
            return Err(DecodeErrorKind::Truncated);
        }
        if count < rem {
            return Err(DecodeErrorKind::TrailingBytes);
        }
        Ok(self.take(count)?.to_vec())
    }

    fn finish(&self) -> Res<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeErrorKind::TrailingBytes)
        }
    }

    fn attr(&mut self) -> Res<Attr> {
        Ok(Attr {
            valid: self.u64()?,
            qid: self.qid()?,
            mode: self.u32()?,
            uid: self.u32()?,
            gid: self.u32()?,
            nlink: self.u64()?,
            rdev: self.u64()?,
            size: self.u64()?,
            blksize: self.u64()?,
            blocks: self.u64()?,
            atime_sec: self.u64()?,
            atime_nsec: self.u64()?,
            mtime_sec: self.u64()?,
            mtime_nsec: self.u64()?,
            ctime_sec: self.u64()?,
            ctime_nsec: self.u64()?,
            btime_sec: self.u64()?,
            btime_nsec: self.u64()?,
            generation: self.u64()?,
            data_version: self.u64()?,
        })
    }

    fn setattr(&mut self) -> Res<SetAttr> {
        Ok(SetAttr {
            valid: self.u32()?,
            mode: self.u32()?,
            uid: self.u32()?,
            gid: self.u32()?,
            size: self.u64()?,
            atime_sec: self.u64()?,
            atime_nsec: self.u64()?,
            mtime_sec: self.u64()?,
            mtime_nsec: self.u64()?,
        })
    }

    fn statfs(&mut self) -> Res<StatFs> {
        Ok(StatFs {
            ty: self.u32()?,
            bsize: self.u32()?,
            blocks: self.u64()?,
            bfree: self.u64()?,
            bavail: self.u64()?,
            files: self.u64()?,
            ffree: self.u64()?,
            fsid: self.u64()?,
            namelen: self.u32()?,
        })
    }

    fn walk_count(&mut self) -> Res<usize> {
        let count = self.u16()?;
        let n = usize::from(count);
        if n > MAX_WALK {
            return Err(DecodeErrorKind::TooManyWalkNames { count });
        }
        Ok(n)
    }

    fn dirent(&mut self) -> Res<DirEntry> {
        Ok(DirEntry {
            qid: self.qid()?,
            offset: self.u64()?,
            ty: self.u8()?,
            name: self.name()?,
        })
    }
}

/// `msize` as the decoders apply it: never above [`MAX_MSIZE`].
const fn effective_msize(msize: u32) -> u32 {
    if msize > MAX_MSIZE { MAX_MSIZE } else { msize }
}

fn read_size(header: &[u8]) -> Option<u32> {
    header.first_chunk::<4>().map(|b| u32::from_le_bytes(*b))
}

fn read_tag(header: &[u8]) -> Option<u16> {
    header
        .get(5..HEADER_LEN)
        .and_then(|b| b.first_chunk::<2>())
        .map(|b| u16::from_le_bytes(*b))
}

/// Frame length for stream reassembly, checked before anything is allocated.
///
/// `header` is the first bytes received of a frame (any number). Returns
/// `Ok(None)` while fewer than 4 bytes are available, otherwise the declared
/// frame size (including the 4 size bytes) after checking
/// `7 <= size <= min(msize, MAX_MSIZE)`. Before version negotiation pass
/// [`MAX_MSIZE`].
///
/// The error carries the tag if `header` holds at least 7 bytes. After
/// [`DecodeErrorKind::TooShort`] the stream cannot be re-synchronised; after
/// [`DecodeErrorKind::Oversized`] a server may discard the frame's remaining
/// bytes without buffering them and answer on the tag.
pub fn frame_size(header: &[u8], msize: u32) -> Result<Option<usize>, DecodeError> {
    let Some(size) = read_size(header) else {
        return Ok(None);
    };
    let msize = effective_msize(msize);
    let tag = read_tag(header);
    let ty = if tag.is_some() {
        header.get(4).copied()
    } else {
        None
    };
    let err = |kind| DecodeError { kind, tag, ty };
    if (size as usize) < HEADER_LEN {
        return Err(err(DecodeErrorKind::TooShort));
    }
    if size > msize {
        return Err(err(DecodeErrorKind::Oversized { size, msize }));
    }
    usize::try_from(size)
        .map(Some)
        .map_err(|_| err(DecodeErrorKind::Oversized { size, msize }))
}

/// Checks the header of a whole frame and returns (type, tag, body).
fn split_frame(frame: &[u8], msize: u32) -> Result<(u8, u16, Reader<'_>), DecodeError> {
    let (Some(tag), Some(&ty), Some(body)) =
        (read_tag(frame), frame.get(4), frame.get(HEADER_LEN..))
    else {
        return Err(DecodeError::new(DecodeErrorKind::TooShort));
    };
    let size = match frame_size(frame, msize) {
        Ok(Some(n)) => n,
        Ok(None) => return Err(DecodeError::new(DecodeErrorKind::TooShort)),
        Err(e) => return Err(e),
    };
    if size != frame.len() {
        let declared = u32::try_from(size).unwrap_or(u32::MAX);
        return Err(DecodeError::with_header(
            DecodeErrorKind::SizeMismatch {
                declared,
                actual: frame.len(),
            },
            tag,
            ty,
        ));
    }
    Ok((ty, tag, Reader::new(body)))
}

/// Decodes one whole T-message frame (exactly `size` bytes).
///
/// Checks, in order: at least 7 bytes; `7 <= size <= min(msize, MAX_MSIZE)`;
/// `size == frame.len()`; then the body. Unknown or unimplemented types
/// decode to [`Request::Unsupported`] (body ignored). Returns the tag and the
/// request.
pub fn decode_request(frame: &[u8], msize: u32) -> Result<(u16, Request), DecodeError> {
    let (ty, tag, mut r) = split_frame(frame, msize)?;
    parse_request(ty, &mut r)
        .map(|req| (tag, req))
        .map_err(|kind| DecodeError::with_header(kind, tag, ty))
}

fn parse_request(ty: u8, r: &mut Reader<'_>) -> Res<Request> {
    let req = match ty {
        msg::TVERSION => Request::Version {
            msize: r.u32()?,
            version: r.string()?,
        },
        msg::TAUTH => Request::Auth {
            afid: r.u32()?,
            uname: r.string()?,
            aname: r.string()?,
            n_uname: r.u32()?,
        },
        msg::TATTACH => Request::Attach {
            fid: r.u32()?,
            afid: r.u32()?,
            uname: r.string()?,
            aname: r.string()?,
            n_uname: r.u32()?,
        },
        msg::TFLUSH => Request::Flush { oldtag: r.u16()? },
        msg::TWALK => {
            let fid = r.u32()?;
            let newfid = r.u32()?;
            let n = r.walk_count()?;
            let mut names = Vec::with_capacity(n);
            for _ in 0..n {
                names.push(r.name()?);
            }
            Request::Walk { fid, newfid, names }
        }
        msg::TLOPEN => Request::Lopen {
            fid: r.u32()?,
            flags: r.u32()?,
        },
        msg::TLCREATE => Request::Lcreate {
            fid: r.u32()?,
            name: r.name()?,
            flags: r.u32()?,
            mode: r.u32()?,
            gid: r.u32()?,
        },
        msg::TREAD => Request::Read {
            fid: r.u32()?,
            offset: r.u64()?,
            count: r.u32()?,
        },
        msg::TWRITE => Request::Write {
            fid: r.u32()?,
            offset: r.u64()?,
            data: r.tail_data()?,
        },
        msg::TCLUNK => Request::Clunk { fid: r.u32()? },
        msg::TREMOVE => Request::Remove { fid: r.u32()? },
        msg::TGETATTR => Request::Getattr {
            fid: r.u32()?,
            mask: r.u64()?,
        },
        msg::TSETATTR => Request::Setattr {
            fid: r.u32()?,
            attr: r.setattr()?,
        },
        msg::TREADDIR => Request::Readdir {
            fid: r.u32()?,
            offset: r.u64()?,
            count: r.u32()?,
        },
        msg::TSTATFS => Request::Statfs { fid: r.u32()? },
        msg::TFSYNC => Request::Fsync {
            fid: r.u32()?,
            datasync: r.u32()?,
        },
        msg::TXATTRWALK => Request::Xattrwalk {
            fid: r.u32()?,
            newfid: r.u32()?,
            name: r.name()?,
        },
        msg::TMKDIR => Request::Mkdir {
            dfid: r.u32()?,
            name: r.name()?,
            mode: r.u32()?,
            gid: r.u32()?,
        },
        msg::TUNLINKAT => Request::Unlinkat {
            dirfid: r.u32()?,
            name: r.name()?,
            flags: r.u32()?,
        },
        _ => return Ok(Request::Unsupported { ty }),
    };
    r.finish()?;
    Ok(req)
}

/// Decodes one whole R-message frame (exactly `size` bytes); the checks are
/// those of [`decode_request`]. A type that is not a known 9P2000.L
/// R-message is [`DecodeErrorKind::UnknownType`] (including 9P2000's
/// string `Rerror`).
pub fn decode_response(frame: &[u8], msize: u32) -> Result<(u16, Response), DecodeError> {
    let (ty, tag, mut r) = split_frame(frame, msize)?;
    parse_response(ty, &mut r)
        .map(|resp| (tag, resp))
        .map_err(|kind| DecodeError::with_header(kind, tag, ty))
}

fn parse_response(ty: u8, r: &mut Reader<'_>) -> Res<Response> {
    let resp = match ty {
        msg::RVERSION => Response::Version {
            msize: r.u32()?,
            version: r.string()?,
        },
        msg::RAUTH => Response::Auth { aqid: r.qid()? },
        msg::RATTACH => Response::Attach { qid: r.qid()? },
        msg::RFLUSH => Response::Flush,
        msg::RWALK => {
            let n = r.walk_count()?;
            let mut qids = Vec::with_capacity(n);
            for _ in 0..n {
                qids.push(r.qid()?);
            }
            Response::Walk { qids }
        }
        msg::RLOPEN => Response::Lopen {
            qid: r.qid()?,
            iounit: r.u32()?,
        },
        msg::RLCREATE => Response::Lcreate {
            qid: r.qid()?,
            iounit: r.u32()?,
        },
        msg::RREAD => Response::Read {
            data: r.tail_data()?,
        },
        msg::RWRITE => Response::Write { count: r.u32()? },
        msg::RCLUNK => Response::Clunk,
        msg::RREMOVE => Response::Remove,
        msg::RGETATTR => Response::Getattr(r.attr()?),
        msg::RSETATTR => Response::Setattr,
        msg::RREADDIR => Response::Readdir {
            data: r.tail_data()?,
        },
        msg::RSTATFS => Response::Statfs(r.statfs()?),
        msg::RFSYNC => Response::Fsync,
        msg::RXATTRWALK => Response::Xattrwalk { size: r.u64()? },
        msg::RMKDIR => Response::Mkdir { qid: r.qid()? },
        msg::RUNLINKAT => Response::Unlinkat,
        msg::RLERROR => Response::Lerror { ecode: r.u32()? },
        _ => return Err(DecodeErrorKind::UnknownType { ty }),
    };
    r.finish()?;
    Ok(resp)
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Appends fields to a frame under construction.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn qid(&mut self, q: &Qid) {
        self.u8(q.ty);
        self.u32(q.version);
        self.u64(q.path);
    }

    fn string(&mut self, s: &str) -> Result<(), EncodeError> {
        let len =
            u16::try_from(s.len()).map_err(|_| EncodeError::StringTooLong { len: s.len() })?;
        self.u16(len);
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn name(&mut self, s: &str) -> Result<(), EncodeError> {
        if s.len() > MAX_NAME {
            return Err(EncodeError::NameTooLong { len: s.len() });
        }
        self.string(s)
    }

    fn data(&mut self, d: &[u8]) -> Result<(), EncodeError> {
        let count =
            u32::try_from(d.len()).map_err(|_| EncodeError::DataTooLarge { len: d.len() })?;
        self.u32(count);
        self.out.extend_from_slice(d);
        Ok(())
    }

    fn walk_count(&mut self, count: usize) -> Result<(), EncodeError> {
        if count > MAX_WALK {
            return Err(EncodeError::TooManyWalkNames { count });
        }
        let n = u16::try_from(count).map_err(|_| EncodeError::TooManyWalkNames { count })?;
        self.u16(n);
        Ok(())
    }

    fn attr(&mut self, a: &Attr) {
        self.u64(a.valid);
        self.qid(&a.qid);
        self.u32(a.mode);
        self.u32(a.uid);
        self.u32(a.gid);
        for v in [
            a.nlink,
            a.rdev,
            a.size,
            a.blksize,
            a.blocks,
            a.atime_sec,
            a.atime_nsec,
            a.mtime_sec,
            a.mtime_nsec,
            a.ctime_sec,
            a.ctime_nsec,
            a.btime_sec,
            a.btime_nsec,
            a.generation,
            a.data_version,
        ] {
            self.u64(v);
        }
    }

    fn setattr(&mut self, a: &SetAttr) {
        self.u32(a.valid);
        self.u32(a.mode);
        self.u32(a.uid);
        self.u32(a.gid);
        for v in [a.size, a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec] {
            self.u64(v);
        }
    }

    fn statfs(&mut self, s: &StatFs) {
        self.u32(s.ty);
        self.u32(s.bsize);
        for v in [s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.fsid] {
            self.u64(v);
        }
        self.u32(s.namelen);
    }
}

/// Writes header + body, patches the size, and restores `out` on error.
fn frame(
    out: &mut Vec<u8>,
    ty: u8,
    tag: u16,
    body: impl FnOnce(&mut Writer<'_>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(ty);
    out.extend_from_slice(&tag.to_le_bytes());
    let result = body(&mut Writer { out: &mut *out }).and_then(|()| {
        let len = out.len().saturating_sub(start);
        let size = u32::try_from(len).map_err(|_| EncodeError::FrameTooLarge { len })?;
        match out.get_mut(start..).and_then(|s| s.first_chunk_mut::<4>()) {
            Some(slot) => {
                *slot = size.to_le_bytes();
                Ok(())
            }
            None => Err(EncodeError::FrameTooLarge { len }),
        }
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends the frame of T-message `req` with `tag` to `out` (which is not
/// cleared, so several frames can be batched). On error `out` is unchanged.
///
/// The encoder does not know `msize`: a caller that must respect it checks
/// the frame length it appended. Names are checked against [`MAX_NAME`], walks
/// against [`MAX_WALK`], other strings against `u16::MAX`.
pub fn encode_request(tag: u16, req: &Request, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if let Request::Unsupported { ty } = *req
        && msg::is_supported_request(ty)
    {
        return Err(EncodeError::ReservedType { ty });
    }
    frame(out, req.msg_type(), tag, |w| {
        match req {
            Request::Version { msize, version } => {
                w.u32(*msize);
                w.string(version)?;
            }
            Request::Auth {
                afid,
                uname,
                aname,
                n_uname,
            } => {
                w.u32(*afid);
                w.string(uname)?;
                w.string(aname)?;
                w.u32(*n_uname);
            }
            Request::Attach {
                fid,
                afid,
                uname,
                aname,
                n_uname,
            } => {
                w.u32(*fid);
                w.u32(*afid);
                w.string(uname)?;
                w.string(aname)?;
                w.u32(*n_uname);
            }
            Request::Flush { oldtag } => w.u16(*oldtag),
            Request::Walk { fid, newfid, names } => {
                w.u32(*fid);
                w.u32(*newfid);
                w.walk_count(names.len())?;
                for n in names {
                    w.name(n)?;
                }
            }
            Request::Lopen { fid, flags } => {
                w.u32(*fid);
                w.u32(*flags);
            }
            Request::Lcreate {
                fid,
                name,
                flags,
                mode,
                gid,
            } => {
                w.u32(*fid);
                w.name(name)?;
                w.u32(*flags);
                w.u32(*mode);
                w.u32(*gid);
            }
            Request::Read { fid, offset, count } | Request::Readdir { fid, offset, count } => {
                w.u32(*fid);
                w.u64(*offset);
                w.u32(*count);
            }
            Request::Write { fid, offset, data } => {
                w.u32(*fid);
                w.u64(*offset);
                w.data(data)?;
            }
            Request::Clunk { fid } | Request::Remove { fid } | Request::Statfs { fid } => {
                w.u32(*fid);
            }
            Request::Getattr { fid, mask } => {
                w.u32(*fid);
                w.u64(*mask);
            }
            Request::Setattr { fid, attr } => {
                w.u32(*fid);
                w.setattr(attr);
            }
            Request::Fsync { fid, datasync } => {
                w.u32(*fid);
                w.u32(*datasync);
            }
            Request::Xattrwalk { fid, newfid, name } => {
                w.u32(*fid);
                w.u32(*newfid);
                w.name(name)?;
            }
            Request::Mkdir {
                dfid,
                name,
                mode,
                gid,
            } => {
                w.u32(*dfid);
                w.name(name)?;
                w.u32(*mode);
                w.u32(*gid);
            }
            Request::Unlinkat {
                dirfid,
                name,
                flags,
            } => {
                w.u32(*dirfid);
                w.name(name)?;
                w.u32(*flags);
            }
            Request::Unsupported { .. } => {}
        }
        Ok(())
    })
}

/// Appends the frame of R-message `resp` with `tag` to `out` (not cleared).
/// On error `out` is unchanged.
///
/// A server must keep replies within `msize`: clamp read/readdir data to
/// [`max_io_count`](crate::limits::max_io_count)`(msize)` before building the
/// response.
pub fn encode_response(tag: u16, resp: &Response, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    frame(out, resp.msg_type(), tag, |w| {
        match resp {
            Response::Version { msize, version } => {
                w.u32(*msize);
                w.string(version)?;
            }
            Response::Auth { aqid: qid } | Response::Attach { qid } | Response::Mkdir { qid } => {
                w.qid(qid)
            }
            Response::Walk { qids } => {
                w.walk_count(qids.len())?;
                for q in qids {
                    w.qid(q);
                }
            }
            Response::Lopen { qid, iounit } | Response::Lcreate { qid, iounit } => {
                w.qid(qid);
                w.u32(*iounit);
            }
            Response::Read { data } | Response::Readdir { data } => w.data(data)?,
            Response::Write { count } => w.u32(*count),
            Response::Getattr(attr) => w.attr(attr),
            Response::Statfs(s) => w.statfs(s),
            Response::Xattrwalk { size } => w.u64(*size),
            Response::Lerror { ecode } => w.u32(*ecode),
            Response::Flush
            | Response::Clunk
            | Response::Remove
            | Response::Setattr
            | Response::Fsync
            | Response::Unlinkat => {}
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Directory entries (Rreaddir data)
// ---------------------------------------------------------------------------

/// One directory entry in Rreaddir data: `qid[13] offset[8] type[1] name[s]`.
///
/// `offset` is an opaque cookie: the client passes the `offset` of the last
/// entry it received as the next Treaddir offset, so the server must make it
/// mean "continue after this entry" (coco uses the entry's index + 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirEntry {
    /// The entry's qid.
    pub qid: Qid,
    /// Cookie for the next Treaddir.
    pub offset: u64,
    /// `DT_*` type (see [`dirent_type`]).
    pub ty: u8,
    /// Name (at most [`MAX_NAME`] bytes).
    pub name: String,
}

impl DirEntry {
    /// Fixed part of an entry: `qid[13] offset[8] type[1] len[2]`.
    pub const FIXED_LEN: usize = 24;

    /// Bytes this entry takes in Rreaddir data (`24 + name.len()`).
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        Self::FIXED_LEN.saturating_add(self.name.len())
    }
}

/// Appends as many whole entries from the front of `entries` as fit in
/// `max_bytes` to `out` (raw, without a count prefix: the result is the
/// `data` of [`Response::Readdir`]) and returns how many were written.
///
/// An entry is never split: a `max_bytes` smaller than the first entry
/// yields 0 entries (the reply then carries 0 bytes, as 9P2000.L expects for
/// a count smaller than one entry). A server passes
/// `min(count, max_io_count(msize))` as `max_bytes` and sets each entry's
/// `offset` cookie so the next Treaddir resumes right after it. Packing stops
/// at the first entry whose name is longer than [`MAX_NAME`], since it can
/// never be sent.
pub fn encode_dirents(entries: &[DirEntry], max_bytes: u32, out: &mut Vec<u8>) -> usize {
    let budget = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    let mut used = 0usize;
    let mut written = 0usize;
    for e in entries {
        let Ok(len16) = u16::try_from(e.name.len()) else {
            break;
        };
        if e.name.len() > MAX_NAME {
            break;
        }
        let len = e.encoded_len();
        match used.checked_add(len) {
            Some(total) if total <= budget => used = total,
            _ => break,
        }
        let mut w = Writer { out: &mut *out };
        w.qid(&e.qid);
        w.u64(e.offset);
        w.u8(e.ty);
        w.u16(len16);
        w.out.extend_from_slice(e.name.as_bytes());
        written = written.saturating_add(1);
    }
    written
}

/// Parses Rreaddir data into entries. Every entry must be whole (a partial
/// one is [`DecodeErrorKind::Truncated`]); names are at most [`MAX_NAME`]
/// bytes of UTF-8. The result is bounded by `data.len() / 24` entries.
pub fn decode_dirents(data: &[u8]) -> Result<Vec<DirEntry>, DecodeError> {
    let mut r = Reader::new(data);
    let mut entries = Vec::new();
    while r.remaining() > 0 {
        entries.push(r.dirent()?);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn tversion_bytes() {
        let mut out = Vec::new();
        encode_request(
            0xffff,
            &Request::Version {
                msize: 8192,
                version: "9P2000.L".into(),
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            [
                // size 21 = 0x15 (4+1+2 header, 4 msize, 2+8 version)
                0x15, 0, 0, 0, 0x64, 0xff, 0xff, 0x00, 0x20, 0, 0, 0x08, 0x00, b'9', b'P', b'2',
                b'0', b'0', b'0', b'.', b'L'
            ]
        );
    }

    #[test]
    fn encode_error_leaves_out_unchanged() {
        let mut out = vec![1, 2, 3];
        let long = "x".repeat(MAX_NAME + 1);
        let err = encode_request(
            1,
            &Request::Mkdir {
                dfid: 1,
                name: long,
                mode: 0,
                gid: 0,
            },
            &mut out,
        )
        .unwrap_err();
        assert_eq!(err, EncodeError::NameTooLong { len: 256 });
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn reader_bounds() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32(), Err(DecodeErrorKind::Truncated));
        assert_eq!(r.u16(), Ok(0x0201));
        assert_eq!(r.u16(), Err(DecodeErrorKind::Truncated));
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(r.u8(), Err(DecodeErrorKind::Truncated));
        assert_eq!(r.take(usize::MAX), Err(DecodeErrorKind::Truncated));
        assert!(r.finish().is_ok());
    }
}
