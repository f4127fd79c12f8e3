//! ninep: the guest kernel's virtio-9p client, as one driver shard.
//!
//! It maps the virtio-mmio window the manifest grants (`memory:<base>:1`),
//! checks that a virtio-9p device is there (a VM without a hive bridge has
//! no device: the window reads as all-ones, and the shard exits 0 saying
//! so), negotiates VERSION_1 + MOUNT_TAG, reads the mount tag, puts one
//! split virtqueue in `dma_alloc` memory, binds the device's IOAPIC line to
//! a channel and runs the shared `secure9p` client over the queue
//! ([`virtq::Queue`] is its `Transport`). Then it does what a heartbeat
//! worker does: attaches (anonymously: the supervisor bound the bridge to
//! this guest's identity), learns its worker id from `/worker` (a worker
//! sees only itself there), prints `/proc/boot`, appends
//! `{"tick":N,"ts_ms":T}` lines to `/worker/<id>/telemetry`, and exits 0.
//!
//! One shard rather than a driver library plus a worker: the driver has
//! one user, and a split would need a channel protocol to carry 9P frames
//! between shards, doubling every round trip's kernel entries (each costs
//! microseconds of emulated ring 0 on kvm-pvm).
//!
//! Boot capabilities, in order: the MMIO window (read+write), `memory:dma`,
//! `irq:<line>` and a channel (send+recv) for the IRQ notifications.
//! Args (space separated): `ticks=N` (default 5), `interval_ms=N` (200),
//! `probe-queen` (try to write `/queen/ctl` and print the refusal),
//! `bench=N` (N small reads and N small appends, timed), `spin=N` (with
//! `bench`: a second pass that polls the used ring N times from ring 3
//! before blocking on the IRQ channel),
//! `wait-ack` (before exiting, wait until someone appends a line with
//! `"ack"` to the telemetry file: lets a test read the heartbeats while the
//! worker's nodes still exist).
#![no_std]
#![no_main]

mod mmio;
mod virtq;
mod worker;

use coconut_rt::alloc::format;
use coconut_rt::alloc::string::String;
use coconut_rt::{info, println, sys};

use mmio::{F_MOUNT_TAG, F_VERSION_1, Window, reg, status};

coconut_rt::main!(main);

/// What the manifest's args ask for.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub ticks: u64,
    pub interval_ms: u64,
    pub probe_queen: bool,
    pub bench: u64,
    pub spin: u64,
    pub wait_ack: bool,
}

fn parse_args(args: &str) -> Result<Options, String> {
    let mut o = Options {
        ticks: 5,
        interval_ms: 200,
        probe_queen: false,
        bench: 0,
        spin: 0,
        wait_ack: false,
    };
    for word in args.split_ascii_whitespace() {
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("bad number in argument {word:?}"))
        };
        match word.split_once('=') {
            Some(("ticks", v)) => o.ticks = num(v)?.min(10_000),
            Some(("interval_ms", v)) => o.interval_ms = num(v)?.min(60_000),
            Some(("bench", v)) => o.bench = num(v)?.min(100_000),
            Some(("spin", v)) => o.spin = num(v)?.min(100_000_000),
            None if word == "probe-queen" => o.probe_queen = true,
            None if word == "wait-ack" => o.wait_ack = true,
            _ => return Err(format!("unknown argument {word:?}")),
        }
    }
    Ok(o)
}

fn cap(n: usize, what: &str) -> Result<u64, String> {
    info::boot_cap(n)
        .ok_or_else(|| format!("boot capability {n} ({what}) missing from the manifest"))
}

/// Reads the mount tag from config space (`tag_len: u16` + bytes),
/// retrying while the config generation changes under the read.
fn mount_tag(w: &Window) -> Result<String, String> {
    for _ in 0..4 {
        let generation = w.read(reg::CONFIG_GENERATION);
        let byte = |i: usize| w.read_config8(i).ok_or("mount tag runs past the window");
        let len = usize::from(u16::from_le_bytes([byte(0)?, byte(1)?]));
        if len > 255 {
            return Err(format!("mount tag length {len} is implausible"));
        }
        let mut tag = coconut_rt::alloc::vec::Vec::with_capacity(len);
        for i in 0..len {
            tag.push(byte(2 + i)?);
        }
        if w.read(reg::CONFIG_GENERATION) == generation {
            return String::from_utf8(tag).map_err(|_| String::from("mount tag is not UTF-8"));
        }
    }
    Err(String::from("config generation kept changing"))
}

fn main() -> Result<(), String> {
    let opts = parse_args(info::args())?;
    let window_cap = cap(0, "MMIO window")?;
    // `dma_alloc` checks this capability itself; a manifest without it fails early here.
    cap(1, "memory:dma")?;
    let irq_cap = cap(2, "irq")?;
    let chan_cap = cap(3, "IRQ channel")?;

    let va = sys::mmio_map(window_cap).map_err(|e| format!("mmio_map: {e:?}"))?;
    // SAFETY: `mmio_map` returned an uncached mapping of the granted
    // window (one page, checked by the manifest spelling) that stays
    // mapped until this shard exits.
    let w = unsafe { Window::new(va as usize) };
    let magic = w.read(reg::MAGIC_VALUE);
    let device = w.read(reg::DEVICE_ID);
    if magic != mmio::MAGIC || device == 0 {
        println!(
            "ninep: no virtio device in the window (magic {magic:#010x}, device {device}); nothing to do"
        );
        return Ok(());
    }
    let version = w.read(reg::VERSION);
    if version != 2 {
        return Err(format!(
            "virtio-mmio version {version}, this driver needs 2"
        ));
    }
    if device != mmio::DEVICE_9P {
        return Err(format!("virtio device {device} is not a 9P transport (9)"));
    }

    // Device initialisation, virtio 1.x §3.1.1.
    w.set_status(0);
    w.set_status(status::ACKNOWLEDGE);
    w.set_status(status::ACKNOWLEDGE | status::DRIVER);
    let offered = w.device_features();
    let wanted = F_VERSION_1 | F_MOUNT_TAG;
    if offered & wanted != wanted {
        w.set_status(status::FAILED);
        return Err(format!(
            "device features {offered:#x} lack VERSION_1 or MOUNT_TAG"
        ));
    }
    w.set_driver_features(wanted);
    let mut st = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    w.set_status(st);
    if w.status() & status::FEATURES_OK == 0 {
        w.set_status(status::FAILED);
        return Err(String::from("device refused FEATURES_OK"));
    }
    let tag = mount_tag(&w)?;
    println!("ninep: virtio-9p device, mount tag {tag:?}, features {offered:#x}");

    let mut pa = 0u64;
    let dma = sys::dma_alloc(virtq::DMA_PAGES, &mut pa).map_err(|e| format!("dma_alloc: {e:?}"))?;
    // SAFETY: `dma_alloc` mapped DMA_PAGES fresh, writable pages at `dma`
    // whose guest-physical address it stored in `pa`; only the queue uses them.
    let queue = unsafe { virtq::Queue::setup(w, dma as usize, pa, irq_cap, chan_cap) };
    let queue = match queue {
        Ok(q) => q,
        Err(e) => return Err(format!("queue setup: {e}")),
    };
    sys::irq_bind(irq_cap, chan_cap).map_err(|e| format!("irq_bind: {e:?}"))?;
    st |= status::DRIVER_OK;
    queue.window().set_status(st);
    if queue.window().status() & status::DEVICE_NEEDS_RESET != 0 {
        return Err(String::from("device needs reset right after DRIVER_OK"));
    }
    println!(
        "ninep: queue 0 ready ({} entries, dma at {pa:#x}), irq bound",
        virtq::QUEUE_LEN
    );

    worker::run(queue, &opts)
}
