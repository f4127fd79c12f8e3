//! The virtio-9p device against a guest driver written out by hand in guest
//! memory (virtio-queue's mock rings): frames out, replies back, and every
//! way a hostile guest can get a chain or a frame wrong.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use coco_virtio9p::{CompleteError, Interrupt, Virtio9p, VirtioDevice, features};
use secure9p::errno;
use secure9p::wire::{self, Request, Response};
use virtio_queue::Queue;
use virtio_queue::desc::{RawDescriptor, split::Descriptor};
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const NEXT: u16 = 1;
const WRITE: u16 = 2;
const QUEUE_LEN: u16 = 16;
const BUF: u64 = 0x1_0000;

struct Guest {
    mem: GuestMemoryMmap,
    irqs: Arc<AtomicUsize>,
}

fn guest() -> Guest {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).expect("guest memory");
    Guest {
        mem,
        irqs: Arc::new(AtomicUsize::new(0)),
    }
}

fn device(g: &Guest, q: &MockSplitQueue<'_, GuestMemoryMmap>) -> Virtio9p {
    let irqs = Arc::clone(&g.irqs);
    let irq = Arc::new(Interrupt::new(Box::new(move |_| {
        irqs.fetch_add(1, Ordering::SeqCst);
    })));
    let mut dev = Virtio9p::new("hive", irq);
    let queue: Queue = q.create_queue().expect("queue");
    dev.activate(features::VERSION_1 | features::NINEP_MOUNT_TAG, vec![queue]);
    dev
}

fn frame(tag: u16, req: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode_request(tag, req, &mut out).expect("encode");
    out
}

fn reply(tag: u16, resp: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode_response(tag, resp, &mut out).expect("encode");
    out
}

/// Descriptors for a chain: (address, length, writable). Index `first` on.
fn chain(parts: &[(u64, u32, bool)], first: u16) -> Vec<RawDescriptor> {
    parts
        .iter()
        .enumerate()
        .map(|(i, &(addr, len, writable))| {
            let last = i + 1 == parts.len();
            let mut flags = if writable { WRITE } else { 0 };
            if !last {
                flags |= NEXT;
            }
            RawDescriptor::from(Descriptor::new(addr, len, flags, first + i as u16 + 1))
        })
        .collect()
}

/// The `n`th used-ring entry: (descriptor head, bytes written).
fn used(g: &Guest, q: &MockSplitQueue<'_, GuestMemoryMmap>, n: u64) -> (u32, u32) {
    let base = q.used_addr().0 + 4 + 8 * n;
    let id: u32 = g.mem.read_obj(GuestAddress(base)).expect("used id");
    let len: u32 = g.mem.read_obj(GuestAddress(base + 4)).expect("used len");
    (id, len)
}

fn used_idx(g: &Guest, q: &MockSplitQueue<'_, GuestMemoryMmap>) -> u16 {
    g.mem
        .read_obj(GuestAddress(q.used_addr().0 + 2))
        .expect("used idx")
}

fn read_back(g: &Guest, addr: u64, len: u32) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    g.mem
        .read_slice(&mut buf, GuestAddress(addr))
        .expect("read back");
    buf
}

fn decode_reply(bytes: &[u8]) -> (u16, Response) {
    wire::decode_response(bytes, 65536).expect("a valid reply")
}

fn process(dev: &mut Virtio9p, g: &Guest) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    dev.process(&g.mem, &mut |f| out.push(f)).expect("process");
    out
}

#[test]
fn a_request_goes_out_whole_and_its_reply_comes_back_with_an_interrupt() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let req = frame(1, &Request::Clunk { fid: 7 });
    g.mem.write_slice(&req, GuestAddress(BUF)).expect("write");
    q.add_desc_chains(
        &chain(
            &[(BUF, req.len() as u32, false), (BUF + 0x1000, 256, true)],
            0,
        ),
        0,
    )
    .expect("chain");
    let mut dev = device(&g, &q);
    let frames = process(&mut dev, &g);
    assert_eq!(frames, vec![req]);
    assert_eq!(dev.pending(), 1);

    let r = reply(1, &Response::Clunk);
    dev.complete(&g.mem, &r).expect("complete");
    assert_eq!(used_idx(&g, &q), 1);
    assert_eq!(used(&g, &q, 0), (0, r.len() as u32));
    assert_eq!(read_back(&g, BUF + 0x1000, r.len() as u32), r);
    assert_eq!(g.irqs.load(Ordering::SeqCst), 1);
    assert_eq!(dev.pending(), 0);
}

#[test]
fn frames_and_replies_split_across_many_descriptors_are_reassembled() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let req = frame(
        9,
        &Request::Walk {
            fid: 1,
            newfid: 2,
            names: vec!["worker".into(), "w1".into(), "telemetry".into()],
        },
    );
    // 3 readable pieces (one of them 1 byte), then 3 writable pieces.
    let (a, b) = (5u32, 1u32);
    let c = req.len() as u32 - a - b;
    g.mem.write_slice(&req[..5], GuestAddress(BUF)).expect("w");
    g.mem
        .write_slice(&req[5..6], GuestAddress(BUF + 0x100))
        .expect("w");
    g.mem
        .write_slice(&req[6..], GuestAddress(BUF + 0x200))
        .expect("w");
    let parts = [
        (BUF, a, false),
        (BUF + 0x100, b, false),
        (BUF + 0x200, c, false),
        (BUF + 0x1000, 3, true),
        (BUF + 0x2000, 4, true),
        (BUF + 0x3000, 200, true),
    ];
    q.add_desc_chains(&chain(&parts, 0), 0).expect("chain");
    let mut dev = device(&g, &q);
    assert_eq!(process(&mut dev, &g), vec![req]);

    let r = reply(
        9,
        &Response::Lerror {
            ecode: errno::ENOENT,
        },
    );
    dev.complete(&g.mem, &r).expect("complete");
    let mut back = read_back(&g, BUF + 0x1000, 3);
    back.extend(read_back(&g, BUF + 0x2000, 4));
    back.extend(read_back(&g, BUF + 0x3000, r.len() as u32 - 7));
    assert_eq!(back, r);
    assert_eq!(used(&g, &q, 0).1, r.len() as u32);
}

#[test]
fn replies_may_arrive_out_of_order() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let mut descs = Vec::new();
    for (i, tag) in [10u16, 11, 12].into_iter().enumerate() {
        let req = frame(
            tag,
            &Request::Clunk {
                fid: u32::from(tag),
            },
        );
        let at = BUF + 0x1000 * i as u64;
        g.mem.write_slice(&req, GuestAddress(at)).expect("w");
        descs.extend(chain(
            &[(at, req.len() as u32, false), (at + 0x800, 64, true)],
            2 * i as u16,
        ));
    }
    q.add_desc_chains(&descs, 0).expect("chains");
    let mut dev = device(&g, &q);
    assert_eq!(process(&mut dev, &g).len(), 3);
    for tag in [12u16, 10, 11] {
        dev.complete(&g.mem, &reply(tag, &Response::Clunk))
            .expect("complete");
    }
    let heads: Vec<u32> = (0..3).map(|n| used(&g, &q, n).0).collect();
    assert_eq!(
        heads,
        vec![4, 0, 2],
        "used in reply order, each with its own head"
    );
    let (tag, _) = decode_reply(&read_back(&g, BUF + 0x2800, 7));
    assert_eq!(tag, 12);
}

#[test]
fn a_descriptor_outside_guest_memory_fails_only_that_request() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let req = frame(3, &Request::Clunk { fid: 1 });
    g.mem.write_slice(&req, GuestAddress(BUF)).expect("w");
    let mut descs = chain(
        &[(0xdead_0000_0000, 64, false), (BUF + 0x1000, 64, true)],
        0,
    );
    descs.extend(chain(
        &[(BUF, req.len() as u32, false), (BUF + 0x1000, 64, true)],
        2,
    ));
    q.add_desc_chains(&descs, 0).expect("chains");
    let mut dev = device(&g, &q);
    let frames = process(&mut dev, &g);
    assert_eq!(
        frames,
        vec![req],
        "the good request behind the bad one still goes out"
    );
    assert_eq!(
        used(&g, &q, 0),
        (0, 0),
        "the bad chain comes back with nothing written"
    );
    assert_eq!(dev.stats().refused, 1);
    assert!(!dev.needs_reset());
}

#[test]
fn a_reply_buffer_outside_guest_memory_fails_only_that_request() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let req = frame(3, &Request::Clunk { fid: 1 });
    g.mem.write_slice(&req, GuestAddress(BUF)).expect("w");
    q.add_desc_chains(
        &chain(
            &[(BUF, req.len() as u32, false), ((1 << 20) - 8, 64, true)],
            0,
        ),
        0,
    )
    .expect("chain");
    let mut dev = device(&g, &q);
    assert!(process(&mut dev, &g).is_empty());
    assert_eq!(used(&g, &q, 0), (0, 0));
}

#[test]
fn readable_after_writable_is_refused() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let req = frame(3, &Request::Clunk { fid: 1 });
    g.mem.write_slice(&req, GuestAddress(BUF)).expect("w");
    q.add_desc_chains(
        &chain(
            &[(BUF + 0x1000, 64, true), (BUF, req.len() as u32, false)],
            0,
        ),
        0,
    )
    .expect("chain");
    let mut dev = device(&g, &q);
    assert!(process(&mut dev, &g).is_empty());
    assert_eq!(used(&g, &q, 0), (0, 0));
}

#[test]
fn a_wrong_size_field_is_answered_with_eproto() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let mut req = frame(4, &Request::Clunk { fid: 1 });
    req[0] = 200; // claims 200 bytes, carries 11
    g.mem.write_slice(&req, GuestAddress(BUF)).expect("w");
    q.add_desc_chains(
        &chain(
            &[(BUF, req.len() as u32, false), (BUF + 0x1000, 64, true)],
            0,
        ),
        0,
    )
    .expect("chain");
    let mut dev = device(&g, &q);
    assert!(process(&mut dev, &g).is_empty());
    let (_, len) = used(&g, &q, 0);
    assert_eq!(
        decode_reply(&read_back(&g, BUF + 0x1000, len)),
        (
            4,
            Response::Lerror {
                ecode: errno::EPROTO
            }
        )
    );
}

#[test]
fn a_short_frame_and_a_tiny_reply_buffer_are_returned_empty() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let req = frame(4, &Request::Clunk { fid: 1 });
    g.mem.write_slice(&req, GuestAddress(BUF)).expect("w");
    let mut descs = chain(&[(BUF, 3, false), (BUF + 0x1000, 64, true)], 0);
    descs.extend(chain(
        &[(BUF, req.len() as u32, false), (BUF + 0x1000, 4, true)],
        2,
    ));
    q.add_desc_chains(&descs, 0).expect("chains");
    let mut dev = device(&g, &q);
    assert!(process(&mut dev, &g).is_empty());
    assert_eq!(used(&g, &q, 0), (0, 0));
    assert_eq!(used(&g, &q, 1), (2, 0));
    assert_eq!(dev.stats().refused, 2);
}

#[test]
fn a_tag_already_in_flight_is_answered_with_einval_and_the_first_survives() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let req = frame(5, &Request::Clunk { fid: 1 });
    g.mem.write_slice(&req, GuestAddress(BUF)).expect("w");
    let mut descs = chain(
        &[(BUF, req.len() as u32, false), (BUF + 0x1000, 64, true)],
        0,
    );
    descs.extend(chain(
        &[(BUF, req.len() as u32, false), (BUF + 0x2000, 64, true)],
        2,
    ));
    q.add_desc_chains(&descs, 0).expect("chains");
    let mut dev = device(&g, &q);
    assert_eq!(process(&mut dev, &g).len(), 1);
    let (head, len) = used(&g, &q, 0);
    assert_eq!(head, 2);
    assert_eq!(
        decode_reply(&read_back(&g, BUF + 0x2000, len)),
        (
            5,
            Response::Lerror {
                ecode: errno::EINVAL
            }
        )
    );
    dev.complete(&g.mem, &reply(5, &Response::Clunk))
        .expect("the first one completes");
    assert_eq!(used(&g, &q, 1).0, 0);
}

#[test]
fn a_reply_larger_than_the_buffer_becomes_emsgsize() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let req = frame(
        6,
        &Request::Read {
            fid: 1,
            offset: 0,
            count: 100,
        },
    );
    g.mem.write_slice(&req, GuestAddress(BUF)).expect("w");
    q.add_desc_chains(
        &chain(
            &[(BUF, req.len() as u32, false), (BUF + 0x1000, 32, true)],
            0,
        ),
        0,
    )
    .expect("chain");
    let mut dev = device(&g, &q);
    assert_eq!(process(&mut dev, &g).len(), 1);
    dev.complete(&g.mem, &reply(6, &Response::Read { data: vec![7; 100] }))
        .expect("complete");
    let (_, len) = used(&g, &q, 0);
    assert_eq!(
        decode_reply(&read_back(&g, BUF + 0x1000, len)),
        (
            6,
            Response::Lerror {
                ecode: errno::EMSGSIZE
            }
        )
    );
}

#[test]
fn rflush_returns_the_cancelled_request_first_with_eintr() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let read = frame(
        20,
        &Request::Read {
            fid: 1,
            offset: 0,
            count: 64,
        },
    );
    let flush = frame(21, &Request::Flush { oldtag: 20 });
    g.mem.write_slice(&read, GuestAddress(BUF)).expect("w");
    g.mem
        .write_slice(&flush, GuestAddress(BUF + 0x100))
        .expect("w");
    let mut descs = chain(
        &[(BUF, read.len() as u32, false), (BUF + 0x1000, 128, true)],
        0,
    );
    descs.extend(chain(
        &[
            (BUF + 0x100, flush.len() as u32, false),
            (BUF + 0x2000, 64, true),
        ],
        2,
    ));
    q.add_desc_chains(&descs, 0).expect("chains");
    let mut dev = device(&g, &q);
    assert_eq!(process(&mut dev, &g), vec![read, flush]);

    dev.complete(&g.mem, &reply(21, &Response::Flush))
        .expect("rflush");
    assert_eq!(used_idx(&g, &q), 2);
    let (head0, len0) = used(&g, &q, 0);
    let (head1, len1) = used(&g, &q, 1);
    assert_eq!(
        (head0, head1),
        (0, 2),
        "the cancelled read is returned before the Rflush"
    );
    assert_eq!(
        decode_reply(&read_back(&g, BUF + 0x1000, len0)),
        (
            20,
            Response::Lerror {
                ecode: errno::EINTR
            }
        )
    );
    assert_eq!(
        decode_reply(&read_back(&g, BUF + 0x2000, len1)),
        (21, Response::Flush)
    );
    assert_eq!(dev.pending(), 0);
    // A late reply to the flushed read finds nothing to complete.
    assert_eq!(
        dev.complete(&g.mem, &reply(20, &Response::Read { data: vec![] })),
        Err(CompleteError::UnknownTag(20))
    );
}

#[test]
fn replies_for_unknown_tags_and_short_replies_are_errors_not_panics() {
    let g = guest();
    let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
    let mut dev = device(&g, &q);
    assert_eq!(
        dev.complete(&g.mem, &reply(77, &Response::Clunk)),
        Err(CompleteError::UnknownTag(77))
    );
    assert_eq!(
        dev.complete(&g.mem, &[1, 2, 3]),
        Err(CompleteError::ShortReply(3))
    );
}

#[test]
fn the_config_space_carries_the_mount_tag() {
    let irq = Arc::new(Interrupt::new(Box::new(|_| {})));
    let dev = Virtio9p::new("hive", irq);
    let mut cfg = [0xffu8; 8];
    dev.read_config(0, &mut cfg);
    assert_eq!(&cfg, &[4, 0, b'h', b'i', b'v', b'e', 0, 0]);
    let mut far = [0xffu8; 4];
    dev.read_config(u64::MAX - 1, &mut far);
    assert_eq!(far, [0; 4]);
}

#[test]
fn random_descriptor_tables_never_panic_and_leave_the_device_usable() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200 {
        let g = guest();
        let q = MockSplitQueue::new(&g.mem, QUEUE_LEN);
        let mut descs = Vec::new();
        for i in 0..QUEUE_LEN {
            let r = next();
            let addr = match r % 4 {
                0 => r >> 8,
                1 => BUF + (r >> 40) % 0x1_0000,
                2 => (1 << 20) - (r >> 60),
                _ => BUF,
            };
            let len = (next() % 0x2_0000) as u32;
            let flags = (next() % 8) as u16 & (NEXT | WRITE | 4);
            let nxt = (next() % u64::from(QUEUE_LEN + 2)) as u16;
            let _ = i;
            descs.push(RawDescriptor::from(Descriptor::new(addr, len, flags, nxt)));
        }
        // Random junk as frame bytes.
        let junk: Vec<u8> = (0..4096).map(|_| next() as u8).collect();
        g.mem.write_slice(&junk, GuestAddress(BUF)).expect("w");
        if q.add_desc_chains(&descs, 0).is_err() {
            continue;
        }
        let mut dev = device(&g, &q);
        let mut frames = Vec::new();
        let _ = dev.process(&g.mem, &mut |f| frames.push(f));
        for f in frames {
            assert!(f.len() >= 7 && f.len() <= 65536);
            let tag = u16::from_le_bytes([f[5], f[6]]);
            let _ = dev.complete(&g.mem, &reply(tag, &Response::Clunk));
        }
    }
}
