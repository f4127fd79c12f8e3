//! The hive's lifecycle state machine and the gates it imposes.
//!
//! ```text
//! command   from                                   to        refused while work outstanding
//! cordon    ONLINE, DEGRADED                        DRAINING  no
//! drain     DRAINING                                QUIESCED  yes (EBUSY)
//! quiesce   ONLINE, DEGRADED, DRAINING              QUIESCED  yes (EBUSY)
//! resume    BOOTING, DEGRADED, DRAINING, QUIESCED   ONLINE    no
//! reset     ONLINE, DEGRADED, DRAINING, QUIESCED    BOOTING   yes (EBUSY)
//! ```
//!
//! Any other (command, state) pair is `EINVAL`; OFFLINE is terminal (only the
//! supervisor sets it, at shutdown). "Work outstanding" means any worker
//! record (running, being spawned, or revoked but not yet confirmed stopped)
//! or any GPU lease. The supervisor calls `set_online` once the hive is up
//! (the same transition as `resume` from BOOTING); `set_degraded` moves
//! ONLINE → DEGRADED and the hive does so itself when its audit journal
//! fails.
//!
//! Gates: new work (spawn, lease, GPU job submission) only when ONLINE or
//! DEGRADED; worker attach and telemetry also while DRAINING. Refused with
//! `EAGAIN` (the hive may accept it later).

use std::fmt;

use crate::errno::Errno;

/// Lifecycle states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleState {
    /// Starting (initial state, and after `reset`).
    Booting,
    /// Serving.
    Online,
    /// Serving with a known problem (see the reason).
    Degraded,
    /// Cordoned: existing workers continue, no new work.
    Draining,
    /// No workers, no new work.
    Quiesced,
    /// Shut down.
    Offline,
}

impl LifecycleState {
    /// Upper-case name as shown in `/proc/lifecycle/state`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Booting => "BOOTING",
            LifecycleState::Online => "ONLINE",
            LifecycleState::Degraded => "DEGRADED",
            LifecycleState::Draining => "DRAINING",
            LifecycleState::Quiesced => "QUIESCED",
            LifecycleState::Offline => "OFFLINE",
        }
    }

    /// Whether new work (spawn, lease, jobs) is accepted.
    #[must_use]
    pub const fn accepts_new_work(self) -> bool {
        matches!(self, LifecycleState::Online | LifecycleState::Degraded)
    }

    /// Whether workers may attach and send telemetry.
    #[must_use]
    pub const fn accepts_workers(self) -> bool {
        matches!(
            self,
            LifecycleState::Online | LifecycleState::Degraded | LifecycleState::Draining
        )
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Commands accepted by `/queen/lifecycle/ctl` (shared with clients).
pub use secure9p::ctl::LifecycleCmd;

/// The state `cmd` leads to from `from`, given whether work is outstanding.
pub fn transition(
    from: LifecycleState,
    cmd: LifecycleCmd,
    outstanding: bool,
) -> Result<LifecycleState, Errno> {
    use LifecycleState as S;
    let to = match (cmd, from) {
        (LifecycleCmd::Cordon, S::Online | S::Degraded) => S::Draining,
        (LifecycleCmd::Drain, S::Draining) => S::Quiesced,
        (LifecycleCmd::Quiesce, S::Online | S::Degraded | S::Draining) => S::Quiesced,
        (LifecycleCmd::Resume, S::Booting | S::Degraded | S::Draining | S::Quiesced) => S::Online,
        (LifecycleCmd::Reset, S::Online | S::Degraded | S::Draining | S::Quiesced) => S::Booting,
        _ => return Err(Errno::EINVAL),
    };
    if cmd.needs_idle() && outstanding {
        return Err(Errno::EBUSY);
    }
    Ok(to)
}

/// Current lifecycle state with its reason and the time it was entered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    /// State.
    pub state: LifecycleState,
    /// Why (free text).
    pub reason: String,
    /// When the state was entered, milliseconds.
    pub since_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::LifecycleCmd as C;
    use super::LifecycleState as S;
    use super::*;

    const ALL_STATES: [S; 6] = [
        S::Booting,
        S::Online,
        S::Degraded,
        S::Draining,
        S::Quiesced,
        S::Offline,
    ];
    const ALL_CMDS: [C; 5] = [C::Cordon, C::Drain, C::Quiesce, C::Resume, C::Reset];

    #[test]
    fn full_transition_table() {
        let allowed = [
            (C::Cordon, S::Online, S::Draining),
            (C::Cordon, S::Degraded, S::Draining),
            (C::Drain, S::Draining, S::Quiesced),
            (C::Quiesce, S::Online, S::Quiesced),
            (C::Quiesce, S::Degraded, S::Quiesced),
            (C::Quiesce, S::Draining, S::Quiesced),
            (C::Resume, S::Booting, S::Online),
            (C::Resume, S::Degraded, S::Online),
            (C::Resume, S::Draining, S::Online),
            (C::Resume, S::Quiesced, S::Online),
            (C::Reset, S::Online, S::Booting),
            (C::Reset, S::Degraded, S::Booting),
            (C::Reset, S::Draining, S::Booting),
            (C::Reset, S::Quiesced, S::Booting),
        ];
        for cmd in ALL_CMDS {
            for from in ALL_STATES {
                let want = allowed
                    .iter()
                    .find(|(c, f, _)| *c == cmd && *f == from)
                    .map(|(_, _, t)| *t);
                assert_eq!(
                    transition(from, cmd, false).ok(),
                    want,
                    "{cmd:?} from {from:?}"
                );
                let busy = transition(from, cmd, true);
                match want {
                    None => assert_eq!(busy, Err(Errno::EINVAL)),
                    Some(_) if cmd.needs_idle() => assert_eq!(busy, Err(Errno::EBUSY)),
                    Some(t) => assert_eq!(busy, Ok(t)),
                }
            }
        }
    }

    #[test]
    fn gates() {
        for s in ALL_STATES {
            assert_eq!(s.accepts_new_work(), matches!(s, S::Online | S::Degraded));
            assert_eq!(
                s.accepts_workers(),
                matches!(s, S::Online | S::Degraded | S::Draining)
            );
        }
    }

    #[test]
    fn parse() {
        assert_eq!(LifecycleCmd::parse(" drain "), Some(C::Drain));
        assert_eq!(LifecycleCmd::parse("DRAIN"), None);
        for c in ALL_CMDS {
            assert_eq!(LifecycleCmd::parse(c.as_str()), Some(c));
        }
    }
}
