//! The command-line surface: help is complete, `check` reports the host,
//! `run` drives a hive of real VM processes.

mod common;

use std::process::Stdio;

use common::hive::hive;
use common::{coco_vmm, finish, run};

#[test]
fn help_lists_every_command_and_boot_option() {
    let r = run(&["--help"]);
    assert_eq!(r.status, Some(0));
    for cmd in ["boot", "run", "check", "bench", "COCO_LOG"] {
        assert!(r.stdout.contains(cmd), "--help lacks {cmd}:\n{}", r.stdout);
    }
    let r = run(&["boot", "--help"]);
    for opt in [
        "--kernel",
        "--initrd",
        "--cmdline",
        "--memory",
        "--vcpus",
        "--timings",
        "--name",
        "--console-log",
    ] {
        assert!(
            r.stdout.contains(opt),
            "boot --help lacks {opt}:\n{}",
            r.stdout
        );
    }
}

#[test]
fn check_reports_kvm_flavour_and_gpu_inventory() {
    let r = run(&["check"]);
    r.assert_no_panic();
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert!(r.stdout.starts_with("kvm: "), "{}", r.stdout);
    if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        assert!(r.stdout.contains("kvm-pvm"), "{}", r.stdout);
        assert!(
            r.stdout.contains("syscall gate for guest-kernel: trap"),
            "{}",
            r.stdout
        );
    }
    assert!(
        r.stdout.contains("kvm capabilities: irqchip"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("vfio:"), "{}", r.stdout);
    assert!(r.stdout.contains("iommu:"), "{}", r.stdout);

    let r = run(&["check", "--json"]);
    assert_eq!(r.status, Some(0));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("check --json is JSON");
    assert!(v["flavour"].is_string());
    assert!(v["gpu"].is_object());
}

#[test]
fn embedded_demo_hive_boots_its_worker_and_exits_zero() {
    let state = tempfile::tempdir().unwrap();
    let r = {
        let child = coco_vmm()
            .arg("run")
            .env("XDG_RUNTIME_DIR", state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        finish(child)
    };
    r.assert_no_panic();
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let console = r.console("worker-1");
    assert!(
        console.iter().any(|l| l.contains("booting (PVH)")),
        "{}",
        r.stdout
    );
    assert!(
        console.contains(&"acpi: 2 cpu(s), 1 ioapic(s)".to_string()),
        "{console:?}"
    );
    // The worker boots with the built-in ramdisk, whose default manifest
    // runs the shipped shards; every one exits 0.
    assert!(console.contains(&"kernel ready".to_string()), "{console:?}");
    assert_eq!(
        console.last().map(String::as_str),
        Some("all shards ended: status 0")
    );
    let log = state.path().join("coco/demo/logs/worker-1.console");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("kernel ready"));
}

#[test]
fn a_hive_runs_every_autostart_guest_and_reports_the_first_failure() {
    let h = hive(
        "pair",
        "[[guest]]\nname = \"worker-1\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         [[guest]]\nname = \"worker-2\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\nvcpus = 2\n\
         [[guest]]\nname = \"worker-3\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\nautostart = false\n",
    );
    let r = run(&["run", "--config", &h.config]);
    r.assert_no_panic();
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.console("worker-1").last().map(String::as_str),
        Some("kernel ready")
    );
    assert_eq!(
        r.console("worker-2").last().map(String::as_str),
        Some("kernel ready")
    );
    assert!(
        r.console("worker-3").is_empty(),
        "autostart = false must not boot"
    );
    assert!(h.state.join("logs/worker-1.console").exists());
    assert!(h.state.join("logs/worker-2.console").exists());
}

#[test]
fn sigterm_stops_a_running_guest_cleanly() {
    // coco.after=halt keeps the guest idle (hlt) after it is ready, so only
    // the signal can end it.
    let mut child = coco_vmm()
        .args([
            "boot",
            "--name",
            "idle",
            "--kernel",
            "builtin:guest-kernel",
            "--cmdline",
            "coco.after=halt",
            "--timings",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the guest is ready by reading its console.
    let stdout = child.stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert!(n > 0, "guest ended before it was ready:\n{seen}");
        seen.push_str(&line);
        if line.contains("kernel ready") {
            break;
        }
    }
    let pid = child.id() as i32;
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    child.stdout = Some(reader.into_inner());
    let r = finish(child);
    r.assert_no_panic();
    assert_eq!(r.status, Some(128 + libc::SIGTERM), "{}", r.stderr);
    assert!(r.stderr.contains("\"kind\":\"signal\""), "{}", r.stderr);
}
