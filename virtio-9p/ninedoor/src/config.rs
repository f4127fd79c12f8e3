//! What a hive is made of: its GPUs, its models, its limits and the role
//! secrets the session layer verifies tickets with.
//!
//! The supervisor builds a [`HiveSpec`] from `hive.toml`; [`HiveSpec::validate`]
//! checks every id that becomes a path component, so nothing configured can
//! produce an unreachable or ambiguous node.

use std::fmt;

use crate::policy::RESERVED_GPU_NAMES;
use crate::tree::valid_name;

/// One GPU (or partition) the hive can lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuSpec {
    /// Id, a path component under `/gpu` (not `models` or `telemetry`).
    pub id: String,
    /// Marketing/device name.
    pub name: String,
    /// VRAM, MiB.
    pub memory_mb: u64,
    /// Streaming multiprocessors / compute units.
    pub sm_count: u32,
    /// Driver version string.
    pub driver_version: String,
    /// Runtime (CUDA/emulator) version string.
    pub runtime_version: String,
}

/// A model that can be made active.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// Id, a path component under `/gpu/models/available`.
    pub id: String,
    /// Contents of its `manifest.toml`.
    pub manifest_toml: String,
}

/// Role secrets for ticket MACs. `Debug` never prints them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Queen role secret.
    pub queen: Option<String>,
    /// worker-heartbeat role secret.
    pub worker_heartbeat: Option<String>,
    /// worker-gpu role secret.
    pub worker_gpu: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &Option<String>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Secrets")
            .field("queen", &shown(&self.queen))
            .field("worker_heartbeat", &shown(&self.worker_heartbeat))
            .field("worker_gpu", &shown(&self.worker_gpu))
            .finish()
    }
}

/// Default telemetry ring size per worker.
pub const DEFAULT_TELEMETRY_RING_BYTES: usize = 4096;
/// Default retained window of append-only logs in memory.
pub const DEFAULT_LOG_RETAIN_BYTES: usize = 256 * 1024;
/// Default lease TTL when a LEASE names none.
pub const DEFAULT_LEASE_TTL_S: u64 = 120;

/// A hive's namespace configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HiveSpec {
    /// Hive name (shown in `/proc/boot`).
    pub name: String,
    /// GPUs.
    pub gpus: Vec<GpuSpec>,
    /// Models.
    pub models: Vec<ModelSpec>,
    /// Bytes each `/worker/<id>/telemetry` ring keeps (≥ 1).
    pub telemetry_ring_bytes: usize,
    /// Bytes each append-only log keeps in memory (the journal on disk
    /// keeps every audit record).
    pub log_retain_bytes: usize,
    /// TTL of a lease that names none.
    pub default_lease_ttl_s: u64,
    /// Ticket secrets, handed to the session layer.
    pub secrets: Secrets,
}

impl Default for HiveSpec {
    fn default() -> HiveSpec {
        HiveSpec {
            name: "hive".into(),
            gpus: Vec::new(),
            models: Vec::new(),
            telemetry_ring_bytes: DEFAULT_TELEMETRY_RING_BYTES,
            log_retain_bytes: DEFAULT_LOG_RETAIN_BYTES,
            default_lease_ttl_s: DEFAULT_LEASE_TTL_S,
            secrets: Secrets::default(),
        }
    }
}

/// A configuration error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid hive spec: {0}")]
pub struct SpecError(pub String);

impl HiveSpec {
    /// Checks ids, uniqueness and limits.
    pub fn validate(&self) -> Result<(), SpecError> {
        let mut seen = std::collections::HashSet::new();
        for g in &self.gpus {
            if !valid_name(&g.id) || RESERVED_GPU_NAMES.contains(&g.id.as_str()) {
                return Err(SpecError(format!("bad gpu id {:?}", g.id)));
            }
            if !seen.insert(&g.id) {
                return Err(SpecError(format!("duplicate gpu id {:?}", g.id)));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.models {
            if !valid_name(&m.id) || m.id.contains(char::is_whitespace) {
                return Err(SpecError(format!("bad model id {:?}", m.id)));
            }
            if !seen.insert(&m.id) {
                return Err(SpecError(format!("duplicate model id {:?}", m.id)));
            }
        }
        if self.telemetry_ring_bytes == 0 || self.log_retain_bytes == 0 {
            return Err(SpecError("ring and log sizes must be at least 1".into()));
        }
        if self.default_lease_ttl_s == 0 {
            return Err(SpecError("default lease ttl must be at least 1 s".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(id: &str) -> GpuSpec {
        GpuSpec {
            id: id.into(),
            name: "n".into(),
            memory_mb: 1,
            sm_count: 1,
            driver_version: "d".into(),
            runtime_version: "r".into(),
        }
    }

    #[test]
    fn validation() {
        let mut s = HiveSpec::default();
        assert!(s.validate().is_ok());
        s.gpus = vec![gpu("gpu0"), gpu("gpu0")];
        assert!(s.validate().is_err());
        for bad in ["models", "telemetry", "", ".", "..", "a/b"] {
            s.gpus = vec![gpu(bad)];
            assert!(s.validate().is_err(), "{bad}");
        }
        s.gpus = vec![gpu("gpu0")];
        s.models = vec![ModelSpec {
            id: "two words".into(),
            manifest_toml: String::new(),
        }];
        assert!(s.validate().is_err());
        s.models.clear();
        s.telemetry_ring_bytes = 0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = Secrets {
            queen: Some("hunter2".into()),
            ..Secrets::default()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("hunter2"));
        assert!(d.contains("<set>"));
    }
}
