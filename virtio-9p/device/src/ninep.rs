//! The virtio-9p device: one request queue, a mount tag, whole frames out,
//! replies back in any order.
//!
//! Request path ([`Virtio9p::process`]): pop each available chain, check its
//! shape (readable descriptors first, then writable ones; every address
//! inside guest memory), copy the T-message out, check its header, remember
//! where the reply goes under the request's tag, and hand the frame to the
//! caller. Reply path ([`Virtio9p::complete`]): look the tag up, write the
//! R-message into that chain's writable descriptors, mark it used and raise
//! the interrupt.
//!
//! Requests the device can answer on its own it answers here, with the same
//! reply path: a frame whose size field is wrong gets `Rlerror(EPROTO)`, one
//! larger than the device accepts `Rlerror(EMSGSIZE)`, a tag that is already
//! in flight `Rlerror(EINVAL)`. A chain whose reply cannot be written at all
//! (no writable space, or an address outside guest memory) is returned with
//! zero bytes used. Only when the used ring itself cannot be written does
//! the device stop and ask for a reset.
//!
//! Flush: a `Tflush(oldtag)` is forwarded like anything else; when its
//! `Rflush` comes back while `oldtag` is still pending (NineDoor cancelled a
//! blocked read), the old chain is completed first with `Rlerror(EINTR)` so
//! the guest gets every buffer back — the order the 9P flush rules require.

use std::collections::BTreeMap;
use std::sync::Arc;

use secure9p::errno;
use secure9p::limits::{HEADER_LEN, MAX_MSIZE};
use secure9p::wire::{self, Response, msg};
use thiserror::Error;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};

use crate::common::VirtioDevice;
use crate::interrupt::{self, Interrupt};
use crate::{device_id, features};

/// Size of the request queue the device offers.
pub const QUEUE_SIZE: u16 = 128;
/// Number of queues (one request queue).
pub const QUEUES: usize = 1;
/// Longest mount tag (Linux's limit for the 9P mount tag is a page; QEMU uses ≤ 255).
pub const MAX_TAG_LEN: usize = 255;
/// Largest request frame the device copies out (NineDoor negotiates msize ≤ this).
pub const MAX_FRAME: u32 = MAX_MSIZE;
/// Smallest reply buffer that can hold an `Rlerror`.
const RLERROR_LEN: u32 = 11;

/// Why the request queue could not be processed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProcessError {
    /// The used ring could not be written; the device needs a reset.
    #[error("virtio-9p: cannot write the used ring: {0}")]
    UsedRing(String),
}

/// Why a reply from NineDoor could not be delivered.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CompleteError {
    /// The reply is shorter than a 9P header.
    #[error("virtio-9p: reply of {0} bytes is shorter than a 9P header")]
    ShortReply(usize),
    /// No request with this tag is pending (e.g. the guest reset the device).
    #[error("virtio-9p: no pending request has tag {0}")]
    UnknownTag(u16),
    /// The device is not active or was reset.
    #[error("virtio-9p: device not active")]
    NotActive,
    /// The used ring could not be written; the device needs a reset.
    #[error("virtio-9p: cannot write the used ring: {0}")]
    UsedRing(String),
}

/// Where one pending request's reply goes.
#[derive(Debug)]
struct Pending {
    head: u16,
    reply: Vec<(GuestAddress, u32)>,
    capacity: u32,
}

/// Counters for `/proc` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to the caller.
    pub forwarded: u64,
    /// Replies delivered to the guest (forwarded or answered by the device).
    pub completed: u64,
    /// Requests the device refused itself (bad frame, bad chain).
    pub refused: u64,
}

/// The virtio-9p device model.
#[derive(Debug)]
pub struct Virtio9p {
    config: Vec<u8>,
    queue_sizes: [u16; QUEUES],
    queue: Option<Queue>,
    irq: Arc<Interrupt>,
    pending: BTreeMap<u16, Pending>,
    flushes: BTreeMap<u16, u16>,
    broken: bool,
    stats: Stats,
}

/// What a chain holds once its shape was checked.
struct Chain {
    head: u16,
    request: Vec<(GuestAddress, u32)>,
    request_len: u64,
    reply: Vec<(GuestAddress, u32)>,
    capacity: u32,
}

impl Virtio9p {
    /// A device exporting `mount_tag` (1..=255 bytes; longer tags are cut).
    pub fn new(mount_tag: &str, irq: Arc<Interrupt>) -> Self {
        let tag = mount_tag.as_bytes();
        let tag = tag.get(..MAX_TAG_LEN).unwrap_or(tag);
        let mut config = Vec::with_capacity(2 + tag.len());
        // The length fits: it is at most MAX_TAG_LEN.
        config.extend_from_slice(&(tag.len() as u16).to_le_bytes());
        config.extend_from_slice(tag);
        Virtio9p {
            config,
            queue_sizes: [QUEUE_SIZE; QUEUES],
            queue: None,
            irq,
            pending: BTreeMap::new(),
            flushes: BTreeMap::new(),
            broken: false,
            stats: Stats::default(),
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Requests forwarded and not yet answered.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Tags of the requests forwarded and not yet answered.
    pub fn pending_tags(&self) -> Vec<u16> {
        self.pending.keys().copied().collect()
    }

    /// Takes every available request out of the queue; `forward` receives
    /// each well-formed frame. Returns how many frames were forwarded.
    pub fn process<M: GuestMemory>(
        &mut self,
        mem: &M,
        forward: &mut dyn FnMut(Vec<u8>),
    ) -> Result<usize, ProcessError> {
        let mut forwarded = 0;
        loop {
            if self.broken {
                return Ok(forwarded);
            }
            let Some(queue) = self.queue.as_mut() else {
                return Ok(forwarded);
            };
            let Some(chain) = queue.pop_descriptor_chain(mem) else {
                return Ok(forwarded);
            };
            let head = chain.head_index();
            let Some(chain) = check_chain(mem, head, chain) else {
                self.stats.refused += 1;
                self.give_back(mem, head, 0)?;
                continue;
            };
            if let Some(frame) = self.accept(mem, chain)? {
                self.stats.forwarded += 1;
                forwarded += 1;
                forward(frame);
            }
        }
    }

    /// Checks one request; `Some(frame)` to forward, `None` if the device
    /// answered it itself.
    fn accept<M: GuestMemory>(
        &mut self,
        mem: &M,
        chain: Chain,
    ) -> Result<Option<Vec<u8>>, ProcessError> {
        if chain.capacity < RLERROR_LEN {
            self.stats.refused += 1;
            self.give_back(mem, chain.head, 0)?;
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        if chain.request_len < HEADER_LEN as u64
            || read_regions(mem, &chain.request, &mut header).is_err()
        {
            self.stats.refused += 1;
            self.give_back(mem, chain.head, 0)?;
            return Ok(None);
        }
        let size = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let tag = u16::from_le_bytes([header[5], header[6]]);
        let refuse = if u64::from(size) > chain.request_len || (size as usize) < HEADER_LEN {
            Some(errno::EPROTO)
        } else if size > MAX_FRAME {
            Some(errno::EMSGSIZE)
        } else if self.pending.contains_key(&tag) {
            Some(errno::EINVAL)
        } else {
            None
        };
        if let Some(ecode) = refuse {
            self.stats.refused += 1;
            let len = write_lerror(mem, &chain.reply, tag, ecode);
            self.give_back(mem, chain.head, len)?;
            return Ok(None);
        }
        let mut frame = vec![0u8; size as usize];
        if read_regions(mem, &chain.request, &mut frame).is_err() {
            self.stats.refused += 1;
            self.give_back(mem, chain.head, 0)?;
            return Ok(None);
        }
        if header[4] == msg::TFLUSH
            && let Some(old) = frame.get(HEADER_LEN..HEADER_LEN + 2)
        {
            self.flushes
                .insert(tag, u16::from_le_bytes([old[0], old[1]]));
        }
        self.pending.insert(
            tag,
            Pending {
                head: chain.head,
                reply: chain.reply,
                capacity: chain.capacity,
            },
        );
        Ok(Some(frame))
    }

    /// Delivers NineDoor's reply `frame` to the request with the same tag.
    pub fn complete<M: GuestMemory>(&mut self, mem: &M, frame: &[u8]) -> Result<(), CompleteError> {
        if self.queue.is_none() || self.broken {
            return Err(CompleteError::NotActive);
        }
        let (Some(&ty), Some(tag)) = (frame.get(4), frame.get(5..7)) else {
            return Err(CompleteError::ShortReply(frame.len()));
        };
        let tag = u16::from_le_bytes([tag[0], tag[1]]);
        let Some(pending) = self.pending.remove(&tag) else {
            return Err(CompleteError::UnknownTag(tag));
        };
        if let Some(old) = self.flushes.remove(&tag)
            && ty == msg::RFLUSH
            && let Some(cancelled) = self.pending.remove(&old)
        {
            let len = write_lerror(mem, &cancelled.reply, old, errno::EINTR);
            self.give_back(mem, cancelled.head, len)
                .map_err(|ProcessError::UsedRing(e)| CompleteError::UsedRing(e))?;
        }
        let len = if frame.len() as u64 <= u64::from(pending.capacity) {
            write_regions(mem, &pending.reply, frame)
        } else {
            write_lerror(mem, &pending.reply, tag, errno::EMSGSIZE)
        };
        self.give_back(mem, pending.head, len)
            .map_err(|ProcessError::UsedRing(e)| CompleteError::UsedRing(e))
    }

    /// Returns a chain to the guest with `len` bytes written, and interrupts.
    fn give_back<M: GuestMemory>(
        &mut self,
        mem: &M,
        head: u16,
        len: u32,
    ) -> Result<(), ProcessError> {
        let Some(queue) = self.queue.as_mut() else {
            return Ok(());
        };
        if let Err(e) = queue.add_used(mem, head, len) {
            self.broken = true;
            self.irq.raise(interrupt::CONFIG_CHANGE);
            return Err(ProcessError::UsedRing(e.to_string()));
        }
        self.stats.completed += 1;
        self.irq.raise(interrupt::USED_BUFFER);
        Ok(())
    }
}

/// Walks a chain: readable descriptors, then writable ones, all inside guest
/// memory. `None` when the shape is wrong.
fn check_chain<M, C>(mem: &M, head: u16, chain: C) -> Option<Chain>
where
    M: GuestMemory,
    C: Iterator<Item = virtio_queue::desc::split::Descriptor>,
{
    let mut out = Chain {
        head,
        request: Vec::new(),
        request_len: 0,
        reply: Vec::new(),
        capacity: 0,
    };
    for desc in chain {
        let (addr, len) = (desc.addr(), desc.len());
        if len == 0 {
            continue;
        }
        let access = if desc.is_write_only() {
            Permissions::Write
        } else {
            Permissions::Read
        };
        if !mem.check_range(addr, len as usize, access) {
            return None;
        }
        if desc.is_write_only() {
            out.capacity = out.capacity.checked_add(len)?;
            out.reply.push((addr, len));
        } else {
            if !out.reply.is_empty() {
                return None;
            }
            out.request_len = out.request_len.checked_add(u64::from(len))?;
            out.request.push((addr, len));
        }
    }
    Some(out)
}

/// Fills `buf` from the start of `regions`.
fn read_regions<M: GuestMemory>(
    mem: &M,
    regions: &[(GuestAddress, u32)],
    buf: &mut [u8],
) -> Result<(), ()> {
    let mut done = 0usize;
    for &(addr, len) in regions {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        if rest.is_empty() {
            break;
        }
        let n = rest.len().min(len as usize);
        let Some(dst) = rest.get_mut(..n) else { break };
        mem.read_slice(dst, addr).map_err(|_| ())?;
        done += n;
    }
    if done == buf.len() { Ok(()) } else { Err(()) }
}

/// Writes `data` across `regions`; returns the bytes written (0 on a memory error).
fn write_regions<M: GuestMemory>(mem: &M, regions: &[(GuestAddress, u32)], data: &[u8]) -> u32 {
    let mut done = 0usize;
    for &(addr, len) in regions {
        let Some(rest) = data.get(done..) else { break };
        if rest.is_empty() {
            break;
        }
        let n = rest.len().min(len as usize);
        let Some(src) = rest.get(..n) else { break };
        if mem.write_slice(src, addr).is_err() {
            return 0;
        }
        done += n;
    }
    u32::try_from(done).unwrap_or(0)
}

/// Writes `Rlerror(ecode)` for `tag`; returns the bytes written.
fn write_lerror<M: GuestMemory>(
    mem: &M,
    regions: &[(GuestAddress, u32)],
    tag: u16,
    ecode: u32,
) -> u32 {
    let mut frame = Vec::with_capacity(RLERROR_LEN as usize);
    if wire::encode_response(tag, &Response::Lerror { ecode }, &mut frame).is_err() {
        return 0;
    }
    write_regions(mem, regions, &frame)
}

impl VirtioDevice for Virtio9p {
    fn device_id(&self) -> u32 {
        device_id::NINEP
    }

    fn device_features(&self) -> u64 {
        features::VERSION_1 | features::RING_INDIRECT_DESC | features::NINEP_MOUNT_TAG
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            let at = usize::try_from(offset).ok().and_then(|o| o.checked_add(i));
            *b = at.and_then(|at| self.config.get(at)).copied().unwrap_or(0);
        }
    }

    fn activate(&mut self, _features: u64, queues: Vec<Queue>) {
        self.queue = queues.into_iter().next();
        self.broken = false;
    }

    fn reset(&mut self) {
        self.queue = None;
        self.pending.clear();
        self.flushes.clear();
        self.broken = false;
    }

    fn needs_reset(&self) -> bool {
        self.broken
    }
}
