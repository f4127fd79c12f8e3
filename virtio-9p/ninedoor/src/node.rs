//! Node kinds and the attributes the session layer turns into 9P qids,
//! `Rgetattr` and `Rreaddir` entries.
//!
//! Why these choices:
//! - `qid.path` is the node's [`NodeId`]: unique for the hive's lifetime,
//!   never reused (a removed worker's telemetry never aliases a new one).
//! - `qid.version` is always 0: every node is synthetic and uncacheable, and
//!   a stable qid per node is what v9fs needs to match inodes.
//! - `qid.type` is `QTDIR` for directories, `QTAPPEND` for every append-only
//!   node (logs, telemetry rings, JSON-lines files), `QTFILE` otherwise.
//! - `size`: directories and control sinks 0; generated text the length it
//!   would have if read now (it may differ at the next read; a reader always
//!   gets one consistent snapshot per open); append-only nodes their *end
//!   offset* (total bytes ever appended), which is where an `O_APPEND`
//!   client's next write must land.
//! - `mode` is a Linux `st_mode` (type bits + permissions). Permission bits
//!   describe the node, not the caller: per-role rights are enforced by
//!   policy, not advertised.

use std::fmt;

/// `qid.type` bit: directory.
pub const QTDIR: u8 = 0x80;
/// `qid.type` bit: append-only.
pub const QTAPPEND: u8 = 0x40;
/// `qid.type`: plain file.
pub const QTFILE: u8 = 0x00;
/// Readdir `d_type`: directory.
pub const DT_DIR: u8 = 4;
/// Readdir `d_type`: regular file.
pub const DT_REG: u8 = 8;
/// `st_mode` type: directory.
pub const S_IFDIR: u32 = 0o040_000;
/// `st_mode` type: regular file.
pub const S_IFREG: u32 = 0o100_000;

/// Cookie of the synthetic `.` entry in listings.
pub const COOKIE_DOT: u64 = 1;
/// Cookie of the synthetic `..` entry in listings.
pub const COOKIE_DOTDOT: u64 = 2;
/// First cookie a real directory entry can get.
pub const FIRST_ENTRY_COOKIE: u64 = 3;

/// A node handle; also its `qid.path`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) u64);

impl NodeId {
    /// The `qid.path` value.
    #[must_use]
    pub const fn raw(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

/// A 9P qid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Qid {
    /// `QTDIR`, `QTAPPEND` or `QTFILE`.
    pub kind: u8,
    /// Always 0 (see the module docs).
    pub version: u32,
    /// The node id.
    pub path: u64,
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory.
    Directory,
    /// Read-only text generated when opened.
    Text,
    /// Append-only log (audit view, console, model pointer).
    AppendLog,
    /// Bounded append-only telemetry ring.
    TelemetryRing,
    /// Control sink: each write is a command.
    Control,
    /// Append-only file of JSON objects, one per line.
    JsonLines,
}

impl NodeKind {
    /// Whether the node carries `QTAPPEND`.
    #[must_use]
    pub const fn is_append_only(self) -> bool {
        matches!(
            self,
            NodeKind::AppendLog | NodeKind::TelemetryRing | NodeKind::JsonLines
        )
    }

    /// The qid type byte.
    #[must_use]
    pub const fn qid_type(self) -> u8 {
        match self {
            NodeKind::Directory => QTDIR,
            k if k.is_append_only() => QTAPPEND,
            _ => QTFILE,
        }
    }

    /// The readdir `d_type`.
    #[must_use]
    pub const fn dtype(self) -> u8 {
        match self {
            NodeKind::Directory => DT_DIR,
            _ => DT_REG,
        }
    }
}

/// A node's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAttr {
    /// Stable qid.
    pub qid: Qid,
    /// Linux `st_mode`.
    pub mode: u32,
    /// See the module docs.
    pub size: u64,
    /// Kind.
    pub kind: NodeKind,
    /// Last change (creation or append), milliseconds.
    pub mtime_ms: u64,
}

/// One directory entry as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// Stable cookie: pass it back to `list_from` to continue after this
    /// entry (9P2000.L `Rreaddir` offset).
    pub cookie: u64,
    /// Entry name.
    pub name: String,
    /// Qid of the node it names.
    pub qid: Qid,
    /// `DT_DIR` or `DT_REG`.
    pub dtype: u8,
}
