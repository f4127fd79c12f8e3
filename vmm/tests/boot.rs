//! Boots guest-kernel through coco-vmm on this machine's KVM and checks what
//! the guest itself reports (banner, memory map, modules, ACPI, gate) and
//! what the VMM measured (milestones, exit status).

mod common;

use common::run;

const KERNEL: &str = "builtin:guest-kernel";
const RAMDISK: &str = "builtin:ramdisk";

fn timings(stderr: &str) -> serde_json::Value {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("coco-timings "))
        .unwrap_or_else(|| panic!("no timings line in:\n{stderr}"));
    serde_json::from_str(line).expect("timings JSON")
}

#[test]
fn guest_kernel_boots_reports_its_machine_and_exits_zero() {
    let r = run(&[
        "boot",
        "--name",
        "g1",
        "--kernel",
        KERNEL,
        "--initrd",
        RAMDISK,
        "--memory",
        "64",
        "--cmdline",
        "hello=world",
        "--timings",
        "json",
    ]);
    r.assert_no_panic();
    let console = r.console("g1");
    assert_eq!(
        r.status,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );

    // Banner first.
    assert!(
        console[0].starts_with("coconut guest-kernel ") && console[0].ends_with("booting (PVH)"),
        "{console:?}"
    );
    // The command line carries the VMM's options and then the user's.
    let flavour_gate = if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        "trap"
    } else {
        "syscall"
    };
    // ... including the vCPU's TSC frequency (KVM_GET_TSC_KHZ) for its clock.
    let cmdline = console
        .iter()
        .find_map(|l| l.strip_prefix("cmdline: "))
        .unwrap_or_else(|| panic!("no cmdline line in {console:?}"));
    let words: Vec<&str> = cmdline.split(' ').collect();
    assert_eq!(words.len(), 4, "{cmdline}");
    assert_eq!(words[0], format!("coco.gate={flavour_gate}"));
    assert_eq!(words[1], "coco.guest=g1");
    let khz: u64 = words[2]
        .strip_prefix("coco.tsc_khz=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no coco.tsc_khz in {cmdline}"));
    assert!(khz > 0, "{cmdline}");
    assert_eq!(words[3], "hello=world");
    assert!(console.contains(&format!("syscall gate: {flavour_gate}")));

    // The memory map the VMM built, as the guest parsed it.
    let expected_map = [
        "memmap: 4 entries",
        "memmap: [0x0000000000000000-0x000000000009fc00) ram",
        "memmap: [0x000000000009fc00-0x00000000000e0000) reserved",
        "memmap: [0x00000000000e0000-0x0000000000100000) acpi",
        "memmap: [0x0000000000100000-0x0000000004000000) ram",
    ];
    for line in expected_map {
        assert!(
            console.iter().any(|l| l == line),
            "missing {line:?} in {console:?}"
        );
    }
    let usable_kib = (0x9fc00 + (64 << 20) - 0x100000) / 1024;
    assert!(
        console.contains(&format!("memory: {usable_kib} KiB usable")),
        "{console:?}"
    );

    // Module 0 is the ext2 ramdisk.
    assert!(console.contains(&"modules: 1".to_string()), "{console:?}");
    let ramdisk_size = coco_images::RAMDISK.len();
    assert!(
        console
            .iter()
            .any(|l| l.starts_with("module 0: 0x") && l.ends_with(&format!("size {ramdisk_size}"))),
        "{console:?}"
    );
    assert!(
        console
            .iter()
            .any(|l| l.starts_with("module 0: ext2, block size 4096")
                && l.ends_with("label \"coco-ramdisk\"")),
        "{console:?}"
    );
    // ACPI as the VMM wrote it: one CPU, one IOAPIC, both tables.
    assert!(
        console
            .iter()
            .any(|l| l.starts_with("acpi: rsdp 0xe0000 rev 2, XSDT, tables: FACP APIC"))
    );
    assert!(
        console.contains(&"acpi: 1 cpu(s), 1 ioapic(s)".to_string()),
        "{console:?}"
    );
    // The boot report ends with "kernel ready"; then the ramdisk's default
    // manifest (/boot/shards.toml) runs its shards, and the kernel ends
    // with the profiling table and the all-exited-zero status.
    let ready_at = console
        .iter()
        .position(|l| l == "kernel ready")
        .unwrap_or_else(|| panic!("no kernel ready in {console:?}"));
    assert!(
        console[ready_at + 1..]
            .iter()
            .any(|l| l.starts_with("shard 0 (") && l.contains(") loaded from /bin/")),
        "{console:?}"
    );
    assert!(
        console.iter().any(|l| l.starts_with("profile: shards=")),
        "{console:?}"
    );
    assert_eq!(
        console.last().map(String::as_str),
        Some("all shards ended: status 0")
    );

    // Milestones: kernel entry, kernel ready, first shard, in order, then exit.
    let t = timings(&r.stderr);
    let ids: Vec<u64> = t["milestones"]
        .as_array()
        .expect("milestones")
        .iter()
        .map(|m| m["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let entry = t["milestones"][0]["us"].as_u64().unwrap();
    let ready = t["milestones"][1]["us"].as_u64().unwrap();
    let first_shard = t["milestones"][2]["us"].as_u64().unwrap();
    let exit = t["exit_us"].as_u64().unwrap();
    assert!(
        entry <= ready && ready <= first_shard && first_shard <= exit,
        "{t}"
    );
    assert_eq!(t["outcome"]["kind"], "guest-exit");
    assert_eq!(t["outcome"]["status"], 0);
    assert!(t["rss_outside_guest_kib"].as_u64().is_some());
}

#[test]
fn smp_guest_sees_every_vcpu_in_its_madt() {
    for vcpus in ["2", "4"] {
        let r = run(&[
            "boot", "--name", "smp", "--kernel", KERNEL, "--vcpus", vcpus,
        ]);
        r.assert_no_panic();
        assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
        let console = r.console("smp");
        assert!(
            console.contains(&format!("acpi: {vcpus} cpu(s), 1 ioapic(s)")),
            "{console:?}"
        );
        assert!(console.contains(&"modules: 0".to_string()), "{console:?}");
    }
}

#[test]
fn memory_above_three_gib_is_split_around_the_mmio_hole() {
    let r = run(&[
        "boot", "--name", "big", "--kernel", KERNEL, "--memory", "4096",
    ]);
    r.assert_no_panic();
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let console = r.console("big");
    for line in [
        "memmap: 5 entries",
        "memmap: [0x0000000000100000-0x00000000c0000000) ram",
        "memmap: [0x0000000100000000-0x0000000140000000) ram",
    ] {
        assert!(
            console.iter().any(|l| l == line),
            "missing {line:?} in {console:?}"
        );
    }
}

#[test]
fn console_log_file_gets_exactly_what_the_guest_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/g.console");
    let r = run(&[
        "boot",
        "--name",
        "g",
        "--kernel",
        KERNEL,
        "--console-log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    let logged = std::fs::read_to_string(&log).unwrap();
    let logged_lines: Vec<&str> = logged.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(logged_lines, r.console("g"));
    assert!(logged.ends_with('\n'));
}

#[test]
fn human_timings_table_lists_milestones() {
    let r = run(&["boot", "--kernel", KERNEL, "--timings"]);
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("milestone 1 (kernel-entry)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("milestone 2 (kernel-ready)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("guest exited with status 0"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("VMM RSS outside guest memory"),
        "{}",
        r.stderr
    );
}

#[test]
fn kernel_panic_is_reported_with_its_status() {
    let r = run(&[
        "boot",
        "--name",
        "p",
        "--kernel",
        KERNEL,
        "--cmdline",
        "coco.selftest=panic",
    ]);
    r.assert_no_panic();
    assert_eq!(
        r.status,
        Some(i32::from(coconut_abi::exit::KERNEL_PANIC)),
        "{}",
        r.stderr
    );
    let console = r.console("p");
    assert!(
        console
            .iter()
            .any(|l| l.starts_with("panic: selftest: deliberate kernel panic")),
        "{console:?}"
    );
}

#[test]
fn kernel_page_fault_is_reported_with_its_address() {
    let r = run(&[
        "boot",
        "--name",
        "pf",
        "--kernel",
        KERNEL,
        "--cmdline",
        "coco.selftest=page-fault",
    ]);
    r.assert_no_panic();
    assert_eq!(
        r.status,
        Some(i32::from(coconut_abi::exit::KERNEL_PANIC)),
        "{}",
        r.stderr
    );
    let console = r.console("pf");
    assert!(
        console
            .iter()
            .any(|l| l.starts_with("panic: exception 14 (page fault)") && l.ends_with("cr2=0x1000")),
        "{console:?}"
    );
}

#[test]
fn edu_test_without_a_pci_device_fails_with_its_own_status() {
    // No --vfio: no PCI bus, so the guest's scan finds nothing (all-ones)
    // and the test must say so and fail, not hang or pass.
    let r = run(&[
        "boot",
        "--name",
        "edu",
        "--kernel",
        KERNEL,
        "--cmdline",
        "coco.test=edu",
    ]);
    r.assert_no_panic();
    assert_eq!(r.status, Some(0x72), "{}", r.stderr);
    let console = r.console("edu");
    assert_eq!(
        console.last().map(String::as_str),
        Some("edu: FAIL no 1234:11e8 on PCI bus 0"),
        "{console:?}"
    );
}

#[test]
fn unknown_device_test_fails_with_its_own_status() {
    let r = run(&[
        "boot",
        "--name",
        "t",
        "--kernel",
        KERNEL,
        "--cmdline",
        "coco.test=nonsense",
    ]);
    r.assert_no_panic();
    assert_eq!(r.status, Some(0x72), "{}", r.stderr);
    assert!(
        r.console("t")
            .iter()
            .any(|l| l == "test: unknown coco.test=nonsense"),
        "{}",
        r.stdout
    );
}
