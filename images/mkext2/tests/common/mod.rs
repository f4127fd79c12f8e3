//! Helpers shared by the integration tests: building trees and images in
//! temporary directories and asking e2fsprogs what they contain.

#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use coco_mkext2::{ImageSummary, Options, write_image};

/// Finds an e2fsprogs tool on PATH or in the sbin directories it usually
/// lives in (which are not on a normal user's PATH).
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} not found: these tests need e2fsprogs (e.g. `apt-get install e2fsprogs`)");
}

/// Deterministic pseudo-random bytes (xorshift64*), generated a word at a
/// time.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `bytes` to `root/rel`, creating parent directories.
pub fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Builds `src` into `<dir>/out.img` and returns its path and summary.
pub fn build(src: &Path, dir: &Path, opts: &Options) -> (PathBuf, ImageSummary) {
    let img = dir.join("out.img");
    let summary = write_image(src, &img, opts).expect("image builds");
    (img, summary)
}

/// Runs `e2fsck -fn` and asserts that it finds nothing to complain about:
/// exit status 0 and no output besides the pass headers and the summary.
pub fn fsck_clean(img: &Path) {
    let out = Command::new(tool("e2fsck"))
        .arg("-fn")
        .arg(img)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "e2fsck failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for line in stdout.lines() {
        let summary = line.contains(" files (") && line.ends_with(" blocks");
        assert!(
            line.starts_with("Pass ") || summary,
            "unexpected e2fsck output {line:?} in:\n{stdout}"
        );
    }
    for line in stderr.lines() {
        assert!(
            line.starts_with("e2fsck ") || line.trim().is_empty(),
            "unexpected e2fsck stderr {line:?}"
        );
    }
}

/// Runs one debugfs request against the image and returns its stdout.
pub fn debugfs(img: &Path, request: &str) -> Vec<u8> {
    let out = Command::new(tool("debugfs"))
        .arg("-R")
        .arg(request)
        .arg(img)
        .output()
        .unwrap();
    assert!(out.status.success(), "debugfs -R {request:?} failed");
    out.stdout
}

/// `debugfs -R "cat <path>"`: the file's bytes as stored in the image.
pub fn cat(img: &Path, path: &str) -> Vec<u8> {
    debugfs(img, &format!("cat {path}"))
}

/// `debugfs -R "stat <path>"` as text.
pub fn stat(img: &Path, path: &str) -> String {
    String::from_utf8(debugfs(img, &format!("stat {path}"))).unwrap()
}

/// One line of `debugfs -R "ls -p <dir>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

/// `debugfs -R "ls -p <dir>"`, parsed (`/ino/mode/uid/gid/name/size/`).
pub fn ls(img: &Path, dir: &str) -> Vec<Listed> {
    let text = String::from_utf8(debugfs(img, &format!("ls -p {dir}"))).unwrap();
    text.lines()
        .filter(|l| l.starts_with('/'))
        .map(|l| {
            let f: Vec<&str> = l.split('/').collect();
            Listed {
                ino: f[1].parse().unwrap(),
                mode: u32::from_str_radix(f[2], 8).unwrap(),
                uid: f[3].parse().unwrap(),
                gid: f[4].parse().unwrap(),
                name: f[5].to_owned(),
            }
        })
        .collect()
}

/// The `(logical range, physical range)` pairs of a `stat` BLOCKS section
/// that map data (indirect-block entries are dropped).
pub fn data_ranges(stat: &str) -> Vec<((u64, u64), (u64, u64))> {
    let section = stat.split("BLOCKS:").nth(1).expect("stat has BLOCKS");
    let section = section.split("TOTAL:").next().unwrap();
    let range = |s: &str| -> (u64, u64) {
        let mut it = s.trim().split('-').map(|n| n.parse::<u64>().unwrap());
        let a = it.next().unwrap();
        (a, it.next().unwrap_or(a))
    };
    section
        .split(", ")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let (logical, physical) = e.strip_prefix('(')?.split_once("):")?;
            if logical.chars().next()?.is_ascii_digit() {
                Some((range(logical), range(physical)))
            } else {
                None // (IND), (DIND), (TIND)
            }
        })
        .collect()
}

/// Asserts the file's data blocks form one run: logical 0..n on
/// consecutive physical blocks.
pub fn assert_contiguous(img: &Path, path: &str, size: u64) {
    let text = stat(img, path);
    let ranges = data_ranges(&text);
    let blocks = size.div_ceil(4096);
    let (first_l, first_p) = ranges[0];
    assert_eq!(first_l.0, 0, "{text}");
    let mut next_l = 0;
    let mut next_p = first_p.0;
    for ((l0, l1), (p0, p1)) in &ranges {
        assert_eq!((*l0, *p0), (next_l, next_p), "not contiguous:\n{text}");
        assert_eq!(l1 - l0, p1 - p0, "{text}");
        next_l = l1 + 1;
        next_p = p1 + 1;
    }
    assert_eq!(next_l, blocks, "not all blocks mapped:\n{text}");
}

/// `dumpe2fs -h` output as text.
pub fn dumpe2fs_header(img: &Path) -> String {
    let out = Command::new(tool("dumpe2fs"))
        .arg("-h")
        .arg(img)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The value of one `dumpe2fs -h` field, e.g. "Filesystem volume name".
pub fn header_field(header: &str, field: &str) -> String {
    header
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in\n{header}"))
        .trim()
        .to_owned()
}
