//! NineDoor benchmark (not a test): round-trip latency and throughput over
//! the Unix socket with 1, 4 and 16 concurrent clients, against a baseline
//! measured in the same run — an echo server on the same kind of socket that
//! answers each frame without any 9P processing, i.e. the transport floor.
//!
//! Workloads, each a sequence of synchronous round trips per client:
//! - `meta`: Twalk(/proc/boot) + Tgetattr + Tclunk (3 round trips);
//! - `read`: Tread of 64 bytes from an open /proc/boot fid (1 round trip).
//!
//! Usage: `ninedoor-bench [SECONDS_PER_CASE]` (default 2).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ninedoor::clock::SystemClock;
use ninedoor::config::HiveSpec;
use ninedoor::effects::{Effects, SpawnSpec};
use ninedoor::hive::Hive;
use ninedoor::server::Server;
use secure9p::client::{Client, Transport};
use secure9p::wire::{GETATTR_BASIC, O_RDONLY};

/// The benchmark hive starts no VMs; spawning in it is refused.
#[derive(Debug)]
struct NoVms;

impl Effects for NoVms {
    fn spawn_worker(&self, _: &SpawnSpec) -> Result<(), String> {
        Err("the benchmark hive starts no VMs".into())
    }
    fn stop_worker(&self, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn detach_gpu(&self, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
}

/// A client reads its replies the way the server reads requests
/// (`ninedoor::transport::PollingReader`: poll briefly, then sleep) while
/// client and server threads fit on the CPUs, and plain blocking reads
/// otherwise. NINEDOOR_BENCH_BLOCKING=1 makes every client block.
struct Stream(Box<dyn Read + Send>, UnixStream);

impl Transport for Stream {
    type Error = std::io::Error;

    fn send(&mut self, frame: &[u8]) -> Result<(), Self::Error> {
        self.1.write_all(frame)
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<(), Self::Error> {
        let mut size = [0u8; 4];
        self.0.read_exact(&mut size)?;
        let n = u32::from_le_bytes(size) as usize;
        if !(7..=1 << 16).contains(&n) {
            return Err(std::io::Error::other("bad frame size"));
        }
        buf.clear();
        buf.extend_from_slice(&size);
        buf.resize(n, 0);
        self.0.read_exact(&mut buf[4..])
    }
}

/// Answers every frame with a fixed 11-byte reply (the size of Rlerror),
/// reading the way NineDoor's connection threads do (polling first).
fn echo_server(path: &Path) -> std::io::Result<()> {
    let listener = UnixListener::bind(path)?;
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let max_live = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let Ok(reader) = conn.try_clone() else {
                continue;
            };
            let live = live.clone();
            live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                let _guard = Decrement(live.clone());
                let mut input =
                    ninedoor::transport::PollingReader::adaptive(reader, live, max_live);
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let mut size = [0u8; 4];
                    if input.read_exact(&mut size).is_err() {
                        return;
                    }
                    let n = (u32::from_le_bytes(size) as usize).clamp(7, 1 << 16);
                    if input.read_exact(&mut buf[..n - 4]).is_err() {
                        return;
                    }
                    let tag = [buf[1], buf[2]];
                    let reply = [11, 0, 0, 0, 7, tag[0], tag[1], 0, 0, 0, 0];
                    if conn.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(())
}

/// Decrements a live-connection counter when a connection thread ends.
struct Decrement(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Echo,
    Meta,
    Read,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Echo => "echo (baseline)",
            Workload::Meta => "walk+getattr+clunk",
            Workload::Read => "read 64 B",
        }
    }
}

/// Runs one client until `deadline`; returns per-round-trip latencies (ns).
fn client(
    path: &Path,
    workload: Workload,
    deadline: Instant,
    poll_clients: bool,
) -> Result<Vec<u64>, String> {
    let stream = UnixStream::connect(path).map_err(|e| e.to_string())?;
    let mut samples = Vec::with_capacity(1 << 16);
    let polling = std::env::var_os("NINEDOOR_BENCH_BLOCKING").is_none() && poll_clients;
    let writer = stream.try_clone().map_err(|e| e.to_string())?;
    if workload == Workload::Echo {
        let mut s = writer;
        let mut r: Box<dyn Read + Send> = if polling {
            Box::new(ninedoor::transport::PollingReader::new(stream))
        } else {
            Box::new(stream)
        };
        let frame = [15u8, 0, 0, 0, 120, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        let mut reply = [0u8; 11];
        while Instant::now() < deadline {
            let t = Instant::now();
            s.write_all(&frame).map_err(|e| e.to_string())?;
            r.read_exact(&mut reply).map_err(|e| e.to_string())?;
            samples.push(t.elapsed().as_nanos() as u64);
        }
        return Ok(samples);
    }
    let reader: Box<dyn Read + Send> = if polling {
        Box::new(ninedoor::transport::PollingReader::new(stream))
    } else {
        Box::new(stream)
    };
    let mut c = Client::connect(Stream(reader, writer), 8192).map_err(|e| e.to_string())?;
    let root = c.attach("queen", "").map_err(|e| e.to_string())?;
    let boot = c.walk_path(root, "/proc/boot").map_err(|e| e.to_string())?;
    c.lopen(boot, O_RDONLY).map_err(|e| e.to_string())?;
    while Instant::now() < deadline {
        match workload {
            Workload::Meta => {
                let t = Instant::now();
                let f = c.walk(root, &["proc", "boot"]).map_err(|e| e.to_string())?;
                samples.push(t.elapsed().as_nanos() as u64);
                let t = Instant::now();
                c.getattr(f, GETATTR_BASIC).map_err(|e| e.to_string())?;
                samples.push(t.elapsed().as_nanos() as u64);
                let t = Instant::now();
                c.clunk(f).map_err(|e| e.to_string())?;
                samples.push(t.elapsed().as_nanos() as u64);
            }
            Workload::Read => {
                let t = Instant::now();
                c.read(boot, 0, 64).map_err(|e| e.to_string())?;
                samples.push(t.elapsed().as_nanos() as u64);
            }
            Workload::Echo => {}
        }
    }
    Ok(samples)
}

struct Case {
    median_us: f64,
    ops_per_s: f64,
}

fn run_case(path: &Path, workload: Workload, clients: usize, secs: f64) -> Result<Case, String> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    // Clients poll for replies like the server polls for requests, but only
    // while client and server threads together fit on the CPUs.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let poll_clients = clients * 2 <= cpus;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let path = path.to_path_buf();
            std::thread::spawn(move || client(&path, workload, deadline, poll_clients))
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(
            t.join()
                .map_err(|_| "client thread panicked".to_string())??,
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    if all.is_empty() {
        return Err("no samples".into());
    }
    let n = all.len();
    all.sort_unstable();
    Ok(Case {
        median_us: all[n / 2] as f64 / 1e3,
        ops_per_s: n as f64 / elapsed,
    })
}

fn main() -> Result<(), String> {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().map_err(|_| format!("bad seconds: {s}")))
        .transpose()?
        .unwrap_or(2.0);
    let dir = std::env::temp_dir().join(format!("ninedoor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let hive = Hive::new(
        HiveSpec::default(),
        &dir,
        Arc::new(SystemClock),
        Arc::new(NoVms),
    )
    .map_err(|e| e.to_string())?;
    hive.set_online().map_err(|e| e.to_string())?;
    let mut server = Server::new(Arc::new(hive));
    let sock = dir.join("hive.sock");
    server.listen_unix(&sock).map_err(|e| e.to_string())?;
    let echo = dir.join("echo.sock");
    echo_server(&echo).map_err(|e| e.to_string())?;

    println!(
        "ninedoor-bench: {secs} s per case, Unix socket, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<22} {:>8} {:>14} {:>12} {:>18}",
        "workload", "clients", "median µs/RT", "RT/s", "median vs echo"
    );
    for clients in [1usize, 4, 16] {
        let base = run_case(&echo, Workload::Echo, clients, secs)?;
        for workload in [Workload::Echo, Workload::Meta, Workload::Read] {
            let case = if workload == Workload::Echo {
                Case {
                    median_us: base.median_us,
                    ops_per_s: base.ops_per_s,
                }
            } else {
                run_case(&sock, workload, clients, secs)?
            };
            println!(
                "{:<22} {:>8} {:>14.2} {:>12.0} {:>17.2}x",
                workload.name(),
                clients,
                case.median_us,
                case.ops_per_s,
                case.median_us / base.median_us
            );
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
