//! The guest kernel's virtio-9p client end to end on this machine's KVM:
//! `coco-vmm run` boots a coconut worker whose `ninep` driver shard
//! (guest-kernel/shards/ninep) drives the VM process's virtio-9p device,
//! and a queen on the hive's Unix socket tails `/worker/worker-1/telemetry`
//! until the heartbeats arrive. The shard also prints `/proc/boot`, is
//! refused `/queen/ctl` (audited), counts the IRQ notifications its
//! completions came through, and times small reads and appends. Without a
//! bridge there is no device, and the shard exits 0 saying so.

mod common;

use std::io::BufReader;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::hive::{hive, wait_for_line};
use common::queen::{connect, queen_write};
use common::{HANG_GUARD, finish};
use secure9p::client::Fid;
use secure9p::wire::{O_APPEND, O_RDONLY, O_WRONLY};

/// `{"tick":N,"ts_ms":T}` → (N, T).
fn parse_tick(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("{\"tick\":")?;
    let (n, rest) = rest.split_once(",\"ts_ms\":")?;
    let t = rest.strip_suffix('}')?;
    Some((n.parse().ok()?, t.parse().ok()?))
}

/// As the queen: tails the worker's telemetry (blocking reads at its end)
/// until heartbeats 1..=ticks are in, then appends the ack the shard waits
/// for. Returns the heartbeat lines.
fn tail_heartbeats(state: &Path, worker: &str, ticks: u64) -> Vec<(u64, u64)> {
    let mut c = connect(&state.join("hive.sock"));
    let root = c.attach("queen", "").expect("queen attaches");
    let path = format!("worker/{worker}/telemetry");
    let path = path.as_str();
    // A spawned worker's node appears once the queen's spawn is handled.
    let deadline = Instant::now() + HANG_GUARD;
    let f: Fid = loop {
        match c.walk_path(root, path) {
            Ok(f) => break f,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("no {path}: {e}"),
        }
    };
    c.lopen(f, O_RDONLY).expect("open telemetry");
    let mut offset = 0u64;
    let mut text = String::new();
    let beats = loop {
        let beats: Vec<(u64, u64)> = text.lines().filter_map(parse_tick).collect();
        if beats.len() as u64 >= ticks {
            break beats;
        }
        // At the end of the file this blocks until the guest appends.
        let data = c.read(f, offset, 4096).expect("read telemetry");
        offset += data.len() as u64;
        text.push_str(&String::from_utf8_lossy(&data));
    };
    // The ack goes in once the shard's blocking read is pending (it prints
    // this line after sending the read), so the reply to that read can
    // only reach it through an interrupt.
    let console = state.join("logs").join(format!("{worker}.console"));
    let deadline = Instant::now() + HANG_GUARD;
    while !std::fs::read_to_string(&console)
        .unwrap_or_default()
        .contains("ninep: waiting for an ack")
    {
        assert!(
            Instant::now() < deadline,
            "{worker} never waited for its ack"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let w = c.walk_path(root, path).expect("walk telemetry");
    c.lopen(w, O_WRONLY | O_APPEND)
        .expect("open telemetry for append");
    c.write(w, u64::MAX, b"{\"ack\":true}\n")
        .expect("append ack");
    c.clunk(w).expect("clunk");
    c.clunk(f).expect("clunk");
    beats
}

fn has(console: &[String], line: &str) {
    assert!(
        console.iter().any(|l| l == line),
        "console lacks {line:?}:\n{console:#?}"
    );
}

fn starts(console: &[String], prefix: &str) -> String {
    console
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("console lacks a line starting {prefix:?}:\n{console:#?}"))
        .clone()
}

#[test]
fn the_ninep_shard_appends_heartbeats_a_queen_tails_through_irq_completions() {
    let h = hive(
        "gk9p",
        "[[guest]]\nname = \"worker-1\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         initrd = \"builtin:ramdisk\"\ncmdline = \"coco.manifest=/boot/test-ninep.toml coco.ticks=3\"\n",
    );
    let mut child = h.start();
    // The tail runs in a thread so a guest that never writes fails the
    // test (hang guard) instead of blocking it forever.
    let (tx, rx) = mpsc::channel();
    let st = h.state.clone();
    std::thread::spawn(move || {
        let _ = tx.send(tail_heartbeats(&st, "worker-1", 3));
    });
    let beats = match rx.recv_timeout(HANG_GUARD) {
        Ok(b) => b,
        Err(e) => {
            let _ = child.kill();
            let r = finish(child);
            panic!("no heartbeats ({e}):\n{}\n{}", r.stdout, r.stderr);
        }
    };
    let r = finish(child);
    r.assert_no_panic();
    let console = r.console("worker-1");
    assert_eq!(r.status, Some(0), "{console:#?}\n{}", r.stderr);

    // The heartbeats the queen read, in order, with the guest's clock: three
    // of them, as coco.ticks=3 says (the manifest's `@coco.ticks` word
    // overrides its `ticks=2`).
    let ticks: Vec<u64> = beats.iter().map(|b| b.0).collect();
    assert_eq!(ticks, vec![1, 2, 3], "{beats:?}");
    assert!(beats.windows(2).all(|w| w[0].1 <= w[1].1), "{beats:?}");

    // The driver found the device, attached with its bound identity and
    // printed /proc/boot as the namespace serves it.
    has(
        &console,
        "ninep: virtio-9p device, mount tag \"hive\", features 0x110000001",
    );
    has(&console, "ninep: attached as worker-1 (msize 8192)");
    has(&console, "ninep: /proc/boot: hive gk9p");
    starts(
        &console,
        "ninep: /proc/boot: guest worker-1 VM process started (pid ",
    );
    has(
        &console,
        "ninep: heartbeat 3/3 appended to /worker/worker-1/telemetry",
    );
    has(&console, "ninep: ack received");

    // A worker may not reach /queen/ctl: refused with the errno, audited.
    has(&console, "ninep: /queen/ctl refused at walk: ENOENT (2)");
    let journal = h.audit_journal();
    assert!(
        journal.contains("denied worker-heartbeat:worker-1 walk /queen"),
        "{journal}"
    );

    // Completions came through the IOAPIC line: notifications were
    // received, and at least one completion (the ack's read, pending before
    // the queen appended the ack) was seen only after one woke the driver.
    let done = starts(&console, "ninep: done: ");
    let nums: Vec<u64> = done
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [completions, notifications, woken, _spun] = nums[..] else {
        panic!("unexpected summary {done:?}");
    };
    assert!(completions > 100, "{done}");
    assert!(notifications > 0, "{done}");
    assert!(woken > 0, "{done}");

    // The benchmark lines are there (numbers go to docs/benchmarks.md).
    starts(&console, "ninep: bench read64 n=50 mean_us=");
    starts(&console, "ninep: bench append n=50 mean_us=");
    has(&console, "shard 0 (ninep) exited: 0");
    has(&console, "all shards ended: status 0");
}

#[test]
fn without_a_bridge_there_is_no_device_and_the_shard_exits_zero() {
    let r = common::run(&[
        "boot",
        "--name",
        "nodev",
        "--kernel",
        "builtin:guest-kernel",
        "--initrd",
        "builtin:ramdisk",
        "--cmdline",
        "coco.manifest=/boot/test-ninep.toml",
    ]);
    r.assert_no_panic();
    let console = r.console("nodev");
    assert_eq!(r.status, Some(0), "{console:#?}\n{}", r.stderr);
    has(
        &console,
        "ninep: no virtio device in the window (magic 0xffffffff, device 4294967295); nothing to do",
    );
    has(&console, "shard 0 (ninep) exited: 0");
}

#[test]
fn a_queen_spawn_with_ticks_gets_that_many_heartbeats_from_a_coconut_worker() {
    let h = hive(
        "spawn9p",
        "[[guest]]\nname = \"worker-1\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         cmdline = \"coco.after=halt\"\n\
         [[guest]]\nname = \"worker-9\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         initrd = \"builtin:ramdisk\"\ncmdline = \"coco.manifest=/boot/test-ninep-spawn.toml\"\n\
         autostart = false\n",
    );
    let mut child = h.start();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "[worker-1] idle");
    // worker-2 does not exist yet, so nothing of it sits in `out`'s buffer;
    // `finish` collects its lines (a few dozen: far below a pipe's size).
    child.stdout = Some(out.into_inner());
    let mut c = connect(&h.socket());
    let root = c.attach("queen", "").expect("attach");
    queen_write(&mut c, root, r#"{"spawn":"heartbeat","ticks":4}"#);
    let (tx, rx) = mpsc::channel();
    let st = h.state.clone();
    std::thread::spawn(move || {
        let _ = tx.send(tail_heartbeats(&st, "worker-2", 4));
    });
    let beats = match rx.recv_timeout(HANG_GUARD) {
        Ok(b) => b,
        Err(e) => {
            let _ = child.kill();
            panic!("no heartbeats from worker-2 ({e})");
        }
    };
    queen_write(&mut c, root, r#"{"kill":"worker-1"}"#);
    drop(c);
    let r = finish(child);
    let stdout = r.stdout.clone();
    r.assert_no_panic();
    assert_eq!(r.status, Some(0), "{stdout}\n{}", r.stderr);
    let ticks: Vec<u64> = beats.iter().map(|b| b.0).collect();
    assert_eq!(ticks, vec![1, 2, 3, 4], "{beats:?}");
    for line in [
        "[worker-2] ninep: attached as worker-2 (msize 8192)",
        "[worker-2] ninep: heartbeat 4/4 appended to /worker/worker-2/telemetry",
        "[worker-2] ninep: ack received",
        "[worker-2] all shards ended: status 0",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
}
