//! `hive.toml`: the typed configuration of a coco hive.
//!
//! `coco-vmm run --config hive.toml` starts a *hive*: the control plane plus the guest
//! VMs listed in the file. Without `--config` it runs [`DEFAULT_HIVE`], embedded in the
//! binary.
//!
//! A configuration file is **untrusted input**. Loading never panics; every problem
//! (unreadable file, TOML syntax, unknown key, wrong type, bad value, missing image file)
//! is a [`ConfigError`] that names the file, line, column and key, and all problems
//! found in one pass are reported together.
//!
//! # Format
//!
//! ```toml
//! [hive]
//! name = "demo"                   # required
//! state_dir = "/run/coco/demo"    # optional
//!
//! [[guest]]                       # 1 to 64 of these
//! name = "worker-1"               # required
//! kind = "coconut"                # required: "coconut" | "sel4" | "linux"
//! kernel = "builtin:guest-kernel" # required: path or builtin:<name>
//! initrd = "builtin:ramdisk"      # optional: path or builtin:<name>
//! cmdline = "quiet"               # optional, default ""
//! memory_mib = 64                 # optional, default 64
//! vcpus = 1                       # optional, default 1
//! role = "worker-heartbeat"       # optional, default "worker-heartbeat"
//! autostart = true                # optional, default true
//! virtio_transport = "auto"       # optional: auto (pci for linux, mmio for coconut), mmio, pci
//! budget = { ttl_s = "unlimited" } # optional, workers only
//! ```
//!
//! The document has exactly two top-level keys, the table `[hive]` (required) and the
//! array of tables `[[guest]]` (at least one). Any other key, at any level, is an error.
//! Keys may be written in any TOML form (dotted keys, inline tables,
//! `guest = [{ ... }]`); only the resulting structure matters.
//!
//! ## `[hive]`
//!
//! | key | type | required | meaning |
//! |---|---|---|---|
//! | `name` | string | yes | Hive name; see *Names* below. |
//! | `state_dir` | string (path) | no | Directory for the control socket and the audit journal; the VMM picks a default when absent. Relative paths resolve against the config file's directory. Not checked for existence (the VMM creates it). |
//! | `telemetry_ring_kib` | integer | no | Size of each `/worker/<id>/telemetry` ring in KiB, [`MIN_TELEMETRY_RING_KIB`]..=[`MAX_TELEMETRY_RING_KIB`]; absent = NineDoor's default (4 KiB). Benchmarks use a large ring as a file of known size to read back. |
//!
//! ## `[[guest]]`
//!
//! | key | type | required | default | meaning |
//! |---|---|---|---|---|
//! | `name` | string | yes | | Guest name, unique within the hive; see *Names*. |
//! | `kind` | string | yes | | Image format and boot protocol: `"coconut"` (coconut microkernel, PVH ELF), `"sel4"` (seL4, multiboot), `"linux"` (Linux, bzImage). See [`GuestKind`]. |
//! | `kernel` | string (image) | yes | | Kernel image; see *Images*. |
//! | `initrd` | string (image) | no | none | Initial ramdisk; for `coconut` guests boot module 0, the ext2 ramdisk. See *Images*. |
//! | `cmdline` | string | no | `""` | Extra kernel command line, appended to what the VMM passes itself. At most 2048 bytes; no NUL, CR or LF. |
//! | `memory_mib` | integer | no | `64` | Guest RAM in MiB, 2 to 262144. |
//! | `vcpus` | integer | no | `1` | Number of vCPUs, 1 to 254 (APIC ids are 8 bits; the IOAPIC takes the next id). |
//! | `role` | string | no | `"worker-heartbeat"` | Control-plane role: `"queen"`, `"worker-heartbeat"` or `"worker-gpu"`. See [`Role`]. |
//! | `autostart` | boolean | no | `true` | Boot the guest when the hive starts; `false` = only when a `spawn` asks for it. |
//! | `virtio_transport` | string | no | `"auto"` | How the guest reaches its virtio-9p device: `"pci"` (virtio-pci with MSI-X), `"mmio"` (virtio-mmio), `"auto"` (pci for linux, mmio for coconut). `"pci"` on a coconut guest is an error. |
//! | `budget` | table | no | role default | The worker's session budget: optional keys `ticks`, `ops`, `ttl_s`, each a positive integer (`ticks`/`ops` at most [`MAX_BUDGET_COUNT`], `ttl_s` at most [`MAX_BUDGET_TTL_S`]) or `"unlimited"`; a missing key keeps the role default (heartbeat: 1000 ticks, 10000 ops, 300 s). Inline (`budget = { ticks = 5 }`) or as `[guest.budget]`. An error on a `queen`. See [`GuestBudget`]. |
//! | `vfio` | array of strings | no | `[]` | Host PCI devices to pass through with VFIO (`coco-vmm boot --vfio`): a PCI address (`"0000:01:00.0"`, `"01:00.0"`) or sysfs device path, optionally with `",no-mmap"`. At most 8, each 1 to 256 characters of `A-Za-z0-9:./,_-`. The device is checked when the guest boots, not here. |
//!
//! ## Names
//!
//! Hive and guest names are 1 to 32 characters of `a-z`, `0-9` and `-`, starting with a
//! letter (`worker-1`, `q`; not `Worker`, `1st`, `-x`, `a_b`). They appear in paths of
//! the control-plane namespace and on the host, so the rule is strict.
//!
//! ## Images
//!
//! `kernel` and `initrd` take either
//! - `"builtin:<name>"`: an image embedded in the VMM. The names are those the caller
//!   passes as `builtins` (coco-vmm embeds e.g. `guest-kernel` and `ramdisk`); any other
//!   name is an error listing the known ones; or
//! - a file path. Relative paths resolve against the directory of the config file (the
//!   current directory has no influence), `~` is not expanded. The file must exist and be
//!   a regular file (symlinks to one are fine) when the configuration is loaded.
//!
//! Whether an image suits the guest's `kind` (a PVH ELF for `coconut`, ...) is not
//! checked here: the VMM checks it when it loads the image.
//!
//! # Errors
//!
//! Display of a [`ConfigError`], one line per problem:
//! ```text
//! hive.toml:12:9: guest[1].vcpus: must be between 1 and 254, got 0
//! hive.toml:14:1: unknown key `vcpu` in guest[1] (expected one of: name, kind, kernel, initrd, cmdline, memory_mib, vcpus, role, autostart, virtio_transport, vfio, budget)
//! hive.toml:5:10: guest[0].kernel: file not found: /etc/coco/vmlinuz
//! hive.toml:3:8: TOML syntax error: invalid basic string, expected `"`
//! hive.toml: cannot read: No such file or directory
//! ```
//!
//! # Example
//!
//! ```
//! use coco_hive_config::{HiveConfig, ImageSource, GuestKind, Role};
//!
//! let hive = HiveConfig::embedded(&["guest-kernel", "ramdisk"]).unwrap();
//! assert_eq!(hive.name, "demo");
//! let g = &hive.guests[0];
//! assert_eq!((g.name.as_str(), g.kind, g.role), ("worker-1", GuestKind::Coconut, Role::WorkerHeartbeat));
//! assert_eq!(g.kernel, ImageSource::Builtin("guest-kernel".into()));
//!
//! let err = HiveConfig::embedded(&["ramdisk"]).unwrap_err();
//! assert_eq!(err.key(), Some("guest[0].kernel"));
//! ```

mod budget;
mod error;
mod parse;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use budget::{BudgetLimit, GuestBudget, MAX_BUDGET_COUNT, MAX_BUDGET_TTL_S, UNLIMITED};
pub use error::{ConfigError, ErrorKind, NameError};

/// The embedded default hive (the text of `src/default-hive.toml`), run by `coco-vmm run`
/// without `--config`: hive `demo` with one coconut guest `worker-1` booting
/// `builtin:guest-kernel` with `builtin:ramdisk`, 64 MiB, 2 vCPUs, role
/// `worker-heartbeat`. Every key is explained by a comment, so it doubles as a template.
pub const DEFAULT_HIVE: &str = include_str!("default-hive.toml");

/// Prefix of an image embedded in the VMM: `builtin:<name>`.
pub const BUILTIN_PREFIX: &str = "builtin:";
/// Most `[[guest]]` tables a hive may have.
pub const MAX_GUESTS: usize = 64;
/// Longest hive or guest name, in characters.
pub const MAX_NAME_LEN: usize = 32;
/// Most `vfio` devices per guest.
pub const MAX_VFIO_DEVICES: usize = 8;
/// Longest `vfio` entry, in bytes.
pub const MAX_VFIO_BYTES: usize = 256;
/// Longest `cmdline`, in bytes.
pub const MAX_CMDLINE_BYTES: usize = 2048;
/// Smallest `memory_mib`.
pub const MIN_MEMORY_MIB: u32 = 2;
/// Smallest `hive.telemetry_ring_kib`.
pub const MIN_TELEMETRY_RING_KIB: u32 = 1;
/// Largest `hive.telemetry_ring_kib` (64 MiB per worker).
pub const MAX_TELEMETRY_RING_KIB: u32 = 65_536;
/// Largest `memory_mib` (256 GiB).
pub const MAX_MEMORY_MIB: u32 = 262_144;
/// `memory_mib` when absent.
pub const DEFAULT_MEMORY_MIB: u32 = 64;
/// Smallest `vcpus`.
pub const MIN_VCPUS: u8 = 1;
/// Largest `vcpus`.
pub const MAX_VCPUS: u8 = 254;
/// `vcpus` when absent.
pub const DEFAULT_VCPUS: u8 = 1;
/// Largest config file [`HiveConfig::load`] reads.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Most problems one [`ConfigError`] keeps; the rest are only counted.
pub const MAX_REPORTED_ERRORS: usize = 32;

/// Where a configuration came from; shown as the file name in errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConfigOrigin {
    /// A file, with its path as the caller gave it.
    File(PathBuf),
    /// [`DEFAULT_HIVE`]; displayed as `<embedded default>`.
    Embedded,
}

impl ConfigOrigin {
    /// The file's path, `None` for the embedded default.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigOrigin::File(p) => Some(p),
            ConfigOrigin::Embedded => None,
        }
    }
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOrigin::File(p) => write!(f, "{}", p.display()),
            ConfigOrigin::Embedded => f.write_str("<embedded default>"),
        }
    }
}

/// A place in a configuration text: 1-based line and column (the column counts
/// characters). Displayed as `line:column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A validated hive configuration: the `[hive]` table and the `[[guest]]` tables.
///
/// Everything in it has been checked: names follow the naming rule and guest names are
/// unique, numbers are in range, image paths are absolute and named regular files at load
/// time, builtin images are among the caller's.
///
/// `Serialize` writes the hive.toml shape back (`[hive]` + `[[guest]]`, paths absolute),
/// so `toml::to_string(&cfg)` is a loadable, fully explicit config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiveConfig {
    /// Where the configuration came from.
    pub origin: ConfigOrigin,
    /// `hive.name`: the hive's name (see the crate docs, *Names*).
    pub name: String,
    /// `hive.state_dir`: directory for the control socket and the audit journal, resolved
    /// against the config file's directory; `None` = the VMM's default.
    pub state_dir: Option<PathBuf>,
    /// `hive.telemetry_ring_kib`: KiB kept by each worker's telemetry ring; `None` =
    /// NineDoor's default.
    pub telemetry_ring_kib: Option<u32>,
    /// The `[[guest]]` tables in file order; 1 to [`MAX_GUESTS`], unique names.
    pub guests: Vec<GuestConfig>,
}

impl HiveConfig {
    /// Reads and validates the hive.toml at `path`.
    ///
    /// `builtins` are the image names `builtin:<name>` may use. Relative paths in the file
    /// resolve against the file's directory (made absolute). The file must be a regular
    /// file of at most [`MAX_CONFIG_BYTES`] bytes of UTF-8.
    pub fn load(path: &Path, builtins: &[&str]) -> Result<HiveConfig, ConfigError> {
        let origin = ConfigOrigin::File(path.to_path_buf());
        let text = parse::read_config(path)
            .map_err(|(loc, kind)| ConfigError::new(origin.clone(), loc, None, kind))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let base_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Self::parse(&text, origin, &base_dir, builtins)
    }

    /// Validates a hive.toml given as text.
    ///
    /// `origin` names the text in errors; relative paths resolve against `base_dir`
    /// (normally the config file's directory; made absolute with the current directory
    /// if it is relative). Image paths are checked on the file system.
    pub fn parse(
        text: &str,
        origin: ConfigOrigin,
        base_dir: &Path,
        builtins: &[&str],
    ) -> Result<HiveConfig, ConfigError> {
        parse::parse(text, origin, base_dir, builtins)
    }

    /// Validates [`DEFAULT_HIVE`] against the caller's builtin images (it uses
    /// `builtin:guest-kernel` and `builtin:ramdisk`).
    pub fn embedded(builtins: &[&str]) -> Result<HiveConfig, ConfigError> {
        Self::parse(
            DEFAULT_HIVE,
            ConfigOrigin::Embedded,
            Path::new("/"),
            builtins,
        )
    }

    /// The guest called `name`.
    pub fn guest(&self, name: &str) -> Option<&GuestConfig> {
        self.guests.iter().find(|g| g.name == name)
    }
}

/// One `[[guest]]` table: a VM of the hive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestConfig {
    /// `name`: unique within the hive (see the crate docs, *Names*).
    pub name: String,
    /// `kind`: image format and boot protocol.
    pub kind: GuestKind,
    /// `kernel`: the kernel image.
    pub kernel: ImageSource,
    /// `initrd`: the initial ramdisk, if any (for coconut guests: module 0, the ext2
    /// ramdisk).
    pub initrd: Option<ImageSource>,
    /// `cmdline`: extra kernel command line (default empty), at most
    /// [`MAX_CMDLINE_BYTES`] bytes without NUL, CR or LF; the VMM appends it to its own
    /// arguments.
    pub cmdline: String,
    /// `memory_mib`: guest RAM in MiB, [`MIN_MEMORY_MIB`]..=[`MAX_MEMORY_MIB`], default
    /// [`DEFAULT_MEMORY_MIB`].
    pub memory_mib: u32,
    /// `vcpus`: number of vCPUs, [`MIN_VCPUS`]..=[`MAX_VCPUS`], default [`DEFAULT_VCPUS`].
    pub vcpus: u8,
    /// `role`: the guest's control-plane role, default [`Role::WorkerHeartbeat`].
    pub role: Role,
    /// `autostart`: boot with the hive (default `true`); `false` = only on `spawn`.
    pub autostart: bool,
    /// `virtio_transport`: how the guest reaches its virtio-9p device (default
    /// [`VirtioTransport::Auto`]); `pci` for a coconut guest is an error.
    pub virtio_transport: VirtioTransport,
    /// `vfio`: host PCI devices passed through with VFIO (default none), at most
    /// [`MAX_VFIO_DEVICES`]; given to `coco-vmm boot --vfio` as written.
    pub vfio: Vec<String>,
    /// `budget`: the worker's session budget over the role defaults (default: none
    /// set); always empty for a queen.
    pub budget: GuestBudget,
    /// Where the guest's table starts in the config (its `[[guest]]` header), so later
    /// errors about this guest (e.g. the VMM finding the kernel is not of `kind`) can
    /// point at it. `None` for guests not read from a config.
    pub defined_at: Option<Location>,
}

impl GuestConfig {
    /// A guest with every optional key at its default (no initrd, empty cmdline,
    /// [`DEFAULT_MEMORY_MIB`], [`DEFAULT_VCPUS`], [`Role::WorkerHeartbeat`], autostart).
    /// The name is not validated; see [`validate_name`].
    pub fn new(name: impl Into<String>, kind: GuestKind, kernel: ImageSource) -> GuestConfig {
        GuestConfig {
            name: name.into(),
            kind,
            kernel,
            initrd: None,
            cmdline: String::new(),
            memory_mib: DEFAULT_MEMORY_MIB,
            vcpus: DEFAULT_VCPUS,
            role: Role::default(),
            vfio: Vec::new(),
            budget: GuestBudget::default(),
            autostart: true,
            virtio_transport: VirtioTransport::Auto,
            defined_at: None,
        }
    }
}

/// Where a kernel or initrd image comes from.
///
/// Displayed as written in hive.toml: `builtin:<name>` or the path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageSource {
    /// `builtin:<name>`: an image embedded in the VMM, by name (without the prefix).
    Builtin(String),
    /// A file, as an absolute path (relative paths in hive.toml are resolved against
    /// the config file's directory).
    Path(PathBuf),
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::Builtin(name) => write!(f, "{BUILTIN_PREFIX}{name}"),
            ImageSource::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A string that is not one of an enum's spellings (from [`GuestKind`] or [`Role`]'s
/// `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {} (expected one of: {})", error::quoted(.value), .expected.join(", "))]
pub struct UnknownVariant {
    /// `kind` or `role`.
    pub what: &'static str,
    /// The string given.
    pub value: String,
    /// The valid spellings.
    pub expected: &'static [&'static str],
}

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The spellings accepted in hive.toml, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The spelling used in hive.toml.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, UnknownVariant> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant {
                        what: $what,
                        value: s.to_owned(),
                        expected: Self::NAMES,
                    }),
                }
            }
        }
    };
}

string_enum! {
    /// `kind`: the guest's image format and boot protocol. Whether the image really has
    /// that format is checked by the VMM when it loads it.
    GuestKind, "kind" {
        /// `"coconut"`: the coconut microkernel, an ELF booted through PVH
        /// (`hvm_start_info`; the initrd is module 0, the ext2 ramdisk).
        Coconut = "coconut",
        /// `"sel4"`: seL4 with its root task, booted through multiboot (v1 or v2).
        Sel4 = "sel4",
        /// `"linux"`: a Linux bzImage, booted through the Linux boot protocol
        /// (`boot_params`, e820).
        Linux = "linux",
    }
}

string_enum! {
    /// `role`: the guest's identity on the control plane; the supervisor binds the
    /// guest's virtio-9p channel to it, so a guest cannot claim another. The default is
    /// [`Role::WorkerHeartbeat`].
    #[derive(Default)]
    Role, "role" {
        /// `"queen"`: the orchestrating role (full control of the namespace).
        Queen = "queen",
        /// `"worker-heartbeat"`: a worker that reports telemetry/heartbeats (the default).
        #[default]
        WorkerHeartbeat = "worker-heartbeat",
        /// `"worker-gpu"`: a worker that may hold a GPU partition lease.
        WorkerGpu = "worker-gpu",
    }
}

string_enum! {
    /// `virtio_transport`: how the guest reaches its virtio-9p device. The default
    /// [`VirtioTransport::Auto`] is virtio-pci for Linux guests and virtio-mmio for
    /// coconut guests (whose driver speaks only virtio-mmio).
    #[derive(Default)]
    VirtioTransport, "virtio_transport" {
        /// `"auto"`: by guest kind.
        #[default]
        Auto = "auto",
        /// `"mmio"`: a virtio-mmio window (announced in the DSDT).
        Mmio = "mmio",
        /// `"pci"`: a virtio-pci function with MSI-X.
        Pci = "pci",
    }
}

/// Checks a hive or guest name: 1 to [`MAX_NAME_LEN`] characters of `a-z`, `0-9` and
/// `-`, starting with a letter. Exposed so names arriving by other routes (a `spawn`
/// request) follow the same rule.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let Some(first) = name.chars().next() else {
        return Err(NameError::Empty);
    };
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::BadChar(bad));
    }
    // All ASCII now, so bytes == characters.
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    if !first.is_ascii_lowercase() {
        return Err(NameError::BadStart);
    }
    Ok(())
}

mod ser {
    //! `Serialize` in the hive.toml shape.
    use super::*;
    use serde::ser::{Serialize, SerializeStruct, Serializer};

    impl Serialize for HiveConfig {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            struct Hive<'a>(&'a HiveConfig);
            impl Serialize for Hive<'_> {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    let n = 1
                        + usize::from(self.0.state_dir.is_some())
                        + usize::from(self.0.telemetry_ring_kib.is_some());
                    let mut st = s.serialize_struct("hive", n)?;
                    st.serialize_field("name", &self.0.name)?;
                    if let Some(dir) = &self.0.state_dir {
                        st.serialize_field("state_dir", dir)?;
                    }
                    if let Some(kib) = &self.0.telemetry_ring_kib {
                        st.serialize_field("telemetry_ring_kib", kib)?;
                    }
                    st.end()
                }
            }
            let mut st = s.serialize_struct("HiveConfig", 2)?;
            st.serialize_field("hive", &Hive(self))?;
            st.serialize_field("guest", &self.guests)?;
            st.end()
        }
    }

    impl Serialize for GuestConfig {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("guest", 11)?;
            st.serialize_field("name", &self.name)?;
            st.serialize_field("kind", &self.kind)?;
            st.serialize_field("kernel", &self.kernel)?;
            if let Some(initrd) = &self.initrd {
                st.serialize_field("initrd", initrd)?;
            }
            st.serialize_field("cmdline", &self.cmdline)?;
            st.serialize_field("memory_mib", &self.memory_mib)?;
            st.serialize_field("vcpus", &self.vcpus)?;
            st.serialize_field("role", &self.role)?;
            st.serialize_field("autostart", &self.autostart)?;
            st.serialize_field("virtio_transport", self.virtio_transport.as_str())?;
            if !self.vfio.is_empty() {
                st.serialize_field("vfio", &self.vfio)?;
            }
            if !self.budget.is_empty() {
                st.serialize_field("budget", &self.budget)?;
            }
            st.end()
        }
    }

    macro_rules! serialize_display {
        ($($t:ty),+) => {$(
            impl Serialize for $t {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.collect_str(self)
                }
            }
        )+};
    }
    serialize_display!(GuestKind, Role);

    impl Serialize for ImageSource {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                ImageSource::Builtin(_) => s.collect_str(self),
                ImageSource::Path(p) => p.serialize(s),
            }
        }
    }
}
