//! A hive under test: a hive.toml in a temporary directory with its state
//! directory beside it, started as the real `coco-vmm run`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Stdio};

use super::{coco_vmm, write};

/// A hive.toml and its state directory.
pub struct TestHive {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub config: String,
}

/// A hive named `name` whose state lives in `<tmp>/state`, with `guests`
/// (the `[[guest]]` tables, as TOML text).
pub fn hive(name: &str, guests: &str) -> TestHive {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let text = format!(
        "[hive]\nname = \"{name}\"\nstate_dir = \"{}\"\n{guests}",
        state.display()
    );
    let config = write(dir.path(), "hive.toml", text.as_bytes());
    TestHive { dir, state, config }
}

impl TestHive {
    /// Starts `coco-vmm run --config` with piped output.
    pub fn start(&self) -> Child {
        coco_vmm()
            .args(["run", "--config", &self.config])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start coco-vmm run")
    }

    /// The hive's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.state.join("hive.sock")
    }

    /// The audit journal as text (empty if it does not exist).
    pub fn audit_journal(&self) -> String {
        std::fs::read_to_string(self.state.join("audit.log")).unwrap_or_default()
    }
}

/// Reads the hive's stdout until a line contains `needle`.
pub fn wait_for_line(out: &mut BufReader<ChildStdout>, needle: &str) {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).expect("read hive output");
        assert!(n > 0, "hive output ended before {needle:?}:\n{seen}");
        seen.push_str(&line);
        if line.contains(needle) {
            return;
        }
    }
}
