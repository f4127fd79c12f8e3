//! Issue 6, deliverable 5, on this machine's KVM: the embedded default hive
//! (`coco-vmm run`, no `--config`) and the real `cohsh` as queen on its
//! socket, tailing the microkernel worker's heartbeats as they arrive.
//!
//! It lives in the nested-tier crate (but runs on the host, no L1) because
//! it needs two binaries of other packages, which cargo does not offer as
//! `CARGO_BIN_EXE_*`: like the tier, it builds both with
//! [`Binaries::build`] (`cargo build -p coco-vmm -p cohsh` into this target
//! dir) and runs them as a user would.
//!
//! The default manifest's `ninep` shard appends 10 heartbeats a second
//! apart (images/rootfs/boot/shards.toml), then every shard exits and the
//! hive stops, which ends the `tail -f` with an error (`ENOENT` or
//! `disconnected`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use coco_nested::tenants::Binaries;

/// Heartbeats of the default manifest (`ticks=10` in shards.toml).
const DEFAULT_TICKS: u64 = 10;

/// Guards against a hang only (the hive takes about 11 s); never asserted
/// as a duration.
const HANG_GUARD: Duration = Duration::from_secs(180);

fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| tmp.to_path_buf())
}

/// Waits for `child` (killing it after [`HANG_GUARD`]).
fn wait(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `{"tick":N,"ts_ms":T}` → N.
fn tick(line: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v["tick"].as_u64()
}

#[test]
fn cohsh_as_queen_tails_the_default_hives_heartbeats_as_they_arrive() {
    let bins = Binaries::build(&target_dir())
        .unwrap_or_else(|e| panic!("cannot build coco-vmm and cohsh: {e}"));
    let runtime = tempfile::tempdir().unwrap();
    let state = runtime.path().join("coco/demo");
    let socket = state.join("hive.sock");
    let hive_out = runtime.path().join("hive.out");
    let mut hive = Command::new(&bins.coco_vmm)
        .arg("run")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&hive_out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start coco-vmm run");
    let hive_log = || std::fs::read_to_string(&hive_out).unwrap_or_default();

    // The queen attaches as soon as the hive listens, before the worker's
    // first heartbeat.
    let deadline = Instant::now() + HANG_GUARD;
    while !socket.exists() {
        if let Some(status) = hive.try_wait().unwrap() {
            panic!(
                "the hive ended ({status}) before listening:\n{}",
                hive_log()
            );
        }
        assert!(Instant::now() < deadline, "no {}", socket.display());
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut cohsh = Command::new(&bins.cohsh)
        .arg("--connect")
        .arg(format!("unix:{}", socket.display()))
        .args(["--role", "queen", "--json", "-c"])
        .arg("tail -f -t 120000 /worker/worker-1/telemetry")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cohsh");
    let stdout = cohsh.stdout.take().expect("piped stdout");
    // One JSON object per line: a `stream` object per chunk cohsh received,
    // then the reply.
    let lines: Vec<serde_json::Value> = BufReader::new(stdout)
        .lines()
        .map(|l| l.expect("read cohsh stdout"))
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let cohsh_status = wait(&mut cohsh, "cohsh");
    let hive_status = wait(&mut hive, "coco-vmm run");
    let mut stderr = String::new();
    if let Some(mut e) = cohsh.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let context = format!("cohsh: {lines:#?}\n{stderr}\nhive:\n{}", hive_log());
    assert!(hive_status.success(), "hive {hive_status}\n{context}");

    let chunks: Vec<&str> = lines
        .iter()
        .filter(|v| v["verb"] == "TAIL")
        .filter_map(|v| v["stream"].as_str())
        .collect();
    // Every heartbeat, in order, each a whole line.
    let ticks: Vec<u64> = chunks.concat().lines().filter_map(tick).collect();
    assert_eq!(
        ticks,
        (1..=DEFAULT_TICKS).collect::<Vec<_>>(),
        "heartbeats\n{context}"
    );
    // As they arrived: the follow read blocked at the end of the file and
    // was answered by later appends, so the first chunk cohsh printed
    // lacks the last heartbeat (one read of a finished file would not).
    assert!(chunks.len() > 1, "one chunk only\n{context}");
    assert!(
        !chunks[0].contains(&format!("\"tick\":{DEFAULT_TICKS},")),
        "first chunk already had every heartbeat\n{context}"
    );
    // The stream ends with the worker: the reply is the last line, an
    // error, and cohsh exits 1 (a command failed). Which error depends on
    // what cohsh's outstanding read meets first: the worker's node removed
    // when its VM stopped (`ENOENT`) or the hive's socket closed after it
    // (`disconnected`).
    let reply = lines.last().expect("a reply");
    assert_eq!(reply["verb"], "TAIL", "{context}");
    assert_eq!(reply["ok"], false, "{context}");
    assert!(
        reply["reason"] == "ENOENT" || reply["reason"] == "disconnected",
        "{context}"
    );
    assert_eq!(cohsh_status.code(), Some(1), "{context}");
    // The worker's console says the shard sent them over the device.
    let console = std::fs::read_to_string(state.join("logs/worker-1.console")).unwrap();
    assert!(
        console.contains("all shards ended: status 0"),
        "worker console:\n{console}"
    );
}
