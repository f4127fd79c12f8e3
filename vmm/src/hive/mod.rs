//! The hive supervisor (`coco-vmm run`): reads hive.toml and starts one VM
//! process per autostart guest — the same binary, `coco-vmm boot`, so a
//! guest that crashes its VMM takes down only its own process.
//!
//! The supervisor owns the namespace: NineDoor on a Unix socket (mode 0600)
//! in the hive's state directory, for cohsh and other host tools, and one
//! virtio-9p bridge per VM process, bound to that guest's role and name.
//! hive.toml's worker guests are registered in the namespace, with their
//! configured `budget`, before they boot; a queen's `spawn` boots more (from a guest of the same role), `kill`
//! stops them. A VM process that ends, however it ends, is reported in
//! `/proc/boot` and `/log/queen.log`, and a dead worker's sessions are
//! revoked; the hive keeps running until no VM process is left or it is
//! told to stop.

use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use coco_hive_config::{GuestConfig, GuestKind, HiveConfig};
use ninedoor::Hive;
use ninedoor::clock::SystemClock;
use ninedoor::config::HiveSpec;
use ninedoor::identity::{Role, parse_worker_id};
use ninedoor::server::Server;
use tracing::{error, info, warn};

use crate::vm::runner::{block_stop_signals, read_signal};

mod bridge;
mod effects;
mod processes;

pub use bridge::identity_of;
pub use effects::{VmEffects, budget_of, role_of};
pub use processes::{MOUNT_TAG, Processes, pass_as_fd3};

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
    /// A worker guest whose name is not a worker id.
    #[error(
        "guest {0}: a worker's name must be worker-N (N = 1, 2, …): it is its identity in the namespace"
    )]
    WorkerName(String),
    /// The namespace (NineDoor) could not start.
    #[error("namespace: {0}")]
    Namespace(String),
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

/// The Unix socket host tools (cohsh) connect to.
pub fn socket_path(state: &Path) -> PathBuf {
    state.join("hive.sock")
}

/// The namespace's configuration from hive.toml: its name and, when set,
/// the telemetry ring size; NineDoor's defaults for the rest.
fn hive_spec(config: &HiveConfig) -> HiveSpec {
    let mut spec = HiveSpec {
        name: config.name.clone(),
        ..HiveSpec::default()
    };
    if let Some(kib) = config.telemetry_ring_kib {
        spec.telemetry_ring_bytes = kib as usize * 1024;
    }
    spec
}

/// Serves the namespace: NineDoor on the hive's state directory, with
/// effects that start real VM processes.
fn start_namespace(
    config: &HiveConfig,
    state: &Path,
    processes: &Arc<Processes>,
) -> Result<(Server, Arc<Hive>), HiveError> {
    let spec = hive_spec(config);
    let effects = VmEffects::new(config.guests.clone(), processes.clone());
    let hive = Hive::new(spec, state, Arc::new(SystemClock), effects.clone())
        .map_err(|e| HiveError::Namespace(e.to_string()))?;
    let hive = Arc::new(hive);
    let mut server = Server::new(hive.clone());
    effects.wire(&hive, server.factory().clone());
    let socket = socket_path(state);
    // A socket left by a hive that did not stop cleanly.
    let _ = std::fs::remove_file(&socket);
    server
        .listen_unix(&socket)
        .map_err(|e| HiveError::Namespace(format!("{}: {e}", socket.display())))?;
    Ok((server, hive))
}

/// Runs the hive until every VM process has stopped (or a stop signal).
/// Returns the exit status: 0 when every guest ended with 0, else the first
/// non-zero status.
pub fn run(config: &HiveConfig, exe: &Path) -> Result<u8, HiveError> {
    let guests: Vec<&GuestConfig> = config.guests.iter().filter(|g| g.autostart).collect();
    if guests.is_empty() {
        return Err(HiveError::NothingToStart(config.name.clone()));
    }
    for g in &config.guests {
        if !matches!(g.kind, GuestKind::Coconut | GuestKind::Linux) {
            return Err(HiveError::UnsupportedKind {
                guest: g.name.clone(),
                kind: g.kind.to_string(),
            });
        }
        if role_of(g.role) != Role::Queen && parse_worker_id(&g.name).is_none() {
            return Err(HiveError::WorkerName(g.name.clone()));
        }
    }
    let state = state_dir(config);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state.join("logs"))
        .map_err(io(format!("creating state directory {}", state.display())))?;
    let signals = block_stop_signals().map_err(io("blocking stop signals"))?;
    let processes = Processes::new(exe, &state);
    let (server, hive) = start_namespace(config, &state, &processes)?;
    info!(
        "hive {}: namespace on unix:{} ; starting {} guest(s); state in {}",
        config.name,
        socket_path(&state).display(),
        guests.len(),
        state.display()
    );
    if let Err(e) = hive.set_online() {
        warn!("hive lifecycle: {e}");
    }

    for g in guests {
        let role = role_of(g.role);
        if role != Role::Queen
            && let Err(e) = hive.register_worker(&g.name, role, budget_of(&g.budget))
        {
            return Err(HiveError::Namespace(format!("registering {}: {e}", g.name)));
        }
        processes
            .launch(g, identity_of(&g.name, role), server.factory(), &hive)
            .map_err(io(format!("starting the VM process of {}", g.name)))?;
    }

    let mut first_failure: Option<u8> = None;
    while !processes.is_empty() {
        if let Some(signo) = wait_for_signal(signals.as_raw_fd(), Duration::from_millis(50)) {
            info!("signal {signo}: stopping every guest");
            hive.set_offline(&format!("signal {signo}: supervisor stopping"));
            processes.stop_all();
            first_failure.get_or_insert(128u8.wrapping_add(signo as u8));
        }
        for ended in processes.reap() {
            if ended.code == 0 || ended.requested {
                info!("guest {} stopped ({})", ended.name, ended.how);
            } else {
                error!("guest {} stopped: {}", ended.name, ended.how);
                first_failure.get_or_insert(ended.code);
            }
            hive.guest_exited(&ended.name, &ended.how);
        }
    }
    hive.set_offline("every guest has stopped");
    drop(server);
    let _ = std::fs::remove_file(socket_path(&state));
    Ok(first_failure.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coco_hive_config::ImageSource;

    #[test]
    fn hive_toml_telemetry_ring_kib_sizes_the_rings() {
        let text = "[hive]\nname = \"h\"\n[[guest]]\nname = \"worker-1\"\nkind = \"coconut\"\nkernel = \"builtin:k\"\n";
        let parse = |t: &str| {
            HiveConfig::parse(
                t,
                coco_hive_config::ConfigOrigin::Embedded,
                Path::new("/"),
                &["k"],
            )
            .unwrap()
        };
        let default = hive_spec(&parse(text));
        assert_eq!(default.name, "h");
        assert_eq!(
            default.telemetry_ring_bytes,
            HiveSpec::default().telemetry_ring_bytes
        );
        let big = text.replace(
            "name = \"h\"\n",
            "name = \"h\"\ntelemetry_ring_kib = 2048\n",
        );
        assert_eq!(hive_spec(&parse(&big)).telemetry_ring_bytes, 2048 * 1024);
    }

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
