//! The [`Errno`] newtype NineDoor's API returns, over the shared
//! `secure9p::errno` table.
//!
//! Raw values are `secure9p::errno`'s (Linux x86-64/generic numbering, what
//! the v9fs client expects), re-exported in [`raw`]. What NineDoor answers
//! with, and why:
//!
//! | errno          | when |
//! |----------------|------|
//! | `ENOENT`       | no such node, or a node this role may not see (invisible, never `EACCES`); no such worker/GPU/lease/service |
//! | `EACCES`       | visible but not allowed (write a read-only node, read a control sink) |
//! | `EPERM`        | ticket scope denial; attach with a role that does not match the worker |
//! | `ELIMIT`       | `EDQUOT` (122): rate, bandwidth, cursor, ticks or ops budget exhausted |
//! | `EKEYEXPIRED`  | ticket TTL ran out |
//! | `EKEYREVOKED`  | the session's worker was killed, its lease expired, or its spawn failed |
//! | `EKEYREJECTED` | a ticket that does not verify ([`crate::hive::Hive::verify_ticket`]) |
//! | `ESPIPE`       | append-only write away from the current end |
//! | `ERANGE`       | read below a ring's retained base ("stale") |
//! | `EFBIG`        | telemetry payload larger than the ring; a write over 1 MiB |
//! | `EAGAIN`       | a lifecycle gate refuses this now |
//! | `EBUSY`        | GPU taken; worker mid-spawn/stop; drain/quiesce/reset with work outstanding |
//! | `EINVAL`       | malformed command, JSON, name, descriptor, or a lifecycle transition not allowed from this state |
//! | `EEXIST`, `ELOOP`, `ENOTDIR`, `EISDIR`, `ENAMETOOLONG`, `EBADF` | as in POSIX |
//! | `EIO`          | a VMM effect failed, or the audit journal cannot record the change |

use std::fmt;

/// Raw errno numbers: the shared codec table.
pub mod raw {
    pub use secure9p::errno::*;
}

/// A Linux errno, as carried by `Rlerror`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(u32);

macro_rules! consts {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "` (see [`raw`]).")]
                pub const $name: Errno = Errno(raw::$name);
            )*
        }
    };
}

consts!(
    EPERM,
    ENOENT,
    EINTR,
    EIO,
    EBADF,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    ENOTDIR,
    EISDIR,
    EINVAL,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    ERANGE,
    ENAMETOOLONG,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENODATA,
    EPROTO,
    EBADMSG,
    EOVERFLOW,
    EMSGSIZE,
    EOPNOTSUPP,
    ECONNRESET,
    ETIMEDOUT,
    EDQUOT,
    ECANCELED,
    EKEYEXPIRED,
    EKEYREJECTED,
    EKEYREVOKED,
    ELIMIT,
);

impl Errno {
    /// Wraps any raw errno value.
    #[must_use]
    pub const fn from_raw(value: u32) -> Errno {
        Errno(value)
    }

    /// The value to put in `Rlerror`.
    #[must_use]
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Symbolic name (`"ENOENT"`), or `"E?"`. NineDoor's limit errno prints
    /// as `"ELIMIT"` (its wire value is `EDQUOT`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self.0 {
            raw::ELIMIT => "ELIMIT",
            raw::EKEYREVOKED => "EKEYREVOKED",
            v => raw::name(v),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_linux_numbers() {
        assert_eq!(Errno::ENOENT.raw(), 2);
        assert_eq!(Errno::ESPIPE.raw(), 29);
        assert_eq!(Errno::ERANGE.raw(), 34);
        assert_eq!(Errno::EFBIG.raw(), 27);
        assert_eq!(Errno::ELIMIT, Errno::EDQUOT);
        assert_eq!(Errno::ELIMIT.raw(), 122);
        assert_eq!(Errno::EKEYEXPIRED.raw(), 127);
        assert_eq!(Errno::EKEYREVOKED.raw(), 128);
        assert_eq!(Errno::EKEYREJECTED.raw(), 129);
        assert_eq!(Errno::ELIMIT.name(), "ELIMIT");
        assert_eq!(Errno::EKEYREVOKED.name(), "EKEYREVOKED");
        assert_eq!(Errno::EOPNOTSUPP.name(), "EOPNOTSUPP");
        assert_eq!(Errno::from_raw(9999).name(), "E?");
        assert_eq!(format!("{:?}", Errno::EBUSY), "EBUSY(16)");
    }
}
