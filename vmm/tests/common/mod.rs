//! Helpers shared by the integration tests: run the real `coco-vmm` binary
//! and capture what it did. A watchdog kills a run that hangs, so a broken
//! guest fails its test instead of stalling the suite (this is a hang guard,
//! not a timing assertion).

#![allow(dead_code)]

pub mod hive;
pub mod queen;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any single coco-vmm run may take before it is killed as hung.
pub const HANG_GUARD: Duration = Duration::from_secs(300);

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Console lines of guest `name` (prefix removed).
    pub fn console(&self, name: &str) -> Vec<String> {
        let prefix = format!("[{name}] ");
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(str::to_string)
            .collect()
    }

    /// Fails the test if anything panicked.
    pub fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked"),
            "coco-vmm panicked:\n{}",
            self.stderr
        );
    }
}

pub fn coco_vmm() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coco-vmm"));
    cmd.env("COCO_LOG", "info");
    cmd
}

/// Waits for `child` with the hang guard, then collects its output.
pub fn finish(mut child: Child) -> Run {
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("coco-vmm hung for {HANG_GUARD:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status: status.code(),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Runs coco-vmm with `args` to completion.
pub fn run(args: &[&str]) -> Run {
    let child = coco_vmm()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coco-vmm");
    finish(child)
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path.display().to_string()
}
