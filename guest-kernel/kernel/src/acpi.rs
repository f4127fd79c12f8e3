//! Just enough ACPI to report the machine: find and verify the RSDP, walk the
//! XSDT (or RSDT), verify every table's checksum and count the processors and
//! IOAPICs in the MADT.
//!
//! The parsing functions take byte slices; the walk reads physical memory
//! only through [`PhysMem`], which the kernel implements with a memory-map
//! check plus the direct map (physmem.rs) and a host test could implement
//! with a buffer.

use crate::bytes::{array, byte_sum, u8_at, u32_at, u64_at};
use crate::serial::out;

/// Read access to guest-physical memory.
pub trait PhysMem {
    /// `len` bytes at `paddr`, or `None` if they may not be read.
    fn read(&self, paddr: u64, len: u64) -> Option<&[u8]>;
}

/// RSDP signature.
pub const RSDP_SIGNATURE: [u8; 8] = *b"RSD PTR ";
/// Bytes of the ACPI 1.0 RSDP (covered by the first checksum).
pub const RSDP_V1_SIZE: usize = 20;
/// Bytes of the ACPI 2.0+ RSDP.
pub const RSDP_V2_SIZE: usize = 36;
/// Bytes of a system description table header.
pub const SDT_HEADER_SIZE: usize = 36;
/// Largest table the kernel checksums (it reads each byte once; this only
/// stops a corrupt length from making it walk far).
pub const MAX_TABLE_SIZE: u32 = 1 << 20;
/// Where the RSDP may be when the loader does not say (BIOS read-only area).
pub const RSDP_SCAN_START: u64 = 0xe0000;
/// End of the RSDP scan window.
pub const RSDP_SCAN_END: u64 = 0x100000;
/// Most root-table entries listed in the report.
const MAX_LISTED: usize = 32;

/// A verified RSDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    /// `revision` (0 for ACPI 1.0, 2 for 2.0 and later).
    pub revision: u8,
    /// Physical address of the RSDT (0 if none).
    pub rsdt: u32,
    /// Physical address of the XSDT (revision >= 2, else 0).
    pub xsdt: u64,
}

/// Why an RSDP candidate was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsdpError {
    /// Not "RSD PTR ".
    Signature,
    /// Too few bytes for what the structure says it is.
    Truncated,
    /// A checksum does not sum to zero.
    Checksum,
}

/// How many bytes of the RSDP at the start of `head` (20 bytes or more) must
/// be read to verify it: 20 for ACPI 1.0, its `length` field after that.
pub fn rsdp_size(head: &[u8]) -> usize {
    match u8_at(head, 15) {
        Some(revision) if revision >= 2 => {
            u32_at(head, 20).map_or(RSDP_V2_SIZE, |len| len as usize)
        }
        _ => RSDP_V1_SIZE,
    }
}

/// Verifies and parses an RSDP (`bytes` holds at least [`rsdp_size`] bytes).
pub fn parse_rsdp(bytes: &[u8]) -> Result<Rsdp, RsdpError> {
    if array::<8>(bytes, 0) != Some(RSDP_SIGNATURE) {
        return Err(RsdpError::Signature);
    }
    let v1 = bytes.get(..RSDP_V1_SIZE).ok_or(RsdpError::Truncated)?;
    if byte_sum(v1) != 0 {
        return Err(RsdpError::Checksum);
    }
    let revision = bytes[15];
    let rsdt = u32_at(bytes, 16).ok_or(RsdpError::Truncated)?;
    if revision < 2 {
        return Ok(Rsdp {
            revision,
            rsdt,
            xsdt: 0,
        });
    }
    let length = u32_at(bytes, 20).ok_or(RsdpError::Truncated)? as usize;
    if length < RSDP_V2_SIZE {
        return Err(RsdpError::Truncated);
    }
    let all = bytes.get(..length).ok_or(RsdpError::Truncated)?;
    if byte_sum(all) != 0 {
        return Err(RsdpError::Checksum);
    }
    let xsdt = u64_at(bytes, 24).ok_or(RsdpError::Truncated)?;
    Ok(Rsdp {
        revision,
        rsdt,
        xsdt,
    })
}

/// The offset of the first 16-byte aligned "RSD PTR " signature in `bytes`
/// at or after `from` (`bytes` should start 16-byte aligned).
pub fn find_rsdp_signature(bytes: &[u8], from: usize) -> Option<usize> {
    let want = u64::from_le_bytes(RSDP_SIGNATURE);
    let start = from.next_multiple_of(16);
    bytes
        .get(start..)?
        .chunks_exact(16)
        .position(|chunk| u64_at(chunk, 0) == Some(want))
        .map(|index| start + index * 16)
}

/// Signature and length from a table header.
pub fn sdt_header(bytes: &[u8]) -> Option<([u8; 4], u32)> {
    Some((array(bytes, 0)?, u32_at(bytes, 4)?))
}

/// Whether a whole table (`length` bytes, as its header says) sums to zero.
pub fn sdt_checksum_ok(table: &[u8]) -> bool {
    byte_sum(table) == 0
}

/// The root table in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// 64-bit entries.
    Xsdt,
    /// 32-bit entries.
    Rsdt,
}

impl Root {
    /// The table signature.
    pub fn signature(self) -> [u8; 4] {
        match self {
            Root::Xsdt => *b"XSDT",
            Root::Rsdt => *b"RSDT",
        }
    }

    fn entry_size(self) -> usize {
        match self {
            Root::Xsdt => 8,
            Root::Rsdt => 4,
        }
    }
}

/// Number of table pointers in a root table.
pub fn root_entries(table: &[u8], root: Root) -> usize {
    table.len().saturating_sub(SDT_HEADER_SIZE) / root.entry_size()
}

/// Table pointer `index` of a root table.
pub fn root_entry(table: &[u8], root: Root, index: usize) -> Option<u64> {
    let offset = SDT_HEADER_SIZE + index.checked_mul(root.entry_size())?;
    match root {
        Root::Xsdt => u64_at(table, offset),
        Root::Rsdt => u32_at(table, offset).map(u64::from),
    }
}

/// What the MADT says about the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MadtCounts {
    /// Enabled local APIC and x2APIC entries.
    pub cpus: u32,
    /// IOAPIC entries.
    pub ioapics: u32,
}

/// Counts the processors and IOAPICs of a (checksummed) MADT.
pub fn madt_counts(madt: &[u8]) -> MadtCounts {
    const ENTRIES_OFFSET: usize = SDT_HEADER_SIZE + 8;
    const LOCAL_APIC: u8 = 0;
    const IO_APIC: u8 = 1;
    const LOCAL_X2APIC: u8 = 9;
    const ENABLED: u32 = 1;

    let mut counts = MadtCounts::default();
    let mut offset = ENTRIES_OFFSET;
    while let (Some(kind), Some(len)) = (u8_at(madt, offset), u8_at(madt, offset + 1)) {
        let len = usize::from(len);
        if len < 2 || offset + len > madt.len() {
            break;
        }
        let entry = &madt[offset..offset + len];
        match kind {
            LOCAL_APIC if u32_at(entry, 4).is_some_and(|flags| flags & ENABLED != 0) => {
                counts.cpus += 1
            }
            LOCAL_X2APIC if u32_at(entry, 8).is_some_and(|flags| flags & ENABLED != 0) => {
                counts.cpus += 1
            }
            IO_APIC => counts.ioapics += 1,
            _ => {}
        }
        offset += len;
    }
    counts
}

/// Finds the ACPI tables and prints the `acpi:` lines of the boot report.
/// `hint` is `hvm_start_info.rsdp_paddr` (0 if the loader gave none).
pub fn report(mem: &impl PhysMem, hint: u64) {
    let found = match hint {
        0 => None,
        addr => load_rsdp(mem, addr),
    };
    let Some((rsdp_addr, rsdp)) = found.or_else(|| scan_for_rsdp(mem)) else {
        out().s("acpi: none").nl();
        return;
    };

    let mut root = None;
    if rsdp.revision >= 2 && rsdp.xsdt != 0 {
        root = load_table(mem, rsdp.xsdt, Some(Root::Xsdt.signature())).map(|t| (Root::Xsdt, t));
    }
    if root.is_none() && rsdp.rsdt != 0 {
        root = load_table(mem, u64::from(rsdp.rsdt), Some(Root::Rsdt.signature()))
            .map(|t| (Root::Rsdt, t));
    }
    let Some((kind, root_table)) = root else {
        out().s("acpi: none").nl();
        return;
    };

    let mut listed = [[0u8; 4]; MAX_LISTED];
    let mut nlisted = 0;
    let mut madt = None;
    for index in 0..root_entries(root_table, kind) {
        let Some(table) =
            root_entry(root_table, kind, index).and_then(|addr| load_table(mem, addr, None))
        else {
            continue;
        };
        let signature = array::<4>(table, 0).unwrap_or_default();
        if signature == *b"APIC" && madt.is_none() {
            madt = Some(table);
        }
        if nlisted < MAX_LISTED {
            listed[nlisted] = signature;
            nlisted += 1;
        }
    }

    let o = out();
    o.s("acpi: rsdp ")
        .hex(rsdp_addr)
        .s(" rev ")
        .dec(u64::from(rsdp.revision))
        .s(", ");
    o.text(&kind.signature()).s(", tables:");
    for signature in &listed[..nlisted] {
        o.s(" ").text(signature);
    }
    o.nl();
    match madt {
        Some(madt) => {
            let counts = madt_counts(madt);
            o.s("acpi: ")
                .dec(counts.cpus.into())
                .s(" cpu(s), ")
                .dec(counts.ioapics.into())
                .s(" ioapic(s)")
                .nl();
        }
        None => {
            o.s("acpi: no MADT").nl();
        }
    }
}

/// Reads and verifies the RSDP at `addr`, reporting a bad checksum.
fn load_rsdp(mem: &impl PhysMem, addr: u64) -> Option<(u64, Rsdp)> {
    let head = mem.read(addr, RSDP_V1_SIZE as u64)?;
    let size = rsdp_size(head);
    if size > 4096 {
        return None;
    }
    let bytes = mem.read(addr, size as u64)?;
    match parse_rsdp(bytes) {
        Ok(rsdp) => Some((addr, rsdp)),
        Err(RsdpError::Checksum) => {
            out().s("acpi: bad checksum in RSDP").nl();
            None
        }
        Err(_) => None,
    }
}

/// Looks for the RSDP in the BIOS area, a page at a time, skipping pages the
/// memory map does not describe.
fn scan_for_rsdp(mem: &impl PhysMem) -> Option<(u64, Rsdp)> {
    const PAGE: u64 = 4096;
    let mut page = RSDP_SCAN_START;
    while page < RSDP_SCAN_END {
        if let Some(bytes) = mem.read(page, PAGE) {
            let mut from = 0;
            while let Some(offset) = find_rsdp_signature(bytes, from) {
                if let Some(found) = load_rsdp(mem, page + offset as u64) {
                    return Some(found);
                }
                from = offset + 16;
            }
        }
        page += PAGE;
    }
    None
}

/// Reads the table at `addr` and checks its signature (if `expect` is given),
/// length and checksum; reports problems and returns `None` for a table that
/// must not be used.
fn load_table(mem: &impl PhysMem, addr: u64, expect: Option<[u8; 4]>) -> Option<&[u8]> {
    let Some((signature, length)) = mem.read(addr, SDT_HEADER_SIZE as u64).and_then(sdt_header)
    else {
        out()
            .s("acpi: table at ")
            .hex(addr)
            .s(" is outside the memory map")
            .nl();
        return None;
    };
    if expect.is_some_and(|want| want != signature) {
        out()
            .s("acpi: expected ")
            .text(&expect.unwrap_or_default())
            .s(" at ")
            .hex(addr)
            .s(", found ")
            .text(&signature)
            .nl();
        return None;
    }
    if !(SDT_HEADER_SIZE as u32..=MAX_TABLE_SIZE).contains(&length) {
        out().s("acpi: bad length in ").text(&signature).nl();
        return None;
    }
    let Some(table) = mem.read(addr, u64::from(length)) else {
        out()
            .s("acpi: table at ")
            .hex(addr)
            .s(" is outside the memory map")
            .nl();
        return None;
    };
    if !sdt_checksum_ok(table) {
        out().s("acpi: bad checksum in ").text(&signature).nl();
        return None;
    }
    Some(table)
}
