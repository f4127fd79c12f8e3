//! The hive supervisor (`coco-vmm run`): reads hive.toml and starts one VM
//! process per autostart guest — the same binary, `coco-vmm boot`, so a
//! guest that crashes its VMM takes down only its own process.
//!
//! Today the supervisor starts the guests, forwards SIGINT/SIGTERM to them,
//! and reports how each ended. The Secure9P namespace and the per-guest
//! virtio-9p bridge are added by later work (see docs/status.md).

use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use coco_hive_config::{GuestConfig, GuestKind, HiveConfig};
use tracing::{error, info, warn};

use crate::vm::runner::{block_stop_signals, read_signal};

/// Why the hive could not run.
#[derive(Debug, thiserror::Error)]
pub enum HiveError {
    /// A guest kind this build cannot boot yet.
    #[error(
        "guest {guest}: kind {kind} is not supported by this coco-vmm yet (coconut and linux are)"
    )]
    UnsupportedKind {
        /// Guest name.
        guest: String,
        /// Its kind.
        kind: String,
    },
    /// No guest has autostart set.
    #[error("hive {0} has no guest with autostart = true; nothing to run")]
    NothingToStart(String),
    /// An I/O failure (state directory, signals, processes).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HiveError {
    let what = what.into();
    move |source| HiveError::Io { what, source }
}

/// The hive's state directory: hive.toml's `state_dir`, else
/// `$XDG_RUNTIME_DIR/coco/<name>`, else `/tmp/coco-<uid>/<name>`.
pub fn state_dir(config: &HiveConfig) -> PathBuf {
    if let Some(dir) = &config.state_dir {
        return dir.clone();
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(runtime) if !runtime.is_empty() => Path::new(&runtime).join("coco").join(&config.name),
        _ => {
            // SAFETY: getuid has no preconditions and cannot fail.
            let uid = unsafe { libc::getuid() };
            PathBuf::from(format!("/tmp/coco-{uid}")).join(&config.name)
        }
    }
}

/// The console log of a guest inside the state directory.
pub fn console_log_path(state: &Path, guest: &str) -> PathBuf {
    state.join("logs").join(format!("{guest}.console"))
}

/// The `coco-vmm boot` arguments that start `guest`.
pub fn boot_args(guest: &GuestConfig, state: &Path) -> Vec<String> {
    let mut args = vec![
        "boot".to_string(),
        "--name".into(),
        guest.name.clone(),
        "--kind".into(),
        guest.kind.to_string(),
        "--kernel".into(),
        guest.kernel.to_string(),
        "--memory".into(),
        guest.memory_mib.to_string(),
        "--vcpus".into(),
        guest.vcpus.to_string(),
        "--console-log".into(),
        console_log_path(state, &guest.name).display().to_string(),
    ];
    if let Some(initrd) = &guest.initrd {
        args.push("--initrd".into());
        args.push(initrd.to_string());
    }
    for device in &guest.vfio {
        args.push("--vfio".into());
        args.push(device.clone());
    }
    if !guest.cmdline.is_empty() {
        args.push("--cmdline".into());
        args.push(guest.cmdline.clone());
    }
    args
}

struct Running {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
}

fn status_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        _ => 1,
    }
}

fn wait_for_signal(fd: i32, timeout: Duration) -> Option<i32> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid pollfd array of length 1 for the call.
    let ready = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
    if ready > 0 { read_signal(fd) } else { None }
}

/// Runs the hive until every guest has stopped. Returns the exit status:
/// 0 when every guest ended with 0, else the first non-zero status.
pub fn run(config: &HiveConfig, exe: &Path) -> Result<u8, HiveError> {
    let guests: Vec<&GuestConfig> = config.guests.iter().filter(|g| g.autostart).collect();
    if guests.is_empty() {
        return Err(HiveError::NothingToStart(config.name.clone()));
    }
    for g in &guests {
        if !matches!(g.kind, GuestKind::Coconut | GuestKind::Linux) {
            return Err(HiveError::UnsupportedKind {
                guest: g.name.clone(),
                kind: g.kind.to_string(),
            });
        }
    }
    let state = state_dir(config);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state.join("logs"))
        .map_err(io(format!("creating state directory {}", state.display())))?;
    let signals = block_stop_signals().map_err(io("blocking stop signals"))?;
    info!(
        "hive {} starting {} guest(s); state in {}",
        config.name,
        guests.len(),
        state.display()
    );

    let mut running = Vec::new();
    for g in guests {
        let child = Command::new(exe)
            .args(boot_args(g, &state))
            .spawn()
            .map_err(io(format!("starting the VM process of {}", g.name)))?;
        info!("guest {} started (pid {})", g.name, child.id());
        running.push(Running {
            name: g.name.clone(),
            child,
            status: None,
        });
    }

    let mut first_failure: Option<u8> = None;
    while running.iter().any(|r| r.status.is_none()) {
        if let Some(signo) = wait_for_signal(signals.as_raw_fd(), Duration::from_millis(50)) {
            info!("signal {signo}: stopping every guest");
            for r in running.iter().filter(|r| r.status.is_none()) {
                // SAFETY: kill has no memory-safety preconditions; the pid is
                // our own child, not yet reaped.
                unsafe { libc::kill(r.child.id() as i32, libc::SIGTERM) };
            }
            first_failure.get_or_insert(128u8.wrapping_add(signo as u8));
        }
        for r in running.iter_mut().filter(|r| r.status.is_none()) {
            match r.child.try_wait() {
                Ok(Some(status)) => {
                    let code = status_code(status);
                    if code == 0 {
                        info!("guest {} stopped (status 0)", r.name);
                    } else {
                        error!("guest {} stopped with status {code}", r.name);
                        first_failure.get_or_insert(code);
                    }
                    r.status = Some(status);
                }
                Ok(None) => {}
                Err(e) => {
                    warn!("waiting for guest {}: {e}", r.name);
                    r.status = Some(ExitStatus::default());
                    first_failure.get_or_insert(1);
                }
            }
        }
    }
    Ok(first_failure.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coco_hive_config::ImageSource;

    #[test]
    fn boot_args_carry_every_guest_setting() {
        let mut g = GuestConfig::new(
            "w1",
            GuestKind::Coconut,
            ImageSource::Builtin("guest-kernel".into()),
        );
        g.initrd = Some(ImageSource::Path("/images/r.ext2".into()));
        g.cmdline = "quiet x=1".into();
        g.memory_mib = 96;
        g.vcpus = 3;
        g.vfio = vec!["0000:01:00.0".into(), "02:00.0,no-mmap".into()];
        let args = boot_args(&g, Path::new("/state"));
        let joined = args.join(" ");
        assert!(joined.starts_with("boot --name w1 --kind coconut --kernel builtin:guest-kernel"));
        assert!(joined.contains("--memory 96 --vcpus 3"));
        assert!(joined.contains("--console-log /state/logs/w1.console"));
        assert!(joined.contains("--initrd /images/r.ext2"));
        assert!(joined.contains("--vfio 0000:01:00.0 --vfio 02:00.0,no-mmap"));
        assert_eq!(args.last().map(String::as_str), Some("quiet x=1"));
    }

    #[test]
    fn linux_guests_boot_with_kind_linux() {
        let g = GuestConfig::new(
            "l1",
            GuestKind::Linux,
            ImageSource::Path("/images/bzImage".into()),
        );
        let joined = boot_args(&g, Path::new("/state")).join(" ");
        assert!(joined.starts_with("boot --name l1 --kind linux --kernel /images/bzImage"));
    }
}
