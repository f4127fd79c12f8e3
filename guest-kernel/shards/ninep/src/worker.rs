//! The heartbeat worker's duties over a ready virtqueue: attach, learn
//! the worker id, print `/proc/boot`, append heartbeats, optionally probe
//! `/queen/ctl` (must be refused) and time small operations.

use coconut_rt::alloc::format;
use coconut_rt::alloc::string::String;
use coconut_rt::alloc::vec::Vec;
use coconut_rt::{println, sys};
use secure9p::client::{Client, ClientError, Fid};
use secure9p::errno;
use secure9p::wire::{O_APPEND, O_RDONLY, O_WRONLY, Request, Response};

use crate::Options;
use crate::virtq::{MSIZE, Queue, QueueError};

type Cl = Client<Queue>;

fn e9p(what: &str, e: ClientError<QueueError>) -> String {
    format!("{what}: {e}")
}

/// The one entry of `/worker` a worker can see: its own id.
fn worker_id(c: &mut Cl, root: Fid) -> Result<String, String> {
    let dir = c
        .walk_path(root, "worker")
        .map_err(|e| e9p("walk /worker", e))?;
    c.lopen(dir, O_RDONLY).map_err(|e| e9p("open /worker", e))?;
    let entries = c.readdir_all(dir).map_err(|e| e9p("readdir /worker", e))?;
    c.clunk(dir).map_err(|e| e9p("clunk /worker", e))?;
    let mut ids = entries
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != "." && n != "..");
    match (ids.next(), ids.next()) {
        (Some(id), None) => Ok(id),
        (None, _) => Err(String::from("/worker is empty: no worker identity bound")),
        (Some(a), Some(b)) => Err(format!(
            "/worker lists more than this worker ({a}, {b}, ...)"
        )),
    }
}

fn print_proc_boot(c: &mut Cl, root: Fid) -> Result<(), String> {
    let f = c
        .walk_path(root, "proc/boot")
        .map_err(|e| e9p("walk /proc/boot", e))?;
    c.lopen(f, O_RDONLY)
        .map_err(|e| e9p("open /proc/boot", e))?;
    let data = c
        .read_to_end_max(f, 64 * 1024)
        .map_err(|e| e9p("read /proc/boot", e))?;
    c.clunk(f).map_err(|e| e9p("clunk /proc/boot", e))?;
    let text = String::from_utf8_lossy(&data);
    let mut lines = 0;
    for line in text.lines() {
        println!("ninep: /proc/boot: {line}");
        lines += 1;
    }
    println!("ninep: /proc/boot: {lines} lines, {} bytes", data.len());
    Ok(())
}

/// Tries to write a spawn request to `/queen/ctl`; a worker must be refused.
fn probe_queen(c: &mut Cl, root: Fid) -> Result<(), String> {
    let refused = |what: &str, e: ClientError<QueueError>| match e.errno() {
        Some(n) => {
            println!(
                "ninep: /queen/ctl refused at {what}: {} ({n})",
                errno::name(n)
            );
            Ok(())
        }
        None => Err(e9p(what, e)),
    };
    let f = match c.walk_path(root, "queen/ctl") {
        Ok(f) => f,
        Err(e) => return refused("walk", e),
    };
    let r = match c.lopen(f, O_WRONLY) {
        Ok(_) => c
            .write(f, 0, b"{\"spawn\":\"heartbeat\",\"ticks\":1}\n")
            .map(|_| ()),
        Err(e) => Err(e),
    };
    let _ = c.clunk(f);
    match r {
        Ok(()) => Err(String::from(
            "a worker wrote /queen/ctl: the namespace did not refuse it",
        )),
        Err(e) => refused("open/write", e),
    }
}

fn now_ns() -> Result<u64, String> {
    sys::time().map_err(|e| format!("time: {e:?}"))
}

/// Prints `ninep: bench <what> n=<n> mean_us=… min_us=… max_us=…`.
fn report(what: &str, samples: &[u64]) {
    if samples.is_empty() {
        return;
    }
    let sum: u64 = samples.iter().sum();
    let min = samples.iter().copied().min().unwrap_or(0);
    let max = samples.iter().copied().max().unwrap_or(0);
    let n = samples.len() as u64;
    let us = |ns: u64| format!("{}.{}", ns / 1000, (ns % 1000) / 100);
    println!(
        "ninep: bench {what} n={n} mean_us={} min_us={} max_us={}",
        us(sum / n),
        us(min),
        us(max)
    );
}

/// Times `n` small reads and `n` small appends, blocking for every reply;
/// with `spin > 0` a second pass polls the used ring `spin` times first.
fn bench(c: &mut Cl, root: Fid, telemetry: Fid, n: u64, spin: u64) -> Result<(), String> {
    bench_pass(c, root, telemetry, n, "")?;
    if spin > 0 {
        c.transport_mut().spin_polls = spin;
        bench_pass(c, root, telemetry, n, "-spin")?;
        c.transport_mut().spin_polls = 0;
    }
    Ok(())
}

fn bench_pass(c: &mut Cl, root: Fid, telemetry: Fid, n: u64, label: &str) -> Result<(), String> {
    // What the measurement itself costs: two back-to-back time() calls.
    let mut clock = Vec::new();
    for _ in 0..n {
        let t0 = now_ns()?;
        clock.push(now_ns()?.saturating_sub(t0));
    }
    report(&format!("time-pair{label}"), &clock);
    let f = c
        .walk_path(root, "proc/boot")
        .map_err(|e| e9p("walk /proc/boot", e))?;
    c.lopen(f, O_RDONLY)
        .map_err(|e| e9p("open /proc/boot", e))?;
    let mut reads = Vec::new();
    for _ in 0..n {
        let t0 = now_ns()?;
        c.read(f, 0, 64).map_err(|e| e9p("bench read", e))?;
        reads.push(now_ns()?.saturating_sub(t0));
    }
    c.clunk(f).map_err(|e| e9p("clunk /proc/boot", e))?;
    let mut appends = Vec::new();
    for i in 0..n {
        let line = format!("{{\"bench\":{i}}}\n");
        let t0 = now_ns()?;
        c.write(telemetry, u64::MAX, line.as_bytes())
            .map_err(|e| e9p("bench append", e))?;
        appends.push(now_ns()?.saturating_sub(t0));
    }
    report(&format!("read64{label}"), &reads);
    report(&format!("append{label}"), &appends);
    Ok(())
}

/// Waits (blocking reads at the end of the telemetry file) until a line
/// containing `"ack"` is in it.
fn wait_ack(c: &mut Cl, root: Fid, path: &str) -> Result<(), String> {
    let f = c
        .walk_path(root, path)
        .map_err(|e| e9p("walk telemetry", e))?;
    c.lopen(f, O_RDONLY)
        .map_err(|e| e9p("open telemetry for reading", e))?;
    // A blocked read waits for the queen; allow it minutes, not seconds.
    c.transport_mut().reply_timeout_ns = 120_000_000_000;
    let mut offset = 0u64;
    let mut seen: Vec<u8> = Vec::new();
    let found = loop {
        let data = c
            .read(f, offset, 4096)
            .map_err(|e| e9p("read telemetry", e))?;
        if data.is_empty() {
            // At the end: this read blocks in NineDoor until the file
            // grows. It is sent before the line is printed, so a test that
            // appends the ack after reading the line finds it waiting (and
            // the reply can only come back through an interrupt).
            let req = Request::Read {
                fid: f.0,
                offset,
                count: 4096,
            };
            let tag = c.send_request(&req).map_err(|e| e9p("read telemetry", e))?;
            println!("ninep: waiting for an ack in /{path} (read pending at offset {offset})");
            let (t, resp) = c.recv_response().map_err(|e| e9p("read telemetry", e))?;
            let data = match resp {
                Response::Read { data } if t == tag && data.len() <= 4096 => data,
                Response::Lerror { ecode } => {
                    return Err(format!(
                        "read telemetry: server error {}",
                        errno::name(ecode)
                    ));
                }
                _ => return Err(String::from("read telemetry: unexpected reply")),
            };
            offset += data.len() as u64;
            seen.extend_from_slice(&data);
        } else {
            offset += data.len() as u64;
            seen.extend_from_slice(&data);
        }
        // The previous read's tail is kept: the marker may straddle two reads.
        if seen.windows(5).any(|w| w == b"\"ack\"") {
            break true;
        }
        if seen.len() > 8 {
            seen.drain(..seen.len() - 8);
        }
        if offset > 1 << 30 {
            break false;
        }
    };
    c.transport_mut().reply_timeout_ns = crate::virtq::REPLY_TIMEOUT_NS;
    c.clunk(f).map_err(|e| e9p("clunk telemetry", e))?;
    if !found {
        return Err(String::from("no ack in the first GiB of telemetry"));
    }
    println!("ninep: ack received");
    Ok(())
}

/// Everything after the queue is ready.
pub fn run(queue: Queue, opts: &Options) -> Result<(), String> {
    let mut c = Client::connect(queue, MSIZE as u32).map_err(|e| e9p("version", e))?;
    // An empty uname: the bridge gives this session the guest's bound identity.
    let root = c.attach("", "").map_err(|e| e9p("attach", e))?;
    let id = worker_id(&mut c, root)?;
    println!("ninep: attached as {id} (msize {})", c.msize());
    print_proc_boot(&mut c, root)?;

    let path = format!("worker/{id}/telemetry");
    let tel = c
        .walk_path(root, &path)
        .map_err(|e| e9p("walk telemetry", e))?;
    c.lopen(tel, O_WRONLY | O_APPEND)
        .map_err(|e| e9p("open telemetry", e))?;
    for tick in 1..=opts.ticks {
        let ts_ms = now_ns()? / 1_000_000;
        let line = format!("{{\"tick\":{tick},\"ts_ms\":{ts_ms}}}\n");
        c.write(tel, u64::MAX, line.as_bytes())
            .map_err(|e| e9p("append heartbeat", e))?;
        println!("ninep: heartbeat {tick}/{} appended to /{path}", opts.ticks);
        if tick < opts.ticks {
            c.transport_mut()
                .idle(opts.interval_ms * 1_000_000)
                .map_err(|e| format!("waiting between heartbeats: {e}"))?;
        }
    }
    if opts.probe_queen {
        probe_queen(&mut c, root)?;
    }
    if opts.bench > 0 {
        bench(&mut c, root, tel, opts.bench, opts.spin)?;
    }
    c.clunk(tel).map_err(|e| e9p("clunk telemetry", e))?;
    if opts.wait_ack {
        wait_ack(&mut c, root, &path)?;
    }
    c.clunk(root).map_err(|e| e9p("clunk root", e))?;
    let q = c.transport_mut();
    q.drain_notifications()
        .map_err(|e| format!("draining notifications: {e}"))?;
    let s = q.stats;
    println!(
        "ninep: done: {} completions, {} irq notifications, {} completions woken by one, {} found by spinning",
        s.completions, s.notifications, s.via_irq, s.via_spin
    );
    Ok(())
}
