//! `coco-nested`: run the nested-QEMU tier by hand.
//!
//! ```sh
//! cargo run -p coco-nested -- list
//! cargo run -p coco-nested -- run [TEST...] [--keep] [--quiet]
//! cargo run -p coco-nested -- prepare
//! cargo run -p coco-nested -- bench [--no-build]
//! ```

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use coco_nested::tenants::{self, Binaries};
use coco_nested::{Cache, TierOptions, tier};

#[derive(Parser, Debug)]
#[command(about = "Nested-QEMU test tier: coco's tests inside a Linux L1 with kvm_amd")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the inner tests (default tenants, then harness self-tests).
    List,
    /// Fetch and unpack the Debian packages into the cache.
    Prepare,
    /// Benchmark virtio-9p from an L2 Linux guest: coco (NineDoor) vs QEMU.
    Bench {
        /// Do not `cargo build --release -p coco-vmm` first.
        #[arg(long)]
        no_build: bool,
        /// Copy L1's console to stderr.
        #[arg(long)]
        echo: bool,
        /// Iterations of each small operation (at most 500: a worker's
        /// session budget).
        #[arg(long, default_value_t = coco_nested::bench::ITERS)]
        iters: u32,
        /// Rounds of (coco, QEMU).
        #[arg(long, default_value_t = coco_nested::bench::ROUNDS)]
        rounds: u32,
        /// `COCO_LOG` for coco-vmm inside L1, e.g.
        /// `warn,coco_vmm::devices::virtio9p=trace` to see every frame.
        #[arg(long, default_value = "warn")]
        log: String,
        /// The coco guest's `virtio_transport`: auto (virtio-pci for
        /// Linux), mmio or pci.
        #[arg(long, default_value = "auto")]
        transport: String,
    },
    /// Boot L1 once and run the named inner tests (default: all tenants).
    Run {
        /// Inner tests to run, in order.
        tests: Vec<String>,
        /// Keep the scratch directory (initramfs, init script).
        #[arg(long)]
        keep: bool,
        /// Do not copy L1's console to stderr.
        #[arg(long)]
        quiet: bool,
        /// Do not `cargo build -p coco-vmm` first.
        #[arg(long)]
        no_build: bool,
    },
}

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    let target = tenants::default_target_dir();
    match cli.cmd {
        Cmd::List => {
            let bins = Binaries::in_target_dir(&target);
            for t in tenants::all(&bins) {
                println!("{:34} {}", t.test.name, t.about);
            }
            for t in tenants::harness_selftests() {
                println!("{:34} (self-test) {}", t.test.name, t.about);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Prepare => {
            let cache = Cache::prepare().context("preparing the package cache")?;
            println!(
                "cache {}: kernel {} ({}), busybox {}",
                cache.dir.display(),
                cache.kernel_release,
                cache.kernel.display(),
                cache.busybox.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench {
            no_build,
            echo,
            iters,
            rounds,
            log,
            transport,
        } => {
            let plan = coco_nested::bench::Plan {
                iters,
                rounds,
                log,
                transport,
            };
            bench(&target, no_build, echo, &plan)
        }
        Cmd::Run {
            tests,
            keep,
            quiet,
            no_build,
        } => run(&target, &tests, keep, !quiet, no_build),
    }
}

fn bench(
    target: &std::path::Path,
    no_build: bool,
    echo: bool,
    plan: &coco_nested::bench::Plan,
) -> Result<ExitCode> {
    plan.check().map_err(|why| anyhow::anyhow!(why))?;
    let cache = Cache::prepare().context("preparing the package cache")?;
    let vmm = if no_build {
        coco_nested::bench::release_vmm(target)?
    } else {
        coco_nested::bench::build_release(target).context("building coco-vmm (release)")?
    };
    let initrd = coco_nested::bench::stage(target, &cache).context("staging the bench guest")?;
    let kernel = std::path::absolute(&cache.kernel).unwrap_or_else(|_| cache.kernel.clone());
    let test = coco_nested::bench::inner_test(&vmm, &kernel, &initrd, plan);
    let opts = TierOptions {
        echo,
        ..TierOptions::default()
    };
    let report = tier::run_tier(&cache, &[test], &opts).context("running L1")?;
    let Some(r) = report.results.first() else {
        anyhow::bail!("L1 reported no result for the benchmark");
    };
    let tables = coco_nested::bench::parse(&r.output)
        .and_then(|sides| {
            (1..=plan.rounds)
                .map(|round| coco_nested::bench::table(&sides, round))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|why| anyhow::anyhow!("{why}\n{}", r.describe()))?;
    for l in r.output.iter().filter(|l| l.contains("BENCH")) {
        println!("{l}");
    }
    for t in tables {
        println!("{t}");
    }
    let sides = coco_nested::bench::parse(&r.output).map_err(|why| anyhow::anyhow!(why))?;
    println!(
        "{}",
        coco_nested::bench::summary(&sides, plan.rounds).map_err(|why| anyhow::anyhow!(why))?
    );
    Ok(ExitCode::SUCCESS)
}

fn run(
    target: &std::path::Path,
    names: &[String],
    keep: bool,
    echo: bool,
    no_build: bool,
) -> Result<ExitCode> {
    let started = Instant::now();
    let cache = Cache::prepare().context("preparing the package cache")?;
    let bins = if no_build {
        Binaries::in_target_dir(target)
    } else {
        Binaries::build(target).context("building coco-vmm")?
    };
    let bins = bins
        .stage_l2_linux(target, &cache)
        .context("staging the L2 Linux guest")?;
    let selected = tenants::select(&bins, names)?;
    let tests: Vec<_> = selected.iter().map(|t| t.test.clone()).collect();
    let opts = TierOptions {
        echo,
        keep,
        ..TierOptions::default()
    };
    let prep = started.elapsed();
    let report = tier::run_tier(&cache, &tests, &opts).context("running L1")?;
    if let Some(dir) = &report.kept {
        eprintln!("kept {}", dir.display());
    }
    let failures = tenants::failures(&selected, &report);
    for r in &report.results {
        match failures.iter().find(|(n, _)| n == &r.name) {
            None => println!("PASS {} ({:.1?})", r.name, r.duration),
            Some((_, why)) => println!("FAIL {}: {why}", r.name),
        }
    }
    if let Some((_, why)) = failures.iter().find(|(n, _)| n == "tier") {
        println!("FAIL tier: {why}");
    }
    let failed = failures.len();
    println!(
        "L1 kernel {}: prepare {:.1?}, boot to READY {:.1?}, QEMU wall {:.1?}, total {:.1?}; {} of {} failed",
        report.kernel_release,
        prep,
        report.boot_time,
        report.wall,
        started.elapsed(),
        failed,
        selected.len()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
