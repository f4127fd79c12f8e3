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

use crate::cache::workspace_root;
use crate::tier::{InnerResult, InnerTest, TierReport};
use crate::{Error, Result, tool};

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
}

impl Binaries {
    /// The binaries of `target_dir/debug`.
    pub fn in_target_dir(target_dir: &Path) -> Self {
        Self {
            coco_vmm: target_dir.join("debug/coco-vmm"),
        }
    }

    /// Builds them (`cargo build -p coco-vmm`, debug, into `target_dir`) so
    /// they are current before L1 boots. `cargo` is `$CARGO` when run from
    /// cargo, else `cargo` from PATH.
    pub fn build(target_dir: &Path) -> Result<Self> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        tool::run(
            Command::new(cargo)
                .args(["build", "-q", "-p", "coco-vmm", "--bin", "coco-vmm"])
                .env("CARGO_TARGET_DIR", target_dir)
                .current_dir(workspace_root()),
            Duration::from_secs(1800),
        )?;
        let bins = Self::in_target_dir(target_dir);
        if !bins.coco_vmm.is_file() {
            return Err(Error::MissingFile {
                what: "debug/coco-vmm after cargo build".into(),
                dir: target_dir.to_path_buf(),
            });
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
    vec![boot_guest_kernel_on_kvm_amd(bins)]
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
    want(c.last() == Some(&"kernel ready"), "\"kernel ready\" last");
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
            want(ids == [1, 2], "milestones [1, 2]");
            let us = |v: &Value| v.as_u64().unwrap_or(u64::MAX);
            want(
                us(&t["milestones"][0]["us"]) <= us(&t["milestones"][1]["us"])
                    && us(&t["milestones"][1]["us"]) <= us(&t["exit_us"]),
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
