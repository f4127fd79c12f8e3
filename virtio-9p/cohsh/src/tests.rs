//! Shell tests over the in-process fake server (`tests/support/fake_server.rs`).

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use secure9p::client::Client;
use secure9p::ticket::{Role, Ticket};
use serde_json::Value;

use crate::connect::StreamTransport;
use crate::fake_server::{FAKE_SECRET, FakeServer, FakeTransport, serve_stream};
use crate::{CancelToken, Outcome, Shell};

type FakeShell = Shell<FakeTransport, Vec<u8>>;

fn setup(json: bool) -> (FakeShell, Arc<Mutex<FakeServer>>) {
    let server = Arc::new(Mutex::new(FakeServer::new()));
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    let t = FakeTransport::new(server.clone(), move || c2.should_abort());
    let client = Client::connect(t, 8192).expect("connect");
    let mut sh = Shell::with_cancel(client, Vec::new(), json, cancel);
    sh.attach("queen", "").expect("attach");
    (sh, server)
}

fn lock(s: &Mutex<FakeServer>) -> MutexGuard<'_, FakeServer> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn take(sh: &mut FakeShell) -> String {
    String::from_utf8(std::mem::take(sh.output_mut())).expect("utf-8 output")
}

/// Runs a line, returns (printed output, outcome).
fn run(sh: &mut FakeShell, line: &str) -> (String, Outcome) {
    let o = sh.run_line(line);
    (take(sh), o)
}

fn status(o: &Outcome) -> String {
    o.reply().expect("a reply").status_line()
}

#[test]
fn ls_lists_with_trailing_slash() {
    let (mut sh, server) = setup(false);
    let (out, o) = run(&mut sh, "ls /");
    assert_eq!(
        out,
        "proc/\nqueen/\nworker/\nlog/\ngpu/\nOK LS path=/ entries=5\n"
    );
    assert_eq!(o.reply().expect("reply").text(), out);
    let (out, _) = run(&mut sh, "ls");
    assert!(out.ends_with("OK LS path=/ entries=5\n"));
    let (out, _) = run(&mut sh, "ls /gpu/gpu0/");
    assert_eq!(out, "info\nctl\nOK LS path=/gpu/gpu0 entries=2\n");
    let (out, _) = run(&mut sh, "ls /proc/boot");
    assert_eq!(out, "boot\nOK LS path=/proc/boot entries=1\n");
    let (out, o) = run(&mut sh, "ls /nope");
    assert_eq!(out, "ERR LS reason=ENOENT detail=/nope\n");
    assert!(o.is_err());
    let (out, _) = run(&mut sh, "ls /proc/boot/x");
    // A walk that stops early is ENOENT (the client's rule).
    assert_eq!(out, "ERR LS reason=ENOENT detail=/proc/boot/x\n");
    // Every fid but the root was clunked.
    assert_eq!(lock(&server).fid_count(), 1);
}

#[test]
fn cat_and_errors() {
    let (mut sh, server) = setup(false);
    let (out, _) = run(&mut sh, "cat /proc/boot");
    assert_eq!(
        out,
        "coco boot ok\nline two\nOK CAT path=/proc/boot bytes=21\n"
    );
    let (out, _) = run(&mut sh, "cat /proc");
    assert_eq!(out, "ERR CAT reason=EISDIR detail=/proc\n");
    let (out, _) = run(&mut sh, "cat /queen/ctl");
    assert_eq!(out, "ERR CAT reason=EACCES detail=/queen/ctl\n");
    let (out, _) = run(&mut sh, "cat proc/boot");
    assert!(out.starts_with("ERR CAT reason=bad-path detail="), "{out}");
    let (out, _) = run(&mut sh, "cat /proc/../queen/ctl");
    assert!(out.starts_with("ERR CAT reason=bad-path"), "{out}");
    let (out, _) = run(&mut sh, "frob /x");
    assert_eq!(
        out,
        "ERR UNKNOWN reason=unknown-verb detail=\"frob\" (try help)\n"
    );
    let (out, _) = run(&mut sh, "cat");
    assert_eq!(out, "ERR CAT reason=usage detail=usage: cat <path>\n");
    let (out, o) = run(&mut sh, "# just a comment");
    assert_eq!((out.as_str(), o), ("", Outcome::Nothing));
    assert_eq!(lock(&server).fid_count(), 1);
}

#[test]
fn cat_append_only_skips_dropped_bytes_and_never_blocks() {
    let (mut sh, server) = setup(false);
    // The telemetry ring keeps 64 bytes: 100 appended → base 36.
    let payload: String = (0..100)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    lock(&server)
        .append_path("/worker/worker-1/telemetry", payload.as_bytes())
        .expect("append");
    let (out, _) = run(&mut sh, "cat /worker/worker-1/telemetry");
    let tail = &payload[36..];
    assert_eq!(
        out,
        format!("{tail}\nOK CAT path=/worker/worker-1/telemetry bytes=64 skipped=36\n")
    );
    assert!(
        !lock(&server).has_parked(),
        "cat must not leave a read waiting"
    );
    // Empty ring: nothing, no wait.
    let (out, _) = run(&mut sh, "cat /log/queen.log");
    assert_eq!(out, "OK CAT path=/log/queen.log bytes=0\n");
}

#[test]
fn writes_use_append_offset_only_for_qtappend() {
    let (mut sh, server) = setup(false);
    let (out, _) = run(&mut sh, r#"echo {"spawn":"heartbeat"} > /queen/ctl"#);
    assert_eq!(out, "OK ECHO path=/queen/ctl bytes=22\n");
    let (out, _) = run(&mut sh, "echo 'hello > world' > /log/queen.log");
    assert_eq!(out, "OK ECHO path=/log/queen.log bytes=14\n");
    let (out, _) = run(&mut sh, "echo a   b > /proc/boot");
    assert_eq!(out, "ERR ECHO reason=EACCES detail=/proc/boot\n");
    let (out, _) = run(&mut sh, "echo nonsense > /queen/ctl");
    assert_eq!(out, "ERR ECHO reason=EINVAL detail=/queen/ctl\n");
    let long = "x".repeat(9000);
    let (out, _) = run(&mut sh, &format!("echo {long} > /queen/ctl"));
    assert!(out.starts_with("ERR ECHO reason=too-long"), "{out}");
    let s = lock(&server);
    let writes: Vec<(String, u64, String)> = s.writes.clone();
    assert_eq!(
        writes[..2],
        [
            (
                "/queen/ctl".to_owned(),
                0,
                "{\"spawn\":\"heartbeat\"}\n".to_owned()
            ),
            (
                "/log/queen.log".to_owned(),
                u64::MAX,
                "hello > world\n".to_owned()
            ),
        ]
    );
    assert_eq!(
        s.ring("/log/queen.log"),
        b"spawned worker-2\nhello > world\n".to_vec()
    );
    assert_eq!(s.fid_count(), 1);
}

#[test]
fn control_verbs_write_the_documented_lines() {
    let (mut sh, server) = setup(false);
    for (line, want) in [
        (
            "spawn heartbeat ticks=5 ttl_s=30",
            "OK SPAWN kind=heartbeat",
        ),
        (
            "spawn gpu gpu_id=gpu0 mem_mb=256 streams=2 priority=1",
            "OK SPAWN kind=gpu",
        ),
        ("kill worker-2", "OK KILL worker=worker-2"),
        ("kill 9", "ERR KILL reason=EINVAL detail=/queen/ctl"),
        ("bind /gpu/gpu0 /mnt/g", "OK BIND from=/gpu/gpu0 to=/mnt/g"),
        (
            "mount docker /host/docker",
            "OK MOUNT service=docker at=/host/docker",
        ),
        (
            "lease gpu0 worker-1 mem=128 streams=1 priority=2 ttl=60",
            "OK LEASE gpu=gpu0 worker=worker-1",
        ),
        (
            "release gpu0 1 done now",
            "OK RELEASE gpu=gpu0 worker=worker-1",
        ),
        (
            "release gpu9 1",
            "ERR RELEASE reason=ENOENT detail=/gpu/gpu9/ctl",
        ),
        ("lifecycle cordon", "OK LIFECYCLE cmd=cordon state=DRAINING"),
        ("lifecycle", "OK LIFECYCLE state=DRAINING"),
        ("lifecycle resume", "OK LIFECYCLE cmd=resume state=ONLINE"),
    ] {
        let (out, o) = run(&mut sh, line);
        assert_eq!(status(&o), want, "{line}: {out}");
    }
    let lines: Vec<String> = lock(&server)
        .ctl_lines
        .iter()
        .map(|(p, l)| format!("{p} {l}"))
        .collect();
    assert_eq!(
        lines,
        [
            r#"/queen/ctl {"spawn":"heartbeat","ticks":5,"budget":{"ttl_s":30}}"#,
            r#"/queen/ctl {"spawn":"gpu","lease":{"gpu_id":"gpu0","mem_mb":256,"streams":2,"priority":1}}"#,
            r#"/queen/ctl {"kill":"worker-2"}"#,
            r#"/queen/ctl {"kill":"worker-9"}"#,
            r#"/queen/ctl {"bind":{"from":"/gpu/gpu0","to":"/mnt/g"}}"#,
            r#"/queen/ctl {"mount":{"service":"docker","at":"/host/docker"}}"#,
            "/gpu/gpu0/ctl LEASE worker-1 mem=128 streams=1 priority=2 ttl=60",
            "/gpu/gpu0/ctl RELEASE worker-1 done now",
            "/queen/lifecycle/ctl cordon",
            "/queen/lifecycle/ctl resume",
        ]
    );
    let (out, _) = run(&mut sh, "lifecycle");
    assert_eq!(out, "ONLINE\nOK LIFECYCLE state=ONLINE\n");
}

#[test]
fn models_list_and_activate() {
    let (mut sh, server) = setup(false);
    let (out, _) = run(&mut sh, "models");
    assert_eq!(
        out,
        "* stories15m\n  tinyllama\nOK MODELS available=2 active=stories15m\n"
    );
    let (out, _) = run(&mut sh, "models activate tinyllama");
    assert_eq!(out, "OK MODELS active=tinyllama\n");
    let (out, _) = run(&mut sh, "models");
    assert_eq!(
        out,
        "  stories15m\n* tinyllama\nOK MODELS available=2 active=tinyllama\n"
    );
    assert_eq!(
        lock(&server).ring("/gpu/models/active"),
        b"stories15m\ntinyllama\n".to_vec()
    );
}

#[test]
fn tail_without_follow_is_a_bounded_stream() {
    let (mut sh, server) = setup(false);
    lock(&server)
        .append_path("/log/queen.log", b"one\ntwo")
        .expect("append");
    let (out, o) = run(&mut sh, "tail /log/queen.log");
    assert_eq!(out, "one\ntwo\nEND\nOK TAIL path=/log/queen.log bytes=7\n");
    assert_eq!(o.reply().expect("reply").text(), out);
    let (out, _) = run(&mut sh, "tail /proc/boot");
    assert_eq!(
        out,
        "coco boot ok\nline two\nEND\nOK TAIL path=/proc/boot bytes=21\n"
    );
    // Errors before the stream opened print no END.
    let (out, _) = run(&mut sh, "tail /log/nope");
    assert_eq!(out, "ERR TAIL reason=ENOENT detail=/log/nope\n");
    let (out, _) = run(&mut sh, "tail -f /proc/boot");
    assert!(out.starts_with("ERR TAIL reason=not-a-stream"), "{out}");
}

#[test]
fn tail_follow_timeout_flushes_the_outstanding_read() {
    let (mut sh, server) = setup(false);
    lock(&server)
        .append_path("/log/queen.log", b"old\n")
        .expect("append");
    let s2 = server.clone();
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(60));
        lock(&s2)
            .append_path("/log/queen.log", b"new 1\n")
            .expect("append");
        thread::sleep(Duration::from_millis(40));
        lock(&s2)
            .append_path("/log/queen.log", b"new 2\n")
            .expect("append");
    });
    let t0 = Instant::now();
    let (out, o) = run(&mut sh, "tail -f -t 400 /log/queen.log");
    writer.join().expect("writer");
    assert!(t0.elapsed() >= Duration::from_millis(400));
    assert_eq!(
        out,
        "old\nnew 1\nnew 2\nEND\nOK TAIL path=/log/queen.log bytes=16 stopped=timeout\n"
    );
    assert!(o.reply().expect("reply").ok);
    let s = lock(&server);
    assert_eq!((s.flushes, s.flushed_parked), (1, 1));
    assert!(!s.has_parked());
    assert_eq!(s.fid_count(), 1);
}

#[test]
fn ctrl_c_stops_log_and_the_session_stays_usable() {
    let (mut sh, server) = setup(false);
    let cancel = sh.cancel_token().clone();
    let s2 = server.clone();
    let ctrl_c = thread::spawn(move || {
        // Wait until the shell's read is parked at the end, then "press" Ctrl-C.
        let t0 = Instant::now();
        while !lock(&s2).has_parked() && t0.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(2));
        }
        lock(&s2)
            .append_path("/log/queen.log", b"tick\n")
            .expect("append");
        thread::sleep(Duration::from_millis(30));
        cancel.fire();
    });
    let (out, o) = run(&mut sh, "log");
    ctrl_c.join().expect("ctrl-c thread");
    assert_eq!(
        out,
        "tick\nEND\nOK LOG path=/log/queen.log bytes=5 stopped=interrupt\n"
    );
    assert!(!o.is_err());
    assert_eq!(lock(&server).flushed_parked, 1);
    // The next command starts with a clear token and works.
    let (out, _) = run(&mut sh, "cat /log/queen.log");
    assert_eq!(out, "tick\nOK CAT path=/log/queen.log bytes=5\n");
    assert_eq!(lock(&server).fid_count(), 1);
}

#[test]
fn tail_follow_polls_a_server_that_does_not_block() {
    let (mut sh, server) = setup(false);
    lock(&server).block_at_end = false;
    let s2 = server.clone();
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        lock(&s2)
            .append_path("/worker/worker-1/telemetry", b"hb\n")
            .expect("append");
    });
    let (out, _) = run(&mut sh, "tail -t 500 /worker/worker-1/telemetry");
    writer.join().expect("writer");
    assert_eq!(
        out,
        "hb\nEND\nOK TAIL path=/worker/worker-1/telemetry bytes=3 stopped=timeout\n"
    );
}

#[test]
fn tail_follow_resyncs_after_falling_behind_a_ring() {
    let (mut sh, server) = setup(false);
    // Make the server answer reads at the end with "no data" so the shell
    // polls, then overflow the 64-byte ring between two polls.
    lock(&server).block_at_end = false;
    let s2 = server.clone();
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        let big = vec![b'z'; 100];
        lock(&s2)
            .append_path("/worker/worker-1/telemetry", &big)
            .expect("append");
    });
    let (out, _) = run(&mut sh, "tail -t 600 /worker/worker-1/telemetry");
    writer.join().expect("writer");
    assert!(
        out.ends_with(
            "END\nOK TAIL path=/worker/worker-1/telemetry bytes=64 skipped=36 stopped=timeout\n"
        ),
        "{out}"
    );
}

#[test]
fn attach_detach_and_tickets() {
    let (mut sh, server) = setup(false);
    let (out, _) = run(&mut sh, "detach");
    assert_eq!(out, "OK DETACH role=queen\n");
    let (out, _) = run(&mut sh, "ls /");
    assert_eq!(
        out,
        "ERR LS reason=not-attached detail=use attach <role> [ticket]\n"
    );
    let (out, _) = run(&mut sh, "detach");
    assert_eq!(out, "ERR DETACH reason=not-attached\n");
    let (out, _) = run(&mut sh, "attach worker-heartbeat:worker-1");
    assert_eq!(
        out,
        "ERR ATTACH reason=EKEYREJECTED detail=role=worker-heartbeat:worker-1\n"
    );
    let mut t = Ticket::new(Role::WorkerHeartbeat, 0);
    t.subject = Some("worker-1".into());
    let text = t.mint(FAKE_SECRET).expect("mint");
    let (out, _) = run(&mut sh, &format!("attach worker-heartbeat:worker-1 {text}"));
    assert_eq!(out, "OK ATTACH role=worker-heartbeat:worker-1\n");
    assert_eq!(sh.attached_as(), Some("worker-heartbeat:worker-1"));
    // Re-attaching replaces the session and clunks the old root.
    let (out, _) = run(&mut sh, "attach queen");
    assert_eq!(out, "OK ATTACH role=queen\n");
    assert_eq!(lock(&server).fid_count(), 1);
    let (out, o) = run(&mut sh, "ping");
    assert!(out.starts_with("OK PING rtt_us="), "{out}");
    assert!(!o.is_err());
    let (out, o) = run(&mut sh, "quit");
    assert_eq!(out, "OK QUIT\n");
    assert!(o.is_quit());
}

#[test]
fn help_lists_every_verb() {
    let (mut sh, _server) = setup(false);
    let (out, _) = run(&mut sh, "help");
    for verb in [
        "attach",
        "detach",
        "ls",
        "cat",
        "tail",
        "echo",
        "log",
        "ping",
        "spawn",
        "kill",
        "bind",
        "mount",
        "lifecycle",
        "lease",
        "release",
        "models",
        "quit",
        "EXPECT",
        "WAIT",
    ] {
        assert!(out.contains(verb), "help lacks {verb}");
    }
    assert!(out.ends_with("OK HELP\n"));
}

#[test]
fn json_replies() {
    let (mut sh, server) = setup(true);
    let parse = |s: &str| -> Vec<Value> {
        s.lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    };
    let (out, o) = run(&mut sh, "ls /worker");
    assert_eq!(
        parse(&out),
        [serde_json::json!({
            "verb": "LS", "ok": true, "reason": null,
            "detail": "path=/worker entries=1", "data": ["worker-1/"],
        })]
    );
    // EXPECT still sees the text form.
    assert_eq!(
        o.reply().expect("reply").text(),
        "worker-1/\nOK LS path=/worker entries=1\n"
    );
    let (out, _) = run(&mut sh, "cat /nope");
    assert_eq!(
        parse(&out),
        [serde_json::json!({
            "verb": "CAT", "ok": false, "reason": "ENOENT", "detail": "/nope", "data": null,
        })]
    );
    let (out, _) = run(&mut sh, "cat /proc/boot");
    assert_eq!(parse(&out)[0]["data"], "coco boot ok\nline two");
    lock(&server)
        .append_path("/log/queen.log", b"a\nb\n")
        .expect("append");
    let (out, _) = run(&mut sh, "tail /log/queen.log");
    let objs = parse(&out);
    assert_eq!(objs.len(), 2, "{out}");
    assert_eq!(
        objs[0],
        serde_json::json!({"verb": "TAIL", "stream": "a\nb\n"})
    );
    assert_eq!(objs[1]["ok"], true);
    assert_eq!(objs[1]["data"]["bytes"], 4);
    assert_eq!(objs[1]["data"]["stopped"], Value::Null);
    let (out, _) = run(&mut sh, "ping");
    assert!(parse(&out)[0]["data"]["rtt_us"].is_u64());
    let (out, _) = run(&mut sh, "models");
    assert_eq!(
        parse(&out)[0]["data"],
        serde_json::json!({"available": ["stories15m", "tinyllama"], "active": "stories15m"})
    );
    let (out, _) = run(&mut sh, "frob");
    assert_eq!(parse(&out)[0]["verb"], "UNKNOWN");
    let r = sh.run_script("cat /nope\nEXPECT OK\n");
    let out = take(&mut sh);
    let objs = parse(&out);
    assert_eq!(objs[1]["verb"], "EXPECT");
    assert_eq!(objs[1]["data"]["line"], 2);
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn script_expect_forms_and_exit_codes() {
    let (mut sh, _server) = setup(false);
    let script = "\
# every form, all passing
ls /worker
EXPECT OK
EXPECT SUBSTR worker-1/
EXPECT SUBSTR OK LS path=/worker
EXPECT NOT worker-2
cat /nope
EXPECT ERR
EXPECT SUBSTR reason=ENOENT

   # indented comment, then blank lines

WAIT 30
EXPECT ERR
echo {\"kill\":\"worker-1\"} > /queen/ctl
EXPECT OK
";
    let t0 = Instant::now();
    let r = sh.run_script(script);
    assert!(t0.elapsed() >= Duration::from_millis(30));
    let out = take(&mut sh);
    assert_eq!(r.exit_code(), 0, "{out}\n{r:?}");
    assert_eq!(r.commands, 3);
    assert!(r.failed_expect.is_none() && r.unexpected_errors.is_empty());
    assert!(!out.contains("EXPECT FAILED"));
}

#[test]
fn script_stops_at_the_first_failed_expect() {
    let (mut sh, server) = setup(false);
    let r = sh.run_script("ls /\nEXPECT SUBSTR nothing-like-this\necho x > /log/queen.log\n");
    let out = take(&mut sh);
    assert_eq!(r.exit_code(), 1);
    let f = r.failed_expect.expect("failure");
    assert_eq!(f.line, 2);
    assert!(
        out.contains(
            "EXPECT FAILED at line 2: EXPECT SUBSTR nothing-like-this (got: OK LS path=/ entries=5)"
        ),
        "{out}"
    );
    assert!(
        lock(&server).writes.is_empty(),
        "the echo after it did not run"
    );

    for (script, line) in [
        ("cat /nope\nEXPECT OK\n", 2),
        ("ls /\nEXPECT ERR\n", 2),
        ("ls /\nEXPECT NOT worker/\n", 2),
        ("EXPECT OK\nls /\n", 1),
    ] {
        let r = sh.run_script(script);
        let out = take(&mut sh);
        assert_eq!(r.exit_code(), 1, "{script}");
        assert_eq!(
            r.failed_expect.as_ref().map(|f| f.line),
            Some(line),
            "{script}"
        );
        assert!(
            out.contains(&format!("EXPECT FAILED at line {line}:")),
            "{out}"
        );
    }
    let r = sh.run_script("EXPECT OK\n");
    assert!(take(&mut sh).contains("(no command before it)"));
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn script_failed_commands_set_the_exit_status_unless_expected() {
    let (mut sh, _server) = setup(false);
    // A failure without EXPECT ERR: the script goes on, status 1.
    let r = sh.run_script("cat /nope\nls /\nEXPECT OK\n");
    let out = take(&mut sh);
    assert!(out.contains("ERR CAT reason=ENOENT"));
    assert!(out.contains("OK LS path=/"));
    assert_eq!((r.exit_code(), r.unexpected_errors.clone()), (1, vec![1]));
    // EXPECT SUBSTR alone does not consume the failure…
    let r = sh.run_script("cat /nope\nEXPECT SUBSTR ENOENT\n");
    assert_eq!(r.exit_code(), 1);
    // …EXPECT ERR does, also after other EXPECTs and a WAIT.
    let r = sh.run_script("cat /nope\nEXPECT SUBSTR ENOENT\nWAIT 1\nEXPECT ERR\nls /\n");
    assert_eq!(r.exit_code(), 0);
    // The last command failing counts too.
    let r = sh.run_script("ls /\ncat /nope\n");
    assert_eq!((r.exit_code(), r.unexpected_errors.clone()), (1, vec![2]));
    // A parse error of a command is an ordinary failed command.
    let r = sh.run_script("frobnicate\nEXPECT ERR\nEXPECT SUBSTR unknown-verb\n");
    assert_eq!(r.exit_code(), 0);
    take(&mut sh);
}

#[test]
fn script_syntax_error_runs_nothing_and_quit_stops() {
    let (mut sh, server) = setup(false);
    let before = lock(&server).requests.len();
    let r = sh.run_script("ls /\nEXPECT SOMETHING\n");
    let out = take(&mut sh);
    assert_eq!(r.exit_code(), 2);
    assert_eq!(
        out,
        "SCRIPT ERROR at line 2: unknown EXPECT form \"SOMETHING\" (OK, ERR, SUBSTR <text>, NOT <text>)\n"
    );
    assert_eq!(lock(&server).requests.len(), before, "nothing was sent");
    let r = sh.run_script("ls /\nquit\ncat /nope\n");
    let out = take(&mut sh);
    assert!(r.quit);
    assert_eq!(r.exit_code(), 0);
    assert!(out.ends_with("OK QUIT\n"), "{out}");
}

#[test]
fn wait_is_interruptible() {
    let (mut sh, _server) = setup(false);
    let cancel = sh.cancel_token().clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        cancel.fire();
    });
    let t0 = Instant::now();
    let r = sh.run_script("WAIT 600000\nls /\nEXPECT OK\n");
    t.join().expect("thread");
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(r.exit_code(), 0);
}

/// The real stream transport over a socket pair, the fake serving the
/// other end: framing, Tflush on Ctrl-C, and a dead connection.
#[test]
fn stream_transport_over_a_socket() {
    let server = Arc::new(Mutex::new(FakeServer::new()));
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let s2 = server.clone();
    let serving = thread::spawn(move || serve_stream(s2, theirs));
    let cancel = CancelToken::new();
    let t = StreamTransport::new(ours, cancel.clone()).expect("transport");
    let client = Client::connect(t, 65536).expect("version");
    assert_eq!(client.msize(), 8192);
    let mut sh = Shell::with_cancel(client, Vec::<u8>::new(), false, cancel.clone());
    sh.attach("queen", "").expect("attach");
    let o = sh.run_line("ls /worker");
    assert_eq!(status(&o), "OK LS path=/worker entries=1");

    let c2 = cancel.clone();
    let s3 = server.clone();
    let ctrl_c = thread::spawn(move || {
        let t0 = Instant::now();
        while !lock(&s3).has_parked() && t0.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(2));
        }
        c2.fire();
    });
    let o = sh.run_line("tail -f /worker/worker-1/telemetry");
    ctrl_c.join().expect("thread");
    assert_eq!(
        status(&o),
        "OK TAIL path=/worker/worker-1/telemetry bytes=0 stopped=interrupt"
    );
    assert_eq!(lock(&server).flushed_parked, 1);
    let o = sh.run_line("cat /proc/boot");
    assert_eq!(status(&o), "OK CAT path=/proc/boot bytes=21");

    // The server goes away: the command fails as disconnected, and so does
    // every later one, without touching the socket again.
    let (client, _) = sh.into_parts();
    let mut sh = Shell::with_cancel(client, Vec::<u8>::new(), false, cancel);
    // (A fresh shell over the same client has no session; attach again.)
    sh.attach("queen", "").expect("re-attach");
    drop(serving); // detach the thread handle; close by shutting our side below
    let fd = sh
        .client_mut()
        .transport()
        .stream()
        .try_clone()
        .expect("clone");
    fd.shutdown(std::net::Shutdown::Both).expect("shutdown");
    let o = sh.run_line("ls /");
    let r = o.reply().expect("reply");
    assert_eq!(r.reason.as_deref(), Some("disconnected"), "{r:?}");
    assert!(sh.dead().is_some());
    let o = sh.run_line("ls /");
    assert_eq!(
        o.reply().expect("reply").reason.as_deref(),
        Some("disconnected")
    );
    let o = sh.run_line("help");
    assert!(!o.is_err());
}
