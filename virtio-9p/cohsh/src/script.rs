//! `.coh` scripts: commands plus `EXPECT` and `WAIT` directives.
//!
//! See the crate docs for the exact semantics; in short:
//! * One command per line; blank lines and lines whose first non-blank
//!   character is `#` are skipped (a `#` later in a line is text).
//! * `EXPECT OK`, `EXPECT ERR`, `EXPECT SUBSTR <text>`, `EXPECT NOT <text>`
//!   check the reply of the most recent command (its text form: output and
//!   status line, whatever the output mode). `<text>` is the rest of the
//!   line, trimmed, taken literally.
//! * `WAIT <ms>` sleeps (at most [`MAX_WAIT_MS`]; Ctrl-C ends it early).
//! * The whole script is parsed before anything runs: a malformed directive
//!   is a syntax error (exit status 2) and nothing runs.
//! * The first failed `EXPECT` stops the script (exit status 1).
//! * A command that fails does not stop the script, but the exit status is
//!   1 unless an `EXPECT ERR` follows it (before the next command).
//! * `quit` stops the script; the status is computed as at the end.

use std::fmt::{self, Write as _};
use std::io::Write;

use secure9p::client::Transport;
use serde_json::json;

use crate::cancel::Interruptible;
use crate::reply::Reply;
use crate::shell::Shell;

/// Longest `WAIT` (10 minutes).
pub const MAX_WAIT_MS: u64 = 600_000;

/// A check on the previous reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `EXPECT OK`: the status was OK.
    Ok,
    /// `EXPECT ERR`: the status was ERR (this also "consumes" the failure).
    Err,
    /// `EXPECT SUBSTR <text>`: the reply text contains `<text>`.
    Substr(String),
    /// `EXPECT NOT <text>`: the reply text does not contain `<text>`.
    Not(String),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Ok => f.write_str("EXPECT OK"),
            Expect::Err => f.write_str("EXPECT ERR"),
            Expect::Substr(t) => write!(f, "EXPECT SUBSTR {t}"),
            Expect::Not(t) => write!(f, "EXPECT NOT {t}"),
        }
    }
}

impl Expect {
    /// Whether `reply` satisfies the check.
    #[must_use]
    pub fn check(&self, reply: &Reply) -> bool {
        match self {
            Expect::Ok => reply.ok,
            Expect::Err => !reply.ok,
            Expect::Substr(t) => reply.text().contains(t.as_str()),
            Expect::Not(t) => !reply.text().contains(t.as_str()),
        }
    }
}

/// One meaningful script line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A shell command (parsed when it runs, so its syntax errors are ERR
    /// replies like in interactive use).
    Command(String),
    /// A check on the previous reply.
    Expect(Expect),
    /// `WAIT <ms>`.
    Wait(u64),
}

/// A parsed script: steps with their 1-based line numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// `(line number, step)`.
    pub steps: Vec<(usize, Step)>,
}

/// A malformed directive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("script syntax error at line {line}: {message}")]
pub struct ScriptSyntaxError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a script (see the module docs). Directives are recognised by an
/// exact, uppercase first word `EXPECT` or `WAIT`.
pub fn parse_script(text: &str) -> Result<Script, ScriptSyntaxError> {
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (first, rest) = match line.split_once(char::is_whitespace) {
            Some((f, r)) => (f, r.trim()),
            None => (line, ""),
        };
        let err = |message: String| ScriptSyntaxError {
            line: line_no,
            message,
        };
        let step = match first {
            "EXPECT" => {
                let (kind, arg) = match rest.split_once(char::is_whitespace) {
                    Some((k, a)) => (k, a.trim()),
                    None => (rest, ""),
                };
                match (kind, arg) {
                    ("OK", "") => Step::Expect(Expect::Ok),
                    ("ERR", "") => Step::Expect(Expect::Err),
                    ("SUBSTR", t) if !t.is_empty() => Step::Expect(Expect::Substr(t.to_owned())),
                    ("NOT", t) if !t.is_empty() => Step::Expect(Expect::Not(t.to_owned())),
                    ("OK" | "ERR", _) => {
                        return Err(err(format!("EXPECT {kind} takes no argument")));
                    }
                    ("SUBSTR" | "NOT", _) => {
                        return Err(err(format!("EXPECT {kind} needs a text")));
                    }
                    _ => {
                        return Err(err(format!(
                            "unknown EXPECT form {kind:?} (OK, ERR, SUBSTR <text>, NOT <text>)"
                        )));
                    }
                }
            }
            "WAIT" => match rest.parse::<u64>() {
                Ok(ms) if ms <= MAX_WAIT_MS => Step::Wait(ms),
                _ => {
                    return Err(err(format!(
                        "WAIT takes 0..={MAX_WAIT_MS} milliseconds, got {rest:?}"
                    )));
                }
            },
            _ => Step::Command(line.to_owned()),
        };
        steps.push((line_no, step));
    }
    Ok(Script { steps })
}

/// A failed `EXPECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectFailure {
    /// Line of the `EXPECT`.
    pub line: usize,
    /// The directive.
    pub expect: Expect,
    /// The status line it was checked against (`None`: no command had run).
    pub status: Option<String>,
}

impl fmt::Display for ExpectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EXPECT FAILED at line {}: {}", self.line, self.expect)?;
        match &self.status {
            Some(s) => write!(f, " (got: {s})"),
            None => f.write_str(" (no command before it)"),
        }
    }
}

/// What a script run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScriptResult {
    /// Commands run.
    pub commands: usize,
    /// The syntax error that kept the script from running.
    pub syntax_error: Option<ScriptSyntaxError>,
    /// The failed `EXPECT` that stopped it.
    pub failed_expect: Option<ExpectFailure>,
    /// Lines of failed commands not followed by an `EXPECT ERR`.
    pub unexpected_errors: Vec<usize>,
    /// Whether `quit` ended it.
    pub quit: bool,
}

impl ScriptResult {
    /// The process exit status: 2 for a syntax error, 1 for a failed
    /// `EXPECT` or an unexpected command failure, else 0.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        if self.syntax_error.is_some() {
            2
        } else if self.failed_expect.is_some() || !self.unexpected_errors.is_empty() {
            1
        } else {
            0
        }
    }

    /// Whether the script succeeded.
    #[must_use]
    pub fn success(&self) -> bool {
        self.exit_code() == 0
    }
}

impl<T, W> Shell<T, W>
where
    T: Transport,
    T::Error: Interruptible + fmt::Display,
    W: Write,
{
    /// Parses and runs a script. A syntax error is printed
    /// (`SCRIPT ERROR at line N: …`) and nothing runs.
    pub fn run_script(&mut self, text: &str) -> ScriptResult {
        match parse_script(text) {
            Ok(script) => self.run_parsed_script(&script),
            Err(e) => {
                let msg = format!("SCRIPT ERROR at line {}: {}", e.line, e.message);
                self.print_event(
                    &msg,
                    &json!({
                        "verb": "SCRIPT", "ok": false, "reason": "syntax",
                        "detail": msg, "data": { "line": e.line },
                    }),
                );
                ScriptResult {
                    syntax_error: Some(e),
                    ..ScriptResult::default()
                }
            }
        }
    }

    /// Runs a parsed script (see the module docs).
    pub fn run_parsed_script(&mut self, script: &Script) -> ScriptResult {
        let mut result = ScriptResult::default();
        let mut last: Option<Reply> = None;
        // Line of the last command if it failed and no EXPECT ERR followed yet.
        let mut pending_err: Option<usize> = None;
        for (line, step) in &script.steps {
            match step {
                Step::Command(text) => {
                    if let Some(l) = pending_err.take() {
                        result.unexpected_errors.push(l);
                    }
                    let outcome = self.run_line(text);
                    result.commands += 1;
                    if let Some(r) = outcome.reply() {
                        if !r.ok {
                            pending_err = Some(*line);
                        }
                        last = Some(r.clone());
                    }
                    if outcome.is_quit() {
                        result.quit = true;
                        break;
                    }
                }
                Step::Wait(ms) => {
                    self.cancel_token().clear();
                    self.wait(*ms);
                }
                Step::Expect(e) => {
                    let passed = last.as_ref().is_some_and(|r| e.check(r));
                    if passed {
                        if *e == Expect::Err {
                            pending_err = None;
                        }
                        continue;
                    }
                    let failure = ExpectFailure {
                        line: *line,
                        expect: e.clone(),
                        status: last.as_ref().map(Reply::status_line),
                    };
                    let mut text = failure.to_string();
                    if let (Expect::Substr(_) | Expect::Not(_), Some(r)) = (e, &last)
                        && !r.output.is_empty()
                    {
                        let _ = write!(text, "; output was {} bytes", r.output.len());
                    }
                    self.print_event(
                        &text,
                        &json!({
                            "verb": "EXPECT", "ok": false, "reason": "expect-failed",
                            "detail": text,
                            "data": { "line": line, "expect": e.to_string(), "status": failure.status },
                        }),
                    );
                    result.failed_expect = Some(failure);
                    break;
                }
            }
        }
        if let Some(l) = pending_err {
            result.unexpected_errors.push(l);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        let s = parse_script(
            "# comment\n\nls /\n  EXPECT OK\nEXPECT ERR\nEXPECT SUBSTR worker-1/\nEXPECT NOT  a  b \nWAIT 25\necho # not a comment > /p\n",
        )
        .expect("valid");
        assert_eq!(
            s.steps,
            vec![
                (3, Step::Command("ls /".into())),
                (4, Step::Expect(Expect::Ok)),
                (5, Step::Expect(Expect::Err)),
                (6, Step::Expect(Expect::Substr("worker-1/".into()))),
                (7, Step::Expect(Expect::Not("a  b".into()))),
                (8, Step::Wait(25)),
                (9, Step::Command("echo # not a comment > /p".into())),
            ]
        );
    }

    #[test]
    fn syntax_errors() {
        for (text, line) in [
            ("ls\nEXPECT", 2),
            ("EXPECT MAYBE", 1),
            ("EXPECT OK please", 1),
            ("EXPECT ERR x", 1),
            ("EXPECT SUBSTR", 1),
            ("EXPECT NOT   ", 1),
            ("\n\nWAIT", 3),
            ("WAIT soon", 1),
            ("WAIT -1", 1),
            ("WAIT 600001", 1),
        ] {
            let e = parse_script(text).expect_err(text);
            assert_eq!(e.line, line, "{text}");
        }
        // Lowercase directive words are commands (which then fail as unknown verbs).
        assert_eq!(
            parse_script("expect ok").expect("ok").steps,
            vec![(1, Step::Command("expect ok".into()))]
        );
    }

    #[test]
    fn expect_checks() {
        let mut ok = Reply::ok(
            "CAT",
            Some("path=/x bytes=3".into()),
            serde_json::Value::Null,
        );
        ok.output = "hi\n".into();
        let err = Reply::err("CAT", "ENOENT", Some("/y".into()));
        assert!(Expect::Ok.check(&ok) && !Expect::Ok.check(&err));
        assert!(Expect::Err.check(&err) && !Expect::Err.check(&ok));
        assert!(Expect::Substr("hi".into()).check(&ok));
        assert!(Expect::Substr("OK CAT path=/x".into()).check(&ok));
        assert!(Expect::Substr("reason=ENOENT".into()).check(&err));
        assert!(!Expect::Substr("bye".into()).check(&ok));
        assert!(Expect::Not("bye".into()).check(&ok));
        assert!(!Expect::Not("hi".into()).check(&ok));
    }

    #[test]
    fn exit_codes() {
        let mut r = ScriptResult::default();
        assert_eq!(r.exit_code(), 0);
        r.unexpected_errors.push(3);
        assert_eq!(r.exit_code(), 1);
        r.syntax_error = Some(ScriptSyntaxError {
            line: 1,
            message: String::new(),
        });
        assert_eq!(r.exit_code(), 2);
    }
}
