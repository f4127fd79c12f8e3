//! The object calls: channels (bounded queues that block or fail, never
//! lose a message), capabilities (grant needs GRANT, restrict only shrinks,
//! revoke cascades) and supervisor calls on shards (create, start, wait,
//! kill). Blocking calls record what they wait for in the caller's state;
//! whoever completes the wait writes RAX into the waiter's saved frame.

use coconut_abi::syscall::{
    CAP_SLOTS, CHANNEL_MSG_MAX, Error, PATH_MAX, WAIT_FOREVER, cap_type, rights,
};
use coconut_core::captable::Removed;
use coconut_core::channel::{ChanError, ChannelId};

use crate::cpu;
use crate::kernel::{self, KILLED_BY_REQUEST, Kernel};
use crate::loader::{self, Spec};
use crate::shard::{Ending, MAX_SHARDS, ShardId, State, Wait};
use crate::syscalls::{Args, Ret, user};

const MSG: usize = CHANNEL_MSG_MAX as usize;

/// The TSC deadline for `timeout_ns` (0 = none, i.e. forever).
fn deadline(k: &Kernel, timeout_ns: u64) -> u64 {
    if timeout_ns == WAIT_FOREVER {
        return 0;
    }
    cpu::rdtsc()
        .saturating_add(k.timer.ns_to_tsc(timeout_ns))
        .max(1)
}

fn block(k: &mut Kernel, id: ShardId, wait: Wait, timeout_ns: u64) -> Result<Ret, Error> {
    if timeout_ns == 0 {
        return Err(Error::WouldBlock);
    }
    let deadline = deadline(k, timeout_ns);
    k.shards[id].state = State::Blocked { wait, deadline };
    Ok(Ret::NoReply)
}

/// Finds a FACTORY capability with `right` in the caller's table.
fn factory(k: &Kernel, id: ShardId, right: u64) -> Result<(), Error> {
    let found = (0..CAP_SLOTS as u64).any(|h| {
        k.caps
            .get(id, h)
            .is_ok_and(|c| c.cap_type == cap_type::FACTORY && c.rights & right == right)
    });
    if found { Ok(()) } else { Err(Error::NoRight) }
}

// ---- channels ----

pub fn sys_channel_create(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    factory(k, id, rights::FACTORY_CHANNEL)?;
    let chan = k.chans.create(a.a[0], a.a[1]).map_err(Error::from)?;
    let cap = coconut_core::captable::Cap {
        cap_type: cap_type::CHANNEL,
        resource: u64::from(chan.0),
        rights: rights::SEND | rights::RECV | rights::GRANT,
    };
    match k.caps.create(id, cap) {
        Ok(h) => Ok(Ret::Value(u64::from(h))),
        Err(e) => {
            let _ = k.chans.destroy(chan);
            Err(e)
        }
    }
}

fn send(k: &mut Kernel, id: ShardId, a: &Args, timeout: u64) -> Result<Ret, Error> {
    let chan = k.caps.lookup(id, a.a[0], cap_type::CHANNEL, rights::SEND)? as u32;
    let (va, len) = (a.a[1], a.a[2]);
    if len == 0 || len > CHANNEL_MSG_MAX {
        return Err(Error::InvalidArgument);
    }
    let mut buf = [0u8; MSG];
    let n = user(k, id, va, len, false)?.read_into(&mut buf);
    match k.chans.try_send(ChannelId(chan), &buf[..n]) {
        Ok(()) => {
            pump(k, chan);
            Ok(Ret::Value(0))
        }
        Err(ChanError::Full) => block(k, id, Wait::Send { chan, va, len }, timeout),
        Err(e) => Err(e.into()),
    }
}

fn recv(k: &mut Kernel, id: ShardId, a: &Args, timeout: u64) -> Result<Ret, Error> {
    let chan = k.caps.lookup(id, a.a[0], cap_type::CHANNEL, rights::RECV)? as u32;
    let (va, max) = (a.a[1], a.a[2]);
    user(k, id, va, max.min(CHANNEL_MSG_MAX), true)?;
    match try_recv_into(k, id, chan, va, max) {
        Ok(n) => {
            pump(k, chan);
            Ok(Ret::Value(n))
        }
        Err(ChanError::Empty) => block(k, id, Wait::Recv { chan, va, max }, timeout),
        Err(e) => Err(e.into()),
    }
}

/// Receives the next message of `chan` straight into shard `id`'s buffer.
fn try_recv_into(
    k: &mut Kernel,
    id: ShardId,
    chan: u32,
    va: u64,
    max: u64,
) -> Result<u64, ChanError> {
    let mut buf = [0u8; MSG];
    let cap = max.min(CHANNEL_MSG_MAX) as usize;
    let n = k.chans.try_recv(ChannelId(chan), &mut buf[..cap])?;
    if let Ok(slice) = user(k, id, va, n as u64, true) {
        slice.write_from(&buf[..n]);
    }
    Ok(n as u64)
}

/// Completes blocked sends and receives on `chan` while they can proceed.
pub fn pump(k: &mut Kernel, chan: u32) {
    for _ in 0..2 * MAX_SHARDS {
        let mut progressed = false;
        for w in 0..MAX_SHARDS {
            let State::Blocked { wait, .. } = k.shards[w].state else {
                continue;
            };
            match wait {
                Wait::Recv { chan: c, va, max } if c == chan => {
                    let result = match try_recv_into(k, w, chan, va, max) {
                        Ok(n) => n,
                        Err(ChanError::Empty) => continue,
                        Err(e) => Error::from(e).to_raw(),
                    };
                    wake(k, w, result);
                    progressed = true;
                }
                Wait::Send { chan: c, va, len } if c == chan => {
                    let mut buf = [0u8; MSG];
                    let n = match user(k, w, va, len, false) {
                        Ok(s) => s.read_into(&mut buf),
                        Err(e) => {
                            wake(k, w, e.to_raw());
                            continue;
                        }
                    };
                    match k.chans.try_send(ChannelId(chan), &buf[..n]) {
                        Ok(()) => wake(k, w, 0),
                        Err(ChanError::Full) => continue,
                        Err(e) => wake(k, w, Error::from(e).to_raw()),
                    }
                    progressed = true;
                }
                _ => {}
            }
        }
        if !progressed {
            break;
        }
    }
}

/// Ends shard `w`'s wait with `rax`.
fn wake(k: &mut Kernel, w: ShardId, rax: u64) {
    let s = &mut k.shards[w];
    s.save.rax = rax;
    kernel::make_runnable(k, w);
}

pub fn sys_channel_send(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    send(k, id, a, WAIT_FOREVER)
}

pub fn sys_channel_recv(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    recv(k, id, a, WAIT_FOREVER)
}

pub fn sys_channel_send_timeout(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    send(k, id, a, a.a[3])
}

pub fn sys_channel_recv_timeout(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    recv(k, id, a, a.a[3])
}

// ---- capabilities ----

pub fn sys_cap_grant(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    k.caps.get(id, a.a[0])?; // the source handle is checked first
    let target = k.caps.lookup(id, a.a[1], cap_type::SHARD, 0)? as usize;
    if target >= MAX_SHARDS || !k.shards[target].alive() {
        return Err(Error::NoSuchShard);
    }
    Ok(Ret::Value(u64::from(
        k.caps.grant(id, a.a[0], target, a.a[2])?,
    )))
}

/// Most removals one revoke reports individually (the rest still happen).
const REMOVED_MAX: usize = 64;

pub fn sys_cap_revoke(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let mut removed = [None::<Removed>; REMOVED_MAX];
    let mut n = 0;
    let count = k.caps.revoke(id, a.a[0], |r| {
        if n < REMOVED_MAX {
            removed[n] = Some(r);
            n += 1;
        }
    })?;
    for r in removed.iter().flatten() {
        closed(k, r);
    }
    Ok(Ret::Value(count as u64))
}

/// A capability went away: waits that depended on it end with `Closed`.
fn closed(k: &mut Kernel, r: &Removed) {
    let Some(s) = k.shards.get(r.shard) else {
        return;
    };
    let State::Blocked { wait, .. } = s.state else {
        return;
    };
    let hit = match wait {
        Wait::Send { chan, .. } | Wait::Recv { chan, .. } => {
            r.cap.cap_type == cap_type::CHANNEL && u64::from(chan) == r.cap.resource
        }
        Wait::Child(child) => r.cap.cap_type == cap_type::SHARD && child as u64 == r.cap.resource,
    };
    if hit {
        wake(k, r.shard, Error::Closed.to_raw());
    }
}

pub fn sys_cap_restrict(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    Ok(Ret::Value(k.caps.restrict(id, a.a[0], a.a[1])?))
}

pub fn sys_cap_inspect(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    Ok(Ret::Value(k.caps.inspect(id, a.a[0])?))
}

// ---- shards ----

pub fn sys_shard_create(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    factory(k, id, rights::FACTORY_SHARD)?;
    let (va, len, priority) = (a.a[0], a.a[1], a.a[2]);
    if len == 0 || len > PATH_MAX || priority > 3 {
        return Err(Error::InvalidArgument);
    }
    let mut path = [0u8; PATH_MAX as usize];
    let n = user(k, id, va, len, false)?.read_into(&mut path);
    // The child's name is the file name.
    let name_start = path[..n]
        .iter()
        .rposition(|&c| c == b'/')
        .map_or(0, |i| i + 1);
    let spec = Spec {
        name: &path[name_start..n],
        path: &path[..n],
        priority: priority as u8,
        pages: k.shards[id].vm.quota(),
        args: b"",
    };
    let child = loader::load(k, &spec).map_err(|e| e.error)?;
    k.shards[child].parent = Some(id);
    let self_cap = coconut_core::captable::Cap {
        cap_type: cap_type::SHARD,
        resource: child as u64,
        rights: 0,
    };
    let parent_cap = coconut_core::captable::Cap {
        rights: rights::WAIT | rights::KILL | rights::GRANT,
        ..self_cap
    };
    let handle = k.caps.create(id, parent_cap);
    let own = k.caps.create(child, self_cap);
    match (handle, own) {
        (Ok(h), Ok(_)) => Ok(Ret::Value(u64::from(h))),
        (h, _) => {
            kernel::end_shard(k, child, Ending::Killed(KILLED_BY_REQUEST));
            Err(h.err().unwrap_or(Error::NoSlots))
        }
    }
}

/// The shard a SHARD capability of the caller names (needing `right`).
fn target(k: &Kernel, id: ShardId, handle: u64, right: u64) -> Result<ShardId, Error> {
    let t = k.caps.lookup(id, handle, cap_type::SHARD, right)? as usize;
    if t >= MAX_SHARDS || k.shards[t].state == State::Free {
        return Err(Error::NoSuchShard);
    }
    Ok(t)
}

pub fn sys_shard_start(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let t = target(k, id, a.a[0], 0)?;
    if k.shards[t].state != State::Created {
        return Err(Error::Already);
    }
    kernel::make_runnable(k, t);
    k.shards[t].stats.start_tsc = cpu::rdtsc();
    Ok(Ret::Value(0))
}

pub fn sys_shard_wait(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let t = target(k, id, a.a[0], rights::WAIT)?;
    if t == id {
        return Err(Error::InvalidArgument);
    }
    match k.shards[t].state {
        State::Dead(ending) => Ok(Ret::Value(ending.status())),
        _ => block(k, id, Wait::Child(t), a.a[1]),
    }
}

pub fn sys_shard_kill(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let t = target(k, id, a.a[0], rights::KILL)?;
    if !k.shards[t].alive() {
        return Err(Error::NoSuchShard);
    }
    kernel::report_kill(k, t, KILLED_BY_REQUEST, 0);
    kernel::end_shard(k, t, Ending::Killed(KILLED_BY_REQUEST));
    if t == id {
        return Ok(Ret::NoReply);
    }
    Ok(Ret::Value(0))
}

/// A shard ended: wake whoever waits for it, drop its capabilities (copies
/// others derived from them stay, re-parented by the capability table).
pub fn shard_ended(k: &mut Kernel, id: ShardId, ending: Ending) {
    for w in 0..MAX_SHARDS {
        if let State::Blocked {
            wait: Wait::Child(c),
            ..
        } = k.shards[w].state
            && c == id
        {
            wake(k, w, ending.status());
        }
    }
    k.caps.drop_all(id, |_| {});
}
