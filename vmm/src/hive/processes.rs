//! VM processes: starting one (with its bridge), signalling one by name,
//! and reaping the ones that ended.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use coco_hive_config::GuestConfig;
use ninedoor::Hive;
use ninedoor::identity::Identity;
use ninedoor::server::SessionFactory;
use tracing::info;

use super::{boot_args, bridge};

/// The mount tag every guest's virtio-9p device exports.
pub const MOUNT_TAG: &str = "hive";

/// Makes `fd` descriptor 3 of the process `cmd` starts (the `--ninep-fd 3`
/// convention). `fd` must stay open until `cmd` has been spawned.
pub fn pass_as_fd3(cmd: &mut Command, fd: RawFd) {
    // SAFETY: only async-signal-safe calls (fcntl, dup2) run between fork
    // and exec; the caller keeps `fd` open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec set.
            let rc = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// One running VM process.
#[derive(Debug)]
struct VmProcess {
    name: String,
    child: Child,
    /// The supervisor asked it to stop (a queen's kill, or shutdown).
    stop_requested: bool,
}

/// How a VM process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Guest name.
    pub name: String,
    /// Its exit status as the hive reports it (128 + N for signal N).
    pub code: u8,
    /// "status N" or "killed by signal N".
    pub how: String,
    /// It ended because the supervisor asked it to.
    pub requested: bool,
}

/// The hive's VM processes, shared by the supervisor loop and the effects
/// a queen's spawn and kill trigger.
#[derive(Debug)]
pub struct Processes {
    exe: PathBuf,
    state: PathBuf,
    list: Mutex<Vec<VmProcess>>,
}

fn describe(status: ExitStatus) -> (u8, String) {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code as u8, format!("status {code}")),
        (None, Some(sig)) => (
            128u8.wrapping_add(sig as u8),
            format!("killed by signal {sig}"),
        ),
        _ => (1, "ended".into()),
    }
}

impl Processes {
    /// VM processes run `exe boot …` with state in `state`.
    pub fn new(exe: &Path, state: &Path) -> Arc<Processes> {
        Arc::new(Processes {
            exe: exe.to_path_buf(),
            state: state.to_path_buf(),
            list: Mutex::new(Vec::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<VmProcess>> {
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the VM process of `guest`, its virtio-9p bridge bound to `identity`.
    pub fn launch(
        &self,
        guest: &GuestConfig,
        identity: Identity,
        factory: &Arc<SessionFactory>,
        hive: &Hive,
    ) -> std::io::Result<u32> {
        if self.lock().iter().any(|p| p.name == guest.name) {
            return Err(std::io::Error::other(format!(
                "guest {} is already running",
                guest.name
            )));
        }
        let guest_end = bridge::open(factory, &guest.name, identity)?;
        let mut cmd = Command::new(&self.exe);
        cmd.args(boot_args(guest, &self.state))
            .args(["--ninep-fd", "3", "--ninep-tag", MOUNT_TAG])
            .args(["--ninep-transport", guest.virtio_transport.as_str()]);
        pass_as_fd3(&mut cmd, guest_end.as_raw_fd());
        let child = cmd.spawn()?;
        drop(guest_end);
        let pid = child.id();
        info!("guest {} started (pid {pid})", guest.name);
        hive.guest_started(&guest.name, pid);
        self.lock().push(VmProcess {
            name: guest.name.clone(),
            child,
            stop_requested: false,
        });
        Ok(pid)
    }

    /// Asks the VM process of `name` to stop (SIGTERM); `false` if none runs.
    pub fn stop(&self, name: &str) -> bool {
        let mut list = self.lock();
        let Some(p) = list.iter_mut().find(|p| p.name == name) else {
            return false;
        };
        p.stop_requested = true;
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // own child, not yet reaped (reaping removes it from the list).
        unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
        true
    }

    /// Asks every VM process to stop (SIGTERM).
    pub fn stop_all(&self) {
        for p in self.lock().iter_mut() {
            p.stop_requested = true;
            // SAFETY: as in `stop`.
            unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
        }
    }

    /// Reaps every VM process that has ended.
    pub fn reap(&self) -> Vec<Ended> {
        let mut ended = Vec::new();
        self.lock().retain_mut(|p| match p.child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                let (code, how) = describe(status);
                ended.push(Ended {
                    name: p.name.clone(),
                    code,
                    how,
                    requested: p.stop_requested,
                });
                false
            }
            Err(e) => {
                ended.push(Ended {
                    name: p.name.clone(),
                    code: 1,
                    how: format!("lost: {e}"),
                    requested: p.stop_requested,
                });
                false
            }
        });
        ended
    }

    /// Whether no VM process is running.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
