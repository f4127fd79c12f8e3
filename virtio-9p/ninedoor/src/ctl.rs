//! Parsing of `/queen/ctl` lines: one strict JSON object per line.
//!
//! Why strict: the queen's control file changes what runs on the machine,
//! so a typo must fail loudly rather than be ignored. Unknown fields,
//! duplicate fields, wrong types, trailing data, several objects on a line
//! and objects that combine commands are all `EINVAL`. The accepted forms:
//!
//! ```text
//! {"spawn":"heartbeat","ticks":N,"budget":{"ttl_s":..,"ops":..,"ticks":..}}   ticks, budget optional
//! {"spawn":"gpu","lease":{"gpu_id":..,"mem_mb":..,"streams":..,"ttl_s":..,"priority":..},"budget":{..}}
//!                                           ttl_s, priority, budget optional
//! {"kill":"worker-N"}
//! {"budget":{"ttl_s":..,"ops":..,"ticks":..}}   default budget for later spawns ({} clears it)
//! {"bind":{"from":"/existing/path","to":"/new/alias"}}
//! {"mount":{"service":"<name>","at":"/new/path"}}
//! ```

use serde::Deserialize;

use crate::budget::SpawnBudget;
use crate::identity::parse_worker_id;

/// The lease part of a GPU spawn.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// GPU id.
    pub gpu_id: String,
    /// VRAM, MiB (≥ 1, ≤ the GPU's memory).
    pub mem_mb: u64,
    /// Streams (1..=64).
    pub streams: u32,
    /// TTL, seconds (≥ 1); the hive default when absent.
    #[serde(default)]
    pub ttl_s: Option<u64>,
    /// Priority; 0 when absent.
    #[serde(default)]
    pub priority: Option<u32>,
}

/// `bind` arguments.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindArgs {
    /// Existing path.
    pub from: String,
    /// New alias path.
    pub to: String,
}

/// `mount` arguments.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountArgs {
    /// Built-in service name.
    pub service: String,
    /// New path.
    pub at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    spawn: Option<String>,
    ticks: Option<u64>,
    budget: Option<SpawnBudget>,
    lease: Option<LeaseRequest>,
    kill: Option<String>,
    bind: Option<BindArgs>,
    mount: Option<MountArgs>,
}

/// What to spawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpawnKind {
    /// A heartbeat worker with an optional tick count.
    Heartbeat {
        /// Ticks to emit.
        ticks: Option<u64>,
    },
    /// A GPU worker with its lease.
    Gpu(LeaseRequest),
}

/// A parsed queen command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueenCommand {
    /// Start a worker.
    Spawn {
        /// Kind and its arguments.
        kind: SpawnKind,
        /// Budget for this worker (overrides the default budget field by
        /// field).
        budget: Option<SpawnBudget>,
    },
    /// Stop a worker and revoke its sessions.
    Kill(String),
    /// Set the default budget for later spawns.
    Budget(SpawnBudget),
    /// Alias an existing path.
    Bind(BindArgs),
    /// Alias a built-in service's subtree.
    Mount(MountArgs),
}

/// Parses one line (without its newline).
pub fn parse_queen_line(line: &str) -> Result<QueenCommand, String> {
    let raw: Raw = serde_json::from_str(line).map_err(|e| format!("bad JSON: {e}"))?;
    let verbs = [
        raw.spawn.is_some(),
        raw.kill.is_some(),
        raw.bind.is_some(),
        raw.mount.is_some(),
    ]
    .iter()
    .filter(|v| **v)
    .count();
    if verbs > 1 {
        return Err("more than one command in one object".into());
    }
    if let Some(kind) = raw.spawn {
        let kind = match kind.as_str() {
            "heartbeat" => {
                if raw.lease.is_some() {
                    return Err("a heartbeat worker takes no lease".into());
                }
                if raw.ticks == Some(0) {
                    return Err("ticks must be at least 1".into());
                }
                SpawnKind::Heartbeat { ticks: raw.ticks }
            }
            "gpu" => {
                if raw.ticks.is_some() {
                    return Err("a gpu worker takes no ticks".into());
                }
                let lease = raw.lease.ok_or("a gpu worker needs a lease")?;
                SpawnKind::Gpu(lease)
            }
            other => return Err(format!("unknown worker kind {other:?}")),
        };
        return Ok(QueenCommand::Spawn {
            kind,
            budget: raw.budget,
        });
    }
    if raw.ticks.is_some() || raw.lease.is_some() {
        return Err("ticks and lease belong to spawn".into());
    }
    if let Some(k) = raw.kill {
        if raw.budget.is_some() {
            return Err("kill takes no budget".into());
        }
        if parse_worker_id(&k).is_none() {
            return Err(format!("bad worker id {k:?}"));
        }
        return Ok(QueenCommand::Kill(k));
    }
    if let Some(b) = raw.bind {
        if raw.budget.is_some() {
            return Err("bind takes no budget".into());
        }
        return Ok(QueenCommand::Bind(b));
    }
    if let Some(m) = raw.mount {
        if raw.budget.is_some() {
            return Err("mount takes no budget".into());
        }
        return Ok(QueenCommand::Mount(m));
    }
    match raw.budget {
        Some(b) => Ok(QueenCommand::Budget(b)),
        None => Err("empty command".into()),
    }
}

/// Splits a control write into lines: `\n`-separated, a trailing `\r`
/// stripped, blank lines skipped, a final line without newline included.
/// Non-UTF-8 input is an error.
pub fn split_lines(data: &[u8]) -> Result<Vec<&str>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_owned())?;
    Ok(text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(
            parse_queen_line(r#"{"spawn":"heartbeat","ticks":5,"budget":{"ttl_s":10,"ops":3}}"#),
            Ok(QueenCommand::Spawn {
                kind: SpawnKind::Heartbeat { ticks: Some(5) },
                budget: Some(SpawnBudget {
                    ttl_s: Some(10),
                    ops: Some(3),
                    ticks: None
                }),
            })
        );
        let c = parse_queen_line(
            r#"{"spawn":"gpu","lease":{"gpu_id":"gpu0","mem_mb":512,"streams":2,"ttl_s":60,"priority":1}}"#,
        )
        .unwrap();
        assert!(
            matches!(c, QueenCommand::Spawn { kind: SpawnKind::Gpu(ref l), .. } if l.streams == 2)
        );
        assert_eq!(
            parse_queen_line(r#" {"kill":"worker-3"} "#),
            Ok(QueenCommand::Kill("worker-3".into()))
        );
        assert_eq!(
            parse_queen_line(r#"{"budget":{}}"#),
            Ok(QueenCommand::Budget(SpawnBudget::default()))
        );
        assert!(matches!(
            parse_queen_line(r#"{"bind":{"from":"/a","to":"/b"}}"#),
            Ok(QueenCommand::Bind(_))
        ));
        assert!(matches!(
            parse_queen_line(r#"{"mount":{"service":"log","at":"/l"}}"#),
            Ok(QueenCommand::Mount(_))
        ));
    }

    #[test]
    fn strictness() {
        for bad in [
            "",
            "{}",
            "[]",
            "null",
            r#"{"spawn":"heartbeat","extra":1}"#,
            r#"{"spawn":"heartbeat","ticks":"5"}"#,
            r#"{"spawn":"heartbeat","ticks":-1}"#,
            r#"{"spawn":"heartbeat","ticks":0}"#,
            r#"{"spawn":"heartbeat","ticks":1.5}"#,
            r#"{"spawn":"bus"}"#,
            r#"{"spawn":"gpu"}"#,
            r#"{"spawn":"gpu","lease":{"gpu_id":"g","mem_mb":1}}"#,
            r#"{"spawn":"gpu","lease":{"gpu_id":"g","mem_mb":1,"streams":1,"colour":1}}"#,
            r#"{"spawn":"heartbeat","lease":{"gpu_id":"g","mem_mb":1,"streams":1}}"#,
            r#"{"kill":"worker-1","spawn":"heartbeat"}"#,
            r#"{"kill":"worker-01"}"#,
            r#"{"kill":3}"#,
            r#"{"kill":"worker-1"} {"kill":"worker-2"}"#,
            r#"{"kill":"worker-1","kill":"worker-2"}"#,
            r#"{"budget":{"ops":1,"ttl":2}}"#,
            r#"{"ticks":3}"#,
            r#"{"bind":{"from":"/a"}}"#,
            r#"{"mount":{"service":"log","at":"/l","ro":true}}"#,
            "not json",
        ] {
            assert!(parse_queen_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn line_splitting() {
        assert_eq!(split_lines(b"a\r\n\n  \nb").unwrap(), ["a", "b"]);
        assert!(split_lines(b"\xff\n").is_err());
        assert!(split_lines(b"").unwrap().is_empty());
    }
}
