//! `coco-vmm bench`: benchmarks that report ratios against a baseline
//! measured in the same run (never pass/fail thresholds; those are not tests).
//!
//! `bench boot` boots the built-in guest-kernel N times under coco-vmm and N
//! times under `qemu-system-x86_64 -M microvm` (PVH `-kernel`, same KVM),
//! and reports medians of: time from process start to the guest's
//! "kernel ready" line on the serial console, time to process exit, and
//! coco-vmm's own milestone timestamps and RSS outside guest memory.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Prefix of the machine-readable timings line of `coco-vmm boot --timings json`.
pub const TIMINGS_TAG: &str = "coco-timings";
/// The console line that marks a booted kernel.
pub const READY_LINE: &str = "kernel ready";

/// Benchmarks.
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Boot time and memory of guest-kernel, coco-vmm vs QEMU microvm.
    Boot(BootBenchArgs),
}

/// Arguments of `bench boot`.
#[derive(clap::Args, Debug)]
pub struct BootBenchArgs {
    /// Boots per VMM.
    #[arg(long, short = 'n', default_value_t = 10)]
    pub iterations: usize,
    /// Guest RAM in MiB (same for both VMMs).
    #[arg(long, default_value_t = 64)]
    pub memory: u64,
    /// The QEMU binary used as the baseline.
    #[arg(long, default_value = "qemu-system-x86_64")]
    pub qemu: PathBuf,
    /// Skip the QEMU baseline.
    #[arg(long)]
    pub no_qemu: bool,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A process could not be run or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A boot did not reach the ready line or exited badly.
    #[error("{vmm} run {run} failed: {detail}")]
    Run {
        /// Which VMM.
        vmm: &'static str,
        /// Iteration.
        run: usize,
        /// What went wrong.
        detail: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// One measured boot.
#[derive(Debug, Default, Clone)]
struct Sample {
    ready: Duration,
    exit: Duration,
    internal_ready_us: Option<u64>,
    internal_exit_us: Option<u64>,
    rss_outside_kib: Option<u64>,
}

/// Runs `cmd`, timestamping the ready line on stdout and the exit.
fn measure(
    mut cmd: Command,
    what: &'static str,
    run: usize,
) -> Result<(Sample, String, i32), BenchError> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(format!("starting {what}")))?;
    let stdout = child.stdout.take().ok_or_else(|| BenchError::Run {
        vmm: what,
        run,
        detail: "no stdout".into(),
    })?;
    let mut stderr = child.stderr.take().ok_or_else(|| BenchError::Run {
        vmm: what,
        run,
        detail: "no stderr".into(),
    })?;
    let err_thread = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut ready = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(io(format!("reading {what} output")))?;
        if ready.is_none() && line.contains(READY_LINE) {
            ready = Some(start.elapsed());
        }
    }
    let status = child.wait().map_err(io(format!("waiting for {what}")))?;
    let exit = start.elapsed();
    let stderr = err_thread.join().unwrap_or_default();
    let ready = ready.ok_or_else(|| BenchError::Run {
        vmm: what,
        run,
        detail: format!("no \"{READY_LINE}\" line; stderr: {stderr}"),
    })?;
    let sample = Sample {
        ready,
        exit,
        ..Default::default()
    };
    Ok((sample, stderr, status.code().unwrap_or(-1)))
}

fn coco_sample(exe: &Path, args: &BootBenchArgs, run: usize) -> Result<Sample, BenchError> {
    let mut cmd = Command::new(exe);
    cmd.args([
        "boot",
        "--name",
        "bench",
        "--kernel",
        "builtin:guest-kernel",
        "--initrd",
        "builtin:ramdisk",
        "--memory",
        &args.memory.to_string(),
        "--timings",
        "json",
    ])
    .env("COCO_LOG", "warn");
    let (mut sample, stderr, code) = measure(cmd, "coco-vmm", run)?;
    if code != 0 {
        return Err(BenchError::Run {
            vmm: "coco-vmm",
            run,
            detail: format!("exit status {code}; stderr: {stderr}"),
        });
    }
    let json = stderr
        .lines()
        .find_map(|l| l.strip_prefix(TIMINGS_TAG))
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j.trim()).ok());
    if let Some(report) = json {
        sample.internal_exit_us = report["exit_us"].as_u64();
        sample.rss_outside_kib = report["rss_outside_guest_kib"].as_u64();
        sample.internal_ready_us = report["milestones"].as_array().and_then(|ms| {
            ms.iter()
                .find(|m| m["id"].as_u64() == Some(u64::from(coconut_abi::milestone::KERNEL_READY)))
                .and_then(|m| m["us"].as_u64())
        });
    }
    Ok(sample)
}

fn stage(name: &str, dir: &Path) -> Result<PathBuf, BenchError> {
    let bytes = coco_images::builtin(name).ok_or_else(|| BenchError::Run {
        vmm: "qemu",
        run: 0,
        detail: format!("no built-in image {name}"),
    })?;
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).map_err(io(format!("writing {}", path.display())))?;
    f.write_all(bytes)
        .map_err(io(format!("writing {}", path.display())))?;
    Ok(path)
}

fn qemu_sample(
    qemu: &Path,
    kernel: &Path,
    initrd: &Path,
    args: &BootBenchArgs,
    run: usize,
) -> Result<Sample, BenchError> {
    let mut cmd = Command::new(qemu);
    cmd.args(["-M", "microvm,pic=on,pit=on,rtc=on", "-accel", "kvm"])
        .args(["-cpu", "host,-arch-capabilities", "-m"])
        .arg(args.memory.to_string())
        .args(["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"])
        .args(["-serial", "stdio", "-display", "none", "-monitor", "none"])
        .args(["-device", "isa-debug-exit,iobase=0x501,iosize=1"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "coco.gate=trap coco.guest=bench"]);
    let (sample, stderr, code) = measure(cmd, "qemu", run)?;
    // isa-debug-exit reports (status << 1) | 1; the guest writes 0.
    if code != 1 {
        return Err(BenchError::Run {
            vmm: "qemu",
            run,
            detail: format!("exit status {code}; stderr: {stderr}"),
        });
    }
    Ok(sample)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn fmt_opt(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{v:.2} {unit}"))
        .unwrap_or_else(|| "-".into())
}

/// Runs a benchmark and prints its report.
pub fn run(cmd: BenchCommand) -> Result<(), BenchError> {
    match cmd {
        BenchCommand::Boot(args) => boot(&args),
    }
}

fn boot(args: &BootBenchArgs) -> Result<(), BenchError> {
    let exe = std::env::current_exe().map_err(io("locating coco-vmm"))?;
    let flavour = crate::kvm_flavour::KvmFlavour::detect();
    let n = args.iterations.max(1);
    println!(
        "bench boot: {n} boots each, {} MiB, KVM: {}",
        args.memory,
        flavour.describe()
    );
    let coco: Vec<Sample> = (0..n)
        .map(|i| coco_sample(&exe, args, i))
        .collect::<Result<_, _>>()?;
    let qemu: Option<Vec<Sample>> = if args.no_qemu {
        None
    } else {
        let dir = std::env::temp_dir().join(format!("coco-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io("creating a staging directory"))?;
        let kernel = stage("guest-kernel", &dir)?;
        let initrd = stage("ramdisk", &dir)?;
        let samples = (0..n)
            .map(|i| qemu_sample(&args.qemu, &kernel, &initrd, args, i))
            .collect::<Result<Vec<_>, _>>();
        let _ = std::fs::remove_dir_all(&dir);
        Some(samples?)
    };

    let col =
        |s: &[Sample], f: &dyn Fn(&Sample) -> Option<f64>| median(s.iter().filter_map(f).collect());
    let c_ready = col(&coco, &|s| Some(ms(s.ready)));
    let c_exit = col(&coco, &|s| Some(ms(s.exit)));
    println!("coco-vmm (median of {n}):");
    println!(
        "  process start -> \"{READY_LINE}\" on console: {}",
        fmt_opt(c_ready, "ms")
    );
    println!(
        "  process start -> exit:                      {}",
        fmt_opt(c_exit, "ms")
    );
    println!(
        "  VMM start -> kernel-ready milestone (port 0x440): {}",
        fmt_opt(
            col(&coco, &|s| s.internal_ready_us.map(|u| u as f64 / 1e3)),
            "ms"
        )
    );
    println!(
        "  VMM start -> VM stop (internal):                  {}",
        fmt_opt(
            col(&coco, &|s| s.internal_exit_us.map(|u| u as f64 / 1e3)),
            "ms"
        )
    );
    println!(
        "  VMM RSS outside guest memory: {}",
        fmt_opt(col(&coco, &|s| s.rss_outside_kib.map(|k| k as f64)), "KiB")
    );
    if let Some(qemu) = qemu {
        let q_ready = col(&qemu, &|s| Some(ms(s.ready)));
        let q_exit = col(&qemu, &|s| Some(ms(s.exit)));
        println!("qemu-system-x86_64 -M microvm (median of {n}):");
        println!(
            "  process start -> \"{READY_LINE}\" on console: {}",
            fmt_opt(q_ready, "ms")
        );
        println!(
            "  process start -> exit:                      {}",
            fmt_opt(q_exit, "ms")
        );
        if let (Some(c), Some(q)) = (c_ready, q_ready) {
            println!("ratio coco/qemu, to kernel ready: {:.3}", c / q);
        }
        if let (Some(c), Some(q)) = (c_exit, q_exit) {
            println!("ratio coco/qemu, to exit:         {:.3}", c / q);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
