//! Who is asking: the role a session attached as, and for workers the worker
//! id the role is bound to.
//!
//! The session layer builds an [`Identity`] after it has verified a ticket
//! (or, for a guest on virtio-9p, from the identity the supervisor bound to
//! its socket) and passes it to every namespace operation. The namespace
//! itself never sees ticket text.
//!
//! [`Role`] is `secure9p::ticket::Role`. coco serves three of its roles:
//! `queen`, `worker-heartbeat:<id>` and `worker-gpu:<id>`; an [`Identity`]
//! cannot be built for the bus and LoRa worker roles Cohesix also has.

use std::fmt;

pub use secure9p::ticket::Role;

/// Whether coco serves this role.
#[must_use]
pub const fn served(role: Role) -> bool {
    matches!(role, Role::Queen | Role::WorkerHeartbeat | Role::WorkerGpu)
}

/// A verified session identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    role: Role,
    worker: Option<String>,
    subject: Option<String>,
}

impl Identity {
    /// The queen.
    #[must_use]
    pub fn queen() -> Identity {
        Identity {
            role: Role::Queen,
            worker: None,
            subject: None,
        }
    }

    /// A heartbeat worker bound to `worker` (e.g. `worker-1`).
    #[must_use]
    pub fn heartbeat(worker: &str) -> Identity {
        Identity {
            role: Role::WorkerHeartbeat,
            worker: Some(worker.to_owned()),
            subject: None,
        }
    }

    /// A GPU worker bound to `worker`.
    #[must_use]
    pub fn gpu(worker: &str) -> Identity {
        Identity {
            role: Role::WorkerGpu,
            worker: Some(worker.to_owned()),
            subject: None,
        }
    }

    /// Parses an attach `uname`: `queen`, `worker-heartbeat:<id>` or
    /// `worker-gpu:<id>`. A worker role needs a well-formed worker id
    /// (`worker-N`); the queen takes none; roles coco does not serve are
    /// refused.
    #[must_use]
    pub fn from_uname(uname: &str) -> Option<Identity> {
        let (role, worker) = secure9p::ticket::split_uname(uname)?;
        if !served(role) {
            return None;
        }
        match (role, worker) {
            (Role::Queen, None) => Some(Identity::queen()),
            (Role::Queen, Some(_)) | (_, None) => None,
            (role, Some(w)) => {
                parse_worker_id(w)?;
                Some(Identity {
                    role,
                    worker: Some(w.to_owned()),
                    subject: None,
                })
            }
        }
    }

    /// The `uname` this identity attaches with (`worker-gpu:worker-3`).
    #[must_use]
    pub fn uname(&self) -> String {
        match &self.worker {
            Some(w) => format!("{}:{w}", self.role),
            None => self.role.as_str().to_owned(),
        }
    }

    /// The same identity with a ticket subject attached (shown in audit
    /// lines).
    #[must_use]
    pub fn with_subject(mut self, subject: &str) -> Identity {
        self.subject = Some(subject.to_owned());
        self
    }

    /// The role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The worker id (`None` for the queen).
    #[must_use]
    pub fn worker(&self) -> Option<&str> {
        self.worker.as_deref()
    }

    /// The ticket subject, if any.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
}

impl fmt::Display for Identity {
    /// The `uname` form, plus `(subject)` when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uname())?;
        if let Some(s) = &self.subject {
            write!(f, "({s})")?;
        }
        Ok(())
    }
}

/// Parses `worker-N` (N ≥ 1, decimal, no leading zeros) into N.
#[must_use]
pub fn parse_worker_id(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("worker-")?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unames() {
        assert_eq!(Identity::from_uname("queen"), Some(Identity::queen()));
        assert_eq!(
            Identity::from_uname("worker-gpu:worker-3"),
            Some(Identity::gpu("worker-3"))
        );
        assert_eq!(
            Identity::from_uname("worker-heartbeat:worker-12"),
            Some(Identity::heartbeat("worker-12"))
        );
        for bad in [
            "",
            "queen:worker-1",
            "worker-gpu",
            "worker-gpu:",
            "worker-gpu:worker-0",
            "worker-gpu:worker-01",
            "worker-gpu:w-1",
            "worker-bus:worker-1",
            "worker-lora:worker-1",
            "worker-gpu:worker-1:x",
            "worker-gpu:worker-99999999999999999999999",
        ] {
            assert_eq!(Identity::from_uname(bad), None, "{bad}");
        }
    }

    #[test]
    fn uname_round_trips() {
        for u in ["queen", "worker-gpu:worker-3", "worker-heartbeat:worker-1"] {
            assert_eq!(Identity::from_uname(u).unwrap().uname(), u);
        }
    }

    #[test]
    fn display() {
        assert_eq!(Identity::queen().to_string(), "queen");
        assert_eq!(
            Identity::heartbeat("worker-1")
                .with_subject("ops")
                .to_string(),
            "worker-heartbeat:worker-1(ops)"
        );
    }
}
