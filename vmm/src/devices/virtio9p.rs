//! The VM process's end of the control plane: the virtio-9p device in a
//! virtio-mmio window, bridged to the supervisor over an inherited socket.
//!
//! The device model (queues, chains, tags) lives in `coco-virtio9p`; this
//! file wires it to KVM and to the bridge:
//!
//! * register accesses arrive from vCPU threads through the MMIO bus;
//! * `QueueNotify` is an ioeventfd, so a guest's kick costs no exit to user
//!   space: the event loop wakes, takes the frames out of the queue and
//!   writes them to the bridge socket;
//! * replies arrive on the bridge socket (the event loop cuts them into
//!   frames by their size field), are written into the guest's buffers, and
//!   the used-buffer interrupt goes out through an irqfd.
//!
//! The supervisor on the other end knows which guest owns the socket, so the
//! guest's identity never depends on anything the guest says. If the bridge
//! goes away (supervisor gone), every pending and every later request is
//! answered `Rlerror(EIO)` by the device itself: the guest sees errors, not
//! a hang, and the VM keeps running.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coco_virtio9p::mmio::{MmioTransport, reg};
use coco_virtio9p::{Interrupt, MmioEvent, Virtio9p};

use crate::devices::pci::PciDevice;
use crate::devices::virtio_pci::PciFunction;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use secure9p::errno;
use secure9p::limits::{HEADER_LEN, MAX_MSIZE};
use secure9p::wire::{self, Response};
use tracing::{debug, trace, warn};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use crate::devices::bus::BusDevice;

/// How the guest reaches the device.
#[derive(Debug)]
enum Transport {
    /// A virtio-mmio window (guest-kernel; Linux through the DSDT).
    Mmio(Box<MmioTransport<Virtio9p>>),
    /// A virtio-pci function with MSI-X (Linux).
    Pci(Box<PciFunction>),
}

impl Transport {
    fn is_active(&self) -> bool {
        match self {
            Transport::Mmio(t) => t.is_active(),
            Transport::Pci(f) => f.transport().is_active(),
        }
    }

    fn device(&self) -> &Virtio9p {
        match self {
            Transport::Mmio(t) => t.device(),
            Transport::Pci(f) => f.transport().device(),
        }
    }

    fn device_mut(&mut self) -> &mut Virtio9p {
        match self {
            Transport::Mmio(t) => t.device_mut(),
            Transport::Pci(f) => f.transport_mut().device_mut(),
        }
    }
}

/// The device, shared by the MMIO bus (vCPU threads) and the event loop.
#[derive(Debug)]
pub struct NinePDevice {
    guest: String,
    transport: Transport,
    memory: GuestMemoryMmap,
    bridge: Option<UnixStream>,
    round_trips: Option<RoundTrips>,
}

/// How long the supervisor took to answer, per request type, measured from
/// forwarding a request to delivering its reply (socket, supervisor, NineDoor
/// and back; not the guest's own time). Logged when the device goes away, at
/// `debug` level: `COCO_LOG=coco_vmm::devices::virtio9p=debug`.
#[derive(Debug, Default)]
struct RoundTrips {
    /// Forwarded and not yet answered: tag → (request type, when).
    open: HashMap<u16, (u8, Instant)>,
    /// Request type → (count, total, longest).
    done: BTreeMap<u8, (u64, Duration, Duration)>,
}

impl RoundTrips {
    /// At most this many requests are tracked at once (a guest could use
    /// every tag); beyond it requests go unmeasured.
    const MAX_OPEN: usize = 1024;

    fn forwarded(&mut self, frame: &[u8]) {
        if let (Some(&ty), Some(&[lo, hi])) = (frame.get(4), frame.get(5..7))
            && self.open.len() < Self::MAX_OPEN
        {
            self.open
                .insert(u16::from_le_bytes([lo, hi]), (ty, Instant::now()));
        }
    }

    fn answered(&mut self, frame: &[u8]) {
        let Some(&[lo, hi]) = frame.get(5..7) else {
            return;
        };
        if let Some((ty, since)) = self.open.remove(&u16::from_le_bytes([lo, hi])) {
            let took = since.elapsed();
            let e = self.done.entry(ty).or_default();
            e.0 = e.0.saturating_add(1);
            e.1 = e.1.saturating_add(took);
            e.2 = e.2.max(took);
        }
    }

    /// `type 116: n=500 mean=120.3µs max=900.1µs; ...`
    fn summary(&self) -> String {
        self.done
            .iter()
            .map(|(ty, (n, total, max))| {
                let mean = total.as_secs_f64() * 1e6 / (*n).max(1) as f64;
                format!(
                    "type {ty}: n={n} mean={mean:.1}µs max={:.1}µs",
                    max.as_secs_f64() * 1e6
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Drop for NinePDevice {
    fn drop(&mut self) {
        if let Some(rt) = self.round_trips.as_ref().filter(|rt| !rt.done.is_empty()) {
            debug!(guest = %self.guest, "virtio-9p supervisor round trips: {}", rt.summary());
        }
    }
}

fn lerror(tag: u16, ecode: u32) -> Vec<u8> {
    let mut out = Vec::new();
    // Encoding an Rlerror cannot fail; an empty frame would be refused by
    // `complete` as short, which is also safe.
    let _ = wire::encode_response(tag, &Response::Lerror { ecode }, &mut out);
    out
}

impl NinePDevice {
    /// A virtio-mmio device for `guest` exporting `mount_tag`, raising `irq`,
    /// forwarding to `bridge`.
    pub fn new(
        guest: &str,
        mount_tag: &str,
        memory: GuestMemoryMmap,
        irq: Arc<Interrupt>,
        bridge: UnixStream,
    ) -> Self {
        let transport = Transport::Mmio(Box::new(MmioTransport::new(
            Virtio9p::new(mount_tag, irq.clone()),
            irq,
        )));
        Self::with_transport(guest, transport, memory, bridge)
    }

    /// The same device as a PCI function (`function` wraps the device).
    pub fn pci(
        guest: &str,
        function: PciFunction,
        memory: GuestMemoryMmap,
        bridge: UnixStream,
    ) -> Self {
        Self::with_transport(guest, Transport::Pci(Box::new(function)), memory, bridge)
    }

    fn with_transport(
        guest: &str,
        transport: Transport,
        memory: GuestMemoryMmap,
        bridge: UnixStream,
    ) -> Self {
        NinePDevice {
            guest: guest.to_string(),
            transport,
            memory,
            bridge: Some(bridge),
            // Measured only when someone will read it: the bookkeeping is a
            // map update and two clock reads per request.
            round_trips: tracing::enabled!(tracing::Level::DEBUG).then(RoundTrips::default),
        }
    }

    /// Takes every queued request out and forwards it (or answers it with
    /// EIO when the bridge is down).
    pub fn pump(&mut self) {
        if !self.transport.is_active() {
            return;
        }
        let mut frames = Vec::new();
        if let Err(e) = self
            .transport
            .device_mut()
            .process(&self.memory, &mut |f| frames.push(f))
        {
            warn!(guest = %self.guest, "{e}");
        }
        for frame in frames {
            trace!(guest = %self.guest, "-> {}", describe_frame(&frame));
            if let Some(rt) = self.round_trips.as_mut() {
                rt.forwarded(&frame);
            }
            let sent = match self.bridge.as_mut() {
                Some(bridge) => bridge.write_all(&frame).is_ok(),
                None => false,
            };
            if !sent {
                self.bridge_down("writing to the supervisor failed");
                // Forwarded frames always carry a whole header.
                if let Some(&[lo, hi]) = frame.get(5..7) {
                    self.deliver(&lerror(u16::from_le_bytes([lo, hi]), errno::EIO));
                }
            }
        }
    }

    /// Delivers one reply frame from the supervisor.
    pub fn deliver(&mut self, frame: &[u8]) {
        trace!(guest = %self.guest, "<- {}", describe_frame(frame));
        if let Some(rt) = self.round_trips.as_mut() {
            rt.answered(frame);
        }
        match self.transport.device_mut().complete(&self.memory, frame) {
            Ok(()) => {}
            Err(coco_virtio9p::CompleteError::UnknownTag(tag)) => {
                // A reply to a request the guest reset away or flushed.
                debug!(guest = %self.guest, tag, "reply for no pending request dropped");
            }
            Err(e) => warn!(guest = %self.guest, "{e}"),
        }
    }

    /// The supervisor is gone: answer everything pending with EIO.
    fn bridge_down(&mut self, why: &str) {
        if self.bridge.take().is_some() {
            warn!(guest = %self.guest, "virtio-9p bridge down ({why}); requests now fail with EIO");
        }
        let tags = self.transport.device().pending_tags();
        for tag in tags {
            self.deliver(&lerror(tag, errno::EIO));
        }
    }
}

impl BusDevice for NinePDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        match &mut self.transport {
            Transport::Mmio(t) => t.read(offset, data),
            Transport::Pci(f) => f.bar_read(offset, data),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let event = match &mut self.transport {
            Transport::Mmio(t) => t.write(&self.memory, offset, data),
            Transport::Pci(f) => f.bar_write(&self.memory, offset, data),
        };
        match event {
            // Without an ioeventfd (or for a guest that writes the register
            // with an access size KVM does not match) the notify lands here.
            MmioEvent::Notify(_) => self.pump(),
            MmioEvent::ActivationRefused => {
                warn!(guest = %self.guest, "virtio-9p: DRIVER_OK refused (bad queue setup)")
            }
            MmioEvent::Activated => debug!(guest = %self.guest, "virtio-9p activated"),
            MmioEvent::Reset | MmioEvent::None => {}
        }
    }
}

impl PciDevice for NinePDevice {
    fn config_read(&mut self, reg: usize) -> u32 {
        match &self.transport {
            Transport::Pci(f) => f.config_read(reg),
            Transport::Mmio(_) => u32::MAX,
        }
    }

    fn config_write(&mut self, offset: usize, data: &[u8]) {
        if let Transport::Pci(f) = &mut self.transport {
            f.config_write(offset, data);
        }
    }
}

/// Event-loop side: the notify and ack ioeventfds and the bridge socket.
#[derive(Debug)]
pub struct NinePEvents {
    device: Arc<Mutex<NinePDevice>>,
    notify: EventFd,
    ack: Option<EventFd>,
    irq: Arc<Interrupt>,
    reader: Option<UnixStream>,
    /// Bytes read from the bridge; `buf[..filled]` holds what is not yet
    /// delivered.
    buf: Vec<u8>,
    filled: usize,
}

impl NinePEvents {
    /// Events for `device`: `notify` is the ioeventfd on `QueueNotify`,
    /// `ack` the one on virtio-mmio's `InterruptACK` (see
    /// [`Interrupt::posted_ack`]; virtio-pci has none),
    /// `irq` the device's interrupt, `reader` a clone of the bridge socket.
    pub fn new(
        device: Arc<Mutex<NinePDevice>>,
        notify: EventFd,
        ack: Option<EventFd>,
        irq: Arc<Interrupt>,
        reader: UnixStream,
    ) -> Self {
        NinePEvents {
            device,
            notify,
            ack,
            irq,
            reader: Some(reader),
            buf: vec![0; 2 * MAX_MSIZE as usize],
            filled: 0,
        }
    }

    /// Reads what the socket has (one read per readiness event; the loop is
    /// level-triggered) and delivers every whole frame. `false` when the
    /// bridge is closed or broken.
    fn read_replies(&mut self) -> bool {
        let Some(reader) = self.reader.as_mut() else {
            return false;
        };
        // Read straight into the buffer's free tail. The buffer is allocated
        // (and zeroed) once: two largest frames, so a whole reply always fits
        // behind a partial one.
        let got = match self.buf.get_mut(self.filled..) {
            Some(tail) if !tail.is_empty() => reader.read(tail),
            _ => return false,
        };
        let n = match got {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        self.filled += n;
        let mut start = 0;
        let alive = loop {
            let Some(&[a, b, c, d]) = self
                .buf
                .get(start..start + 4)
                .filter(|_| start + 4 <= self.filled)
            else {
                break true;
            };
            let size = u32::from_le_bytes([a, b, c, d]) as usize;
            if !(HEADER_LEN..=MAX_MSIZE as usize).contains(&size) {
                // The supervisor never sends this; treat the bridge as broken.
                break false;
            }
            if start + size > self.filled {
                break true;
            }
            let Some(frame) = self.buf.get(start..start + size) else {
                break false;
            };
            if let Ok(mut dev) = self.device.lock() {
                dev.deliver(frame);
            }
            start += size;
        };
        // Keep the partial frame (usually nothing) at the front.
        self.buf.copy_within(start..self.filled, 0);
        self.filled -= start;
        alive
    }
}

/// Where a `NinePEvents` source is registered (the event-manager data word).
const NOTIFY: u32 = 1;
const BRIDGE: u32 = 2;
const ACK: u32 = 3;

impl MutEventSubscriber for NinePEvents {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        match events.data() {
            NOTIFY => {
                let _ = self.notify.read();
                if let Ok(mut dev) = self.device.lock() {
                    dev.pump();
                }
            }
            ACK => {
                if let Some(ack) = &self.ack {
                    let _ = ack.read();
                }
                self.irq.posted_ack();
            }
            BRIDGE => {
                if events.event_set().contains(EventSet::IN) && self.read_replies() {
                    return;
                }
                if let Some(reader) = self.reader.take() {
                    let _ = ops.remove(Events::with_data(&reader, BRIDGE, EventSet::IN));
                }
                if let Ok(mut dev) = self.device.lock() {
                    dev.bridge_down("the supervisor closed the bridge");
                }
            }
            _ => {}
        }
    }

    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::with_data(&self.notify, NOTIFY, EventSet::IN)) {
            warn!("virtio-9p: cannot watch the notify eventfd: {e:?}");
        }
        if let Some(ack) = &self.ack
            && let Err(e) = ops.add(Events::with_data(ack, ACK, EventSet::IN))
        {
            warn!("virtio-9p: cannot watch the ack eventfd: {e:?}");
        }
        if let Some(reader) = &self.reader
            && let Err(e) = ops.add(Events::with_data(reader, BRIDGE, EventSet::IN))
        {
            warn!("virtio-9p: cannot watch the bridge socket: {e:?}");
        }
    }
}

/// Checks that an inherited descriptor is a stream socket and takes it.
pub fn bridge_from_fd(fd: OwnedFd) -> std::io::Result<UnixStream> {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `ty`, a live local
    // of that size; `fd` is a descriptor this process owns.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if ty != libc::SOCK_STREAM {
        return Err(std::io::Error::other("not a stream socket"));
    }
    Ok(UnixStream::from(fd))
}

/// The register the notify ioeventfd watches, relative to the window.
pub const NOTIFY_OFFSET: u64 = reg::QUEUE_NOTIFY;
/// The register the ack ioeventfd watches, relative to the window.
pub const ACK_OFFSET: u64 = reg::INTERRUPT_ACK;

/// One line about a 9P frame for `COCO_LOG=coco_vmm::devices::virtio9p=trace`:
/// type, tag and size, plus offset and count of `Tread`/`Twrite`, the byte
/// count of `Rread`/`Rwrite` and the errno of `Rlerror`. Reads only the
/// fixed-position fields, so any byte string is safe to describe.
fn describe_frame(frame: &[u8]) -> String {
    let u16_at = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        frame
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        frame.get(at..at + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    let (Some(size), Some(&ty), Some(tag)) = (u32_at(0), frame.get(4), u16_at(5)) else {
        return format!("short frame ({} bytes)", frame.len());
    };
    let detail = match ty {
        116 | 118 => match (u32_at(7), u64_at(11), u32_at(19)) {
            (Some(fid), Some(offset), Some(count)) => {
                let name = if ty == 116 { "Tread" } else { "Twrite" };
                format!("{name} fid {fid} offset {offset} count {count}")
            }
            _ => "truncated Tread/Twrite".into(),
        },
        117 => format!("Rread {} bytes", u32_at(7).unwrap_or(0)),
        119 => format!("Rwrite {} bytes", u32_at(7).unwrap_or(0)),
        7 => format!("Rlerror {}", u32_at(7).unwrap_or(0)),
        108 => format!("Tflush oldtag {}", u16_at(7).unwrap_or(0)),
        109 => "Rflush".into(),
        other => format!("type {other}"),
    };
    format!("{detail} tag {tag} size {size}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> (NinePEvents, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let memory =
            GuestMemoryMmap::from_ranges(&[(vm_memory::GuestAddress(0), 1 << 16)]).unwrap();
        let irq = Arc::new(Interrupt::new(Box::new(|_| {})));
        let device = NinePDevice::new("t", "hive", memory, irq.clone(), ours.try_clone().unwrap());
        let notify = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let ev = NinePEvents::new(Arc::new(Mutex::new(device)), notify, None, irq, ours);
        (ev, theirs)
    }

    fn rclunk(tag: u16) -> Vec<u8> {
        let mut f = vec![7, 0, 0, 0, 121];
        f.extend_from_slice(&tag.to_le_bytes());
        f
    }

    #[test]
    fn replies_split_across_reads_are_reassembled_and_consumed() {
        let (mut ev, mut theirs) = events();
        let mut two = rclunk(1);
        two.extend(rclunk(2));
        // One and a half frames, then the rest.
        theirs.write_all(&two[..10]).unwrap();
        assert!(ev.read_replies());
        assert_eq!(ev.filled, 3, "the partial second frame is kept");
        theirs.write_all(&two[10..]).unwrap();
        assert!(ev.read_replies());
        assert_eq!(ev.filled, 0);
        // A largest-size reply after a partial header still fits.
        theirs.write_all(&[0xff, 0xff]).unwrap();
        assert!(ev.read_replies());
        assert_eq!(ev.filled, 2);
    }

    #[test]
    fn an_impossible_size_or_a_closed_bridge_ends_the_reader() {
        let (mut ev, mut theirs) = events();
        theirs.write_all(&[3, 0, 0, 0]).unwrap();
        assert!(!ev.read_replies(), "a frame shorter than a header");
        let (mut ev, theirs) = events();
        drop(theirs);
        assert!(!ev.read_replies(), "end of stream");
    }

    #[test]
    fn frames_are_described_by_their_fixed_fields() {
        let mut tread = vec![23, 0, 0, 0, 116, 5, 0, 9, 0, 0, 0];
        tread.extend_from_slice(&4096u64.to_le_bytes());
        tread.extend_from_slice(&65512u32.to_le_bytes());
        assert_eq!(
            describe_frame(&tread),
            "Tread fid 9 offset 4096 count 65512 tag 5 size 23"
        );
        let rread = [11, 0, 0, 0, 117, 5, 0, 0, 0, 0, 0];
        assert_eq!(describe_frame(&rread), "Rread 0 bytes tag 5 size 11");
        let lerror = [11, 0, 0, 0, 7, 1, 0, 29, 0, 0, 0];
        assert_eq!(describe_frame(&lerror), "Rlerror 29 tag 1 size 11");
        assert_eq!(describe_frame(&[1, 2]), "short frame (2 bytes)");
        assert_eq!(
            describe_frame(&[30, 0, 0, 0, 116, 0, 0, 1]),
            "truncated Tread/Twrite tag 0 size 30"
        );
    }
}
