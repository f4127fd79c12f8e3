//! Effects: what the namespace decides and the VMM must carry out.
//!
//! Why a trait: NineDoor records decisions (a worker exists, a lease is
//! held, a worker is revoked); booting and stopping VMs and moving GPU
//! partitions belong to the supervisor, which implements [`Effects`]. The
//! hive calls effects **without holding its lock**, so a slow VMM never
//! stalls the namespace. [`RecordingEffects`] records calls and can be told
//! to fail; tests use it.
//!
//! Contract: an `Err` means the action did not happen (spawn) or may not
//! have completed (stop, detach); the hive fails the triggering write with
//! `EIO`, writes an audit line, and leaves records that match reality (see
//! `hive` for the exact rules).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::budget::SpawnBudget;
use crate::identity::Role;

/// The GPU part of a spawn (`{"spawn":"gpu","lease":{...}}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseSpec {
    /// GPU id from the hive configuration.
    pub gpu_id: String,
    /// VRAM, MiB.
    pub mem_mb: u64,
    /// Compute streams.
    pub streams: u32,
    /// Scheduling priority.
    pub priority: u32,
    /// Lease lifetime, seconds (enforced by the hive's clock).
    pub ttl_s: u64,
}

/// Everything the supervisor needs to start a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnSpec {
    /// `worker-N`.
    pub id: String,
    /// `WorkerHeartbeat` or `WorkerGpu`.
    pub role: Role,
    /// Heartbeat tick count requested by the queen, if any.
    pub ticks: Option<u64>,
    /// Session budget for the worker's ticket (defaults already applied
    /// from the queen's default budget; role defaults still apply to what
    /// is absent).
    pub budget: SpawnBudget,
    /// The GPU partition to attach, for GPU workers.
    pub lease: Option<LeaseSpec>,
}

/// VMM actions the hive asks for.
pub trait Effects: Send + Sync {
    /// Boot a worker VM.
    fn spawn_worker(&self, spec: &SpawnSpec) -> Result<(), String>;
    /// Stop a worker VM.
    fn stop_worker(&self, id: &str, reason: &str) -> Result<(), String>;
    /// Take a GPU partition away from a worker.
    fn detach_gpu(&self, worker: &str, gpu: &str) -> Result<(), String>;
}

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EffectCall {
    /// `spawn_worker`.
    Spawn(SpawnSpec),
    /// `stop_worker`.
    Stop {
        /// Worker id.
        id: String,
        /// Why.
        reason: String,
    },
    /// `detach_gpu`.
    Detach {
        /// Worker id.
        worker: String,
        /// GPU id.
        gpu: String,
    },
}

/// Records every call; each kind can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingEffects {
    calls: Mutex<Vec<EffectCall>>,
    fail_spawn: AtomicBool,
    fail_stop: AtomicBool,
    fail_detach: AtomicBool,
}

impl RecordingEffects {
    /// Succeeds at everything until told otherwise.
    #[must_use]
    pub fn new() -> RecordingEffects {
        RecordingEffects::default()
    }

    /// Makes `spawn_worker` fail (or succeed again).
    pub fn fail_spawn(&self, fail: bool) {
        self.fail_spawn.store(fail, Ordering::SeqCst);
    }

    /// Makes `stop_worker` fail (or succeed again).
    pub fn fail_stop(&self, fail: bool) {
        self.fail_stop.store(fail, Ordering::SeqCst);
    }

    /// Makes `detach_gpu` fail (or succeed again).
    pub fn fail_detach(&self, fail: bool) {
        self.fail_detach.store(fail, Ordering::SeqCst);
    }

    /// Every call so far, failed ones included, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<EffectCall> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn record(&self, call: EffectCall, fail: &AtomicBool) -> Result<(), String> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(call);
        if fail.load(Ordering::SeqCst) {
            Err("injected failure".into())
        } else {
            Ok(())
        }
    }
}

impl Effects for RecordingEffects {
    fn spawn_worker(&self, spec: &SpawnSpec) -> Result<(), String> {
        self.record(EffectCall::Spawn(spec.clone()), &self.fail_spawn)
    }

    fn stop_worker(&self, id: &str, reason: &str) -> Result<(), String> {
        self.record(
            EffectCall::Stop {
                id: id.to_owned(),
                reason: reason.to_owned(),
            },
            &self.fail_stop,
        )
    }

    fn detach_gpu(&self, worker: &str, gpu: &str) -> Result<(), String> {
        self.record(
            EffectCall::Detach {
                worker: worker.to_owned(),
                gpu: gpu.to_owned(),
            },
            &self.fail_detach,
        )
    }
}
