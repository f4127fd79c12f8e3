//! Starting L1 under QEMU TCG and streaming its serial console.
//!
//! QEMU runs as a child in its own process group; its serial console
//! (stdout) is split into lines by a reader thread. Every wait takes a
//! deadline; [`Run::kill`] (also done on drop) sends SIGKILL to QEMU's PID
//! and its process group.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::script::HOST_TAG;
use crate::{Error, Result, tool};

/// How to start L1.
#[derive(Debug, Clone)]
pub struct L1Config {
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// L1's kernel (bzImage).
    pub kernel: PathBuf,
    /// L1's initramfs.
    pub initrd: PathBuf,
    /// L1's memory in MiB.
    pub memory_mib: u32,
    /// Extra kernel command line.
    pub cmdline_extra: String,
    /// Share the host's `/` read-only as 9p tag `hostroot`.
    pub share_host_root: bool,
    /// Copy each console line to stderr as it arrives (prefixed `L1| `).
    pub echo: bool,
}

impl L1Config {
    /// The tier's defaults for `kernel` and `initrd`: `qemu-system-x86_64`
    /// from PATH, 2 GiB, host root shared, no echo.
    pub fn new(kernel: PathBuf, initrd: PathBuf) -> Self {
        Self {
            qemu: PathBuf::from("qemu-system-x86_64"),
            kernel,
            initrd,
            memory_mib: 2048,
            cmdline_extra: String::new(),
            share_host_root: true,
            echo: false,
        }
    }

    /// QEMU's arguments. q35 with a vIOMMU and the `edu` device (for the
    /// VFIO tenants), one CPU (multi-threaded TCG with two CPUs can run
    /// stale copies of code Linux live-patches), `-no-reboot` + `panic=-1`
    /// so a panic ends QEMU at once.
    pub fn args(&self) -> Vec<String> {
        let mut cmdline = String::from(
            "console=ttyS0 intel_iommu=on panic=-1 oops=panic quiet loglevel=1 \
             rdinit=/init mitigations=off",
        );
        if !self.cmdline_extra.is_empty() {
            cmdline.push(' ');
            cmdline.push_str(&self.cmdline_extra);
        }
        let mut a: Vec<String> = [
            "-M",
            "q35",
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
            "-device",
            "intel-iommu,intremap=on,caching-mode=on",
            "-device",
            "edu",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push("-m".into());
        a.push(self.memory_mib.to_string());
        a.push("-kernel".into());
        a.push(self.kernel.display().to_string());
        a.push("-initrd".into());
        a.push(self.initrd.display().to_string());
        a.push("-append".into());
        a.push(cmdline);
        if self.share_host_root {
            a.push("-fsdev".into());
            a.push(format!(
                "local,id={HOST_TAG},path=/,security_model=none,readonly=on"
            ));
            a.push("-device".into());
            a.push(format!(
                "virtio-9p-pci,fsdev={HOST_TAG},mount_tag={HOST_TAG}"
            ));
        }
        a
    }
}

/// Starts L1.
#[derive(Debug)]
pub struct L1;

impl L1 {
    /// Starts QEMU with `config` and begins streaming its console.
    pub fn boot(config: &L1Config) -> Result<Run> {
        let qemu = config.qemu.display().to_string();
        if tool::which(&qemu).is_none() && !config.qemu.is_file() {
            return Err(Error::MissingTool(qemu));
        }
        let mut child = Command::new(&config.qemu)
            .args(config.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn { tool: qemu, source })?;
        let (tx, rx) = channel();
        let echo = config.echo;
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(out);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf)
                                .trim_end_matches(['\n', '\r'])
                                .replace('\r', "");
                            if echo {
                                let _ = writeln!(std::io::stderr(), "L1| {line}");
                            }
                            if tx.send(line).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = e.read_to_string(&mut s);
                s
            })
        });
        Ok(Run {
            child,
            lines: rx,
            console: Vec::new(),
            stderr,
            started: Instant::now(),
            exited: None,
        })
    }
}

/// Why [`Run::next_line`] returned no line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed.
    Timeout,
    /// The console closed (QEMU exited).
    Closed,
}

/// A running (or finished) L1.
#[derive(Debug)]
pub struct Run {
    child: Child,
    lines: Receiver<String>,
    console: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    started: Instant,
    exited: Option<String>,
}

impl Run {
    /// The next console line, waiting until `deadline`.
    pub fn next_line(&mut self, deadline: Instant) -> std::result::Result<String, Stop> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                self.console.push(line.clone());
                Ok(line)
            }
            Err(RecvTimeoutError::Timeout) => Err(Stop::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(Stop::Closed),
        }
    }

    /// Every console line received so far.
    pub fn console(&self) -> &[String] {
        &self.console
    }

    /// The last `n` console lines (and QEMU's stderr if it has exited).
    pub fn tail(&mut self, n: usize) -> String {
        let mut t = tool::tail(&self.console.join("\n"), n);
        if let Some(err) = self.qemu_stderr().filter(|e| !e.trim().is_empty()) {
            t.push_str("\n--- qemu stderr ---\n");
            t.push_str(&tool::tail(&err, 20));
        }
        t
    }

    /// QEMU's stderr, once it has exited.
    fn qemu_stderr(&mut self) -> Option<String> {
        if self.exited.is_none() && matches!(self.child.try_wait(), Ok(Some(_))) {
            self.exited = self.stderr.take().and_then(|h| h.join().ok());
        }
        self.exited.clone()
    }

    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// QEMU's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for QEMU to exit by itself (draining the
    /// console); kills it if it does not. Returns whether it exited alone.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                while let Ok(l) = self.lines.try_recv() {
                    self.console.push(l);
                }
                return true;
            }
            if Instant::now() >= deadline {
                self.kill();
                return false;
            }
            let _ = self.next_line(Instant::now() + Duration::from_millis(50));
        }
    }

    /// Kills QEMU (SIGKILL to its PID and process group) and reaps it.
    pub fn kill(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative PID signals the process group
            // QEMU leads (it was spawned with process_group(0), so the group
            // ID is its PID and contains only QEMU and its children); it
            // touches no memory of ours.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.kill();
    }
}
