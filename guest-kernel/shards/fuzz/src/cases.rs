//! The cases, grouped by call family. Names are `<call>/<what>`.

use crate::check::{Fuzz, raw};
use coconut_rt::coconut_abi::syscall::config::{INFO_VA, STACK_PAGES, STACK_TOP, USER_MIN};
use coconut_rt::coconut_abi::syscall::{
    CAP_SLOTS, CHANNEL_MSG_MAX, Error, FD_SLOTS, cap_type, nr, pledge as pl, rights,
};
use coconut_rt::{heap, info, sys};

use Error::*;

const PAGE: u64 = 4096;
/// Kernel-half and non-canonical addresses.
const HOSTILE: [(&str, u64); 4] = [
    ("kernel-ffff800000000000", 0xffff_8000_0000_0000),
    ("kernel-ffffffff80000000", 0xffff_ffff_8000_0000),
    ("non-canonical", 0x0000_8000_0000_0000),
    ("top-of-address-space", 0xffff_ffff_ffff_f000),
];
/// A lower-half page no shard maps.
const UNMAPPED: u64 = 0x0000_1234_5678_0000;
/// The lowest stack page; the guard page lies below it.
const STACK_BOTTOM: u64 = STACK_TOP - STACK_PAGES * PAGE;
const PATTERN: &str = "/data/large/pattern.bin";
/// Must match images/src/pattern.rs.
const PATTERN_SEED: u64 = 0xc0c0_5eed_0000_0001;

const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fresh page at the heap's end: `(start, end)`, `end` being the first
/// unmapped address. Every byte is scratch nobody else uses.
fn boundary(f: &mut Fuzz) -> Option<(u64, u64)> {
    match heap::tail_pages(1) {
        Ok(page) => {
            let start = page.as_ptr() as u64;
            Some((start, start + PAGE))
        }
        Err(e) => {
            f.err("mmap/scratch-page", Err(e), &[]);
            None
        }
    }
}

/// Writes `bytes` ending exactly at `end` (the last bytes of a mapped page).
fn place_before(end: u64, bytes: &[u8]) -> u64 {
    let at = end - bytes.len() as u64;
    // SAFETY: [at, end) lies in a scratch page from `boundary`, R+W and
    // used by nothing else.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len()) };
    at
}

pub fn serial(f: &mut Fuzz) {
    let msg = b"fuzz: serial_write/valid ok\n";
    let got = sys::serial_write(msg);
    f.cases += 1;
    if got != Ok(msg.len() as u64) {
        f.failures += 1;
        coconut_rt::println!(
            "fuzz: serial_write/valid FAIL (got {got:?}, want {})",
            msg.len()
        );
    }
    let ok = msg.as_ptr() as u64;
    f.err(
        "serial_write/len-0",
        raw(nr::SERIAL_WRITE, ok, 0, 0, 0),
        &[InvalidArgument],
    );
    // 4097 readable bytes (two fresh pages), so only the length is wrong.
    match heap::tail_pages(2) {
        Ok(pages) => f.err(
            "serial_write/len-4097",
            raw(nr::SERIAL_WRITE, pages.as_ptr() as u64, 4097, 0, 0),
            &[InvalidArgument],
        ),
        Err(e) => f.err("serial_write/len-4097", Err(e), &[]),
    }
    f.err(
        "serial_write/null",
        raw(nr::SERIAL_WRITE, 0, 5, 0, 0),
        &[BadAddress],
    );
    for (name, p) in HOSTILE {
        let case = alloc_name("serial_write/", name);
        f.err(&case, raw(nr::SERIAL_WRITE, p, 8, 0, 0), &[BadAddress]);
    }
    f.err(
        "serial_write/wrap-around",
        raw(nr::SERIAL_WRITE, u64::MAX - 7, 16, 0, 0),
        &[BadAddress],
    );
    f.err(
        "serial_write/past-stack-top",
        raw(nr::SERIAL_WRITE, STACK_TOP, 16, 0, 0),
        &[BadAddress],
    );
    f.err(
        "serial_write/unmapped",
        raw(nr::SERIAL_WRITE, UNMAPPED, 16, 0, 0),
        &[BadAddress],
    );
    f.err(
        "serial_write/into-guard-page",
        raw(nr::SERIAL_WRITE, STACK_BOTTOM - 8, 16, 0, 0),
        &[BadAddress],
    );
    f.err(
        "serial_write/lower-half-end",
        raw(nr::SERIAL_WRITE, 0x0000_7fff_ffff_fff8, 16, 0, 0),
        &[BadAddress],
    );
    f.err(
        "serial_write/huge-length",
        raw(nr::SERIAL_WRITE, ok, u64::MAX, 0, 0),
        &[InvalidArgument],
    );
    if let Some((_, end)) = boundary(f) {
        let at = place_before(end, b"straddle");
        f.err(
            "serial_write/straddle-mapped-unmapped",
            raw(nr::SERIAL_WRITE, at, 16, 0, 0),
            &[BadAddress],
        );
    }
    let t1 = sys::time();
    let t2 = sys::time();
    let t1v = t1.unwrap_or(u64::MAX);
    f.ok("time/monotonic", t2, "a time >= the previous one", |v| {
        v >= t1v
    });
    f.ok("yield/ok", sys::yield_now(), "success", |_| true);
}

fn alloc_name(prefix: &str, name: &str) -> coconut_rt::alloc::string::String {
    let mut s = coconut_rt::alloc::string::String::from(prefix);
    s.push_str(name);
    s
}

pub fn fs(f: &mut Fuzz) {
    let path = |p: &str| (p.as_ptr() as u64, p.len() as u64);
    let (p, l) = path("/no/such/file");
    f.err("fs_open/missing", raw(nr::FS_OPEN, p, l, 0, 0), &[NotFound]);
    f.err(
        "fs_open/empty-path",
        raw(nr::FS_OPEN, p, 0, 0, 0),
        &[InvalidArgument, NotFound],
    );
    f.err(
        "fs_open/null-path",
        raw(nr::FS_OPEN, 0, 9, 0, 0),
        &[BadAddress],
    );
    for (name, ptr) in HOSTILE {
        f.err(
            &alloc_name("fs_open/path-", name),
            raw(nr::FS_OPEN, ptr, 9, 0, 0),
            &[BadAddress],
        );
    }
    let long = [b'a'; 256];
    let mut long_path = long;
    long_path[0] = b'/';
    f.err(
        "fs_open/path-256-bytes",
        raw(nr::FS_OPEN, long_path.as_ptr() as u64, 256, 0, 0),
        &[InvalidArgument],
    );
    f.err(
        "fs_open/path-huge-length",
        raw(nr::FS_OPEN, long_path.as_ptr() as u64, u64::MAX, 0, 0),
        &[InvalidArgument, BadAddress],
    );
    let (p, l) = path("etc/motd");
    f.err(
        "fs_open/relative",
        raw(nr::FS_OPEN, p, l, 0, 0),
        &[InvalidArgument, NotFound],
    );
    let (p, l) = path("/etc");
    f.err(
        "fs_open/directory",
        raw(nr::FS_OPEN, p, l, 0, 0),
        &[NotAFile],
    );
    if let Some((_, end)) = boundary(f) {
        let at = place_before(end, b"/etc/");
        f.err(
            "fs_open/path-straddle",
            raw(nr::FS_OPEN, at, 9, 0, 0),
            &[BadAddress],
        );
    }
    let mut scratch = [0u8; 16];
    for fd in [FD_SLOTS as u64 - 1, FD_SLOTS as u64, 1000, u64::MAX] {
        f.err(
            "fs_read/bad-fd",
            sys::fs_read(fd, &mut scratch),
            &[BadHandle],
        );
    }
    f.err(
        "fs_stat/bad-fd",
        raw(nr::FS_STAT, FD_SLOTS as u64, 0, 0, 0),
        &[BadHandle],
    );
    f.err(
        "fs_close/bad-fd",
        raw(nr::FS_CLOSE, 1000, 0, 0, 0),
        &[BadHandle],
    );
    f.err(
        "fs_map/bad-fd",
        raw(nr::FS_MAP, u64::MAX, 0, 0, 0),
        &[BadHandle],
    );

    let fd = match sys::fs_open(PATTERN) {
        Ok(fd) => fd,
        Err(e) => {
            f.err("fs_open/pattern-file", Err(e), &[]);
            return;
        }
    };
    f.err(
        "fs_read/null-buffer",
        raw(nr::FS_READ, fd, 0, 16, 0),
        &[BadAddress],
    );
    let mut buf = [0u8; 16];
    f.err(
        "fs_read/len-0",
        raw(nr::FS_READ, fd, buf.as_mut_ptr() as u64, 0, 0),
        &[InvalidArgument],
    );
    for (name, ptr) in HOSTILE {
        f.err(
            &alloc_name("fs_read/buffer-", name),
            raw(nr::FS_READ, fd, ptr, 16, 0),
            &[BadAddress],
        );
    }
    f.err(
        "fs_read/wrap-around",
        raw(nr::FS_READ, fd, u64::MAX - 7, 16, 0),
        &[BadAddress],
    );
    // A valid start with a length that runs off the end of the address space.
    f.err(
        "fs_read/huge-length",
        raw(nr::FS_READ, fd, buf.as_mut_ptr() as u64, u64::MAX, 0),
        &[BadAddress],
    );
    f.err(
        "fs_read/unmapped",
        raw(nr::FS_READ, fd, UNMAPPED, 16, 0),
        &[BadAddress],
    );
    f.err(
        "fs_read/read-only-info-page",
        raw(nr::FS_READ, fd, INFO_VA, 16, 0),
        &[BadAddress],
    );
    f.err(
        "fs_read/read-only-code",
        raw(nr::FS_READ, fd, USER_MIN, 16, 0),
        &[BadAddress],
    );
    f.err(
        "fs_read/straddle-unmapped-mapped",
        raw(nr::FS_READ, fd, STACK_BOTTOM - 8, 16, 0),
        &[BadAddress],
    );
    if let Some((_, end)) = boundary(f) {
        f.err(
            "fs_read/straddle-mapped-unmapped",
            raw(nr::FS_READ, fd, end - 8, 16, 0),
            &[BadAddress],
        );
    }
    // None of the refused reads may have moved the offset.
    let got = sys::fs_read(fd, &mut buf);
    let mut want = [0u8; 16];
    want[..8].copy_from_slice(&splitmix64(PATTERN_SEED).to_le_bytes());
    want[8..].copy_from_slice(&splitmix64(1 ^ PATTERN_SEED).to_le_bytes());
    let same = buf == want;
    f.ok(
        "fs_read/offset-untouched-by-refusals",
        got,
        "16 bytes from offset 0",
        |n| n == 16 && same,
    );
    // Table exhaustion: FD_SLOTS open files at most.
    let mut extra = [u64::MAX; FD_SLOTS];
    let mut last = Ok(0);
    let mut opened = 0;
    for slot in extra.iter_mut() {
        last = sys::fs_open(PATTERN);
        match last {
            Ok(h) => {
                *slot = h;
                opened += 1;
            }
            Err(_) => break,
        }
    }
    f.err("fs_open/table-full", last, &[NoSlots]);
    for h in extra.iter().take(opened) {
        let _ = sys::fs_close(*h);
    }
    f.ok("fs_close/valid", sys::fs_close(fd), "success", |_| true);
    f.err(
        "fs_read/after-close",
        sys::fs_read(fd, &mut buf),
        &[BadHandle],
    );
    f.err("fs_stat/after-close", sys::fs_stat(fd), &[BadHandle]);
    f.err("fs_map/after-close", sys::fs_map(fd), &[BadHandle]);
    f.err("fs_close/twice", sys::fs_close(fd), &[BadHandle]);
}

pub fn mmap(f: &mut Fuzz) {
    let end = heap::end();
    let bad = [InvalidArgument];
    let overlap = [Overlap, InvalidArgument];
    f.err("mmap/unaligned", raw(nr::MMAP, end + 1, 1, 0, 0), &bad);
    f.err("mmap/0-pages", raw(nr::MMAP, end, 0, 0, 0), &bad);
    f.err("mmap/257-pages", raw(nr::MMAP, end, 257, 0, 0), &bad);
    f.err("mmap/over-code", raw(nr::MMAP, USER_MIN, 1, 0, 0), &overlap);
    f.err(
        "mmap/over-stack",
        raw(nr::MMAP, STACK_TOP - PAGE, 1, 0, 0),
        &overlap,
    );
    f.err(
        "mmap/over-info-page",
        raw(nr::MMAP, INFO_VA, 1, 0, 0),
        &overlap,
    );
    f.err(
        "mmap/below-heap-end",
        raw(nr::MMAP, end - PAGE, 1, 0, 0),
        &overlap,
    );
    f.err(
        "mmap/non-contiguous",
        raw(nr::MMAP, end + 2 * PAGE, 1, 0, 0),
        &overlap,
    );
    f.err(
        "mmap/overflow",
        raw(nr::MMAP, 0xffff_ffff_ffff_f000, 2, 0, 0),
        &[InvalidArgument, BadAddress],
    );
    f.err(
        "mmap/kernel-half",
        raw(nr::MMAP, 0xffff_8000_0000_0000, 1, 0, 0),
        &[InvalidArgument, BadAddress],
    );
    f.err(
        "mmap/length-overflow",
        raw(nr::MMAP, end, u64::MAX / PAGE + 2, 0, 0),
        &bad,
    );
    // A valid mapping at the end: zeroed and writable.
    match heap::tail_pages(2) {
        Ok(pages) => {
            let zero = pages.iter().all(|&b| b == 0);
            pages[PAGE as usize] = 0x5a;
            let wrote = pages[PAGE as usize] == 0x5a;
            f.ok(
                "mmap/valid-zeroed-writable",
                Ok(0),
                "zeroed, writable pages",
                |_| zero && wrote,
            );
        }
        Err(e) => f.err("mmap/valid-zeroed-writable", Err(e), &[]),
    }
}

/// The FACTORY capability the manifest gave this shard, if any.
pub fn factory() -> Option<u64> {
    (0..16)
        .filter_map(info::boot_cap)
        .find(|&h| sys::cap_info(h).is_ok_and(|c| c.cap_type == cap_type::FACTORY))
}

/// A slot with no capability in it.
fn empty_slot() -> Option<u64> {
    (0..CAP_SLOTS as u64)
        .rev()
        .find(|&h| sys::cap_inspect(h) == Err(BadHandle))
}

pub fn caps(f: &mut Fuzz) {
    let Some(empty) = empty_slot() else {
        f.missing("cap_inspect/empty-slot", "an empty capability slot");
        return;
    };
    f.err(
        "cap_inspect/empty-slot",
        sys::cap_inspect(empty),
        &[BadHandle],
    );
    f.err(
        "cap_revoke/empty-slot",
        sys::cap_revoke(empty),
        &[BadHandle],
    );
    f.err(
        "cap_restrict/empty-slot",
        sys::cap_restrict(empty, 0),
        &[BadHandle],
    );
    f.err(
        "cap_grant/empty-slot",
        sys::cap_grant(empty, empty, rights::ALL),
        &[BadHandle],
    );
    for h in [CAP_SLOTS as u64, 1000, 1 << 32, u64::MAX] {
        f.err(
            "cap_inspect/out-of-range",
            sys::cap_inspect(h),
            &[BadHandle],
        );
        f.err("cap_revoke/out-of-range", sys::cap_revoke(h), &[BadHandle]);
        f.err(
            "cap_restrict/out-of-range",
            sys::cap_restrict(h, 0),
            &[BadHandle],
        );
    }
    let Some(_) = factory() else {
        f.missing(
            "cap_grant/setup",
            "a FACTORY boot capability (see the manifest)",
        );
        return;
    };
    let ch = match sys::channel_create(2, 32) {
        Ok(h) => h,
        Err(e) => return f.err("channel_create/valid", Err(e), &[]),
    };
    let full = rights::SEND | rights::RECV | rights::GRANT;
    f.ok(
        "cap_inspect/new-channel",
        sys::cap_inspect(ch),
        "CHANNEL with SEND|RECV|GRANT",
        |v| v >> 48 == cap_type::CHANNEL && v & 0xffff == full,
    );
    f.err(
        "cap_grant/target-empty-slot",
        sys::cap_grant(ch, empty, rights::ALL),
        &[BadHandle],
    );
    f.err(
        "cap_grant/target-out-of-range",
        sys::cap_grant(ch, 1000, rights::ALL),
        &[BadHandle],
    );
    f.err(
        "cap_grant/target-not-a-shard",
        sys::cap_grant(ch, ch, rights::ALL),
        &[WrongType],
    );
    let _ = sys::cap_restrict(ch, rights::SEND);
    let _ = sys::cap_restrict(ch, rights::ALL);
    f.ok(
        "cap_restrict/cannot-grow",
        sys::cap_info(ch).map(|c| c.rights),
        "rights still SEND only",
        |r| r == rights::SEND,
    );
    let _ = sys::cap_revoke(ch);
    f.err(
        "cap_inspect/after-revoke",
        sys::cap_inspect(ch),
        &[BadHandle],
    );
}

pub fn channels(f: &mut Fuzz) {
    let Some(fac) = factory() else {
        f.missing("channel_send/setup", "a FACTORY boot capability");
        return;
    };
    let empty = empty_slot().unwrap_or(CAP_SLOTS as u64 - 1);
    let bad = [InvalidArgument];
    f.err(
        "channel_create/capacity-0",
        sys::channel_create(0, 16),
        &bad,
    );
    f.err(
        "channel_create/capacity-65",
        sys::channel_create(65, 16),
        &bad,
    );
    f.err("channel_create/msg-max-0", sys::channel_create(1, 0), &bad);
    f.err(
        "channel_create/msg-max-257",
        sys::channel_create(1, 257),
        &bad,
    );
    let (Ok(ch), Ok(small)) = (
        sys::channel_create(1, CHANNEL_MSG_MAX),
        sys::channel_create(1, 32),
    ) else {
        return f.missing("channel_create/valid", "two new channels");
    };
    let msg = [0x42u8; 257];
    let p = msg.as_ptr() as u64;
    f.err(
        "channel_send/no-capability",
        raw(nr::CHANNEL_SEND, empty, p, 8, 0),
        &[BadHandle],
    );
    f.err(
        "channel_send/bad-channel",
        raw(nr::CHANNEL_SEND, 1000, p, 8, 0),
        &[BadHandle],
    );
    f.err(
        "channel_send/wrong-type",
        raw(nr::CHANNEL_SEND, fac, p, 8, 0),
        &[WrongType],
    );
    f.err(
        "channel_send/len-0",
        raw(nr::CHANNEL_SEND, ch, p, 0, 0),
        &bad,
    );
    f.err(
        "channel_send/len-257",
        raw(nr::CHANNEL_SEND, ch, p, 257, 0),
        &bad,
    );
    f.err(
        "channel_send/above-msg-max",
        raw(nr::CHANNEL_SEND, small, p, 33, 0),
        &[InvalidArgument, MessageTooBig],
    );
    f.err(
        "channel_send/null",
        raw(nr::CHANNEL_SEND, ch, 0, 8, 0),
        &[BadAddress],
    );
    for (name, ptr) in HOSTILE {
        f.err(
            &alloc_name("channel_send/buffer-", name),
            raw(nr::CHANNEL_SEND, ch, ptr, 8, 0),
            &[BadAddress],
        );
    }
    if let Some((_, end)) = boundary(f) {
        let at = place_before(end, b"12345678");
        f.err(
            "channel_send/straddle-mapped-unmapped",
            raw(nr::CHANNEL_SEND, ch, at, 16, 0),
            &[BadAddress],
        );
    }
    let mut buf = [0u8; 64];
    f.err(
        "channel_recv_timeout/empty-no-wait",
        sys::channel_recv_timeout(ch, &mut buf, 0),
        &[WouldBlock],
    );
    f.err(
        "channel_recv_timeout/empty-expires",
        sys::channel_recv_timeout(ch, &mut buf, 1_000_000),
        &[TimedOut],
    );
    // One queued message; every refused receive must leave it queued.
    let sent = b"sixteen byte msg";
    f.ok(
        "channel_send/valid",
        sys::channel_send(ch, sent),
        "success",
        |_| true,
    );
    f.err(
        "channel_send_timeout/full-no-wait",
        sys::channel_send_timeout(ch, sent, 0),
        &[WouldBlock],
    );
    f.err(
        "channel_send_timeout/full-expires",
        sys::channel_send_timeout(ch, sent, 1_000_000),
        &[TimedOut],
    );
    f.err(
        "channel_recv/null",
        raw(nr::CHANNEL_RECV, ch, 0, 64, 0),
        &[BadAddress],
    );
    for (name, ptr) in HOSTILE {
        f.err(
            &alloc_name("channel_recv/buffer-", name),
            raw(nr::CHANNEL_RECV, ch, ptr, 64, 0),
            &[BadAddress],
        );
    }
    f.err(
        "channel_recv/read-only-info-page",
        raw(nr::CHANNEL_RECV, ch, INFO_VA, 64, 0),
        &[BadAddress],
    );
    if let Some((_, end)) = boundary(f) {
        f.err(
            "channel_recv/straddle-mapped-unmapped",
            raw(nr::CHANNEL_RECV, ch, end - 8, 64, 0),
            &[BadAddress],
        );
    }
    f.err(
        "channel_recv/max-0",
        raw(nr::CHANNEL_RECV, ch, buf.as_mut_ptr() as u64, 0, 0),
        &[InvalidArgument, MessageTooBig],
    );
    f.err(
        "channel_recv/too-small",
        sys::channel_recv(ch, &mut buf[..15]),
        &[MessageTooBig],
    );
    let got = sys::channel_recv(ch, &mut buf);
    let same = buf[..16] == sent[..];
    f.ok(
        "channel_recv/still-delivered",
        got,
        "the 16-byte message",
        |n| n == 16 && same,
    );
    // Rights: a SEND-only and a RECV-only handle.
    let _ = sys::cap_restrict(small, rights::RECV);
    f.err(
        "channel_send/no-send-right",
        sys::channel_send(small, b"x"),
        &[NoRight],
    );
    let _ = sys::cap_restrict(ch, rights::SEND);
    f.err(
        "channel_recv/no-recv-right",
        sys::channel_recv(ch, &mut buf),
        &[NoRight],
    );
    let _ = sys::cap_revoke(ch);
    let _ = sys::cap_revoke(small);
}

pub fn shards(f: &mut Fuzz) {
    let path = |p: &str| (p.as_ptr() as u64, p.len() as u64);
    let empty = empty_slot().unwrap_or(CAP_SLOTS as u64 - 1);
    f.err(
        "shard_start/empty-slot",
        sys::shard_start(empty),
        &[BadHandle],
    );
    f.err(
        "shard_wait/empty-slot",
        sys::shard_wait(empty, 0),
        &[BadHandle],
    );
    f.err(
        "shard_kill/empty-slot",
        sys::shard_kill(empty),
        &[BadHandle],
    );
    let Some(fac) = factory() else {
        return f.missing("shard_create/setup", "a FACTORY boot capability");
    };
    f.err(
        "shard_start/wrong-type",
        sys::shard_start(fac),
        &[WrongType],
    );
    let (p, l) = path("/bin/no-such-shard");
    f.err(
        "shard_create/missing",
        raw(nr::SHARD_CREATE, p, l, 2, 0),
        &[NotFound],
    );
    f.err(
        "shard_create/null-path",
        raw(nr::SHARD_CREATE, 0, 8, 2, 0),
        &[BadAddress],
    );
    f.err(
        "shard_create/kernel-path",
        raw(nr::SHARD_CREATE, 0xffff_8000_0000_0000, 8, 2, 0),
        &[BadAddress],
    );
    f.err(
        "shard_create/not-elf",
        sys::shard_create("/etc/motd", 2),
        &[InvalidArgument],
    );
    f.err(
        "shard_create/directory",
        sys::shard_create("/bin", 2),
        &[NotAFile],
    );
    f.err(
        "shard_create/priority-4",
        sys::shard_create("/bin/hello", 4),
        &[InvalidArgument],
    );
    let child = match sys::shard_create("/bin/hello", 2) {
        Ok(h) => h,
        Err(e) => return f.err("shard_create/valid", Err(e), &[]),
    };
    // A bad source handle toward a valid target.
    for h in [CAP_SLOTS as u64, 1000, 1 << 32, u64::MAX, empty] {
        f.err(
            "cap_grant/out-of-range",
            sys::cap_grant(h, child, rights::ALL),
            &[BadHandle],
        );
    }
    f.ok(
        "cap_inspect/new-shard",
        sys::cap_info(child).map(|c| c.cap_type),
        "a SHARD capability",
        |t| t == cap_type::SHARD,
    );
    f.err(
        "shard_wait/not-started-no-wait",
        sys::shard_wait(child, 0),
        &[WouldBlock, TimedOut],
    );
    // Grant rules against a live (created, not started) target.
    if let Ok(ch) = sys::channel_create(1, 8) {
        let _ = sys::cap_restrict(ch, rights::SEND | rights::RECV);
        f.err(
            "cap_grant/without-grant-right",
            sys::cap_grant(ch, child, rights::ALL),
            &[NoRight],
        );
        let _ = sys::cap_revoke(ch);
    }
    let ch = sys::channel_create(1, 8);
    if let Ok(ch) = ch {
        f.ok(
            "cap_grant/valid",
            sys::cap_grant(ch, child, rights::SEND),
            "a handle",
            |_| true,
        );
    }
    f.ok(
        "shard_start/valid",
        sys::shard_start(child),
        "success",
        |_| true,
    );
    f.err(
        "shard_start/twice",
        sys::shard_start(child),
        &[Already, InvalidArgument],
    );
    f.ok(
        "shard_wait/exit-status",
        sys::shard_wait(child, u64::MAX),
        "status 0",
        |s| s == 0,
    );
    if let Ok(ch) = ch {
        f.err(
            "cap_grant/exited-target",
            sys::cap_grant(ch, child, rights::ALL),
            &[NoSuchShard],
        );
        let _ = sys::cap_revoke(ch);
    }
    let _ = sys::cap_revoke(child);
}

pub fn devices(f: &mut Fuzz) {
    let empty = empty_slot().unwrap_or(CAP_SLOTS as u64 - 1);
    let absent = [NoDevice, NoRight];
    f.err("gpu_dma/no-partition", sys::gpu_dma(0, 0, 0, 16), &absent);
    f.err(
        "gpu_dma/missing-partition",
        sys::gpu_dma(99, 0, 0, 16),
        &absent,
    );
    f.err("gpu_unveil/no-device", sys::gpu_unveil(0, 4096), &absent);
    let mut phys = 0u64;
    f.err(
        "dma_alloc/no-capability",
        sys::dma_alloc(1, &mut phys),
        &[NoRight, NoDevice, WrongType, BadHandle],
    );
    f.err("mmio_map/empty-slot", sys::mmio_map(empty), &[BadHandle]);
    f.err(
        "irq_bind/empty-slot",
        sys::irq_bind(empty, empty),
        &[BadHandle],
    );
    f.err("irq_ack/empty-slot", sys::irq_ack(empty), &[BadHandle]);
    if let Some(fac) = factory() {
        f.err("mmio_map/wrong-type", sys::mmio_map(fac), &[WrongType]);
        f.err("irq_ack/wrong-type", sys::irq_ack(fac), &[WrongType]);
    }
}

pub fn unknown(f: &mut Fuzz) {
    for n in [
        3,
        15,
        19,
        25,
        35,
        48,
        54,
        61,
        63,
        99,
        1000,
        1 << 32 | 1,
        u64::MAX,
    ] {
        f.err(
            "syscall/unknown-number",
            raw(n, 0, 0, 0, 0),
            &[UnknownSyscall],
        );
    }
}

pub fn pledge(f: &mut Fuzz) {
    // Without a factory, channel_create cannot be the probe: revoke it first.
    if let Some(fac) = factory() {
        let _ = sys::cap_revoke(fac);
        f.err(
            "channel_create/no-factory",
            sys::channel_create(1, 8),
            &[NoRight, BadHandle, WrongType],
        );
    }
    f.ok(
        "pledge/drop-time",
        sys::pledge(pl::ALL & !pl::TIME),
        "success",
        |_| true,
    );
    f.err("time/pledged", sys::time(), &[Pledged]);
    let _ = sys::pledge(pl::ALL);
    f.err("pledge/cannot-grow", sys::time(), &[Pledged]);
    let _ = sys::pledge(pl::SERIAL);
    f.err("fs_open/pledged", sys::fs_open("/etc/motd"), &[Pledged]);
    f.err("cap_inspect/pledged", sys::cap_inspect(0), &[Pledged]);
    f.err(
        "mmap/pledged",
        raw(nr::MMAP, heap::end(), 1, 0, 0),
        &[Pledged],
    );
    f.ok("yield/after-pledge", sys::yield_now(), "success", |_| true);
    let msg = b"fuzz: serial_write/after-pledge ok\n";
    let got = sys::serial_write(msg);
    f.cases += 1;
    if got != Ok(msg.len() as u64) {
        f.failures += 1;
        coconut_rt::println!(
            "fuzz: serial_write/after-pledge FAIL (got {got:?}, want {})",
            msg.len()
        );
    }
}
