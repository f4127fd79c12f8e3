//! Node kinds: generated text, append-only logs, telemetry rings, control
//! sinks, JSON-lines files; attributes and stable readdir cookies.

mod common;

use common::*;
use ninedoor::Errno;
use ninedoor::hive::{OpenMode, ReadResult};
use ninedoor::identity::Identity;
use ninedoor::node::{DT_DIR, DT_REG, NodeKind, QTAPPEND, QTDIR, QTFILE, S_IFDIR, S_IFREG};

#[test]
fn tree_has_every_documented_node() {
    let f = fixture();
    let q = queen();
    for p in [
        "/proc/boot",
        "/proc/lifecycle/state",
        "/proc/lifecycle/reason",
        "/proc/lifecycle/since",
        "/proc/9p/sessions",
        "/queen/ctl",
        "/queen/lifecycle/ctl",
        "/log/queen.log",
        "/gpu/gpu0/info",
        "/gpu/gpu0/ctl",
        "/gpu/gpu0/lease",
        "/gpu/gpu0/status",
        "/gpu/gpu0/job",
        "/gpu/gpu1/info",
        "/gpu/models/available/stories15m/manifest.toml",
        "/gpu/models/active",
        "/gpu/telemetry/schema.json",
    ] {
        f.hive
            .walk_path(&q, p)
            .unwrap_or_else(|e| panic!("{p}: {e}"));
    }
    let expect = [
        ("/proc", NodeKind::Directory),
        ("/proc/boot", NodeKind::Text),
        ("/queen/ctl", NodeKind::Control),
        ("/log/queen.log", NodeKind::AppendLog),
        ("/gpu/gpu0/lease", NodeKind::JsonLines),
        ("/gpu/gpu0/job", NodeKind::JsonLines),
        ("/gpu/models/active", NodeKind::AppendLog),
    ];
    for (p, k) in expect {
        let n = f.hive.walk_path(&q, p).unwrap();
        assert_eq!(f.hive.attr(n).unwrap().kind, k, "{p}");
    }
    let w = spawn_heartbeat(&f.hive);
    let n = f
        .hive
        .walk_path(&q, &format!("/worker/{w}/telemetry"))
        .unwrap();
    assert_eq!(f.hive.attr(n).unwrap().kind, NodeKind::TelemetryRing);
}

#[test]
fn generated_text_contents() {
    let f = fixture();
    let q = queen();
    let boot = read(&f.hive, &q, "/proc/boot").unwrap();
    assert!(boot.contains("hive test-hive"), "{boot}");
    assert!(boot.contains("gpu gpu0"));
    assert!(boot.contains("model stories15m"));
    f.hive.boot_line("milestone kernel-ready");
    assert!(
        read(&f.hive, &q, "/proc/boot")
            .unwrap()
            .contains("milestone kernel-ready")
    );
    assert_eq!(
        read(&f.hive, &q, "/proc/lifecycle/state").unwrap(),
        "ONLINE\n"
    );
    assert_eq!(
        read(&f.hive, &q, "/proc/lifecycle/since").unwrap(),
        format!("{T0}\n")
    );
    let info: serde_json::Value =
        serde_json::from_str(&read(&f.hive, &q, "/gpu/gpu0/info").unwrap()).unwrap();
    assert_eq!(info["id"], "gpu0");
    assert_eq!(info["memory_mb"], 4096);
    assert_eq!(info["sm_count"], 8);
    assert_eq!(info["driver_version"], "emu-1");
    assert_eq!(info["runtime_version"], "emu-rt-1");
    let schema: serde_json::Value =
        serde_json::from_str(&read(&f.hive, &q, "/gpu/telemetry/schema.json").unwrap()).unwrap();
    assert_eq!(schema["$id"], "gpu-telemetry/v1");
    assert_eq!(schema["required"].as_array().unwrap().len(), 6);
    assert_eq!(
        read(&f.hive, &q, "/gpu/models/available/tiny/manifest.toml").unwrap(),
        "name = \"tiny\"\n"
    );
    assert!(
        read(&f.hive, &q, "/gpu/gpu0/status")
            .unwrap()
            .contains("state idle")
    );
    assert_eq!(
        read(&f.hive, &q, "/proc/9p/sessions").unwrap(),
        "no session layer attached\n"
    );
}

#[derive(Debug)]
struct Stats(std::sync::atomic::AtomicU64);
impl ninedoor::hive::SessionStats for Stats {
    fn render(&self) -> String {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("sessions {n}\n")
    }
}

#[test]
fn sessions_text_comes_from_the_session_layer() {
    let f = fixture();
    f.hive
        .set_session_stats(std::sync::Arc::new(Stats(Default::default())));
    let n = f.hive.walk_path(&queen(), "/proc/9p/sessions").unwrap();
    assert_eq!(f.hive.attr(n).unwrap().size, "sessions 0\n".len() as u64);
    assert_eq!(
        read(&f.hive, &queen(), "/proc/9p/sessions").unwrap(),
        "sessions 1\n"
    );
}

#[test]
fn generated_text_is_consistent_across_split_reads() {
    let f = fixture();
    let q = queen();
    let n = f.hive.walk_path(&q, "/proc/lifecycle/state").unwrap();
    let file = f.hive.open(&q, n, false, false).unwrap();
    let ReadResult::Data(first) = f.hive.read(&q, &file, 0, 3).unwrap() else {
        panic!()
    };
    assert_eq!(first, b"ONL");
    // The state changes between the two reads …
    ctl(&f.hive, "/queen/lifecycle/ctl", "cordon\n").unwrap();
    let ReadResult::Data(rest) = f.hive.read(&q, &file, 3, 100).unwrap() else {
        panic!()
    };
    // … but this open handle still reads its snapshot.
    assert_eq!(rest, b"INE\n");
    assert_eq!(
        f.hive.read(&q, &file, 7, 100).unwrap(),
        ReadResult::Data(vec![])
    );
    assert_eq!(
        f.hive.read(&q, &file, u64::MAX, 100).unwrap(),
        ReadResult::Data(vec![])
    );
    // A new open sees the new text.
    assert_eq!(
        read(&f.hive, &q, "/proc/lifecycle/state").unwrap(),
        "DRAINING\n"
    );
    // Attributes: qid version 0, size = current length, read-only mode.
    let a = f.hive.attr(n).unwrap();
    assert_eq!(a.qid.version, 0);
    assert_eq!(a.qid.kind, QTFILE);
    assert_eq!(a.size, "DRAINING\n".len() as u64);
    assert_eq!(a.mode, S_IFREG | 0o444);
    // Text cannot be written, and a read-only handle cannot write.
    assert_eq!(f.hive.open(&q, n, true, false).unwrap_err(), Errno::EACCES);
    assert_eq!(f.hive.write(&q, &file, 0, b"x").unwrap_err(), Errno::EBADF);
}

#[test]
fn append_only_offsets_and_qtappend() {
    let f = fixture();
    let w = spawn_heartbeat(&f.hive);
    let me = Identity::heartbeat(&w);
    let path = format!("/worker/{w}/telemetry");
    let n = f.hive.walk_path(&me, &path).unwrap();
    let a = f.hive.attr(n).unwrap();
    assert_eq!(a.qid.kind, QTAPPEND);
    assert_eq!(a.qid.version, 0);
    assert_eq!(a.size, 0);
    let file = f.hive.open_mode(&me, n, OpenMode::ReadWrite, true).unwrap();
    assert_eq!(f.hive.write(&me, &file, 0, b"hb 1\n").unwrap(), 5);
    // Not at the end: refused.
    assert_eq!(
        f.hive.write(&me, &file, 0, b"x").unwrap_err(),
        Errno::ESPIPE
    );
    assert_eq!(
        f.hive.write(&me, &file, 3, b"x").unwrap_err(),
        Errno::ESPIPE
    );
    assert_eq!(
        f.hive.write(&me, &file, 6, b"x").unwrap_err(),
        Errno::ESPIPE
    );
    // At the end, or at u64::MAX: accepted.
    assert_eq!(f.hive.write(&me, &file, 5, b"hb 2\n").unwrap(), 5);
    assert_eq!(f.hive.write(&me, &file, u64::MAX, b"hb 3\n").unwrap(), 5);
    assert_eq!(f.hive.attr(n).unwrap().size, 15);
    assert_eq!(
        f.hive.read(&me, &file, 5, 5).unwrap(),
        ReadResult::Data(b"hb 2\n".to_vec())
    );
    // At (or past) the end there is nothing yet.
    assert_eq!(
        f.hive.read(&me, &file, 15, 5).unwrap(),
        ReadResult::WouldBlock
    );
    assert_eq!(
        f.hive.read(&me, &file, 99, 5).unwrap(),
        ReadResult::WouldBlock
    );
    // The same rule on the queen's JSON-lines and log files.
    let job = f.hive.walk_path(&queen(), "/gpu/gpu0/job").unwrap();
    assert_eq!(f.hive.attr(job).unwrap().qid.kind, QTAPPEND);
    let log = f.hive.walk_path(&queen(), "/log/queen.log").unwrap();
    assert_eq!(f.hive.attr(log).unwrap().qid.kind, QTAPPEND);
    let active = f.hive.walk_path(&queen(), "/gpu/models/active").unwrap();
    let af = f.hive.open(&queen(), active, true, false).unwrap();
    f.hive.write(&queen(), &af, 0, b"tiny\n").unwrap();
    assert_eq!(
        f.hive.write(&queen(), &af, 0, b"tiny\n").unwrap_err(),
        Errno::ESPIPE
    );
}

#[test]
fn telemetry_ring_wraps_refuses_oversize_and_reports_stale() {
    let f = fixture(); // 64-byte rings
    let w = spawn_heartbeat(&f.hive);
    let me = Identity::heartbeat(&w);
    let path = format!("/worker/{w}/telemetry");
    let n = f.hive.walk_path(&me, &path).unwrap();
    let file = f
        .hive
        .open_mode(&me, n, OpenMode::ReadWrite, false)
        .unwrap();
    // Larger than the whole ring: refused, nothing written.
    let big = vec![b'x'; 65];
    assert_eq!(
        f.hive.write(&me, &file, u64::MAX, &big).unwrap_err(),
        Errno::EFBIG
    );
    assert_eq!(f.hive.attr(n).unwrap().size, 0);
    // Exactly the ring size is fine.
    f.hive.write(&me, &file, 0, &[b'a'; 64]).unwrap();
    assert!(!logged(&f.hive, &["wrapped"]));
    // Wrapping drops the oldest bytes and is logged.
    f.hive.write(&me, &file, 64, b"0123456789").unwrap();
    assert!(logged(
        &f.hive,
        &["telemetry", &path, "wrapped", "10 byte(s) dropped"]
    ));
    assert_eq!(f.hive.read(&me, &file, 0, 10).unwrap_err(), Errno::ERANGE);
    assert_eq!(f.hive.read(&me, &file, 9, 10).unwrap_err(), Errno::ERANGE);
    assert_eq!(
        f.hive.read(&me, &file, 10, 4).unwrap(),
        ReadResult::Data(b"aaaa".to_vec())
    );
    assert_eq!(
        f.hive.read(&me, &file, 64, 100).unwrap(),
        ReadResult::Data(b"0123456789".to_vec())
    );
    // Only one wrap line per ring's worth of dropped bytes.
    for i in 0..5u64 {
        f.hive
            .write(&me, &file, 74 + i * 10, b"0123456789")
            .unwrap();
    }
    let wraps = log_lines(&f.hive)
        .iter()
        .filter(|l| l.contains("wrapped"))
        .count();
    assert_eq!(wraps, 1);
    f.hive.write(&me, &file, u64::MAX, &[b'y'; 10]).unwrap();
    let wraps = log_lines(&f.hive)
        .iter()
        .filter(|l| l.contains("wrapped"))
        .count();
    assert_eq!(wraps, 2);
}

#[test]
fn control_sink_failure_stops_later_lines() {
    let f = fixture();
    let n = f.hive.walk_path(&queen(), "/queen/ctl").unwrap();
    let a = f.hive.attr(n).unwrap();
    assert_eq!(a.kind, NodeKind::Control);
    assert_eq!(a.size, 0);
    assert_eq!(a.mode, S_IFREG | 0o200);
    // Control sinks are write-only.
    assert_eq!(
        f.hive.open(&queen(), n, false, false).unwrap_err(),
        Errno::EACCES
    );
    let e = qctl(
        &f.hive,
        "{\"spawn\":\"heartbeat\"}\n{\"spawn\":\"heartbeat\",\"bogus\":1}\n{\"spawn\":\"heartbeat\"}\n",
    )
    .unwrap_err();
    assert_eq!(e, Errno::EINVAL);
    // Line 1 took effect, line 3 never ran.
    assert_eq!(f.hive.workers().len(), 1);
    assert!(logged(&f.hive, &["queen ctl line 2 rejected", "bogus"]));
    // A successful multi-line write returns its full count.
    let data = "{\"spawn\":\"heartbeat\"}\n\n{\"spawn\":\"heartbeat\"}\n";
    assert_eq!(qctl(&f.hive, data).unwrap(), data.len() as u32);
    assert_eq!(f.hive.workers().len(), 3);
    // Offsets do not matter for control sinks; truncate is ignored.
    let file = f.hive.open(&queen(), n, true, true).unwrap();
    f.hive
        .write(&queen(), &file, 12345, b"{\"budget\":{\"ops\":5}}")
        .unwrap();
    // Non-UTF-8 is refused.
    assert_eq!(
        f.hive.write(&queen(), &file, 0, b"\xff\xfe").unwrap_err(),
        Errno::EINVAL
    );
}

#[test]
fn directories_attrs_and_errors() {
    let f = fixture();
    let q = queen();
    let root = f.hive.root();
    let a = f.hive.attr(root).unwrap();
    assert_eq!(a.qid.kind, QTDIR);
    assert_eq!(a.mode, S_IFDIR | 0o555);
    assert_eq!(f.hive.walk(&q, root, "..").unwrap(), root);
    let proc_ = f.hive.walk(&q, root, "proc").unwrap();
    assert_eq!(f.hive.walk(&q, proc_, "..").unwrap(), root);
    assert_eq!(f.hive.walk(&q, root, "").unwrap_err(), Errno::EINVAL);
    assert_eq!(f.hive.walk(&q, root, ".").unwrap_err(), Errno::EINVAL);
    assert_eq!(f.hive.walk(&q, root, "a/b").unwrap_err(), Errno::EINVAL);
    assert_eq!(
        f.hive.walk(&q, root, &"n".repeat(256)).unwrap_err(),
        Errno::ENAMETOOLONG
    );
    assert_eq!(f.hive.walk(&q, root, "nope").unwrap_err(), Errno::ENOENT);
    let boot = f.hive.walk(&q, proc_, "boot").unwrap();
    assert_eq!(f.hive.walk(&q, boot, "x").unwrap_err(), Errno::ENOTDIR);
    assert_eq!(f.hive.walk(&q, boot, "..").unwrap_err(), Errno::ENOTDIR);
    assert_eq!(
        f.hive.open(&q, proc_, true, false).unwrap_err(),
        Errno::EISDIR
    );
    let d = f.hive.open(&q, proc_, false, false).unwrap();
    assert_eq!(f.hive.read(&q, &d, 0, 10).unwrap_err(), Errno::EISDIR);
    // qids are stable per node.
    let again = f.hive.walk_path(&q, "/proc/boot").unwrap();
    assert_eq!(again, boot);
    assert_eq!(
        f.hive.attr(boot).unwrap().qid,
        f.hive.attr(again).unwrap().qid
    );
    assert_eq!(f.hive.path_of(boot).as_deref(), Some("/proc/boot"));
    let listing = f.hive.list(&q, root).unwrap();
    let names: Vec<_> = listing.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, [".", "..", "proc", "queen", "worker", "log", "gpu"]);
    assert_eq!(listing[0].dtype, DT_DIR);
    let proc_list = f.hive.list(&q, proc_).unwrap();
    let boot_entry = proc_list.iter().find(|e| e.name == "boot").unwrap();
    assert_eq!(boot_entry.dtype, DT_REG);
    assert_eq!(boot_entry.qid.path, boot.raw());
    assert_eq!(f.hive.list(&q, boot).unwrap_err(), Errno::ENOTDIR);
}

#[test]
fn readdir_cookies_are_stable_across_inserts_and_removals() {
    let f = fixture();
    let q = queen();
    let wdir = f.hive.walk_path(&q, "/worker").unwrap();
    let ids: Vec<String> = (0..6).map(|_| spawn_heartbeat(&f.hive)).collect();
    let all = f.hive.list(&q, wdir).unwrap();
    assert_eq!(all.len(), 8);
    // Read the first part (., .., and two workers).
    let first: Vec<_> = all[..4].to_vec();
    let resume = first.last().unwrap().cookie;
    // Meanwhile: one already-listed and one not-yet-listed worker go away,
    // and new ones appear.
    qctl(&f.hive, &format!(r#"{{"kill":"{}"}}"#, ids[0])).unwrap();
    qctl(&f.hive, &format!(r#"{{"kill":"{}"}}"#, ids[3])).unwrap();
    let late = spawn_heartbeat(&f.hive);
    let rest = f.hive.list_from(&q, wdir, resume).unwrap();
    let mut seen: Vec<String> = first.iter().chain(&rest).map(|e| e.name.clone()).collect();
    let expected: Vec<String> = [".", ".."]
        .into_iter()
        .map(str::to_owned)
        .chain(ids.iter().take(2).cloned())
        .chain([ids[2].clone(), ids[4].clone(), ids[5].clone(), late.clone()])
        .collect();
    assert_eq!(seen, expected, "each surviving entry exactly once");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), expected.len());
    // Surviving entries kept their cookies.
    let now = f.hive.list(&q, wdir).unwrap();
    for e in &now {
        if let Some(old) = all.iter().find(|o| o.name == e.name) {
            assert_eq!(old.cookie, e.cookie, "{}", e.name);
        }
    }
    // Cookies increase; resuming one by one yields every entry once.
    let mut cookie = 0;
    let mut one_by_one = Vec::new();
    loop {
        let page = f.hive.list_from(&q, wdir, cookie).unwrap();
        let Some(e) = page.first() else { break };
        assert!(e.cookie > cookie);
        cookie = e.cookie;
        one_by_one.push(e.name.clone());
    }
    assert_eq!(one_by_one.len(), now.len());
    // Unknown or huge cookies never loop.
    assert!(f.hive.list_from(&q, wdir, u64::MAX).unwrap().is_empty());
    assert!(f.hive.list_from(&q, wdir, 1_000_000).unwrap().is_empty());
}

#[test]
fn consoles_are_appended_by_the_vmm_only() {
    let f = fixture();
    f.hive.append_console("worker-1", b"booting\n").unwrap();
    f.hive.append_console("worker-1", b"ready\n").unwrap();
    assert_eq!(
        read(&f.hive, &queen(), "/log/worker-1.console").unwrap(),
        "booting\nready\n"
    );
    assert!(
        names(&f.hive, &queen(), "/log")
            .unwrap()
            .contains(&"worker-1.console".to_owned())
    );
    let n = f.hive.walk_path(&queen(), "/log/worker-1.console").unwrap();
    assert_eq!(
        f.hive.open(&queen(), n, true, false).unwrap_err(),
        Errno::EACCES
    );
    for bad in ["", "a/b", &"x".repeat(250)] {
        assert!(f.hive.append_console(bad, b"x").is_err(), "{bad}");
    }
    // Output larger than the retained window keeps its tail.
    let big = vec![b'z'; 300 * 1024];
    f.hive.append_console("worker-1", &big).unwrap();
    let a = f.hive.attr(n).unwrap();
    assert_eq!(a.size, 14 + 300 * 1024);
}
