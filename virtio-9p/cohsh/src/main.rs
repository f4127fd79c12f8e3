//! cohsh: the hive's shell. Flags, connection and the interactive loop; the
//! shell itself is the `cohsh` library (see its docs for reply formats,
//! script semantics and exit statuses).

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand};
use cohsh::connect::{Target, connect, parse_target};
use cohsh::ticket_cli::{self, MintSpec};
use cohsh::{CancelToken, Shell, parse_script};
use rustyline::error::ReadlineError;
use secure9p::client::Client;
use secure9p::limits::DEFAULT_MSIZE;
use secure9p::ticket::split_uname;

/// Exit status: a command or EXPECT failed.
const EXIT_FAILED: u8 = 1;
/// Exit status: bad usage.
const EXIT_USAGE: u8 = 2;
/// Exit status: could not connect or attach.
const EXIT_CONNECT: u8 = 3;

/// cohsh — the hive's shell (a Secure9P client).
///
/// Interactive when stdin is a terminal and neither -c nor a script is
/// given; otherwise runs the commands (-c, a script file, or stdin) as a
/// script. Exit status: 0 ok, 1 a command/EXPECT failed, 2 usage, 3 could
/// not connect or attach.
#[derive(Parser, Debug)]
#[command(name = "cohsh", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    sub: Option<Sub>,

    /// Where the hive listens: unix:<path> or tcp:<loopback-ip>:<port>.
    #[arg(long, env = "COHSH_CONNECT", value_name = "TARGET")]
    connect: Option<String>,

    /// Attach as: queen, worker-heartbeat:<id>, worker-gpu:<id>.
    #[arg(long, default_value = "queen")]
    role: String,

    /// Ticket text (visible in `ps`; prefer --ticket-file).
    #[arg(long, conflicts_with = "ticket_file", value_name = "TEXT")]
    ticket: Option<String>,

    /// File holding the ticket text.
    #[arg(long, value_name = "FILE")]
    ticket_file: Option<PathBuf>,

    /// Largest 9P message to negotiate (512..=65536).
    #[arg(long, default_value_t = DEFAULT_MSIZE, value_parser = clap::value_parser!(u32).range(512..=65536))]
    msize: u32,

    /// One JSON object per reply line.
    #[arg(long, global = true)]
    json: bool,

    /// Run this command (repeatable; the commands form a script, so EXPECT
    /// and WAIT lines are allowed).
    #[arg(short = 'c', value_name = "COMMAND", conflicts_with_all = ["script", "script_path"])]
    commands: Vec<String>,

    /// Run this script file (`-` for stdin).
    #[arg(long = "script", value_name = "FILE", conflicts_with = "script_path")]
    script: Option<PathBuf>,

    /// Script file to run (`-` for stdin).
    #[arg(value_name = "SCRIPT")]
    script_path: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Mint or decode tickets.
    #[command(subcommand)]
    Ticket(TicketCmd),
}

#[derive(Subcommand, Debug)]
enum TicketCmd {
    /// Print a new ticket.
    Mint(MintArgs),
    /// Decode a ticket (and verify it when a secret is given).
    Inspect(InspectArgs),
}

#[derive(Args, Debug)]
struct SecretArgs {
    /// The role secret.
    #[arg(long, conflicts_with = "secret_file")]
    secret: Option<String>,
    /// File holding the role secret (trailing newline ignored).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct MintArgs {
    /// queen, worker-heartbeat (heartbeat), worker-gpu (gpu), worker-bus, worker-lora.
    #[arg(long)]
    role: String,
    /// Subject, e.g. worker-3.
    #[arg(long)]
    subject: Option<String>,
    #[command(flatten)]
    secret: SecretArgs,
    /// Lifetime in seconds (default: the role's).
    #[arg(long)]
    ttl: Option<u64>,
    /// Operation budget (default: the role's).
    #[arg(long)]
    ops: Option<u64>,
    /// Tick budget (default: the role's).
    #[arg(long)]
    ticks: Option<u64>,
    /// <path>:<read|write|rw>[:<rate_per_s>] (repeatable, at most 16).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Issue time in ms since the epoch (default: now).
    #[arg(long, value_name = "MS")]
    issued_at_ms: Option<u64>,
}

#[derive(Args, Debug)]
struct InspectArgs {
    /// The ticket text (`-` reads it from stdin).
    text: String,
    #[command(flatten)]
    secret: SecretArgs,
}

/// An error with the exit status it maps to.
struct Failure {
    code: u8,
    err: anyhow::Error,
}

fn fail(code: u8, err: anyhow::Error) -> Failure {
    Failure { code, err }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print and succeed; real usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let code = match run(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("cohsh: {:#}", f.err);
            f.code
        }
    };
    let _ = io::stdout().flush();
    ExitCode::from(code)
}

fn run(cli: Cli) -> Result<u8, Failure> {
    if let Some(Sub::Ticket(cmd)) = cli.sub {
        return ticket(cmd, cli.json);
    }
    let usage = |e: anyhow::Error| fail(EXIT_USAGE, e);
    let connect_str = cli.connect.as_deref().ok_or_else(|| {
        usage(anyhow!(
            "--connect is required (unix:<path> or tcp:<loopback-ip>:<port>)"
        ))
    })?;
    let target = parse_target(connect_str).map_err(|e| usage(e.into()))?;
    if split_uname(&cli.role).is_none() {
        return Err(usage(anyhow!(
            "bad --role {:?} (queen, worker-heartbeat:<id>, worker-gpu:<id>)",
            cli.role
        )));
    }
    let ticket = match (&cli.ticket, &cli.ticket_file) {
        (Some(t), _) => t.trim().to_owned(),
        (None, Some(f)) => read_trimmed(f).map_err(usage)?,
        (None, None) => String::new(),
    };

    // Decide the mode and parse any script before connecting.
    let script_text = if !cli.commands.is_empty() {
        Some(cli.commands.join("\n"))
    } else if let Some(p) = cli.script.as_ref().or(cli.script_path.as_ref()) {
        Some(read_script(p).map_err(usage)?)
    } else if !io::stdin().is_terminal() {
        Some(read_script(Path::new("-")).map_err(usage)?)
    } else {
        None
    };
    if let Some(text) = &script_text
        && let Err(e) = parse_script(text)
    {
        return Err(usage(e.into()));
    }

    let cancel = CancelToken::new();
    let mut shell = open_shell(
        &target,
        &cli.role,
        &ticket,
        cli.msize,
        cli.json,
        cancel.clone(),
    )?;
    install_sigint(&cancel)?;

    match script_text {
        Some(text) => {
            let r = shell.run_script(&text);
            Ok(u8::try_from(r.exit_code()).unwrap_or(EXIT_FAILED))
        }
        None => {
            interactive(&mut shell, &target).map_err(|e| fail(EXIT_FAILED, e))?;
            Ok(0)
        }
    }
}

type StdShell = Shell<cohsh::connect::StreamTransport<cohsh::connect::Conn>, io::Stdout>;

fn open_shell(
    target: &Target,
    role: &str,
    ticket: &str,
    msize: u32,
    json: bool,
    cancel: CancelToken,
) -> Result<StdShell, Failure> {
    let conn = |e: anyhow::Error| fail(EXIT_CONNECT, e);
    let transport = connect(target, cancel.clone())
        .with_context(|| format!("cannot connect to {target}"))
        .map_err(conn)?;
    let client = Client::connect(transport, msize)
        .map_err(|e| conn(anyhow!("version negotiation with {target} failed: {e}")))?;
    let mut shell = Shell::with_cancel(client, io::stdout(), json, cancel);
    shell
        .attach(role, ticket)
        .map_err(|e| conn(anyhow!("attach as {role} to {target} failed: {e}")))?;
    Ok(shell)
}

/// Ctrl-C fires the token (stopping a `tail -f`, `log` or `WAIT`). A second
/// Ctrl-C within a second, or one while a command that cannot be cancelled
/// is still running after an earlier Ctrl-C, ends cohsh with status 130.
fn install_sigint(cancel: &CancelToken) -> Result<(), Failure> {
    let token = cancel.clone();
    let mut last: Option<Instant> = None;
    ctrlc::set_handler(move || {
        let armed = token.is_armed();
        let quick = last.is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        last = Some(Instant::now());
        if armed && io::stdout().is_terminal() {
            // The terminal echoed "^C" without a newline; keep END on its own line.
            println!();
        }
        if (token.fire() && !armed) || quick {
            let _ = io::stdout().flush();
            eprintln!("\ncohsh: interrupted");
            std::process::exit(130);
        }
    })
    .map_err(|e| {
        fail(
            EXIT_FAILED,
            anyhow!("cannot install the Ctrl-C handler: {e}"),
        )
    })
}

fn history_path() -> Option<PathBuf> {
    let abs = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").and_then(abs) {
        return Some(state.join("cohsh").join("history"));
    }
    std::env::var_os("HOME")
        .and_then(abs)
        .map(|h| h.join(".cohsh_history"))
}

/// Lines not to keep in the history file: an `attach` with a ticket (a
/// bearer token).
fn keep_in_history(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    !(words
        .first()
        .is_some_and(|w| w.eq_ignore_ascii_case("attach"))
        && words.len() > 2)
}

fn interactive(shell: &mut StdShell, target: &Target) -> anyhow::Result<()> {
    let mut rl = rustyline::DefaultEditor::new().context("cannot start line editing")?;
    let history = history_path();
    if let Some(h) = &history {
        // A missing history file is normal.
        let _ = rl.load_history(h);
    }
    eprintln!(
        "cohsh: connected to {target} as {} (msize {}); help lists the verbs, Ctrl-D quits",
        shell.attached_as().unwrap_or("-"),
        shell.client().msize()
    );
    loop {
        match rl.readline("coh> ") {
            Ok(line) => {
                if !line.trim().is_empty() && keep_in_history(&line) {
                    let _ = rl.add_history_entry(line.as_str());
                }
                if shell.run_line(&line).is_quit() {
                    break;
                }
            }
            // Ctrl-C at the prompt just clears the line.
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading the command line"),
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = rl.save_history(h) {
            eprintln!("cohsh: cannot save history to {}: {e}", h.display());
        }
    }
    Ok(())
}

fn read_script(p: &Path) -> anyhow::Result<String> {
    if p == Path::new("-") {
        let mut s = String::new();
        io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the script from stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(p).with_context(|| format!("cannot read script {}", p.display()))
}

fn read_trimmed(p: &Path) -> anyhow::Result<String> {
    let s = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    Ok(s.trim().to_owned())
}

fn secret(args: &SecretArgs) -> Result<Option<Vec<u8>>, Failure> {
    match (&args.secret, &args.secret_file) {
        (Some(s), _) => Ok(Some(s.as_bytes().to_vec())),
        (None, Some(f)) => {
            let s = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))
                .map_err(|e| fail(EXIT_USAGE, e))?;
            let s = s.strip_suffix('\n').unwrap_or(&s);
            let s = s.strip_suffix('\r').unwrap_or(s);
            Ok(Some(s.as_bytes().to_vec()))
        }
        (None, None) => Ok(None),
    }
}

fn ticket(cmd: TicketCmd, json: bool) -> Result<u8, Failure> {
    let usage = |e: anyhow::Error| fail(EXIT_USAGE, e);
    match cmd {
        TicketCmd::Mint(a) => {
            let role = ticket_cli::parse_role(&a.role).map_err(|e| usage(e.into()))?;
            let scopes = a
                .scopes
                .iter()
                .map(|s| ticket_cli::parse_scope(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| usage(e.into()))?;
            let secret = secret(&a.secret)?
                .ok_or_else(|| usage(anyhow!("ticket mint needs --secret or --secret-file")))?;
            let spec = MintSpec {
                role,
                subject: a.subject,
                issued_at_ms: a.issued_at_ms.unwrap_or_else(ticket_cli::now_ms),
                ttl_s: a.ttl,
                ops: a.ops,
                ticks: a.ticks,
                scopes,
            };
            let text = ticket_cli::mint(&spec, &secret).map_err(|e| usage(e.into()))?;
            if json {
                println!("{}", serde_json::json!({ "ticket": text }));
            } else {
                println!("{text}");
            }
            Ok(0)
        }
        TicketCmd::Inspect(a) => {
            let text = if a.text == "-" {
                read_script(Path::new("-")).map_err(usage)?
            } else {
                a.text.clone()
            };
            let secret = secret(&a.secret)?;
            let now = ticket_cli::now_ms();
            let i = ticket_cli::inspect(&text, secret.as_deref())
                .map_err(|e| fail(EXIT_FAILED, anyhow!("ticket refused: {e}")))?;
            if json {
                println!("{}", i.to_json(now));
            } else {
                print!("{}", i.render_text(now));
            }
            Ok(0)
        }
    }
}
