//! Driving a built VM to its end: vCPU threads, the device event loop, and
//! a clean stop on SIGINT/SIGTERM or when the guest ends itself.
//!
//! The event loop (rust-vmm `event-manager`, epoll) watches the stop event
//! and a signalfd. Termination signals are blocked in every thread and only
//! read from the signalfd, so no handler ever runs in the middle of device
//! code. vCPUs are interrupted with a real-time signal whose handler does
//! nothing: its only job is to make `KVM_RUN` return.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use event_manager::{EventManager, EventOps, Events, MutEventSubscriber, SubscriberOps};
use tracing::{info, warn};
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::signal::{Killable, SIGRTMIN, register_signal_handler};

use crate::devices::boot_timer::Milestone;
use crate::vm::builder::Vm;
use crate::vm::control::{Outcome, VmControl};
use crate::vm::vcpu::{self, VcpuContext};

/// Signals that stop the VM cleanly.
pub const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Why running failed (as opposed to the guest ending badly, which is an
/// [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Setting up signals, threads or the event loop failed.
    #[error("{what}: {source}")]
    Setup {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

fn setup(what: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Setup { what, source }
}

/// What happened, for the caller and `--timings`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunReport {
    /// Guest name.
    pub guest: String,
    /// Why the VM stopped.
    pub outcome: Outcome,
    /// Boot-timer milestones.
    pub milestones: Vec<Milestone>,
    /// Time from VMM start to the VM's end, in microseconds.
    pub exit_us: u64,
    /// Resident memory of the VMM process outside guest RAM, in KiB.
    pub rss_outside_guest_kib: Option<u64>,
    /// Resident guest RAM, in KiB.
    pub guest_rss_kib: Option<u64>,
}

/// Blocks the stop signals in the calling thread (threads spawned later
/// inherit the mask) and returns a signalfd that reports them.
pub fn block_stop_signals() -> std::io::Result<OwnedFd> {
    // SAFETY: `set` is a plain sigset_t initialised by sigemptyset before
    // use; every call's result is checked.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in STOP_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads one pending signal from a signalfd.
pub fn read_signal(fd: RawFd) -> Option<i32> {
    // SAFETY: signalfd_siginfo is plain data; we read at most its size into
    // it and check the count.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = libc::read(fd, (&mut info as *mut libc::signalfd_siginfo).cast(), size);
        (n == size as isize).then_some(info.ssi_signo as i32)
    }
}

extern "C" fn kick_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// The real-time signal used to interrupt `KVM_RUN`.
fn kick_signal() -> libc::c_int {
    SIGRTMIN()
}

/// Watches the stop event and the signalfd.
struct ControlSubscriber {
    control: Arc<VmControl>,
    signals: OwnedFd,
}

const STOP_TOKEN: u32 = 1;
const SIGNAL_TOKEN: u32 = 2;

impl MutEventSubscriber for ControlSubscriber {
    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        match events.data() {
            STOP_TOKEN => self.control.ack_stop_event(),
            SIGNAL_TOKEN => {
                while let Some(signo) = read_signal(self.signals.as_raw_fd()) {
                    info!("signal {signo} received; stopping the VM");
                    self.control.request_stop(Outcome::Signal { signo });
                }
            }
            _ => {}
        }
    }

    fn init(&mut self, ops: &mut EventOps) {
        let registered = ops
            .add(Events::with_data_raw(
                self.control.stop_fd(),
                STOP_TOKEN,
                EventSet::IN,
            ))
            .and_then(|_| {
                ops.add(Events::with_data_raw(
                    self.signals.as_raw_fd(),
                    SIGNAL_TOKEN,
                    EventSet::IN,
                ))
            });
        if let Err(e) = registered {
            // Without these the loop could never end: stop right away.
            self.control.request_stop(Outcome::Crash {
                reason: format!("event loop registration failed: {e:?}"),
            });
        }
    }
}

/// Sums `Rss:` of the mappings in /proc/self/smaps, split into those inside
/// `guest` host ranges and the rest.
fn rss_split(guest: &[(u64, u64)]) -> Option<(u64, u64)> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let (mut inside, mut outside) = (0u64, 0u64);
    let mut current_in_guest = false;
    for line in smaps.lines() {
        if let Some(rest) = line.strip_prefix("Rss:") {
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            if current_in_guest {
                inside += kib;
            } else {
                outside += kib;
            }
        } else if let Some((range, _)) = line.split_once(' ')
            && let Some((start, end)) = range.split_once('-')
            && let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            current_in_guest = guest.iter().any(|(g, len)| start >= *g && end <= g + len);
        }
    }
    Some((inside, outside))
}

impl Vm {
    /// Runs the VM until it stops; `signals` is the signalfd from
    /// [`block_stop_signals`], created before any thread.
    pub fn run(self, signals: OwnedFd) -> Result<RunReport, RunError> {
        register_signal_handler(kick_signal(), kick_handler)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
            .map_err(setup("installing the vCPU kick handler"))?;
        let Vm {
            name,
            vcpus,
            pio,
            mmio,
            control,
            serial,
            milestones,
            memory,
            origin,
            vm_fd,
            _kvm,
            subscribers,
            ..
        } = self;
        let pio = Arc::new(pio);
        let mmio = Arc::new(mmio);

        let mut event_manager = EventManager::<Arc<Mutex<dyn MutEventSubscriber + Send>>>::new()
            .map_err(|e| std::io::Error::other(format!("{e:?}")))
            .map_err(setup("creating the event loop"))?;
        event_manager.add_subscriber(Arc::new(Mutex::new(ControlSubscriber {
            control: control.clone(),
            signals,
        })));
        for subscriber in subscribers {
            event_manager.add_subscriber(subscriber);
        }

        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        for (id, fd) in vcpus.into_iter().enumerate() {
            let ctx = VcpuContext {
                id: id as u8,
                pio: pio.clone(),
                mmio: mmio.clone(),
                control: control.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("vcpu-{id}"))
                .spawn(move || vcpu::run(fd, ctx));
            match handle {
                Ok(h) => threads.push(h),
                Err(e) => {
                    control.request_stop(Outcome::Crash {
                        reason: format!("cannot start vCPU thread {id}: {e}"),
                    });
                    break;
                }
            }
        }

        while !control.is_stopping() {
            if let Err(e) = event_manager.run() {
                warn!("event loop: {e:?}");
                control.request_stop(Outcome::Crash {
                    reason: format!("event loop failed: {e:?}"),
                });
            }
        }
        let exit_at = origin.elapsed();
        stop_vcpus(threads);

        if let Ok(mut serial) = serial.lock()
            && let Err(e) = serial.console_mut().finish()
        {
            warn!("flushing the console log: {e}");
        }
        let guest_ranges: Vec<(u64, u64)> = memory
            .iter()
            .map(|r| (r.as_ptr() as u64, r.len()))
            .collect();
        let rss = rss_split(&guest_ranges);
        drop(vm_fd);
        let outcome = control.outcome().unwrap_or(Outcome::Crash {
            reason: "stopped without a recorded reason".into(),
        });
        info!(guest = %name, "{outcome}");
        let milestones = milestones.lock().map(|m| m.clone()).unwrap_or_default();
        Ok(RunReport {
            guest: name,
            outcome,
            milestones,
            exit_us: exit_at.as_micros() as u64,
            rss_outside_guest_kib: rss.map(|(_, outside)| outside),
            guest_rss_kib: rss.map(|(inside, _)| inside),
        })
    }
}

/// Interrupts every vCPU thread until it has left its run loop, then joins it.
fn stop_vcpus(threads: Vec<JoinHandle<()>>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for handle in threads {
        while !handle.is_finished() {
            if let Err(e) = handle.kill(kick_signal()) {
                warn!("cannot interrupt a vCPU thread: {e}");
                break;
            }
            if Instant::now() > deadline {
                warn!("a vCPU thread did not stop within 10 s; leaving it behind");
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if handle.is_finished() {
            let _ = handle.join();
        }
    }
}
