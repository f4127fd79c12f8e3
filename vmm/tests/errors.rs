//! Bad input to coco-vmm — broken kernels, missing files, impossible machine
//! sizes, malformed hive.toml — must each end with a clear error message and
//! a failure status, never a panic and never a hang.

mod common;

use common::{run, write};

fn assert_clean_failure(r: &common::Run, expected: &str) {
    r.assert_no_panic();
    assert_eq!(
        r.status,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stderr.contains(expected),
        "stderr should contain {expected:?}:\n{}",
        r.stderr
    );
}

#[test]
fn missing_kernel_file() {
    let r = run(&["boot", "--kernel", "/nonexistent/kernel.elf"]);
    assert_clean_failure(&r, "kernel: cannot open /nonexistent/kernel.elf");
}

#[test]
fn kernel_that_is_not_an_elf() {
    let dir = tempfile::tempdir().unwrap();
    let junk = write(dir.path(), "junk.elf", &[0x5a; 4096]);
    let r = run(&["boot", "--kernel", &junk]);
    assert_clean_failure(&r, "cannot load the kernel ELF");
}

#[test]
fn truncated_elf() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = write(dir.path(), "trunc.elf", &coco_images::GUEST_KERNEL[..100]);
    let r = run(&["boot", "--kernel", &truncated]);
    assert_clean_failure(&r, "cannot load the kernel ELF");
}

#[test]
fn elf_without_a_pvh_note() {
    // coco-vmm itself is a perfectly good ELF64 with no Xen PVH note.
    let r = run(&["boot", "--kernel", env!("CARGO_BIN_EXE_coco-vmm")]);
    r.assert_no_panic();
    assert_ne!(r.status, Some(0));
    assert!(
        r.stderr.contains("no PVH entry note") || r.stderr.contains("cannot load the kernel ELF"),
        "{}",
        r.stderr
    );
}

#[test]
fn kernel_path_that_is_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(&["boot", "--kernel", dir.path().to_str().unwrap()]);
    assert_clean_failure(&r, "is not a regular file");
}

#[test]
fn unknown_builtin_image() {
    let r = run(&["boot", "--kernel", "builtin:nope"]);
    assert_clean_failure(&r, "no built-in image named \"nope\"");
}

#[test]
fn too_little_memory() {
    let r = run(&["boot", "--kernel", "builtin:guest-kernel", "--memory", "1"]);
    assert_clean_failure(&r, "is too small");
}

#[test]
fn ramdisk_that_does_not_fit_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.img");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let r = run(&[
        "boot",
        "--kernel",
        "builtin:guest-kernel",
        "--memory",
        "4",
        "--initrd",
        big.to_str().unwrap(),
    ]);
    assert_clean_failure(&r, "does not fit in guest memory");
}

#[test]
fn zero_vcpus() {
    let r = run(&["boot", "--kernel", "builtin:guest-kernel", "--vcpus", "0"]);
    assert_clean_failure(&r, "0 vCPUs requested");
}

#[test]
fn command_line_too_long() {
    let long = "x".repeat(5000);
    let r = run(&[
        "boot",
        "--kernel",
        "builtin:guest-kernel",
        "--cmdline",
        &long,
    ]);
    assert_clean_failure(&r, "command line must be shorter");
}

#[test]
fn malformed_hive_toml_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "hive.toml",
        b"[hive]\nname = \"t\"\n\n[[guest]]\nname = \"w1\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\nvcpus = 0\nbogus = 1\n",
    );
    let r = run(&["run", "--config", &cfg]);
    assert_clean_failure(
        &r,
        "hive.toml:8:9: guest[0].vcpus: must be between 1 and 254, got 0",
    );
    assert!(
        r.stderr.contains("hive.toml:9:1: unknown key `bogus`"),
        "{}",
        r.stderr
    );
}

#[test]
fn hive_toml_syntax_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "hive.toml", b"[hive\nname = 1\n");
    let r = run(&["run", "--config", &cfg]);
    assert_clean_failure(&r, "hive.toml:1:");
    assert!(r.stderr.contains("TOML syntax error"), "{}", r.stderr);
}

#[test]
fn hive_toml_that_does_not_exist() {
    let r = run(&["run", "--config", "/nonexistent/hive.toml"]);
    assert_clean_failure(&r, "/nonexistent/hive.toml: cannot read");
}

#[test]
fn hive_toml_with_a_missing_kernel_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "hive.toml",
        b"[hive]\nname = \"t\"\n[[guest]]\nname = \"w1\"\nkind = \"coconut\"\nkernel = \"k.elf\"\n",
    );
    let r = run(&["run", "--config", &cfg]);
    assert_clean_failure(&r, "hive.toml:6:10: guest[0].kernel: file not found");
}

#[test]
fn binary_garbage_as_hive_toml() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "hive.toml",
        &[0xff, 0xfe, 0x00, 0x80, 0x7f, 0x01],
    );
    let r = run(&["run", "--config", &cfg]);
    r.assert_no_panic();
    assert_eq!(r.status, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("hive.toml:1:"), "{}", r.stderr);
}

#[test]
fn vfio_argument_that_is_not_a_pci_address() {
    let r = run(&[
        "boot",
        "--kernel",
        "builtin:guest-kernel",
        "--vfio",
        "not-a-device",
    ]);
    assert_clean_failure(&r, "VFIO passthrough of not-a-device");
    assert!(r.stderr.contains("not a PCI address"), "{}", r.stderr);
}

#[test]
fn vfio_device_that_does_not_exist() {
    // Domain ffff does not exist on any machine this runs on.
    let r = run(&[
        "boot",
        "--kernel",
        "builtin:guest-kernel",
        "--vfio",
        "ffff:ff:1f.7",
    ]);
    assert_clean_failure(&r, "VFIO passthrough of ffff:ff:1f.7");
    assert!(r.stderr.contains("no such PCI device"), "{}", r.stderr);
}
