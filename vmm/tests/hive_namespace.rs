//! `coco-vmm run` serves the namespace: a queen on the hive's Unix socket
//! sees the hive.toml workers, their VM processes in /proc/boot, and a
//! `kill` stops the worker's VM process; the hive ends when no VM is left.

mod common;

use std::io::BufReader;

use common::finish;
use common::hive::{hive, wait_for_line};
use common::queen::{connect, queen_write, read_file};
use secure9p::wire::O_RDONLY;

#[test]
fn a_spawn_on_queen_ctl_boots_a_real_worker_vm_from_the_template() {
    let h = hive(
        "sp",
        "[[guest]]\nname = \"worker-1\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         cmdline = \"coco.after=halt\"\n\
         [[guest]]\nname = \"worker-9\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         cmdline = \"coco.after=halt\"\nautostart = false\n",
    );
    let mut child = h.start();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "[worker-1] idle");
    let mut c = connect(&h.socket());
    let root = c.attach("queen", "").expect("attach");
    queen_write(&mut c, root, r#"{"spawn":"heartbeat","ticks":3}"#);
    // The spawned worker is numbered after the registered one and really boots.
    wait_for_line(&mut out, "[worker-2] idle");
    let boot = read_file(&mut c, root, "proc/boot");
    assert!(boot.contains("guest worker-2 VM process started"), "{boot}");
    queen_write(&mut c, root, r#"{"kill":"worker-2"}"#);
    queen_write(&mut c, root, r#"{"kill":"worker-1"}"#);
    drop(c);
    child.stdout = Some(out.into_inner());
    let r = finish(child);
    r.assert_no_panic();
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    let journal = h.audit_journal();
    assert!(journal.contains("spawned worker-2"), "{journal}");
    assert!(journal.contains("stopped worker-2"), "{journal}");
}

#[test]
fn a_crashing_worker_vm_is_reported_and_revoked_and_fails_the_hive() {
    let h = hive(
        "crash",
        "[[guest]]\nname = \"worker-1\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         cmdline = \"coco.selftest=panic\"\n",
    );
    let r = common::run(&["run", "--config", &h.config]);
    r.assert_no_panic();
    assert_eq!(
        r.status,
        Some(0x70),
        "the kernel-panic status is the hive's: {}",
        r.stderr
    );
    let journal = h.audit_journal();
    assert!(journal.contains("worker-1 exited: status 112"), "{journal}");
}

#[test]
fn a_queen_on_the_hive_socket_sees_the_worker_and_kill_stops_its_vm() {
    let h = hive(
        "ns",
        "[[guest]]\nname = \"worker-1\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         cmdline = \"coco.after=halt\"\n",
    );
    let mut child = h.start();
    // Wait until the worker is idle, so the kill finds a running VM.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "[worker-1] idle");

    let mut c = connect(&h.socket());
    let root = c
        .attach("queen", "")
        .expect("the queen attaches on the Unix socket");
    let workers = c.walk_path(root, "worker").expect("/worker");
    c.lopen(workers, O_RDONLY).expect("open /worker");
    let names: Vec<String> = c
        .readdir_all(workers)
        .expect("readdir")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"worker-1".to_string()), "{names:?}");
    let boot = read_file(&mut c, root, "proc/boot");
    assert!(boot.contains("guest worker-1 VM process started"), "{boot}");

    queen_write(&mut c, root, r#"{"kill":"worker-1"}"#);
    drop(c);

    child.stdout = Some(out.into_inner());
    let r = finish(child);
    r.assert_no_panic();
    assert_eq!(
        r.status,
        Some(0),
        "a killed worker is not a failure:\n{}",
        r.stderr
    );
    assert!(r.stderr.contains("namespace on unix:"), "{}", r.stderr);
    let journal = h.audit_journal();
    for line in [
        "registered worker-1",
        "killed worker-1",
        "stopped worker-1",
        "VM process of worker-1 ended: status 143",
    ] {
        assert!(
            journal.contains(line),
            "audit journal lacks {line:?}:\n{journal}"
        );
    }
    assert!(!h.socket().exists(), "the socket is removed at the end");
}

#[test]
fn a_worker_guest_not_named_worker_n_is_refused_before_anything_boots() {
    let h = hive(
        "bad",
        "[[guest]]\nname = \"camera\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n",
    );
    let r = common::run(&["run", "--config", &h.config]);
    r.assert_no_panic();
    assert_eq!(r.status, Some(1));
    assert!(
        r.stderr
            .contains("guest camera: a worker's name must be worker-N"),
        "{}",
        r.stderr
    );
}
