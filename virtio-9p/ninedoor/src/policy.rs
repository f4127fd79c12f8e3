//! Per-role policy: what each role may see, read and write.
//!
//! Policy is decided on a node's **canonical path** (the path it was created
//! at), never on the path a client walked: a `bind` or `mount` alias can give
//! a node a second name but never a second set of rights. Nodes a role may
//! not see are reported as `ENOENT` (invisible, and absent from directory
//! listings); nodes it may see but not use this way are `EACCES`. The hive
//! audits every denial (a line in `/log/queen.log` naming who, what and why).
//!
//! | canonical path                         | queen | worker-heartbeat:W | worker-gpu:W          |
//! |----------------------------------------|-------|--------------------|-----------------------|
//! | `/`                                    | r     | r                  | r                     |
//! | `/proc`, `/proc/**`                    | r     | r                  | r                     |
//! | `/queen`, `/queen/lifecycle`           | r     | –                  | –                     |
//! | `/queen/ctl`, `/queen/lifecycle/ctl`   | w     | –                  | –                     |
//! | `/worker`                              | r     | r (lists only W)   | r (lists only W)      |
//! | `/worker/X`                            | r     | r if X = W         | r if X = W            |
//! | `/worker/X/telemetry`                  | rw    | rw if X = W        | rw if X = W           |
//! | `/log`, `/log/**`                      | r     | –                  | –                     |
//! | `/gpu`                                 | r     | –                  | r (lists what it sees)|
//! | `/gpu/models`, `/gpu/models/**`        | r     | –                  | r                     |
//! | `/gpu/models/active`                   | rw    | –                  | r                     |
//! | `/gpu/telemetry`, `/gpu/telemetry/**`  | r     | –                  | r                     |
//! | `/gpu/G`, `/gpu/G/{info,status,lease}` | r     | –                  | r if W leases G       |
//! | `/gpu/G/job`                           | rw    | –                  | rw if W leases G      |
//! | `/gpu/G/ctl`                           | w     | –                  | –                     |
//! | anything else                          | r     | –                  | –                     |
//!
//! `r` = visible, walkable, readable (directories: listable); `w` = writable
//! (control sinks are write-only); `–` = invisible (ENOENT). `rw` on an
//! append-only node means append. Nodes not marked `w` are read-only for
//! everyone: `/log/*` and `/gpu/G/lease` are written by the server (and the
//! VMM for consoles) only. `/gpu/telemetry/schema.json` is readable by GPU
//! workers on purpose: it describes what they report. Lifecycle gates,
//! ticket scopes and budgets are separate, later checks.

use std::fmt;

use crate::errno::Errno;
use crate::identity::{Identity, Role};

/// What an operation needs from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Walk to it, stat it, see it in a listing.
    See,
    /// Open it for reading (or list it, for a directory).
    Read,
    /// Open it for writing.
    Write,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::See => "walk",
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// A policy refusal: the errno to answer and the reason for the audit line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// `ENOENT` (invisible) or `EACCES` (visible, not allowed).
    pub errno: Errno,
    /// Human-readable reason, used in the audit line.
    pub reason: &'static str,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.errno)
    }
}

/// What a role may do with one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rights {
    /// Visible (walk, stat, listed).
    pub see: bool,
    /// Readable / listable.
    pub read: bool,
    /// Writable.
    pub write: bool,
}

const R: Rights = Rights {
    see: true,
    read: true,
    write: false,
};
const W: Rights = Rights {
    see: true,
    read: false,
    write: true,
};
const RW: Rights = Rights {
    see: true,
    read: true,
    write: true,
};
const NONE: Rights = Rights {
    see: false,
    read: false,
    write: false,
};

/// Names that are never GPU ids (they are fixed entries under `/gpu`).
pub const RESERVED_GPU_NAMES: [&str; 2] = ["models", "telemetry"];

/// The queen's rights: everything visible, read unless write-only, write
/// where the node is writable at all.
fn queen_rights(c: &[&str]) -> Rights {
    match c {
        ["queen", "ctl"] | ["queen", "lifecycle", "ctl"] => W,
        ["gpu", g, "ctl"] if !RESERVED_GPU_NAMES.contains(g) => W,
        ["worker", _, "telemetry"] | ["gpu", "models", "active"] => RW,
        ["gpu", g, "job"] if !RESERVED_GPU_NAMES.contains(g) => RW,
        _ => R,
    }
}

fn worker_rights(role: Role, me: &str, leased_gpu: Option<&str>, c: &[&str]) -> Rights {
    match c {
        [] | ["proc", ..] | ["worker"] => R,
        ["worker", x] if *x == me => R,
        ["worker", x, "telemetry"] if *x == me => RW,
        _ if role != Role::WorkerGpu => NONE,
        ["gpu"] | ["gpu", "models" | "telemetry", ..] => R,
        ["gpu", g, rest @ ..] if Some(*g) == leased_gpu => match rest {
            [] | ["info" | "status" | "lease"] => R,
            ["job"] => RW,
            _ => NONE,
        },
        _ => NONE,
    }
}

/// The rights `identity` has on the canonical `path`, given the GPU its
/// worker currently leases (`None` for no lease or for the queen).
#[must_use]
pub fn rights(identity: &Identity, leased_gpu: Option<&str>, path: &str) -> Rights {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    match (identity.role(), identity.worker()) {
        (Role::Queen, _) => queen_rights(&comps),
        (role @ (Role::WorkerHeartbeat | Role::WorkerGpu), Some(me)) => {
            worker_rights(role, me, leased_gpu, &comps)
        }
        // Roles coco does not serve, and workers without an id: nothing.
        _ => NONE,
    }
}

/// Decides one access. Invisible → `ENOENT`, visible but not allowed →
/// `EACCES`. The caller audits the denial.
pub fn check(
    identity: &Identity,
    leased_gpu: Option<&str>,
    path: &str,
    access: Access,
) -> Result<(), Denial> {
    let r = rights(identity, leased_gpu, path);
    if !r.see {
        return Err(Denial {
            errno: Errno::ENOENT,
            reason: "not visible to this role",
        });
    }
    match access {
        Access::See => Ok(()),
        Access::Read if r.read => Ok(()),
        Access::Write if r.write => Ok(()),
        Access::Read => Err(Denial {
            errno: Errno::EACCES,
            reason: "not readable by this role",
        }),
        Access::Write => Err(Denial {
            errno: Errno::EACCES,
            reason: "not writable by this role",
        }),
    }
}

/// A one-line description of a denial for the audit journal.
#[must_use]
pub fn audit_line(identity: &Identity, access: Access, path: &str, denial: &Denial) -> String {
    format!("denied {identity} {} {path}: {}", access.as_str(), denial)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: &Identity, gpu: Option<&str>, p: &str, a: Access) -> bool {
        check(id, gpu, p, a).is_ok()
    }

    #[test]
    fn queen_table() {
        let q = Identity::queen();
        assert!(ok(&q, None, "/queen/ctl", Access::Write));
        assert_eq!(
            check(&q, None, "/queen/ctl", Access::Read).map_err(|d| d.errno),
            Err(Errno::EACCES)
        );
        assert!(ok(&q, None, "/log/queen.log", Access::Read));
        assert!(!ok(&q, None, "/log/queen.log", Access::Write));
        assert!(!ok(&q, None, "/gpu/gpu0/lease", Access::Write));
        assert!(ok(&q, None, "/gpu/gpu0/job", Access::Write));
        assert!(ok(&q, None, "/gpu/models/active", Access::Write));
        assert!(ok(&q, None, "/worker/worker-9/telemetry", Access::Write));
        assert!(!ok(&q, None, "/gpu/models/ctl", Access::Write));
    }

    #[test]
    fn heartbeat_table() {
        let h = Identity::heartbeat("worker-1");
        assert!(ok(&h, None, "/", Access::Read));
        assert!(ok(&h, None, "/proc/boot", Access::Read));
        assert!(!ok(&h, None, "/proc/boot", Access::Write));
        assert!(ok(&h, None, "/worker", Access::Read));
        assert!(ok(&h, None, "/worker/worker-1/telemetry", Access::Write));
        let e = check(&h, None, "/worker/worker-2/telemetry", Access::Read);
        assert_eq!(e.map_err(|d| d.errno), Err(Errno::ENOENT));
        for p in [
            "/queen",
            "/queen/ctl",
            "/log",
            "/log/queen.log",
            "/gpu",
            "/gpu/models",
        ] {
            assert_eq!(
                check(&h, None, p, Access::See).map_err(|d| d.errno),
                Err(Errno::ENOENT),
                "{p}"
            );
        }
        // A heartbeat worker gets nothing from a lease it cannot hold.
        assert!(!ok(&h, Some("gpu0"), "/gpu/gpu0/info", Access::See));
    }

    #[test]
    fn gpu_worker_table() {
        let g = Identity::gpu("worker-2");
        assert!(ok(&g, None, "/gpu", Access::Read));
        assert!(ok(
            &g,
            None,
            "/gpu/models/available/m/manifest.toml",
            Access::Read
        ));
        assert!(!ok(&g, None, "/gpu/models/active", Access::Write));
        assert!(ok(&g, None, "/gpu/telemetry/schema.json", Access::Read));
        assert!(!ok(&g, None, "/gpu/gpu0", Access::See));
        assert!(ok(&g, Some("gpu0"), "/gpu/gpu0/info", Access::Read));
        assert!(ok(&g, Some("gpu0"), "/gpu/gpu0/lease", Access::Read));
        assert!(ok(&g, Some("gpu0"), "/gpu/gpu0/job", Access::Write));
        assert!(!ok(&g, Some("gpu0"), "/gpu/gpu0/status", Access::Write));
        assert!(!ok(&g, Some("gpu0"), "/gpu/gpu0/ctl", Access::See));
        assert!(!ok(&g, Some("gpu0"), "/gpu/gpu1/info", Access::See));
        assert!(ok(&g, None, "/worker/worker-2/telemetry", Access::Write));
        assert!(!ok(&g, None, "/log/queen.log", Access::See));
    }

    #[test]
    fn audit_line_names_who_what_why() {
        let h = Identity::heartbeat("worker-1");
        let d = check(&h, None, "/queen/ctl", Access::Write).unwrap_err();
        assert_eq!(
            audit_line(&h, Access::Write, "/queen/ctl", &d),
            "denied worker-heartbeat:worker-1 write /queen/ctl: not visible to this role (ENOENT)"
        );
    }
}
