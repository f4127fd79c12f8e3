//! [`ConfigError`]: every way a hive.toml can be rejected, located like a compiler error.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::{ConfigOrigin, Location};

/// Why a hive configuration was rejected.
///
/// Returned by [`HiveConfig::load`](crate::HiveConfig::load),
/// [`HiveConfig::parse`](crate::HiveConfig::parse) and
/// [`HiveConfig::embedded`](crate::HiveConfig::embedded). One value describes the first
/// problem in file order ([`kind`](Self::kind), [`line`](Self::line),
/// [`column`](Self::column), [`key`](Self::key)); every further problem found in the same
/// pass is in [`additional`](Self::additional), so a user can fix a file in one round trip.
///
/// `Display` reads like a compiler diagnostic, one line per problem:
///
/// ```text
/// hive.toml:12:9: guest[1].vcpus: must be between 1 and 254, got 0
/// hive.toml:14:1: unknown key `vcpu` in guest[1] (expected one of: name, kind, kernel, ...)
/// hive.toml:5:10: guest[0].kernel: file not found: /etc/coco/vmlinuz
/// hive.toml: cannot read: No such file or directory
/// ```
///
/// Lines and columns are 1-based; columns count characters, not bytes. The file is
/// shown as the caller spelled its path, or `<embedded default>` for
/// [`DEFAULT_HIVE`](crate::DEFAULT_HIVE).
#[derive(Debug)]
pub struct ConfigError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    origin: ConfigOrigin,
    location: Option<Location>,
    key: Option<String>,
    kind: ErrorKind,
    additional: Vec<ConfigError>,
    omitted: usize,
}

impl ConfigError {
    pub(crate) fn new(
        origin: ConfigOrigin,
        location: Option<Location>,
        key: Option<String>,
        kind: ErrorKind,
    ) -> Self {
        Self(Box::new(Inner {
            origin,
            location,
            key,
            kind,
            additional: Vec::new(),
            omitted: 0,
        }))
    }

    pub(crate) fn with_additional(mut self, additional: Vec<ConfigError>, omitted: usize) -> Self {
        self.0.additional = additional;
        self.0.omitted = omitted;
        self
    }

    /// The configuration the error is in: a file path or the embedded default.
    pub fn origin(&self) -> &ConfigOrigin {
        &self.0.origin
    }

    /// Line and column of the offending key or value, if the error has a place in the
    /// text (I/O errors and a few whole-file errors have none).
    pub fn location(&self) -> Option<Location> {
        self.0.location
    }

    /// 1-based line of the offending key or value.
    pub fn line(&self) -> Option<usize> {
        self.0.location.map(|l| l.line)
    }

    /// 1-based column (in characters) of the offending key or value.
    pub fn column(&self) -> Option<usize> {
        self.0.location.map(|l| l.column)
    }

    /// Dotted path of the offending key, as `hive.name`, `guest[1].vcpus` (guests are
    /// numbered from 0 in file order), or `guest[0].vcpu` for an unknown key. `None` for
    /// errors that concern the whole file (I/O, size, encoding, TOML syntax).
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// Further problems found in the same pass, in file order (each with no
    /// `additional` of its own).
    pub fn additional(&self) -> &[ConfigError] {
        &self.0.additional
    }

    /// Problems found but not kept because there were too many (more than
    /// [`MAX_REPORTED_ERRORS`](crate::MAX_REPORTED_ERRORS)).
    pub fn omitted(&self) -> usize {
        self.0.omitted
    }

    /// This error followed by the [`additional`](Self::additional) ones.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        std::iter::once(self).chain(self.0.additional.iter())
    }

    /// Number of problems described: 1 + `additional().len()` (not counting
    /// [`omitted`](Self::omitted)).
    pub fn count(&self) -> usize {
        1 + self.0.additional.len()
    }

    fn fmt_one(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.origin)?;
        if let Some(loc) = self.0.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.0.key
            && !self.0.kind.names_its_key()
        {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.0.kind)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_one(f)?;
        for more in &self.0.additional {
            f.write_str("\n")?;
            more.fmt_one(f)?;
        }
        if self.0.omitted > 0 {
            let s = if self.0.omitted == 1 { "" } else { "s" };
            write!(
                f,
                "\n{}: ... and {} more error{s}",
                self.0.origin, self.0.omitted
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0.kind)
    }
}

/// The kind of a [`ConfigError`]. Text taken from the file (names, keys, values) is
/// shown escaped and shortened, so a hostile file cannot inject terminal control
/// sequences or flood the log through an error message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be opened or read.
    #[error("cannot read: {}", io_message(.0))]
    Read(#[source] io::Error),

    /// The configuration file itself is not a regular file (a directory, FIFO, device).
    #[error("not a regular file")]
    NotARegularFile,

    /// The file is larger than [`MAX_CONFIG_BYTES`](crate::MAX_CONFIG_BYTES).
    #[error("file is larger than {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },

    /// The file is not UTF-8 (the location is the first invalid byte).
    #[error("not valid UTF-8")]
    NotUtf8,

    /// The text is not valid TOML; the message is the TOML parser's.
    #[error("TOML syntax error: {message}")]
    Syntax {
        /// The parser's description of the problem.
        message: String,
    },

    /// A key the schema does not know (keys are never ignored: a typo must not silently
    /// fall back to a default).
    #[error("unknown key {} {table} (expected one of: {})", quoted(.key), .expected.join(", "))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was found: `at the top level`, `in [hive]` or `in guest[<n>]`.
        table: String,
        /// The keys allowed there.
        expected: &'static [&'static str],
    },

    /// A required key is absent; the location is the table's header.
    #[error("missing required key `{key}` in {table}")]
    MissingKey {
        /// The missing key.
        key: &'static str,
        /// The table it is missing from: `[hive]` or `guest[<n>]`.
        table: String,
    },

    /// The `[hive]` table is absent.
    #[error("missing required table [hive]")]
    MissingHive,

    /// A value has the wrong TOML type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type the schema wants, e.g. `an integer`.
        expected: &'static str,
        /// The TOML type that was given, e.g. `string`.
        found: &'static str,
    },

    /// An integer outside its allowed range.
    #[error("must be between {min} and {max}, got {got}")]
    OutOfRange {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
        /// The value as given (decimal, or as written if it does not fit 128 bits).
        got: String,
    },

    /// A hive or guest name that breaks the naming rule.
    #[error("invalid name {}: {reason}", quoted(.name))]
    InvalidName {
        /// The name as written.
        name: String,
        /// Which part of the rule it breaks.
        reason: NameError,
    },

    /// Two guests share a name.
    #[error("duplicate guest name {} (first used on line {first_line})", quoted(.name))]
    DuplicateGuest {
        /// The name.
        name: String,
        /// Line of the first guest's `name`.
        first_line: usize,
    },

    /// Fewer than 1 or more than [`MAX_GUESTS`](crate::MAX_GUESTS) `[[guest]]` tables.
    #[error("a hive needs between 1 and {max} [[guest]] tables, got {count}", max = crate::MAX_GUESTS)]
    GuestCount {
        /// How many were given.
        count: usize,
    },

    /// A string value that is not one of the allowed words (`kind`, `role`).
    #[error(transparent)]
    UnknownValue(crate::UnknownVariant),

    /// `builtin:<name>` names an image this build of the VMM does not embed.
    #[error("unknown builtin image {} ({})", quoted(.name), known_list(.known))]
    UnknownBuiltin {
        /// The name after `builtin:`.
        name: String,
        /// The names the caller embeds.
        known: Vec<String>,
    },

    /// An image path that does not exist (path already resolved against the config
    /// file's directory).
    #[error("file not found: {}", shown(.path))]
    MissingFile {
        /// The resolved path.
        path: PathBuf,
    },

    /// An image path that exists but is not a regular file (a directory, device, ...).
    #[error("not a regular file: {}", shown(.path))]
    NotAFile {
        /// The resolved path.
        path: PathBuf,
    },

    /// An image path that could not be inspected (permission denied, a path component
    /// that is not a directory, ...).
    #[error("cannot access {}: {}", shown(.path), io_message(.error))]
    FileAccess {
        /// The resolved path.
        path: PathBuf,
        /// The error from `stat`.
        #[source]
        error: io::Error,
    },

    /// A path-valued key (`kernel`, `initrd`, `state_dir`) that is empty or contains a
    /// NUL byte.
    #[error("{reason}")]
    InvalidPath {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A `vfio` list that is too long, or an entry that is empty, too long or
    /// has characters a device name never has.
    #[error("{reason}")]
    InvalidVfio {
        /// What is wrong with it.
        reason: String,
    },

    /// A `budget` on a queen, or a budget value that is a string other than
    /// `"unlimited"`.
    #[error("{reason}")]
    InvalidBudget {
        /// What is wrong with it.
        reason: String,
    },

    /// A `cmdline` longer than [`MAX_CMDLINE_BYTES`](crate::MAX_CMDLINE_BYTES) or
    /// containing a NUL, CR or LF.
    #[error("{reason}")]
    InvalidCmdline {
        /// What is wrong with it.
        reason: String,
    },

    /// A `virtio_transport` the guest's kind cannot use.
    #[error("{reason}")]
    InvalidTransport {
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl ErrorKind {
    /// Kinds whose message already names the key, so Display does not prefix it.
    fn names_its_key(&self) -> bool {
        matches!(
            self,
            ErrorKind::UnknownKey { .. } | ErrorKind::MissingKey { .. } | ErrorKind::MissingHive
        )
    }
}

/// Why a hive or guest name was rejected. The rule: 1 to
/// [`MAX_NAME_LEN`](crate::MAX_NAME_LEN) characters of `a-z`, `0-9` and `-`, starting
/// with a letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is the empty string.
    #[error("must not be empty")]
    Empty,
    /// The name is longer than the limit.
    #[error("must be at most {max} characters, got {len}", max = crate::MAX_NAME_LEN)]
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// The name contains a character outside `[a-z0-9-]`.
    #[error("contains {}; only a-z, 0-9 and '-' are allowed", quoted_char(*.0))]
    BadChar(char),
    /// The first character is not a letter.
    #[error("must start with a letter a-z")]
    BadStart,
}

/// `Display` of an io::Error without the " (os error N)" suffix std appends.
fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_owned(),
        _ => s,
    }
}

/// Longest piece of user text shown in an error message, in characters.
const QUOTE_MAX: usize = 64;
/// Longest path shown in an error message, in characters.
const PATH_MAX: usize = 512;

/// `s` with control and other non-printable characters escaped (`\n`, `\u{1b}`) and cut
/// after `max` characters; quotes and backslashes stay as they are.
pub(crate) fn sanitized(s: &str, max: usize, out: &mut String) {
    let mut chars = s.chars();
    for c in chars.by_ref().take(max) {
        if matches!(c, '"' | '\'' | '\\') {
            out.push(c);
        } else {
            out.extend(c.escape_debug());
        }
    }
    if chars.next().is_some() {
        out.push_str("...");
    }
}

/// Backquoted, escaped and shortened user text.
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::from("`");
    sanitized(&s.replace('`', "\\`"), QUOTE_MAX, &mut out);
    out.push('`');
    out
}

/// A path from user text, escaped and shortened like [`quoted`] but without quotes.
fn shown(path: &Path) -> String {
    let mut out = String::new();
    sanitized(&path.to_string_lossy(), PATH_MAX, &mut out);
    out
}

fn quoted_char(c: char) -> String {
    let mut buf = [0u8; 4];
    quoted(c.encode_utf8(&mut buf))
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "this build embeds no images".to_owned()
    } else {
        let names: Vec<String> = known.iter().map(|k| quoted(k)).collect();
        format!("known: {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_and_truncates() {
        assert_eq!(quoted("ab"), "`ab`");
        assert_eq!(quoted("a\nb\u{1b}[31m"), "`a\\nb\\u{1b}[31m`");
        assert_eq!(quoted("a`b"), "`a\\`b`");
        assert_eq!(quoted("a\"b'c\\"), "`a\"b'c\\`");
        assert_eq!(shown(Path::new("/a\nb")), "/a\\nb");
        let long = "x".repeat(100);
        assert_eq!(quoted(&long), format!("`{}...`", "x".repeat(QUOTE_MAX)));
    }

    #[test]
    fn io_message_strips_os_error() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_message(&e), "No such file or directory");
        let e = io::Error::other("custom");
        assert_eq!(io_message(&e), "custom");
    }
}
