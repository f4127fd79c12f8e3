//! The boot manifest (`/boot/shards.toml` or `coco.manifest=`): which shards
//! start, with what priority, page quota, arguments and capabilities.
//!
//! A small TOML subset, read from the ramdisk into a static buffer: `#`
//! comments, `[[shard]]` tables, `key = value` with strings, integers,
//! booleans and arrays of strings. Keys per shard: `name`, `path`,
//! `priority` (0..=3, default 2), `pages` (quota, default 256), `args`,
//! `start` (default true), `caps` (array of capability spellings, kept for
//! the capability layer). Unknown keys and other tables are refused with the
//! line number. (The kernel switches to coconut-core's `manifest` once it
//! lands.)

/// Most shards a manifest may list.
pub const MAX_SHARDS: usize = 16;
/// Most capability strings per shard.
pub const MAX_CAPS: usize = 16;

/// One `[[shard]]` table.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShardSpec<'a> {
    /// Name (≤ 31 bytes).
    pub name: &'a [u8],
    /// Ramdisk path of the ELF.
    pub path: &'a [u8],
    /// 0 (highest) ..= 3.
    pub priority: u8,
    /// Page quota for mmap / dma_alloc.
    pub pages: u64,
    /// The `args` string.
    pub args: &'a [u8],
    /// Whether it starts at boot.
    pub start: bool,
    /// Capability spellings.
    pub caps: [&'a [u8]; MAX_CAPS],
    /// Entries of `caps` used.
    pub caps_len: usize,
}

/// A parsed manifest.
#[derive(Clone, Copy, Debug)]
pub struct Manifest<'a> {
    /// The shards, in file order.
    pub shards: [ShardSpec<'a>; MAX_SHARDS],
    /// Entries used.
    pub len: usize,
}

/// A parse error: line number and reason.
#[derive(Clone, Copy, Debug)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

/// A quoted string (no escapes) at the start of `s`: (content, rest).
fn string(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = s.strip_prefix(b"\"")?;
    let end = s.iter().position(|&c| c == b'"')?;
    Some((&s[..end], &s[end + 1..]))
}

fn integer(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

/// Parses `text`.
pub fn parse(text: &[u8]) -> Result<Manifest<'_>, ParseError> {
    let mut m = Manifest {
        shards: [ShardSpec::default(); MAX_SHARDS],
        len: 0,
    };
    for (n, raw) in text.split(|&c| c == b'\n').enumerate() {
        let line = n + 1;
        let err = |reason| ParseError { line, reason };
        // Strip a comment that is not inside a string.
        let mut in_str = false;
        let cut = raw
            .iter()
            .position(|&c| {
                if c == b'"' {
                    in_str = !in_str;
                }
                c == b'#' && !in_str
            })
            .unwrap_or(raw.len());
        let l = trim(&raw[..cut]);
        if l.is_empty() {
            continue;
        }
        if l == b"[[shard]]" {
            if m.len == MAX_SHARDS {
                return Err(err("too many shards"));
            }
            m.shards[m.len] = ShardSpec {
                priority: 2,
                pages: 256,
                start: true,
                ..ShardSpec::default()
            };
            m.len += 1;
            continue;
        }
        if l.starts_with(b"[") {
            return Err(err("unknown table"));
        }
        let eq = l
            .iter()
            .position(|&c| c == b'=')
            .ok_or(err("expected key = value"))?;
        let key = trim(&l[..eq]);
        let value = trim(&l[eq + 1..]);
        let Some(spec) = m.len.checked_sub(1).map(|i| &mut m.shards[i]) else {
            return Err(err("key outside a [[shard]] table"));
        };
        let str_value = || match string(value) {
            Some((v, rest)) if trim(rest).is_empty() => Ok(v),
            _ => Err(err("expected a string")),
        };
        match key {
            b"name" => {
                spec.name = str_value()?;
                if spec.name.is_empty() || spec.name.len() > 31 {
                    return Err(err("name must be 1..=31 bytes"));
                }
            }
            b"path" => spec.path = str_value()?,
            b"args" => {
                spec.args = str_value()?;
                if spec.args.len() > 256 {
                    return Err(err("args longer than 256 bytes"));
                }
            }
            b"priority" => {
                spec.priority = integer(value)
                    .filter(|&p| p <= 3)
                    .ok_or(err("priority must be 0..=3"))? as u8
            }
            b"pages" => {
                spec.pages = integer(value)
                    .filter(|&p| p <= 1 << 20)
                    .ok_or(err("pages must be an integer <= 1048576"))?
            }
            b"start" => {
                spec.start = match value {
                    b"true" => true,
                    b"false" => false,
                    _ => return Err(err("start must be true or false")),
                }
            }
            b"caps" => {
                let mut rest = value
                    .strip_prefix(b"[")
                    .ok_or(err("caps must be an array"))?;
                loop {
                    rest = trim(rest);
                    if let Some(r) = rest.strip_prefix(b"]") {
                        if !trim(r).is_empty() {
                            return Err(err("text after the caps array"));
                        }
                        break;
                    }
                    let (cap, r) = string(rest).ok_or(err("caps must hold strings"))?;
                    if spec.caps_len == MAX_CAPS {
                        return Err(err("too many caps"));
                    }
                    spec.caps[spec.caps_len] = cap;
                    spec.caps_len += 1;
                    rest = trim(r);
                    rest = rest.strip_prefix(b",").unwrap_or(rest);
                }
            }
            _ => return Err(err("unknown key")),
        }
    }
    for s in &m.shards[..m.len] {
        if s.name.is_empty() || s.path.is_empty() {
            return Err(ParseError {
                line: 0,
                reason: "every shard needs a name and a path",
            });
        }
    }
    Ok(m)
}
