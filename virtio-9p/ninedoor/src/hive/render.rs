//! Text of the generated (read-only) nodes. Each function renders one
//! snapshot from the state; the session layer's `/proc/9p/sessions` text is
//! rendered by the hive outside the lock (it calls back into the session
//! layer).

use serde_json::json;

use super::state::{State, TextSource};

/// The `gpu-telemetry/v1` schema published at `/gpu/telemetry/schema.json`.
pub(crate) fn telemetry_schema() -> String {
    let doc = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "gpu-telemetry/v1",
        "title": "gpu-telemetry/v1",
        "description": "One GPU telemetry record, written as one JSON line to /worker/<id>/telemetry.",
        "type": "object",
        "max_record_bytes": 4096,
        "required": ["schema_version", "device_id", "model_id", "time_window", "token_count", "latency_histogram"],
        "properties": {
            "schema_version": {"const": "gpu-telemetry/v1"},
            "device_id": {"type": "string"},
            "model_id": {"type": "string"},
            "time_window": {
                "type": "object",
                "required": ["start_ms", "end_ms"],
                "properties": {
                    "start_ms": {"type": "integer", "minimum": 0},
                    "end_ms": {"type": "integer", "minimum": 0}
                }
            },
            "token_count": {"type": "integer", "minimum": 0},
            "latency_histogram": {
                "type": "object",
                "required": ["buckets_ms", "counts"],
                "properties": {
                    "buckets_ms": {"type": "array", "items": {"type": "number"}},
                    "counts": {"type": "array", "items": {"type": "integer", "minimum": 0}}
                }
            }
        }
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

fn boot(s: &State) -> String {
    let mut out = format!(
        "ninedoor {}\nhive {}\nstarted_ms {}\n",
        env!("CARGO_PKG_VERSION"),
        s.spec.name,
        s.started_ms
    );
    for g in s.gpus.values() {
        out.push_str(&format!(
            "gpu {} name={:?} memory_mb={} sm_count={}\n",
            g.spec.id, g.spec.name, g.spec.memory_mb, g.spec.sm_count
        ));
    }
    for m in s.models.ids() {
        out.push_str(&format!("model {m}\n"));
    }
    out.push_str(&format!(
        "telemetry_ring_bytes {}\n",
        s.spec.telemetry_ring_bytes
    ));
    for l in &s.boot_lines {
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn gpu_info(s: &State, id: &str) -> String {
    let Some(g) = s.gpus.get(id) else {
        return String::new();
    };
    let mut out = json!({
        "id": g.spec.id,
        "name": g.spec.name,
        "memory_mb": g.spec.memory_mb,
        "sm_count": g.spec.sm_count,
        "driver_version": g.spec.driver_version,
        "runtime_version": g.spec.runtime_version,
    })
    .to_string();
    out.push('\n');
    out
}

fn gpu_status(s: &State, id: &str) -> String {
    let Some(g) = s.gpus.get(id) else {
        return String::new();
    };
    let mut out = format!("gpu {id}\n");
    if let Some(l) = &g.lease {
        out.push_str(&format!(
            "state leased\nworker {}\nmem_mb {}\nstreams {}\npriority {}\nissued_at_ms {}\nexpires_at_ms {}\n",
            l.worker, l.mem_mb, l.streams, l.priority, l.issued_at_ms, l.expires_at_ms
        ));
    } else if let Some(w) = &g.reserved_for {
        out.push_str(&format!("state reserved\nworker {w}\n"));
    } else if let Some(w) = &g.detach_pending {
        out.push_str(&format!("state detach-pending\nworker {w}\n"));
    } else {
        out.push_str("state idle\n");
    }
    out.push_str(&format!("jobs {}\n", g.jobs));
    out
}

/// Renders a text node. `Sessions` is rendered by the caller.
pub(crate) fn render(s: &State, src: &TextSource) -> String {
    match src {
        TextSource::Boot => boot(s),
        TextSource::LifecycleState => format!("{}\n", s.lifecycle.state),
        TextSource::LifecycleReason => format!("{}\n", s.lifecycle.reason),
        TextSource::LifecycleSince => format!("{}\n", s.lifecycle.since_ms),
        TextSource::GpuInfo(id) => gpu_info(s, id),
        TextSource::GpuStatus(id) => gpu_status(s, id),
        TextSource::Manifest(id) => s.models.manifest(id).unwrap_or_default().to_owned(),
        TextSource::TelemetrySchema => telemetry_schema(),
        TextSource::Sessions => String::new(),
    }
}
