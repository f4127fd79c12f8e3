//! Boots guest-kernel with the shards shipped in the built-in ramdisk
//! (guest-kernel/shards, built by images/build.rs) and each boot manifest
//! in images/rootfs/boot, and asserts the transcript: who ran, what each
//! shard printed (checksums computed here independently), who was killed
//! and why, the profiling table and the VM's exit status.

mod common;

use coco_images::pattern;
use coconut_abi::exit;
use coconut_abi::syscall::config::{STACK_PAGES, STACK_TOP};
use common::run;

const KERNEL: &str = "builtin:guest-kernel";
const RAMDISK: &str = "builtin:ramdisk";

/// Boots the built-in images with manifest `manifest` (None: the default).
fn boot(name: &str, manifest: Option<&str>) -> (common::Run, Vec<String>) {
    let cmdline = manifest.map(|m| format!("coco.manifest={m}"));
    let mut args = vec![
        "boot", "--name", name, "--kernel", KERNEL, "--initrd", RAMDISK, "--memory", "128",
    ];
    if let Some(c) = &cmdline {
        args.extend(["--cmdline", c.as_str()]);
    }
    let r = run(&args);
    r.assert_no_panic();
    let console = r.console(name);
    (r, console)
}

/// The id the kernel gave shard `name` (from its "loaded" line).
fn shard_id(console: &[String], name: &str) -> u32 {
    let suffix = format!(" ({name}) loaded from ");
    console
        .iter()
        .find_map(|l| {
            let rest = l.strip_prefix("shard ")?;
            let (id, tail) = rest.split_once(' ')?;
            format!(" {tail}")
                .starts_with(&suffix)
                .then(|| id.parse().ok())?
        })
        .unwrap_or_else(|| panic!("shard {name} was not loaded: {console:#?}"))
}

fn has(console: &[String], line: &str) {
    assert!(
        console.iter().any(|l| l == line),
        "missing {line:?} in {console:#?}"
    );
}

fn exited(console: &[String], name: &str, code: u32) {
    let id = shard_id(console, name);
    has(console, &format!("shard {id} ({name}) exited: {code}"));
}

/// The profiling line of shard `name`.
fn profile<'a>(console: &'a [String], name: &str) -> &'a str {
    let id = shard_id(console, name);
    let prefix = format!("profile: id={id} name={name} ");
    console
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no profile line for {name}: {console:#?}"))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    pattern::fnv1a64(bytes)
}

fn rootfs_file(path: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../images/rootfs")
        .join(path.trim_start_matches('/'));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// fs-reader's lines, with the checksums computed here from the sources.
/// `read_all`: it was asked to `fs_read` the whole large file, not only
/// its first 256 KiB (it maps all of it either way).
fn assert_fs_reader(console: &[String], read_all: bool) {
    for path in ["/etc/motd", "/data/nested/deeper/note.txt"] {
        let bytes = rootfs_file(path);
        has(
            console,
            &format!(
                "fs-reader: {path}: {} bytes, fnv1a {:#018x}",
                bytes.len(),
                fnv1a(&bytes)
            ),
        );
    }
    let big = pattern::pattern_bytes();
    // The file reaches past 12 direct and 1024 single-indirect blocks.
    assert!(big.len() > (12 + 1024) * 4096);
    let path = pattern::PATTERN_PATH;
    has(
        console,
        &format!(
            "fs-reader: mapped {path}: {} bytes, fnv1a {:#018x}, pattern ok",
            big.len(),
            fnv1a(&big)
        ),
    );
    let read = if read_all {
        format!("{} bytes, fnv1a {:#018x}", big.len(), fnv1a(&big))
    } else {
        let prefix = &big[..256 * 1024];
        format!(
            "first {} bytes, fnv1a {:#018x}",
            prefix.len(),
            fnv1a(prefix)
        )
    };
    has(
        console,
        &format!("fs-reader: read {path}: {read}, pattern ok"),
    );
    has(console, "fs-reader: ok");
    exited(console, "fs-reader", 0);
}

#[test]
fn default_manifest_runs_every_shipped_shard_to_exit_zero() {
    let (r, console) = boot("s0", None);
    assert_eq!(r.status, Some(0), "{console:#?}\n{}", r.stderr);
    for name in ["hello", "hello-c", "fs-reader", "fuzz"] {
        exited(&console, name, 0);
        assert!(profile(&console, name).ends_with(" exit=0"));
    }
    let hello = shard_id(&console, "hello");
    has(
        &console,
        &format!("hello: hello from shard {hello} (hello), priority 2"),
    );
    has(&console, "hello: heap ok: 4 words, sum 8386560");
    let hello_c = shard_id(&console, "hello-c");
    has(
        &console,
        &format!("hello-c: hello from shard {hello_c} (hello-c), written in C"),
    );
    has(
        &console,
        "hello-c: time ok, empty capability slot refused (bad handle)",
    );
    assert_fs_reader(&console, false);
    // The fuzz shard ran its cases and none failed.
    let summary = console
        .iter()
        .find_map(|l| l.strip_prefix("fuzz: ")?.strip_suffix(" failures"))
        .unwrap_or_else(|| panic!("no fuzz summary in {console:#?}"));
    let (cases, failures) = summary.split_once(" cases, ").expect("summary format");
    let cases: u32 = cases.parse().expect("case count");
    assert_eq!(failures, "0", "{console:#?}");
    assert!(cases >= 100, "only {cases} fuzz cases");
    let fails: Vec<_> = console.iter().filter(|l| l.contains(" FAIL ")).collect();
    assert!(fails.is_empty(), "{fails:#?}");
    // Every frame a shard or the kernel took for shards came back.
    let frames = console
        .iter()
        .find(|l| l.starts_with("frames: ") && l.contains(" in use at shutdown"))
        .unwrap_or_else(|| panic!("no shutdown frame count in {console:#?}"));
    assert!(
        frames.starts_with("frames: 0 in use at shutdown (0 kernel), 0 refused frees"),
        "{frames}"
    );
    assert_eq!(
        console.last().map(String::as_str),
        Some("all shards ended: status 0")
    );
}

#[test]
fn ext2_file_through_double_indirect_blocks_reads_and_maps_intact() {
    let (r, console) = boot("s1", Some("/boot/test-fs.toml"));
    assert_eq!(r.status, Some(0), "{console:#?}\n{}", r.stderr);
    assert_fs_reader(&console, true);
}

#[test]
fn faulting_shards_are_killed_with_their_cause_while_others_finish() {
    let (r, console) = boot("s2", Some("/boot/test-faults.toml"));
    assert_eq!(
        r.status,
        Some(i32::from(exit::SHARD_FAILED)),
        "{console:#?}\n{}",
        r.stderr
    );
    let killed = |name: &str| -> String {
        let id = shard_id(&console, name);
        let prefix = format!("shard {id} ({name}) killed: ");
        let line = console
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{name} was not killed: {console:#?}"));
        assert!(
            console.contains(&format!(
                "faulter: shard {id} ({name}) about to {}",
                args_of(name)
            )),
            "{console:#?}"
        );
        assert!(
            !console.iter().any(|l| l.starts_with("faulter: survived")),
            "{console:#?}"
        );
        assert!(profile(&console, name).contains(" exit=killed:"));
        line.to_string()
    };
    assert!(killed("faulter").starts_with("page fault at 0x123456780000 "));
    assert!(killed("faulter-kernel").starts_with("page fault at 0xffff800000000000 "));
    assert!(killed("faulter-null").starts_with("page fault at 0x0 "));
    // A write to its own code: the address is in the text segment at 4 MiB.
    assert!(killed("faulter-wx").starts_with("page fault at 0x40"));
    // A jump into data: the faulting address is the instruction's.
    let nx = killed("faulter-nx");
    let addr = nx
        .strip_prefix("page fault at ")
        .and_then(|s| s.split_once(' '))
        .map(|(a, _)| a.to_string())
        .expect("nx line");
    assert!(nx.contains(&format!("(rip {addr},")), "{nx}");
    // Running off the stack hits the guard page below it.
    let guard_hi = STACK_TOP - STACK_PAGES * 4096;
    let stack = killed("faulter-stack");
    let at = stack
        .strip_prefix("page fault at 0x")
        .and_then(|s| s.split_once(' '))
        .and_then(|(a, _)| u64::from_str_radix(a, 16).ok())
        .expect("stack line");
    assert!(
        (guard_hi - 4096..guard_hi).contains(&at),
        "{stack} not in the guard page"
    );
    assert!(killed("faulter-ud").starts_with("invalid opcode at 0x"));
    assert!(killed("faulter-de").starts_with("divide error at 0x"));
    assert!(killed("faulter-gp").starts_with("general protection fault at 0x"));
    // The others ran to completion.
    exited(&console, "hello", 0);
    assert_fs_reader(&console, false);
    assert_eq!(
        console.last().map(String::as_str),
        Some(format!("all shards ended: status {}", exit::SHARD_FAILED).as_str())
    );
}

fn args_of(name: &str) -> &'static str {
    match name {
        "faulter" => "page-fault",
        "faulter-kernel" => "kernel-read",
        "faulter-null" => "null-write",
        "faulter-wx" => "write-code",
        "faulter-nx" => "exec-data",
        "faulter-stack" => "stack-overflow",
        "faulter-ud" => "invalid-opcode",
        "faulter-de" => "divide-error",
        "faulter-gp" => "privileged",
        _ => panic!("no faulter {name}"),
    }
}

/// chan-test's message `i` (the same formula as the shard, written again).
fn chan_message(i: u32) -> Vec<u8> {
    let len = if i == 10 {
        200
    } else {
        8 + (i as usize * 37) % 57
    };
    let mut m = i.to_le_bytes().to_vec();
    m.extend((0..len - 4).map(|j| (i as usize * 31 + j * 7) as u8));
    m
}

#[test]
fn channel_back_pressure_blocks_or_refuses_and_loses_nothing() {
    let (r, console) = boot("s3", Some("/boot/test-channels.toml"));
    assert_eq!(r.status, Some(0), "{console:#?}\n{}", r.stderr);
    has(
        &console,
        "chan-test: producer: queue full after 4 messages: send without waiting -> would block",
    );
    has(
        &console,
        "chan-test: producer: send with a 1 ms timeout on the full queue -> timed out",
    );
    has(
        &console,
        "chan-test: consumer: message 10 does not fit 64 bytes -> message too big",
    );
    has(
        &console,
        "chan-test: consumer: message 10 delivered to a larger buffer (200 bytes)",
    );
    let all: Vec<u8> = (0..100).flat_map(chan_message).collect();
    let (bytes, sum) = (all.len(), fnv1a(&all));
    has(
        &console,
        &format!("chan-test: producer: sent 100 messages, {bytes} bytes, fnv1a {sum:#018x}"),
    );
    has(
        &console,
        &format!(
            "chan-test: consumer: received 100 messages, {bytes} bytes, fnv1a {sum:#018x}, in order, none lost"
        ),
    );
    exited(&console, "producer", 0);
    exited(&console, "consumer", 0);
}

#[test]
fn revoke_cascades_through_grants_and_rights_only_shrink() {
    let (r, console) = boot("s4", Some("/boot/test-caps.toml"));
    assert_eq!(r.status, Some(0), "{console:#?}\n{}", r.stderr);
    for line in [
        "cap-test: a: grant without GRANT is refused ok",
        "cap-test: a: restrict cannot grow rights ok",
        "cap-test: a: grant x to b ok",
        "cap-test: b: copy is a CHANNEL with SEND|RECV|GRANT ok",
        "cap-test: b: grant copy to c with SEND only ok",
        "cap-test: c: copy has SEND only ok",
        "cap-test: c: receive without RECV ok",
        "cap-test: c: grant on without GRANT ok",
        "cap-test: c: send on the copy ok",
        "cap-test: a: c's message arrived on x ok",
        "cap-test: a: revoke x ok",
        "cap-test: a: own x gone after revoke ok",
        "cap-test: b: copy gone after a's revoke (inspect) ok",
        "cap-test: b: copy gone after a's revoke (send) ok",
        "cap-test: c: copy gone after a's revoke (inspect) ok",
        "cap-test: c: copy gone after a's revoke (send) ok",
        "cap-test: a: 0 failures",
        "cap-test: b: 0 failures",
        "cap-test: c: 0 failures",
    ] {
        has(&console, line);
    }
    for name in ["cap-a", "cap-b", "cap-c"] {
        exited(&console, name, 0);
    }
}

#[test]
fn a_panicking_rust_shard_prints_its_message_and_exits_101() {
    let (r, console) = boot("s5", Some("/boot/test-panic.toml"));
    assert_eq!(
        r.status,
        Some(i32::from(exit::SHARD_FAILED)),
        "{console:#?}\n{}",
        r.stderr
    );
    assert!(
        console.iter().any(|l| l
            .starts_with("panic in panicker: asked to panic by its args at hello/src/main.rs:")),
        "{console:#?}"
    );
    exited(&console, "panicker", 101);
    exited(&console, "hello", 0);
}
