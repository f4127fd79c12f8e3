//! Shared test fixture: a hive with two GPUs and two models on a manual
//! clock with recording effects.
#![allow(dead_code)]

use std::sync::Arc;

use ninedoor::Errno;
use ninedoor::clock::ManualClock;
use ninedoor::config::{GpuSpec, HiveSpec, ModelSpec};
use ninedoor::effects::RecordingEffects;
use ninedoor::hive::{Hive, ReadResult};
use ninedoor::identity::Identity;

pub const T0: u64 = 1_700_000_000_000;

pub struct Fx {
    pub hive: Arc<Hive>,
    pub clock: Arc<ManualClock>,
    pub fx: Arc<RecordingEffects>,
    pub dir: tempfile::TempDir,
}

pub fn gpu(id: &str) -> GpuSpec {
    GpuSpec {
        id: id.into(),
        name: format!("Emulated {id}"),
        memory_mb: 4096,
        sm_count: 8,
        driver_version: "emu-1".into(),
        runtime_version: "emu-rt-1".into(),
    }
}

pub fn spec() -> HiveSpec {
    HiveSpec {
        name: "test-hive".into(),
        gpus: vec![gpu("gpu0"), gpu("gpu1")],
        models: vec![
            ModelSpec {
                id: "stories15m".into(),
                manifest_toml: "name = \"stories15m\"\nformat = \"llama2c\"\n".into(),
            },
            ModelSpec {
                id: "tiny".into(),
                manifest_toml: "name = \"tiny\"\n".into(),
            },
        ],
        telemetry_ring_bytes: 64,
        ..HiveSpec::default()
    }
}

pub fn fixture_with(spec: HiveSpec) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let fx = Arc::new(RecordingEffects::new());
    let hive = Hive::new(spec, dir.path(), clock.clone(), fx.clone()).unwrap();
    hive.set_online().unwrap();
    Fx {
        hive: Arc::new(hive),
        clock,
        fx,
        dir,
    }
}

pub fn fixture() -> Fx {
    fixture_with(spec())
}

pub fn queen() -> Identity {
    Identity::queen()
}

/// Opens `path` for writing and writes `data` at the end.
pub fn write(h: &Hive, id: &Identity, path: &str, data: &str) -> Result<u32, Errno> {
    let n = h.walk_path(id, path)?;
    let f = h.open(id, n, true, false)?;
    h.write(id, &f, u64::MAX, data.as_bytes())
}

/// Writes to a control file.
pub fn ctl(h: &Hive, path: &str, data: &str) -> Result<u32, Errno> {
    write(h, &queen(), path, data)
}

/// Queen ctl.
pub fn qctl(h: &Hive, data: &str) -> Result<u32, Errno> {
    ctl(h, "/queen/ctl", data)
}

/// Reads the whole retained/generated content.
pub fn read(h: &Hive, id: &Identity, path: &str) -> Result<String, Errno> {
    let n = h.walk_path(id, path)?;
    let f = h.open(id, n, false, false)?;
    // Append-only nodes: start at 0 and step over the dropped (stale) part.
    let mut off = 0;
    let mut out = Vec::new();
    loop {
        match h.read(id, &f, off, 7) {
            Ok(ReadResult::Data(d)) if d.is_empty() => break,
            Ok(ReadResult::Data(d)) => {
                off += d.len() as u64;
                out.extend(d);
            }
            Ok(ReadResult::WouldBlock) => break,
            Err(Errno::ERANGE) => off += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8(out).unwrap())
}

/// Visible names in a directory (without `.` and `..`).
pub fn names(h: &Hive, id: &Identity, path: &str) -> Result<Vec<String>, Errno> {
    let n = h.walk_path(id, path)?;
    Ok(h.list(id, n)?
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != "." && n != "..")
        .collect())
}

/// The queen log's lines.
pub fn log_lines(h: &Hive) -> Vec<String> {
    h.queen_log().lines().map(str::to_owned).collect()
}

/// Whether some queen.log line contains every fragment.
pub fn logged(h: &Hive, fragments: &[&str]) -> bool {
    log_lines(h)
        .iter()
        .any(|l| fragments.iter().all(|f| l.contains(f)))
}

/// The worker ids that appear after running `f`.
pub fn new_worker(h: &Hive, f: impl FnOnce()) -> String {
    let before: Vec<String> = h.workers().into_iter().map(|w| w.id).collect();
    f();
    h.workers()
        .into_iter()
        .map(|w| w.id)
        .find(|id| !before.contains(id))
        .expect("a new worker")
}

pub fn spawn_heartbeat(h: &Hive) -> String {
    new_worker(h, || {
        qctl(h, r#"{"spawn":"heartbeat","ticks":10}"#).unwrap();
    })
}

pub fn spawn_gpu(h: &Hive, gpu: &str, ttl: u64) -> String {
    new_worker(h, || {
        qctl(
            h,
            &format!(
                r#"{{"spawn":"gpu","lease":{{"gpu_id":"{gpu}","mem_mb":1024,"streams":2,"ttl_s":{ttl},"priority":1}}}}"#
            ),
        )
        .unwrap();
    })
}
