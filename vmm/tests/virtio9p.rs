//! The VM process's virtio-9p wiring, from the outside: the bridge
//! descriptor is checked before anything is built, and a guest given a
//! bridge learns its virtio-mmio window (guest-kernel from the command line;
//! Linux from the DSDT, checked by the ACPI unit tests and the nested tier).

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::Stdio;

use common::{coco_vmm, finish};

/// Runs `coco-vmm boot` with `fd` duplicated to descriptor 3 in the child.
/// No ramdisk, hence no shards: the default manifest's `ninep` driver would
/// talk to the bridge, and nothing serves these sockets (the driver is
/// tested against a real hive in `guest_kernel_9p.rs`).
fn boot_with_fd3(fd: i32, extra: &[&str]) -> common::Run {
    let mut cmd = coco_vmm();
    cmd.args([
        "boot",
        "--kernel",
        "builtin:guest-kernel",
        "--ninep-fd",
        "3",
    ])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    coco_vmm::hive::pass_as_fd3(&mut cmd, fd);
    finish(cmd.spawn().expect("start coco-vmm"))
}

#[test]
fn a_guest_with_a_bridge_is_told_its_virtio_mmio_window() {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let r = boot_with_fd3(theirs.as_raw_fd(), &["--ninep-tag", "hive"]);
    drop(ours);
    r.assert_no_panic();
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let cmdline = r
        .stdout
        .lines()
        .find(|l| l.contains("cmdline: "))
        .unwrap_or_default();
    assert!(
        cmdline.contains("virtio_mmio.device=4K@0xd0000000:5"),
        "{cmdline}"
    );
    assert!(
        r.stderr
            .contains("virtio-9p at 0xd0000000 (GSI 5), mount tag \"hive\""),
        "{}",
        r.stderr
    );
}

#[test]
fn a_bridge_that_is_not_a_socket_is_refused() {
    let file = tempfile::tempfile().expect("temp file");
    let r = boot_with_fd3(file.as_raw_fd(), &[]);
    r.assert_no_panic();
    assert_eq!(r.status, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("virtio-9p: the bridge descriptor"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_bridge_descriptor_that_is_not_open_is_refused() {
    let r = common::run(&[
        "boot",
        "--kernel",
        "builtin:guest-kernel",
        "--ninep-fd",
        "77",
    ]);
    r.assert_no_panic();
    assert_eq!(r.status, Some(1));
    assert!(r.stderr.contains("--ninep-fd 77"), "{}", r.stderr);
}

#[test]
fn standard_streams_cannot_be_the_bridge() {
    let r = common::run(&[
        "boot",
        "--kernel",
        "builtin:guest-kernel",
        "--ninep-fd",
        "1",
    ]);
    r.assert_no_panic();
    assert_eq!(r.status, Some(1));
    assert!(
        r.stderr.contains("standard streams cannot be the bridge"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_coconut_guest_cannot_be_given_a_virtio_pci_device() {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let r = boot_with_fd3(theirs.as_raw_fd(), &["--ninep-transport", "pci"]);
    drop(ours);
    r.assert_no_panic();
    assert_eq!(r.status, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("--ninep-transport pci: coconut guests speak virtio-mmio only"),
        "{}",
        r.stderr
    );
}
