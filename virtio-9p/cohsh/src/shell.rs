//! The shell core: runs parsed commands over a [`Client`] and prints replies.

use std::fmt;
use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use secure9p::client::{Client, ClientError, Fid, READ_TO_END_LIMIT, Transport};
use secure9p::errno;
use secure9p::wire::{
    DT_DIR, GETATTR_BASIC, GETATTR_SIZE, O_RDONLY, O_WRONLY, Qid, Request, Response,
};
use serde_json::{Value, json};

use crate::cancel::{CancelToken, Interruptible};
use crate::parse::{Command, LifecycleCmd, NsPath, VERBS, json_str, parse_command};
use crate::reply::Reply;

/// How long a Tflush may take before the session is declared dead.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `tail -f` waits before re-reading when the server answered a
/// read at the end with no data (instead of blocking).
pub const EMPTY_READ_PAUSE: Duration = Duration::from_millis(200);

/// Most consecutive "stale" (ERANGE) resynchronisations of one read loop.
const MAX_RESYNC: u32 = 8;

/// Where the lifecycle state is read.
pub const LIFECYCLE_STATE: &str = "/proc/lifecycle/state";
/// Where lifecycle commands are written.
pub const LIFECYCLE_CTL: &str = "/queen/lifecycle/ctl";
/// The queen's control file.
pub const QUEEN_CTL: &str = "/queen/ctl";
/// Available models.
pub const MODELS_AVAILABLE: &str = "/gpu/models/available";
/// The active-model pointer (append-only; the last line counts).
pub const MODELS_ACTIVE: &str = "/gpu/models/active";

/// A failed command (or attach): the `reason` and `detail` of an ERR line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct ShellError {
    /// Errno name (`ENOENT`) or cohsh reason (`not-attached`, …).
    pub reason: String,
    /// Free text.
    pub detail: Option<String>,
}

impl ShellError {
    /// A new error.
    pub fn new(reason: &str, detail: impl Into<Option<String>>) -> ShellError {
        ShellError {
            reason: reason.to_owned(),
            detail: detail.into(),
        }
    }

    fn errno(n: u32, detail: impl Into<Option<String>>) -> ShellError {
        ShellError::new(&errno_name(n), detail)
    }
}

/// Linux `EKEYREVOKED` (NineDoor: the session's worker was killed or its
/// lease expired); not in secure9p's errno table yet.
const EKEYREVOKED: u32 = 128;

/// The reason token of an errno: its name (`ENOENT`; coco's ELIMIT prints as
/// `EDQUOT`), or `errno-<n>` for one secure9p does not name.
#[must_use]
pub fn errno_name(n: u32) -> String {
    match (n, errno::name(n)) {
        (EKEYREVOKED, _) => "EKEYREVOKED".to_owned(),
        (_, "E?") => format!("errno-{n}"),
        (_, name) => name.to_owned(),
    }
}

/// What [`Shell::run_line`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Blank line or comment: nothing ran, nothing was printed.
    Nothing,
    /// A command ran and printed this reply.
    Reply(Reply),
    /// `quit`: its reply was printed; the caller should stop.
    Quit(Reply),
}

impl Outcome {
    /// The reply, if a command ran.
    #[must_use]
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Outcome::Nothing => None,
            Outcome::Reply(r) | Outcome::Quit(r) => Some(r),
        }
    }

    /// Whether this was `quit`.
    #[must_use]
    pub fn is_quit(&self) -> bool {
        matches!(self, Outcome::Quit(_))
    }

    /// Whether a command ran and failed.
    #[must_use]
    pub fn is_err(&self) -> bool {
        self.reply().is_some_and(|r| !r.ok)
    }
}

struct Session {
    root: Fid,
    uname: String,
}

/// Output state of the command being run.
#[derive(Default)]
struct Capture {
    reply: Option<Reply>,
    /// Whether the last byte emitted (text form) was a newline, or nothing
    /// was emitted.
    at_line_start: bool,
}

/// Where a read loop delivers data.
enum Sink<'a> {
    /// Printed as stream chunks as they arrive.
    Stream,
    /// Collected (bounded by [`READ_TO_END_LIMIT`]).
    Collect(&'a mut Vec<u8>),
}

/// Totals of a read loop.
struct ReadStats {
    /// Next offset to read.
    offset: u64,
    /// Bytes delivered.
    bytes: u64,
    /// Bytes lost to ring wrap-around (reads below the retained base).
    skipped: u64,
}

/// The cohsh shell over one 9P session.
///
/// Build a [`Client`] over any transport (the real ones are in
/// [`crate::connect`]; tests may use an in-process server), attach with
/// [`Shell::attach`], then feed lines to [`Shell::run_line`] or whole
/// scripts to [`Shell::run_script`](crate::script). Every command prints its
/// reply to `out` (text or `--json`, see the crate docs) and returns it.
pub struct Shell<T: Transport, W: Write> {
    client: Client<T>,
    out: W,
    json: bool,
    cancel: CancelToken,
    session: Option<Session>,
    dead: Option<String>,
    cap: Capture,
}

impl<T: Transport, W: Write> fmt::Debug for Shell<T, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shell")
            .field("client", &self.client)
            .field("json", &self.json)
            .field("attached", &self.session.as_ref().map(|s| s.uname.as_str()))
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

type Res<R> = Result<R, ShellError>;

impl<T, W> Shell<T, W>
where
    T: Transport,
    T::Error: Interruptible + fmt::Display,
    W: Write,
{
    /// A shell over a connected (version-negotiated) client, printing to
    /// `out`, in JSON mode if `json`. It has its own [`CancelToken`], which
    /// a transport built beforehand cannot see: use [`Shell::with_cancel`]
    /// to share one with the transport.
    pub fn new(client: Client<T>, out: W, json: bool) -> Shell<T, W> {
        Shell::with_cancel(client, out, json, CancelToken::new())
    }

    /// [`Shell::new`] with the token the transport polls and Ctrl-C fires.
    pub fn with_cancel(client: Client<T>, out: W, json: bool, cancel: CancelToken) -> Shell<T, W> {
        Shell {
            client,
            out,
            json,
            cancel,
            session: None,
            dead: None,
            cap: Capture::default(),
        }
    }

    /// The cancel token.
    #[must_use]
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// The client.
    #[must_use]
    pub fn client(&self) -> &Client<T> {
        &self.client
    }

    /// The client, mutably.
    pub fn client_mut(&mut self) -> &mut Client<T> {
        &mut self.client
    }

    /// The output writer.
    pub fn output(&self) -> &W {
        &self.out
    }

    /// The output writer, mutably (tests drain a `Vec<u8>` here).
    pub fn output_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Ends the shell, returning the client and the writer.
    pub fn into_parts(self) -> (Client<T>, W) {
        (self.client, self.out)
    }

    /// Whether replies are JSON.
    #[must_use]
    pub fn json(&self) -> bool {
        self.json
    }

    /// The attached role (`uname`), if any.
    #[must_use]
    pub fn attached_as(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.uname.as_str())
    }

    /// Why the connection is unusable, if it is.
    #[must_use]
    pub fn dead(&self) -> Option<&str> {
        self.dead.as_deref()
    }

    /// Attaches as `uname` with `ticket` (empty: none) without printing
    /// anything. On success the previous session's root fid (if any) is
    /// clunked; on failure the previous session stays.
    pub fn attach(&mut self, uname: &str, ticket: &str) -> Res<()> {
        self.check_alive()?;
        let ctx = format!("role={uname}");
        let root = self.call(&ctx, |c| c.attach(uname, ticket))?;
        let old = self.session.replace(Session {
            root,
            uname: uname.to_owned(),
        });
        if let Some(old) = old {
            self.clunk_quietly(old.root);
        }
        Ok(())
    }

    /// Parses and runs one line (blank lines and `#` comments do nothing).
    /// The reply is printed and returned.
    pub fn run_line(&mut self, line: &str) -> Outcome {
        match parse_command(line) {
            Ok(None) => Outcome::Nothing,
            Ok(Some(cmd)) => self.run_command(&cmd),
            Err(e) => {
                self.begin();
                Outcome::Reply(self.finish(Reply::err(&e.verb, e.reason, Some(e.detail))))
            }
        }
    }

    /// Runs one parsed command; the reply is printed and returned.
    pub fn run_command(&mut self, cmd: &Command) -> Outcome {
        self.begin();
        let reply = match self.exec(cmd) {
            Ok(r) => r,
            Err(e) => Reply::err(cmd.verb(), &e.reason, e.detail),
        };
        let reply = self.finish(reply);
        if matches!(cmd, Command::Quit) {
            Outcome::Quit(reply)
        } else {
            Outcome::Reply(reply)
        }
    }

    // -- output ------------------------------------------------------------

    fn begin(&mut self) {
        self.cancel.clear();
        self.cancel.disarm();
        self.cap = Capture {
            reply: Some(Reply::ok("", None, Value::Null)),
            at_line_start: true,
        };
    }

    fn capture(&mut self, text: &str) {
        if let Some(r) = self.cap.reply.as_mut() {
            r.capture(text);
        }
        if let Some(last) = text.as_bytes().last() {
            self.cap.at_line_start = *last == b'\n';
        }
    }

    /// Command output (not a stream): printed in text mode, carried by
    /// `data` in JSON mode; captured either way.
    fn emit_text(&mut self, text: &str) {
        if !self.json {
            // Output errors (a closed stdout) cannot be reported anywhere
            // better; the reply is still returned.
            let _ = self.out.write_all(text.as_bytes());
        }
        self.capture(text);
    }

    /// A stream chunk: raw bytes in text mode, `{"verb":..,"stream":..}` in
    /// JSON mode; flushed at once.
    fn emit_stream(&mut self, verb: &str, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        if self.json {
            let _ = writeln!(self.out, "{}", json!({ "verb": verb, "stream": text }));
        } else {
            let _ = self.out.write_all(data);
        }
        let _ = self.out.flush();
        self.capture(&text);
    }

    fn ensure_line_start(&mut self) {
        if !self.cap.at_line_start {
            if !self.json {
                let _ = self.out.write_all(b"\n");
            }
            self.capture("\n");
        }
    }

    fn end_stream(&mut self) {
        self.ensure_line_start();
        if !self.json {
            let _ = self.out.write_all(b"END\n");
        }
        self.capture("END\n");
    }

    fn finish(&mut self, mut reply: Reply) -> Reply {
        self.ensure_line_start();
        if let Some(c) = self.cap.reply.take() {
            reply.output = c.output;
            reply.output_truncated = c.output_truncated;
        }
        if self.json {
            let _ = writeln!(self.out, "{}", reply.to_json());
        } else {
            let _ = writeln!(self.out, "{}", reply.status_line());
        }
        let _ = self.out.flush();
        self.cancel.disarm();
        reply
    }

    /// Prints a line that is not a command reply (script diagnostics): text
    /// as is, or `json` in JSON mode.
    pub(crate) fn print_event(&mut self, text: &str, json: &Value) {
        if self.json {
            let _ = writeln!(self.out, "{json}");
        } else {
            let _ = writeln!(self.out, "{text}");
        }
        let _ = self.out.flush();
    }

    // -- client plumbing ---------------------------------------------------

    fn check_alive(&self) -> Res<()> {
        match &self.dead {
            Some(why) => Err(ShellError::new("disconnected", why.clone())),
            None => Ok(()),
        }
    }

    fn root(&self) -> Res<Fid> {
        self.check_alive()?;
        self.session
            .as_ref()
            .map(|s| s.root)
            .ok_or_else(|| ShellError::new("not-attached", "use attach <role> [ticket]".to_owned()))
    }

    fn client_err(&mut self, e: ClientError<T::Error>, ctx: &str) -> ShellError {
        let with_ctx = |what: String| {
            if ctx.is_empty() {
                what
            } else {
                format!("{ctx}: {what}")
            }
        };
        match e {
            ClientError::Remote { errno: n } => {
                ShellError::errno(n, (!ctx.is_empty()).then(|| ctx.to_owned()))
            }
            ClientError::Transport(t) => {
                let why = t.to_string();
                self.dead = Some(why.clone());
                self.session = None;
                ShellError::new("disconnected", with_ctx(why))
            }
            ClientError::Protocol(d) => ShellError::new("protocol", with_ctx(d.to_string())),
            ClientError::Encode(d) => ShellError::new("encode", with_ctx(d.to_string())),
            ClientError::Unexpected { what } => {
                ShellError::new("protocol", with_ctx(what.to_owned()))
            }
            ClientError::Invalid { what } => ShellError::new("invalid", with_ctx(what.to_owned())),
            ClientError::Exhausted { what } => ShellError::new("limit", with_ctx(what.to_owned())),
        }
    }

    fn call<R>(
        &mut self,
        ctx: &str,
        f: impl FnOnce(&mut Client<T>) -> Result<R, ClientError<T::Error>>,
    ) -> Res<R> {
        match f(&mut self.client) {
            Ok(r) => Ok(r),
            Err(e) => Err(self.client_err(e, ctx)),
        }
    }

    fn clunk_quietly(&mut self, fid: Fid) {
        if let Err(e) = self.client.clunk(fid) {
            // Only a dead transport matters; the fid is free either way.
            let _ = self.client_err(e, "clunk");
        }
    }

    fn walk(&mut self, path: &NsPath) -> Res<Fid> {
        let root = self.root()?;
        let names: Vec<&str> = path.names().iter().map(String::as_str).collect();
        self.call(&path.to_string(), |c| c.walk(root, &names))
    }

    /// Walks to `path`, runs `f` on the new fid, clunks it.
    fn with_path<R>(
        &mut self,
        path: &NsPath,
        f: impl FnOnce(&mut Self, Fid, &str) -> Res<R>,
    ) -> Res<R> {
        let fid = self.walk(path)?;
        let ctx = path.to_string();
        let r = f(self, fid, &ctx);
        if self.dead.is_none() {
            self.clunk_quietly(fid);
        }
        r
    }

    fn open(&mut self, fid: Fid, flags: u32, ctx: &str) -> Res<(Qid, u32)> {
        self.call(ctx, |c| c.lopen(fid, flags))
    }

    /// The end offset of an append-only file (its size), if the server
    /// reports one.
    fn append_end(&mut self, fid: Fid, ctx: &str) -> Res<Option<u64>> {
        let a = self.call(ctx, |c| c.getattr(fid, GETATTR_SIZE))?;
        Ok((a.valid & GETATTR_SIZE != 0).then_some(a.size))
    }

    /// The oldest readable offset in `lo..end` of a ring whose reads below
    /// its retained base fail with ERANGE (binary search with 1-byte reads,
    /// never reading at `end`, where a read could block). `end` if nothing
    /// below it is readable.
    fn find_base(&mut self, fid: Fid, lo: u64, end: u64, ctx: &str) -> Res<u64> {
        let (mut lo, mut hi) = (lo, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.client.read(fid, mid, 1) {
                Ok(_) => hi = mid,
                Err(ClientError::Remote {
                    errno: errno::ERANGE,
                }) => lo = mid + 1,
                Err(e) => return Err(self.client_err(e, ctx)),
            }
        }
        Ok(lo)
    }

    /// Reads the existing content of an open fid. Append-only files are read
    /// from their oldest retained byte up to their size at the start (so the
    /// read never waits at the end); other files until an empty read.
    fn read_existing(
        &mut self,
        fid: Fid,
        append: bool,
        verb: &str,
        mut sink: Sink<'_>,
        ctx: &str,
    ) -> Res<ReadStats> {
        let end = if append {
            self.append_end(fid, ctx)?
        } else {
            None
        };
        let count = self.client.max_io().max(1);
        let mut st = ReadStats {
            offset: 0,
            bytes: 0,
            skipped: 0,
        };
        let mut resyncs = 0u32;
        loop {
            let want = match end {
                Some(end) if st.offset >= end => break,
                Some(end) => u32::try_from(end - st.offset)
                    .unwrap_or(u32::MAX)
                    .min(count),
                None => count,
            };
            match self.client.read(fid, st.offset, want) {
                Ok(data) if data.is_empty() => break,
                Ok(data) => {
                    let n = data.len() as u64;
                    if st.bytes.saturating_add(n) > READ_TO_END_LIMIT as u64 {
                        return Err(ShellError::new(
                            "too-large",
                            format!("{ctx}: more than {READ_TO_END_LIMIT} bytes"),
                        ));
                    }
                    match &mut sink {
                        Sink::Stream => self.emit_stream(verb, &data),
                        Sink::Collect(buf) => buf.extend_from_slice(&data),
                    }
                    st.offset = st.offset.saturating_add(n);
                    st.bytes += n;
                    resyncs = 0;
                }
                Err(ClientError::Remote {
                    errno: errno::ERANGE,
                }) if end.is_some() && resyncs < MAX_RESYNC => {
                    resyncs += 1;
                    let end = end.unwrap_or(st.offset);
                    let base = self.find_base(fid, st.offset, end, ctx)?;
                    st.skipped += base.saturating_sub(st.offset);
                    st.offset = base.max(st.offset);
                }
                Err(e) => return Err(self.client_err(e, ctx)),
            }
        }
        if let Some(end) = end {
            st.offset = st.offset.max(end);
        }
        Ok(st)
    }

    /// Reads a whole file (at most [`READ_TO_END_LIMIT`] bytes).
    fn read_file(&mut self, path: &NsPath) -> Res<(Vec<u8>, ReadStats)> {
        self.with_path(path, |s, fid, ctx| {
            let (qid, _) = s.open(fid, O_RDONLY, ctx)?;
            if qid.is_dir() {
                return Err(ShellError::errno(errno::EISDIR, ctx.to_owned()));
            }
            let mut buf = Vec::new();
            let st = s.read_existing(fid, qid.is_append(), "", Sink::Collect(&mut buf), ctx)?;
            Ok((buf, st))
        })
    }

    /// Writes `text` + "\n" to `path` in one Twrite: at `u64::MAX` if the
    /// opened qid is append-only, else at offset 0. Returns the bytes written.
    fn write_line(&mut self, path: &NsPath, text: &str) -> Res<usize> {
        let data = format!("{text}\n");
        self.with_path(path, |s, fid, ctx| {
            let (qid, iounit) = s.open(fid, O_WRONLY, ctx)?;
            if qid.is_dir() {
                return Err(ShellError::errno(errno::EISDIR, ctx.to_owned()));
            }
            let max = match s.client.max_io() {
                m if iounit > 0 => m.min(iounit),
                m => m,
            } as usize;
            if data.len() > max {
                return Err(ShellError::new(
                    "too-long",
                    format!("{ctx}: {} bytes exceed one write ({max})", data.len()),
                ));
            }
            let offset = if qid.is_append() { u64::MAX } else { 0 };
            let n = s.call(ctx, |c| c.write(fid, offset, data.as_bytes()))? as usize;
            if n != data.len() {
                return Err(ShellError::new(
                    "short-write",
                    format!("{ctx}: wrote {n} of {} bytes", data.len()),
                ));
            }
            Ok(n)
        })
    }

    /// Entries of a directory (`.` and `..` left out), or the file's own
    /// name; directories get a trailing `/`.
    fn list(&mut self, path: &NsPath) -> Res<Vec<String>> {
        self.with_path(path, |s, fid, ctx| {
            let attr = s.call(ctx, |c| c.getattr(fid, GETATTR_BASIC))?;
            if !attr.qid.is_dir() {
                return Ok(vec![path.basename().to_owned()]);
            }
            s.open(fid, O_RDONLY, ctx)?;
            let entries = s.call(ctx, |c| c.readdir_all(fid))?;
            Ok(entries
                .into_iter()
                .filter(|e| e.name != "." && e.name != "..")
                .map(|e| {
                    if e.ty == DT_DIR || e.qid.is_dir() {
                        format!("{}/", e.name)
                    } else {
                        e.name
                    }
                })
                .collect())
        })
    }

    // -- verbs -------------------------------------------------------------

    fn exec(&mut self, cmd: &Command) -> Res<Reply> {
        let verb = cmd.verb();
        match cmd {
            Command::Help => Ok(self.help()),
            Command::Quit => Ok(Reply::ok(verb, None, Value::Null)),
            Command::Attach { role, ticket } => {
                self.attach(role, ticket)?;
                Ok(Reply::ok(
                    verb,
                    Some(format!("role={role}")),
                    json!({ "role": role }),
                ))
            }
            Command::Detach => {
                self.check_alive()?;
                let s = self
                    .session
                    .take()
                    .ok_or_else(|| ShellError::new("not-attached", None))?;
                self.clunk_quietly(s.root);
                self.check_alive()?;
                Ok(Reply::ok(
                    verb,
                    Some(format!("role={}", s.uname)),
                    json!({ "role": s.uname }),
                ))
            }
            Command::Ls { path } => {
                let names = self.list(path)?;
                for n in &names {
                    self.emit_text(&format!("{n}\n"));
                }
                Ok(Reply::ok(
                    verb,
                    Some(format!("path={path} entries={}", names.len())),
                    json!(names),
                ))
            }
            Command::Cat { path } => {
                let (data, st) = self.read_file(path)?;
                let text = String::from_utf8_lossy(&data).into_owned();
                self.emit_text(&text);
                Ok(Reply::ok(
                    verb,
                    Some(read_detail(path, &st, None)),
                    Value::String(text),
                ))
            }
            Command::Tail {
                path,
                follow,
                timeout,
                ..
            } => self.tail(verb, path, *follow, *timeout),
            Command::Echo { text, path } => {
                let n = self.write_line(path, text)?;
                Ok(Reply::ok(
                    verb,
                    Some(format!("path={path} bytes={n}")),
                    Value::Null,
                ))
            }
            Command::Ping => self.ping(),
            Command::Spawn(spec) => {
                let line = spec.to_json_line();
                self.ctl(&line)?;
                Ok(Reply::ok(
                    verb,
                    Some(format!("kind={}", spec.kind())),
                    Value::String(line),
                ))
            }
            Command::Kill { worker } => {
                let line = format!(r#"{{"kill":{}}}"#, json_str(worker));
                self.ctl(&line)?;
                Ok(Reply::ok(
                    verb,
                    Some(format!("worker={worker}")),
                    Value::String(line),
                ))
            }
            Command::Bind { from, to } => {
                let line = format!(
                    r#"{{"bind":{{"from":{},"to":{}}}}}"#,
                    json_str(&from.to_string()),
                    json_str(&to.to_string())
                );
                self.ctl(&line)?;
                Ok(Reply::ok(
                    verb,
                    Some(format!("from={from} to={to}")),
                    Value::String(line),
                ))
            }
            Command::Mount { service, at } => {
                let line = format!(
                    r#"{{"mount":{{"service":{},"at":{}}}}}"#,
                    json_str(service),
                    json_str(&at.to_string())
                );
                self.ctl(&line)?;
                Ok(Reply::ok(
                    verb,
                    Some(format!("service={service} at={at}")),
                    Value::String(line),
                ))
            }
            Command::Lifecycle(c) => self.lifecycle(*c),
            Command::Lease {
                gpu,
                worker,
                mem,
                streams,
                priority,
                ttl,
            } => {
                let mut line =
                    format!("LEASE {worker} mem={mem} streams={streams} priority={priority}");
                if let Some(t) = ttl {
                    line.push_str(&format!(" ttl={t}"));
                }
                self.write_line(&gpu_ctl(gpu)?, &line)?;
                Ok(Reply::ok(
                    verb,
                    Some(format!("gpu={gpu} worker={worker}")),
                    Value::String(line),
                ))
            }
            Command::Release {
                gpu,
                worker,
                reason,
            } => {
                let line = format!("RELEASE {worker} {reason}");
                self.write_line(&gpu_ctl(gpu)?, &line)?;
                Ok(Reply::ok(
                    verb,
                    Some(format!("gpu={gpu} worker={worker}")),
                    Value::String(line),
                ))
            }
            Command::Models => self.models(),
            Command::ModelsActivate { id } => {
                self.write_line(&ns(MODELS_ACTIVE)?, id)?;
                Ok(Reply::ok(
                    verb,
                    Some(format!("active={id}")),
                    json!({ "active": id }),
                ))
            }
        }
    }

    fn ctl(&mut self, line: &str) -> Res<()> {
        self.write_line(&ns(QUEEN_CTL)?, line).map(|_| ())
    }

    fn help(&mut self) -> Reply {
        let mut text = String::from("verbs:\n");
        for (_, usage) in VERBS {
            text.push_str(&format!("  {usage}\n"));
        }
        text.push_str(
            "paths are absolute (no . or ..); quote with '…' or \"…\"; Ctrl-C stops a tail\n\
             scripts also take: EXPECT OK | EXPECT ERR | EXPECT SUBSTR <text> | EXPECT NOT <text> | WAIT <ms>\n",
        );
        self.emit_text(&text);
        let usages: Vec<&str> = VERBS.iter().map(|(_, u)| *u).collect();
        Reply::ok("HELP", None, json!(usages))
    }

    fn ping(&mut self) -> Res<Reply> {
        let root = self.root()?;
        let t0 = Instant::now();
        let fid = self.call("/", |c| c.walk(root, &[]))?;
        let rtt = t0.elapsed();
        self.call("/", |c| c.clunk(fid))?;
        let total = t0.elapsed();
        let (rtt_us, total_us) = (rtt.as_micros(), total.as_micros());
        Ok(Reply::ok(
            "PING",
            Some(format!("rtt_us={rtt_us}")),
            json!({ "rtt_us": rtt_us as u64, "walk_clunk_us": total_us as u64 }),
        ))
    }

    fn lifecycle(&mut self, cmd: Option<LifecycleCmd>) -> Res<Reply> {
        let state_path = ns(LIFECYCLE_STATE)?;
        match cmd {
            None => {
                let (data, _) = self.read_file(&state_path)?;
                let text = String::from_utf8_lossy(&data).into_owned();
                self.emit_text(&text);
                let state = first_word(&text);
                Ok(Reply::ok(
                    "LIFECYCLE",
                    Some(format!("state={}", state.unwrap_or("unknown"))),
                    json!({ "state": state, "text": text }),
                ))
            }
            Some(c) => {
                self.write_line(&ns(LIFECYCLE_CTL)?, c.as_str())?;
                // Best effort: report the state the command led to.
                let state = self
                    .read_file(&state_path)
                    .ok()
                    .and_then(|(d, _)| first_word(&String::from_utf8_lossy(&d)).map(str::to_owned));
                let mut detail = format!("cmd={}", c.as_str());
                if let Some(s) = &state {
                    detail.push_str(&format!(" state={s}"));
                }
                Ok(Reply::ok(
                    "LIFECYCLE",
                    Some(detail),
                    json!({ "cmd": c.as_str(), "state": state }),
                ))
            }
        }
    }

    fn models(&mut self) -> Res<Reply> {
        let available: Vec<String> = self
            .list(&ns(MODELS_AVAILABLE)?)?
            .into_iter()
            .map(|n| n.trim_end_matches('/').to_owned())
            .collect();
        let (data, _) = self.read_file(&ns(MODELS_ACTIVE)?)?;
        let text = String::from_utf8_lossy(&data);
        let active = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_owned);
        let mut out = String::new();
        for id in &available {
            let mark = if active.as_deref() == Some(id.as_str()) {
                '*'
            } else {
                ' '
            };
            out.push_str(&format!("{mark} {id}\n"));
        }
        if let Some(a) = &active
            && !available.contains(a)
        {
            out.push_str(&format!("* {a} (not in {MODELS_AVAILABLE})\n"));
        }
        self.emit_text(&out);
        Ok(Reply::ok(
            "MODELS",
            Some(format!(
                "available={} active={}",
                available.len(),
                active.as_deref().unwrap_or("none")
            )),
            json!({ "available": available, "active": active }),
        ))
    }

    fn tail(
        &mut self,
        verb: &str,
        path: &NsPath,
        follow: bool,
        timeout: Option<Duration>,
    ) -> Res<Reply> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let (st, stopped) = self.with_path(path, |s, fid, ctx| {
            let (qid, _) = s.open(fid, O_RDONLY, ctx)?;
            if qid.is_dir() {
                return Err(ShellError::errno(errno::EISDIR, ctx.to_owned()));
            }
            if follow && !qid.is_append() {
                return Err(ShellError::new(
                    "not-a-stream",
                    format!("{ctx} is not append-only: -f needs a stream (use cat)"),
                ));
            }
            let r = s.tail_body(verb, fid, qid.is_append(), follow, deadline, ctx);
            s.end_stream();
            r
        })?;
        Ok(Reply::ok(
            verb,
            Some(read_detail(path, &st, stopped)),
            json!({
                "path": path.to_string(),
                "bytes": st.bytes,
                "skipped": st.skipped,
                "offset": st.offset,
                "stopped": stopped,
            }),
        ))
    }

    fn tail_body(
        &mut self,
        verb: &str,
        fid: Fid,
        append: bool,
        follow: bool,
        deadline: Option<Instant>,
        ctx: &str,
    ) -> Res<(ReadStats, Option<&'static str>)> {
        let mut st = self.read_existing(fid, append, verb, Sink::Stream, ctx)?;
        if !follow {
            return Ok((st, None));
        }
        let stopped = self.follow(verb, fid, deadline, &mut st, ctx)?;
        Ok((st, Some(stopped)))
    }

    /// Keeps one read outstanding at the end of the stream until Ctrl-C or
    /// the deadline; then flushes it. Returns `interrupt` or `timeout`.
    fn follow(
        &mut self,
        verb: &str,
        fid: Fid,
        deadline: Option<Instant>,
        st: &mut ReadStats,
        ctx: &str,
    ) -> Res<&'static str> {
        let count = self.client.max_io().max(1);
        let mut resyncs = 0u32;
        loop {
            if self.cancel.is_fired() {
                return Ok("interrupt");
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok("timeout");
            }
            let req = Request::Read {
                fid: fid.0,
                offset: st.offset,
                count,
            };
            let tag = self.call(ctx, |c| c.send_request(&req))?;
            self.cancel.arm(deadline);
            let waited = loop {
                match self.client.recv_response() {
                    Ok((t, r)) if t == tag => break Ok(Some(r)),
                    // A late reply to an earlier, abandoned request.
                    Ok(_) => {}
                    Err(ClientError::Transport(e)) if e.is_interrupted() => break Ok(None),
                    Err(e) => break Err(e),
                }
            };
            self.cancel.disarm();
            let resp = match waited {
                Ok(Some(r)) => r,
                Ok(None) => {
                    let why = if self.cancel.is_fired() {
                        "interrupt"
                    } else {
                        "timeout"
                    };
                    if let Some(Response::Read { data }) = self.flush_tag(tag)?
                        && data.len() <= count as usize
                        && !data.is_empty()
                    {
                        self.emit_stream(verb, &data);
                        st.offset = st.offset.saturating_add(data.len() as u64);
                        st.bytes += data.len() as u64;
                    }
                    return Ok(why);
                }
                Err(e) => return Err(self.client_err(e, ctx)),
            };
            match resp {
                Response::Read { data } if data.len() > count as usize => {
                    return Err(ShellError::new(
                        "protocol",
                        format!("{ctx}: Rread longer than requested"),
                    ));
                }
                Response::Read { data } if data.is_empty() => self.pause(deadline),
                Response::Read { data } => {
                    self.emit_stream(verb, &data);
                    st.offset = st.offset.saturating_add(data.len() as u64);
                    st.bytes += data.len() as u64;
                    resyncs = 0;
                }
                Response::Lerror { ecode } if ecode == errno::ERANGE && resyncs < MAX_RESYNC => {
                    // Fell behind a wrapping ring: continue at its oldest byte.
                    resyncs += 1;
                    let end = self.append_end(fid, ctx)?.unwrap_or(st.offset);
                    let base = self.find_base(fid, st.offset, end, ctx)?;
                    st.skipped += base.saturating_sub(st.offset);
                    st.offset = base.max(st.offset);
                }
                Response::Lerror { ecode } => return Err(ShellError::errno(ecode, ctx.to_owned())),
                _ => {
                    return Err(ShellError::new(
                        "protocol",
                        format!("{ctx}: reply to Tread is not Rread"),
                    ));
                }
            }
        }
    }

    /// Sends Tflush for `tag` (bounded by [`FLUSH_TIMEOUT`] and Ctrl-C; a
    /// server that does not answer makes the session dead). Returns the
    /// original reply if it arrived first.
    fn flush_tag(&mut self, tag: u16) -> Res<Option<Response>> {
        self.cancel.clear();
        self.cancel.arm(Some(Instant::now() + FLUSH_TIMEOUT));
        let r = self.client.flush(tag);
        self.cancel.disarm();
        match r {
            Ok(orig) => Ok(orig),
            Err(ClientError::Transport(e)) if e.is_interrupted() => {
                let why = "the server did not answer Tflush".to_owned();
                self.dead = Some(why.clone());
                self.session = None;
                Err(ShellError::new("disconnected", why))
            }
            Err(e) => Err(self.client_err(e, "flush")),
        }
    }

    /// Sleeps up to [`EMPTY_READ_PAUSE`], returning early on Ctrl-C or the
    /// deadline.
    fn pause(&self, deadline: Option<Instant>) {
        let until = Instant::now() + EMPTY_READ_PAUSE;
        let until = deadline.map_or(until, |d| d.min(until));
        while Instant::now() < until && !self.cancel.is_fired() {
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sleeps `ms` (a script's `WAIT`); Ctrl-C ends it early.
    pub(crate) fn wait(&self, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < until && !self.cancel.is_fired() {
            let left = until.saturating_duration_since(Instant::now());
            thread::sleep(left.min(Duration::from_millis(10)));
        }
    }
}

fn read_detail(path: &NsPath, st: &ReadStats, stopped: Option<&str>) -> String {
    let mut d = format!("path={path} bytes={}", st.bytes);
    if st.skipped > 0 {
        d.push_str(&format!(" skipped={}", st.skipped));
    }
    if let Some(s) = stopped {
        d.push_str(&format!(" stopped={s}"));
    }
    d
}

fn first_word(s: &str) -> Option<&str> {
    s.split_whitespace().next()
}

fn ns(p: &str) -> Res<NsPath> {
    NsPath::parse(p).map_err(|e| ShellError::new("bad-path", e))
}

fn gpu_ctl(gpu: &str) -> Res<NsPath> {
    ns("/gpu")?
        .join(gpu)
        .and_then(|p| p.join("ctl"))
        .map_err(|e| ShellError::new("bad-path", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(errno::ENOENT), "ENOENT");
        assert_eq!(errno_name(errno::ELIMIT), "EDQUOT");
        assert_eq!(errno_name(128), "EKEYREVOKED");
        assert_eq!(errno_name(4242), "errno-4242");
    }
}
