//! `coco-nested bench`: the same L2 Linux guest reads and appends small
//! files and reads 1 MiB, once through coco's virtio-9p + NineDoor and once
//! through QEMU's own virtio-9p, in one L1 boot. Not a test: it prints
//! numbers (docs/benchmarks.md), it asserts nothing about speed.
//!
//! The files each side offers, as alike as the namespace allows:
//! - small read: coco `/proc/boot` (≈ 120 bytes of text), QEMU a 128-byte
//!   file; 64-byte preads at offset 0 on one open fd.
//! - small append: coco the worker's own `/worker/worker-1/telemetry`,
//!   QEMU an empty file; 32-byte `O_APPEND` writes.
//! - 1 MiB: NineDoor has no 1 MiB file by default, so the bench hive sets
//!   `telemetry_ring_kib = 2048` and the guest first appends 1 MiB to its
//!   own telemetry ring, then reads that back from offset 0; QEMU reads a
//!   1 MiB regular file. 64 KiB preads, msize 65536 on both sides.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cache::{Cache, workspace_root};
use crate::hive9p::L2_HIVE_MODULES;
use crate::initramfs::Initramfs;
use crate::tier::InnerTest;
use crate::{Error, Result, modules, tool};

/// Rounds of (coco, QEMU).
pub const ROUNDS: u32 = 2;

/// Iterations of each small operation. A worker's session budget is 1000
/// telemetry writes ("ticks") and 10000 requests (docs/secure9p.md), which
/// the appends, the 1 MiB fill and the reads must fit in.
pub const ITERS: u32 = 500;

/// `/init` of the benchmark guest: mount the tag `hive` and run
/// `/bin/ninep-bench` on the files of the side named by `bench=` on the
/// kernel command line.
pub const BENCH_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mkdir -p /mnt
for m in /lib/modules/*.ko; do insmod "$m"; done
iters=$(sed -n 's/.*bench_iters=\([0-9]*\).*/\1/p' /proc/cmdline)
label=$(sed -n 's/.*bench_label=\([a-z0-9-]*\).*/\1/p' /proc/cmdline)
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=65536 hive /mnt; then
  case "$(cat /proc/cmdline)" in
    *bench=coco*)
      T=/mnt/worker/worker-1/telemetry
      head -c 1048576 /dev/zero | tr '\0' 'x' > /tmp/fill
      dd if=/tmp/fill of=$T bs=32768 oflag=append conv=notrunc 2>/dev/null \
        || echo "BENCH coco FAIL filling the telemetry ring"
      ninep-bench "$label" /mnt/proc/boot $T $T 1048576 "$iters" ;;
    *bench=qemu*)
      ninep-bench "$label" /mnt/small /mnt/append /mnt/big 1048576 "$iters" ;;
    *) echo "BENCH none FAIL no bench= on the command line" ;;
  esac
else
  echo "BENCH mount FAIL"
fi
sleep 1
reboot -f
"#;

/// The inner script (in `chroot /host` in L1): `$1` coco-vmm, `$2` the
/// kernel, `$3` the bench initramfs, `$4` iterations, `$5` rounds, `$6` the
/// coco guest's `virtio_transport`. Each
/// round runs the hive, then QEMU (`-accel kvm`, L1's kvm_amd) on a
/// synthetic share; alternating the two spreads a shared machine's load
/// changes over both sides. Labels are `coco-<round>` and `qemu-<round>`.
pub const BENCH_SCRIPT: &str = r#"vmm=$1 kernel=$2 initrd=$3 iters=$4 rounds=$5 transport=$6
d=/tmp/ninep-bench
rm -rf $d; mkdir -p $d/share
cmdline="console=ttyS0 panic=-1 reboot=k quiet bench_iters=$iters"
head -c 128 /dev/zero | tr '\0' 's' > $d/share/small
head -c 1048576 /dev/zero | tr '\0' 'b' > $d/share/big
round=1
while [ $round -le $rounds ]; do
  rm -rf $d/state
  cat > $d/hive.toml <<EOF
[hive]
name = "bench"
state_dir = "$d/state"
telemetry_ring_kib = 2048

[[guest]]
name = "worker-1"
kind = "linux"
kernel = "$kernel"
initrd = "$initrd"
cmdline = "$cmdline bench=coco bench_label=coco-$round"
memory_mib = 256
virtio_transport = "$transport"
EOF
  "$vmm" run --config $d/hive.toml
  echo "BENCH-EXIT coco-$round rc=$?"
  : > $d/share/append
  qemu-system-x86_64 -accel kvm -cpu host -M pc -m 256 -smp 1 -nodefaults -no-reboot \
    -display none -serial stdio -monitor none \
    -kernel "$kernel" -initrd "$initrd" -append "$cmdline bench=qemu bench_label=qemu-$round" \
    -fsdev local,id=share,path=$d/share,security_model=none \
    -device virtio-9p-pci,fsdev=share,mount_tag=hive
  echo "BENCH-EXIT qemu-$round rc=$?"
  round=$((round + 1))
done
"#;

/// Builds a release `coco-vmm` into `target_dir` (the benchmark compares
/// against QEMU, an optimised build) and returns its path. `cargo` is
/// `$CARGO` when run from cargo, else `cargo` from PATH.
pub fn build_release(target_dir: &Path) -> Result<std::path::PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    tool::run(
        Command::new(cargo)
            .args([
                "build",
                "-q",
                "--release",
                "-p",
                "coco-vmm",
                "--bin",
                "coco-vmm",
            ])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(workspace_root()),
        Duration::from_secs(3600),
    )?;
    release_vmm(target_dir)
}

/// `target_dir/release/coco-vmm`, which must exist.
pub fn release_vmm(target_dir: &Path) -> Result<std::path::PathBuf> {
    let vmm = target_dir.join("release/coco-vmm");
    if !vmm.is_file() {
        return Err(Error::MissingFile {
            what: "release/coco-vmm (cargo build --release -p coco-vmm)".into(),
            dir: target_dir.to_path_buf(),
        });
    }
    Ok(std::path::absolute(&vmm).unwrap_or(vmm))
}

/// Compiles `bench/ninep-bench.c` with the host's `gcc -static` and writes
/// the benchmark guest's initramfs to `target_dir/nested-l2/`; returns its
/// path.
pub fn stage(target_dir: &Path, cache: &Cache) -> Result<std::path::PathBuf> {
    let dir = target_dir.join("nested-l2");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let src = workspace_root().join("scripts/nested-tier/bench/ninep-bench.c");
    let exe = dir.join("ninep-bench");
    if tool::which("gcc").is_none() {
        return Err(Error::MissingTool("gcc".into()));
    }
    tool::run(
        Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&exe)
            .arg(&src),
        Duration::from_secs(120),
    )?;
    let program = std::fs::read(&exe).map_err(|e| Error::io("read", &exe, e))?;
    let busybox =
        std::fs::read(&cache.busybox).map_err(|e| Error::io("read", &cache.busybox, e))?;
    let mods = modules::resolve(&cache.modules_dir, L2_HIVE_MODULES)?;
    let image = Initramfs::build_with(
        &mods,
        &busybox,
        BENCH_INIT,
        &[("/bin/ninep-bench", program.as_slice())],
    );
    let initrd = dir.join("linux-bench-initramfs.cpio");
    std::fs::write(&initrd, image).map_err(|e| Error::io("write", &initrd, e))?;
    Ok(std::path::absolute(&initrd).unwrap_or(initrd))
}

/// What one benchmark run does: iterations per small operation, rounds of
/// (coco, QEMU), and `COCO_LOG` for coco-vmm.
#[derive(Debug, Clone)]
pub struct Plan {
    pub iters: u32,
    pub rounds: u32,
    pub log: String,
    /// The coco guest's `virtio_transport` (`auto`, `mmio` or `pci`).
    pub transport: String,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            iters: ITERS,
            rounds: ROUNDS,
            log: "warn".into(),
            transport: "auto".into(),
        }
    }
}

impl Plan {
    /// Refuses plans the guest's session budget or the shell can't carry.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.iters == 0 || self.iters > ITERS {
            return Err(format!(
                "iterations must be 1..={ITERS} (a worker's session budget)"
            ));
        }
        if self.rounds == 0 || self.rounds > 20 {
            return Err("rounds must be 1..=20".into());
        }
        if self.log.is_empty()
            || !self
                .log
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_:,=.".contains(c))
        {
            return Err(format!(
                "log filter {:?}: only letters, digits and _:,=. allowed",
                self.log
            ));
        }
        if !["auto", "mmio", "pci"].contains(&self.transport.as_str()) {
            return Err(format!("transport {:?}: auto, mmio or pci", self.transport));
        }
        Ok(())
    }
}

/// The inner test running [`BENCH_SCRIPT`].
pub fn inner_test(vmm: &Path, kernel: &Path, initrd: &Path, plan: &Plan) -> InnerTest {
    let arg = |p: &Path| p.display().to_string();
    InnerTest::new(
        "ninep-bench",
        [
            "/bin/sh".to_string(),
            "-c".into(),
            BENCH_SCRIPT.into(),
            "ninep-bench".into(),
            arg(vmm),
            arg(kernel),
            arg(initrd),
            plan.iters.to_string(),
            plan.rounds.to_string(),
            plan.transport.clone(),
        ],
        Duration::from_secs(900),
    )
    .env("COCO_LOG", &plan.log)
    .env("NO_COLOR", "1")
}

/// One side's numbers: metric name (`small-read`, `small-append`,
/// `read-1024KiB`) to its `key=value` fields.
pub type Side = BTreeMap<String, BTreeMap<String, f64>>;

/// Collects the `BENCH <label> <metric> <unit> k=v ...` lines of `output`
/// by label; `FAIL` lines are returned as errors.
pub fn parse(output: &[String]) -> Result<BTreeMap<String, Side>, String> {
    let mut sides: BTreeMap<String, Side> = BTreeMap::new();
    for line in output {
        let Some(pos) = line.find("BENCH ") else {
            continue;
        };
        let words: Vec<&str> = line[pos + "BENCH ".len()..].split_whitespace().collect();
        match words.as_slice() {
            [_, "FAIL", ..] => return Err(line[pos..].to_string()),
            [label, metric, _unit, fields @ ..] if !fields.is_empty() => {
                let values = fields
                    .iter()
                    .filter_map(|f| f.split_once('='))
                    .filter_map(|(k, v)| v.parse::<f64>().ok().map(|v| (k.to_string(), v)))
                    .collect();
                sides
                    .entry((*label).to_string())
                    .or_default()
                    .insert((*metric).to_string(), values);
            }
            _ => {}
        }
    }
    Ok(sides)
}

/// The metrics compared, with the field and unit of each.
const METRICS: [(&str, &str, &str); 6] = [
    ("small-read", "median", "µs"),
    ("small-read", "mean", "µs"),
    ("small-append", "median", "µs"),
    ("small-append", "mean", "µs"),
    ("read-1024KiB", "best", "MiB/s"),
    ("read-1024KiB", "mean", "MiB/s"),
];

/// `metric`'s `key` field in one side's numbers.
fn value(side: &Side, metric: &str, key: &str) -> Result<f64, String> {
    side.get(metric)
        .and_then(|m| m.get(key))
        .copied()
        .ok_or(format!("no {metric} {key}"))
}

/// Over rounds `1..=rounds`: per metric, the median of the per-round
/// ours/QEMU ratios and their range. Each round's two sides ran back to
/// back, so a ratio is the fairest single number a shared machine gives.
pub fn summary(sides: &BTreeMap<String, Side>, rounds: u32) -> Result<String, String> {
    let mut out = format!(
        "over {rounds} round(s): ours/QEMU per round (latency: < 1 is faster; throughput: > 1 is faster)\n"
    );
    out.push_str(&format!(
        "{:<22} {:>8} {:>8} {:>8}\n",
        "metric", "median", "min", "max"
    ));
    for (metric, key, _) in METRICS {
        let mut ratios = Vec::new();
        for round in 1..=rounds {
            let get = |label: String| {
                sides
                    .get(&label)
                    .ok_or(format!("no numbers from {label}"))
                    .and_then(|side| value(side, metric, key))
            };
            let (c, q) = (get(format!("coco-{round}"))?, get(format!("qemu-{round}"))?);
            if q > 0.0 {
                ratios.push(c / q);
            }
        }
        ratios.sort_by(f64::total_cmp);
        let (Some(min), Some(max)) = (ratios.first(), ratios.last()) else {
            continue;
        };
        let n = ratios.len();
        let median = if n % 2 == 1 {
            ratios[n / 2]
        } else {
            (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0
        };
        out.push_str(&format!(
            "{:<22} {median:>8.2} {min:>8.2} {max:>8.2}\n",
            format!("{metric} {key}")
        ));
    }
    Ok(out)
}

/// The comparison table of round `round`: one row per metric, coco, QEMU
/// and ours/QEMU.
pub fn table(sides: &BTreeMap<String, Side>, round: u32) -> Result<String, String> {
    let coco = sides
        .get(&format!("coco-{round}"))
        .ok_or(format!("no numbers from coco run {round}"))?;
    let qemu = sides
        .get(&format!("qemu-{round}"))
        .ok_or(format!("no numbers from QEMU run {round}"))?;
    let mut out = format!(
        "round {round}: nested tier (L1 TCG, L2 on kvm_amd): absolute numbers are not hardware numbers\n"
    );
    out.push_str(&format!(
        "{:<22} {:>17} {:>17} {:>9}\n",
        "metric", "coco", "QEMU", "ours/QEMU"
    ));
    for (metric, key, unit) in METRICS {
        let get = |side: &Side| value(side, metric, key);
        let (c, q) = (get(coco)?, get(qemu)?);
        let ratio = if q > 0.0 { c / q } else { f64::NAN };
        out.push_str(&format!(
            "{:<22} {:>11.1} {unit:<5} {:>11.1} {unit:<5} {ratio:>9.2}\n",
            format!("{metric} {key}"),
            c,
            q
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Vec<String> {
        [
            "[worker-1] BENCH coco-1 small-read us median=100.0 mean=110.0 min=90.0 max=300.0 n=10",
            "[worker-1] BENCH coco-1 small-append us median=120.0 mean=130.0 min=90.0 max=300.0 n=10",
            "[worker-1] BENCH coco-1 read-1024KiB MiB/s best=50.0 mean=40.0 passes=8",
            "[worker-1] BENCH coco-1 done",
            "BENCH qemu-1 small-read us median=50.0 mean=55.0 min=40.0 max=90.0 n=10",
            "BENCH qemu-1 small-append us median=60.0 mean=65.0 min=40.0 max=90.0 n=10",
            "BENCH qemu-1 read-1024KiB MiB/s best=100.0 mean=80.0 passes=8",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn parses_both_sides_and_prints_ratios() {
        let sides = parse(&lines()).unwrap();
        assert_eq!(sides["coco-1"]["small-read"]["median"], 100.0);
        assert_eq!(sides["qemu-1"]["read-1024KiB"]["best"], 100.0);
        let t = table(&sides, 1).unwrap();
        assert!(
            t.starts_with("round 1: nested tier (L1 TCG, L2 on kvm_amd)"),
            "{t}"
        );
        assert!(table(&sides, 2).is_err());
        let row = t
            .lines()
            .find(|l| l.starts_with("small-read median"))
            .unwrap();
        assert!(row.trim_end().ends_with("2.00"), "{row}");
        let row = t
            .lines()
            .find(|l| l.starts_with("read-1024KiB best"))
            .unwrap();
        assert!(row.trim_end().ends_with("0.50"), "{row}");
    }

    #[test]
    fn the_summary_takes_the_median_of_per_round_ratios() {
        let mut l = lines();
        for line in lines() {
            l.push(
                line.replace("coco-1", "coco-2")
                    .replace("qemu-1", "qemu-2")
                    .replace("median=100.0", "median=25.0"),
            );
        }
        for line in lines() {
            l.push(
                line.replace("coco-1", "coco-3")
                    .replace("qemu-1", "qemu-3")
                    .replace("median=100.0", "median=150.0"),
            );
        }
        let sides = parse(&l).unwrap();
        let s = summary(&sides, 3).unwrap();
        let row = s
            .lines()
            .find(|l| l.starts_with("small-read median"))
            .unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        // Ratios 2.0, 0.5, 3.0: median 2.0, min 0.5, max 3.0.
        assert_eq!(&cols[2..], ["2.00", "0.50", "3.00"], "{row}");
        assert!(summary(&sides, 4).is_err(), "round 4 has no numbers");
    }

    #[test]
    fn a_fail_line_or_a_missing_side_is_an_error() {
        let mut l = lines();
        l.push("BENCH qemu-1 FAIL pread big: No data available".into());
        assert!(parse(&l).unwrap_err().contains("pread big"));
        let only_coco: Vec<String> = lines().into_iter().filter(|l| l.contains("coco")).collect();
        assert!(table(&parse(&only_coco).unwrap(), 1).is_err());
    }
}
