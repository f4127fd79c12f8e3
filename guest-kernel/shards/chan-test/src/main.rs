//! chan-test: channel back-pressure, as a producer/consumer pair (the role
//! is the first word of `args`; boot caps: the "pipe" channel, then "ctl").
//!
//! The producer first fills the bounded queue while the consumer waits on
//! "ctl": a send without waiting fails with WouldBlock exactly when the
//! queue holds its capacity, and a send with a 1 ms timeout fails with
//! TimedOut. Then it says "go" and sends the rest with blocking sends,
//! which wait while the queue is full. Message [`BIG`] is larger than the
//! consumer's first buffer: the consumer sees MessageTooBig, and the same
//! message is delivered to its larger buffer next. Both sides count and
//! checksum every message; the consumer checks order and content, then that
//! nothing is left over. Exit code: the number of failed checks.
#![no_std]
#![no_main]

use coconut_rt::sys::{channel_recv, channel_recv_timeout, channel_send, channel_send_timeout};
use coconut_rt::{Error, info, println};

coconut_rt::main!(main);

/// Messages per run.
const N: u32 = 100;
/// The capacity of "pipe" in /boot/test-channels.toml.
const CAPACITY: u32 = 4;
/// The message larger than the consumer's first buffer.
const BIG: u32 = 10;
const BIG_LEN: usize = 200;
const SMALL_BUF: usize = 64;

/// Message `i`: its index (LE u32), then a deterministic payload.
fn message(i: u32, out: &mut [u8; 256]) -> &[u8] {
    let len = if i == BIG {
        BIG_LEN
    } else {
        8 + (i as usize * 37) % 57
    };
    out[..4].copy_from_slice(&i.to_le_bytes());
    for (j, b) in out[4..len].iter_mut().enumerate() {
        *b = (i as usize * 31 + j * 7) as u8;
    }
    &out[..len]
}

/// 64-bit FNV-1a over every message, in order.
struct Tally {
    count: u32,
    bytes: u64,
    fnv: u64,
}

impl Tally {
    fn new() -> Self {
        Tally {
            count: 0,
            bytes: 0,
            fnv: 0xcbf2_9ce4_8422_2325,
        }
    }
    fn add(&mut self, msg: &[u8]) {
        self.count += 1;
        self.bytes += msg.len() as u64;
        for &b in msg {
            self.fnv ^= u64::from(b);
            self.fnv = self.fnv.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn fail(failures: &mut u64, what: core::fmt::Arguments<'_>) {
    println!("chan-test: {} FAIL {what}", info::name());
    *failures += 1;
}

fn producer(pipe: u64, ctl: u64) -> u64 {
    let mut failures = 0;
    let mut buf = [0u8; 256];
    let mut tally = Tally::new();
    let mut i = 0;
    // Fill the queue without waiting until it refuses.
    let refused = loop {
        let msg = message(i, &mut buf);
        match channel_send_timeout(pipe, msg, 0) {
            Ok(_) => {
                tally.add(message(i, &mut buf));
                i += 1;
            }
            Err(e) => break e,
        }
        if i > CAPACITY {
            break Error::InvalidArgument;
        }
    };
    if refused == Error::WouldBlock && i == CAPACITY {
        println!(
            "chan-test: producer: queue full after {i} messages: send without waiting -> would block"
        );
    } else {
        fail(
            &mut failures,
            format_args!("fill: {i} sent, then {}", refused.name()),
        );
    }
    match channel_send_timeout(pipe, message(i, &mut buf), 1_000_000) {
        Err(Error::TimedOut) => {
            println!("chan-test: producer: send with a 1 ms timeout on the full queue -> timed out")
        }
        other => fail(
            &mut failures,
            format_args!("timed send on a full queue: {other:?}"),
        ),
    }
    if let Err(e) = channel_send(ctl, b"go") {
        fail(&mut failures, format_args!("ctl send: {}", e.name()));
        return failures;
    }
    // The rest with blocking sends: each waits while the queue is full.
    while i < N {
        match channel_send(pipe, message(i, &mut buf)) {
            Ok(_) => tally.add(message(i, &mut buf)),
            Err(e) => {
                fail(&mut failures, format_args!("send {i}: {}", e.name()));
                return failures;
            }
        }
        i += 1;
    }
    println!(
        "chan-test: producer: sent {} messages, {} bytes, fnv1a {:#018x}",
        tally.count, tally.bytes, tally.fnv
    );
    failures
}

fn consumer(pipe: u64, ctl: u64) -> u64 {
    let mut failures = 0;
    let mut go = [0u8; 8];
    match channel_recv(ctl, &mut go) {
        Ok(2) if &go[..2] == b"go" => {}
        other => {
            fail(&mut failures, format_args!("ctl recv: {other:?}"));
            return failures;
        }
    }
    let mut small = [0u8; SMALL_BUF];
    let mut large = [0u8; 256];
    let mut want = [0u8; 256];
    let mut tally = Tally::new();
    let mut i = 0;
    while i < N {
        let got = match channel_recv(pipe, &mut small) {
            Ok(n) => &small[..n as usize],
            Err(Error::MessageTooBig) => {
                println!(
                    "chan-test: consumer: message {i} does not fit {SMALL_BUF} bytes -> message too big"
                );
                match channel_recv(pipe, &mut large) {
                    Ok(n) => {
                        println!(
                            "chan-test: consumer: message {i} delivered to a larger buffer ({n} bytes)"
                        );
                        &large[..n as usize]
                    }
                    Err(e) => {
                        fail(
                            &mut failures,
                            format_args!("recv {i} after too big: {}", e.name()),
                        );
                        return failures;
                    }
                }
            }
            Err(e) => {
                fail(&mut failures, format_args!("recv {i}: {}", e.name()));
                return failures;
            }
        };
        if got != message(i, &mut want) {
            let seq = got
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            fail(
                &mut failures,
                format_args!("message {i}: got seq {seq:?}, len {}", got.len()),
            );
        }
        tally.add(got);
        i += 1;
    }
    match channel_recv_timeout(pipe, &mut large, 0) {
        Err(Error::WouldBlock) => {}
        other => fail(
            &mut failures,
            format_args!("left over after {N}: {other:?}"),
        ),
    }
    println!(
        "chan-test: consumer: received {} messages, {} bytes, fnv1a {:#018x}, in order, none lost",
        tally.count, tally.bytes, tally.fnv
    );
    failures
}

fn main() -> u64 {
    let (Some(pipe), Some(ctl)) = (info::boot_cap(0), info::boot_cap(1)) else {
        println!("chan-test: needs boot caps pipe and ctl (see /boot/test-channels.toml)");
        return 1;
    };
    match info::args().split_ascii_whitespace().next() {
        Some("producer") => producer(pipe, ctl),
        Some("consumer") => consumer(pipe, ctl),
        other => {
            println!("chan-test: role {other:?}: want producer or consumer");
            1
        }
    }
}
