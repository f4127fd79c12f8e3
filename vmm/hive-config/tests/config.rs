//! hive.toml: valid configurations, and every error class with its exact place and key.

use std::fs;
use std::path::{Path, PathBuf};

use coco_hive_config::{
    BudgetLimit, ConfigError, ConfigOrigin, DEFAULT_HIVE, ErrorKind, GuestBudget, GuestConfig,
    GuestKind, HiveConfig, ImageSource, Location, MAX_REPORTED_ERRORS, NameError, Role,
    VirtioTransport, validate_name,
};

const BUILTINS: &[&str] = &["guest-kernel", "ramdisk"];

/// A minimal valid config; the guest table starts on line 4.
const MIN: &str = r#"[hive]
name = "demo"

[[guest]]
name = "worker-1"
kind = "coconut"
kernel = "builtin:guest-kernel"
"#;

fn origin() -> ConfigOrigin {
    ConfigOrigin::File(PathBuf::from("hive.toml"))
}

fn parse(text: &str) -> Result<HiveConfig, ConfigError> {
    HiveConfig::parse(text, origin(), Path::new("/nonexistent-base"), BUILTINS)
}

fn parse_in(text: &str, dir: &Path) -> Result<HiveConfig, ConfigError> {
    HiveConfig::parse(text, origin(), dir, BUILTINS)
}

#[track_caller]
fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(cfg) => panic!("expected an error, got {cfg:#?}"),
        Err(e) => e,
    }
}

/// `MIN` with `line` appended to the guest table (it lands on line 8).
fn guest_with(line: &str) -> String {
    format!("{MIN}{line}\n")
}

#[track_caller]
fn assert_at(e: &ConfigError, line: usize, column: usize, key: &str) {
    assert_eq!(
        (e.line(), e.column(), e.key()),
        (Some(line), Some(column), Some(key)),
        "{e}"
    );
}

#[test]
fn embedded_default_parses() {
    let hive = HiveConfig::embedded(BUILTINS).unwrap();
    assert_eq!(hive.origin, ConfigOrigin::Embedded);
    assert_eq!(hive.name, "demo");
    assert_eq!(hive.state_dir, None);
    assert_eq!(hive.guests.len(), 1);
    let g = &hive.guests[0];
    assert_eq!(g.name, "worker-1");
    assert_eq!(g.kind, GuestKind::Coconut);
    assert_eq!(g.kernel, ImageSource::Builtin("guest-kernel".into()));
    assert_eq!(g.initrd, Some(ImageSource::Builtin("ramdisk".into())));
    assert_eq!(g.cmdline, "");
    assert_eq!(g.memory_mib, 64);
    assert_eq!(g.vcpus, 2);
    assert_eq!(g.role, Role::WorkerHeartbeat);
    assert!(g.autostart);
    let header = DEFAULT_HIVE
        .lines()
        .position(|l| l.trim() == "[[guest]]")
        .unwrap();
    assert_eq!(
        g.defined_at,
        Some(Location {
            line: header + 1,
            column: 1
        })
    );
    assert_eq!(hive.guest("worker-1"), Some(g));
    assert_eq!(hive.guest("worker-2"), None);
}

#[test]
fn embedded_default_needs_its_builtins() {
    let e = HiveConfig::embedded(&["guest-kernel"]).unwrap_err();
    assert_eq!(e.key(), Some("guest[0].initrd"));
    assert_eq!(e.origin(), &ConfigOrigin::Embedded);
    assert!(e.to_string().starts_with("<embedded default>:"), "{e}");
    assert!(
        e.to_string()
            .ends_with("guest[0].initrd: unknown builtin image `ramdisk` (known: `guest-kernel`)"),
        "{e}"
    );
}

#[test]
fn minimal_config_gets_defaults() {
    let hive = parse(MIN).unwrap();
    let g = &hive.guests[0];
    let mut expect = GuestConfig::new(
        "worker-1",
        GuestKind::Coconut,
        ImageSource::Builtin("guest-kernel".into()),
    );
    expect.defined_at = Some(Location { line: 4, column: 1 });
    assert_eq!(g, &expect);
    assert_eq!(g.memory_mib, 64);
    assert_eq!(g.vcpus, 1);
    assert_eq!(g.role, Role::WorkerHeartbeat);
    assert!(g.autostart);
    assert_eq!(g.initrd, None);
}

#[test]
fn full_config_with_paths() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("images")).unwrap();
    fs::write(dir.path().join("images/bzImage"), b"k").unwrap();
    fs::write(dir.path().join("initrd.cpio"), b"i").unwrap();
    let abs_kernel = dir.path().join("images/bzImage");
    let text = format!(
        r#"
[hive]
name = "lab-2"
state_dir = "state"

[[guest]]
name = "q"
kind = "sel4"
kernel = "builtin:guest-kernel"
role = "queen"
autostart = false
memory_mib = 262144
vcpus = 254

[[guest]]
name = "linux-0"
kind = "linux"
kernel = "images/bzImage"
initrd = "./initrd.cpio"
cmdline = "console=ttyS0 quiet"
memory_mib = 0x100
vcpus = 4
role = "worker-gpu"

[[guest]]
name = "abs"
kind = "coconut"
kernel = "{}"
memory_mib = 2
"#,
        abs_kernel.display()
    );
    let hive = parse_in(&text, dir.path()).unwrap();
    assert_eq!(hive.name, "lab-2");
    assert_eq!(hive.state_dir, Some(dir.path().join("state")));
    let [q, linux, abs] = &hive.guests[..] else {
        panic!("{hive:?}")
    };
    assert_eq!(
        (q.kind, q.role, q.autostart, q.memory_mib, q.vcpus),
        (GuestKind::Sel4, Role::Queen, false, 262_144, 254)
    );
    assert_eq!(linux.kind, GuestKind::Linux);
    assert_eq!(linux.kernel, ImageSource::Path(abs_kernel.clone()));
    assert_eq!(
        linux.initrd,
        Some(ImageSource::Path(dir.path().join("./initrd.cpio")))
    );
    assert_eq!(linux.cmdline, "console=ttyS0 quiet");
    assert_eq!((linux.memory_mib, linux.vcpus), (256, 4));
    assert_eq!(linux.role, Role::WorkerGpu);
    assert_eq!(abs.kernel, ImageSource::Path(abs_kernel));
    assert_eq!(abs.memory_mib, 2);
    assert_eq!(abs.defined_at.unwrap().line, 25);
}

#[test]
fn load_resolves_relative_paths_against_the_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("conf");
    fs::create_dir_all(sub.join("img")).unwrap();
    fs::write(sub.join("img/kernel.elf"), b"\x7fELF").unwrap();
    let cfg = sub.join("hive.toml");
    fs::write(
        &cfg,
        r#"[hive]
name = "demo"
state_dir = "../run"
[[guest]]
name = "w"
kind = "coconut"
kernel = "img/kernel.elf"
initrd = "builtin:ramdisk"
"#,
    )
    .unwrap();
    let hive = HiveConfig::load(&cfg, BUILTINS).unwrap();
    assert_eq!(hive.origin, ConfigOrigin::File(cfg.clone()));
    assert_eq!(
        hive.guests[0].kernel,
        ImageSource::Path(sub.join("img/kernel.elf"))
    );
    assert_eq!(hive.state_dir, Some(sub.join("../run")));
    let ImageSource::Path(p) = &hive.guests[0].kernel else {
        unreachable!()
    };
    assert!(p.is_absolute());

    // The same file name relative to a different directory is not found.
    fs::write(
        dir.path().join("hive.toml"),
        fs::read_to_string(&cfg).unwrap(),
    )
    .unwrap();
    let e = HiveConfig::load(&dir.path().join("hive.toml"), BUILTINS).unwrap_err();
    assert_at(&e, 7, 10, "guest[0].kernel");
    assert!(
        matches!(e.kind(), ErrorKind::MissingFile { path } if *path == dir.path().join("img/kernel.elf"))
    );
}

#[test]
fn syntax_error() {
    let e = err("[hive]\nname = \"demo\nx = 1\n");
    assert!(matches!(e.kind(), ErrorKind::Syntax { .. }), "{e:?}");
    assert_eq!(e.line(), Some(2));
    assert_eq!(e.key(), None);
    let text = e.to_string();
    assert!(text.starts_with("hive.toml:2:"), "{text}");
    assert!(text.contains("TOML syntax error: "), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");

    let e = err("[hive]\nname = \"demo\"\n[[guest]\n");
    assert_eq!(e.line(), Some(3), "{e}");

    // Duplicate keys are a TOML error too.
    let e = err(&format!("{MIN}name = \"again\"\n"));
    assert_eq!(e.line(), Some(8), "{e}");
    assert!(matches!(e.kind(), ErrorKind::Syntax { .. }));
}

#[test]
fn unknown_top_level_key() {
    let e = err(&format!("colour = \"blue\"\n{MIN}"));
    assert_at(&e, 1, 1, "colour");
    assert_eq!(
        e.to_string(),
        "hive.toml:1:1: unknown key `colour` at the top level (expected one of: hive, guest)"
    );
    // An unknown table is an unknown key as well.
    let e = err(&format!("{MIN}[network]\nmtu = 1500\n"));
    assert_at(&e, 8, 2, "network");
}

#[test]
fn unknown_hive_key() {
    let e = err(&MIN.replace("name = \"demo\"", "name = \"demo\"\nstatedir = \"/x\""));
    assert_at(&e, 3, 1, "hive.statedir");
    assert!(matches!(e.kind(), ErrorKind::UnknownKey { key, .. } if key == "statedir"));
}

#[test]
fn unknown_guest_key() {
    let e = err(&guest_with("vcpu = 2"));
    assert_at(&e, 8, 1, "guest[0].vcpu");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:1: unknown key `vcpu` in guest[0] (expected one of: name, kind, kernel, \
         initrd, cmdline, memory_mib, vcpus, role, autostart, virtio_transport, vfio, budget)"
    );
    // Nested tables are unknown keys too, and odd keys are quoted in the key path.
    let e = err(&guest_with("\"a b\".c = 1"));
    assert_at(&e, 8, 1, "guest[0].\"a b\"");
}

#[test]
fn wrong_types() {
    let e = err(&guest_with("vcpus = \"2\""));
    assert_at(&e, 8, 9, "guest[0].vcpus");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:9: guest[0].vcpus: expected an integer, found a string"
    );
    let e = err(&guest_with("memory_mib = 64.0"));
    assert!(
        matches!(
            e.kind(),
            ErrorKind::WrongType {
                found: "a float",
                ..
            }
        ),
        "{e}"
    );
    let e = err(&guest_with("autostart = \"yes\""));
    assert_at(&e, 8, 13, "guest[0].autostart");
    let e = err(&guest_with("cmdline = [\"a\"]"));
    assert_at(&e, 8, 11, "guest[0].cmdline");
    let e = err(&MIN.replace("name = \"demo\"", "name = 7"));
    assert_at(&e, 2, 8, "hive.name");

    let e =
        err("hive = 1\n[[guest]]\nname = \"a\"\nkind = \"linux\"\nkernel = \"builtin:ramdisk\"\n");
    assert_at(&e, 1, 8, "hive");
    assert!(e.to_string().contains("expected a table ([hive])"), "{e}");

    let e = err("[hive]\nname = \"d\"\n[guest]\nname = \"a\"\n");
    assert_at(&e, 3, 1, "guest");
    assert!(
        e.to_string()
            .contains("expected an array of tables ([[guest]]), found a table"),
        "{e}"
    );

    let e = err("guest = [1]\n[hive]\nname = \"d\"\n");
    assert_at(&e, 1, 10, "guest[0]");
}

#[test]
fn vcpus_range() {
    let e = err(&guest_with("vcpus = 0"));
    assert_at(&e, 8, 9, "guest[0].vcpus");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:9: guest[0].vcpus: must be between 1 and 254, got 0"
    );
    let e = err(&guest_with("vcpus = 255"));
    assert_at(&e, 8, 9, "guest[0].vcpus");
    assert!(matches!(
        e.kind(),
        ErrorKind::OutOfRange { min: 1, max: 254, got } if got == "255"
    ));
    let e = err(&guest_with("vcpus = -1"));
    assert!(e.to_string().ends_with("got -1"), "{e}");
    let e = err(&guest_with(
        "vcpus = 99999999999999999999999999999999999999999",
    ));
    assert!(matches!(e.kind(), ErrorKind::OutOfRange { .. }), "{e}");
}

/// `MIN` with `line` added to the `[hive]` table (it lands on line 3).
fn hive_with(line: &str) -> String {
    MIN.replacen(
        "name = \"demo\"\n",
        &format!("name = \"demo\"\n{line}\n"),
        1,
    )
}

#[test]
fn telemetry_ring_kib_is_optional_bounded_and_round_trips() {
    assert_eq!(parse(MIN).unwrap().telemetry_ring_kib, None);
    let hive = parse(&hive_with("telemetry_ring_kib = 2048")).unwrap();
    assert_eq!(hive.telemetry_ring_kib, Some(2048));
    let text = toml::to_string(&hive).unwrap();
    assert!(text.contains("telemetry_ring_kib = 2048"), "{text}");
    let e = err(&hive_with("telemetry_ring_kib = 0"));
    assert_at(&e, 3, 22, "hive.telemetry_ring_kib");
    assert_eq!(
        e.to_string(),
        "hive.toml:3:22: hive.telemetry_ring_kib: must be between 1 and 65536, got 0"
    );
    assert!(
        err(&hive_with("telemetry_ring_kib = 65537"))
            .to_string()
            .ends_with("got 65537")
    );
    assert!(
        err(&hive_with("telemetry_ring_kib = \"big\""))
            .to_string()
            .contains("telemetry_ring_kib")
    );
}

#[test]
fn memory_range() {
    let e = err(&guest_with("memory_mib = 1"));
    assert_at(&e, 8, 14, "guest[0].memory_mib");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:14: guest[0].memory_mib: must be between 2 and 262144, got 1"
    );
    let e = err(&guest_with("memory_mib = 262_145"));
    assert!(e.to_string().ends_with("got 262145"), "{e}");
    assert!(parse(&guest_with("memory_mib = 262_144")).is_ok());
}

#[test]
fn bad_names() {
    let cases: &[(&str, &str)] = &[
        ("Worker", "contains `W`; only a-z, 0-9 and '-' are allowed"),
        ("", "must not be empty"),
        (&"a".repeat(33), "must be at most 32 characters, got 33"),
        ("1st", "must start with a letter a-z"),
        ("-x", "must start with a letter a-z"),
        ("a_b", "contains `_`"),
        ("wörker", "contains `ö`"),
    ];
    for (name, reason) in cases {
        let e = err(&MIN.replace("\"worker-1\"", &format!("\"{name}\"")));
        assert_at(&e, 5, 8, "guest[0].name");
        assert!(matches!(e.kind(), ErrorKind::InvalidName { .. }), "{e}");
        assert!(e.to_string().contains(reason), "{e} / {reason}");

        let e = err(&MIN.replace("\"demo\"", &format!("\"{name}\"")));
        assert_at(&e, 2, 8, "hive.name");
    }
    assert!(parse(&MIN.replace("worker-1", &"z".repeat(32))).is_ok());

    let e = err(&MIN.replace("\"worker-1\"", "\"Worker\""));
    assert_eq!(
        e.to_string(),
        "hive.toml:5:8: guest[0].name: invalid name `Worker`: contains `W`; only a-z, 0-9 and \
         '-' are allowed"
    );
}

#[test]
fn name_rule() {
    assert_eq!(validate_name("worker-3"), Ok(()));
    assert_eq!(validate_name("a"), Ok(()));
    assert_eq!(validate_name(""), Err(NameError::Empty));
    assert_eq!(validate_name("A"), Err(NameError::BadChar('A')));
    assert_eq!(validate_name("9"), Err(NameError::BadStart));
    assert_eq!(
        validate_name(&"x".repeat(40)),
        Err(NameError::TooLong { len: 40 })
    );
}

#[test]
fn hostile_text_is_escaped_in_messages() {
    let e = err(&MIN.replace("\"worker-1\"", "\"\\u001b[2Jevil\\n\""));
    let text = e.to_string();
    assert!(!text.contains('\u{1b}') && !text.contains('\n'), "{text:?}");
    assert!(text.contains("\\u{1b}[2Jevil\\n"), "{text}");

    let long_key = "k".repeat(5000);
    let e = err(&guest_with(&format!("{long_key} = 1")));
    assert!(e.to_string().len() < 600, "{}", e.to_string().len());
    assert!(e.key().unwrap().len() < 100);
}

#[test]
fn duplicate_guest_names() {
    let text = format!(
        "{MIN}\n[[guest]]\nname = \"worker-1\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n"
    );
    let e = err(&text);
    assert_at(&e, 10, 8, "guest[1].name");
    assert_eq!(
        e.to_string(),
        "hive.toml:10:8: guest[1].name: duplicate guest name `worker-1` (first used on line 5)"
    );
}

#[test]
fn missing_hive() {
    let text = "[[guest]]\nname = \"w\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n";
    let e = err(text);
    assert_at(&e, 1, 1, "hive");
    assert!(matches!(e.kind(), ErrorKind::MissingHive));
    assert_eq!(
        e.to_string(),
        "hive.toml:1:1: missing required table [hive]"
    );
}

#[test]
fn missing_required_keys() {
    let e = err(&MIN.replace("kind = \"coconut\"\n", ""));
    assert_at(&e, 4, 1, "guest[0].kind");
    assert_eq!(
        e.to_string(),
        "hive.toml:4:1: missing required key `kind` in guest[0]"
    );
    let e = err(&MIN.replace("name = \"demo\"\n", ""));
    assert_at(&e, 1, 1, "hive.name");
    let e = err("[hive]\nname = \"d\"\n[[guest]]\n");
    let keys: Vec<_> = e.iter().map(|e| e.key().unwrap().to_owned()).collect();
    assert_eq!(keys, ["guest[0].name", "guest[0].kind", "guest[0].kernel"]);
}

#[test]
fn guest_count() {
    let e = err("[hive]\nname = \"demo\"\n");
    assert_at(&e, 1, 1, "guest");
    assert!(matches!(e.kind(), ErrorKind::GuestCount { count: 0 }));
    assert_eq!(
        e.to_string(),
        "hive.toml:1:1: guest: a hive needs between 1 and 64 [[guest]] tables, got 0"
    );

    let e = err("guest = []\n[hive]\nname = \"demo\"\n");
    assert_at(&e, 1, 9, "guest");

    let mut text = String::from("[hive]\nname = \"demo\"\n");
    for i in 0..65 {
        text.push_str(&format!(
            "[[guest]]\nname = \"w{i}\"\nkind = \"coconut\"\nkernel = \"builtin:guest-kernel\"\n"
        ));
    }
    let e = err(&text);
    assert_at(&e, 3 + 64 * 4, 1, "guest");
    assert!(matches!(e.kind(), ErrorKind::GuestCount { count: 65 }));
    assert_eq!(e.count(), 1);
    // 64 is fine.
    let cut = text.rfind("[[guest]]").unwrap();
    assert_eq!(parse(&text[..cut]).unwrap().guests.len(), 64);
}

#[test]
fn unknown_builtin() {
    let e = err(&MIN.replace("builtin:guest-kernel", "builtin:bzImage"));
    assert_at(&e, 7, 10, "guest[0].kernel");
    assert_eq!(
        e.to_string(),
        "hive.toml:7:10: guest[0].kernel: unknown builtin image `bzImage` (known: \
         `guest-kernel`, `ramdisk`)"
    );
    let e = HiveConfig::parse(MIN, origin(), Path::new("/"), &[]).unwrap_err();
    assert!(
        e.to_string().ends_with("(this build embeds no images)"),
        "{e}"
    );
    let e = err(&MIN.replace("builtin:guest-kernel", "builtin:"));
    assert!(matches!(e.kind(), ErrorKind::UnknownBuiltin { name, .. } if name.is_empty()));
}

#[test]
fn missing_kernel_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = MIN.replace("builtin:guest-kernel", "kernels/vmlinuz");
    let e = parse_in(&text, dir.path()).unwrap_err();
    assert_at(&e, 7, 10, "guest[0].kernel");
    let want = dir.path().join("kernels/vmlinuz");
    assert!(matches!(e.kind(), ErrorKind::MissingFile { path } if *path == want));
    assert_eq!(
        e.to_string(),
        format!(
            "hive.toml:7:10: guest[0].kernel: file not found: {}",
            want.display()
        )
    );

    let e = err(&guest_with("initrd = \"/nonexistent/initrd.img\""));
    assert_at(&e, 8, 10, "guest[0].initrd");
    assert!(matches!(e.kind(), ErrorKind::MissingFile { .. }));

    let e = err(&MIN.replace("builtin:guest-kernel", ""));
    assert_at(&e, 7, 10, "guest[0].kernel");
    assert!(matches!(e.kind(), ErrorKind::InvalidPath { .. }));
}

#[test]
fn kernel_path_is_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("kdir")).unwrap();
    let e = parse_in(&MIN.replace("builtin:guest-kernel", "kdir"), dir.path()).unwrap_err();
    assert_at(&e, 7, 10, "guest[0].kernel");
    assert!(
        matches!(e.kind(), ErrorKind::NotAFile { path } if *path == dir.path().join("kdir")),
        "{e}"
    );
    assert!(e.to_string().contains("not a regular file: "), "{e}");
}

#[test]
fn kernel_under_a_file_is_an_access_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f"), b"").unwrap();
    let e = parse_in(&MIN.replace("builtin:guest-kernel", "f/k"), dir.path()).unwrap_err();
    assert_at(&e, 7, 10, "guest[0].kernel");
    assert!(matches!(e.kind(), ErrorKind::FileAccess { .. }), "{e}");
    assert!(e.to_string().ends_with(": Not a directory"), "{e}");
}

#[test]
fn cmdline_rules() {
    let e = err(&guest_with("cmdline = \"quiet\\nrm -rf\""));
    assert_at(&e, 8, 11, "guest[0].cmdline");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:11: guest[0].cmdline: must not contain a newline"
    );
    let e = err(&guest_with("cmdline = \"a\\u0000b\""));
    assert!(
        e.to_string().ends_with("must not contain a NUL byte"),
        "{e}"
    );
    let e = err(&guest_with("cmdline = \"a\\rb\""));
    assert!(
        e.to_string()
            .ends_with("must not contain a carriage return"),
        "{e}"
    );
    let e = err(&guest_with(&format!("cmdline = \"{}\"", "x".repeat(2049))));
    assert!(
        e.to_string()
            .ends_with("must be at most 2048 bytes, got 2049"),
        "{e}"
    );
    let ok = parse(&guest_with(&format!("cmdline = \"{}\"", "x".repeat(2048)))).unwrap();
    assert_eq!(ok.guests[0].cmdline.len(), 2048);
    // A multi-line literal string is a newline too.
    let e = err(&guest_with("cmdline = '''a\nquiet'''"));
    assert!(matches!(e.kind(), ErrorKind::InvalidCmdline { .. }));
}

#[test]
fn vfio_devices_are_kept_as_written() {
    let ok = parse(&guest_with(
        r#"vfio = ["0000:01:00.0", "02:00.0,no-mmap", "/sys/bus/pci/devices/0000:03:00.0"]"#,
    ))
    .unwrap();
    assert_eq!(
        ok.guests[0].vfio,
        [
            "0000:01:00.0",
            "02:00.0,no-mmap",
            "/sys/bus/pci/devices/0000:03:00.0"
        ]
    );
    assert!(parse(MIN).unwrap().guests[0].vfio.is_empty());
}

#[test]
fn bad_vfio_lists() {
    let e = err(&guest_with(r#"vfio = "0000:01:00.0""#));
    assert_at(&e, 8, 8, "guest[0].vfio");
    assert!(matches!(e.kind(), ErrorKind::WrongType { .. }), "{e}");
    let e = err(&guest_with(r#"vfio = ["01:00.0", 3]"#));
    assert_at(&e, 8, 20, "guest[0].vfio[1]");
    assert!(matches!(e.kind(), ErrorKind::WrongType { .. }), "{e}");
    let e = err(&guest_with(r#"vfio = ["01:00.0; rm -rf /"]"#));
    assert_at(&e, 8, 9, "guest[0].vfio[0]");
    assert!(matches!(e.kind(), ErrorKind::InvalidVfio { .. }), "{e}");
    assert!(
        e.to_string()
            .ends_with("';' never appears in a PCI address or sysfs path"),
        "{e}"
    );
    let e = err(&guest_with(r#"vfio = [""]"#));
    assert!(
        e.to_string().ends_with("must be 1 to 256 bytes, got 0"),
        "{e}"
    );
    let long = format!("vfio = [\"{}\"]", "a".repeat(257));
    assert!(matches!(
        err(&guest_with(&long)).kind(),
        ErrorKind::InvalidVfio { .. }
    ));
    let nine = format!("vfio = [{}]", ["\"01:00.0\""; 9].join(", "));
    let e = err(&guest_with(&nine));
    assert!(e.to_string().ends_with("at most 8 devices, got 9"), "{e}");
}

#[test]
fn virtio_transport_defaults_to_auto_and_pci_needs_linux() {
    assert_eq!(
        parse(MIN).unwrap().guests[0].virtio_transport,
        VirtioTransport::Auto
    );
    let mmio = parse(&guest_with("virtio_transport = \"mmio\"")).unwrap();
    assert_eq!(mmio.guests[0].virtio_transport, VirtioTransport::Mmio);
    let linux = MIN.replace("\"coconut\"", "\"linux\"");
    let pci = parse(&format!("{linux}virtio_transport = \"pci\"\n")).unwrap();
    assert_eq!(pci.guests[0].virtio_transport, VirtioTransport::Pci);
    // MIN's guest is coconut: its driver speaks virtio-mmio only.
    let e = err(&guest_with("virtio_transport = \"pci\""));
    assert_at(&e, 8, 20, "guest[0].virtio_transport");
    assert!(
        matches!(e.kind(), ErrorKind::InvalidTransport { .. }),
        "{e}"
    );
    let e = err(&guest_with("virtio_transport = \"usb\""));
    assert_at(&e, 8, 20, "guest[0].virtio_transport");
    assert!(
        e.to_string()
            .ends_with("unknown virtio_transport `usb` (expected one of: auto, mmio, pci)"),
        "{e}"
    );
    let e = err(&guest_with("virtio_transport = 1"));
    assert!(matches!(e.kind(), ErrorKind::WrongType { .. }), "{e}");
}

#[test]
fn unknown_kind_and_role() {
    let e = err(&MIN.replace("\"coconut\"", "\"windows\""));
    assert_at(&e, 6, 8, "guest[0].kind");
    assert_eq!(
        e.to_string(),
        "hive.toml:6:8: guest[0].kind: unknown kind `windows` (expected one of: coconut, sel4, \
         linux)"
    );
    let e = err(&guest_with("role = \"king\""));
    assert_at(&e, 8, 8, "guest[0].role");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:8: guest[0].role: unknown role `king` (expected one of: queen, \
         worker-heartbeat, worker-gpu)"
    );
    // Case matters.
    let e = err(&MIN.replace("\"coconut\"", "\"Coconut\""));
    assert!(matches!(e.kind(), ErrorKind::UnknownValue(_)));
}

#[test]
fn enums_round_trip() {
    for k in GuestKind::ALL {
        assert_eq!(k.as_str().parse::<GuestKind>(), Ok(*k));
        assert_eq!(k.to_string(), k.as_str());
    }
    for r in Role::ALL {
        assert_eq!(r.as_str().parse::<Role>(), Ok(*r));
        assert_eq!(r.to_string(), r.as_str());
    }
    assert_eq!(Role::WorkerGpu.as_str(), "worker-gpu");
    assert_eq!(Role::default(), Role::WorkerHeartbeat);
    assert!("gpu".parse::<Role>().is_err());
    assert_eq!(
        ImageSource::Builtin("ramdisk".into()).to_string(),
        "builtin:ramdisk"
    );
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = r#"[[guest]]
name = "A"
kind = "beos"
kernel = "builtin:nope"
vcpus = 0
memory_mib = 1
colour = "red"

[hive]
name = "Demo"
"#;
    let e = err(text);
    let got: Vec<(usize, &str)> = e
        .iter()
        .map(|e| (e.line().unwrap(), e.key().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (2, "guest[0].name"),
            (3, "guest[0].kind"),
            (4, "guest[0].kernel"),
            (5, "guest[0].vcpus"),
            (6, "guest[0].memory_mib"),
            (7, "guest[0].colour"),
            (10, "hive.name"),
        ]
    );
    assert_eq!(e.count(), 7);
    assert_eq!(e.to_string().lines().count(), 7);
    assert_eq!(e.omitted(), 0);
}

#[test]
fn too_many_errors_are_counted_not_kept() {
    let mut text = String::from(MIN);
    for i in 0..100 {
        text.push_str(&format!("bad{i} = 1\n"));
    }
    let e = err(&text);
    assert_eq!(e.count(), MAX_REPORTED_ERRORS);
    assert_eq!(e.omitted(), 100 - MAX_REPORTED_ERRORS);
    assert!(
        e.to_string().ends_with(&format!(
            "hive.toml: ... and {} more errors",
            100 - MAX_REPORTED_ERRORS
        )),
        "{e}"
    );
}

#[test]
fn load_errors() {
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("hive.toml");
    let e = HiveConfig::load(&missing, BUILTINS).unwrap_err();
    assert_eq!((e.line(), e.key()), (None, None));
    assert!(matches!(e.kind(), ErrorKind::Read(_)));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: cannot read: No such file or directory",
            missing.display()
        )
    );
    assert!(std::error::Error::source(&e).is_some());

    let e = HiveConfig::load(dir.path(), BUILTINS).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NotARegularFile), "{e}");

    let bad_utf8 = dir.path().join("latin1.toml");
    fs::write(&bad_utf8, b"[hive]\nname = \"d\xe9mo\"\n").unwrap();
    let e = HiveConfig::load(&bad_utf8, BUILTINS).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NotUtf8));
    assert_eq!((e.line(), e.column()), (Some(2), Some(10)));

    let big = dir.path().join("big.toml");
    let mut text = String::from(MIN);
    while text.len() <= coco_hive_config::MAX_CONFIG_BYTES as usize {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    fs::write(&big, text).unwrap();
    let e = HiveConfig::load(&big, BUILTINS).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::TooLarge { .. }), "{e}");

    let ok = dir.path().join("ok.toml");
    fs::write(&ok, MIN).unwrap();
    let e = HiveConfig::load(&ok, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:7:10: guest[0].kernel: unknown builtin image `guest-kernel` (this build embeds \
             no images)",
            ok.display()
        )
    );
}

#[test]
fn other_toml_spellings_are_accepted() {
    let text = r#"
hive.name = "demo"
guest = [
  { name = "a", kind = "coconut", kernel = "builtin:guest-kernel", vcpus = 2 },
  { name = "b", kind = "linux", kernel = "builtin:guest-kernel", role = "worker-gpu" },
]
"#;
    let hive = parse(text).unwrap();
    assert_eq!(hive.guests.len(), 2);
    assert_eq!(hive.guests[1].role, Role::WorkerGpu);
    assert_eq!(
        hive.guests[1].defined_at,
        Some(Location { line: 5, column: 3 })
    );
    let e = err(&text.replace("vcpus = 2", "vcpus = 2, vcpu = 3"));
    assert_at(&e, 4, 79, "guest[0].vcpu");
}

#[test]
fn serialized_config_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("k"), b"").unwrap();
    let text = MIN.replace("name = \"demo\"", "name = \"demo\"\nstate_dir = \"s\"")
        + "initrd = \"k\"\ncmdline = \"a b\"\nvfio = [\"01:00.0\"]\n"
        + "budget = { ticks = 7, ttl_s = \"unlimited\" }\n";
    let hive = parse_in(&text, dir.path()).unwrap();
    let written = toml::to_string(&hive).unwrap();
    let again = parse_in(&written, Path::new("/elsewhere")).unwrap();
    assert_eq!(
        again.guests[0].budget.ticks,
        Some(BudgetLimit::Limited(7)),
        "{written}"
    );
    assert_eq!(again.name, hive.name);
    assert_eq!(again.state_dir, hive.state_dir);
    assert_eq!(again.guests.len(), 1);
    let (a, b) = (&again.guests[0], &hive.guests[0]);
    assert_eq!(
        GuestConfig {
            defined_at: None,
            ..a.clone()
        },
        GuestConfig {
            defined_at: None,
            ..b.clone()
        },
        "{written}"
    );

    let embedded = HiveConfig::embedded(BUILTINS).unwrap();
    let written = toml::to_string(&embedded).unwrap();
    let again = parse(&written).unwrap();
    assert_eq!(again.guests[0].vcpus, 2);
}

#[test]
fn types_are_thread_safe() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<ConfigError>();
    send_sync::<HiveConfig>();
}

#[test]
fn budget_is_optional_and_keeps_role_defaults_for_missing_keys() {
    assert_eq!(parse(MIN).unwrap().guests[0].budget, GuestBudget::default());
    assert!(GuestBudget::default().is_empty());

    let hive = parse(&guest_with("budget = { ticks = 2, ttl_s = \"unlimited\" }")).unwrap();
    assert_eq!(
        hive.guests[0].budget,
        GuestBudget {
            ticks: Some(BudgetLimit::Limited(2)),
            ops: None,
            ttl_s: Some(BudgetLimit::Unlimited),
        }
    );

    // The sub-table form, and every key unlimited.
    let text = format!(
        "{MIN}[guest.budget]\nticks = \"unlimited\"\nops = \"unlimited\"\nttl_s = \"unlimited\"\n"
    );
    let all = parse(&text).unwrap().guests[0].budget;
    assert_eq!(
        (all.ticks, all.ops, all.ttl_s),
        (
            Some(BudgetLimit::Unlimited),
            Some(BudgetLimit::Unlimited),
            Some(BudgetLimit::Unlimited)
        )
    );

    // Dotted keys, the largest values, and a gpu worker.
    let hive = parse(&guest_with(
        "role = \"worker-gpu\"\nbudget.ops = 1_000_000_000\nbudget.ttl_s = 31536000",
    ))
    .unwrap();
    let b = hive.guests[0].budget;
    assert_eq!(b.ops, Some(BudgetLimit::Limited(1_000_000_000)));
    assert_eq!(b.ttl_s, Some(BudgetLimit::Limited(31_536_000)));
    assert_eq!(b.ticks, None);
}

#[test]
fn budget_values_out_of_range() {
    let e = err(&guest_with("budget = { ticks = 0 }"));
    assert_at(&e, 8, 20, "guest[0].budget.ticks");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:20: guest[0].budget.ticks: must be between 1 and 1000000000, got 0"
    );
    let e = err(&guest_with("budget = { ops = -5 }"));
    assert_at(&e, 8, 18, "guest[0].budget.ops");
    assert!(e.to_string().ends_with("got -5"), "{e}");
    let e = err(&guest_with("budget = { ops = 1_000_000_001 }"));
    assert!(matches!(e.kind(), ErrorKind::OutOfRange { .. }), "{e}");
    let e = err(&guest_with("budget = { ttl_s = 31536001 }"));
    assert_at(&e, 8, 20, "guest[0].budget.ttl_s");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:20: guest[0].budget.ttl_s: must be between 1 and 31536000, got 31536001"
    );
    let e = err(&guest_with(
        "budget = { ttl_s = 99999999999999999999999999999999999999999 }",
    ));
    assert!(matches!(e.kind(), ErrorKind::OutOfRange { .. }), "{e}");
}

#[test]
fn budget_values_of_the_wrong_kind() {
    let e = err(&guest_with("budget = { ticks = 2.5 }"));
    assert_at(&e, 8, 20, "guest[0].budget.ticks");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:20: guest[0].budget.ticks: expected a positive integer or \"unlimited\", \
         found a float"
    );
    let e = err(&guest_with("budget = { ops = \"forever\" }"));
    assert_at(&e, 8, 18, "guest[0].budget.ops");
    assert!(matches!(e.kind(), ErrorKind::InvalidBudget { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:18: guest[0].budget.ops: expected a positive integer or \"unlimited\", \
         got `forever`"
    );
    // Case matters.
    let e = err(&guest_with("budget = { ops = \"Unlimited\" }"));
    assert!(matches!(e.kind(), ErrorKind::InvalidBudget { .. }), "{e}");
    let e = err(&guest_with("budget = { ttl_s = true }"));
    assert!(
        matches!(
            e.kind(),
            ErrorKind::WrongType {
                found: "a boolean",
                ..
            }
        ),
        "{e}"
    );
    let e = err(&guest_with("budget = 5"));
    assert_at(&e, 8, 10, "guest[0].budget");
    assert!(
        e.to_string().ends_with(
            "expected a table (budget = { ticks = .., ops = .., ttl_s = .. }), found an integer"
        ),
        "{e}"
    );
}

#[test]
fn unknown_budget_keys() {
    let e = err(&guest_with("budget = { ticks = 2, tick = 3 }"));
    assert_at(&e, 8, 23, "guest[0].budget.tick");
    assert_eq!(
        e.to_string(),
        "hive.toml:8:23: unknown key `tick` in guest[0].budget (expected one of: ticks, ops, \
         ttl_s)"
    );
    let e = err(&format!("{MIN}[guest.budget]\nbandwidth = 1\n"));
    assert_at(&e, 9, 1, "guest[0].budget.bandwidth");
    // Every problem of one table is reported.
    let e = err(&guest_with("budget = { ticks = 0, ops = \"x\", rate = 1 }"));
    let keys: Vec<_> = e.iter().map(|e| e.key().unwrap().to_owned()).collect();
    assert_eq!(
        keys,
        [
            "guest[0].budget.ticks",
            "guest[0].budget.ops",
            "guest[0].budget.rate"
        ]
    );
}

#[test]
fn budget_on_a_queen_is_an_error() {
    let e = err(&guest_with("role = \"queen\"\nbudget = { ttl_s = 60 }"));
    assert_at(&e, 9, 10, "guest[0].budget");
    assert!(matches!(e.kind(), ErrorKind::InvalidBudget { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "hive.toml:9:10: guest[0].budget: budget applies to worker roles (the queen is \
         unbounded)"
    );
    // Key order does not matter, nor the table form.
    let e = err(&guest_with("budget = { ttl_s = 60 }\nrole = \"queen\""));
    assert_at(&e, 8, 10, "guest[0].budget");
    let e = err(&format!("{MIN}role = \"queen\"\n[guest.budget]\nops = 1\n"));
    assert_eq!(e.key(), Some("guest[0].budget"), "{e}");
    assert!(
        e.to_string().contains("budget applies to worker roles"),
        "{e}"
    );
}
