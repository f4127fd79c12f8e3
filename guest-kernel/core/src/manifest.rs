//! The boot manifest, `/boot/shards.toml`: which shards the kernel starts,
//! with which priority, page quota, arguments and capabilities, and which
//! channels it creates for them.
//!
//! # Format: a small TOML subset
//!
//! ```toml
//! # a comment
//! [[channel]]
//! name = "pipe"          # 1..=31 bytes of [A-Za-z0-9_.-]
//! capacity = 8           # 1..=CHANNEL_CAPACITY_MAX messages
//! msg_max = 256          # 1..=CHANNEL_MSG_MAX bytes
//!
//! [[shard]]
//! name = "producer"      # required, same spelling rule as channel names
//! path = "/bin/producer" # required, absolute, <= PATH_MAX bytes
//! priority = 1           # 0 (highest) ..= 3; default 2
//! pages = 512            # mmap/dma_alloc quota; default 256, at most 2^20
//! args = "--fast"        # <= 256 bytes; default ""
//! start = true           # default true
//! caps = [
//!     "channel:pipe:send+grant",
//!     "factory:channel",
//! ]
//! ```
//!
//! Only `[[shard]]` and `[[channel]]` array-of-tables headers, `key = value`
//! lines, `#` comments and blank lines exist. Values are basic strings
//! without escapes (a `\` is refused, so every string is a slice of the
//! input), unsigned integers (decimal or `0x` hex, `_` separators), `true` /
//! `false`, and arrays of strings (which may span lines, with a trailing
//! comma). Unknown tables or keys, duplicate keys or names, and anything
//! out of range are errors that carry the 1-based line number: the manifest
//! fails closed.
//!
//! # Capability spellings (`caps`)
//!
//! `<type>[:<object>]:<rights>`, rights joined with `+`:
//!
//! | spelling | type | rights |
//! |---|---|---|
//! | `factory:<rights>` | FACTORY | `channel`, `shard`, `grant` |
//! | `channel:<name>:<rights>` | CHANNEL (a `[[channel]]`) | `send`, `recv`, `grant` |
//! | `shard:<name>:<rights>` | SHARD (a `[[shard]]`) | `wait`, `kill`, `grant` |
//! | `memory:dma:<rights>` | MEMORY (DMA allocation) | `dma`, `grant` |
//! | `memory:<base>:<pages>:<rights>` | MEMORY (MMIO window) | `read`, `write`, `grant` |
//! | `irq:<line>:<rights>` | IRQ (line 0..=255) | `receive`, `grant` |
//! | `gpu:<partition>:<rights>` | GPU_DMA | `write`, `grant` |
//!
//! A shard's caps are installed in manifest order; their handles appear in
//! its `ShardInfo::boot_caps`, hence at most [`MAX_CAPS`] per shard.

use coconut_abi::syscall::{CHANNEL_CAPACITY_MAX, CHANNEL_MSG_MAX, PATH_MAX};
use core::fmt;

mod caps;
mod lex;

pub use caps::CapSpec;

/// Most `[[shard]]` tables.
pub const MAX_SHARDS: usize = 16;
/// Most `[[channel]]` tables.
pub const MAX_CHANNELS: usize = 16;
/// Most capabilities per shard (the length of `ShardInfo::boot_caps`).
pub const MAX_CAPS: usize = 16;
/// Longest shard or channel name (bytes; `ShardInfo::name` keeps a NUL-free 32).
pub const NAME_MAX: usize = 31;
/// Longest `args` (bytes; the size of `ShardInfo::args`).
pub const ARGS_MAX: usize = 256;
/// Largest page quota.
pub const PAGES_MAX: u64 = 1 << 20;
/// Priority when none is given.
pub const DEFAULT_PRIORITY: u8 = 2;
/// Page quota when none is given.
pub const DEFAULT_PAGES: u64 = 256;

const _: () = assert!(MAX_CAPS == 16); // == ShardInfo::boot_caps.len()

/// Why the manifest was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The file is not UTF-8.
    NotUtf8,
    /// A character that cannot start or continue what is being read.
    Unexpected,
    /// A string runs to the end of its line.
    UnterminatedString,
    /// A `\` in a string (escapes are not part of the subset).
    EscapeInString,
    /// A control character in a string.
    ControlInString,
    /// A malformed or too large integer.
    BadNumber,
    /// A table header other than `[[shard]]` / `[[channel]]`.
    UnknownTable,
    /// A `key = value` before any table header.
    KeyOutsideTable,
    /// A key the table does not have.
    UnknownKey,
    /// The key was already set in this table.
    DuplicateKey,
    /// The value has the wrong type for its key.
    WrongType,
    /// A required key is missing (the line is the table header's).
    Missing(&'static str),
    /// More than [`MAX_SHARDS`] shards.
    TooManyShards,
    /// More than [`MAX_CHANNELS`] channels.
    TooManyChannels,
    /// More than [`MAX_CAPS`] capabilities.
    TooManyCaps,
    /// A name is empty, longer than [`NAME_MAX`], or has a character outside `[A-Za-z0-9_.-]`.
    BadName,
    /// Two shards or two channels share a name.
    DuplicateName,
    /// The path is not absolute or is longer than `PATH_MAX`.
    BadPath,
    /// `args` is longer than [`ARGS_MAX`].
    ArgsTooLong,
    /// A number is outside its key's range.
    OutOfRange,
    /// A capability spelling that is not in the table above.
    BadCap,
    /// A right that the capability's type does not have.
    BadRight,
    /// `channel:<name>` names no `[[channel]]`.
    UnknownChannel,
    /// `shard:<name>` names no `[[shard]]`.
    UnknownShard,
}

impl Reason {
    fn text(self) -> &'static str {
        match self {
            Reason::NotUtf8 => "not UTF-8",
            Reason::Unexpected => "unexpected character",
            Reason::UnterminatedString => "unterminated string",
            Reason::EscapeInString => "escapes are not supported in strings",
            Reason::ControlInString => "control character in string",
            Reason::BadNumber => "bad number",
            Reason::UnknownTable => "unknown table (expected [[shard]] or [[channel]])",
            Reason::KeyOutsideTable => "key outside a [[shard]] or [[channel]] table",
            Reason::UnknownKey => "unknown key",
            Reason::DuplicateKey => "duplicate key",
            Reason::WrongType => "wrong value type",
            Reason::Missing(_) => "missing key",
            Reason::TooManyShards => "too many shards",
            Reason::TooManyChannels => "too many channels",
            Reason::TooManyCaps => "too many capabilities",
            Reason::BadName => "bad name (1..=31 bytes of A-Z a-z 0-9 _ . -)",
            Reason::DuplicateName => "duplicate name",
            Reason::BadPath => "bad path (absolute, at most 255 bytes)",
            Reason::ArgsTooLong => "args longer than 256 bytes",
            Reason::OutOfRange => "value out of range",
            Reason::BadCap => "bad capability spelling",
            Reason::BadRight => "right not defined for this capability type",
            Reason::UnknownChannel => "unknown channel",
            Reason::UnknownShard => "unknown shard",
        }
    }
}

/// A refused manifest: where and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// 1-based line number.
    pub line: u32,
    /// What is wrong there.
    pub reason: Reason,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shards.toml:{}: {}", self.line, self.reason.text())?;
        if let Reason::Missing(key) = self.reason {
            write!(f, " `{key}`")?;
        }
        Ok(())
    }
}

/// A `[[channel]]` the kernel creates at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Channel<'a> {
    /// Its name (what `channel:<name>` refers to).
    pub name: &'a str,
    /// Queue length in messages.
    pub capacity: u32,
    /// Largest message in bytes.
    pub msg_max: u32,
}

/// A `[[shard]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard<'a> {
    /// Its name.
    pub name: &'a str,
    /// Ramdisk path of its ELF image.
    pub path: &'a str,
    /// 0 (highest) ..= 3.
    pub priority: u8,
    /// Page quota for `mmap`/`dma_alloc`.
    pub pages: u64,
    /// The `args` string (≤ [`ARGS_MAX`] bytes).
    pub args: &'a str,
    /// Started at boot (else only created, for a supervisor to start).
    pub start: bool,
    caps: [CapSpec; MAX_CAPS],
    ncaps: usize,
}

impl Shard<'_> {
    /// Its capabilities, in manifest order.
    pub fn caps(&self) -> &[CapSpec] {
        self.caps.get(..self.ncaps).unwrap_or(&[])
    }
}

impl Default for Shard<'_> {
    fn default() -> Self {
        Shard {
            name: "",
            path: "",
            priority: DEFAULT_PRIORITY,
            pages: DEFAULT_PAGES,
            args: "",
            start: true,
            caps: [CapSpec::Factory { rights: 0 }; MAX_CAPS],
            ncaps: 0,
        }
    }
}

/// A parsed, validated manifest. Strings borrow from the input.
#[derive(Clone, Copy, Debug)]
pub struct Manifest<'a> {
    shards: [Shard<'a>; MAX_SHARDS],
    nshards: usize,
    channels: [Channel<'a>; MAX_CHANNELS],
    nchannels: usize,
}

impl<'a> Manifest<'a> {
    /// The shards, in manifest order (a shard's index is what `CapSpec::Shard` names).
    pub fn shards(&self) -> &[Shard<'a>] {
        self.shards.get(..self.nshards).unwrap_or(&[])
    }

    /// The channels, in manifest order (a channel's index is what `CapSpec::Channel` names).
    pub fn channels(&self) -> &[Channel<'a>] {
        self.channels.get(..self.nchannels).unwrap_or(&[])
    }
}

/// Which table the parser is filling.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    None,
    Shard,
    Channel,
}

/// The raw capability strings of one shard, resolved once every name is known.
#[derive(Clone, Copy)]
struct RawCaps<'a> {
    items: [(&'a str, u32); MAX_CAPS],
    len: usize,
}

/// Per-table bookkeeping while parsing.
#[derive(Clone, Copy)]
struct Open {
    header_line: u32,
    seen: u32,
}

/// Parses and validates `/boot/shards.toml`.
pub fn parse(input: &[u8]) -> Result<Manifest<'_>, ManifestError> {
    let text = core::str::from_utf8(input).map_err(|e| {
        let before = input.get(..e.valid_up_to()).unwrap_or(&[]);
        let newlines = before.iter().filter(|&&b| b == b'\n').count();
        ManifestError {
            line: u32::try_from(newlines)
                .unwrap_or(u32::MAX)
                .saturating_add(1),
            reason: Reason::NotUtf8,
        }
    })?;
    let mut m = Manifest {
        shards: [Shard::default(); MAX_SHARDS],
        nshards: 0,
        channels: [Channel::default(); MAX_CHANNELS],
        nchannels: 0,
    };
    let empty_caps = RawCaps {
        items: [("", 0); MAX_CAPS],
        len: 0,
    };
    let mut raw_caps = [empty_caps; MAX_SHARDS];
    let mut shard_lines = [0u32; MAX_SHARDS];
    let mut channel_lines = [0u32; MAX_CHANNELS];
    let mut lx = lex::Lexer::new(text);
    let mut table = Table::None;
    let mut open = Open {
        header_line: 0,
        seen: 0,
    };
    loop {
        lx.skip_blank();
        let line = lx.line();
        let err = |reason| ManifestError { line, reason };
        match lx.peek() {
            None => break,
            Some('[') => {
                finish_table(table, open)?;
                table = match lx.header().map_err(err)? {
                    "shard" if m.nshards >= MAX_SHARDS => return Err(err(Reason::TooManyShards)),
                    "shard" => {
                        if let Some(l) = shard_lines.get_mut(m.nshards) {
                            *l = line;
                        }
                        m.nshards = m.nshards.saturating_add(1);
                        Table::Shard
                    }
                    "channel" if m.nchannels >= MAX_CHANNELS => {
                        return Err(err(Reason::TooManyChannels));
                    }
                    "channel" => {
                        if let Some(l) = channel_lines.get_mut(m.nchannels) {
                            *l = line;
                        }
                        m.nchannels = m.nchannels.saturating_add(1);
                        Table::Channel
                    }
                    _ => return Err(err(Reason::UnknownTable)),
                };
                open = Open {
                    header_line: line,
                    seen: 0,
                };
            }
            Some(_) => {
                let key = lx.key().map_err(err)?;
                let value = lx.value().map_err(|reason| ManifestError {
                    line: lx.line(),
                    reason,
                })?;
                lx.end_of_line().map_err(|reason| ManifestError {
                    line: lx.line(),
                    reason,
                })?;
                let bit = match table {
                    Table::None => return Err(err(Reason::KeyOutsideTable)),
                    Table::Shard => {
                        let i = m.nshards.saturating_sub(1);
                        let shard = m.shards.get_mut(i).ok_or(err(Reason::TooManyShards))?;
                        let raw = raw_caps.get_mut(i).ok_or(err(Reason::TooManyShards))?;
                        set_shard_key(shard, raw, key, value).map_err(err)?
                    }
                    Table::Channel => {
                        let i = m.nchannels.saturating_sub(1);
                        let chan = m.channels.get_mut(i).ok_or(err(Reason::TooManyChannels))?;
                        set_channel_key(chan, key, value).map_err(err)?
                    }
                };
                if open.seen & bit != 0 {
                    return Err(err(Reason::DuplicateKey));
                }
                open.seen |= bit;
            }
        }
    }
    finish_table(table, open)?;
    check_unique(m.shards().iter().map(|s| s.name), &shard_lines)?;
    check_unique(m.channels().iter().map(|c| c.name), &channel_lines)?;
    for (i, raw) in raw_caps.iter().enumerate().take(m.nshards) {
        let mut resolved = [CapSpec::Factory { rights: 0 }; MAX_CAPS];
        for (slot, &(spelling, line)) in resolved.iter_mut().zip(raw.items.iter()).take(raw.len) {
            *slot = caps::parse(spelling, &m).map_err(|reason| ManifestError { line, reason })?;
        }
        if let Some(shard) = m.shards.get_mut(i) {
            shard.caps = resolved;
            shard.ncaps = raw.len;
        }
    }
    Ok(m)
}

const KEY_NAME: u32 = 1;
const KEY_PATH: u32 = 2;
const KEY_PRIORITY: u32 = 4;
const KEY_PAGES: u32 = 8;
const KEY_ARGS: u32 = 16;
const KEY_START: u32 = 32;
const KEY_CAPS: u32 = 64;
const KEY_CAPACITY: u32 = 128;
const KEY_MSG_MAX: u32 = 256;

fn set_shard_key<'a>(
    shard: &mut Shard<'a>,
    raw: &mut RawCaps<'a>,
    key: &str,
    value: lex::Value<'a>,
) -> Result<u32, Reason> {
    match key {
        "name" => {
            shard.name = checked_name(value.string()?)?;
            Ok(KEY_NAME)
        }
        "path" => {
            let path = value.string()?;
            if !path.starts_with('/') || path.len() as u64 > PATH_MAX {
                return Err(Reason::BadPath);
            }
            shard.path = path;
            Ok(KEY_PATH)
        }
        "priority" => {
            shard.priority = in_range(value.integer()?, 0, 3)? as u8;
            Ok(KEY_PRIORITY)
        }
        "pages" => {
            shard.pages = in_range(value.integer()?, 0, PAGES_MAX)?;
            Ok(KEY_PAGES)
        }
        "args" => {
            let args = value.string()?;
            if args.len() > ARGS_MAX {
                return Err(Reason::ArgsTooLong);
            }
            shard.args = args;
            Ok(KEY_ARGS)
        }
        "start" => {
            shard.start = value.boolean()?;
            Ok(KEY_START)
        }
        "caps" => {
            let array = value.array()?;
            raw.items = array.items;
            raw.len = array.len;
            Ok(KEY_CAPS)
        }
        _ => Err(Reason::UnknownKey),
    }
}

fn set_channel_key<'a>(
    chan: &mut Channel<'a>,
    key: &str,
    value: lex::Value<'a>,
) -> Result<u32, Reason> {
    match key {
        "name" => {
            chan.name = checked_name(value.string()?)?;
            Ok(KEY_NAME)
        }
        "capacity" => {
            chan.capacity = in_range(value.integer()?, 1, CHANNEL_CAPACITY_MAX)? as u32;
            Ok(KEY_CAPACITY)
        }
        "msg_max" => {
            chan.msg_max = in_range(value.integer()?, 1, CHANNEL_MSG_MAX)? as u32;
            Ok(KEY_MSG_MAX)
        }
        _ => Err(Reason::UnknownKey),
    }
}

/// Required keys of the table just closed.
fn finish_table(table: Table, open: Open) -> Result<(), ManifestError> {
    let missing = |key| ManifestError {
        line: open.header_line,
        reason: Reason::Missing(key),
    };
    match table {
        Table::None => Ok(()),
        Table::Shard if open.seen & KEY_NAME == 0 => Err(missing("name")),
        Table::Shard if open.seen & KEY_PATH == 0 => Err(missing("path")),
        Table::Channel if open.seen & KEY_NAME == 0 => Err(missing("name")),
        Table::Channel if open.seen & KEY_CAPACITY == 0 => Err(missing("capacity")),
        Table::Channel if open.seen & KEY_MSG_MAX == 0 => Err(missing("msg_max")),
        Table::Shard | Table::Channel => Ok(()),
    }
}

/// No two tables of a kind share a name; the error is on the second one's header line.
fn check_unique<'a>(
    names: impl Iterator<Item = &'a str> + Clone,
    lines: &[u32],
) -> Result<(), ManifestError> {
    for (i, (name, &line)) in names.clone().zip(lines).enumerate() {
        if names.clone().take(i).any(|earlier| earlier == name) {
            return Err(ManifestError {
                line,
                reason: Reason::DuplicateName,
            });
        }
    }
    Ok(())
}

fn checked_name(name: &str) -> Result<&str, Reason> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok { Ok(name) } else { Err(Reason::BadName) }
}

fn in_range(v: u64, lo: u64, hi: u64) -> Result<u64, Reason> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(Reason::OutOfRange)
    }
}

#[cfg(test)]
mod tests;
