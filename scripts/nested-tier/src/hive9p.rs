//! The `linux-mounts-hive` tenant: a Linux L2 guest mounts the hive's
//! namespace over coco's virtio-9p and exercises it from a shell.
//!
//! This is the independent-client test of the whole stack (issue 6,
//! deliverables 3 and 5): Debian's own v9fs, not a client we wrote, talks
//! through coco-vmm's virtio-mmio device and the supervisor's bridge to
//! NineDoor. Inside L1, [`HIVE_SCRIPT`] writes a `hive.toml` with two
//! workers in one hive — the Linux guest `worker-1` and the coconut guest
//! `worker-2` (built-in guest-kernel and ramdisk, whose default manifest's
//! `ninep` shard sends heartbeats; `coco.ticks=3` keeps it short under TCG)
//! — runs `coco-vmm run` on it, and meanwhile attaches `cohsh` as the queen:
//! one `tail -f` of worker-2's telemetry prints the microkernel's
//! heartbeats as they arrive, `ls /worker` lists both workers (at the
//! start: a worker's node goes when its VM stops), and a loop
//! waits for the Linux guest's heartbeat, which the queen acknowledges by
//! appending to its telemetry.
//! The guest's `/init` ([`L2_HIVE_INIT`]) loads the 9p modules, mounts the
//! namespace and prints one `L2-CHECK <name> ok|FAIL <why>` line per check;
//! [`check_linux_mounts_hive`] asserts every line, the hive's exit status
//! and the audit journal's denials.

use crate::tier::InnerResult;

/// Kernel modules the L2 guest loads (dependencies come from `.modinfo`:
/// netfs, 9pnet before 9pnet_virtio and 9p).
pub const L2_HIVE_MODULES: &[&str] = &["virtio_mmio", "9pnet_virtio", "9p"];

/// `/init` of the L2 guest that mounts the hive. Every check prints
/// `L2-CHECK <name> ok ...` or `L2-CHECK <name> FAIL <why>`; the last line
/// before the reset is `L2-DONE`.
pub const L2_HIVE_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mkdir -p /mnt /tmp /sys
mount -t sysfs sys /sys
M=/mnt
T=$M/worker/worker-1/telemetry
ok() { echo "L2-CHECK $1 ok${2:+ $2}"; }
bad() { echo "L2-CHECK $1 FAIL $2" | tr '\n' ' '; echo; }
# expect NAME ERRTEXT CMD...: CMD must fail and its message contain ERRTEXT.
expect() {
  name=$1; want=$2; shift 2
  if out=$("$@" 2>&1); then bad "$name" "succeeded: $out"
  else case "$out" in
    *"$want"*) ok "$name" "($want)" ;;
    *) bad "$name" "wanted '$want', got: $out" ;;
  esac; fi
}
now_ms() { echo $(( $(date +%s) * 1000 )); }
for m in /lib/modules/*.ko; do insmod "$m" || bad insmod "$m"; done
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=65536 hive $M 2>/tmp/err; then
  ok mount
else
  bad mount "$(cat /tmp/err)"; sleep 1; reboot -f
fi
# Which transport carried the mount: a PCI function whose queue interrupt
# is an MSI-X vector, or the DSDT's virtio-mmio window.
want=$(sed -n 's/.*coco_transport=\([a-z]*\).*/\1/p' /proc/cmdline)
dev=$(readlink -f /sys/bus/virtio/devices/virtio0)
irq=$(grep virtio0 /proc/interrupts | tr -s ' ' | tr '\n' ' ')
case "$want:$dev" in
  pci:*/pci0000:00/*)
    case "$irq" in
      *MSI*virtio0-requests*) ok transport "pci, MSI-X: $dev" ;;
      *) bad transport "pci without an MSI-X queue vector: $irq" ;;
    esac ;;
  mmio:*LNRO0005*)
    case "$irq" in
      *IO-APIC*virtio0*) ok transport "mmio: $dev" ;;
      *) bad transport "mmio without its IO-APIC line: $irq" ;;
    esac ;;
  *) bad transport "wanted $want, device at $dev ($irq)" ;;
esac
roots=$(ls $M | tr '\n' ' ')
case "$roots" in
  *proc*worker*) case "$roots" in *queen*|*log*) bad ls-root "queen or log visible: $roots" ;; *) ok ls-root "$roots" ;; esac ;;
  *) bad ls-root "$roots" ;;
esac
if grep -q "guest worker-1 VM process started" $M/proc/boot; then ok proc-boot
else bad proc-boot "$(cat $M/proc/boot)"; fi
hb='{"tick":1,"ts_ms":'$(now_ms)'}'
if echo "$hb" >> $T 2>/tmp/err; then
  if grep -qF "$hb" $T; then ok heartbeat "$hb"; else bad heartbeat "not read back: $(cat $T)"; fi
else bad heartbeat "$(cat /tmp/err)"; fi
listing=$(ls $M/proc | tr '\n' ' ')
case "$listing" in *boot*lifecycle*) ok readdir "$listing" ;; *) bad readdir "$listing" ;; esac
wlist=$(ls $M/worker | tr '\n' ' ')
[ "$wlist" = "worker-1 " ] && ok readdir-worker "$wlist" || bad readdir-worker "$wlist"
size=$(stat -c %s $M/proc/boot); len=$(cat $M/proc/boot | wc -c)
[ "$size" = "$len" ] && [ "$len" -gt 0 ] && ok stat-size "$size" || bad stat-size "stat $size, read $len"
stat -f $M >/dev/null 2>/tmp/err && ok statfs || bad statfs "$(cat /tmp/err)"
expect deny-queen-ctl "nonexistent directory" sh -c "echo '{\"kill\":\"worker-1\"}' > $M/queen/ctl"
expect deny-other-telemetry "nonexistent directory" sh -c "echo x >> $M/worker/worker-2/telemetry"
expect deny-log "No such file" cat $M/log/queen.log
expect deny-proc-write "Permission denied" sh -c "echo x >> $M/proc/boot"
expect deny-chmod "Operation not permitted" chmod 600 $M/proc/boot
expect deny-create "Operation not permitted" touch $M/worker/worker-1/new
expect deny-mkdir "Operation not permitted" mkdir $M/worker/worker-1/d
expect deny-rm "Operation not permitted" rm -f $M/worker/worker-1/telemetry
expect deny-rename "not supported" mv $T $M/worker/worker-1/moved
expect deny-symlink "not supported" ln -s boot $M/proc/link
expect deny-truncate "Operation not permitted" truncate -s 0 $T
expect deny-link "not supported" ln $T $M/worker/worker-1/hard
expect deny-mknod "not supported" mknod $M/worker/worker-1/fifo p
# NineDoor answers a write away from the end with ESPIPE; 6.12's netfs
# write path hands the application EIO instead.
expect append-away-from-end "Input/output error" dd if=/dev/zero of=$T bs=1 count=1 seek=1 conv=notrunc
# cat of the ring ends at its end: netfs finishes the short read with a
# read for the rest (EOF for that read), cat's own next read gets EOF too.
if timeout 10 cat $T > /tmp/cat.out 2>&1; then
  grep -q '"tick":1' /tmp/cat.out && ok cat-ends || bad cat-ends "no tick 1: $(cat /tmp/cat.out)"
else
  bad cat-ends "cat did not end (rc=$?)"
fi
# tail -f: after the end, the next read blocks and is answered when the file
# grows; killed while blocked (Tflush across the bridge), the mount stays usable.
timeout 6 tail -f $T > /tmp/follow.out 2>&1 &
tailpid=$!
sleep 3
echo '{"tick":2,"ts_ms":'$(now_ms)'}' >> $T
wait $tailpid
rc=$?
grep -q '"tick":2' /tmp/follow.out && ok read-follows "rc=$rc" || bad read-follows "rc=$rc: $(cat /tmp/follow.out)"
[ $rc -ne 0 ] && ok tail-interrupted "rc=$rc" || bad tail-interrupted "tail ended by itself"
hb3='{"tick":3,"ts_ms":'$(now_ms)'}'
if echo "$hb3" >> $T && grep -qF "$hb3" $T && grep -q "worker-1" $M/proc/boot; then ok after-flush
else bad after-flush "mount unusable after an interrupted read"; fi
# The queen (cohsh in L1) acknowledges the heartbeat it saw.
i=0
while ! timeout 5 grep -q '"queen":"seen"' $T 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 120 ] && break; sleep 1
done
timeout 5 grep -q '"queen":"seen"' $T && ok queen-ack || bad queen-ack "no ack from the queen in 120 s"
echo L2-DONE
sleep 1
reboot -f
sleep 5
echo "L2-REBOOT FAILED"
"#;

/// The inner test's script (its `attempt` function; the tenant appends
/// [`crate::tier::RETRY_EARLY_PANIC`] and `exit $rc`), run in `chroot /host` inside L1 with `$1` =
/// coco-vmm, `$2` = cohsh, `$3` = the L2 kernel, `$4` = the L2 initramfs,
/// `$5` = worker-1's `virtio_transport`, `$6` = the transport the guest must
/// find (`pci` or `mmio`; passed on its command line for the `transport`
/// check).
/// It prints the hive's exit status (`HIVE-EXIT rc=N`), what the queen saw
/// (`QUEEN saw ...`) and the audit journal's denials (`AUDIT ...`).
pub const HIVE_SCRIPT: &str = r#"vmm=$1 cohsh=$2 kernel=$3 initrd=$4 transport=$5 expect=$6
state=/tmp/linux9p-hive
out=$state/hive.out ready='L2-CHECK' 
attempt() {
rm -rf $state; mkdir -p $state
cat > $state/hive.toml <<EOF
[hive]
name = "linux9p"
state_dir = "$state"

[[guest]]
name = "worker-1"
kind = "linux"
kernel = "$kernel"
initrd = "$initrd"
cmdline = "console=ttyS0 panic=-1 reboot=k quiet coco_transport=$expect"
memory_mib = 256
virtio_transport = "$transport"

[[guest]]
name = "worker-2"
kind = "coconut"
kernel = "builtin:guest-kernel"
initrd = "builtin:ramdisk"
cmdline = "coco.ticks=3"
memory_mib = 64
vcpus = 1
EOF
"$vmm" run --config $state/hive.toml > $out 2>&1 &
hive=$!
queen() { "$cohsh" --connect unix:$state/hive.sock --role queen "$@"; }
i=0
while [ ! -S $state/hive.sock ] && [ $i -lt 600 ] && kill -0 $hive 2>/dev/null; do
  i=$((i + 1)); sleep 0.1
done
# The microkernel worker's heartbeats, printed as they arrive; the stream
# ends at the timeout or when the hive stops.
queen --json -c 'tail -f -t 150000 /worker/worker-2/telemetry' > $state/tail-2.out 2>&1 &
tail2=$!
# Both autostart workers are under /worker from the start (a worker's node
# goes when its VM stops, and worker-2 may be done before worker-1's first
# heartbeat).
i=0; workers=
while [ $i -lt 100 ] && kill -0 $hive 2>/dev/null; do
  workers=$(queen -c 'ls /worker' 2>&1 | tr '\n' ' ')
  case "$workers" in *worker-1/*worker-2/*) break ;; esac
  i=$((i + 1)); sleep 0.1
done
echo "QUEEN ls /worker: $workers"
i=0; seen=
while [ $i -lt 600 ] && kill -0 $hive 2>/dev/null; do
  seen=$(queen -c 'cat /worker/worker-1/telemetry' 2>/dev/null | grep '"tick":1')
  [ -n "$seen" ] && break
  i=$((i + 1)); sleep 0.2
done
if [ -n "$seen" ]; then
  echo "QUEEN saw /worker/worker-1/telemetry: $seen"
  queen -c 'echo {"queen":"seen"} > /worker/worker-1/telemetry' || echo "QUEEN ack failed"
else
  echo "QUEEN never saw a heartbeat"
fi
wait $hive
rc=$?
wait $tail2
cat $out
sed 's/^/QUEEN tail worker-2: /' $state/tail-2.out
echo "HIVE-EXIT rc=$rc"
grep denied $state/audit.log | sed 's/^/AUDIT /'
}
"#;

/// Checks whose `L2-CHECK <name> ok` line must appear.
pub const L2_HIVE_CHECKS: &[&str] = &[
    "mount",
    "transport",
    "ls-root",
    "proc-boot",
    "heartbeat",
    "readdir",
    "readdir-worker",
    "stat-size",
    "statfs",
    "deny-queen-ctl",
    "deny-other-telemetry",
    "deny-log",
    "deny-proc-write",
    "deny-chmod",
    "deny-create",
    "deny-mkdir",
    "deny-rm",
    "deny-rename",
    "deny-symlink",
    "deny-truncate",
    "deny-link",
    "deny-mknod",
    "append-away-from-end",
    "cat-ends",
    "read-follows",
    "tail-interrupted",
    "after-flush",
    "queen-ack",
];

/// Audit journal lines (substrings) the refusals must have left.
pub const AUDIT_DENIALS: &[&str] = &[
    "denied worker-heartbeat:worker-1",
    "/queen",
    "/log",
    "/proc/boot",
];

/// Heartbeats the coconut worker `worker-2` sends (`coco.ticks=3`).
pub const COCONUT_TICKS: u64 = 3;

/// The second worker of the same hive: the queen lists both workers under
/// `/worker`, its `tail -f` of worker-2's telemetry streamed heartbeats
/// 1..=[`COCONUT_TICKS`] (cohsh `--json` stream objects), and the
/// microkernel's shards all ended with status 0.
fn check_coconut_worker(r: &InnerResult) -> Result<(), String> {
    let mut missing = Vec::new();
    match r
        .output
        .iter()
        .find(|l| l.starts_with("QUEEN ls /worker: "))
    {
        Some(l) if l.contains("worker-1/") && l.contains("worker-2/") => {}
        Some(l) => missing.push(format!("both workers under /worker: {l}")),
        None => missing.push("the queen's ls /worker".into()),
    }
    let streamed: String = r
        .output
        .iter()
        .filter_map(|l| l.strip_prefix("QUEEN tail worker-2: "))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["verb"] == "TAIL")
        .filter_map(|v| v["stream"].as_str().map(str::to_owned))
        .collect();
    let ticks: Vec<u64> = streamed
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["tick"].as_u64())
        .collect();
    if ticks != (1..=COCONUT_TICKS).collect::<Vec<_>>() {
        missing.push(format!(
            "the queen's tail -f of worker-2 saw heartbeats {ticks:?}, not 1..={COCONUT_TICKS}"
        ));
    }
    if !r
        .output
        .iter()
        .any(|l| l.ends_with("[worker-2] all shards ended: status 0"))
    {
        missing.push("[worker-2] all shards ended: status 0".into());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

/// The verdict on a `linux-mounts-hive` run.
pub fn check_linux_mounts_hive(r: &InnerResult) -> Result<(), String> {
    let r = &r.last_attempt();
    let console: Vec<&str> = r
        .output
        .iter()
        .filter_map(|l| l.find("[worker-1] ").map(|p| &l[p + "[worker-1] ".len()..]))
        .collect();
    let mut missing = Vec::new();
    for name in L2_HIVE_CHECKS {
        let head = format!("L2-CHECK {name} ok");
        let line = console
            .iter()
            .find(|l| **l == head || l.starts_with(&format!("{head} ")));
        if line.is_none() {
            let why = console
                .iter()
                .find(|l| l.starts_with(&format!("L2-CHECK {name} FAIL")))
                .map_or("no line", |l| l);
            missing.push(format!("{name}: {why}"));
        }
    }
    if let Some(l) = console.iter().find(|l| l.contains(" FAIL")) {
        missing.push(format!("a failing check: {l}"));
    }
    if !console.contains(&"L2-DONE") {
        missing.push("L2-DONE".into());
    }
    let has = |needle: &str| r.output.iter().any(|l| l.contains(needle));
    if !has("QUEEN saw /worker/worker-1/telemetry: {\"tick\":1,") {
        missing.push("the queen (cohsh) saw the guest's heartbeat".into());
    }
    if let Err(e) = check_coconut_worker(r) {
        missing.push(e);
    }
    if !has("HIVE-EXIT rc=0") {
        missing.push("HIVE-EXIT rc=0".into());
    }
    let audit: Vec<&String> = r
        .output
        .iter()
        .filter(|l| l.starts_with("AUDIT "))
        .collect();
    for needle in AUDIT_DENIALS {
        if !audit.iter().any(|l| l.contains(needle)) {
            missing.push(format!("an audited denial containing {needle:?}"));
        }
    }
    if has("panicked") || has("Kernel panic") || has("L2-REBOOT FAILED") {
        missing.push("no panic or failed reboot".into());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing or wrong: {}", missing.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The captured output of a passing run (trimmed).
    fn passing() -> Vec<String> {
        let mut out: Vec<String> = L2_HIVE_CHECKS
            .iter()
            .map(|c| format!("[worker-1] L2-CHECK {c} ok"))
            .collect();
        out.push("[worker-1] L2-DONE".into());
        out.push(r#"QUEEN saw /worker/worker-1/telemetry: {"tick":1,"ts_ms":5}"#.into());
        out.push("HIVE-EXIT rc=0".into());
        out.push("QUEEN ls /worker: worker-1/ worker-2/ OK LS path=/worker entries=2 ".into());
        for n in 1..=COCONUT_TICKS {
            out.push(format!(
                r#"QUEEN tail worker-2: {{"stream":"{{\"tick\":{n},\"ts_ms\":9}}\n","verb":"TAIL"}}"#
            ));
        }
        out.push("[worker-2] all shards ended: status 0".into());
        for l in [
            "walk /queen: not visible to this role (ENOENT)",
            "walk /log: not visible to this role (ENOENT)",
            "write /proc/boot: not writable by this role (EACCES)",
        ] {
            out.push(format!(
                "AUDIT 6 1 aa bb denied worker-heartbeat:worker-1 {l}"
            ));
        }
        out
    }

    fn result(output: Vec<String>) -> InnerResult {
        InnerResult {
            name: "linux-mounts-hive".into(),
            rc: Some(0),
            output,
            duration: Duration::from_secs(1),
            problem: None,
        }
    }

    #[test]
    fn accepts_a_full_run() {
        assert_eq!(check_linux_mounts_hive(&result(passing())), Ok(()));
    }

    #[test]
    fn names_a_failing_or_missing_check() {
        let failed: Vec<String> = passing()
            .into_iter()
            .map(|l| l.replace("L2-CHECK deny-log ok", "L2-CHECK deny-log FAIL succeeded"))
            .collect();
        let err = check_linux_mounts_hive(&result(failed)).unwrap_err();
        assert!(
            err.contains("deny-log: L2-CHECK deny-log FAIL succeeded"),
            "{err}"
        );

        let no_flush: Vec<String> = passing()
            .into_iter()
            .filter(|l| !l.contains("tail-interrupted"))
            .collect();
        let err = check_linux_mounts_hive(&result(no_flush)).unwrap_err();
        assert!(err.contains("tail-interrupted: no line"), "{err}");
    }

    #[test]
    fn needs_both_workers_listed_and_every_coconut_heartbeat() {
        let one_worker: Vec<String> = passing()
            .into_iter()
            .map(|l| l.replace(" worker-2/", ""))
            .collect();
        let err = check_linux_mounts_hive(&result(one_worker)).unwrap_err();
        assert!(err.contains("both workers under /worker"), "{err}");

        let last = format!("\\\"tick\\\":{COCONUT_TICKS},");
        let short: Vec<String> = passing()
            .into_iter()
            .filter(|l| !l.contains(&last))
            .collect();
        let err = check_linux_mounts_hive(&result(short)).unwrap_err();
        assert!(err.contains("saw heartbeats [1, 2], not 1..=3"), "{err}");

        let failed: Vec<String> = passing()
            .into_iter()
            .filter(|l| !l.starts_with("[worker-2]"))
            .collect();
        let err = check_linux_mounts_hive(&result(failed)).unwrap_err();
        assert!(err.contains("[worker-2] all shards ended"), "{err}");
    }

    #[test]
    fn needs_the_queen_the_exit_status_and_the_audit_lines() {
        for (drop, why) in [
            ("QUEEN saw", "the queen (cohsh) saw"),
            ("HIVE-EXIT", "HIVE-EXIT rc=0"),
            ("walk /log", "\"/log\""),
        ] {
            let out: Vec<String> = passing()
                .into_iter()
                .filter(|l| !l.contains(drop))
                .collect();
            let err = check_linux_mounts_hive(&result(out)).unwrap_err();
            assert!(err.contains(why), "{drop}: {err}");
        }
        let mut out = passing();
        out.push("HIVE-EXIT rc=1".into());
        out.retain(|l| l != "HIVE-EXIT rc=0");
        assert!(check_linux_mounts_hive(&result(out)).is_err());
    }

    #[test]
    fn only_the_attempt_after_a_retry_is_judged() {
        // First attempt: the guest's kernel died early; the queen's lines of
        // that attempt (a partial tail of worker-2) must not count.
        let mut out = vec![
            "[worker-1] [    5.2] Kernel panic - not syncing: Attempted to kill the idle task!"
                .to_string(),
            r#"QUEEN tail worker-2: {"stream":"{\"tick\":1,\"ts_ms\":9}\n","verb":"TAIL"}"#.into(),
            "HIVE-EXIT rc=0".into(),
            "RETRY: the Linux guest's kernel panicked before its /init ran: [worker-1] BUG".into(),
        ];
        out.extend(passing());
        assert_eq!(check_linux_mounts_hive(&result(out)), Ok(()));
        // A retry that fails again fails the tenant.
        let mut again =
            vec!["RETRY: the Linux guest's kernel panicked before its /init ran".into()];
        again.extend(
            passing()
                .into_iter()
                .filter(|l| !l.starts_with("[worker-1] L2-CHECK")),
        );
        assert!(check_linux_mounts_hive(&result(again)).is_err());
    }
}
