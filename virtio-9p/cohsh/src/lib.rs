//! cohsh: the hive's shell, a Secure9P (9P2000.L) client.
//!
//! The binary (`src/main.rs`) only parses flags, connects and drives a
//! [`Shell`]; everything else is here so tests can run the shell over any
//! [`secure9p::client::Transport`], e.g. an in-process NineDoor.
//!
//! ```no_run
//! use cohsh::{CancelToken, Shell, connect::{connect, parse_target}};
//! use secure9p::client::Client;
//!
//! let cancel = CancelToken::new();
//! let transport = connect(&parse_target("unix:/run/coco/hive.sock")?, cancel.clone())?;
//! let client = Client::connect(transport, 8192).map_err(|e| e.to_string())?;
//! let mut shell = Shell::with_cancel(client, std::io::stdout(), false, cancel);
//! shell.attach("queen", "")?;
//! let outcome = shell.run_line("ls /worker");
//! assert!(!outcome.is_err());
//! let result = shell.run_script("cat /proc/lifecycle/state\nEXPECT SUBSTR ONLINE\n");
//! std::process::exit(result.exit_code());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Replies (text mode)
//! Every command prints its output, then **exactly one status line**, which
//! is always the last line of the reply:
//!
//! ```text
//! OK <VERB>[ <detail>]
//! ERR <VERB> reason=<reason>[ detail=<text>]
//! ```
//!
//! `<VERB>` is the command's verb in uppercase (`LS`, `CAT`, `TAIL`, `LOG`,
//! `ECHO`, `PING`, `SPAWN`, `KILL`, `BIND`, `MOUNT`, `LIFECYCLE`, `LEASE`,
//! `RELEASE`, `MODELS`, `ATTACH`, `DETACH`, `HELP`, `QUIT`; `UNKNOWN` for an
//! unknown verb). On success `<detail>` is space-separated `key=value` words
//! (e.g. `OK LS path=/worker entries=2`, `OK CAT path=/proc/boot bytes=812`,
//! `OK PING rtt_us=41`, `OK TAIL path=/log/queen.log bytes=93 stopped=interrupt`).
//! On failure `<reason>` is one word: the errno name the server answered
//! (`ENOENT`, `EPERM` — a scope denial, `EDQUOT` — coco's ELIMIT,
//! `EKEYREJECTED`, `EKEYEXPIRED`, `ESPIPE`, `EINVAL`, …; `errno-<n>` for
//! an unnamed one) or one of cohsh's own: `usage`, `syntax`, `bad-path`,
//! `unknown-verb`, `not-attached`, `disconnected`, `not-a-stream`,
//! `too-long`, `too-large`, `short-write`, `protocol`, `invalid`, `limit`,
//! `encode`. The `detail=` text runs to the end of the line (control
//! characters escaped). Output that does not end in a newline gets one
//! before the status line.
//!
//! **Streams** (`tail`, `log`) print their data as it arrives, then a line
//! `END`, then the status line. `END` is printed whenever the file was
//! opened (also when the stream then fails), not when the command failed
//! before (e.g. `ENOENT`). `tail -f` and `log` stop on Ctrl-C
//! (`stopped=interrupt`) or after `-t <ms>` (`stopped=timeout`): the
//! outstanding read is flushed with Tflush and the reply is `OK`.
//!
//! # Replies (`--json`)
//! Each reply is **one JSON object on one line**:
//!
//! ```text
//! {"verb":"LS","ok":true,"reason":null,"detail":"path=/worker entries=2","data":["worker-1/","worker-2/"]}
//! {"verb":"CAT","ok":false,"reason":"ENOENT","detail":"/nope","data":null}
//! ```
//!
//! The keys are always present: `verb` (as above), `ok`, `reason` (null when
//! ok), `detail` (the status-line detail, or null), `data` (null unless
//! listed): `ls` an array of names (directories end in `/`); `cat` the text
//! (lossy UTF-8); `tail`/`log` `{"path","bytes","skipped","offset","stopped"}`;
//! `ping` `{"rtt_us","walk_clunk_us"}`; `lifecycle` `{"state","text"}` or
//! `{"cmd","state"}`; `models` `{"available":[..],"active":id|null}`;
//! `models activate` `{"active"}`; `spawn`/`kill`/`bind`/`mount`/`lease`/
//! `release` the line written; `attach`/`detach` `{"role"}`; `help` the
//! usage lines. A stream emits, before its reply object, one object per
//! chunk received: `{"verb":"TAIL","stream":"<text>"}` (no `ok` key; no
//! `END` object). Script diagnostics are objects with `verb` `EXPECT` or
//! `SCRIPT` and `ok: false`.
//!
//! # Scripts (`.coh`; also every `-c` and a piped stdin)
//! * One command per line. Blank lines and lines whose first non-blank
//!   character is `#` are skipped (a `#` later in a line is ordinary text).
//! * `EXPECT OK` / `EXPECT ERR`: the most recent command's status was OK /
//!   ERR. `EXPECT SUBSTR <text>` / `EXPECT NOT <text>`: the most recent
//!   command's full text reply (output + status line; the text form even
//!   with `--json`; output capped at [`reply::CAPTURE_LIMIT`]) does / does
//!   not contain `<text>` — the rest of the line, trimmed, literally.
//!   Several EXPECTs may follow one command; `WAIT` between them does not
//!   change what they check. An EXPECT before any command fails.
//! * `WAIT <ms>` sleeps (0..=600000; Ctrl-C ends it early).
//! * Directive words are exact and uppercase; the whole script is parsed
//!   first, and a malformed directive prints `SCRIPT ERROR at line N: …` and
//!   runs nothing (exit status 2).
//! * The first failed EXPECT prints
//!   `EXPECT FAILED at line N: <directive> (got: <status line>)` and stops
//!   the script (exit status 1).
//! * A failed command does not stop the script (its ERR line is printed),
//!   but the exit status is 1 unless an `EXPECT ERR` follows it before the
//!   next command. Only `EXPECT ERR` does that.
//! * `quit` stops the script; the status is computed as at the end.
//!
//! # Exit statuses (the binary)
//! 0 success; 1 a failed command or EXPECT (scripts, `-c`), or a ticket that
//! does not verify; 2 usage errors (bad flags, connect string, role, script
//! syntax, unreadable script or ticket file); 3 could not connect, negotiate
//! the version or attach. Interactive sessions exit 0.
//!
//! # Writes
//! `echo`, `spawn`, `kill`, `bind`, `mount`, `lifecycle <cmd>`, `lease`,
//! `release` and `models activate` each send **one** Twrite of the line plus
//! `"\n"` (longer than the session's I/O size is refused as `too-long`): at
//! offset `u64::MAX` when the opened file's qid is `QTAPPEND`, else at 0.
//!
//! # Reads
//! `cat`/`tail` on an append-only file read from its oldest retained byte
//! (found by bisection if offset 0 is `ERANGE`, i.e. dropped by the ring;
//! the loss is reported as `skipped=N`) up to its size at the start, so they
//! never wait at the end; `tail -f` then keeps one read outstanding at the
//! end (the server answers when data arrives; an immediate empty answer is
//! retried every 200 ms). `tail -f` on a file that is not append-only is
//! refused (`not-a-stream`).

pub mod cancel;
pub mod connect;
pub mod parse;
pub mod reply;
pub mod script;
pub mod shell;
pub mod ticket_cli;

pub use cancel::{CancelToken, Interruptible};
pub use parse::{Command, NsPath, parse_command};
pub use reply::Reply;
pub use script::{Script, ScriptResult, parse_script};
pub use shell::{Outcome, Shell, ShellError};

#[cfg(test)]
#[path = "../tests/support/fake_server.rs"]
mod fake_server;

#[cfg(test)]
mod tests;
