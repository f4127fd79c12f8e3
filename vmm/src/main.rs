//! The `coco-vmm` command: boot one guest, run a hive, check the host, or
//! benchmark. Errors end here as `anyhow` reports; everything below is typed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use coco_hive_config::HiveConfig;
use coco_vmm::boot::image::{self, ImageSource};
use coco_vmm::vm::builder::build_vm;
use coco_vmm::vm::runner::{RunReport, block_stop_signals};
use coco_vmm::vm::spec::{GuestKind, NinePSpec, NinePTransport, VmSpec};
use coco_vmm::{bench, hive, host};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// coco-vmm: a KVM hypervisor that boots coco's microkernel guests and runs
/// hives of them.
///
/// Logging goes to stderr; set COCO_LOG (e.g. COCO_LOG=debug or
/// COCO_LOG=coco_vmm=trace) to change the level (default: info).
#[derive(Parser, Debug)]
#[command(name = "coco-vmm", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Boot one guest kernel and run it until it stops.
    ///
    /// The process exits with the status the guest wrote to the debug-exit
    /// port (0x501); 0 after a guest reset or power-off; 120 after a triple
    /// fault; 121 when KVM could not continue; 128+N after signal N.
    Boot(BootArgs),
    /// Start a hive: every autostart guest of hive.toml in its own VM process.
    ///
    /// Without --config, runs the embedded demo hive (one guest-kernel worker).
    /// Exits 0 when every guest ended with status 0, else with the first
    /// non-zero status.
    Run {
        /// The hive configuration (see docs/hive-toml.md).
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print the resolved configuration and exit without starting anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Report this host: KVM flavour and capabilities, guest CPUID, VFIO and IOMMU.
    Check {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks (results are ratios against a baseline measured in the same run).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(clap::Args, Debug)]
struct BootArgs {
    /// Image format and boot protocol: coconut (a PVH ELF) or linux (a bzImage,
    /// 64-bit boot protocol). Chosen explicitly, never guessed from the file.
    #[arg(long, value_enum, default_value_t = KindArg::Coconut)]
    kind: KindArg,
    /// Kernel image: a PVH ELF path (or a bzImage with --kind linux), or builtin:NAME
    /// for an image built into coco-vmm (builtin:guest-kernel).
    #[arg(long, value_name = "IMAGE")]
    kernel: String,
    /// Initial ramdisk (PVH module 0, or Linux's initrd): a path or builtin:NAME
    /// (builtin:ramdisk).
    #[arg(long, value_name = "IMAGE")]
    initrd: Option<String>,
    /// Extra kernel command line, appended after coco-vmm's own options. With
    /// --kind linux it is the whole command line (console=ttyS0 is added when it
    /// names no console=).
    #[arg(
        long,
        value_name = "STRING",
        default_value = "",
        allow_hyphen_values = true
    )]
    cmdline: String,
    /// Guest RAM in MiB.
    #[arg(long, value_name = "MiB", default_value_t = 64)]
    memory: u64,
    /// Number of vCPUs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    vcpus: u8,
    /// Print boot milestones, exit time and memory use to stderr when the guest stops.
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "human")]
    timings: Option<TimingsFormat>,
    /// Guest name: the prefix of its console lines on stdout.
    #[arg(long, value_name = "NAME", default_value = "guest")]
    name: String,
    /// Also append the guest's console output to FILE.
    #[arg(long, value_name = "FILE")]
    console_log: Option<PathBuf>,
    /// Do not echo the guest console to stdout.
    #[arg(long)]
    no_echo: bool,
    /// Pass a host PCI device through with VFIO: its sysfs path or PCI address
    /// (dddd:bb:dd.f or bb:dd.f), bound to vfio-pci; `,no-mmap` traps every BAR
    /// access instead of mapping BARs into the guest. Repeatable.
    #[arg(long, value_name = "DEVICE[,no-mmap]")]
    vfio: Vec<String>,
    /// Give the guest a virtio-9p device bridged to the 9P server on this
    /// inherited stream socket (the hive supervisor passes it; internal).
    #[arg(long, value_name = "FD")]
    ninep_fd: Option<i32>,
    /// The virtio-9p mount tag.
    #[arg(
        long,
        value_name = "TAG",
        default_value = "hive",
        requires = "ninep_fd"
    )]
    ninep_tag: String,
    /// How the guest reaches the virtio-9p device: `auto` is virtio-pci (with
    /// MSI-X) for Linux and virtio-mmio for coconut.
    #[arg(long, value_enum, default_value = "auto", requires = "ninep_fd")]
    ninep_transport: TransportArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TransportArg {
    /// By guest kind.
    Auto,
    /// A virtio-mmio window.
    Mmio,
    /// A virtio-pci function.
    Pci,
}

/// The transport `arg` asks for, for a guest of `kind`. guest-kernel's
/// driver speaks virtio-mmio only, so `pci` for a coconut guest is refused.
fn ninep_transport(arg: TransportArg, kind: GuestKind) -> Result<NinePTransport> {
    match (arg, kind) {
        (TransportArg::Auto, k) => Ok(NinePTransport::default_for(k)),
        (TransportArg::Mmio, _) => Ok(NinePTransport::Mmio),
        (TransportArg::Pci, GuestKind::Linux) => Ok(NinePTransport::Pci),
        (TransportArg::Pci, k) => {
            bail!("--ninep-transport pci: {k} guests speak virtio-mmio only")
        }
    }
}

/// Takes ownership of an inherited descriptor named on the command line.
fn inherited_fd(fd: i32) -> Result<OwnedFd> {
    if fd <= 2 {
        bail!("--ninep-fd {fd}: standard streams cannot be the bridge");
    }
    // SAFETY: F_GETFD only queries the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        bail!("--ninep-fd {fd}: {}", std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (checked above) and this process was
    // handed it to own; nothing else in coco-vmm knows its number, and it is
    // taken exactly once, here, at startup.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: F_SETFD on a descriptor we own.
    unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(owned)
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    /// The coconut microkernel (PVH ELF).
    Coconut,
    /// Linux (bzImage).
    Linux,
}

impl From<KindArg> for GuestKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Coconut => GuestKind::Coconut,
            KindArg::Linux => GuestKind::Linux,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TimingsFormat {
    /// A table.
    Human,
    /// One JSON object on a line starting with "coco-timings ".
    Json,
}

fn print_timings(report: &RunReport, format: TimingsFormat) -> Result<()> {
    match format {
        TimingsFormat::Json => {
            eprintln!("{} {}", bench::TIMINGS_TAG, serde_json::to_string(report)?);
        }
        TimingsFormat::Human => {
            eprintln!("timings for {} (from VMM start):", report.guest);
            for m in &report.milestones {
                eprintln!(
                    "  {:>10.3} ms  milestone {} ({})",
                    m.at.as_secs_f64() * 1e3,
                    m.id,
                    coconut_abi::milestone::name(m.id)
                );
            }
            eprintln!(
                "  {:>10.3} ms  {}",
                report.exit_us as f64 / 1e3,
                report.outcome
            );
            if let Some(kib) = report.rss_outside_guest_kib {
                eprintln!("  VMM RSS outside guest memory: {kib} KiB");
            }
        }
    }
    Ok(())
}

fn boot(args: BootArgs, origin: Instant) -> Result<u8> {
    // Claim the inherited bridge before this process opens any descriptor of
    // its own: a closed number would otherwise be reused (by the signalfd
    // below) and then owned twice.
    let bridge = args.ninep_fd.map(inherited_fd).transpose()?;
    // Block stop signals before any thread exists so every thread inherits it.
    let signals = block_stop_signals().context("blocking stop signals")?;
    let kind: GuestKind = args.kind.into();
    let transport = ninep_transport(args.ninep_transport, kind)?;
    let spec = VmSpec {
        name: args.name,
        kind,
        kernel: image::parse_arg(&args.kernel),
        initrd: args.initrd.as_deref().map(image::parse_arg),
        cmdline: args.cmdline,
        memory_mib: args.memory,
        vcpus: args.vcpus,
        console_log: args.console_log,
        echo_console: !args.no_echo,
        ninep: bridge.map(|fd| NinePSpec {
            bridge: Arc::new(fd),
            mount_tag: args.ninep_tag,
            transport,
        }),
        vfio: args.vfio,
    };
    let vm = build_vm(&spec, origin)
        .with_context(|| format!("cannot build VM {:?} from {}", spec.name, spec.kernel))?;
    let report = vm.run(signals).context("running the VM")?;
    if let Some(format) = args.timings {
        print_timings(&report, format)?;
    }
    Ok(report.outcome.exit_status())
}

fn run_hive(config: Option<PathBuf>, dry_run: bool) -> Result<u8> {
    let builtins = image::builtin_names();
    let config = match config {
        Some(path) => HiveConfig::load(&path, &builtins)?,
        None => HiveConfig::embedded(&builtins)?,
    };
    if dry_run {
        println!("hive {} ({})", config.name, config.origin);
        println!("state dir: {}", hive::state_dir(&config).display());
        for g in &config.guests {
            println!(
                "guest {}: {} kernel={} initrd={} memory={}MiB vcpus={} role={} autostart={}",
                g.name,
                g.kind,
                g.kernel,
                g.initrd
                    .as_ref()
                    .map(ImageSource::to_string)
                    .unwrap_or("-".into()),
                g.memory_mib,
                g.vcpus,
                g.role,
                g.autostart
            );
        }
        return Ok(0);
    }
    let exe = std::env::current_exe().context("locating the coco-vmm executable")?;
    Ok(hive::run(&config, &exe)?)
}

/// Colour the log only on a terminal, and never when `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org>): a serial console is a terminal
/// too, and captured logs should stay plain text.
fn log_colours(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    let origin = Instant::now();
    let filter = EnvFilter::try_from_env("COCO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colours(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Boot(args) => boot(args, origin),
        Command::Run { config, dry_run } => run_hive(config, dry_run),
        Command::Check { json } => {
            let report = host::probe();
            if json {
                serde_json::to_string_pretty(&report)
                    .map(|s| println!("{s}"))
                    .map(|_| 0)
                    .map_err(Into::into)
            } else {
                print!("{report}");
                Ok(0)
            }
        }
        Command::Bench(cmd) => bench::run(cmd).map(|_| 0).map_err(Into::into),
    };
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("coco-vmm: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::log_colours;

    #[test]
    fn no_color_turns_colours_off_even_on_a_terminal() {
        assert!(log_colours(true, None));
        assert!(log_colours(true, Some("".into())));
        assert!(!log_colours(true, Some("1".into())));
        assert!(!log_colours(false, None));
    }
}
