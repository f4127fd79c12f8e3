//! Command-line parsing: words and quoting, namespace paths, and the verbs.
//!
//! # Words
//! A line is split into words at unquoted whitespace. Inside a word,
//! `'...'` is literal, `"..."` is literal except that `\"` and `\\` stand for
//! `"` and `\`, and outside quotes `\x` stands for `x`. An unterminated quote
//! is a syntax error. Verbs are case-insensitive.
//!
//! # `echo <text> > <path>`
//! The redirection is the **last unquoted word that is exactly `>`**, and
//! exactly one word (the path) must follow it. The text is the raw source
//! between `echo` and that `>`, trimmed, **taken verbatim** (so JSON keeps
//! its quotes: `echo {"kill":"worker-1"} > /queen/ctl`), except that a text
//! that is one fully quoted word (`echo 'a > b' > /p`) is unquoted. Inner
//! runs of spaces are kept as typed.
//!
//! # Paths
//! Absolute (`/…`), at most [`MAX_PATH_DEPTH`] components, each a plain
//! name (non-empty, no `.`/`..`, no NUL, at most 255 bytes); one trailing
//! `/` is allowed; `//` is refused.

use std::fmt;
use std::time::Duration;

use secure9p::ticket::split_uname;
use secure9p::wire::is_plain_name;

/// Most components in a namespace path.
pub const MAX_PATH_DEPTH: usize = 16;

/// Longest `tail -t` / `log -t` timeout (one day).
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// A word of a command line and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word after quote removal.
    pub text: String,
    /// Byte offset of its first character in the line.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
    /// Whether any part of it was quoted or escaped.
    pub quoted: bool,
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The status-line verb (`LS`, …; `UNKNOWN` for an unknown verb).
    pub verb: String,
    /// Short reason token: `syntax`, `usage`, `bad-path`, `unknown-verb`.
    pub reason: &'static str,
    /// Human detail.
    pub detail: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.verb, self.reason, self.detail)
    }
}

impl std::error::Error for ParseError {}

/// Splits a line into [`Word`]s (see the module docs).
pub fn split_words(line: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            return Ok(words);
        };
        let mut text = String::new();
        let mut quoted = false;
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            end = i + c.len_utf8();
            match c {
                '\'' => {
                    quoted = true;
                    loop {
                        match chars.next() {
                            Some((j, '\'')) => {
                                end = j + 1;
                                break;
                            }
                            Some((_, ch)) => text.push(ch),
                            None => return Err("unterminated ' quote".to_owned()),
                        }
                    }
                }
                '"' => {
                    quoted = true;
                    loop {
                        match chars.next() {
                            Some((j, '"')) => {
                                end = j + 1;
                                break;
                            }
                            Some((_, '\\')) => {
                                match chars.next_if(|(_, n)| *n == '"' || *n == '\\') {
                                    Some((_, n)) => text.push(n),
                                    None => text.push('\\'),
                                }
                            }
                            Some((_, ch)) => text.push(ch),
                            None => return Err("unterminated \" quote".to_owned()),
                        }
                    }
                }
                '\\' => {
                    quoted = true;
                    match chars.next() {
                        Some((j, n)) => {
                            text.push(n);
                            end = j + n.len_utf8();
                        }
                        None => return Err("trailing backslash".to_owned()),
                    }
                }
                _ => text.push(c),
            }
        }
        words.push(Word {
            text,
            start,
            end,
            quoted,
        });
    }
}

/// A checked absolute namespace path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsPath {
    names: Vec<String>,
}

impl NsPath {
    /// Checks `s` (see the module docs).
    pub fn parse(s: &str) -> Result<NsPath, String> {
        let Some(rest) = s.strip_prefix('/') else {
            return Err(format!("{s:?} is not absolute (paths start with /)"));
        };
        if rest.is_empty() {
            return Ok(NsPath { names: Vec::new() });
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(format!("{s:?} has an empty component (//)"));
        }
        let names: Vec<&str> = rest.split('/').collect();
        if names.len() > MAX_PATH_DEPTH {
            return Err(format!(
                "{s:?} has {} components (at most {MAX_PATH_DEPTH})",
                names.len()
            ));
        }
        for n in &names {
            if !is_plain_name(n) {
                return Err(match *n {
                    "" => format!("{s:?} has an empty component (//)"),
                    "." | ".." => format!("{s:?}: '.' and '..' are not allowed"),
                    _ => format!("{s:?}: component {n:?} is not a plain name"),
                });
            }
        }
        Ok(NsPath {
            names: names.into_iter().map(str::to_owned).collect(),
        })
    }

    /// The root path `/`.
    #[must_use]
    pub fn root() -> NsPath {
        NsPath { names: Vec::new() }
    }

    /// The components.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `self` with one more component (which must be a plain name).
    pub fn join(&self, name: &str) -> Result<NsPath, String> {
        if !is_plain_name(name) {
            return Err(format!("{name:?} is not a plain name"));
        }
        if self.names.len() >= MAX_PATH_DEPTH {
            return Err(format!("path deeper than {MAX_PATH_DEPTH}"));
        }
        let mut names = self.names.clone();
        names.push(name.to_owned());
        Ok(NsPath { names })
    }

    /// The last component (`"/"` for the root).
    #[must_use]
    pub fn basename(&self) -> &str {
        self.names.last().map_or("/", String::as_str)
    }
}

impl fmt::Display for NsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.names.is_empty() {
            return f.write_str("/");
        }
        for n in &self.names {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

/// What `spawn` asks `/queen/ctl` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnSpec {
    /// `spawn heartbeat [ticks=N] [ttl_s=S] [ops=N]`.
    Heartbeat {
        /// Ticks to emit.
        ticks: Option<u64>,
        /// Budget: lifetime.
        ttl_s: Option<u64>,
        /// Budget: operations.
        ops: Option<u64>,
    },
    /// `spawn gpu gpu_id=G mem_mb=M streams=S [ttl_s=S] [priority=P]`.
    Gpu {
        /// GPU id (`gpu=` is accepted as an alias).
        gpu_id: String,
        /// VRAM in MiB.
        mem_mb: u64,
        /// Streams.
        streams: u32,
        /// Lease TTL.
        ttl_s: Option<u64>,
        /// Priority.
        priority: Option<u32>,
    },
}

impl SpawnSpec {
    /// The `/queen/ctl` JSON line (without the newline), fields in the
    /// documented order: `{"spawn":"heartbeat","ticks":N,"budget":{"ttl_s":..,"ops":..}}`
    /// or `{"spawn":"gpu","lease":{"gpu_id":..,"mem_mb":..,"streams":..,"ttl_s":..,"priority":..}}`.
    #[must_use]
    pub fn to_json_line(&self) -> String {
        match self {
            SpawnSpec::Heartbeat { ticks, ttl_s, ops } => {
                let mut s = String::from(r#"{"spawn":"heartbeat""#);
                if let Some(t) = ticks {
                    s.push_str(&format!(r#","ticks":{t}"#));
                }
                let mut budget = Vec::new();
                if let Some(t) = ttl_s {
                    budget.push(format!(r#""ttl_s":{t}"#));
                }
                if let Some(o) = ops {
                    budget.push(format!(r#""ops":{o}"#));
                }
                if !budget.is_empty() {
                    s.push_str(&format!(r#","budget":{{{}}}"#, budget.join(",")));
                }
                s.push('}');
                s
            }
            SpawnSpec::Gpu {
                gpu_id,
                mem_mb,
                streams,
                ttl_s,
                priority,
            } => {
                let mut lease = vec![
                    format!(r#""gpu_id":{}"#, json_str(gpu_id)),
                    format!(r#""mem_mb":{mem_mb}"#),
                    format!(r#""streams":{streams}"#),
                ];
                if let Some(t) = ttl_s {
                    lease.push(format!(r#""ttl_s":{t}"#));
                }
                if let Some(p) = priority {
                    lease.push(format!(r#""priority":{p}"#));
                }
                format!(r#"{{"spawn":"gpu","lease":{{{}}}}}"#, lease.join(","))
            }
        }
    }

    /// `heartbeat` or `gpu`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            SpawnSpec::Heartbeat { .. } => "heartbeat",
            SpawnSpec::Gpu { .. } => "gpu",
        }
    }
}

/// A JSON string literal.
#[must_use]
pub fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// A `lifecycle` command (the words are shared with NineDoor).
pub use secure9p::ctl::LifecycleCmd;

/// A parsed shell command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `help`.
    Help,
    /// `attach <role> [ticket]`.
    Attach {
        /// The Tattach uname (`queen`, `worker-gpu:worker-3`, …).
        role: String,
        /// The ticket (Tattach aname); empty for none.
        ticket: String,
    },
    /// `detach`.
    Detach,
    /// `ls [path]`.
    Ls {
        /// Directory (or file) to list.
        path: NsPath,
    },
    /// `cat <path>`.
    Cat {
        /// File to print.
        path: NsPath,
    },
    /// `tail [-f] [-t ms] <path>`; `log [-t ms]`.
    Tail {
        /// File to stream.
        path: NsPath,
        /// Keep reading after the existing content.
        follow: bool,
        /// Stop following after this long.
        timeout: Option<Duration>,
        /// Whether this came from `log` (status verb `LOG`).
        log: bool,
    },
    /// `echo <text> > <path>`.
    Echo {
        /// The text (a newline is appended when written).
        text: String,
        /// Target file.
        path: NsPath,
    },
    /// `ping`.
    Ping,
    /// `spawn <heartbeat|gpu> k=v…`.
    Spawn(SpawnSpec),
    /// `kill <worker-id>`.
    Kill {
        /// `worker-N`.
        worker: String,
    },
    /// `bind <from> <to>`.
    Bind {
        /// Existing path.
        from: NsPath,
        /// New alias.
        to: NsPath,
    },
    /// `mount <service> <at>`.
    Mount {
        /// Service name.
        service: String,
        /// Mount point.
        at: NsPath,
    },
    /// `lifecycle [cmd]`.
    Lifecycle(Option<LifecycleCmd>),
    /// `lease <gpu-id> <worker-id> mem=M streams=S [priority=P] [ttl=S]`.
    Lease {
        /// GPU id.
        gpu: String,
        /// Worker id.
        worker: String,
        /// VRAM MiB.
        mem: u64,
        /// Streams.
        streams: u32,
        /// Priority (0 when not given).
        priority: u32,
        /// TTL seconds.
        ttl: Option<u64>,
    },
    /// `release <gpu-id> <worker-id> [reason…]`.
    Release {
        /// GPU id.
        gpu: String,
        /// Worker id.
        worker: String,
        /// Free text (default `released`).
        reason: String,
    },
    /// `models`.
    Models,
    /// `models activate <id>`.
    ModelsActivate {
        /// Model id.
        id: String,
    },
    /// `quit` (also `exit`).
    Quit,
}

/// Every verb with its usage line (for `help` and usage errors).
pub const VERBS: &[(&str, &str)] = &[
    ("help", "help"),
    ("attach", "attach <role> [ticket]"),
    ("detach", "detach"),
    ("ls", "ls [path]"),
    ("cat", "cat <path>"),
    ("tail", "tail [-f] [-t <ms>] <path>"),
    ("echo", "echo <text> > <path>"),
    ("log", "log [-t <ms>]"),
    ("ping", "ping"),
    (
        "spawn",
        "spawn heartbeat [ticks=N] [ttl_s=S] [ops=N] | spawn gpu gpu_id=G mem_mb=M streams=S [ttl_s=S] [priority=P]",
    ),
    ("kill", "kill <worker-id>"),
    ("bind", "bind <from> <to>"),
    ("mount", "mount <service> <at>"),
    ("lifecycle", "lifecycle [cordon|drain|quiesce|resume|reset]"),
    (
        "lease",
        "lease <gpu-id> <worker-id> mem=M streams=S [priority=P] [ttl=S]",
    ),
    ("release", "release <gpu-id> <worker-id> [reason]"),
    ("models", "models | models activate <id>"),
    ("quit", "quit"),
];

fn usage_of(verb: &str) -> &'static str {
    VERBS
        .iter()
        .find(|(v, _)| *v == verb)
        .map_or("help", |(_, u)| u)
}

impl Command {
    /// The status-line verb (`LS`, `TAIL`, `LOG`, …).
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Help => "HELP",
            Command::Attach { .. } => "ATTACH",
            Command::Detach => "DETACH",
            Command::Ls { .. } => "LS",
            Command::Cat { .. } => "CAT",
            Command::Tail { log: false, .. } => "TAIL",
            Command::Tail { log: true, .. } => "LOG",
            Command::Echo { .. } => "ECHO",
            Command::Ping => "PING",
            Command::Spawn(_) => "SPAWN",
            Command::Kill { .. } => "KILL",
            Command::Bind { .. } => "BIND",
            Command::Mount { .. } => "MOUNT",
            Command::Lifecycle(_) => "LIFECYCLE",
            Command::Lease { .. } => "LEASE",
            Command::Release { .. } => "RELEASE",
            Command::Models | Command::ModelsActivate { .. } => "MODELS",
            Command::Quit => "QUIT",
        }
    }
}

/// The status verb a line would get: its first word uppercased if it is a
/// known verb (`exit` → `QUIT`), else `UNKNOWN`.
#[must_use]
pub fn verb_of_line(line: &str) -> String {
    let first = line
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if first == "exit" {
        return "QUIT".to_owned();
    }
    if VERBS.iter().any(|(v, _)| *v == first) {
        first.to_ascii_uppercase()
    } else {
        "UNKNOWN".to_owned()
    }
}

/// Parses one line. `Ok(None)`: blank or a `#` comment.
pub fn parse_command(line: &str) -> Result<Option<Command>, ParseError> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let verb_status = verb_of_line(trimmed);
    let words = split_words(trimmed).map_err(|detail| ParseError {
        verb: verb_status.clone(),
        reason: "syntax",
        detail,
    })?;
    let Some(first) = words.first() else {
        return Ok(None);
    };
    let verb = first.text.to_ascii_lowercase();
    let args: Vec<&str> = words.iter().skip(1).map(|w| w.text.as_str()).collect();
    let status = if verb == "exit" {
        "QUIT".to_owned()
    } else if VERBS.iter().any(|(v, _)| *v == verb) && !first.quoted {
        verb.to_ascii_uppercase()
    } else {
        return Err(ParseError {
            verb: "UNKNOWN".to_owned(),
            reason: "unknown-verb",
            detail: format!("{:?} (try help)", first.text),
        });
    };
    let usage = |why: &str| ParseError {
        verb: status.clone(),
        reason: "usage",
        detail: if why.is_empty() {
            format!("usage: {}", usage_of(&verb))
        } else {
            format!("{why}; usage: {}", usage_of(&verb))
        },
    };
    let bad_path = |detail: String| ParseError {
        verb: status.clone(),
        reason: "bad-path",
        detail,
    };
    let path = |s: &str| NsPath::parse(s).map_err(bad_path);
    let cmd = match (verb.as_str(), args.as_slice()) {
        ("help", _) => Command::Help,
        ("quit" | "exit", []) => Command::Quit,
        ("detach", []) => Command::Detach,
        ("ping", []) => Command::Ping,
        ("attach", [role]) | ("attach", [role, _]) => {
            if split_uname(role).is_none() {
                return Err(usage(&format!(
                    "bad role {role:?} (queen, worker-heartbeat:<id>, worker-gpu:<id>, …)"
                )));
            }
            Command::Attach {
                role: (*role).to_owned(),
                ticket: args.get(1).map_or_else(String::new, |t| (*t).to_owned()),
            }
        }
        ("ls", []) => Command::Ls {
            path: NsPath::root(),
        },
        ("ls", [p]) => Command::Ls { path: path(p)? },
        ("cat", [p]) => Command::Cat { path: path(p)? },
        ("tail", _) => {
            let (follow, timeout, rest) = tail_options(&args).map_err(|e| usage(&e))?;
            let [p] = rest.as_slice() else {
                return Err(usage(""));
            };
            Command::Tail {
                path: path(p)?,
                follow,
                timeout,
                log: false,
            }
        }
        ("log", _) => {
            let (_, timeout, rest) = tail_options(&args).map_err(|e| usage(&e))?;
            if !rest.is_empty() {
                return Err(usage(""));
            }
            Command::Tail {
                path: NsPath::parse("/log/queen.log").map_err(bad_path)?,
                follow: true,
                timeout,
                log: true,
            }
        }
        ("echo", _) => parse_echo(trimmed, &words).map_err(|e| match e {
            EchoError::Usage(why) => usage(why),
            EchoError::Path(p) => bad_path(p),
        })?,
        ("spawn", [kind, kvs @ ..]) => {
            Command::Spawn(parse_spawn(kind, kvs).map_err(|e| usage(&e))?)
        }
        ("kill", [w]) => Command::Kill {
            worker: worker_id(w).map_err(|e| usage(&e))?,
        },
        ("bind", [from, to]) => Command::Bind {
            from: path(from)?,
            to: path(to)?,
        },
        ("mount", [service, at]) => {
            if !is_plain_name(service) {
                return Err(usage(&format!("bad service name {service:?}")));
            }
            Command::Mount {
                service: (*service).to_owned(),
                at: path(at)?,
            }
        }
        ("lifecycle", []) => Command::Lifecycle(None),
        ("lifecycle", [c]) => Command::Lifecycle(Some(
            LifecycleCmd::parse(c)
                .ok_or_else(|| usage(&format!("unknown lifecycle command {c:?}")))?,
        )),
        ("lease", [gpu, worker, kvs @ ..]) => {
            parse_lease(gpu, worker, kvs).map_err(|e| usage(&e))?
        }
        ("release", [gpu, worker, reason @ ..]) => {
            let gpu = gpu_id(gpu).map_err(|e| usage(&e))?;
            let worker = worker_id(worker).map_err(|e| usage(&e))?;
            let reason = if reason.is_empty() {
                "released".to_owned()
            } else {
                reason.join(" ")
            };
            if reason.contains(['\n', '\r']) {
                return Err(usage("the reason must be one line"));
            }
            Command::Release {
                gpu,
                worker,
                reason,
            }
        }
        ("models", []) => Command::Models,
        ("models", ["activate", id]) => {
            if !is_plain_name(id) {
                return Err(usage(&format!("bad model id {id:?}")));
            }
            Command::ModelsActivate {
                id: (*id).to_owned(),
            }
        }
        _ => return Err(usage("")),
    };
    Ok(Some(cmd))
}

fn tail_options<'a>(args: &[&'a str]) -> Result<(bool, Option<Duration>, Vec<&'a str>), String> {
    let mut follow = false;
    let mut timeout = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "-f" => follow = true,
            "-t" => {
                let ms = it.next().ok_or("-t needs milliseconds")?;
                let ms: u64 = ms
                    .parse()
                    .ok()
                    .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
                    .ok_or_else(|| format!("-t takes 1..={MAX_TIMEOUT_MS} milliseconds"))?;
                timeout = Some(Duration::from_millis(ms));
                follow = true;
            }
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            s => rest.push(s),
        }
    }
    Ok((follow, timeout, rest))
}

enum EchoError {
    Usage(&'static str),
    Path(String),
}

fn parse_echo(line: &str, words: &[Word]) -> Result<Command, EchoError> {
    let redirect = words
        .iter()
        .rposition(|w| w.text == ">" && !w.quoted)
        .ok_or(EchoError::Usage("missing '> <path>'"))?;
    if redirect == 0 {
        return Err(EchoError::Usage("missing text"));
    }
    let [target] = words.get(redirect + 1..).unwrap_or(&[]) else {
        return Err(EchoError::Usage("exactly one path must follow '>'"));
    };
    let (Some(first_text), Some(redir)) = (words.get(1), words.get(redirect)) else {
        return Err(EchoError::Usage("missing text"));
    };
    if redirect == 1 {
        return Err(EchoError::Usage("missing text"));
    }
    let raw = line.get(first_text.start..redir.start).unwrap_or("").trim();
    let text = if redirect == 2 && first_text.quoted && is_fully_quoted(raw) {
        first_text.text.clone()
    } else {
        raw.to_owned()
    };
    if text.contains(['\n', '\r']) {
        return Err(EchoError::Usage("the text must be one line"));
    }
    let path = NsPath::parse(&target.text).map_err(EchoError::Path)?;
    Ok(Command::Echo { text, path })
}

/// `'…'` or `"…"` with the same quote at both ends.
fn is_fully_quoted(raw: &str) -> bool {
    raw.len() >= 2
        && ((raw.starts_with('\'') && raw.ends_with('\''))
            || (raw.starts_with('"') && raw.ends_with('"')))
}

/// `worker-N`, or a bare `N` meaning `worker-N`.
fn worker_id(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(format!("worker-{s}"));
    }
    if is_plain_name(s) && !s.contains(char::is_whitespace) {
        Ok(s.to_owned())
    } else {
        Err(format!("bad worker id {s:?}"))
    }
}

fn gpu_id(s: &str) -> Result<String, String> {
    if is_plain_name(s) && !s.contains(char::is_whitespace) {
        Ok(s.to_owned())
    } else {
        Err(format!("bad gpu id {s:?}"))
    }
}

fn key_values<'a>(kvs: &[&'a str], allowed: &[&str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for kv in kvs {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(format!("expected key=value, got {kv:?}"));
        };
        if !allowed.contains(&k) {
            return Err(format!(
                "unknown key {k:?} (allowed: {})",
                allowed.join(", ")
            ));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("{k} given twice"));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn num<N: std::str::FromStr>(k: &str, v: &str) -> Result<N, String> {
    v.parse()
        .map_err(|_| format!("{k}={v:?} is not a non-negative integer in range"))
}

fn parse_spawn(kind: &str, kvs: &[&str]) -> Result<SpawnSpec, String> {
    match kind {
        "heartbeat" | "worker-heartbeat" => {
            let (mut ticks, mut ttl_s, mut ops) = (None, None, None);
            for (k, v) in key_values(kvs, &["ticks", "ttl_s", "ops"])? {
                let n = Some(num::<u64>(k, v)?);
                match k {
                    "ticks" => ticks = n,
                    "ttl_s" => ttl_s = n,
                    _ => ops = n,
                }
            }
            Ok(SpawnSpec::Heartbeat { ticks, ttl_s, ops })
        }
        "gpu" | "worker-gpu" => {
            let (mut gpu, mut mem_mb, mut streams, mut ttl_s, mut priority) =
                (None, None, None, None, None);
            for (k, v) in key_values(
                kvs,
                &["gpu_id", "gpu", "mem_mb", "streams", "ttl_s", "priority"],
            )? {
                match k {
                    "gpu_id" | "gpu" => {
                        if gpu.is_some() {
                            return Err("gpu_id given twice".to_owned());
                        }
                        gpu = Some(gpu_id(v)?);
                    }
                    "mem_mb" => mem_mb = Some(num::<u64>(k, v)?),
                    "streams" => streams = Some(num::<u32>(k, v)?),
                    "ttl_s" => ttl_s = Some(num::<u64>(k, v)?),
                    _ => priority = Some(num::<u32>(k, v)?),
                }
            }
            match (gpu, mem_mb, streams) {
                (Some(gpu_id), Some(mem_mb), Some(streams)) => Ok(SpawnSpec::Gpu {
                    gpu_id,
                    mem_mb,
                    streams,
                    ttl_s,
                    priority,
                }),
                _ => Err("gpu spawn needs gpu_id=, mem_mb= and streams=".to_owned()),
            }
        }
        other => Err(format!("unknown worker kind {other:?} (heartbeat or gpu)")),
    }
}

fn parse_lease(gpu: &str, worker: &str, kvs: &[&str]) -> Result<Command, String> {
    let gpu = gpu_id(gpu)?;
    let worker = worker_id(worker)?;
    let (mut mem, mut streams, mut priority, mut ttl) = (None, None, 0u32, None);
    for (k, v) in key_values(kvs, &["mem", "streams", "priority", "ttl"])? {
        match k {
            "mem" => mem = Some(num::<u64>(k, v)?),
            "streams" => streams = Some(num::<u32>(k, v)?),
            "priority" => priority = num::<u32>(k, v)?,
            _ => ttl = Some(num::<u64>(k, v)?),
        }
    }
    let (Some(mem), Some(streams)) = (mem, streams) else {
        return Err("lease needs mem= and streams=".to_owned());
    };
    Ok(Command::Lease {
        gpu,
        worker,
        mem,
        streams,
        priority,
        ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Command {
        match parse_command(line) {
            Ok(Some(c)) => c,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn err(line: &str) -> ParseError {
        match parse_command(line) {
            Err(e) => e,
            other => panic!("{line:?} parsed: {other:?}"),
        }
    }

    fn p(s: &str) -> NsPath {
        NsPath::parse(s).expect("valid path")
    }

    #[test]
    fn words_and_quotes() {
        let w = split_words(r#"  a 'b c' "d \"e\" \\f" g\ h 'x'"y"z  "#).expect("ok");
        let texts: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["a", "b c", r#"d "e" \f"#, "g h", "xyz"]);
        assert!(!w[0].quoted && w[1].quoted && w[3].quoted);
        assert_eq!((w[0].start, w[0].end), (2, 3));
        assert_eq!((w[1].start, w[1].end), (4, 9));
        assert!(split_words("a 'b").is_err());
        assert!(split_words("a \"b").is_err());
        assert!(split_words("a b\\").is_err());
        assert_eq!(split_words("   ").expect("ok"), vec![]);
        // A backslash in double quotes before another char stays.
        assert_eq!(split_words(r#""a\nb""#).expect("ok")[0].text, r"a\nb");
        // Non-ASCII.
        let w = split_words("é 'ü ß'").expect("ok");
        assert_eq!(w[1].text, "ü ß");
        assert_eq!(w[1].end, "é 'ü ß'".len());
    }

    #[test]
    fn blank_and_comments() {
        assert_eq!(parse_command(""), Ok(None));
        assert_eq!(parse_command("   "), Ok(None));
        assert_eq!(parse_command("# ls /"), Ok(None));
        assert_eq!(parse_command("   # x"), Ok(None));
    }

    #[test]
    fn paths() {
        assert_eq!(p("/").to_string(), "/");
        assert_eq!(p("/worker/").to_string(), "/worker");
        assert_eq!(p("/a/b/c").names(), ["a", "b", "c"]);
        assert_eq!(p("/a/b").basename(), "b");
        for bad in [
            "worker", "", "./x", "/a/../b", "/a/./b", "/..", "/a//b", "//", "/a/b//",
        ] {
            assert!(NsPath::parse(bad).is_err(), "{bad:?}");
        }
        let deep = "/a".repeat(MAX_PATH_DEPTH);
        assert!(NsPath::parse(&deep).is_ok());
        assert!(NsPath::parse(&format!("{deep}/b")).is_err());
        let long = format!("/{}", "x".repeat(256));
        assert!(NsPath::parse(&long).is_err());
        assert!(NsPath::parse("/a\0b").is_err());
        assert_eq!(p("/a").join("b").expect("ok"), p("/a/b"));
        assert!(p("/a").join("..").is_err());
    }

    #[test]
    fn relative_and_dotdot_refused() {
        let e = err("cat worker/x");
        assert_eq!((e.verb.as_str(), e.reason), ("CAT", "bad-path"));
        let e = err("ls /worker/../queen");
        assert_eq!((e.verb.as_str(), e.reason), ("LS", "bad-path"));
        let e = err("echo hi > ctl");
        assert_eq!((e.verb.as_str(), e.reason), ("ECHO", "bad-path"));
        let e = err("tail -f ../x");
        assert_eq!(e.reason, "bad-path");
    }

    #[test]
    fn simple_verbs() {
        assert_eq!(parse("ls"), Command::Ls { path: p("/") });
        assert_eq!(parse("LS /worker"), Command::Ls { path: p("/worker") });
        assert_eq!(
            parse("cat /proc/boot"),
            Command::Cat {
                path: p("/proc/boot")
            }
        );
        assert_eq!(parse("help"), Command::Help);
        assert_eq!(parse("help ls"), Command::Help);
        assert_eq!(parse("quit"), Command::Quit);
        assert_eq!(parse("exit"), Command::Quit);
        assert_eq!(parse("ping"), Command::Ping);
        assert_eq!(parse("detach"), Command::Detach);
        assert_eq!(
            parse("attach queen"),
            Command::Attach {
                role: "queen".into(),
                ticket: String::new()
            }
        );
        assert_eq!(
            parse("attach worker-gpu:worker-3 'cohesix-ticket-00.11'"),
            Command::Attach {
                role: "worker-gpu:worker-3".into(),
                ticket: "cohesix-ticket-00.11".into()
            }
        );
        assert_eq!(err("attach king").reason, "usage");
        assert_eq!(err("attach").reason, "usage");
        assert_eq!(err("ls /a /b").reason, "usage");
        assert_eq!(err("ping now").reason, "usage");
    }

    #[test]
    fn unknown_and_syntax() {
        let e = err("frobnicate /x");
        assert_eq!((e.verb.as_str(), e.reason), ("UNKNOWN", "unknown-verb"));
        let e = err("cat '/x");
        assert_eq!((e.verb.as_str(), e.reason), ("CAT", "syntax"));
        let e = err("'ls' /");
        assert_eq!(e.reason, "unknown-verb");
    }

    #[test]
    fn tail_and_log() {
        assert_eq!(
            parse("tail /log/queen.log"),
            Command::Tail {
                path: p("/log/queen.log"),
                follow: false,
                timeout: None,
                log: false
            }
        );
        assert_eq!(
            parse("tail -f /w/t"),
            Command::Tail {
                path: p("/w/t"),
                follow: true,
                timeout: None,
                log: false
            }
        );
        assert_eq!(
            parse("tail /w/t -t 250"),
            Command::Tail {
                path: p("/w/t"),
                follow: true,
                timeout: Some(Duration::from_millis(250)),
                log: false
            }
        );
        assert_eq!(
            parse("log"),
            Command::Tail {
                path: p("/log/queen.log"),
                follow: true,
                timeout: None,
                log: true
            }
        );
        assert_eq!(parse("log").verb(), "LOG");
        assert_eq!(err("tail").reason, "usage");
        assert_eq!(err("tail -x /a").reason, "usage");
        assert_eq!(err("tail -t 0 /a").reason, "usage");
        assert_eq!(err("tail -t /a").reason, "usage");
        assert_eq!(err("log /x").reason, "usage");
    }

    #[test]
    fn echo_forms() {
        let echo = |line: &str| match parse(line) {
            Command::Echo { text, path } => (text, path.to_string()),
            c => panic!("{c:?}"),
        };
        assert_eq!(echo("echo a b > /p"), ("a b".into(), "/p".into()));
        assert_eq!(echo("echo a   b   >   /p"), ("a   b".into(), "/p".into()));
        assert_eq!(echo("echo 'a > b' > /p"), ("a > b".into(), "/p".into()));
        assert_eq!(echo(r#"echo "x y" > /p"#), ("x y".into(), "/p".into()));
        assert_eq!(
            echo(r#"echo {"kill":"worker-1"} > /queen/ctl"#),
            (r#"{"kill":"worker-1"}"#.into(), "/queen/ctl".into())
        );
        assert_eq!(
            echo(r#"echo {"a":">"} > /q"#),
            (r#"{"a":">"}"#.into(), "/q".into())
        );
        // The last unquoted > is the redirection.
        assert_eq!(echo("echo a > b > /p"), ("a > b".into(), "/p".into()));
        // Two quoted words are kept verbatim.
        assert_eq!(echo("echo 'a' 'b' > /p"), ("'a' 'b'".into(), "/p".into()));
        assert_eq!(echo("echo '/x' > '/p'"), ("/x".into(), "/p".into()));
        assert_eq!(err("echo hi").reason, "usage");
        assert_eq!(err("echo > /p").reason, "usage");
        assert_eq!(err("echo hi >").reason, "usage");
        assert_eq!(err("echo hi > /a /b").reason, "usage");
        assert_eq!(err("echo hi '>' /a").reason, "usage");
        assert_eq!(err("echo hi > /a/../b").reason, "bad-path");
    }

    #[test]
    fn spawn_json() {
        let Command::Spawn(s) = parse("spawn heartbeat ticks=5 ttl_s=30 ops=100") else {
            panic!()
        };
        assert_eq!(
            s.to_json_line(),
            r#"{"spawn":"heartbeat","ticks":5,"budget":{"ttl_s":30,"ops":100}}"#
        );
        let Command::Spawn(s) = parse("spawn heartbeat") else {
            panic!()
        };
        assert_eq!(s.to_json_line(), r#"{"spawn":"heartbeat"}"#);
        let Command::Spawn(s) = parse("spawn worker-heartbeat ops=7") else {
            panic!()
        };
        assert_eq!(
            s.to_json_line(),
            r#"{"spawn":"heartbeat","budget":{"ops":7}}"#
        );
        let Command::Spawn(s) =
            parse("spawn gpu gpu_id=gpu0 mem_mb=512 streams=2 ttl_s=60 priority=3")
        else {
            panic!()
        };
        assert_eq!(
            s.to_json_line(),
            r#"{"spawn":"gpu","lease":{"gpu_id":"gpu0","mem_mb":512,"streams":2,"ttl_s":60,"priority":3}}"#
        );
        let Command::Spawn(s) = parse("spawn gpu gpu=gpu1 mem_mb=1 streams=1") else {
            panic!()
        };
        assert_eq!(
            s.to_json_line(),
            r#"{"spawn":"gpu","lease":{"gpu_id":"gpu1","mem_mb":1,"streams":1}}"#
        );
        for bad in [
            "spawn",
            "spawn lora",
            "spawn heartbeat ticks=-1",
            "spawn heartbeat ticks=x",
            "spawn heartbeat color=red",
            "spawn heartbeat ticks",
            "spawn heartbeat ticks=1 ticks=2",
            "spawn gpu mem_mb=1 streams=1",
            "spawn gpu gpu_id=g gpu=h mem_mb=1 streams=1",
            "spawn gpu gpu_id=g mem_mb=1 streams=99999999999",
            "spawn gpu gpu_id=a/b mem_mb=1 streams=1",
        ] {
            assert_eq!(err(bad).reason, "usage", "{bad}");
        }
        // Parse every JSON line back: it must be valid JSON.
        for line in [
            "spawn heartbeat ticks=5 ttl_s=30 ops=100",
            "spawn gpu gpu_id=\"g\\\"x\" mem_mb=1 streams=1",
        ] {
            if let Ok(Some(Command::Spawn(s))) = parse_command(line) {
                let v: serde_json::Value =
                    serde_json::from_str(&s.to_json_line()).expect("valid JSON");
                assert!(v.is_object());
            }
        }
    }

    #[test]
    fn ctl_verbs() {
        assert_eq!(
            parse("kill worker-3"),
            Command::Kill {
                worker: "worker-3".into()
            }
        );
        assert_eq!(
            parse("kill 4"),
            Command::Kill {
                worker: "worker-4".into()
            }
        );
        assert_eq!(err("kill").reason, "usage");
        assert_eq!(err("kill a/b").reason, "usage");
        assert_eq!(
            parse("bind /gpu/gpu0 /mnt/g"),
            Command::Bind {
                from: p("/gpu/gpu0"),
                to: p("/mnt/g")
            }
        );
        assert_eq!(err("bind /a b").reason, "bad-path");
        assert_eq!(
            parse("mount systemd /host/systemd"),
            Command::Mount {
                service: "systemd".into(),
                at: p("/host/systemd")
            }
        );
        assert_eq!(parse("lifecycle"), Command::Lifecycle(None));
        assert_eq!(
            parse("lifecycle cordon"),
            Command::Lifecycle(Some(LifecycleCmd::Cordon))
        );
        assert_eq!(err("lifecycle explode").reason, "usage");
        assert_eq!(
            parse("lease gpu0 worker-2 mem=256 streams=2 priority=1 ttl=30"),
            Command::Lease {
                gpu: "gpu0".into(),
                worker: "worker-2".into(),
                mem: 256,
                streams: 2,
                priority: 1,
                ttl: Some(30)
            }
        );
        assert_eq!(err("lease gpu0 worker-2 mem=256").reason, "usage");
        assert_eq!(
            parse("release gpu0 2"),
            Command::Release {
                gpu: "gpu0".into(),
                worker: "worker-2".into(),
                reason: "released".into()
            }
        );
        assert_eq!(
            parse("release gpu0 worker-2 'job done' now"),
            Command::Release {
                gpu: "gpu0".into(),
                worker: "worker-2".into(),
                reason: "job done now".into()
            }
        );
        assert_eq!(parse("models"), Command::Models);
        assert_eq!(
            parse("models activate stories15m"),
            Command::ModelsActivate {
                id: "stories15m".into()
            }
        );
        assert_eq!(err("models activate ../x").reason, "usage");
        assert_eq!(err("models remove x").reason, "usage");
    }
}
