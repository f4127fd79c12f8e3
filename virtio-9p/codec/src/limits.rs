//! Protocol constants and the bounds every party enforces.
//!
//! These numbers are the contract between the NineDoor server, cohsh and the
//! guests: a frame larger than the negotiated `msize` is never allocated, a
//! walk never carries more than [`MAX_WALK`] names and a name is never longer
//! than [`MAX_NAME`] bytes.

/// Largest `msize` any coco party negotiates (64 KiB). Decoders also clamp the
/// `msize` they are given to this value, so a frame larger than 64 KiB is
/// refused even if a caller passes a bigger number.
pub const MAX_MSIZE: u32 = 65536;

/// The `msize` a client asks for when it has no better idea (Cohesix's 8 KiB).
pub const DEFAULT_MSIZE: u32 = 8192;

/// Smallest `msize` accepted in a Tversion/Rversion: below this a directory
/// entry plus headers may not fit. Zero and anything smaller are refused.
pub const MIN_MSIZE: u32 = 512;

/// Most names in one Twalk (and qids in one Rwalk). 17 is an error.
pub const MAX_WALK: usize = 16;

/// Longest name (walk element, create/mkdir/unlink name, xattr name, directory
/// entry name) in bytes of UTF-8. Other strings (version, uname, aname — which
/// carries the ticket text) are only bounded by the frame.
pub const MAX_NAME: usize = 255;

/// Bytes of every message header: `size[4] type[1] tag[2]`.
pub const HEADER_LEN: usize = 7;

/// The tag of Tversion/Rversion.
pub const NOTAG: u16 = 0xFFFF;

/// "No fid": the `afid` of a Tattach without authentication.
pub const NOFID: u32 = 0xFFFF_FFFF;

/// "No numeric user": the `n_uname` to send when only the textual uname counts.
pub const NONUNAME: u32 = 0xFFFF_FFFF;

/// Overhead of a read/write header (Plan 9's IOHDRSZ): the largest payload of
/// a Tread/Twrite/Treaddir/Rread/Rreaddir is `msize - IOHDRSZ`
/// (see [`max_io_count`]).
pub const IOHDRSZ: u32 = 24;

/// The dialect every coco party speaks.
pub const VERSION_9P2000L: &str = "9P2000.L";

/// What an Rversion carries when the server does not speak the requested
/// version (this is an answer, not an error).
pub const VERSION_UNKNOWN: &str = "unknown";

/// The largest data count a Tread/Treaddir may ask for and a Twrite/Rread/Rreaddir
/// may carry under `msize`: `msize - IOHDRSZ` (saturating at 0, and computed
/// on `min(msize, MAX_MSIZE)`).
///
/// A server clamps read and readdir counts to this so a reply never exceeds
/// `msize`; a write whose data is longer than this is refused by the server
/// (the decoder itself only checks the data against the frame).
#[must_use]
pub const fn max_io_count(msize: u32) -> u32 {
    let m = if msize > MAX_MSIZE { MAX_MSIZE } else { msize };
    m.saturating_sub(IOHDRSZ)
}

/// Version negotiation for `msize`: `min(client, server_max, MAX_MSIZE)`, or
/// `None` when the client's `msize` is below [`MIN_MSIZE`] (including zero),
/// which a server refuses.
#[must_use]
pub const fn negotiate_msize(client: u32, server_max: u32) -> Option<u32> {
    let mut m = client;
    if server_max < m {
        m = server_max;
    }
    if MAX_MSIZE < m {
        m = MAX_MSIZE;
    }
    if m < MIN_MSIZE { None } else { Some(m) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_count() {
        assert_eq!(max_io_count(8192), 8168);
        assert_eq!(max_io_count(0), 0);
        assert_eq!(max_io_count(10), 0);
        assert_eq!(max_io_count(u32::MAX), MAX_MSIZE - IOHDRSZ);
    }

    #[test]
    fn negotiate() {
        assert_eq!(negotiate_msize(8192, MAX_MSIZE), Some(8192));
        assert_eq!(negotiate_msize(1 << 20, MAX_MSIZE), Some(MAX_MSIZE));
        assert_eq!(negotiate_msize(1 << 20, 4096), Some(4096));
        assert_eq!(negotiate_msize(0, MAX_MSIZE), None);
        assert_eq!(negotiate_msize(511, MAX_MSIZE), None);
        assert_eq!(negotiate_msize(512, MAX_MSIZE), Some(512));
        assert_eq!(negotiate_msize(8192, 100), None);
    }
}
