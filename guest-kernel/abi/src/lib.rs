//! The coconut ABI: every number that the VMM, the guest kernel and (later) its
//! shards must agree on lives here and nowhere else.
//!
//! The crate is `no_std` with no dependencies so the kernel (built for
//! `x86_64-unknown-none`) and the host-side VMM compile the very same constants.
#![no_std]

pub mod syscall;

/// I/O ports of the coco machine (ARCHITECTURE.md §4).
pub mod ports {
    /// COM1, a 16550 UART (IRQ 4).
    pub const COM1: u16 = 0x3f8;
    /// A write of `v` ends the VM; the VMM exits with status `v & 0xff`.
    pub const DEBUG_EXIT: u16 = 0x501;
    /// A 32-bit write of a [`crate::milestone`] id is timestamped by the VMM.
    pub const BOOT_TIMER: u16 = 0x440;
    /// POST code port; writes are ignored.
    pub const POST: u16 = 0x80;
    /// Early-printf port some kernels use before the UART; writes are ignored.
    pub const EARLY_PRINT: u16 = 0x00;
    /// i8042 command port; a write of [`I8042_RESET`] resets (ends) the VM.
    pub const I8042_COMMAND: u16 = 0x64;
    /// The i8042 "pulse reset line" command.
    pub const I8042_RESET: u8 = 0xfe;
}

/// Boot milestones reported on [`ports::BOOT_TIMER`].
pub mod milestone {
    /// First instruction of the kernel ran.
    pub const KERNEL_ENTRY: u32 = 1;
    /// The kernel finished its own initialisation.
    pub const KERNEL_READY: u32 = 2;
    /// The first user shard is running.
    pub const FIRST_SHARD: u32 = 3;
    /// Ids from here on are free for workloads.
    pub const WORKLOAD_BASE: u32 = 16;

    /// A human name for a milestone id (used in the VMM's timing report).
    pub const fn name(id: u32) -> &'static str {
        match id {
            KERNEL_ENTRY => "kernel-entry",
            KERNEL_READY => "kernel-ready",
            FIRST_SHARD => "first-shard",
            _ if id >= WORKLOAD_BASE => "workload",
            _ => "reserved",
        }
    }
}

/// Statuses the guest kernel reports through [`ports::DEBUG_EXIT`].
pub mod exit {
    /// Everything the kernel was asked to do succeeded.
    pub const SUCCESS: u8 = 0;
    /// The kernel panicked (the message precedes it on COM1).
    pub const KERNEL_PANIC: u8 = 0x70;
    /// The boot information handed over by the loader was unusable.
    pub const BAD_BOOT_INFO: u8 = 0x71;
    /// Every shard ended, but at least one exited non-zero or was killed
    /// (the profiling table on COM1 says which).
    pub const SHARD_FAILED: u8 = 0x72;
    /// The boot manifest or a shard it names could not be loaded.
    pub const BAD_MANIFEST: u8 = 0x73;
}

/// Options the VMM passes to the guest kernel on its command line.
pub mod cmdline {
    /// `coco.gate=syscall|trap`: how shards enter the kernel.
    pub const SYSCALL_GATE: &str = "coco.gate";
    /// `coco.guest=<name>`: the guest's name in the hive (informational).
    pub const GUEST_NAME: &str = "coco.guest";
    /// `coco.after=exit|halt`: what the kernel does once it is ready (see [`crate::After`]).
    pub const AFTER: &str = "coco.after";
    /// `coco.selftest=panic|page-fault`: deliberately fail after boot, to
    /// test the kernel's and the VMM's failure paths (see [`crate::Selftest`]).
    pub const SELFTEST: &str = "coco.selftest";
    /// `coco.test=<name>`: run a named in-kernel device test after boot
    /// (nested-tier tenants use it; e.g. `edu` drives a passed-through QEMU edu device).
    pub const TEST: &str = "coco.test";
    /// `coco.tsc_khz=<N>`: the vCPU's TSC frequency in kHz (the VMM reads
    /// it with KVM_GET_TSC_KHZ); the kernel's clock and timer use it.
    pub const TSC_KHZ: &str = "coco.tsc_khz";
    /// `coco.manifest=<path>`: the boot manifest in the ramdisk (default
    /// `/boot/shards.toml`), so tests can pick a scenario.
    pub const MANIFEST: &str = "coco.manifest";
}

/// What the kernel does once it is ready (`coco.after=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Report success on the debug-exit port (the default).
    Exit,
    /// Idle with `hlt` until the VMM stops the machine.
    Halt,
}

impl After {
    /// Parses the command-line spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exit" => Some(After::Exit),
            "halt" => Some(After::Halt),
            _ => None,
        }
    }
}

/// A deliberate failure after boot (`coco.selftest=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selftest {
    /// A Rust panic in the kernel.
    Panic,
    /// A read of an unmapped address in ring 0.
    PageFault,
}

impl Selftest {
    /// Parses the command-line spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "panic" => Some(Selftest::Panic),
            "page-fault" => Some(Selftest::PageFault),
            _ => None,
        }
    }
}

/// How ring-3 code enters the kernel.
///
/// Hardware KVM delivers `syscall`; the kvm-pvm hypervisor does not (control
/// reaches LSTAR still in ring 3 and faults), so there the kernel enters
/// through a trap gate instead. The VMM decides and says so on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallGate {
    /// The `syscall`/`sysretq` pair.
    Syscall,
    /// A trap-based gate that works where `syscall` cannot be delivered.
    Trap,
}

impl SyscallGate {
    /// The spelling used on the kernel command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            SyscallGate::Syscall => "syscall",
            SyscallGate::Trap => "trap",
        }
    }

    /// Parses the command-line spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "syscall" => Some(SyscallGate::Syscall),
            "trap" => Some(SyscallGate::Trap),
            _ => None,
        }
    }
}

/// Finds `key=value` in a space-separated command line (last one wins, as on Linux).
pub fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_ascii_whitespace()
        .rev()
        .filter_map(|word| word.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Expands a shard's manifest `args` against the kernel command line into
/// `out`, returning the bytes used: a word `@coco.<key>` becomes
/// `<key>=<value>` when the command line has `coco.<key>=<value>` (last one
/// wins) and is dropped otherwise; other words are kept. Words are joined
/// by one space. Args without `@coco.` are copied unchanged. `None` if the
/// result does not fit `out`.
///
/// This is how a shard learns what the VMM or the hive supervisor put on
/// the command line (e.g. `coco.ticks=` for a queen's `spawn … ticks=N`):
/// shards see their args, never the command line itself.
pub fn expand_args(args: &str, cmdline: &str, out: &mut [u8]) -> Option<usize> {
    fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) -> Option<()> {
        let end = at.checked_add(bytes.len())?;
        out.get_mut(*at..end)?.copy_from_slice(bytes);
        *at = end;
        Some(())
    }
    let mut at = 0;
    if !args.contains("@coco.") {
        put(out, &mut at, args.as_bytes())?;
        return Some(at);
    }
    for word in args.split_ascii_whitespace() {
        let (key, value) = match word.strip_prefix('@') {
            Some(key) if key.starts_with("coco.") => match cmdline_value(cmdline, key) {
                Some(v) => (Some(&key["coco.".len()..]), v),
                None => continue,
            },
            _ => (None, word),
        };
        if at > 0 {
            put(out, &mut at, b" ")?;
        }
        if let Some(key) = key {
            put(out, &mut at, key.as_bytes())?;
            put(out, &mut at, b"=")?;
        }
        put(out, &mut at, value.as_bytes())?;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;

    fn expand(args: &str, cmdline: &str) -> Option<std::string::String> {
        let mut out = [0u8; 64];
        let n = expand_args(args, cmdline, &mut out)?;
        Some(std::string::String::from_utf8(out[..n].to_vec()).unwrap())
    }

    #[test]
    fn expand_args_substitutes_coco_keys_and_drops_missing_ones() {
        let line = "coco.gate=trap coco.ticks=7 coco.guest=worker-2 coco.ticks=9";
        assert_eq!(
            expand("ticks=5 @coco.ticks  x", line).as_deref(),
            Some("ticks=5 ticks=9 x")
        );
        assert_eq!(
            expand("@coco.guest", line).as_deref(),
            Some("guest=worker-2")
        );
        assert_eq!(expand("a @coco.missing b", line).as_deref(), Some("a b"));
        // Only coco. keys: anything else stays a literal word.
        assert_eq!(
            expand("@quiet @gate", line).as_deref(),
            Some("@quiet @gate")
        );
        // No substitution: copied byte for byte, spacing included.
        assert_eq!(expand("read-all  x", line).as_deref(), Some("read-all  x"));
        assert_eq!(expand("", line).as_deref(), Some(""));
    }

    #[test]
    fn expand_args_refuses_what_does_not_fit() {
        let mut out = [0u8; 8];
        assert_eq!(expand_args("12345678", "", &mut out), Some(8));
        assert_eq!(expand_args("123456789", "", &mut out), None);
        let long = "coco.ticks=123456789";
        assert_eq!(expand_args("@coco.ticks", long, &mut out), None);
    }

    #[test]
    fn gate_round_trips() {
        for gate in [SyscallGate::Syscall, SyscallGate::Trap] {
            assert_eq!(SyscallGate::parse(gate.as_str()), Some(gate));
        }
        assert_eq!(SyscallGate::parse("int80"), None);
    }

    #[test]
    fn cmdline_value_last_wins_and_ignores_bare_words() {
        let line = "quiet coco.gate=syscall console=ttyS0 coco.gate=trap";
        assert_eq!(cmdline_value(line, "coco.gate"), Some("trap"));
        assert_eq!(cmdline_value(line, "quiet"), None);
        assert_eq!(cmdline_value(line, "missing"), None);
    }

    #[test]
    fn after_and_selftest_parse() {
        assert_eq!(After::parse("halt"), Some(After::Halt));
        assert_eq!(After::parse("exit"), Some(After::Exit));
        assert_eq!(After::parse("sleep"), None);
        assert_eq!(Selftest::parse("page-fault"), Some(Selftest::PageFault));
        assert_eq!(Selftest::parse("panic"), Some(Selftest::Panic));
        assert_eq!(Selftest::parse("oops"), None);
    }

    #[test]
    fn milestone_names() {
        assert_eq!(milestone::name(milestone::KERNEL_READY), "kernel-ready");
        assert_eq!(milestone::name(17), "workload");
        assert_eq!(milestone::name(9), "reserved");
    }
}
