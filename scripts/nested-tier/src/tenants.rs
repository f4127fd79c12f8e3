//! The named inner tests ("tenants") of the tier and their assertions.
//!
//! A tenant is an [`InnerTest`] (a command line run inside L1) plus a check
//! of its captured output. To add one: write a constructor returning a
//! [`Tenant`] and list it in [`all`] (or in [`harness_selftests`] for tests
//! of the harness itself, which are never run by default).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::cache::{Cache, workspace_root};
use crate::initramfs::Initramfs;
use crate::tier::{InnerResult, InnerTest, TierReport};
use crate::{Error, Result, hive9p, modules, tier, tool};

/// A named inner test and what its output must show.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The command run inside L1.
    pub test: InnerTest,
    /// One line for `coco-nested list`.
    pub about: &'static str,
    /// Checks the captured result; `Err` says what is wrong.
    pub check: fn(&InnerResult) -> Result<(), String>,
}

impl Tenant {
    /// The verdict: the END marker with rc=0 and the tenant's own check.
    pub fn verdict(&self, r: &InnerResult) -> Result<(), String> {
        if !r.exited_zero() {
            return Err(r.describe());
        }
        (self.check)(r).map_err(|why| format!("{why}\n{}", r.describe()))
    }
}

/// Where the host-built binaries the tenants run are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `coco-vmm`.
    pub coco_vmm: PathBuf,
    /// `cohsh` (the queen's shell in `linux-mounts-hive`).
    pub cohsh: PathBuf,
    /// The L2 Linux guest's kernel and initramfs, once staged with
    /// [`Binaries::stage_l2_linux`].
    pub l2_linux: Option<L2Linux>,
}

/// What `boot-linux-l2` boots under coco-vmm inside L1.
#[derive(Debug, Clone)]
pub struct L2Linux {
    /// The bzImage (the cache's Debian kernel, the same one L1 runs).
    pub kernel: PathBuf,
    /// The L2 initramfs (busybox and [`L2_INIT`]).
    pub initrd: PathBuf,
    /// The L2 initramfs of `linux-mounts-hive`: busybox, the 9p modules
    /// ([`hive9p::L2_HIVE_MODULES`] and dependencies) and
    /// [`hive9p::L2_HIVE_INIT`].
    pub hive_initrd: PathBuf,
}

/// The console line the L2 guest's `/init` prints (followed by its
/// `uname -r`) before it resets the machine.
pub const L2_MARKER: &str = "COCO-L2 LINUX UP";

/// `/init` of the L2 Linux guest: print the marker, give the UART a second
/// to drain the tty (`reboot -f` does not wait for it), then `reboot -f`,
/// which (with `reboot=k` on the command line) ends in the i8042 reset
/// (port 0x64 <- 0xFE) that coco-vmm turns into a clean exit with status 0.
pub const L2_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
echo "COCO-L2 LINUX UP $(/bin/busybox uname -r)"
/bin/busybox sleep 1
/bin/busybox reboot -f
/bin/busybox sleep 5
echo "COCO-L2 REBOOT FAILED"
"#;

impl Binaries {
    /// The binaries of `target_dir/debug`.
    pub fn in_target_dir(target_dir: &Path) -> Self {
        Self {
            coco_vmm: target_dir.join("debug/coco-vmm"),
            cohsh: target_dir.join("debug/cohsh"),
            l2_linux: None,
        }
    }

    /// Writes the L2 Linux guest's initramfs (busybox from `cache`, `/init`
    /// = [`L2_INIT`]) to `target_dir/nested-l2/linux-initramfs.cpio`, where L1
    /// sees it under `/host` (a target dir under /tmp is bind-mounted into
    /// L1's /tmp because the tenant names it), and records it with the
    /// cache's kernel.
    pub fn stage_l2_linux(mut self, target_dir: &Path, cache: &Cache) -> Result<Self> {
        let dir = target_dir.join("nested-l2");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let busybox =
            std::fs::read(&cache.busybox).map_err(|e| Error::io("read", &cache.busybox, e))?;
        let image = Initramfs::build(&[], &busybox, L2_INIT);
        let initrd = dir.join("linux-initramfs.cpio");
        std::fs::write(&initrd, image).map_err(|e| Error::io("write", &initrd, e))?;
        let modules = modules::resolve(&cache.modules_dir, hive9p::L2_HIVE_MODULES)?;
        let hive_image = Initramfs::build(&modules, &busybox, hive9p::L2_HIVE_INIT);
        let hive_initrd = dir.join("linux-hive-initramfs.cpio");
        std::fs::write(&hive_initrd, hive_image)
            .map_err(|e| Error::io("write", &hive_initrd, e))?;
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        self.l2_linux = Some(L2Linux {
            kernel: absolute(&cache.kernel),
            initrd: absolute(&initrd),
            hive_initrd: absolute(&hive_initrd),
        });
        Ok(self)
    }

    /// Builds them (`cargo build -p coco-vmm -p cohsh`, debug, into `target_dir`) so
    /// they are current before L1 boots. `cargo` is `$CARGO` when run from
    /// cargo, else `cargo` from PATH.
    pub fn build(target_dir: &Path) -> Result<Self> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        tool::run(
            Command::new(cargo)
                .args([
                    "build", "-q", "-p", "coco-vmm", "--bin", "coco-vmm", "-p", "cohsh", "--bin",
                    "cohsh",
                ])
                .env("CARGO_TARGET_DIR", target_dir)
                .current_dir(workspace_root()),
            Duration::from_secs(1800),
        )?;
        let bins = Self::in_target_dir(target_dir);
        for (bin, what) in [
            (&bins.coco_vmm, "debug/coco-vmm after cargo build"),
            (&bins.cohsh, "debug/cohsh after cargo build"),
        ] {
            if !bin.is_file() {
                return Err(Error::MissingFile {
                    what: what.into(),
                    dir: target_dir.to_path_buf(),
                });
            }
        }
        Ok(bins)
    }
}

/// `$CARGO_TARGET_DIR`, else `<workspace>/target`.
pub fn default_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The tenants the tier runs by default, in order.
pub fn all(bins: &Binaries) -> Vec<Tenant> {
    vec![
        boot_guest_kernel_on_kvm_amd(bins),
        boot_linux_l2(bins),
        vfio_edu(bins),
        vfio_edu_trapped(bins),
        linux_mounts_hive(bins),
        linux_mounts_hive_mmio(bins),
    ]
}

/// Tenants that test the harness itself (selected by name only, never by
/// default): one exits 1, one panics L1 (so its END marker never comes),
/// one would pass but cannot run after the panic.
pub fn harness_selftests() -> Vec<Tenant> {
    let sh = |name: &str, script: &str, about: &'static str| Tenant {
        test: InnerTest::new(name, ["/bin/sh", "-c", script], Duration::from_secs(30)),
        about,
        check: |_| Ok(()),
    };
    vec![
        sh(
            "harness-selftest-fails",
            "echo this inner test fails on purpose; exit 1",
            "exits 1 on purpose: the harness must report it with its output",
        ),
        sh(
            "harness-selftest-panics",
            "echo panicking L1 on purpose; echo c > /proc/sysrq-trigger; sleep 30",
            "panics L1 on purpose: no END marker, the console tail is reported",
        ),
        sh(
            "harness-selftest-passes",
            "echo fine",
            "exits 0 (reported as not run when an earlier test stopped L1)",
        ),
    ]
}

/// The verdict of each selected tenant on `report`: `(name, Err(why))` for
/// each failure, in run order. Empty means everything passed.
pub fn failures(selected: &[Tenant], report: &TierReport) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = selected
        .iter()
        .zip(&report.results)
        .filter_map(|(t, r)| t.verdict(r).err().map(|why| (t.test.name.clone(), why)))
        .collect();
    if report.results.len() < selected.len() {
        out.push(("tier".into(), "fewer results than inner tests".into()));
    } else if out.is_empty() && !report.all_done {
        out.push(("tier".into(), "L1 never printed ALL DONE".into()));
    }
    out
}

/// Looks tenants up by name (default and self-test lists alike), or all
/// default tenants when `names` is empty.
pub fn select(bins: &Binaries, names: &[String]) -> Result<Vec<Tenant>> {
    if names.is_empty() {
        return Ok(all(bins));
    }
    let known: Vec<Tenant> = all(bins).into_iter().chain(harness_selftests()).collect();
    names
        .iter()
        .map(|n| {
            known
                .iter()
                .find(|t| &t.test.name == n)
                .cloned()
                .ok_or_else(|| Error::UnknownTest(n.clone()))
        })
        .collect()
}

/// `coco-vmm boot` of guest-kernel with 2 vCPUs on L1's `kvm_amd`, with the
/// assertions of `vmm/tests/boot.rs` plus the hardware `syscall` gate.
pub fn boot_guest_kernel_on_kvm_amd(bins: &Binaries) -> Tenant {
    let vmm = bins.coco_vmm.display().to_string();
    Tenant {
        test: InnerTest::new(
            "boot-guest-kernel-on-kvm-amd",
            [
                vmm.as_str(),
                "boot",
                "--kernel",
                "builtin:guest-kernel",
                "--initrd",
                "builtin:ramdisk",
                "--vcpus",
                "2",
                "--timings",
                "json",
            ],
            Duration::from_secs(300),
        )
        .env("COCO_LOG", "info")
        .env("NO_COLOR", "1"),
        about: "coco-vmm boots guest-kernel (2 vCPUs, ramdisk) on kvm_amd; syscall gate",
        check: check_guest_kernel_boot,
    }
}

/// `coco-vmm boot --kind linux` of the cache's Debian kernel (256 MiB, one
/// vCPU) with a busybox initramfs whose `/init` prints [`L2_MARKER`] and
/// resets: the marker must reach the console and coco-vmm must exit 0
/// (outcome `reset`). Needs [`Binaries::stage_l2_linux`]; without it the
/// tenant fails and says so.
pub fn boot_linux_l2(bins: &Binaries) -> Tenant {
    let name = "boot-linux-l2";
    let about = "coco-vmm boots Debian's Linux bzImage (64-bit boot protocol, initramfs) as L2; /init prints a marker and resets";
    let Some(l2) = &bins.l2_linux else {
        return not_staged(name, about);
    };
    let vmm = bins.coco_vmm.display().to_string();
    let kernel = l2.kernel.display().to_string();
    let initrd = l2.initrd.display().to_string();
    let script = [
        &format!("out=/tmp/boot-linux-l2.out ready='{L2_MARKER}'\n"),
        "attempt() { \"$@\" > \"$out\" 2>&1; rc=$?; cat \"$out\"; }\n",
        tier::RETRY_EARLY_PANIC,
        "exit $rc\n",
    ]
    .concat();
    Tenant {
        test: InnerTest::new(
            name,
            [
                "/bin/sh",
                "-c",
                script.as_str(),
                name,
                vmm.as_str(),
                "boot",
                "--kind",
                "linux",
                "--kernel",
                kernel.as_str(),
                "--initrd",
                initrd.as_str(),
                "--memory",
                "256",
                "--cmdline",
                "console=ttyS0 panic=-1 reboot=k quiet",
                "--timings",
                "json",
            ],
            Duration::from_secs(180),
        )
        .env("COCO_LOG", "info")
        .env("NO_COLOR", "1"),
        about,
        check: check_linux_l2_boot,
    }
}

fn check_linux_l2_boot(r: &InnerResult) -> Result<(), String> {
    let r = &r.last_attempt();
    let c = console(r);
    let mut missing = Vec::new();
    let up = c
        .iter()
        .find_map(|l| l.strip_prefix(L2_MARKER))
        .map(str::trim);
    if up.is_none_or(str::is_empty) {
        missing.push(format!("console: \"{L2_MARKER} <uname -r>\""));
    }
    if c.iter()
        .any(|l| l.contains("REBOOT FAILED") || l.contains("Kernel panic"))
    {
        missing.push("no reboot failure or kernel panic".into());
    }
    if !r
        .output
        .iter()
        .any(|l| l.contains("KVM flavour: hardware KVM (AMD SVM)"))
    {
        missing.push("log: KVM flavour: hardware KVM (AMD SVM)".into());
    }
    if r.output.iter().any(|l| l.contains("panicked")) {
        missing.push("no panic in coco-vmm".into());
    }
    match timings(r) {
        Ok(t) => {
            if t["outcome"]["kind"] != "reset" {
                missing.push(format!("outcome reset (got {})", t["outcome"]));
            }
        }
        Err(e) => missing.push(e),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing or wrong: {}", missing.join("; ")))
    }
}

/// `linux-mounts-hive`: `coco-vmm run` with a Linux L2 guest `worker-1`
/// that mounts the namespace over virtio-9p (virtio-pci with MSI-X, the
/// default for Linux) and runs [`hive9p`]'s checks, while `cohsh` in L1
/// attaches as the queen and waits for its heartbeat.
pub fn linux_mounts_hive(bins: &Binaries) -> Tenant {
    linux_mounts_hive_over(
        bins,
        "linux-mounts-hive",
        "coco-vmm run: a Linux L2 worker mounts the hive over virtio-9p-pci with MSI-X (ls, cat, echo >>, tail -f + flush, denials); cohsh as queen sees its heartbeat",
        ("auto", "pci"),
    )
}

/// `linux-mounts-hive-mmio`: the same over a virtio-mmio window
/// (`virtio_transport = "mmio"`), which Linux finds in the DSDT.
pub fn linux_mounts_hive_mmio(bins: &Binaries) -> Tenant {
    linux_mounts_hive_over(
        bins,
        "linux-mounts-hive-mmio",
        "the same checks with the Linux worker on a virtio-mmio window (LNRO0005 in the DSDT)",
        ("mmio", "mmio"),
    )
}

/// The hive tenant with worker-1's `virtio_transport` and the transport
/// the guest must find.
fn linux_mounts_hive_over(
    bins: &Binaries,
    name: &'static str,
    about: &'static str,
    (transport, expect): (&str, &str),
) -> Tenant {
    let Some(l2) = &bins.l2_linux else {
        return not_staged(name, about);
    };
    let arg = |p: &Path| p.display().to_string();
    Tenant {
        test: InnerTest::new(
            name,
            [
                "/bin/sh".to_string(),
                "-c".into(),
                [hive9p::HIVE_SCRIPT, tier::RETRY_EARLY_PANIC, "exit $rc\n"].concat(),
                name.into(),
                arg(&bins.coco_vmm),
                arg(&bins.cohsh),
                arg(&l2.kernel),
                arg(&l2.hive_initrd),
                transport.into(),
                expect.into(),
            ],
            Duration::from_secs(300),
        )
        .env("COCO_LOG", "info")
        .env("NO_COLOR", "1"),
        about,
        check: hive9p::check_linux_mounts_hive,
    }
}

/// A tenant that fails saying the L2 inputs were not staged.
fn not_staged(name: &str, about: &'static str) -> Tenant {
    Tenant {
        test: InnerTest::new(
            name,
            [
                "/bin/sh",
                "-c",
                "echo 'the L2 Linux inputs were not staged (Binaries::stage_l2_linux)'; exit 2",
            ],
            Duration::from_secs(10),
        ),
        about,
        check: |_| Err("not staged".into()),
    }
}

/// The inner script of the `vfio-edu*` tenants (`$1` is coco-vmm, `$2`
/// the `--vfio` options after the device): find QEMU's `edu` (1234:11e8)
/// in L1, hand it to vfio-pci (unbind whatever holds it, `driver_override`,
/// `drivers_probe`; a no-op when it already is), then boot guest-kernel
/// with it passed through and `coco.test=edu`.
pub const VFIO_EDU_SCRIPT: &str = r#"set -e
dev=
for d in /sys/bus/pci/devices/*; do
  if [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ]; then
    dev=${d##*/}
  fi
done
if [ -z "$dev" ]; then echo "vfio-edu: no edu device (1234:11e8) in L1"; exit 3; fi
sys=/sys/bus/pci/devices/$dev
group=$(readlink "$sys/iommu_group") || { echo "vfio-edu: $dev has no IOMMU group"; exit 3; }
bound=$(readlink "$sys/driver" || true)
if [ "${bound##*/}" != vfio-pci ]; then
  if [ -n "$bound" ]; then echo "$dev" > "$sys/driver/unbind"; fi
  echo vfio-pci > "$sys/driver_override"
  echo "$dev" > /sys/bus/pci/drivers_probe
fi
driver=$(readlink "$sys/driver") || { echo "vfio-edu: vfio-pci did not bind $dev"; exit 3; }
echo "vfio-edu: $dev group ${group##*/} driver ${driver##*/}"
exec "$1" boot --kernel builtin:guest-kernel --cmdline coco.test=edu --vfio "$dev$2" --timings json
"#;

/// Console lines the `edu` test must print, in order.
pub const EDU_LINES: &[&str] = &[
    "edu: id 0x10000ed",
    "edu: liveness ok",
    "edu: factorial 10! = 3628800",
    "edu: dma ok 4095 bytes",
    "edu: msi vector 0x45 received",
    "edu: all tests passed",
];

/// `vfio-edu`: L1's `edu` bound to vfio-pci and passed through by
/// coco-vmm (`--vfio`) to guest-kernel, whose `coco.test=edu` checks the
/// registers, DMA both ways through the vIOMMU and an MSI into its LAPIC.
pub fn vfio_edu(bins: &Binaries) -> Tenant {
    Tenant {
        test: edu_test(bins, "vfio-edu", ""),
        about: "L1's QEMU edu device passed through with VFIO to guest-kernel: registers, DMA both ways, MSI",
        check: check_vfio_edu,
    }
}

/// `vfio-edu-trapped`: the same with `--vfio <dev>,no-mmap`, so BAR 0 is
/// not a KVM memory slot but trapped and forwarded with pread/pwrite.
pub fn vfio_edu_trapped(bins: &Binaries) -> Tenant {
    Tenant {
        test: edu_test(bins, "vfio-edu-trapped", ",no-mmap"),
        about: "the same with BAR accesses trapped and forwarded with pread/pwrite (--vfio DEV,no-mmap)",
        check: check_vfio_edu_trapped,
    }
}

fn edu_test(bins: &Binaries, name: &str, options: &str) -> InnerTest {
    let vmm = bins.coco_vmm.display().to_string();
    InnerTest::new(
        name,
        [
            "/bin/sh",
            "-c",
            VFIO_EDU_SCRIPT,
            name,
            vmm.as_str(),
            options,
        ],
        Duration::from_secs(300),
    )
    .env("COCO_LOG", "info")
    .env("NO_COLOR", "1")
}

fn check_vfio_edu(r: &InnerResult) -> Result<(), String> {
    check_edu(r, "BAR 0 (1024 KiB) at 0xe0000000, KVM memory slot")
}

fn check_vfio_edu_trapped(r: &InnerResult) -> Result<(), String> {
    check_edu(r, "BAR 0 (1024 KiB) at 0xe0000000, trapped")
}

fn check_edu(r: &InnerResult, bar_line: &str) -> Result<(), String> {
    let c = console(r);
    let mut missing = Vec::new();
    let mut at = 0;
    for line in EDU_LINES {
        match c[at..].iter().position(|l| l == line) {
            Some(p) => at += p + 1,
            None => missing.push(format!("console (in order): {line:?}")),
        }
    }
    if c.iter().any(|l| l.starts_with("edu: FAIL")) {
        missing.push("no \"edu: FAIL\" line".into());
    }
    for (needle, what) in [
        ("vfio-edu: ", "the script's device line"),
        (bar_line, bar_line),
        ("guest RAM mapped for DMA", "log: passed through"),
        ("MSI enabled by the guest", "log: MSI enabled by the guest"),
        ("KVM flavour: hardware KVM (AMD SVM)", "log: hardware KVM"),
    ] {
        if !r.output.iter().any(|l| l.contains(needle)) {
            missing.push(what.into());
        }
    }
    if r.output.iter().any(|l| l.contains("panicked")) {
        missing.push("no panic in coco-vmm".into());
    }
    match timings(r) {
        Ok(t) => {
            if t["outcome"]["kind"] != "guest-exit" || t["outcome"]["status"] != 0 {
                missing.push(format!(
                    "outcome guest-exit status 0 (got {})",
                    t["outcome"]
                ));
            }
        }
        Err(e) => missing.push(e),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing or wrong: {}", missing.join("; ")))
    }
}

/// The guest's console lines (`[guest] ` prefix removed).
fn console(r: &InnerResult) -> Vec<&str> {
    r.output
        .iter()
        .filter_map(|l| l.find("[guest] ").map(|p| &l[p + "[guest] ".len()..]))
        .collect()
}

fn check_guest_kernel_boot(r: &InnerResult) -> Result<(), String> {
    let c = console(r);
    let has = |line: &str| c.contains(&line);
    let mut missing = Vec::new();
    let mut want = |ok: bool, what: &str| {
        if !ok {
            missing.push(what.to_string());
        }
    };
    want(
        c.first().is_some_and(|l| {
            l.starts_with("coconut guest-kernel ") && l.ends_with("booting (PVH)")
        }),
        "banner first",
    );
    want(
        r.output
            .iter()
            .any(|l| l.contains("KVM flavour: hardware KVM (AMD SVM)")),
        "log: KVM flavour: hardware KVM (AMD SVM)",
    );
    want(
        c.iter()
            .any(|l| l.starts_with("cmdline: coco.gate=syscall coco.guest=guest")),
        "cmdline: coco.gate=syscall coco.guest=guest",
    );
    let usable_kib = (0x9fc00 + (64 << 20) - 0x100000) / 1024;
    for line in [
        "syscall gate: syscall",
        "memmap: 4 entries",
        "memmap: [0x0000000000000000-0x000000000009fc00) ram",
        "memmap: [0x000000000009fc00-0x00000000000e0000) reserved",
        "memmap: [0x00000000000e0000-0x0000000000100000) acpi",
        "memmap: [0x0000000000100000-0x0000000004000000) ram",
        &format!("memory: {usable_kib} KiB usable"),
        "modules: 1",
        "acpi: 2 cpu(s), 1 ioapic(s)",
    ] {
        want(has(line), line);
    }
    want(
        c.iter().any(|l| {
            l.starts_with("module 0: ext2, block size 4096")
                && l.ends_with("label \"coco-ramdisk\"")
        }),
        "module 0: ext2 ... label \"coco-ramdisk\"",
    );
    want(
        c.iter()
            .any(|l| l.starts_with("acpi: rsdp 0xe0000 rev 2, XSDT, tables: FACP APIC")),
        "acpi: rsdp 0xe0000 rev 2, XSDT, tables: FACP APIC",
    );
    want(has("kernel ready"), "kernel ready");
    // The default manifest's shards ran in ring 3 and every system call
    // came through the `syscall` instruction's LSTAR stub (a ring-3 #PF at
    // LSTAR would have been counted as a trap entry and, with this gate,
    // killed the shard), and every shard exited 0.
    want(
        c.iter().any(|l| {
            l.strip_prefix("gate: syscall, syscall entries ")
                .and_then(|rest| rest.strip_suffix(", trap entries 0"))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        }),
        "gate: syscall, syscall entries N>0, trap entries 0",
    );
    want(
        c.iter().any(|l| l.starts_with("profile: shards=")),
        "profile: shards=<n>",
    );
    want(
        c.iter()
            .filter(|l| l.starts_with("profile: id="))
            .all(|l| l.ends_with(" exit=0")),
        "every profile line exit=0",
    );
    want(
        !c.iter().any(|l| l.contains(") killed: ")),
        "no shard killed",
    );
    want(
        c.last() == Some(&"all shards ended: status 0"),
        "\"all shards ended: status 0\" last",
    );
    want(
        !r.output.iter().any(|l| l.contains("panicked")),
        "no panic in coco-vmm",
    );
    match timings(r) {
        Ok(t) => {
            let ids: Vec<u64> = t["milestones"]
                .as_array()
                .map(|a| a.iter().filter_map(|m| m["id"].as_u64()).collect())
                .unwrap_or_default();
            want(ids == [1, 2, 3], "milestones [1, 2, 3]");
            let us = |v: &Value| v.as_u64().unwrap_or(u64::MAX);
            want(
                us(&t["milestones"][0]["us"]) <= us(&t["milestones"][1]["us"])
                    && us(&t["milestones"][1]["us"]) <= us(&t["milestones"][2]["us"])
                    && us(&t["milestones"][2]["us"]) <= us(&t["exit_us"]),
                "milestones in order before exit",
            );
            want(t["outcome"]["kind"] == "guest-exit", "outcome guest-exit");
            want(t["outcome"]["status"] == 0, "outcome status 0");
        }
        Err(e) => want(false, &e),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing or wrong: {}", missing.join("; ")))
    }
}

fn timings(r: &InnerResult) -> Result<Value, String> {
    let line = r
        .output
        .iter()
        .find_map(|l| {
            l.find("coco-timings ")
                .map(|p| &l[p + "coco-timings ".len()..])
        })
        .ok_or("no coco-timings line")?;
    serde_json::from_str(line).map_err(|e| format!("timings JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The captured output of a passing `vfio-edu` run (trimmed).
    fn passing() -> Vec<String> {
        let mut out: Vec<String> = [
            "vfio-edu: 0000:00:01.0 group 1 driver vfio-pci",
            "INFO KVM flavour: hardware KVM (AMD SVM) guest=guest",
            "INFO 0000:00:01.0: BAR 0 (1024 KiB) at 0xe0000000, KVM memory slot",
            "INFO 0000:00:01.0: passed through (IOMMU group 1, guest RAM mapped for DMA, MSI offered on GSI 24)",
            "[guest] kernel ready",
            "INFO 0000:00:01.0: MSI enabled by the guest: address 0xfee00000 data 0x45 -> GSI 24",
        ]
        .map(String::from)
        .to_vec();
        out.extend(EDU_LINES.iter().map(|l| format!("[guest] {l}")));
        out.push(
            r#"coco-timings {"guest":"guest","outcome":{"kind":"guest-exit","status":0},"milestones":[],"exit_us":1}"#
                .into(),
        );
        out
    }

    fn result(output: Vec<String>) -> InnerResult {
        InnerResult {
            name: "vfio-edu".into(),
            rc: Some(0),
            output,
            duration: Duration::from_secs(1),
            problem: None,
        }
    }

    #[test]
    fn vfio_edu_check_accepts_a_full_run() {
        assert_eq!(check_vfio_edu(&result(passing())), Ok(()));
    }

    #[test]
    fn vfio_edu_check_names_what_is_missing() {
        let no_msi: Vec<String> = passing()
            .into_iter()
            .filter(|l| !l.contains("msi vector"))
            .collect();
        let err = check_vfio_edu(&result(no_msi)).unwrap_err();
        assert!(err.contains("edu: msi vector 0x45 received"), "{err}");

        let mut failed = passing();
        failed.insert(5, "[guest] edu: FAIL DMA data mismatch".into());
        let err = check_vfio_edu(&result(failed)).unwrap_err();
        assert!(err.contains("edu: FAIL"), "{err}");

        let mut reordered = passing();
        let dma = reordered.iter().position(|l| l.contains("dma ok")).unwrap();
        let line = reordered.remove(dma);
        reordered.insert(4, line);
        let err = check_vfio_edu(&result(reordered)).unwrap_err();
        assert!(err.contains("dma ok"), "{err}");

        let trapped: Vec<String> = passing()
            .into_iter()
            .map(|l| l.replace("KVM memory slot", "trapped"))
            .collect();
        assert!(check_vfio_edu(&result(trapped.clone())).is_err());
        assert_eq!(check_vfio_edu_trapped(&result(trapped)), Ok(()));
        assert!(check_vfio_edu_trapped(&result(passing())).is_err());
    }
}
