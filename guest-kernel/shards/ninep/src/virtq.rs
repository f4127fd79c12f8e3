//! One split virtqueue (virtio 1.x §2.7) in DMA memory, driven
//! synchronously: one request chain in flight at a time (a readable
//! descriptor with the 9P request, a writable one for the reply), waited
//! for on the IRQ channel. It is the `secure9p` client's [`Transport`].
//!
//! The device writes the used ring, so everything read from it is checked
//! before use: the used index may advance by exactly the one chain in
//! flight, the element must name that chain's head, and the length must
//! fit the reply buffer and agree with the 9P frame's own size field.
//! A device that breaks these rules gets an error, never a wild access.

use core::fmt;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{Ordering, fence};

use coconut_rt::alloc::vec::Vec;
use coconut_rt::{Error as SysError, sys};
use secure9p::client::Transport;

use crate::mmio::{Window, reg, status};

/// Entries in the queue (the device offers up to 128; two are used).
pub const QUEUE_LEN: u16 = 16;
/// The msize the driver proposes; request and reply buffers are this big.
pub const MSIZE: usize = 8192;
const PAGE: usize = 4096;
/// Layout of the DMA run: rings in page 0, then the two buffers.
const DESC_OFF: usize = 0;
const AVAIL_OFF: usize = 256;
const USED_OFF: usize = 512;
const REQ_OFF: usize = PAGE;
const REPLY_OFF: usize = PAGE + MSIZE;
/// Pages of the DMA run.
pub const DMA_PAGES: u64 = ((PAGE + 2 * MSIZE) / PAGE) as u64;
const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
/// How long one request may take by default before the driver gives up.
pub const REPLY_TIMEOUT_NS: u64 = 10_000_000_000;
/// One wait on the IRQ channel (the used ring is rechecked after each).
const WAIT_SLICE_NS: u64 = 500_000_000;

/// What went wrong on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// A request larger than the buffer.
    TooBig(usize),
    /// `send` while a request is in flight, or `recv` with none.
    Sequence,
    /// The used index moved by something other than the one chain in flight.
    BadUsedIndex { last: u16, now: u16 },
    /// The used element names a descriptor that is not our chain's head.
    BadUsedId(u32),
    /// The used length is larger than the reply buffer or shorter than a
    /// 9P header, or disagrees with the frame's size field.
    BadUsedLen(u32),
    /// The device set DEVICE_NEEDS_RESET.
    NeedsReset,
    /// No reply within the timeout.
    Timeout,
    /// A system call failed.
    Sys(SysError),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::TooBig(n) => {
                write!(f, "request of {n} bytes exceeds the {MSIZE}-byte buffer")
            }
            QueueError::Sequence => write!(f, "request/reply out of sequence"),
            QueueError::BadUsedIndex { last, now } => {
                write!(
                    f,
                    "device moved the used index from {last} to {now} with one chain in flight"
                )
            }
            QueueError::BadUsedId(id) => {
                write!(f, "device returned descriptor {id}, not the chain's head")
            }
            QueueError::BadUsedLen(n) => write!(f, "device reported a bad reply length {n}"),
            QueueError::NeedsReset => write!(f, "device needs reset"),
            QueueError::Timeout => write!(f, "no reply within the timeout"),
            QueueError::Sys(e) => write!(f, "system call: {e:?}"),
        }
    }
}

impl From<SysError> for QueueError {
    fn from(e: SysError) -> Self {
        QueueError::Sys(e)
    }
}

/// Counters the driver reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Requests completed.
    pub completions: u64,
    /// IRQ notifications received on the channel (each acked).
    pub notifications: u64,
    /// Completions found only after waiting for a notification.
    pub via_irq: u64,
    /// Completions found while polling before blocking.
    pub via_spin: u64,
}

/// The queue and the handles it needs.
#[derive(Debug)]
pub struct Queue {
    window: Window,
    /// Virtual and guest-physical address of the DMA run.
    va: usize,
    pa: u64,
    irq: u64,
    chan: u64,
    avail_idx: u16,
    last_used: u16,
    in_flight: bool,
    /// Longest wait for one reply.
    pub reply_timeout_ns: u64,
    /// How often to poll the used ring from ring 3 before blocking (0:
    /// block at once). A system call costs hundreds of microseconds of
    /// emulated ring 0 on kvm-pvm, while polling in ring 3 runs natively
    /// (`rdtsc` is not available: CR4.TSD is set, hence a count, not a time).
    pub spin_polls: u64,
    pub stats: Stats,
}

impl Queue {
    /// Programs queue 0 of `window` with the DMA run at `va`/`pa`
    /// ([`DMA_PAGES`] pages, zeroed) and returns the queue; the caller
    /// sets DRIVER_OK afterwards.
    ///
    /// # Safety
    /// `va` must be a live, writable mapping of [`DMA_PAGES`] pages whose
    /// guest-physical address is `pa`, used by nothing else.
    pub unsafe fn setup(
        window: Window,
        va: usize,
        pa: u64,
        irq: u64,
        chan: u64,
    ) -> Result<Queue, &'static str> {
        window.write(reg::QUEUE_SEL, 0);
        if window.read(reg::QUEUE_READY) != 0 {
            return Err("queue 0 is already ready");
        }
        let max = window.read(reg::QUEUE_NUM_MAX);
        if max < u32::from(QUEUE_LEN) {
            return Err("queue 0 is too small (or absent)");
        }
        window.write(reg::QUEUE_NUM, u32::from(QUEUE_LEN));
        window.write_addr(
            reg::QUEUE_DESC_LOW,
            reg::QUEUE_DESC_HIGH,
            pa + DESC_OFF as u64,
        );
        window.write_addr(
            reg::QUEUE_DRIVER_LOW,
            reg::QUEUE_DRIVER_HIGH,
            pa + AVAIL_OFF as u64,
        );
        window.write_addr(
            reg::QUEUE_DEVICE_LOW,
            reg::QUEUE_DEVICE_HIGH,
            pa + USED_OFF as u64,
        );
        window.write(reg::QUEUE_READY, 1);
        if window.read(reg::QUEUE_READY) != 1 {
            return Err("device did not accept queue 0");
        }
        Ok(Queue {
            window,
            va,
            pa,
            irq,
            chan,
            avail_idx: 0,
            last_used: 0,
            in_flight: false,
            reply_timeout_ns: REPLY_TIMEOUT_NS,
            spin_polls: 0,
            stats: Stats::default(),
        })
    }

    /// The window (for status checks by the caller).
    pub fn window(&self) -> &Window {
        &self.window
    }

    fn ptr<T>(&self, off: usize) -> *mut T {
        (self.va + off) as *mut T
    }

    fn write_desc(&self, i: usize, addr: u64, len: u32, flags: u16, next: u16) {
        let d = DESC_OFF + i * 16;
        // SAFETY: descriptors 0 and 1 lie in page 0 of the DMA run
        // (`setup`'s contract); the fields are naturally aligned.
        unsafe {
            write_volatile(self.ptr::<u64>(d), addr);
            write_volatile(self.ptr::<u32>(d + 8), len);
            write_volatile(self.ptr::<u16>(d + 12), flags);
            write_volatile(self.ptr::<u16>(d + 14), next);
        }
    }

    /// Handles one IRQ notification: acknowledges the device's interrupt
    /// status and unmasks the line.
    fn on_notification(&mut self) -> Result<(), QueueError> {
        self.stats.notifications += 1;
        let isr = self.window.read(reg::INTERRUPT_STATUS);
        if isr != 0 {
            self.window.write(reg::INTERRUPT_ACK, isr);
        }
        sys::irq_ack(self.irq)?;
        if isr & 2 != 0 && self.window.status() & status::DEVICE_NEEDS_RESET != 0 {
            return Err(QueueError::NeedsReset);
        }
        Ok(())
    }

    /// The used ring's entry for our chain, if the device returned it.
    fn poll_used(&mut self) -> Result<Option<u32>, QueueError> {
        fence(Ordering::SeqCst);
        // SAFETY: used.idx is at USED_OFF + 2 in page 0 of the DMA run.
        let now = unsafe { read_volatile(self.ptr::<u16>(USED_OFF + 2)) };
        if now == self.last_used {
            return Ok(None);
        }
        if now != self.last_used.wrapping_add(1) {
            return Err(QueueError::BadUsedIndex {
                last: self.last_used,
                now,
            });
        }
        fence(Ordering::SeqCst);
        let slot = usize::from(self.last_used % QUEUE_LEN);
        let elem = USED_OFF + 4 + slot * 8;
        // SAFETY: `slot < QUEUE_LEN`, so the element lies inside the used
        // ring in page 0 (512 + 4 + 16 * 8 < 4096).
        let (id, len) = unsafe {
            (
                read_volatile(self.ptr::<u32>(elem)),
                read_volatile(self.ptr::<u32>(elem + 4)),
            )
        };
        self.last_used = now;
        if id != 0 {
            return Err(QueueError::BadUsedId(id));
        }
        Ok(Some(len))
    }

    /// Waits for the chain in flight; returns the used length.
    ///
    /// The IOAPIC line stays masked from an interrupt until its `irq_ack`,
    /// and an edge that arrives while it is masked is lost. So before
    /// blocking, every queued notification is taken and acknowledged (which
    /// unmasks the line) and the used ring is polled once more: a completion
    /// that raced the acknowledgement is seen there, a later one raises a
    /// fresh interrupt that wakes the wait.
    fn wait_used(&mut self) -> Result<u32, QueueError> {
        if let Some(len) = self.poll_used()? {
            self.stats.completions += 1;
            return Ok(len);
        }
        for _ in 0..self.spin_polls {
            core::hint::spin_loop();
            if let Some(len) = self.poll_used()? {
                self.stats.completions += 1;
                self.stats.via_spin += 1;
                return Ok(len);
            }
        }
        self.drain_notifications()?;
        let start = sys::time()?;
        let mut woken = false;
        loop {
            if let Some(len) = self.poll_used()? {
                self.stats.completions += 1;
                if woken {
                    self.stats.via_irq += 1;
                }
                return Ok(len);
            }
            if sys::time()?.saturating_sub(start) > self.reply_timeout_ns {
                return Err(QueueError::Timeout);
            }
            let mut note = [0u8; 8];
            match sys::channel_recv_timeout(self.chan, &mut note, WAIT_SLICE_NS) {
                Ok(_) => {
                    woken = true;
                    self.on_notification()?;
                }
                Err(SysError::TimedOut) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Drains notifications that arrived while nothing waited (non-blocking).
    pub fn drain_notifications(&mut self) -> Result<(), QueueError> {
        let mut note = [0u8; 8];
        loop {
            match sys::channel_recv_timeout(self.chan, &mut note, 0) {
                Ok(_) => self.on_notification()?,
                Err(SysError::WouldBlock | SysError::TimedOut) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits up to `ns` on the IRQ channel (handling any notification):
    /// the heartbeat's pacing, which also keeps the line acknowledged.
    pub fn idle(&mut self, ns: u64) -> Result<(), QueueError> {
        let start = sys::time()?;
        loop {
            let spent = sys::time()?.saturating_sub(start);
            if spent >= ns {
                return Ok(());
            }
            let mut note = [0u8; 8];
            match sys::channel_recv_timeout(self.chan, &mut note, ns - spent) {
                Ok(_) => self.on_notification()?,
                Err(SysError::TimedOut) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Transport for Queue {
    type Error = QueueError;

    fn send(&mut self, frame: &[u8]) -> Result<(), QueueError> {
        if self.in_flight {
            return Err(QueueError::Sequence);
        }
        if frame.len() > MSIZE {
            return Err(QueueError::TooBig(frame.len()));
        }
        // SAFETY: the request buffer is MSIZE bytes at REQ_OFF inside the
        // DMA run (`setup`'s contract); `frame.len() <= MSIZE`.
        unsafe {
            core::ptr::copy_nonoverlapping(frame.as_ptr(), self.ptr::<u8>(REQ_OFF), frame.len());
        }
        self.write_desc(
            0,
            self.pa + REQ_OFF as u64,
            frame.len() as u32,
            DESC_F_NEXT,
            1,
        );
        self.write_desc(1, self.pa + REPLY_OFF as u64, MSIZE as u32, DESC_F_WRITE, 0);
        let slot = usize::from(self.avail_idx % QUEUE_LEN);
        // SAFETY: avail.ring[slot] (slot < QUEUE_LEN) and avail.idx lie in
        // page 0 of the DMA run; the barrier orders the descriptors and the
        // ring entry before the index the device reads.
        unsafe {
            write_volatile(self.ptr::<u16>(AVAIL_OFF + 4 + slot * 2), 0);
            fence(Ordering::SeqCst);
            self.avail_idx = self.avail_idx.wrapping_add(1);
            write_volatile(self.ptr::<u16>(AVAIL_OFF + 2), self.avail_idx);
        }
        fence(Ordering::SeqCst);
        self.in_flight = true;
        self.window.write(reg::QUEUE_NOTIFY, 0);
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<(), QueueError> {
        if !self.in_flight {
            return Err(QueueError::Sequence);
        }
        let len = self.wait_used();
        self.in_flight = false;
        let len = len?;
        let n = len as usize;
        if !(7..=MSIZE).contains(&n) {
            return Err(QueueError::BadUsedLen(len));
        }
        let mut reply = [0u8; 4];
        // SAFETY: the reply buffer is MSIZE bytes at REPLY_OFF; 4 <= n <= MSIZE.
        unsafe { core::ptr::copy_nonoverlapping(self.ptr::<u8>(REPLY_OFF), reply.as_mut_ptr(), 4) };
        let size = u32::from_le_bytes(reply) as usize;
        if size < 7 || size > n {
            return Err(QueueError::BadUsedLen(len));
        }
        buf.resize(size, 0);
        // SAFETY: `size <= n <= MSIZE` bytes of the reply buffer, into a
        // vector just resized to `size`.
        unsafe {
            core::ptr::copy_nonoverlapping(self.ptr::<u8>(REPLY_OFF), buf.as_mut_ptr(), size)
        };
        Ok(())
    }
}
