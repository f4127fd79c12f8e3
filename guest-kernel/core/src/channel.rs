//! Bounded message queues between shards.
//!
//! coconutOS had one 256-byte buffer per channel: a send overwrote the
//! previous message and a receive truncated silently. Here a channel is a
//! FIFO of up to `capacity` messages of up to `msg_max` bytes; a send to a
//! full queue fails with [`ChanError::Full`] (the kernel blocks the sender
//! or returns `WouldBlock`), and a receive into a too-small buffer fails
//! with [`ChanError::MessageTooBig`] carrying the length, leaving the
//! message queued. No message is ever truncated or dropped, except when the
//! channel itself is destroyed ([`ChannelPool::destroy`] says how many).
//!
//! # Storage
//!
//! A [`ChannelPool`] owns `SLOTS` message buffers of `CHANNEL_MSG_MAX`
//! (256) bytes shared by all its `CHANNELS` channels; each channel queues
//! buffer indices in a ring of `CHANNEL_CAPACITY_MAX` entries. Creating a
//! channel *reserves* `capacity` buffers (the sum of all capacities never
//! exceeds `SLOTS`), so a send to a non-full channel never fails for lack
//! of memory. Cost: `SLOTS × 260 + CHANNELS × 136` bytes (zero-initialised: `.bss`), e.g. 256 buffers
//! and 32 channels ≈ 70 KiB; 1024 buffers and 16 channels ≈ 262 KiB.
//! Messages are copied once in and once out, `len` bytes each, never the
//! whole buffer.

use coconut_abi::syscall::{CHANNEL_CAPACITY_MAX, CHANNEL_MSG_MAX, Error};

const MSG: usize = CHANNEL_MSG_MAX as usize;
const RING: usize = CHANNEL_CAPACITY_MAX as usize;

/// A channel's id: generation (high 16 bits) and index (low 16), so an id
/// kept after its channel was destroyed never names the channel that
/// reuses the index. Fits the 32-bit resource of a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelId(pub u32);

impl ChannelId {
    fn new(index: usize, generation: u16) -> Self {
        ChannelId((u32::from(generation) << 16) | (index as u32 & 0xffff))
    }

    fn index(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    fn generation(self) -> u16 {
        (self.0 >> 16) as u16
    }
}

/// Why a channel operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChanError {
    /// No live channel has this id.
    NoSuchChannel,
    /// capacity or msg_max out of range at creation.
    InvalidArgument,
    /// A zero-length message.
    EmptyMessage,
    /// Longer than the channel's `msg_max`.
    TooLong,
    /// The queue holds `capacity` messages.
    Full,
    /// The queue is empty.
    Empty,
    /// The next message has `len` bytes, more than the buffer; it stays queued.
    MessageTooBig { len: usize },
    /// No free channel or not enough unreserved buffers.
    NoMemory,
}

impl From<ChanError> for Error {
    fn from(e: ChanError) -> Error {
        match e {
            ChanError::NoSuchChannel => Error::Closed,
            ChanError::InvalidArgument | ChanError::EmptyMessage | ChanError::TooLong => {
                Error::InvalidArgument
            }
            ChanError::Full | ChanError::Empty => Error::WouldBlock,
            ChanError::MessageTooBig { .. } => Error::MessageTooBig,
            ChanError::NoMemory => Error::NoMemory,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Chan {
    live: bool,
    generation: u16,
    capacity: u8,
    msg_max: u16,
    head: u8,
    len: u8,
    ring: [u16; RING],
}

const DEAD: Chan = Chan {
    live: false,
    generation: 0,
    capacity: 0,
    msg_max: 0,
    head: 0,
    len: 0,
    ring: [0; RING],
};

/// `CHANNELS` channels sharing `SLOTS` message buffers (see the module docs).
#[derive(Debug)]
pub struct ChannelPool<const CHANNELS: usize, const SLOTS: usize> {
    chans: [Chan; CHANNELS],
    data: [[u8; MSG]; SLOTS],
    lens: [u16; SLOTS],
    /// Stack of returned buffers (`free[..free_top]`).
    free: [u16; SLOTS],
    free_top: usize,
    /// Buffers `fresh..SLOTS` were never used.
    fresh: usize,
    reserved: usize,
}

impl<const CHANNELS: usize, const SLOTS: usize> Default for ChannelPool<CHANNELS, SLOTS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CHANNELS: usize, const SLOTS: usize> ChannelPool<CHANNELS, SLOTS> {
    const FITS: () = assert!(
        CHANNELS <= 0x1_0000 && SLOTS <= 0x1_0000,
        "indices are 16-bit"
    );

    /// An empty pool (`const`, for a static).
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::FITS;
        ChannelPool {
            chans: [DEAD; CHANNELS],
            data: [[0; MSG]; SLOTS],
            lens: [0; SLOTS],
            free: [0; SLOTS],
            free_top: 0,
            fresh: 0,
            reserved: 0,
        }
    }

    /// Creates a channel of `capacity` (1..=CHANNEL_CAPACITY_MAX) messages of
    /// at most `msg_max` (1..=CHANNEL_MSG_MAX) bytes.
    pub fn create(&mut self, capacity: u64, msg_max: u64) -> Result<ChannelId, ChanError> {
        if !(1..=CHANNEL_CAPACITY_MAX).contains(&capacity)
            || !(1..=CHANNEL_MSG_MAX).contains(&msg_max)
        {
            return Err(ChanError::InvalidArgument);
        }
        let capacity = capacity as usize;
        let reserved = self.reserved.saturating_add(capacity);
        if reserved > SLOTS {
            return Err(ChanError::NoMemory);
        }
        let (index, chan) = self
            .chans
            .iter_mut()
            .enumerate()
            .find(|(_, c)| !c.live)
            .ok_or(ChanError::NoMemory)?;
        let generation = chan.generation.wrapping_add(1);
        *chan = Chan {
            live: true,
            generation,
            capacity: capacity as u8,
            msg_max: msg_max as u16,
            ..DEAD
        };
        self.reserved = reserved;
        Ok(ChannelId::new(index, generation))
    }

    /// Destroys a channel; returns how many queued messages were discarded.
    pub fn destroy(&mut self, id: ChannelId) -> Result<usize, ChanError> {
        let mut dropped = 0usize;
        while self.pop(id)?.is_some() {
            dropped = dropped.saturating_add(1);
        }
        let chan = self.chan_mut(id)?;
        let capacity = usize::from(chan.capacity);
        chan.live = false;
        self.reserved = self.reserved.saturating_sub(capacity);
        Ok(dropped)
    }

    /// Queues a copy of `msg`.
    pub fn try_send(&mut self, id: ChannelId, msg: &[u8]) -> Result<(), ChanError> {
        let chan = *self.chan(id)?;
        if msg.is_empty() {
            return Err(ChanError::EmptyMessage);
        }
        if msg.len() > usize::from(chan.msg_max) {
            return Err(ChanError::TooLong);
        }
        if chan.len >= chan.capacity {
            return Err(ChanError::Full);
        }
        // Reservation guarantees a free buffer; fail closed if not.
        let (slot, top, fresh) = match self.free_top.checked_sub(1) {
            Some(top) => (
                *self.free.get(top).ok_or(ChanError::NoMemory)?,
                top,
                self.fresh,
            ),
            None if self.fresh < SLOTS => (self.fresh as u16, 0, self.fresh.saturating_add(1)),
            None => return Err(ChanError::NoMemory),
        };
        let buf = self
            .data
            .get_mut(usize::from(slot))
            .and_then(|b| b.get_mut(..msg.len()))
            .ok_or(ChanError::NoMemory)?;
        buf.copy_from_slice(msg);
        if let Some(l) = self.lens.get_mut(usize::from(slot)) {
            *l = msg.len() as u16;
        }
        self.free_top = top;
        self.fresh = fresh;
        let chan = self.chan_mut(id)?;
        let tail = usize::from(chan.head).saturating_add(usize::from(chan.len)) % RING;
        if let Some(e) = chan.ring.get_mut(tail) {
            *e = slot;
        }
        chan.len = chan.len.saturating_add(1);
        Ok(())
    }

    /// Takes the oldest message into `buf` and returns its length. A
    /// message longer than `buf` is not taken: `MessageTooBig { len }`.
    pub fn try_recv(&mut self, id: ChannelId, buf: &mut [u8]) -> Result<usize, ChanError> {
        let len = self.peek_len(id)?.ok_or(ChanError::Empty)?;
        if len > buf.len() {
            return Err(ChanError::MessageTooBig { len });
        }
        let slot = self.head_slot(id)?;
        let src = self
            .data
            .get(slot)
            .and_then(|d| d.get(..len))
            .ok_or(ChanError::NoSuchChannel)?;
        let dst = buf.get_mut(..len).ok_or(ChanError::MessageTooBig { len })?;
        dst.copy_from_slice(src);
        self.pop(id)?;
        Ok(len)
    }

    /// The oldest message's length, `None` when empty.
    pub fn peek_len(&self, id: ChannelId) -> Result<Option<usize>, ChanError> {
        let chan = self.chan(id)?;
        if chan.len == 0 {
            return Ok(None);
        }
        let slot = self.head_slot(id)?;
        Ok(self.lens.get(slot).map(|&l| usize::from(l)))
    }

    /// Messages queued.
    pub fn len(&self, id: ChannelId) -> Result<usize, ChanError> {
        self.chan(id).map(|c| usize::from(c.len))
    }

    /// Whether a send would fail with `Full`.
    pub fn is_full(&self, id: ChannelId) -> Result<bool, ChanError> {
        self.chan(id).map(|c| c.len >= c.capacity)
    }

    /// `(capacity, msg_max)`.
    pub fn limits(&self, id: ChannelId) -> Result<(usize, usize), ChanError> {
        self.chan(id)
            .map(|c| (usize::from(c.capacity), usize::from(c.msg_max)))
    }

    /// Buffers not reserved by any channel.
    pub fn unreserved(&self) -> usize {
        SLOTS.saturating_sub(self.reserved)
    }

    fn chan(&self, id: ChannelId) -> Result<&Chan, ChanError> {
        self.chans
            .get(id.index())
            .filter(|c| c.live && c.generation == id.generation())
            .ok_or(ChanError::NoSuchChannel)
    }

    fn chan_mut(&mut self, id: ChannelId) -> Result<&mut Chan, ChanError> {
        self.chans
            .get_mut(id.index())
            .filter(|c| c.live && c.generation == id.generation())
            .ok_or(ChanError::NoSuchChannel)
    }

    fn head_slot(&self, id: ChannelId) -> Result<usize, ChanError> {
        let chan = self.chan(id)?;
        chan.ring
            .get(usize::from(chan.head))
            .map(|&s| usize::from(s))
            .ok_or(ChanError::NoSuchChannel)
    }

    /// Drops the oldest message, returning its buffer to the free stack.
    fn pop(&mut self, id: ChannelId) -> Result<Option<()>, ChanError> {
        let chan = self.chan_mut(id)?;
        if chan.len == 0 {
            return Ok(None);
        }
        let slot = chan.ring.get(usize::from(chan.head)).copied().unwrap_or(0);
        chan.head = (usize::from(chan.head).saturating_add(1) % RING) as u8;
        chan.len = chan.len.saturating_sub(1);
        if let Some(f) = self.free.get_mut(self.free_top) {
            *f = slot;
            self.free_top = self.free_top.saturating_add(1);
        }
        Ok(Some(()))
    }
}

#[cfg(test)]
mod tests;
