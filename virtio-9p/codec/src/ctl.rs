//! Words of the control files that every party speaks: defined once here so
//! the server (NineDoor) and its clients (cohsh, guests) cannot drift.

/// A command written to `/queen/lifecycle/ctl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleCmd {
    /// ONLINE/DEGRADED → DRAINING: stop accepting new work.
    Cordon,
    /// DRAINING → QUIESCED: finish draining.
    Drain,
    /// ONLINE/DEGRADED/DRAINING → QUIESCED: go quiet.
    Quiesce,
    /// → ONLINE.
    Resume,
    /// → BOOTING.
    Reset,
}

impl LifecycleCmd {
    /// Every command, in documentation order.
    pub const ALL: [LifecycleCmd; 5] = [
        LifecycleCmd::Cordon,
        LifecycleCmd::Drain,
        LifecycleCmd::Quiesce,
        LifecycleCmd::Resume,
        LifecycleCmd::Reset,
    ];

    /// Parses a command word (lower case; surrounding blanks ignored).
    #[must_use]
    pub fn parse(s: &str) -> Option<LifecycleCmd> {
        let s = s.trim();
        LifecycleCmd::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The command word.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            LifecycleCmd::Cordon => "cordon",
            LifecycleCmd::Drain => "drain",
            LifecycleCmd::Quiesce => "quiesce",
            LifecycleCmd::Resume => "resume",
            LifecycleCmd::Reset => "reset",
        }
    }

    /// Whether the server refuses the command while workers or leases are
    /// outstanding (drain, quiesce and reset do).
    #[must_use]
    pub const fn needs_idle(self) -> bool {
        matches!(
            self,
            LifecycleCmd::Drain | LifecycleCmd::Quiesce | LifecycleCmd::Reset
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for c in LifecycleCmd::ALL {
            assert_eq!(LifecycleCmd::parse(c.as_str()), Some(c));
            assert_eq!(
                LifecycleCmd::parse(&alloc::format!(" {}\n", c.as_str())),
                Some(c)
            );
        }
        assert_eq!(LifecycleCmd::parse("Cordon"), None);
        assert_eq!(LifecycleCmd::parse(""), None);
    }
}
