//! GPU leases: the `/gpu/<id>/ctl` command language, lease validation and
//! the `gpu-lease/v1` JSON lines written to `/gpu/<id>/lease`.
//!
//! ```text
//! LEASE worker-N mem=M streams=S priority=P [ttl=S]
//! RELEASE worker-N [reason words...]
//! ```
//!
//! One ACTIVE lease per GPU and one GPU per worker. Every change appends one
//! line to the GPU's `lease` file; the last line is authoritative:
//!
//! ```text
//! {"schema":"gpu-lease/v1","state":"ACTIVE","gpu_id":"gpu0","worker_id":"worker-2","mem_mb":512,
//!  "streams":2,"priority":1,"ttl_s":60,"issued_at_ms":..,"expires_at_ms":..}
//! {"schema":"gpu-lease/v1","state":"RELEASED",...same fields...,"released_at_ms":..,"reason":"ttl expired"}
//! ```
//!
//! The TTL is enforced by the hive's clock (`Hive::expire`), not trusted to
//! anyone else.

use serde::Serialize;

use crate::config::GpuSpec;
use crate::identity::parse_worker_id;

/// Schema tag of lease lines.
pub const LEASE_SCHEMA: &str = "gpu-lease/v1";
/// Most streams one lease may ask for.
pub const MAX_STREAMS: u32 = 64;

/// A parsed `/gpu/<id>/ctl` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuCommand {
    /// Grant a lease.
    Lease {
        /// `worker-N`.
        worker: String,
        /// VRAM, MiB.
        mem_mb: u64,
        /// Streams.
        streams: u32,
        /// Priority.
        priority: u32,
        /// TTL, seconds (hive default when absent).
        ttl_s: Option<u64>,
    },
    /// End a lease.
    Release {
        /// `worker-N`.
        worker: String,
        /// Why (free text, may be empty).
        reason: String,
    },
}

fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{key} must be a decimal number"));
    }
    v.parse().map_err(|_| format!("{key} out of range"))
}

/// Parses one control line.
pub fn parse_gpu_line(line: &str) -> Result<GpuCommand, String> {
    let mut words = line.split_whitespace();
    let verb = words.next().ok_or("empty command")?;
    let worker = words.next().ok_or("missing worker id")?;
    if parse_worker_id(worker).is_none() {
        return Err(format!("bad worker id {worker:?}"));
    }
    let worker = worker.to_owned();
    match verb {
        "LEASE" => {
            let (mut mem, mut streams, mut prio, mut ttl) = (None, None, None, None);
            for w in words {
                let (k, v) = w
                    .split_once('=')
                    .ok_or_else(|| format!("expected key=value, got {w:?}"))?;
                let slot_taken = match k {
                    "mem" => mem.replace(num::<u64>(k, v)?).is_some(),
                    "streams" => streams.replace(num::<u32>(k, v)?).is_some(),
                    "priority" => prio.replace(num::<u32>(k, v)?).is_some(),
                    "ttl" => ttl.replace(num::<u64>(k, v)?).is_some(),
                    _ => return Err(format!("unknown key {k:?}")),
                };
                if slot_taken {
                    return Err(format!("duplicate key {k:?}"));
                }
            }
            Ok(GpuCommand::Lease {
                worker,
                mem_mb: mem.ok_or("missing mem=")?,
                streams: streams.ok_or("missing streams=")?,
                priority: prio.ok_or("missing priority=")?,
                ttl_s: ttl,
            })
        }
        "RELEASE" => Ok(GpuCommand::Release {
            worker,
            reason: words.collect::<Vec<_>>().join(" "),
        }),
        other => Err(format!("unknown command {other:?}")),
    }
}

/// Checks a lease request against the GPU.
pub fn validate(gpu: &GpuSpec, mem_mb: u64, streams: u32, ttl_s: u64) -> Result<(), String> {
    if mem_mb == 0 || mem_mb > gpu.memory_mb {
        return Err(format!(
            "mem={mem_mb} outside 1..={} MiB of {}",
            gpu.memory_mb, gpu.id
        ));
    }
    if streams == 0 || streams > MAX_STREAMS {
        return Err(format!("streams={streams} outside 1..={MAX_STREAMS}"));
    }
    if ttl_s == 0 {
        return Err("ttl must be at least 1 s".into());
    }
    Ok(())
}

/// An active lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// GPU id.
    pub gpu_id: String,
    /// Holder.
    pub worker: String,
    /// VRAM, MiB.
    pub mem_mb: u64,
    /// Streams.
    pub streams: u32,
    /// Priority.
    pub priority: u32,
    /// TTL, seconds.
    pub ttl_s: u64,
    /// Granted at.
    pub issued_at_ms: u64,
    /// Expires at (`issued + ttl`).
    pub expires_at_ms: u64,
}

#[derive(Serialize)]
struct LeaseLine<'a> {
    schema: &'static str,
    state: &'static str,
    gpu_id: &'a str,
    worker_id: &'a str,
    mem_mb: u64,
    streams: u32,
    priority: u32,
    ttl_s: u64,
    issued_at_ms: u64,
    expires_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    released_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl Lease {
    fn line(&self, state: &'static str, released: Option<(u64, &str)>) -> String {
        let l = LeaseLine {
            schema: LEASE_SCHEMA,
            state,
            gpu_id: &self.gpu_id,
            worker_id: &self.worker,
            mem_mb: self.mem_mb,
            streams: self.streams,
            priority: self.priority,
            ttl_s: self.ttl_s,
            issued_at_ms: self.issued_at_ms,
            expires_at_ms: self.expires_at_ms,
            released_at_ms: released.map(|r| r.0),
            reason: released.map(|r| r.1),
        };
        // Serializing plain strings and integers cannot fail; fall back to
        // an empty object rather than panicking if it ever did.
        let mut s = serde_json::to_string(&l).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }

    /// The `ACTIVE` line.
    #[must_use]
    pub fn active_line(&self) -> String {
        self.line("ACTIVE", None)
    }

    /// The `RELEASED` line.
    #[must_use]
    pub fn released_line(&self, at_ms: u64, reason: &str) -> String {
        self.line("RELEASED", Some((at_ms, reason)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lease_and_release() {
        assert_eq!(
            parse_gpu_line("LEASE worker-2 mem=512 streams=2 priority=1 ttl=30"),
            Ok(GpuCommand::Lease {
                worker: "worker-2".into(),
                mem_mb: 512,
                streams: 2,
                priority: 1,
                ttl_s: Some(30)
            })
        );
        assert_eq!(
            parse_gpu_line("RELEASE worker-2 job  done"),
            Ok(GpuCommand::Release {
                worker: "worker-2".into(),
                reason: "job done".into()
            })
        );
        for bad in [
            "",
            "LEASE",
            "LEASE worker-x mem=1 streams=1 priority=1",
            "LEASE worker-2 mem=1 streams=1",
            "LEASE worker-2 mem=1 streams=1 priority=1 colour=red",
            "LEASE worker-2 mem=1 mem=2 streams=1 priority=1",
            "LEASE worker-2 mem=-1 streams=1 priority=1",
            "LEASE worker-2 mem=1 streams=99999999999 priority=1",
            "LEASE worker-2 mem=1 streams=1 priority",
            "lease worker-2 mem=1 streams=1 priority=1",
            "RELEASE",
            "EVICT worker-2",
        ] {
            assert!(parse_gpu_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_are_json() {
        let l = Lease {
            gpu_id: "gpu0".into(),
            worker: "worker-1".into(),
            mem_mb: 1,
            streams: 2,
            priority: 3,
            ttl_s: 4,
            issued_at_ms: 5,
            expires_at_ms: 4005,
        };
        let a: serde_json::Value = serde_json::from_str(&l.active_line()).unwrap();
        assert_eq!(a["schema"], "gpu-lease/v1");
        assert_eq!(a["state"], "ACTIVE");
        assert!(a.get("reason").is_none());
        let r: serde_json::Value =
            serde_json::from_str(&l.released_line(9, "say \"bye\"\n")).unwrap();
        assert_eq!(r["state"], "RELEASED");
        assert_eq!(r["reason"], "say \"bye\"\n");
        assert!(l.released_line(9, "x\ny").trim_end().lines().count() == 1);
    }
}
