//! Validating a shard's ELF64 image (read from the ramdisk; hostile).
//!
//! Accepts little-endian x86-64 ET_EXEC files whose PT_LOAD segments lie in
//! the user range, have `p_offset ≡ p_vaddr (mod 4096)`, `filesz <= memsz`,
//! file bytes inside the file, are sorted and do not share a page, and are
//! never writable and executable (W^X); the entry must be in an executable
//! segment. (The kernel switches to coconut-core's `elf` once it lands.)

use coconut_abi::syscall::config;

use crate::bytes::{u16_at, u32_at, u64_at};

/// Most PT_LOAD segments a shard may have.
pub const MAX_SEGMENTS: usize = 8;
const PAGE: u64 = 4096;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;

/// One loadable segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// First virtual address.
    pub vaddr: u64,
    /// Bytes in memory.
    pub memsz: u64,
    /// Offset of its bytes in the file.
    pub offset: u64,
    /// Bytes from the file (the rest is zero).
    pub filesz: u64,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
}

/// A validated image.
#[derive(Clone, Copy, Debug)]
pub struct Image {
    /// Entry point.
    pub entry: u64,
    /// Segments, sorted by address.
    pub segments: [Segment; MAX_SEGMENTS],
    /// Segments used.
    pub count: usize,
}

impl Image {
    /// One past the last page any segment touches.
    pub fn end(&self) -> u64 {
        self.segments[..self.count]
            .iter()
            .map(|s| (s.vaddr + s.memsz).next_multiple_of(PAGE))
            .max()
            .unwrap_or(config::USER_MIN)
    }
}

/// Why an image was refused (printed by the loader).
pub fn parse(head: &[u8], file_size: u64) -> Result<Image, &'static str> {
    if head.get(0..4) != Some(b"\x7fELF") || head.get(4) != Some(&2) || head.get(5) != Some(&1) {
        return Err("not an ELF64 little-endian file");
    }
    if u16_at(head, 16) != Some(2) || u16_at(head, 18) != Some(62) {
        return Err("not an x86-64 executable");
    }
    let entry = u64_at(head, 24).ok_or("truncated header")?;
    let phoff = u64_at(head, 32).ok_or("truncated header")?;
    let phentsize = u64::from(u16_at(head, 54).ok_or("truncated header")?);
    let phnum = u64::from(u16_at(head, 56).ok_or("truncated header")?);
    if phentsize != 56 || phnum == 0 || phnum > 32 {
        return Err("bad program header table");
    }
    let mut image = Image {
        entry,
        segments: [Segment::default(); MAX_SEGMENTS],
        count: 0,
    };
    let mut last_end = 0u64;
    for i in 0..phnum {
        let at = phoff
            .checked_add(i * phentsize)
            .filter(|&a| a + phentsize <= head.len() as u64)
            .ok_or("program headers outside the first page")? as usize;
        if u32_at(head, at) != Some(PT_LOAD) {
            continue;
        }
        let flags = u32_at(head, at + 4).ok_or("truncated")?;
        let offset = u64_at(head, at + 8).ok_or("truncated")?;
        let vaddr = u64_at(head, at + 16).ok_or("truncated")?;
        let filesz = u64_at(head, at + 32).ok_or("truncated")?;
        let memsz = u64_at(head, at + 40).ok_or("truncated")?;
        let seg = Segment {
            vaddr,
            memsz,
            offset,
            filesz,
            write: flags & PF_W != 0,
            exec: flags & PF_X != 0,
        };
        if seg.write && seg.exec {
            return Err("writable and executable segment (W^X)");
        }
        let end = vaddr.checked_add(memsz).ok_or("segment wraps")?;
        if memsz == 0 || vaddr < config::USER_MIN || end > config::FILE_MAP_BASE {
            return Err("segment outside the user image range");
        }
        if filesz > memsz || offset.checked_add(filesz).is_none_or(|e| e > file_size) {
            return Err("segment bytes outside the file");
        }
        if offset % PAGE != vaddr % PAGE {
            return Err("segment offset and address disagree modulo 4096");
        }
        if vaddr & !(PAGE - 1) < last_end {
            return Err("segments overlap or are not sorted");
        }
        last_end = end.next_multiple_of(PAGE);
        if image.count == MAX_SEGMENTS {
            return Err("too many segments");
        }
        image.segments[image.count] = seg;
        image.count += 1;
    }
    let entry_ok = image.segments[..image.count]
        .iter()
        .any(|s| s.exec && s.vaddr <= entry && entry < s.vaddr + s.memsz);
    if !entry_ok {
        return Err("entry point outside an executable segment");
    }
    Ok(image)
}
