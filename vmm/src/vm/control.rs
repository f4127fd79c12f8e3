//! How a running VM is told to stop, and why it stopped.
//!
//! Whoever first decides the VM is over (the guest's debug-exit write, a
//! reset, a triple fault, a signal, a KVM failure) records an [`Outcome`];
//! later reasons are ignored. The event loop wakes on [`VmControl::stop_fd`]
//! and takes the vCPU threads down.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

/// Why a VM stopped.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// The guest wrote `status` to the debug-exit port.
    GuestExit {
        /// The value written (low 8 bits).
        status: u8,
    },
    /// The guest reset the machine (i8042 pulse or a KVM reset event).
    Reset,
    /// The guest asked to power off (KVM shutdown system event).
    PowerOff,
    /// A triple fault (KVM_EXIT_SHUTDOWN).
    TripleFault {
        /// The vCPU that faulted.
        vcpu: u8,
        /// Its instruction pointer when it did.
        rip: u64,
    },
    /// The VMM was asked to stop by a signal.
    Signal {
        /// The signal number.
        signo: i32,
    },
    /// KVM could not go on (emulation failure, entry failure, ioctl error).
    Crash {
        /// What happened, for the log.
        reason: String,
    },
}

impl Outcome {
    /// The process exit status this outcome maps to (documented in docs/vmm.md).
    pub fn exit_status(&self) -> u8 {
        match self {
            Outcome::GuestExit { status } => *status,
            Outcome::Reset | Outcome::PowerOff => 0,
            Outcome::TripleFault { .. } => 120,
            Outcome::Crash { .. } => 121,
            Outcome::Signal { signo } => 128u8.wrapping_add(*signo as u8),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::GuestExit { status } => write!(f, "guest exited with status {status}"),
            Outcome::Reset => write!(f, "guest reset the machine"),
            Outcome::PowerOff => write!(f, "guest powered off"),
            Outcome::TripleFault { vcpu, rip } => {
                write!(f, "triple fault on vCPU {vcpu} at rip {rip:#x}")
            }
            Outcome::Signal { signo } => write!(f, "stopped by signal {signo}"),
            Outcome::Crash { reason } => write!(f, "VM crashed: {reason}"),
        }
    }
}

/// Shared between vCPU threads, devices and the event loop.
#[derive(Debug)]
pub struct VmControl {
    stopping: AtomicBool,
    outcome: Mutex<Option<Outcome>>,
    stop_evt: EventFd,
}

impl VmControl {
    /// A control block for a VM that is running.
    pub fn new() -> std::io::Result<Self> {
        Ok(VmControl {
            stopping: AtomicBool::new(false),
            outcome: Mutex::new(None),
            stop_evt: EventFd::new(EFD_NONBLOCK)?,
        })
    }

    /// Asks the VM to stop for `outcome`; the first reason wins.
    pub fn request_stop(&self, outcome: Outcome) {
        if let Ok(mut slot) = self.outcome.lock()
            && slot.is_none()
        {
            *slot = Some(outcome);
        }
        self.stopping.store(true, Ordering::SeqCst);
        // A full eventfd counter still leaves it readable; nothing to handle.
        let _ = self.stop_evt.write(1);
    }

    /// Whether a stop was requested.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The recorded outcome, if any.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome.lock().ok().and_then(|o| o.clone())
    }

    /// Readable once a stop was requested.
    pub fn stop_fd(&self) -> RawFd {
        self.stop_evt.as_raw_fd()
    }

    /// Clears the stop event's readiness (called by the event loop).
    pub fn ack_stop_event(&self) {
        let _ = self.stop_evt.read();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_outcome_wins() {
        let c = VmControl::new().unwrap();
        assert!(!c.is_stopping());
        c.request_stop(Outcome::GuestExit { status: 3 });
        c.request_stop(Outcome::Reset);
        assert!(c.is_stopping());
        assert_eq!(c.outcome(), Some(Outcome::GuestExit { status: 3 }));
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(Outcome::GuestExit { status: 0 }.exit_status(), 0);
        assert_eq!(Outcome::GuestExit { status: 7 }.exit_status(), 7);
        assert_eq!(Outcome::Signal { signo: 15 }.exit_status(), 143);
        assert_eq!(Outcome::Signal { signo: 2 }.exit_status(), 130);
        assert_eq!(Outcome::TripleFault { vcpu: 0, rip: 0 }.exit_status(), 120);
        assert_eq!(Outcome::Reset.exit_status(), 0);
    }
}
