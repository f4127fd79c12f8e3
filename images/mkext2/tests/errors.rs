//! Inputs the builder must refuse, each with a typed error that names the
//! offending path.

mod common;

use std::fs;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;

use coco_mkext2::{Error, MAX_IMAGE_BYTES, Options, build_image, write_image};
use common::put;

fn build(src: &Path) -> Result<Vec<u8>, Error> {
    build_image(src, &Options::default())
}

#[test]
fn fifo_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src, "ok.txt", b"fine");
    fs::create_dir_all(src.join("sub")).unwrap();
    let fifo = src.join("sub/pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    match build(&src) {
        Err(Error::UnsupportedFileType { path, kind }) => {
            assert_eq!(path, fifo);
            assert_eq!(kind, "FIFO");
        }
        other => panic!("expected UnsupportedFileType, got {other:?}"),
    }
    let msg = build(&src).unwrap_err().to_string();
    assert!(msg.contains("sub/pipe") && msg.contains("FIFO"), "{msg}");
}

#[test]
fn socket_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    let sock = src.join("sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    match build(&src) {
        Err(Error::UnsupportedFileType { path, kind }) => {
            assert_eq!(path, sock);
            assert_eq!(kind, "socket");
        }
        other => panic!("expected UnsupportedFileType, got {other:?}"),
    }
}

#[test]
fn missing_source_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("does-not-exist");
    match build(&missing) {
        Err(Error::Io { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn source_that_is_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(build(&file), Err(Error::NotADirectory { path }) if path == file));
}

#[test]
fn lost_and_found_in_the_source_root() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("lost+found")).unwrap();
    assert!(matches!(build(&src), Err(Error::ReservedName { .. })));
    // Deeper down it is an ordinary name.
    fs::rename(src.join("lost+found"), src.join("x")).unwrap();
    fs::create_dir_all(src.join("x/lost+found")).unwrap();
    assert!(build(&src).is_ok());
}

#[test]
fn too_deep() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut deep = src.clone();
    for _ in 0..257 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    match build(&src) {
        Err(Error::TooDeep { path, limit: 256 }) => assert_eq!(path, deep),
        other => panic!("expected TooDeep, got {other:?}"),
    }
    // 256 levels are fine.
    fs::remove_dir(&deep).unwrap();
    assert!(build(&src).is_ok());
}

#[test]
fn bad_label() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        label: "seventeen-bytes!!".into(),
        ..Options::default()
    };
    assert!(matches!(
        build_image(tmp.path(), &opts),
        Err(Error::BadLabel { .. })
    ));
}

#[test]
fn image_too_large() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        min_size_bytes: MAX_IMAGE_BYTES + 1,
        ..Options::default()
    };
    match build_image(tmp.path(), &opts) {
        Err(Error::ImageTooLarge { needed, limit }) => {
            assert!(needed > limit);
            assert_eq!(limit, 4 << 30);
        }
        other => panic!("expected ImageTooLarge, got {:?}", other.map(|v| v.len())),
    }
    let opts = Options {
        min_size_bytes: u64::MAX,
        ..Options::default()
    };
    assert!(matches!(
        build_image(tmp.path(), &opts),
        Err(Error::ImageTooLarge { .. })
    ));
}

#[test]
fn output_inside_source() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src, "a", b"a");
    let out = src.join("img.ext2");
    assert!(matches!(
        write_image(&src, &out, &Options::default()),
        Err(Error::OutputInsideSource { .. })
    ));
    assert!(!out.exists());
}

#[test]
fn unwritable_output_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src, "a", b"a");
    let out = tmp.path().join("no-such-dir/img.ext2");
    match write_image(&src, &out, &Options::default()) {
        Err(Error::Io { path, .. }) => assert!(path.starts_with(tmp.path().join("no-such-dir"))),
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(!tmp.path().join("no-such-dir").exists());
}
