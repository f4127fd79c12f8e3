//! Fuzz-ish robustness: truncated, mutated and random inputs give a `Result`, never a
//! panic, and every error points inside the text.

use std::path::Path;

use coco_hive_config::{ConfigError, ConfigOrigin, DEFAULT_HIVE, HiveConfig};

const BUILTINS: &[&str] = &["guest-kernel", "ramdisk"];

const FULL: &str = r#"# a full hive
[hive]
name = "lab"
state_dir = "/tmp/coco-fuzz-state"

[[guest]]
name = "queen-1"
kind = "sel4"
kernel = "builtin:guest-kernel"
role = "queen"
autostart = false

[[guest]]
name = "wörker-ü"   # non-ASCII, to cut inside characters
kind = "linux"
kernel = "/nonexistent/bzImage"
initrd = '/nonexistent/initrd'
cmdline = """console=ttyS0 \
  quiet"""
memory_mib = 0x100
vcpus = 0b11
role = "worker-gpu"
guest.inline = { a = [1, 2.5, 1979-05-27T07:32:00Z, true] }
"#;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Parses `text` and checks the error (if any) is well formed.
fn check(text: &str) {
    let result = HiveConfig::parse(
        text,
        ConfigOrigin::File("fuzz.toml".into()),
        Path::new("/nonexistent-base"),
        BUILTINS,
    );
    if let Err(e) = result {
        check_error(&e, text);
    }
}

fn check_error(e: &ConfigError, text: &str) {
    let rendered = e.to_string();
    assert!(rendered.starts_with("fuzz.toml"), "{rendered}");
    let lines = text.split('\n').count();
    for one in e.iter() {
        if let Some(line) = one.line() {
            assert!(line >= 1 && line <= lines, "line {line} of {lines}: {one}");
            assert!(one.column().unwrap() >= 1);
        }
        // Every problem is one line of Display, whatever the file contains.
        if one.additional().is_empty() && one.omitted() == 0 {
            let single = one.to_string();
            assert!(
                !single.contains('\n') && !single.contains('\r'),
                "{single:?}"
            );
            assert!(!single.contains('\u{1b}'), "{single:?}");
        }
    }
}

fn char_boundaries(s: &str) -> impl Iterator<Item = usize> + '_ {
    (0..=s.len()).filter(|&i| s.is_char_boundary(i))
}

#[test]
fn truncations_never_panic() {
    for text in [FULL, DEFAULT_HIVE] {
        for cut in char_boundaries(text) {
            check(&text[..cut]);
            check(&text[cut..]);
        }
    }
}

#[test]
fn byte_level_truncations_never_panic_through_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.toml");
    let bytes = FULL.as_bytes();
    for cut in 0..=bytes.len() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let _ = HiveConfig::load(&path, BUILTINS).map_err(|e| e.to_string());
    }
}

#[test]
fn mutations_never_panic() {
    const ALPHABET: &[u8] = b"[]{}=\"'.,#\n\\ _-+0123456789abcxyz:\t";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..4000 {
        let mut bytes = FULL.as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = ALPHABET[rng.below(ALPHABET.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            }
        }
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for round in 0..3000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = if round % 2 == 0 {
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            // Mostly TOML punctuation, to get past the lexer more often.
            const TOKENS: &[&[u8]] = &[
                b"[hive]",
                b"[[guest]]",
                b"name",
                b"=",
                b"\"x\"",
                b"\n",
                b"kind",
                b"kernel",
                b"\"builtin:ramdisk\"",
                b"vcpus",
                b"1",
                b"{",
                b"}",
                b"[",
                b"]",
                b",",
                b".",
                b"'",
                b"\"\"\"",
            ];
            let mut v = Vec::new();
            for _ in 0..len / 4 {
                v.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
                if rng.below(3) == 0 {
                    v.push(b' ');
                }
            }
            v
        };
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("x = {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
    check(&deep);
    let deep = format!("x = {}\n", "{ a = ".repeat(50_000));
    check(&deep);
    let dotted = format!("{} = 1\n", vec!["a"; 50_000].join("."));
    check(&dotted);
}
