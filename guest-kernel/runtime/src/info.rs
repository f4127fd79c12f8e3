//! The read-only ShardInfo page the kernel maps at `config::INFO_VA`: who
//! this shard is, its arguments, its boot capabilities and its heap.

use coconut_abi::syscall::config::{INFO_MAGIC, INFO_VA, INFO_VERSION, ShardInfo};

/// The info page.
///
/// [`crate::start`] checks its magic and version before `main` runs, so
/// from inside a shard this is always the kernel's page.
pub fn info() -> &'static ShardInfo {
    // SAFETY: the kernel maps a ShardInfo read-only at INFO_VA for the
    // shard's whole life (checked at entry by `valid`); nothing writes it.
    unsafe { &*(INFO_VA as *const ShardInfo) }
}

/// Whether the page carries the magic and version this runtime knows.
#[cfg_attr(test, allow(dead_code))] // only `_start` uses it
pub(crate) fn valid() -> bool {
    let i = info();
    i.magic == INFO_MAGIC && i.version == INFO_VERSION
}

/// This shard's id (as in the profiling table and kill reports).
pub fn id() -> u32 {
    info().shard_id
}

/// This shard's name ("?" if the kernel's bytes are not UTF-8).
pub fn name() -> &'static str {
    let i = info();
    let n = (i.name_len as usize).min(i.name.len());
    core::str::from_utf8(&i.name[..n]).unwrap_or("?")
}

/// The manifest's `args` string ("" if absent or not UTF-8).
pub fn args() -> &'static str {
    let i = info();
    let n = (i.args_len as usize).min(i.args.len());
    core::str::from_utf8(&i.args[..n]).unwrap_or("")
}

/// The handle of the `n`-th capability the manifest gave this shard.
pub fn boot_cap(n: usize) -> Option<u64> {
    info()
        .boot_caps
        .get(n)
        .copied()
        .filter(|&h| h != u32::MAX)
        .map(u64::from)
}
