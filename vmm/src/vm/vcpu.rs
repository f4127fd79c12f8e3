//! The vCPU thread: run the vCPU, route its exits to the buses, and turn the
//! exits that end a VM into an [`Outcome`].
//!
//! A stop is noticed between two `KVM_RUN`s: the runner sets the stop flag and
//! interrupts `KVM_RUN` with a signal until the thread is gone.

use std::sync::Arc;

use kvm_bindings::{KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{VcpuExit, VcpuFd};
use tracing::{debug, warn};

use crate::devices::bus::Bus;
use crate::vm::control::{Outcome, VmControl};

/// What a vCPU thread needs besides its fd.
#[derive(Debug)]
pub struct VcpuContext {
    /// The vCPU's index.
    pub id: u8,
    /// Port-I/O bus.
    pub pio: Arc<Bus>,
    /// MMIO bus.
    pub mmio: Arc<Bus>,
    /// Stop flag and outcome.
    pub control: Arc<VmControl>,
}

fn rip(vcpu: &VcpuFd) -> u64 {
    vcpu.get_regs().map(|r| r.rip).unwrap_or(0)
}

fn internal_error(vcpu: &mut VcpuFd, id: u8) -> Outcome {
    let run = vcpu.get_kvm_run();
    // SAFETY: KVM_EXIT_INTERNAL_ERROR was reported for this run, which makes
    // `internal` the active member of the exit union.
    let internal = unsafe { run.__bindgen_anon_1.internal };
    let ndata = (internal.ndata as usize).min(internal.data.len());
    let data: Vec<String> = internal.data[..ndata]
        .iter()
        .map(|d| format!("{d:#x}"))
        .collect();
    let what = match internal.suberror {
        1 => "instruction emulation failed",
        2 => "simultaneous exceptions",
        3 => "delivery event failed",
        _ => "internal error",
    };
    Outcome::Crash {
        reason: format!(
            "vCPU {id}: KVM {what} (suberror {}) at rip {:#x}, data [{}]",
            internal.suberror,
            rip(vcpu),
            data.join(", ")
        ),
    }
}

/// Runs the vCPU until the VM stops.
pub fn run(mut vcpu: VcpuFd, ctx: VcpuContext) {
    let id = ctx.id;
    while !ctx.control.is_stopping() {
        let outcome = match vcpu.run() {
            Ok(VcpuExit::IoIn(port, data)) => {
                ctx.pio.read(u64::from(port), data);
                None
            }
            Ok(VcpuExit::IoOut(port, data)) => {
                ctx.pio.write(u64::from(port), data);
                None
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                ctx.mmio.read(addr, data);
                None
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                ctx.mmio.write(addr, data);
                None
            }
            Ok(VcpuExit::Hlt) => {
                // With the in-kernel LAPIC, HLT is handled by KVM; seeing it
                // here means the vCPU halted with nothing to wake it.
                debug!("vCPU {id} halted");
                None
            }
            Ok(VcpuExit::Shutdown) => Some(Outcome::TripleFault {
                vcpu: id,
                rip: rip(&vcpu),
            }),
            Ok(VcpuExit::SystemEvent(kind, _)) => Some(match kind {
                KVM_SYSTEM_EVENT_SHUTDOWN => Outcome::PowerOff,
                KVM_SYSTEM_EVENT_RESET => Outcome::Reset,
                KVM_SYSTEM_EVENT_CRASH => Outcome::Crash {
                    reason: format!("vCPU {id}: guest reported a crash"),
                },
                other => Outcome::Crash {
                    reason: format!("vCPU {id}: unknown system event {other}"),
                },
            }),
            Ok(VcpuExit::InternalError) => Some(internal_error(&mut vcpu, id)),
            Ok(VcpuExit::FailEntry(reason, cpu)) => Some(Outcome::Crash {
                reason: format!(
                    "vCPU {id}: VM entry failed (hardware reason {reason:#x}, cpu {cpu})"
                ),
            }),
            Ok(VcpuExit::Intr) => None,
            Ok(other) => {
                warn!("vCPU {id}: unexpected exit {other:?}; continuing");
                None
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => None,
            Err(e) => Some(Outcome::Crash {
                reason: format!("vCPU {id}: KVM_RUN failed: {e}"),
            }),
        };
        if let Some(outcome) = outcome {
            ctx.control.request_stop(outcome);
        }
    }
    debug!("vCPU {id} stopped");
}
