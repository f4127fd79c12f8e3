//! cohsh end to end against the real NineDoor server on a Unix socket and
//! on loopback TCP: the binary is run with a `.coh` script, exactly as an
//! operator would.

use std::process::Command;
use std::sync::Arc;

use ninedoor::clock::SystemClock;
use ninedoor::config::{HiveSpec, Secrets};
use ninedoor::effects::RecordingEffects;
use ninedoor::hive::Hive;
use ninedoor::server::Server;
use secure9p::{Role, Ticket};

const QUEEN_SECRET: &str = "queen-secret-for-tests";

struct Fixture {
    dir: tempfile::TempDir,
    server: Server,
    effects: Arc<RecordingEffects>,
}

fn serve() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let effects = Arc::new(RecordingEffects::new());
    let spec = HiveSpec {
        secrets: Secrets {
            queen: Some(QUEEN_SECRET.into()),
            worker_heartbeat: Some("hb-secret".into()),
            worker_gpu: Some("gpu-secret".into()),
        },
        ..HiveSpec::default()
    };
    let hive = Hive::new(spec, dir.path(), Arc::new(SystemClock), effects.clone()).unwrap();
    hive.set_online().unwrap();
    let mut server = Server::new(Arc::new(hive));
    server.listen_unix(&dir.path().join("hive.sock")).unwrap();
    Fixture {
        dir,
        server,
        effects,
    }
}

fn cohsh(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cohsh"))
        .args(args)
        .output()
        .expect("run cohsh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SCRIPT: &str = r#"# a queen's day
ls /
EXPECT SUBSTR queen/
spawn heartbeat ticks=5
EXPECT OK
ls /worker
EXPECT SUBSTR worker-1
echo {"tick":1,"ts_ms":5} > /worker/worker-1/telemetry
EXPECT OK
cat /worker/worker-1/telemetry
EXPECT SUBSTR "tick":1
lifecycle
EXPECT SUBSTR ONLINE
cat /queen/nope
EXPECT ERR
kill worker-1
EXPECT OK
cat /log/queen.log
EXPECT SUBSTR killed worker-1
EXPECT SUBSTR revoked worker-1
"#;

#[test]
fn a_queen_script_runs_against_ninedoor_over_the_unix_socket() {
    let fx = serve();
    let script = fx.dir.path().join("day.coh");
    std::fs::write(&script, SCRIPT).unwrap();
    let sock = format!("unix:{}", fx.dir.path().join("hive.sock").display());
    let (code, out, err) = cohsh(&[
        "--connect",
        &sock,
        "--role",
        "queen",
        script.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("OK SPAWN"), "{out}");
    // The spawn and kill reached the supervisor's effects.
    let calls = format!("{:?}", fx.effects.calls());
    assert!(calls.contains("worker-1"), "{calls}");
    drop(fx.server);
}

#[test]
fn a_failed_expect_fails_the_script() {
    let fx = serve();
    let script = fx.dir.path().join("bad.coh");
    std::fs::write(&script, "ls /\nEXPECT SUBSTR no-such-entry\nls /proc\n").unwrap();
    let sock = format!("unix:{}", fx.dir.path().join("hive.sock").display());
    let (code, out, _) = cohsh(&[
        "--connect",
        &sock,
        "--role",
        "queen",
        script.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("EXPECT FAILED at line 2"), "{out}");
}

#[test]
fn tcp_needs_a_ticket_and_accepts_a_minted_one() {
    let mut fx = serve();
    let addr = match fx.server.listen_tcp("127.0.0.1:0".parse().unwrap()) {
        Ok(address) => match address {
            ninedoor::transport::ListenAddress::Tcp(a) => a,
            other => panic!("{other:?}"),
        },
        Err(e) => panic!("{e}"),
    };
    let target = format!("tcp:{addr}");
    let (code, _, err) = cohsh(&["--connect", &target, "--role", "queen", "-c", "ls /"]);
    assert_eq!(code, 3, "attach without a ticket over TCP must fail: {err}");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let ticket = Ticket::new(Role::Queen, now)
        .mint(QUEEN_SECRET.as_bytes())
        .unwrap();
    let (code, out, err) = cohsh(&[
        "--connect",
        &target,
        "--role",
        "queen",
        "--ticket",
        &ticket,
        "-c",
        "ls /proc",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("boot"), "{out}");

    // A ticket minted with the wrong secret is refused.
    let forged = Ticket::new(Role::Queen, now)
        .mint(b"not-the-secret")
        .unwrap();
    let (code, _, _) = cohsh(&[
        "--connect",
        &target,
        "--role",
        "queen",
        "--ticket",
        &forged,
        "-c",
        "ls /",
    ]);
    assert_eq!(code, 3);
}

#[test]
fn tail_follows_new_lines_and_stops_with_a_flush() {
    let fx = serve();
    let sock = format!("unix:{}", fx.dir.path().join("hive.sock").display());
    // A writer appends to the audit log (a spawn is audited) while tail -f runs.
    let hive = fx.server.hive().clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        hive.audit("line written while tail follows");
    });
    let (code, out, err) = cohsh(&[
        "--connect",
        &sock,
        "--role",
        "queen",
        "-c",
        "tail -f -t 2000 /log/queen.log",
    ]);
    writer.join().unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("line written while tail follows"), "{out}");
    assert!(out.contains("END"), "{out}");
    assert!(
        out.contains("OK TAIL") && out.contains("stopped=timeout"),
        "{out}"
    );
}
