//! Capability spellings of the manifest's `caps` arrays (see the table in
//! the parent module) and what they become.

use super::lex::parse_uint;
use super::{Manifest, Reason};
use coconut_abi::syscall::{cap_type, rights};

/// A capability the kernel installs for a shard at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapSpec {
    /// FACTORY (create channels and/or shards).
    Factory { rights: u64 },
    /// CHANNEL: the manifest's channel at index `channel`.
    Channel { channel: usize, rights: u64 },
    /// SHARD: the manifest's shard at index `shard`.
    Shard { shard: usize, rights: u64 },
    /// MEMORY for `dma_alloc`.
    Dma { rights: u64 },
    /// MEMORY: the MMIO window `[base, base + pages * 4096)`.
    Mmio { base: u64, pages: u64, rights: u64 },
    /// IRQ line `line`.
    Irq { line: u8, rights: u64 },
    /// GPU_DMA into partition `partition`.
    GpuDma { partition: u32, rights: u64 },
}

impl CapSpec {
    /// The capability type (`coconut_abi::syscall::cap_type`).
    pub const fn cap_type(&self) -> u64 {
        match self {
            CapSpec::Factory { .. } => cap_type::FACTORY,
            CapSpec::Channel { .. } => cap_type::CHANNEL,
            CapSpec::Shard { .. } => cap_type::SHARD,
            CapSpec::Dma { .. } | CapSpec::Mmio { .. } => cap_type::MEMORY,
            CapSpec::Irq { .. } => cap_type::IRQ,
            CapSpec::GpuDma { .. } => cap_type::GPU_DMA,
        }
    }

    /// The rights bits (`coconut_abi::syscall::rights`).
    pub const fn rights(&self) -> u64 {
        match *self {
            CapSpec::Factory { rights }
            | CapSpec::Channel { rights, .. }
            | CapSpec::Shard { rights, .. }
            | CapSpec::Dma { rights }
            | CapSpec::Mmio { rights, .. }
            | CapSpec::Irq { rights, .. }
            | CapSpec::GpuDma { rights, .. } => rights,
        }
    }
}

/// Largest MMIO window a manifest may grant (1 GiB).
pub const MMIO_PAGES_MAX: u64 = 1 << 18;
/// MMIO windows must end below this physical address (52-bit physical space).
pub const PHYS_LIMIT: u64 = 1 << 52;

const FACTORY_RIGHTS: &[(&str, u64)] = &[
    ("channel", rights::FACTORY_CHANNEL),
    ("shard", rights::FACTORY_SHARD),
    ("grant", rights::GRANT),
];
const CHANNEL_RIGHTS: &[(&str, u64)] = &[
    ("send", rights::SEND),
    ("recv", rights::RECV),
    ("grant", rights::GRANT),
];
const SHARD_RIGHTS: &[(&str, u64)] = &[
    ("wait", rights::WAIT),
    ("kill", rights::KILL),
    ("grant", rights::GRANT),
];
const DMA_RIGHTS: &[(&str, u64)] = &[("dma", rights::MEMORY_DMA), ("grant", rights::GRANT)];
const MMIO_RIGHTS: &[(&str, u64)] = &[
    ("read", rights::MEMORY_READ),
    ("write", rights::MEMORY_WRITE),
    ("grant", rights::GRANT),
];
const IRQ_RIGHTS: &[(&str, u64)] = &[("receive", rights::IRQ_RECEIVE), ("grant", rights::GRANT)];
const GPU_RIGHTS: &[(&str, u64)] = &[("write", rights::GPU_WRITE), ("grant", rights::GRANT)];

/// Parses one spelling; channel and shard names are looked up in `m`.
pub(super) fn parse(spelling: &str, m: &Manifest<'_>) -> Result<CapSpec, Reason> {
    let mut parts = Fields::new(spelling, b':');
    let kind = parts.next().unwrap_or("");
    let mut field = || parts.next().ok_or(Reason::BadCap);
    let spec = match kind {
        "factory" => CapSpec::Factory {
            rights: rights_of(field()?, FACTORY_RIGHTS)?,
        },
        "channel" => {
            let name = field()?;
            let channel = m
                .channels()
                .iter()
                .position(|c| c.name == name)
                .ok_or(Reason::UnknownChannel)?;
            CapSpec::Channel {
                channel,
                rights: rights_of(field()?, CHANNEL_RIGHTS)?,
            }
        }
        "shard" => {
            let name = field()?;
            let shard = m
                .shards()
                .iter()
                .position(|s| s.name == name)
                .ok_or(Reason::UnknownShard)?;
            CapSpec::Shard {
                shard,
                rights: rights_of(field()?, SHARD_RIGHTS)?,
            }
        }
        "memory" => match field()? {
            "dma" => CapSpec::Dma {
                rights: rights_of(field()?, DMA_RIGHTS)?,
            },
            base => {
                let base = parse_uint(base).ok_or(Reason::BadCap)?;
                let pages = parse_uint(field()?).ok_or(Reason::BadCap)?;
                let end = pages
                    .checked_mul(4096)
                    .and_then(|len| base.checked_add(len));
                let ok = base & 0xfff == 0
                    && (1..=MMIO_PAGES_MAX).contains(&pages)
                    && end.is_some_and(|e| e <= PHYS_LIMIT);
                if !ok {
                    return Err(Reason::OutOfRange);
                }
                CapSpec::Mmio {
                    base,
                    pages,
                    rights: rights_of(field()?, MMIO_RIGHTS)?,
                }
            }
        },
        "irq" => {
            let line = parse_uint(field()?).ok_or(Reason::BadCap)?;
            CapSpec::Irq {
                line: u8::try_from(line).map_err(|_| Reason::OutOfRange)?,
                rights: rights_of(field()?, IRQ_RIGHTS)?,
            }
        }
        "gpu" => {
            let partition = parse_uint(field()?).ok_or(Reason::BadCap)?;
            CapSpec::GpuDma {
                partition: u32::try_from(partition).map_err(|_| Reason::OutOfRange)?,
                rights: rights_of(field()?, GPU_RIGHTS)?,
            }
        }
        _ => return Err(Reason::BadCap),
    };
    if parts.next().is_some() {
        return Err(Reason::BadCap);
    }
    Ok(spec)
}

/// `a+b+c` → the OR of their bits; every word must be in `table`.
fn rights_of(words: &str, table: &[(&str, u64)]) -> Result<u64, Reason> {
    if words.is_empty() {
        return Err(Reason::BadRight);
    }
    let mut bits = 0;
    for word in Fields::new(words, b'+') {
        let (_, bit) = table
            .iter()
            .find(|(name, _)| *name == word)
            .ok_or(Reason::BadRight)?;
        bits |= bit;
    }
    Ok(bits)
}

/// The `sep`-separated fields of a string. (`str::split` would do, but its
/// code carries an unreachable slice-index panic; this has none.)
struct Fields<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Fields<'a> {
    fn new(s: &'a str, sep: u8) -> Self {
        Fields { rest: Some(s), sep }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == self.sep) {
            Some(i) => {
                self.rest = rest.get(i.saturating_add(1)..);
                rest.get(..i)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}
