//! Reading and validating hive.toml.
//!
//! The text is parsed into toml's spanned document tree ([`DeTable`]), then walked by
//! hand: every key and value keeps its byte span, so each problem is reported at its
//! own line and column with its full key path, and all problems are collected in one
//! pass (serde's derive would stop at the first and lose the key path).

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ErrorKind, quoted};
use crate::{
    BUILTIN_PREFIX, BudgetLimit, ConfigError, ConfigOrigin, DEFAULT_MEMORY_MIB, DEFAULT_VCPUS,
    GuestBudget, GuestConfig, GuestKind, HiveConfig, ImageSource, Location, MAX_BUDGET_COUNT,
    MAX_BUDGET_TTL_S, MAX_CMDLINE_BYTES, MAX_CONFIG_BYTES, MAX_GUESTS, MAX_MEMORY_MIB,
    MAX_REPORTED_ERRORS, MAX_TELEMETRY_RING_KIB, MAX_VCPUS, MAX_VFIO_BYTES, MAX_VFIO_DEVICES,
    MIN_MEMORY_MIB, MIN_TELEMETRY_RING_KIB, MIN_VCPUS, Role, UNLIMITED, VirtioTransport,
    validate_name,
};

const TOP_KEYS: &[&str] = &["hive", "guest"];
const HIVE_KEYS: &[&str] = &["name", "state_dir", "telemetry_ring_kib"];
const GUEST_KEYS: &[&str] = &[
    "name",
    "kind",
    "kernel",
    "initrd",
    "cmdline",
    "memory_mib",
    "vcpus",
    "role",
    "autostart",
    "virtio_transport",
    "vfio",
    "budget",
];
const BUDGET_KEYS: &[&str] = &["ticks", "ops", "ttl_s"];

/// Longest key segment kept verbatim in a key path; longer ones are shortened.
const KEY_SEGMENT_MAX: usize = 64;

/// Reads a config file: a regular file of at most [`MAX_CONFIG_BYTES`] bytes of UTF-8.
pub(crate) fn read_config(path: &Path) -> Result<String, (Option<Location>, ErrorKind)> {
    // stat first: opening a FIFO would block, reading a device might never end.
    let meta = fs::metadata(path).map_err(|e| (None, ErrorKind::Read(e)))?;
    if !meta.is_file() {
        return Err((None, ErrorKind::NotARegularFile));
    }
    let file = fs::File::open(path).map_err(|e| (None, ErrorKind::Read(e)))?;
    let mut buf = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| (None, ErrorKind::Read(e)))?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err((
            None,
            ErrorKind::TooLarge {
                max: MAX_CONFIG_BYTES,
            },
        ));
    }
    String::from_utf8(buf).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let prefix = std::str::from_utf8(&e.as_bytes()[..valid]).unwrap_or("");
        (Some(locate(prefix, valid)), ErrorKind::NotUtf8)
    })
}

/// Line and column (1-based, column in characters) of byte `offset` in `src`. Offsets
/// past the end or inside a character are clamped.
pub(crate) fn locate(src: &str, offset: usize) -> Location {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location {
        line: before.bytes().filter(|&b| b == b'\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

pub(crate) fn parse(
    text: &str,
    origin: ConfigOrigin,
    base_dir: &Path,
    builtins: &[&str],
) -> Result<HiveConfig, ConfigError> {
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let location = e.span().map(|s| locate(text, s.start));
            let raw = e.message().trim_end();
            let mut message = String::new();
            crate::error::sanitized(
                raw.strip_suffix(", expected nothing").unwrap_or(raw),
                1024,
                &mut message,
            );
            return Err(ConfigError::new(
                origin,
                location,
                None,
                ErrorKind::Syntax { message },
            ));
        }
    };
    let base_dir = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    let mut v = Validator {
        text,
        base_dir: &base_dir,
        builtins,
        errors: Vec::new(),
    };
    let (
        HiveTable {
            name,
            state_dir,
            telemetry_ring_kib,
        },
        guests,
    ) = v.document(doc.get_ref());
    match name {
        Some(name) if v.errors.is_empty() => Ok(HiveConfig {
            origin,
            name,
            state_dir,
            telemetry_ring_kib,
            guests,
        }),
        _ => Err(v.into_error(origin)),
    }
}

/// The `[hive]` table's values (each `None` when absent or invalid).
#[derive(Default)]
struct HiveTable {
    name: Option<String>,
    state_dir: Option<PathBuf>,
    telemetry_ring_kib: Option<u32>,
}

/// One problem, still as a byte span.
struct Diag {
    span: Range<usize>,
    key: Option<String>,
    kind: ErrorKind,
}

struct Validator<'a> {
    text: &'a str,
    base_dir: &'a Path,
    builtins: &'a [&'a str],
    errors: Vec<Diag>,
}

type Value<'i> = Spanned<DeValue<'i>>;

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, key: impl Into<Option<String>>, kind: ErrorKind) {
        self.errors.push(Diag {
            span,
            key: key.into(),
            kind,
        });
    }

    fn into_error(mut self, origin: ConfigOrigin) -> ConfigError {
        // File order; the sort is stable, so problems at one place keep their order.
        self.errors.sort_by_key(|d| d.span.start);
        let total = self.errors.len();
        let mut errors = self.errors.into_iter().take(MAX_REPORTED_ERRORS).map(|d| {
            ConfigError::new(
                origin.clone(),
                Some(locate(self.text, d.span.start)),
                d.key,
                d.kind,
            )
        });
        let Some(first) = errors.next() else {
            return ConfigError::new(origin, None, None, ErrorKind::MissingHive);
        };
        let rest: Vec<ConfigError> = errors.collect();
        let omitted = total - 1 - rest.len();
        first.with_additional(rest, omitted)
    }

    /// Reports keys of `table` not in `allowed`.
    fn check_keys(
        &mut self,
        table: &DeTable<'_>,
        allowed: &'static [&'static str],
        label: &str,
        prefix: Option<&str>,
    ) {
        for (key, _) in table.iter() {
            let name: &str = key.get_ref();
            if !allowed.contains(&name) {
                self.err(
                    key.span(),
                    key_path(prefix, name),
                    ErrorKind::UnknownKey {
                        key: name.to_owned(),
                        table: label.to_owned(),
                        expected: allowed,
                    },
                );
            }
        }
    }

    /// The whole document: `[hive]` and `[[guest]]`.
    fn document(&mut self, doc: &DeTable<'_>) -> (HiveTable, Vec<GuestConfig>) {
        self.check_keys(doc, TOP_KEYS, "at the top level", None);

        let hive = match get(doc, "hive") {
            None => {
                self.err(0..0, Some("hive".to_owned()), ErrorKind::MissingHive);
                HiveTable::default()
            }
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => self.hive(t, v.span()),
                other => {
                    self.err(
                        v.span(),
                        Some("hive".to_owned()),
                        ErrorKind::WrongType {
                            expected: "a table ([hive])",
                            found: type_name(other),
                        },
                    );
                    HiveTable::default()
                }
            },
        };

        let mut guests = Vec::new();
        match get(doc, "guest") {
            None => self.err(
                0..0,
                Some("guest".to_owned()),
                ErrorKind::GuestCount { count: 0 },
            ),
            Some(v) => match v.get_ref() {
                DeValue::Array(array) => {
                    if array.is_empty() || array.len() > MAX_GUESTS {
                        let span = array.get(MAX_GUESTS).map_or(v.span(), |g| g.span());
                        self.err(
                            span,
                            Some("guest".to_owned()),
                            ErrorKind::GuestCount { count: array.len() },
                        );
                    }
                    // name -> line of its first use, for duplicates.
                    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
                    for (i, g) in array.iter().enumerate() {
                        if let Some(guest) = self.guest(i, g, &mut seen) {
                            guests.push(guest);
                        }
                    }
                }
                other => self.err(
                    v.span(),
                    Some("guest".to_owned()),
                    ErrorKind::WrongType {
                        expected: "an array of tables ([[guest]])",
                        found: type_name(other),
                    },
                ),
            },
        }
        (hive, guests)
    }

    fn hive(&mut self, table: &DeTable<'_>, header: Range<usize>) -> HiveTable {
        const P: Option<&str> = Some("hive");
        self.check_keys(table, HIVE_KEYS, "in [hive]", P);
        let name = match get(table, "name") {
            Some(v) => self.name(v, key_path(P, "name")),
            None => {
                self.missing(header, P, "name", "[hive]");
                None
            }
        };
        let state_dir = get(table, "state_dir")
            .and_then(|v| self.path_string(v, key_path(P, "state_dir")))
            .map(|s| self.resolve(s));
        let telemetry_ring_kib = get(table, "telemetry_ring_kib").and_then(|v| {
            self.integer(
                v,
                key_path(P, "telemetry_ring_kib"),
                MIN_TELEMETRY_RING_KIB.into(),
                MAX_TELEMETRY_RING_KIB.into(),
            )
            .and_then(|n| u32::try_from(n).ok())
        });
        HiveTable {
            name,
            state_dir,
            telemetry_ring_kib,
        }
    }

    fn guest(
        &mut self,
        index: usize,
        value: &Value<'_>,
        seen: &mut HashMap<String, Range<usize>>,
    ) -> Option<GuestConfig> {
        let label = format!("guest[{index}]");
        let p = Some(label.as_str());
        let table = match value.get_ref() {
            DeValue::Table(t) => t,
            other => {
                self.err(
                    value.span(),
                    label.clone(),
                    ErrorKind::WrongType {
                        expected: "a table ([[guest]])",
                        found: type_name(other),
                    },
                );
                return None;
            }
        };
        let header = value.span();
        let errors_before = self.errors.len();
        self.check_keys(table, GUEST_KEYS, &format!("in {label}"), p);

        let name = match get(table, "name") {
            Some(v) => {
                let name = self.name(v, key_path(p, "name"));
                if let Some(name) = &name {
                    if let Some(first) = seen.get(name) {
                        let first_line = locate(self.text, first.start).line;
                        self.err(
                            v.span(),
                            key_path(p, "name"),
                            ErrorKind::DuplicateGuest {
                                name: name.clone(),
                                first_line,
                            },
                        );
                    } else {
                        seen.insert(name.clone(), v.span());
                    }
                }
                name
            }
            None => {
                self.missing(header.clone(), p, "name", &label);
                None
            }
        };

        let kind = match get(table, "kind") {
            Some(v) => self.word::<GuestKind>(v, key_path(p, "kind")),
            None => {
                self.missing(header.clone(), p, "kind", &label);
                None
            }
        };
        let kernel = match get(table, "kernel") {
            Some(v) => self.image(v, key_path(p, "kernel")),
            None => {
                self.missing(header.clone(), p, "kernel", &label);
                None
            }
        };
        let initrd = get(table, "initrd").map(|v| self.image(v, key_path(p, "initrd")));
        let cmdline = get(table, "cmdline").map(|v| self.cmdline(v, key_path(p, "cmdline")));
        let memory_mib = get(table, "memory_mib").map(|v| {
            self.integer(
                v,
                key_path(p, "memory_mib"),
                MIN_MEMORY_MIB.into(),
                MAX_MEMORY_MIB.into(),
            )
            .and_then(|n| u32::try_from(n).ok())
        });
        let vcpus = get(table, "vcpus").map(|v| {
            self.integer(v, key_path(p, "vcpus"), MIN_VCPUS.into(), MAX_VCPUS.into())
                .and_then(|n| u8::try_from(n).ok())
        });
        let role = get(table, "role").map(|v| self.word::<Role>(v, key_path(p, "role")));
        let autostart = get(table, "autostart").map(|v| self.boolean(v, key_path(p, "autostart")));
        let virtio_transport = get(table, "virtio_transport").map(|v| {
            let key = key_path(p, "virtio_transport");
            let t = self.word::<VirtioTransport>(v, key.clone());
            if t == Some(VirtioTransport::Pci) && kind.is_some_and(|k| k != GuestKind::Linux) {
                self.err(
                    v.span(),
                    key,
                    ErrorKind::InvalidTransport {
                        reason: "\"pci\" needs kind = \"linux\" (coconut guests speak virtio-mmio only)",
                    },
                );
                return None;
            }
            t
        });
        let vfio = get(table, "vfio").map(|v| self.vfio(v, key_path(p, "vfio")));
        let budget = get(table, "budget").map(|v| {
            let key = key_path(p, "budget");
            let budget = self.budget(v, key.clone());
            if matches!(role, Some(Some(Role::Queen))) {
                let reason = "budget applies to worker roles (the queen is unbounded)".to_owned();
                self.err(v.span(), key, ErrorKind::InvalidBudget { reason });
                return None;
            }
            budget
        });

        if self.errors.len() != errors_before {
            return None;
        }
        Some(GuestConfig {
            name: name?,
            kind: kind?,
            kernel: kernel?,
            initrd: match initrd {
                Some(image) => Some(image?),
                None => None,
            },
            cmdline: cmdline.unwrap_or(Some(String::new()))?,
            memory_mib: memory_mib.unwrap_or(Some(DEFAULT_MEMORY_MIB))?,
            vcpus: vcpus.unwrap_or(Some(DEFAULT_VCPUS))?,
            role: role.unwrap_or(Some(Role::default()))?,
            autostart: autostart.unwrap_or(Some(true))?,
            virtio_transport: virtio_transport.unwrap_or(Some(VirtioTransport::Auto))?,
            vfio: vfio.unwrap_or(Some(Vec::new()))?,
            budget: budget.unwrap_or(Some(GuestBudget::default()))?,
            defined_at: Some(locate(self.text, header.start)),
        })
    }

    fn missing(
        &mut self,
        header: Range<usize>,
        prefix: Option<&str>,
        key: &'static str,
        label: &str,
    ) {
        self.err(
            header,
            key_path(prefix, key),
            ErrorKind::MissingKey {
                key,
                table: label.to_owned(),
            },
        );
    }

    fn string<'v>(&mut self, v: &'v Value<'_>, key: String) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                self.err(
                    v.span(),
                    key,
                    ErrorKind::WrongType {
                        expected: "a string",
                        found: type_name(other),
                    },
                );
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value<'_>, key: String) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.err(
                    v.span(),
                    key,
                    ErrorKind::WrongType {
                        expected: "a boolean (true or false)",
                        found: type_name(other),
                    },
                );
                None
            }
        }
    }

    /// An integer in `min..=max`.
    fn integer(&mut self, v: &Value<'_>, key: String, min: u64, max: u64) -> Option<u64> {
        let int = match v.get_ref() {
            DeValue::Integer(int) => int,
            other => {
                self.err(
                    v.span(),
                    key,
                    ErrorKind::WrongType {
                        expected: "an integer",
                        found: type_name(other),
                    },
                );
                return None;
            }
        };
        let radix = int.radix();
        let parsed = if (2..=36).contains(&radix) {
            i128::from_str_radix(int.as_str(), radix).ok()
        } else {
            None
        };
        if let Some(n) = parsed
            && let Ok(n) = u64::try_from(n)
            && (min..=max).contains(&n)
        {
            return Some(n);
        }
        let got = match parsed {
            Some(n) => n.to_string(),
            None => {
                let prefix = match radix {
                    2 => "0b",
                    8 => "0o",
                    16 => "0x",
                    _ => "",
                };
                let digits: String = int.as_str().chars().take(40).collect();
                format!("{prefix}{digits}")
            }
        };
        self.err(v.span(), key, ErrorKind::OutOfRange { min, max, got });
        None
    }

    fn name(&mut self, v: &Value<'_>, key: String) -> Option<String> {
        let s = self.string(v, key.clone())?;
        match validate_name(s) {
            Ok(()) => Some(s.to_owned()),
            Err(reason) => {
                self.err(
                    v.span(),
                    key,
                    ErrorKind::InvalidName {
                        name: s.to_owned(),
                        reason,
                    },
                );
                None
            }
        }
    }

    /// A string that must be one of `T`'s spellings.
    fn word<T: std::str::FromStr<Err = crate::UnknownVariant>>(
        &mut self,
        v: &Value<'_>,
        key: String,
    ) -> Option<T> {
        let s = self.string(v, key.clone())?;
        match s.parse::<T>() {
            Ok(t) => Some(t),
            Err(e) => {
                self.err(v.span(), key, ErrorKind::UnknownValue(e));
                None
            }
        }
    }

    fn cmdline(&mut self, v: &Value<'_>, key: String) -> Option<String> {
        let s = self.string(v, key.clone())?;
        let reason = if s.len() > MAX_CMDLINE_BYTES {
            format!("must be at most {MAX_CMDLINE_BYTES} bytes, got {}", s.len())
        } else if let Some(c) = s.chars().find(|c| matches!(c, '\0' | '\n' | '\r')) {
            format!(
                "must not contain {}",
                match c {
                    '\0' => "a NUL byte",
                    '\n' => "a newline",
                    _ => "a carriage return",
                }
            )
        } else {
            return Some(s.to_owned());
        };
        self.err(v.span(), key, ErrorKind::InvalidCmdline { reason });
        None
    }

    /// `vfio`: an array of device names (checked for shape only; the VMM
    /// finds out whether the device exists when the guest boots).
    fn vfio(&mut self, v: &Value<'_>, key: String) -> Option<Vec<String>> {
        let DeValue::Array(array) = v.get_ref() else {
            self.err(
                v.span(),
                key,
                ErrorKind::WrongType {
                    expected: "an array of strings",
                    found: type_name(v.get_ref()),
                },
            );
            return None;
        };
        if array.len() > MAX_VFIO_DEVICES {
            let reason = format!("at most {MAX_VFIO_DEVICES} devices, got {}", array.len());
            self.err(v.span(), key, ErrorKind::InvalidVfio { reason });
            return None;
        }
        let errors_before = self.errors.len();
        let mut out = Vec::new();
        for (i, item) in array.iter().enumerate() {
            let item_key = format!("{key}[{i}]");
            let Some(s) = self.string(item, item_key.clone()) else {
                continue;
            };
            let ok_char = |c: char| c.is_ascii_alphanumeric() || ":./,_-".contains(c);
            let reason = if s.is_empty() || s.len() > MAX_VFIO_BYTES {
                format!("must be 1 to {MAX_VFIO_BYTES} bytes, got {}", s.len())
            } else if let Some(c) = s.chars().find(|c| !ok_char(*c)) {
                format!("{c:?} never appears in a PCI address or sysfs path")
            } else {
                out.push(s.to_owned());
                continue;
            };
            self.err(item.span(), item_key, ErrorKind::InvalidVfio { reason });
        }
        (self.errors.len() == errors_before).then_some(out)
    }

    /// `budget`: a table of `ticks`, `ops`, `ttl_s`, each a positive
    /// integer or `"unlimited"`.
    fn budget(&mut self, v: &Value<'_>, key: String) -> Option<GuestBudget> {
        let DeValue::Table(table) = v.get_ref() else {
            self.err(
                v.span(),
                key,
                ErrorKind::WrongType {
                    expected: "a table (budget = { ticks = .., ops = .., ttl_s = .. })",
                    found: type_name(v.get_ref()),
                },
            );
            return None;
        };
        let errors_before = self.errors.len();
        let prefix = Some(key.as_str());
        self.check_keys(table, BUDGET_KEYS, &format!("in {key}"), prefix);
        let mut limit = |name: &str, max: u64| {
            get(table, name).and_then(|v| self.budget_limit(v, key_path(prefix, name), max))
        };
        let budget = GuestBudget {
            ticks: limit("ticks", MAX_BUDGET_COUNT),
            ops: limit("ops", MAX_BUDGET_COUNT),
            ttl_s: limit("ttl_s", MAX_BUDGET_TTL_S),
        };
        (self.errors.len() == errors_before).then_some(budget)
    }

    /// One budget value: an integer in `1..=max` or `"unlimited"`.
    fn budget_limit(&mut self, v: &Value<'_>, key: String, max: u64) -> Option<BudgetLimit> {
        match v.get_ref() {
            DeValue::Integer(_) => self.integer(v, key, 1, max).map(BudgetLimit::Limited),
            DeValue::String(s) if s.as_ref() == UNLIMITED => Some(BudgetLimit::Unlimited),
            DeValue::String(s) => {
                let reason = format!(
                    "expected a positive integer or \"{UNLIMITED}\", got {}",
                    quoted(s)
                );
                self.err(v.span(), key, ErrorKind::InvalidBudget { reason });
                None
            }
            other => {
                self.err(
                    v.span(),
                    key,
                    ErrorKind::WrongType {
                        expected: "a positive integer or \"unlimited\"",
                        found: type_name(other),
                    },
                );
                None
            }
        }
    }

    /// A string used as a path: not empty, no NUL.
    fn path_string<'v>(&mut self, v: &'v Value<'_>, key: String) -> Option<&'v str> {
        let s = self.string(v, key.clone())?;
        let reason = if s.is_empty() {
            "must be a path, got an empty string"
        } else if s.contains('\0') {
            "must not contain a NUL byte"
        } else {
            return Some(s);
        };
        self.err(v.span(), key, ErrorKind::InvalidPath { reason });
        None
    }

    /// `s` against the config's directory (absolute paths stay as they are).
    fn resolve(&self, s: &str) -> PathBuf {
        self.base_dir.join(s)
    }

    /// `builtin:<name>` (a known builtin) or the path of an existing regular file.
    fn image(&mut self, v: &Value<'_>, key: String) -> Option<ImageSource> {
        let s = self.path_string(v, key.clone())?;
        if let Some(name) = s.strip_prefix(BUILTIN_PREFIX) {
            if self.builtins.contains(&name) {
                return Some(ImageSource::Builtin(name.to_owned()));
            }
            let known = self.builtins.iter().map(|b| (*b).to_owned()).collect();
            self.err(
                v.span(),
                key,
                ErrorKind::UnknownBuiltin {
                    name: name.to_owned(),
                    known,
                },
            );
            return None;
        }
        let path = self.resolve(s);
        let kind = match fs::metadata(&path) {
            Ok(m) if m.is_file() => return Some(ImageSource::Path(path)),
            Ok(_) => ErrorKind::NotAFile { path },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ErrorKind::MissingFile { path },
            Err(error) => ErrorKind::FileAccess { path, error },
        };
        self.err(v.span(), key, kind);
        None
    }
}

/// The value of `key` in `table`.
fn get<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t Value<'i>> {
    table
        .iter()
        .find(|(k, _)| AsRef::<str>::as_ref(k.get_ref()) == key)
        .map(|(_, v)| v)
}

/// `prefix.key`, with `key` quoted TOML-style if it is not a bare key and shortened if
/// it is very long (keys come from untrusted text).
fn key_path(prefix: Option<&str>, key: &str) -> String {
    let bare = !key.is_empty()
        && key.len() <= KEY_SEGMENT_MAX
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let segment = if bare {
        key.to_owned()
    } else {
        let mut s = String::from("\"");
        let mut chars = key.chars();
        for c in chars.by_ref().take(KEY_SEGMENT_MAX) {
            s.extend(c.escape_debug());
        }
        if chars.next().is_some() {
            s.push_str("...");
        }
        s.push('"');
        s
    };
    match prefix {
        Some(p) => format!("{p}.{segment}"),
        None => segment,
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}
