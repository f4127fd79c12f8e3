//! hive.toml's per-guest `budget` on this machine's KVM: a coconut worker
//! whose `ninep` shard is told to send more heartbeats (`coco.ticks=5`)
//! than its configured tick budget (`budget = { ticks = 3 }`) gets exactly
//! three into its telemetry; the fourth append is refused with ELIMIT
//! (EDQUOT) and the denial is in the queen's log.

mod common;

use std::io::BufReader;

use common::finish;
use common::hive::{hive, wait_for_line};
use common::queen::{connect, queen_write, read_file};

/// `{"tick":N,...}` → N.
fn tick_of(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("{\"tick\":")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_configured_tick_budget_stops_a_coconut_workers_heartbeats_with_elimit() {
    // `coco.after=halt`: the VM stays up after its shard fails, so its
    // telemetry node is still there for the queen to read.
    let h = hive(
        "budget9p",
        "[[guest]]\nname = \"worker-1\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         initrd = \"builtin:ramdisk\"\n\
         cmdline = \"coco.manifest=/boot/test-ninep-spawn.toml coco.ticks=5 coco.after=halt\"\n\
         budget = { ticks = 3 }\n",
    );
    let mut child = h.start();
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    wait_for_line(&mut out, "[worker-1] all shards ended");
    child.stdout = Some(out.into_inner());

    let mut c = connect(&h.socket());
    let root = c.attach("queen", "").expect("queen attaches");
    let telemetry = read_file(&mut c, root, "worker/worker-1/telemetry");
    let log = read_file(&mut c, root, "log/queen.log");
    queen_write(&mut c, root, r#"{"kill":"worker-1"}"#);
    drop(c);
    let r = finish(child);
    r.assert_no_panic();
    // Its console lines were read by wait_for_line; the log has them all.
    let console =
        std::fs::read_to_string(h.state.join("logs/worker-1.console")).unwrap_or_default();

    let ticks: Vec<u64> = telemetry.lines().filter_map(tick_of).collect();
    assert_eq!(ticks, [1, 2, 3], "{telemetry}\n{console}");
    assert!(
        log.contains(
            "registered worker-1 (worker-heartbeat) from hive.toml with budget {\"ticks\":3}"
        ),
        "{log}"
    );
    assert!(
        log.contains(
            "denied worker-heartbeat:worker-1 Write /worker/worker-1/telemetry: \
             tick budget exhausted (ELIMIT)"
        ),
        "{log}"
    );
    // The guest saw the refusal as EDQUOT on its fourth append.
    assert!(
        console.contains("ninep: heartbeat 3/5 appended"),
        "{console}"
    );
    assert!(!console.contains("heartbeat 4/5 appended"), "{console}");
    assert!(console.contains("append heartbeat"), "{console}");
    assert!(console.contains("EDQUOT"), "{console}");
    assert_eq!(r.status, Some(0), "{console}\n{}", r.stderr);
}

#[test]
fn a_queen_spawn_takes_unset_budget_fields_from_its_hive_toml_template() {
    // worker-1 idles and keeps the hive up; worker-9 is the template a
    // heartbeat spawn boots, with a budget of two ticks.
    let h = hive(
        "budgetspawn",
        "[[guest]]\nname = \"worker-1\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         cmdline = \"coco.after=halt\"\n\
         [[guest]]\nname = \"worker-9\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n\
         initrd = \"builtin:ramdisk\"\n\
         cmdline = \"coco.manifest=/boot/test-ninep-spawn.toml coco.after=halt\"\n\
         autostart = false\nbudget = { ticks = 2 }\n",
    );
    let mut child = h.start();
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    wait_for_line(&mut out, "[worker-1] idle");
    let mut c = connect(&h.socket());
    let root = c.attach("queen", "").expect("queen attaches");

    // The spawn line's budget wins over the template's ...
    queen_write(
        &mut c,
        root,
        r#"{"spawn":"heartbeat","ticks":4,"budget":{"ticks":3}}"#,
    );
    wait_for_line(&mut out, "[worker-2] all shards ended");
    // ... and fills only what the spawn line leaves unset.
    queen_write(&mut c, root, r#"{"spawn":"heartbeat","ticks":4}"#);
    wait_for_line(&mut out, "[worker-3] all shards ended");
    child.stdout = Some(out.into_inner());

    let ticks = |c: &mut _, w: &str| -> Vec<u64> {
        read_file(c, root, &format!("worker/{w}/telemetry"))
            .lines()
            .filter_map(tick_of)
            .collect()
    };
    let two = ticks(&mut c, "worker-2");
    let three = ticks(&mut c, "worker-3");
    let log = read_file(&mut c, root, "log/queen.log");
    for w in ["worker-1", "worker-2", "worker-3"] {
        queen_write(&mut c, root, &format!("{{\"kill\":\"{w}\"}}"));
    }
    drop(c);
    let r = finish(child);
    r.assert_no_panic();
    assert_eq!(r.status, Some(0), "{}", r.stderr);

    assert_eq!(two, [1, 2, 3], "{log}");
    assert_eq!(three, [1, 2], "{log}");
    assert!(
        log.contains("worker-3 budget {\"ticks\":2} (hive.toml fills the spawn's)"),
        "{log}"
    );
    for w in ["worker-2", "worker-3"] {
        assert!(
            log.contains(&format!(
                "denied worker-heartbeat:{w} Write /worker/{w}/telemetry: tick budget exhausted"
            )),
            "{log}"
        );
    }
}
