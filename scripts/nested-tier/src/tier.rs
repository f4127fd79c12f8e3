//! Running a named list of inner tests in one L1 boot and turning the
//! markers of [`crate::script`] into results.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::initramfs::Initramfs;
use crate::modules::{self, L1_MODULES};
use crate::qemu::{L1, L1Config, Run, Stop};
use crate::script::{self, MARKER};
use crate::{Error, Result};

/// One command line run inside L1 (`chroot /host <argv>`, so `argv[0]` is an
/// absolute path on the host).
#[derive(Debug, Clone)]
pub struct InnerTest {
    /// Its name (`a-z0-9-_`), used in the markers.
    pub name: String,
    /// The command line.
    pub argv: Vec<String>,
    /// Extra environment variables (the rest is `PATH`, `HOME=/tmp`).
    pub env: Vec<(String, String)>,
    /// Time limit inside L1 (`timeout -s KILL`); the host allows a little
    /// more before it kills L1.
    pub timeout: Duration,
}

impl InnerTest {
    /// A test running `argv` with time limit `timeout`.
    pub fn new<I, S>(name: &str, argv: I, timeout: Duration) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.into(),
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            timeout,
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// What one inner test did.
#[derive(Debug, Clone)]
pub struct InnerResult {
    /// The test's name.
    pub name: String,
    /// Its exit status, if its END marker arrived.
    pub rc: Option<i32>,
    /// The console lines between its BEGIN and END markers.
    pub output: Vec<String>,
    /// Wall time from BEGIN to END (or to the failure).
    pub duration: Duration,
    /// Why it has no exit status (hang, L1 panic, ...), with the console tail.
    pub problem: Option<String>,
}

/// How an inner script announces that it retried once (a Linux L2 guest's
/// kernel panicked before its `/init` ran; see [`RETRY_EARLY_PANIC`]).
pub const RETRY_PREFIX: &str = "RETRY: ";

/// Shell for a tenant that boots a Linux L2 guest: runs `$@` with its
/// output in `$out`, and once more — after a `RETRY:` line — if the guest's
/// kernel panicked before `/init` printed `$ready` (Debian's kernel under
/// L1's TCG-emulated SVM has been seen to crash in early boot, in
/// `text_poke_early`, about 1 boot in 75, before any device is probed).
/// Anything after `/init` ran is never retried. Expects `out`, `ready`
/// and a function `attempt` (called with the script's arguments) that runs
/// the test and writes `$out`.
pub const RETRY_EARLY_PANIC: &str = r#"
attempt "$@"
if grep -q 'Kernel panic' "$out" && ! grep -q "$ready" "$out"; then
  echo "RETRY: the Linux guest's kernel panicked before its /init ran: $(grep -m1 'BUG\|Oops\|Kernel panic' "$out")"
  attempt "$@"
fi
"#;

impl InnerResult {
    /// The output of the last attempt: everything after the last `RETRY:`
    /// line (the whole output when there is none). The retry line stays in
    /// the harness's report.
    pub fn last_attempt(&self) -> InnerResult {
        let start = self
            .output
            .iter()
            .rposition(|l| l.starts_with(RETRY_PREFIX))
            .map_or(0, |i| i + 1);
        InnerResult {
            output: self.output.get(start..).unwrap_or_default().to_vec(),
            ..self.clone()
        }
    }

    /// Whether the END marker arrived with rc=0.
    pub fn exited_zero(&self) -> bool {
        self.rc == Some(0)
    }

    /// A one-paragraph account for failure messages: status and output.
    pub fn describe(&self) -> String {
        let status = match (&self.rc, &self.problem) {
            (Some(rc), _) => format!("exited rc={rc}"),
            (None, Some(p)) => p.clone(),
            (None, None) => "did not finish".into(),
        };
        format!(
            "inner test {} {status} after {:.1?}\n--- its output ---\n{}",
            self.name,
            self.duration,
            self.output.join("\n")
        )
    }
}

/// How to run the tier.
#[derive(Debug, Clone)]
pub struct TierOptions {
    /// Copy L1's console to stderr live.
    pub echo: bool,
    /// Keep the scratch directory (initramfs) and say where it is.
    pub keep: bool,
    /// Limit for L1 to print its READY marker.
    pub boot_timeout: Duration,
    /// Limit for QEMU to exit after ALL DONE.
    pub shutdown_timeout: Duration,
    /// L1's memory in MiB.
    pub memory_mib: u32,
}

impl Default for TierOptions {
    fn default() -> Self {
        Self {
            echo: false,
            keep: false,
            boot_timeout: Duration::from_secs(120),
            shutdown_timeout: Duration::from_secs(30),
            memory_mib: 2048,
        }
    }
}

/// What one L1 boot did.
#[derive(Debug)]
pub struct TierReport {
    /// L1's kernel release.
    pub kernel_release: String,
    /// Results in run order (every requested test has one).
    pub results: Vec<InnerResult>,
    /// The whole console.
    pub console: Vec<String>,
    /// QEMU start to the READY marker.
    pub boot_time: Duration,
    /// QEMU start to QEMU exit.
    pub wall: Duration,
    /// Whether ALL DONE was printed.
    pub all_done: bool,
    /// The kept scratch directory, with `--keep`.
    pub kept: Option<PathBuf>,
}

/// Boots L1 once and runs `tests` in order.
pub fn run_tier(cache: &Cache, tests: &[InnerTest], opts: &TierOptions) -> Result<TierReport> {
    let modules = modules::resolve(&cache.modules_dir, L1_MODULES)?;
    let init = script::init_script(&modules, tests)?;
    let busybox =
        std::fs::read(&cache.busybox).map_err(|e| Error::io("read", &cache.busybox, e))?;
    let image = Initramfs::build(&modules, &busybox, &init);
    let scratch = tempfile::Builder::new()
        .prefix("coco-nested-")
        .tempdir()
        .map_err(|e| Error::io("create a temporary directory in", std::env::temp_dir(), e))?;
    let initrd = scratch.path().join("initramfs.cpio");
    std::fs::write(&initrd, &image).map_err(|e| Error::io("write", &initrd, e))?;
    let init_path = scratch.path().join("init.sh");
    std::fs::write(&init_path, &init).map_err(|e| Error::io("write", &init_path, e))?;

    let mut config = L1Config::new(cache.kernel.clone(), initrd);
    config.echo = opts.echo;
    config.memory_mib = opts.memory_mib;
    let mut run = L1::boot(&config)?;
    let outcome = drive(&mut run, tests, opts);
    let all_done = matches!(outcome, Ok((_, _, true)));
    if all_done {
        run.wait_exit(opts.shutdown_timeout);
    } else {
        run.kill();
    }
    let wall = run.elapsed();
    let kept = if opts.keep {
        Some(scratch.keep())
    } else {
        None
    };
    let (boot_time, results, all_done) = outcome?;
    Ok(TierReport {
        kernel_release: cache.kernel_release.clone(),
        results,
        console: run.console().to_vec(),
        boot_time,
        wall,
        all_done,
        kept,
    })
}

/// Follows the markers: READY, then BEGIN/END per test, then ALL DONE.
fn drive(
    run: &mut Run,
    tests: &[InnerTest],
    opts: &TierOptions,
) -> Result<(Duration, Vec<InnerResult>, bool)> {
    let ready_tag = format!("{MARKER} L1 READY");
    let failed_tag = format!("{MARKER} SETUP FAILED");
    let deadline = Instant::now() + opts.boot_timeout;
    loop {
        match run.next_line(deadline) {
            Ok(l) if l.contains(&ready_tag) => break,
            Ok(l) if l.contains(&failed_tag) => {
                let reason = l[l.find(&failed_tag).unwrap_or(0)..].to_string();
                return Err(Error::L1NotReady {
                    reason,
                    tail: run.tail(60),
                });
            }
            Ok(_) => {}
            Err(stop) => {
                let reason = match stop {
                    Stop::Timeout => format!("no READY marker within {:?}", opts.boot_timeout),
                    Stop::Closed => "QEMU exited before the READY marker".into(),
                };
                return Err(Error::L1NotReady {
                    reason,
                    tail: run.tail(60),
                });
            }
        }
    }
    let boot_time = run.elapsed();
    let mut results = Vec::new();
    let mut alive = true;
    for t in tests {
        if !alive {
            results.push(InnerResult {
                name: t.name.clone(),
                rc: None,
                output: Vec::new(),
                duration: Duration::ZERO,
                problem: Some("not run: L1 stopped during an earlier test".into()),
            });
            continue;
        }
        let r = one_test(run, t);
        alive = r.rc.is_some();
        results.push(r);
    }
    let mut all_done = false;
    if alive {
        let done_tag = format!("{MARKER} ALL DONE");
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(l) = run.next_line(deadline) {
            if l.contains(&done_tag) {
                all_done = true;
                break;
            }
        }
    }
    Ok((boot_time, results, all_done))
}

/// Waits for `t`'s BEGIN and END markers, collecting what lies between.
fn one_test(run: &mut Run, t: &InnerTest) -> InnerResult {
    let begin = format!("{MARKER} BEGIN {}", t.name);
    let end = format!("{MARKER} END {} rc=", t.name);
    let start = Instant::now();
    let mut output = Vec::new();
    let mut began = false;
    // The inner `timeout` fires at t.timeout; allow slack for L1 to report.
    let deadline = start + t.timeout + Duration::from_secs(30);
    let problem = loop {
        match run.next_line(deadline) {
            Ok(l) if !began => began = l.contains(&begin),
            Ok(l) => {
                if let Some(pos) = l.find(&end) {
                    let rc_text = &l[pos + end.len()..];
                    let rc = rc_text.trim().parse::<i32>().ok();
                    if let Some(rc) = rc {
                        return InnerResult {
                            name: t.name.clone(),
                            rc: Some(rc),
                            output,
                            duration: start.elapsed(),
                            problem: None,
                        };
                    }
                    break format!("malformed END marker {l:?}");
                }
                output.push(l);
            }
            Err(Stop::Timeout) => {
                break format!(
                    "no END marker within {:?} (hung L1 killed)",
                    t.timeout + Duration::from_secs(30)
                );
            }
            Err(Stop::Closed) => {
                break "L1 stopped (panic or power-off) before its END marker".into();
            }
        }
    };
    run.kill();
    InnerResult {
        name: t.name.clone(),
        rc: None,
        output,
        duration: start.elapsed(),
        problem: Some(format!("{problem}\n--- console tail ---\n{}", run.tail(40))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs [`RETRY_EARLY_PANIC`] with an `attempt` that prints `first`
    /// the first time and `later` after; returns the output lines.
    fn retry_with(first: &str, later: &str) -> Vec<String> {
        let dir =
            std::env::temp_dir().join(format!("coco-retry-{}-{first:.4}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let out = dir.join("out");
        let script = format!(
            "out='{}' ready=UP n=0\nattempt() {{ n=$((n+1)); if [ $n = 1 ]; then echo '{first}' > \"$out\"; else echo '{later}' > \"$out\"; fi; cat \"$out\"; rc=0; }}\n{RETRY_EARLY_PANIC}echo attempts=$n\n",
            out.display()
        );
        let o = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh");
        let _ = std::fs::remove_dir_all(&dir);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .collect()
    }

    fn result(output: Vec<String>) -> InnerResult {
        InnerResult {
            name: "t".into(),
            rc: Some(0),
            output,
            duration: Duration::from_secs(1),
            problem: None,
        }
    }

    #[test]
    fn an_early_kernel_panic_is_retried_once_and_only_the_retry_is_judged() {
        let lines = retry_with("[g] Kernel panic - not syncing", "UP");
        assert!(
            lines.iter().any(|l| l.starts_with(RETRY_PREFIX)),
            "{lines:?}"
        );
        assert_eq!(lines.last().map(String::as_str), Some("attempts=2"));
        let last = result(lines).last_attempt();
        assert_eq!(last.output, ["UP", "attempts=2"]);
        // Panicking twice: still two attempts, the second is judged.
        let lines = retry_with("Kernel panic", "Kernel panic again");
        assert_eq!(lines.last().map(String::as_str), Some("attempts=2"));
        assert_eq!(result(lines).last_attempt().output[0], "Kernel panic again");
    }

    #[test]
    fn a_panic_after_init_ran_or_no_panic_is_not_retried() {
        let lines = retry_with("UP then Kernel panic", "never");
        assert!(
            !lines.iter().any(|l| l.starts_with(RETRY_PREFIX)),
            "{lines:?}"
        );
        assert_eq!(lines.last().map(String::as_str), Some("attempts=1"));
        let lines = retry_with("UP", "never");
        assert_eq!(lines, ["UP", "attempts=1"]);
        assert_eq!(result(lines.clone()).last_attempt().output, lines);
    }
}
