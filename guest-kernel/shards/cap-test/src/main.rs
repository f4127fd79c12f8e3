//! cap-test: the capability rules, in three roles (`args` = a, b or c; boot
//! caps as in /boot/test-caps.toml).
//!
//! - a: holds channel x (SEND|RECV|GRANT) and y (SEND|RECV, no GRANT).
//!   Granting y is refused (NoRight); restricting y and then asking for
//!   more leaves the smaller rights. It grants x to b and passes b the
//!   handle; once c reports it used its copy, a receives c's message on x,
//!   revokes x, and tells b and c.
//! - b: checks its copy, grants it on to c with SEND only, passes c the
//!   handle; after the revoke its copy is gone (BadHandle).
//! - c: its copy has SEND only (receiving is NoRight, granting on is
//!   NoRight); it sends on x and reports; after the revoke its copy is gone
//!   (BadHandle on send and inspect): the revoke cascaded a → b → c.
//!
//! Each check prints `cap-test: <role>: <check> ok` or `... FAIL (...)`;
//! exit code = failures.
#![no_std]
#![no_main]

use coconut_rt::coconut_abi::syscall::{cap_type, rights};
use coconut_rt::sys::{self, SysResult};
use coconut_rt::{Error, info, println};

coconut_rt::main!(main);

struct Role {
    name: &'static str,
    failures: u64,
}

impl Role {
    fn check(&mut self, what: &str, ok: bool, got: SysResult) {
        if ok {
            println!("cap-test: {}: {what} ok", self.name);
        } else {
            println!("cap-test: {}: {what} FAIL (got {got:?})", self.name);
            self.failures += 1;
        }
    }

    fn expect_err(&mut self, what: &str, got: SysResult, want: Error) {
        self.check(what, got == Err(want), got);
    }

    fn cap(&mut self, n: usize) -> u64 {
        info::boot_cap(n).unwrap_or_else(|| {
            println!("cap-test: {}: boot capability {n} missing", self.name);
            self.failures += 1;
            u64::MAX
        })
    }
}

fn send_u64(ch: u64, v: u64) -> SysResult {
    sys::channel_send(ch, &v.to_le_bytes())
}

fn recv_u64(ch: u64) -> Result<u64, Error> {
    let mut b = [0u8; 8];
    let n = sys::channel_recv(ch, &mut b)?;
    if n != 8 {
        return Err(Error::InvalidArgument);
    }
    Ok(u64::from_le_bytes(b))
}

const REVOKED: u64 = u64::from_le_bytes(*b"REVOKED!");
const USED: u64 = u64::from_le_bytes(*b"USED-IT!");

fn role_a(r: &mut Role) {
    let (x, y, shard_b, a2b, c2a, a2c) =
        (r.cap(0), r.cap(1), r.cap(2), r.cap(3), r.cap(4), r.cap(5));
    r.expect_err(
        "grant without GRANT is refused",
        sys::cap_grant(y, shard_b, rights::ALL),
        Error::NoRight,
    );
    let shrunk = sys::cap_restrict(y, rights::SEND);
    let grown = sys::cap_restrict(y, rights::SEND | rights::RECV | rights::GRANT);
    let now = sys::cap_info(y).map(|c| c.rights);
    r.check(
        "restrict cannot grow rights",
        shrunk.is_ok() && now == Ok(rights::SEND),
        grown.and(now),
    );
    let hb = sys::cap_grant(x, shard_b, rights::SEND | rights::RECV | rights::GRANT);
    r.check("grant x to b", hb.is_ok(), hb);
    let Ok(hb) = hb else { return };
    r.check("handle passed to b", send_u64(a2b, hb).is_ok(), Ok(hb));
    let used = recv_u64(c2a);
    r.check("c reports it used its copy", used == Ok(USED), used);
    let mut buf = [0u8; 64];
    let got = sys::channel_recv(x, &mut buf);
    r.check(
        "c's message arrived on x",
        got.is_ok_and(|n| &buf[..n as usize] == b"from c"),
        got,
    );
    let revoked = sys::cap_revoke(x);
    r.check("revoke x", revoked.is_ok(), revoked);
    r.expect_err(
        "own x gone after revoke",
        sys::cap_inspect(x),
        Error::BadHandle,
    );
    let told_b = send_u64(a2b, REVOKED);
    let told_c = send_u64(a2c, REVOKED);
    r.check(
        "told b and c",
        told_b.is_ok() && told_c.is_ok(),
        told_b.and(told_c),
    );
}

fn role_b(r: &mut Role) {
    let (shard_c, a2b, b2c) = (r.cap(0), r.cap(1), r.cap(2));
    let hb = recv_u64(a2b);
    r.check("received a handle from a", hb.is_ok(), hb);
    let Ok(hb) = hb else { return };
    let info = sys::cap_info(hb);
    r.check(
        "copy is a CHANNEL with SEND|RECV|GRANT",
        info.is_ok_and(|c| {
            c.cap_type == cap_type::CHANNEL
                && c.rights == rights::SEND | rights::RECV | rights::GRANT
        }),
        sys::cap_inspect(hb),
    );
    let hc = sys::cap_grant(hb, shard_c, rights::SEND);
    r.check("grant copy to c with SEND only", hc.is_ok(), hc);
    let Ok(hc) = hc else { return };
    r.check("handle passed to c", send_u64(b2c, hc).is_ok(), Ok(hc));
    let note = recv_u64(a2b);
    r.check("a reports the revoke", note == Ok(REVOKED), note);
    r.expect_err(
        "copy gone after a's revoke (inspect)",
        sys::cap_inspect(hb),
        Error::BadHandle,
    );
    r.expect_err(
        "copy gone after a's revoke (send)",
        sys::channel_send(hb, b"from b"),
        Error::BadHandle,
    );
}

fn role_c(r: &mut Role) {
    let (b2c, c2a, a2c, shard_a) = (r.cap(0), r.cap(1), r.cap(2), r.cap(3));
    let hc = recv_u64(b2c);
    r.check("received a handle from b", hc.is_ok(), hc);
    let Ok(hc) = hc else { return };
    let rights_now = sys::cap_info(hc).map(|c| c.rights);
    r.check(
        "copy has SEND only",
        rights_now == Ok(rights::SEND),
        rights_now,
    );
    let mut buf = [0u8; 64];
    r.expect_err(
        "receive without RECV",
        sys::channel_recv(hc, &mut buf),
        Error::NoRight,
    );
    r.expect_err(
        "grant on without GRANT",
        sys::cap_grant(hc, shard_a, rights::SEND),
        Error::NoRight,
    );
    let sent = sys::channel_send(hc, b"from c");
    r.check("send on the copy", sent.is_ok(), sent);
    r.check("told a", send_u64(c2a, USED).is_ok(), Ok(0));
    let note = recv_u64(a2c);
    r.check("a reports the revoke", note == Ok(REVOKED), note);
    r.expect_err(
        "copy gone after a's revoke (inspect)",
        sys::cap_inspect(hc),
        Error::BadHandle,
    );
    r.expect_err(
        "copy gone after a's revoke (send)",
        sys::channel_send(hc, b"again"),
        Error::BadHandle,
    );
}

fn main() -> u64 {
    let name = match info::args().split_ascii_whitespace().next() {
        Some("a") => "a",
        Some("b") => "b",
        Some("c") => "c",
        other => {
            println!("cap-test: role {other:?}: want a, b or c");
            return 1;
        }
    };
    let mut r = Role { name, failures: 0 };
    match name {
        "a" => role_a(&mut r),
        "b" => role_b(&mut r),
        _ => role_c(&mut r),
    }
    println!("cap-test: {name}: {} failures", r.failures);
    r.failures
}
