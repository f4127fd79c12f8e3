//! Builds images from temporary trees and checks them with e2fsprogs:
//! `e2fsck -fn` must be silent and `debugfs` must read back exactly what was
//! put in.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};

use coco_mkext2::{Options, build_image};
use common::*;

const BLOCK: usize = 4096;

/// Sizes that exercise each level of the block map.
const SIZES: &[(&str, usize)] = &[
    ("empty", 0),
    ("one-byte", 1),
    ("one-block", BLOCK),
    ("twelve-blocks", 12 * BLOCK), // all direct slots, no indirect
    ("thirteen-blocks", 12 * BLOCK + 1), // first single-indirect block
    ("single-full", (12 + 1024) * BLOCK), // single indirect exactly full
    ("double", 5 * 1024 * 1024 + 123), // double indirect
];

#[test]
fn files_of_every_mapping_depth_read_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    for (i, (name, size)) in SIZES.iter().enumerate() {
        put(&src, name, &random_bytes(*size, i as u64 + 1));
    }
    let (img, summary) = build(&src, tmp.path(), &Options::default());
    assert_eq!(summary.files, SIZES.len());
    assert_eq!(summary.split_files, 0);
    fsck_clean(&img);
    for (i, (name, size)) in SIZES.iter().enumerate() {
        let got = cat(&img, &format!("/{name}"));
        assert!(
            got == random_bytes(*size, i as u64 + 1),
            "{name}: {} bytes read back, {size} expected (or contents differ)",
            got.len()
        );
    }
    let double = stat(&img, "/double");
    assert!(double.contains("(DIND)"), "{double}");
    let twelve = stat(&img, "/twelve-blocks");
    assert!(!twelve.contains("(IND)"), "{twelve}");
    assert!(stat(&img, "/thirteen-blocks").contains("(IND)"));
}

#[test]
fn sixty_megabyte_file_is_one_contiguous_run() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    // Small files around the big one, so it is not trivially first.
    put(&src, "a-small", b"a");
    let big = 60 * 1024 * 1024 + 5;
    put(&src, "big", &random_bytes(big, 7));
    put(&src, "z-dir/medium", &random_bytes(100_000, 8));
    let (img, summary) = build(&src, tmp.path(), &Options::default());
    assert_eq!(summary.split_files, 0);
    fsck_clean(&img);
    assert!(cat(&img, "/big") == random_bytes(big, 7));
    assert_contiguous(&img, "/big", big as u64);
    assert_contiguous(&img, "/z-dir/medium", 100_000);
    assert_contiguous(&img, "/a-small", 1);
    // The data run starts on a block boundary by construction; check its
    // first block really holds the file's first bytes.
    let first = data_ranges(&stat(&img, "/big"))[0].1.0 as usize;
    let image = fs::read(&img).unwrap();
    assert_eq!(
        &image[first * BLOCK..first * BLOCK + 64],
        &random_bytes(64, 7)[..]
    );
}

#[test]
fn nested_directories_and_listings() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let deep = "l1/l2/l3/l4/l5/l6/l7/l8";
    put(&src, &format!("{deep}/leaf.txt"), b"deep leaf\n");
    put(&src, "l1/side.txt", b"side");
    fs::create_dir_all(src.join("l1/l2/empty")).unwrap();
    put(&src, "l1/exec", b"#!/bin/sh\n");
    fs::set_permissions(src.join("l1/exec"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(src.join("l1/l2/empty"), fs::Permissions::from_mode(0o1777)).unwrap();

    let (img, summary) = build(&src, tmp.path(), &Options::default());
    fsck_clean(&img);
    assert_eq!(summary.directories, 2 + 9); // root, lost+found, l1..l8, empty
    assert_eq!(cat(&img, &format!("/{deep}/leaf.txt")), b"deep leaf\n");

    let root = ls(&img, "/");
    let names: Vec<&str> = root.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, [".", "..", "lost+found", "l1"]);
    assert_eq!(root[0].ino, 2);
    assert_eq!(root[2].ino, 11);
    assert_eq!(root[2].mode, 0o40700);

    let l1 = ls(&img, "/l1");
    let names: Vec<&str> = l1.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, [".", "..", "exec", "l2", "side.txt"]);
    assert!(l1.iter().all(|e| e.uid == 0 && e.gid == 0));
    let exec = l1.iter().find(|e| e.name == "exec").unwrap();
    assert_eq!(exec.mode, 0o104755);
    let l2 = ls(&img, "/l1/l2");
    let empty = l2.iter().find(|e| e.name == "empty").unwrap();
    assert_eq!(empty.mode, 0o41777);

    // Human-readable listing too, as the brief asks.
    let long = String::from_utf8(debugfs(&img, "ls -l /l1")).unwrap();
    assert!(
        long.contains("side.txt") && long.contains("104755"),
        "{long}"
    );
}

#[test]
fn directory_spanning_many_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut expected = BTreeSet::new();
    for i in 0..300 {
        let name = format!("{i:03}-{}", "long-name-".repeat(20));
        put(&src, &format!("many/{name}"), name.as_bytes());
        expected.insert(name);
    }
    // One name of the maximum length, 255 bytes.
    let max = "m".repeat(255);
    put(&src, &format!("many/{max}"), b"max");
    expected.insert(max.clone());

    let (img, _) = build(&src, tmp.path(), &Options::default());
    fsck_clean(&img);
    let listed: BTreeSet<String> = ls(&img, "/many")
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != "." && n != "..")
        .collect();
    assert_eq!(listed, expected);
    // 300 entries of ~216 bytes need 17 blocks: past the 12 direct ones.
    let s = stat(&img, "/many");
    assert!(s.contains("(IND)"), "{s}");
    assert_eq!(cat(&img, &format!("/many/{max}")), b"max");
    assert_eq!(cat(&img, "/many/299-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-"), b"299-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-long-name-");
}

#[test]
fn fast_and_slow_symlinks_are_copied_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src, "target.txt", b"t");
    let slow_target = format!("/{}", "very-long-component/".repeat(10));
    symlink("target.txt", src.join("fast")).unwrap();
    symlink(&slow_target, src.join("slow")).unwrap();
    let limit = "x".repeat(59);
    let over = "y".repeat(60);
    symlink(&limit, src.join("fast-59")).unwrap();
    symlink(&over, src.join("slow-60")).unwrap();
    // Would loop forever if followed.
    symlink("..", src.join("up")).unwrap();
    symlink("/", src.join("root")).unwrap();

    let (img, summary) = build(&src, tmp.path(), &Options::default());
    fsck_clean(&img);
    assert_eq!(summary.symlinks, 6);

    let fast = stat(&img, "/fast");
    assert!(fast.contains("Type: symlink"), "{fast}");
    assert!(fast.contains("Fast link dest: \"target.txt\""), "{fast}");
    assert!(stat(&img, "/fast-59").contains(&format!("Fast link dest: \"{limit}\"")));
    assert!(stat(&img, "/up").contains("Fast link dest: \"..\""));

    for (path, target) in [("/slow", slow_target.as_str()), ("/slow-60", &over)] {
        let s = stat(&img, path);
        assert!(s.contains("Type: symlink"), "{s}");
        assert!(!s.contains("Fast link dest"), "{s}");
        assert!(s.contains(&format!("Size: {}", target.len())), "{s}");
        // debugfs reads a slow symlink's block like file data.
        assert_eq!(cat(&img, path), target.as_bytes());
    }
}

#[test]
fn hard_links_share_an_inode() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src, "a", b"shared");
    fs::create_dir(src.join("d")).unwrap();
    fs::hard_link(src.join("a"), src.join("d/b")).unwrap();
    let (img, summary) = build(&src, tmp.path(), &Options::default());
    fsck_clean(&img);
    assert_eq!(summary.files, 1);
    let a = ls(&img, "/").into_iter().find(|e| e.name == "a").unwrap();
    let b = ls(&img, "/d").into_iter().find(|e| e.name == "b").unwrap();
    assert_eq!(a.ino, b.ino);
    assert!(stat(&img, "/a").contains("Links: 2"));
}

#[test]
fn labels_timestamps_and_minimum_size() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src, "f", b"x");
    let opts = Options {
        label: "coco-root".into(),
        min_size_bytes: 8 << 20,
        timestamp: Some(1_700_000_000),
    };
    let (img, summary) = build(&src, tmp.path(), &opts);
    fsck_clean(&img);
    assert_eq!(summary.size_bytes, 8 << 20);
    assert_eq!(fs::metadata(&img).unwrap().len(), 8 << 20);
    let header = dumpe2fs_header(&img);
    assert_eq!(header_field(&header, "Filesystem volume name"), "coco-root");
    assert_eq!(header_field(&header, "Filesystem magic number"), "0xEF53");
    assert_eq!(
        header_field(&header, "Filesystem revision #"),
        "1 (dynamic)"
    );
    assert_eq!(header_field(&header, "Filesystem features"), "filetype");
    assert_eq!(header_field(&header, "Filesystem state"), "clean");
    assert_eq!(header_field(&header, "Block size"), "4096");
    assert_eq!(header_field(&header, "Inode size"), "128");
    assert!(stat(&img, "/f").contains("mtime: 0x6553f100"));

    // A 16-byte label is the maximum; no label reads back as <none>.
    let max = Options {
        label: "0123456789abcdef".into(),
        ..Options::default()
    };
    let (img, _) = build(&src, tmp.path(), &max);
    let header = dumpe2fs_header(&img);
    assert_eq!(
        header_field(&header, "Filesystem volume name"),
        "0123456789abcdef"
    );
    let (img, _) = build(&src, tmp.path(), &Options::default());
    let header = dumpe2fs_header(&img);
    assert_eq!(header_field(&header, "Filesystem volume name"), "<none>");
}

#[test]
fn empty_tree_gives_a_valid_image() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    let (img, summary) = build(&src, tmp.path(), &Options::default());
    fsck_clean(&img);
    assert_eq!(summary.directories, 2);
    let names: Vec<String> = ls(&img, "/").into_iter().map(|e| e.name).collect();
    assert_eq!(names, [".", "..", "lost+found"]);
}

#[test]
fn odd_names_are_kept_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    let raw = std::ffi::OsStr::from_bytes(b"bad-\xff-utf8");
    fs::write(src.join(raw), b"raw").unwrap();
    put(&src, "with space", b"sp");
    put(&src, "ünïcödé", b"u");
    let (img, _) = build(&src, tmp.path(), &Options::default());
    fsck_clean(&img);
    assert_eq!(cat(&img, "\"/with space\""), b"sp");
    assert_eq!(cat(&img, "/ünïcödé"), b"u");
}

/// Builds the same tree, made twice in different places at different
/// times, and expects identical bytes.
#[test]
fn output_is_deterministic() {
    let make = |root: &std::path::Path| {
        put(root, "b/file", &random_bytes(70_000, 3));
        put(root, "a", b"hello");
        put(root, "c/d/e", b"");
        symlink("a", root.join("link")).unwrap();
        for i in 0..50 {
            put(root, &format!("many/{i}"), i.to_string().as_bytes());
        }
    };
    let t1 = tempfile::tempdir().unwrap();
    let t2 = tempfile::tempdir().unwrap();
    make(&t1.path().join("tree"));
    std::thread::sleep(std::time::Duration::from_millis(20));
    make(&t2.path().join("other-name"));
    let opts = Options {
        label: "det".into(),
        ..Options::default()
    };
    let a = build_image(&t1.path().join("tree"), &opts).unwrap();
    let b = build_image(&t1.path().join("tree"), &opts).unwrap();
    let c = build_image(&t2.path().join("other-name"), &opts).unwrap();
    assert!(a == b, "same tree, different bytes");
    assert!(a == c, "identical trees, different bytes");
    // The UUID follows the metadata.
    put(&t2.path().join("other-name"), "extra", b"");
    let d = build_image(&t2.path().join("other-name"), &opts).unwrap();
    assert_ne!(a[1024 + 104..1024 + 120], d[1024 + 104..1024 + 120]);
}

/// Enough blocks for several groups: every group's metadata and backup
/// superblock must check out.
#[test]
fn multi_group_image() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    put(&src, "f", &random_bytes(3 << 20, 9));
    for i in 0..40 {
        put(&src, &format!("d{i}/x"), b"x");
    }
    let opts = Options {
        min_size_bytes: 300 << 20,
        ..Options::default()
    };
    let (img, summary) = build(&src, tmp.path(), &opts);
    assert_eq!(summary.groups, 3);
    fsck_clean(&img);
    // e2fsck can also check from a backup superblock (group 1 starts at
    // block 32768).
    let out = std::process::Command::new(tool("e2fsck"))
        .args(["-fn", "-b", "32768", "-B", "4096"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(cat(&img, "/f"), random_bytes(3 << 20, 9));
}

/// A file larger than one group's data area cannot be contiguous; it must
/// still be correct, and split only at group boundaries.
#[test]
fn file_larger_than_a_group() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let size = 130 << 20;
    put(&src, "huge", &random_bytes(size, 11));
    put(&src, "small", &random_bytes(10_000, 12));
    let (img, summary) = build(&src, tmp.path(), &Options::default());
    assert_eq!(summary.split_files, 1);
    fsck_clean(&img);
    assert!(cat(&img, "/huge") == random_bytes(size, 11));
    assert_contiguous(&img, "/small", 10_000);
    let ranges = data_ranges(&stat(&img, "/huge"));
    // Physical runs: break only where group 1's metadata sits.
    let breaks: Vec<u64> = ranges
        .windows(2)
        .filter(|w| w[1].1.0 != w[0].1.1 + 1)
        .map(|w| w[0].1.1 + 1)
        .collect();
    assert_eq!(breaks, [32768]);
}
