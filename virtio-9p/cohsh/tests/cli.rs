//! The cohsh binary: flags, exit statuses, tickets, and whole runs against
//! the fake server on a real Unix socket / loopback TCP listener.

#[path = "support/fake_server.rs"]
mod fake_server;

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use fake_server::{FAKE_SECRET, FakeServer, serve_stream, serve_tcp};

fn cohsh() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cohsh"));
    // Never pick up the developer's environment.
    c.env_remove("COHSH_CONNECT")
        .env("HOME", "/nonexistent")
        .env_remove("XDG_STATE_HOME")
        .stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("run cohsh");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A fake hive on a Unix socket in a temp dir (accepts forever).
struct Hive {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    server: Arc<Mutex<FakeServer>>,
}

impl Hive {
    fn start() -> Hive {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("hive.sock");
        let listener = UnixListener::bind(&sock).expect("bind");
        let server = Arc::new(Mutex::new(FakeServer::new()));
        let s2 = server.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s3 = s2.clone();
                thread::spawn(move || serve_stream(s3, conn));
            }
        });
        Hive {
            _dir: dir,
            sock,
            server,
        }
    }

    fn connect(&self) -> String {
        format!("unix:{}", self.sock.display())
    }

    fn cmd(&self) -> Command {
        let mut c = cohsh();
        c.arg("--connect").arg(self.connect());
        c
    }
}

#[test]
fn help_and_version_succeed() {
    let (code, out, _) = run(cohsh().arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("--connect"));
    let (code, _, _) = run(cohsh().arg("--version"));
    assert_eq!(code, 0);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["-c", "ls"],
        vec!["--connect", "tcp:10.1.2.3:5640", "-c", "ls"],
        vec!["--connect", "tcp:example.com:5640", "-c", "ls"],
        vec!["--connect", "garbage", "-c", "ls"],
        vec!["--connect", "tcp:127.0.0.1", "-c", "ls"],
        vec!["--connect", "unix:", "-c", "ls"],
        vec![
            "--connect",
            "unix:/nonexistent/x.sock",
            "--role",
            "king",
            "-c",
            "ls",
        ],
        vec![
            "--connect",
            "unix:/nonexistent/x.sock",
            "--msize",
            "10",
            "-c",
            "ls",
        ],
        vec!["--connect", "unix:/nonexistent/x.sock", "--bogus-flag"],
        vec![
            "--connect",
            "unix:/nonexistent/x.sock",
            "-c",
            "ls",
            "script.coh",
        ],
        // Script syntax is checked before connecting (else this would be 3).
        vec![
            "--connect",
            "unix:/nonexistent/x.sock",
            "-c",
            "EXPECT NOTHING",
        ],
        vec![
            "--connect",
            "unix:/nonexistent/x.sock",
            "/nonexistent/script.coh",
        ],
        vec![
            "--connect",
            "unix:/nonexistent/x.sock",
            "--ticket-file",
            "/nonexistent/t",
            "-c",
            "ls",
        ],
    ] {
        let (code, _, err) = run(cohsh().args(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.is_empty(), "{args:?}: a message on stderr");
    }
    let (_, _, err) = run(cohsh().args(["--connect", "tcp:10.1.2.3:5640", "-c", "ls"]));
    assert!(
        err.contains("refusing non-loopback TCP address 10.1.2.3"),
        "{err}"
    );
}

#[test]
fn connection_failures_exit_3() {
    let (code, _, err) =
        run(cohsh().args(["--connect", "unix:/nonexistent/hive.sock", "-c", "ls"]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("cannot connect to unix:/nonexistent/hive.sock"),
        "{err}"
    );
    // A loopback port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (code, _, _) =
        run(cohsh().args(["--connect", &format!("tcp:127.0.0.1:{port}"), "-c", "ls"]));
    assert_eq!(code, 3);
    // Attach refused: a worker without a ticket.
    let hive = Hive::start();
    let (code, _, err) = run(hive
        .cmd()
        .args(["--role", "worker-heartbeat:worker-1", "-c", "ls"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("EKEYREJECTED"), "{err}");
}

#[test]
fn one_shot_commands_and_exit_statuses() {
    let hive = Hive::start();
    let (code, out, err) =
        run(hive
            .cmd()
            .args(["-c", "ls /worker", "-c", "cat /proc/lifecycle/state"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "worker-1/\nOK LS path=/worker entries=1\nONLINE\nOK CAT path=/proc/lifecycle/state bytes=7\n"
    );
    let (code, out, _) = run(hive.cmd().args(["-c", "cat /nope", "-c", "ls /"]));
    assert_eq!(code, 1);
    assert!(out.contains("ERR CAT reason=ENOENT detail=/nope\n"));
    assert!(
        out.contains("OK LS path=/ entries=5\n"),
        "later commands still run"
    );
    let (code, _, _) = run(hive.cmd().args(["-c", "cat /nope", "-c", "EXPECT ERR"]));
    assert_eq!(code, 0);
    let (code, out, _) = run(hive
        .cmd()
        .args(["-c", "ls /", "-c", "EXPECT SUBSTR nothing"]));
    assert_eq!(code, 1);
    assert!(out.contains("EXPECT FAILED at line 2: EXPECT SUBSTR nothing"));
    let (code, out, _) = run(hive.cmd().args(["--json", "-c", "ls /worker"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(v["data"], serde_json::json!(["worker-1/"]));
    // A bounded follow through the binary: -t stops it with a Tflush.
    let (code, out, _) = run(hive
        .cmd()
        .args(["-c", "tail -f -t 200 /worker/worker-1/telemetry"]));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "END\nOK TAIL path=/worker/worker-1/telemetry bytes=0 stopped=timeout\n"
    );
    assert!(hive.server.lock().expect("lock").flushed_parked >= 1);
}

#[test]
fn scripts_from_files_and_stdin() {
    let hive = Hive::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = |name: &str, text: &str| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write script");
        p
    };
    let ok = script(
        "ok.coh",
        "# spawn and check the log\nspawn heartbeat ticks=3\nEXPECT OK\nWAIT 5\ncat /log/queen.log\nEXPECT SUBSTR spawned worker-2\nkill worker-2\nEXPECT OK\nls /worker\nEXPECT NOT worker-2\n",
    );
    let (code, out, err) = run(hive.cmd().arg(&ok));
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, _) = run(hive.cmd().arg("--script").arg(&ok));
    // worker-2 was killed by the first run; this one spawns worker-3 and kills worker-2 again → EINVAL.
    assert_eq!(code, 1);

    let bad = script("bad.coh", "ls /\nEXPECT ERR\nls /worker\n");
    let (code, out, _) = run(hive.cmd().arg(&bad));
    assert_eq!(code, 1);
    assert!(out.contains("EXPECT FAILED at line 2: EXPECT ERR (got: OK LS path=/ entries=5)"));
    assert!(!out.contains("path=/worker"), "stopped at the failure");

    let syntax = script("syntax.coh", "ls /\nWAIT forever\n");
    let (code, out, err) = run(hive.cmd().arg(&syntax));
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("line 2"), "{err}");

    // A script on stdin (not a terminal).
    let mut child = hive
        .cmd()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"ping\nEXPECT OK\nquit\ncat /nope\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("OK PING rtt_us="));
    assert!(text.ends_with("OK QUIT\n"));
}

#[test]
fn loopback_tcp_and_ticket_files() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = Arc::new(Mutex::new(FakeServer::new()));
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let s = server.clone();
            thread::spawn(move || serve_tcp(s, conn));
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, [FAKE_SECRET, b"\n"].concat()).expect("write secret");
    let (code, ticket, err) = run(cohsh().args([
        "ticket",
        "mint",
        "--role",
        "worker-heartbeat",
        "--subject",
        "worker-1",
        "--secret-file",
        secret.to_str().expect("utf-8 path"),
    ]));
    assert_eq!(code, 0, "{err}");
    let tfile = dir.path().join("ticket");
    std::fs::write(&tfile, &ticket).expect("write ticket");
    let (code, out, err) = run(cohsh().args([
        "--connect",
        &format!("tcp:localhost:{port}"),
        "--role",
        "worker-heartbeat:worker-1",
        "--ticket-file",
        tfile.to_str().expect("utf-8 path"),
        "-c",
        "ls /worker/worker-1",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "telemetry\nOK LS path=/worker/worker-1 entries=1\n");
    let (code, _, _) = run(cohsh().args([
        "--connect",
        &format!("tcp:127.0.0.1:{port}"),
        "--role",
        "worker-heartbeat:worker-1",
        "--ticket",
        ticket.trim(),
        "-c",
        "ping",
    ]));
    assert_eq!(code, 0);
}

fn mint(args: &[&str]) -> (i32, String, String) {
    run(cohsh().args(["ticket", "mint"]).args(args))
}

#[test]
fn ticket_mint_inspect_round_trip() {
    let (code, ticket, err) = mint(&[
        "--role",
        "worker-gpu",
        "--subject",
        "worker-3",
        "--secret",
        "s3cret",
        "--ttl",
        "60",
        "--ops",
        "16",
        "--scope",
        "/gpu/gpu0:rw:5",
        "--scope",
        "/worker/worker-3/telemetry:write",
    ]);
    assert_eq!(code, 0, "{err}");
    let ticket = ticket.trim();
    assert!(ticket.starts_with("cohesix-ticket-"), "{ticket}");
    assert!(!ticket.contains('\n'));

    let (code, out, _) = run(cohsh().args(["ticket", "inspect", ticket, "--secret", "s3cret"]));
    assert_eq!(code, 0);
    for want in [
        "role: worker-gpu\n",
        "subject: worker-3\n",
        "ttl_s: 60\n",
        "ops: 16\n",
        "ticks: unlimited\n",
        "  /gpu/gpu0 rw rate_per_s=5\n",
        "  /worker/worker-3/telemetry write rate_per_s=0\n",
        "(valid)",
        "mac: verified\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // Without a secret: decoded, flagged as unchecked.
    let (code, out, _) = run(cohsh().args(["ticket", "inspect", ticket]));
    assert_eq!(code, 0);
    assert!(out.contains("mac: NOT CHECKED"));
    // JSON.
    let (code, out, _) =
        run(cohsh().args(["ticket", "inspect", ticket, "--secret", "s3cret", "--json"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["role"], "worker-gpu");
    assert_eq!(v["verified"], true);
    assert_eq!(v["scopes"][0]["rate_per_s"], 5);
    // Wrong secret, mangled text: exit 1.
    let (code, _, err) = run(cohsh().args(["ticket", "inspect", ticket, "--secret", "other"]));
    assert_eq!(code, 1);
    assert!(err.contains("MAC"), "{err}");
    let (code, _, _) = run(cohsh().args(["ticket", "inspect", "cohesix-ticket-zz"]));
    assert_eq!(code, 1);
    // From stdin.
    let mut child = cohsh()
        .args(["ticket", "inspect", "-", "--secret", "s3cret"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{ticket}\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    // A fixed issue time gives a fixed ticket.
    let fixed = ["--role", "queen", "--secret", "k", "--issued-at-ms", "1000"];
    assert_eq!(mint(&fixed).1, mint(&fixed).1);
    let (_, out, _) = run(cohsh().args(["ticket", "inspect", mint(&fixed).1.trim()]));
    assert!(out.contains("issued_at_ms: 1000\n") && out.contains("expires_at_ms: never"));
}

#[test]
fn ticket_usage_errors_exit_2() {
    for args in [
        vec!["--role", "queen"],
        vec!["--role", "king", "--secret", "k"],
        vec!["--role", "queen", "--secret", ""],
        vec!["--role", "queen", "--secret", "k", "--scope", "relative:rw"],
        vec!["--role", "queen", "--secret", "k", "--scope", "/x:fly"],
        vec!["--role", "queen", "--secret", "k", "--secret-file", "/x"],
        vec!["--role", "queen", "--secret-file", "/nonexistent/secret"],
        vec!["--role", "queen", "--secret", "k", "--ttl", "soon"],
    ] {
        let (code, _, err) = mint(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    let many: Vec<String> = (0..17)
        .flat_map(|i| ["--scope".to_owned(), format!("/s{i}:r")])
        .collect();
    let mut args = vec!["--role", "queen", "--secret", "k"];
    args.extend(many.iter().map(String::as_str));
    assert_eq!(mint(&args).0, 2, "17 scopes");
}
