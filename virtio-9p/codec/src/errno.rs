//! Linux errno values carried by Rlerror.
//!
//! 9P2000.L reports every failure as `Rlerror { ecode }` with a Linux errno
//! (x86-64/generic numbering, which is what the Linux v9fs client expects).
//! Only the values coco uses are listed; [`name`] turns any of them into its
//! symbolic name for logs and error messages.

/// Operation not permitted (also Cohesix's scope denial).
pub const EPERM: u32 = 1;
/// No such file or directory (also the answer to Tauth when auth is off).
pub const ENOENT: u32 = 2;
/// Interrupted (a flushed request).
pub const EINTR: u32 = 4;
/// I/O error.
pub const EIO: u32 = 5;
/// Bad file descriptor: unknown fid, double clunk, I/O on an unopened fid.
pub const EBADF: u32 = 9;
/// Try again.
pub const EAGAIN: u32 = 11;
/// Out of memory / per-session limits.
pub const ENOMEM: u32 = 12;
/// Permission denied.
pub const EACCES: u32 = 13;
/// Bad address.
pub const EFAULT: u32 = 14;
/// Device or resource busy.
pub const EBUSY: u32 = 16;
/// Exists (fid in use, file exists).
pub const EEXIST: u32 = 17;
/// Not a directory (walking names from a file).
pub const ENOTDIR: u32 = 20;
/// Is a directory.
pub const EISDIR: u32 = 21;
/// Invalid argument.
pub const EINVAL: u32 = 22;
/// File too large (a payload larger than a ring).
pub const EFBIG: u32 = 27;
/// No space left.
pub const ENOSPC: u32 = 28;
/// Illegal seek (e.g. an append-only write away from the end).
pub const ESPIPE: u32 = 29;
/// Read-only file system.
pub const EROFS: u32 = 30;
/// Out of range (e.g. a read below a ring's retained base).
pub const ERANGE: u32 = 34;
/// Name too long.
pub const ENAMETOOLONG: u32 = 36;
/// Function not implemented.
pub const ENOSYS: u32 = 38;
/// Directory not empty.
pub const ENOTEMPTY: u32 = 39;
/// Too many levels of symbolic links.
pub const ELOOP: u32 = 40;
/// No data (e.g. missing xattr).
pub const ENODATA: u32 = 61;
/// Protocol error: a malformed frame.
pub const EPROTO: u32 = 71;
/// Bad message.
pub const EBADMSG: u32 = 74;
/// Value too large for defined data type.
pub const EOVERFLOW: u32 = 75;
/// Message too long: a frame larger than `msize`, a write larger than the
/// negotiated I/O size.
pub const EMSGSIZE: u32 = 90;
/// Operation not supported: every T-message type coco does not implement.
pub const EOPNOTSUPP: u32 = 95;
/// Connection reset (e.g. a revoked session).
pub const ECONNRESET: u32 = 104;
/// Timed out.
pub const ETIMEDOUT: u32 = 110;
/// Disk quota exceeded.
pub const EDQUOT: u32 = 122;
/// Operation canceled.
pub const ECANCELED: u32 = 125;
/// Key has expired (an expired ticket).
pub const EKEYEXPIRED: u32 = 127;
/// Key was rejected by service (a ticket whose MAC or fields do not verify).
pub const EKEYREJECTED: u32 = 129;
/// Key has been revoked: every request of a killed or lease-expired worker's
/// sessions.
pub const EKEYREVOKED: u32 = 128;

/// Cohesix's `ELIMIT`: a rate, bandwidth, cursor or budget (ticks/ops) denial.
///
/// Linux has no `ELIMIT`, and an Rlerror must carry a number the v9fs client
/// can hand to user space. coco uses `EDQUOT` ("quota exceeded", 122): it is
/// what the denial means, it is distinct from every other error a Secure9P
/// server returns (so scripts can tell a limit from a scope denial, `EPERM`),
/// and user space prints it sensibly ("Disk quota exceeded").
pub const ELIMIT: u32 = EDQUOT;

/// The symbolic name of an errno (`"ENOENT"`), or `"E?"` for a value not
/// listed in this module. [`ELIMIT`] prints as `"EDQUOT"`, its wire value.
#[must_use]
pub const fn name(errno: u32) -> &'static str {
    match errno {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        EINTR => "EINTR",
        EIO => "EIO",
        EBADF => "EBADF",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENOTDIR => "ENOTDIR",
        EISDIR => "EISDIR",
        EINVAL => "EINVAL",
        EFBIG => "EFBIG",
        ENOSPC => "ENOSPC",
        ESPIPE => "ESPIPE",
        EROFS => "EROFS",
        ERANGE => "ERANGE",
        ENAMETOOLONG => "ENAMETOOLONG",
        ENOSYS => "ENOSYS",
        ENOTEMPTY => "ENOTEMPTY",
        ELOOP => "ELOOP",
        ENODATA => "ENODATA",
        EPROTO => "EPROTO",
        EBADMSG => "EBADMSG",
        EOVERFLOW => "EOVERFLOW",
        EMSGSIZE => "EMSGSIZE",
        EOPNOTSUPP => "EOPNOTSUPP",
        ECONNRESET => "ECONNRESET",
        ETIMEDOUT => "ETIMEDOUT",
        EDQUOT => "EDQUOT",
        ECANCELED => "ECANCELED",
        EKEYEXPIRED => "EKEYEXPIRED",
        EKEYREJECTED => "EKEYREJECTED",
        EKEYREVOKED => "EKEYREVOKED",
        _ => "E?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(ENOENT), "ENOENT");
        assert_eq!(name(ELIMIT), "EDQUOT");
        assert_eq!(name(EOPNOTSUPP), "EOPNOTSUPP");
        assert_eq!(name(0), "E?");
        assert_eq!(name(u32::MAX), "E?");
    }
}
