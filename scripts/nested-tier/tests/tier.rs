//! The nested-QEMU tier under `cargo test`: boots a Linux L1 under QEMU TCG
//! (with `kvm_amd` inside) and runs the tenants there; one failing inner
//! test fails this test with its output.
//!
//! When the machine really cannot run the tier (no `qemu-system-x86_64`, or
//! the Debian packages cannot be fetched) the tests print a loud
//! `NESTED TIER SKIPPED: <reason>` and pass, and the reason is appended to
//! `target/nested-tier-skipped.txt`. `COCO_NESTED_REQUIRE=1` turns a skip
//! into a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use coco_nested::tenants::{self, Binaries, Tenant};
use coco_nested::{Cache, TierOptions, TierReport, tier, tool};

/// One L1 at a time: TCG is CPU-bound, and the tests share the cache.
static SERIAL: Mutex<()> = Mutex::new(());

fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| tmp.to_path_buf())
}

fn skip_file() -> PathBuf {
    let file = target_dir().join("nested-tier-skipped.txt");
    static FRESH: OnceLock<()> = OnceLock::new();
    FRESH.get_or_init(|| {
        let _ = std::fs::remove_file(&file);
    });
    file
}

/// Skips `test` loudly (or fails it under `COCO_NESTED_REQUIRE=1`).
fn skip(test: &str, reason: &str) {
    if std::env::var_os("COCO_NESTED_REQUIRE").is_some_and(|v| v == "1") {
        panic!("nested tier required (COCO_NESTED_REQUIRE=1) but cannot run: {reason}");
    }
    // Straight to the stderr handle: libtest captures `eprintln!` of
    // passing tests, and this must show.
    let bar = "=".repeat(60);
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\nNESTED TIER SKIPPED: {test}: {reason}\n{bar}\n"
    );
    let file = skip_file();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
    {
        let _ = writeln!(f, "{test}: {reason}");
    }
}

/// The package cache, or the reason the machine cannot run the tier.
fn cache() -> Result<Cache, String> {
    // First call in this process: forget the skips of an earlier run.
    let _ = skip_file();
    if tool::which("qemu-system-x86_64").is_none() {
        return Err("qemu-system-x86_64 is not installed (scripts/setup installs it)".into());
    }
    Cache::prepare().map_err(|e| format!("cannot fetch the Debian packages: {e}"))
}

fn run(cache: &Cache, selected: &[Tenant]) -> TierReport {
    let tests: Vec<_> = selected.iter().map(|t| t.test.clone()).collect();
    let opts = TierOptions {
        echo: std::env::var_os("COCO_NESTED_ECHO").is_some(),
        ..TierOptions::default()
    };
    let report = tier::run_tier(cache, &tests, &opts)
        .unwrap_or_else(|e| panic!("the nested tier could not run: {e}"));
    let _ = writeln!(
        std::io::stderr(),
        "nested tier: L1 {} ready in {:.1?}, QEMU wall {:.1?}",
        report.kernel_release,
        report.boot_time,
        report.wall
    );
    report
}

#[test]
fn tenants_pass_inside_l1_on_kvm_amd() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cache = match cache() {
        Ok(c) => c,
        Err(reason) => return skip("tenants_pass_inside_l1_on_kvm_amd", &reason),
    };
    // The tenants run the host's debug coco-vmm from this target dir inside
    // L1; build it now so it is current (a no-op under `cargo test
    // --workspace`, which has built it already).
    let bins = Binaries::build(&target_dir())
        .and_then(|b| b.stage_l2_linux(&target_dir(), &cache))
        .unwrap_or_else(|e| panic!("cannot build coco-vmm for the nested tier: {e}"));
    let selected = tenants::all(&bins);
    let report = run(&cache, &selected);
    let failures = tenants::failures(&selected, &report);
    assert!(
        failures.is_empty(),
        "{} inner test(s) failed in L1:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|(n, why)| format!("=== {n} ===\n{why}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn broken_inner_tests_fail_the_harness_with_their_output() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cache = match cache() {
        Ok(c) => c,
        Err(reason) => return skip("broken_inner_tests_fail_the_harness", &reason),
    };
    let bins = Binaries::in_target_dir(&target_dir());
    let names: Vec<String> = tenants::harness_selftests()
        .into_iter()
        .map(|t| t.test.name)
        .collect();
    let selected = tenants::select(&bins, &names).expect("self-tests exist");
    let report = run(&cache, &selected);
    let failures = tenants::failures(&selected, &report);
    let why = |name: &str| {
        failures
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, w)| w.clone())
            .unwrap_or_else(|| panic!("{name} was not reported as failed: {failures:?}"))
    };
    // Exit status 1, with the test's own output in the message.
    let fails = why("harness-selftest-fails");
    assert!(fails.contains("exited rc=1"), "{fails}");
    assert!(
        fails.contains("this inner test fails on purpose"),
        "{fails}"
    );
    // L1 panicked: no END marker; the console tail shows the panic.
    let panics = why("harness-selftest-panics");
    assert!(panics.contains("before its END marker"), "{panics}");
    assert!(panics.contains("panicking L1 on purpose"), "{panics}");
    assert!(panics.contains("Kernel panic"), "{panics}");
    // A test after the panic cannot pass.
    let after = why("harness-selftest-passes");
    assert!(after.contains("not run"), "{after}");
    assert!(!report.all_done);
}
