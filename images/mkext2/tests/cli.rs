//! The `coco-mkext2` binary: usage, summary line, exit codes.

mod common;

use std::process::Command;

use common::{dumpe2fs_header, fsck_clean, header_field, put, stat};

fn mkext2() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coco-mkext2"));
    cmd.env_remove("SOURCE_DATE_EPOCH");
    cmd
}

#[test]
fn help_exits_zero() {
    let out = mkext2().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("Usage: coco-mkext2"), "{text}");
}

#[test]
fn bad_usage_exits_two() {
    for args in [
        &[][..],
        &["only-src"],
        &["--frobnicate", "a", "b"],
        &["--min-size"],
    ] {
        let out = mkext2().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("Usage:"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn builds_and_prints_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src, "hello.txt", b"hello\n");
    let img = tmp.path().join("root.img");
    let out = mkext2()
        .args(["--label", "cli", "--min-size", "1M"])
        .arg(&src)
        .arg(&img)
        .env("SOURCE_DATE_EPOCH", "1234")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("root.img") && text.contains("1 files"),
        "{text}"
    );
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 1 << 20);
    fsck_clean(&img);
    assert_eq!(
        header_field(&dumpe2fs_header(&img), "Filesystem volume name"),
        "cli"
    );
    assert!(stat(&img, "/hello.txt").contains("mtime: 0x000004d2"));
}

#[test]
fn errors_go_to_stderr_with_status_one() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let out = mkext2()
        .arg(&missing)
        .arg(tmp.path().join("x.img"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("coco-mkext2: error: "), "{err}");
    assert!(err.contains(&*missing.to_string_lossy()), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn malformed_source_date_epoch_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src, "f", b"");
    let out = mkext2()
        .arg(&src)
        .arg(tmp.path().join("x.img"))
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("SOURCE_DATE_EPOCH")
    );
}
