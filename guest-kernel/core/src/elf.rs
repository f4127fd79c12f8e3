//! Validation of a shard's ELF64 image before the kernel maps any of it.
//!
//! Shards are loaded at run time from files in the ramdisk, so the image is
//! hostile input. [`parse`] accepts only what the kernel can map safely and
//! returns the loadable segments in a fixed-size array (no heap):
//!
//! * little-endian ELF64, `EM_X86_64`, `ET_EXEC` (static; a `PT_INTERP` or
//!   `PT_DYNAMIC` header is refused: there is no dynamic loader);
//! * program headers of 56 bytes, 1..=[`MAX_PHNUM`] of them, inside the file;
//! * 1..=[`MAX_SEGMENTS`] `PT_LOAD` segments, each with `memsz > 0`,
//!   `filesz <= memsz`, `offset ≡ vaddr (mod 4096)`, its file bytes inside
//!   the image, its pages inside `[USER_MIN, USER_END)` without overflow;
//! * segments sorted by address and not sharing a page (each page has one
//!   set of permissions), and never writable and executable (W^X);
//! * the entry point inside the file-backed part of an executable segment.
//!
//! Other header types (`PT_NOTE`, `PT_GNU_STACK`, `PT_TLS`…) are ignored.

use crate::bytes::{u16_at, u32_at, u64_at};
use crate::perms::Perms;
use coconut_abi::syscall::config::{USER_END, USER_MIN};
use core::fmt;

/// Most `PT_LOAD` segments a shard may have.
pub const MAX_SEGMENTS: usize = 16;
/// Most program headers of any type.
pub const MAX_PHNUM: usize = 64;
/// Page size the segments are mapped with.
pub const PAGE: u64 = 4096;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// Why an image was refused. `index` is the program header's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than an ELF header.
    TooShort,
    /// No `\x7fELF` magic.
    BadMagic,
    /// Not ELFCLASS64.
    NotElf64,
    /// Not little-endian.
    NotLittleEndian,
    /// `e_ident[EI_VERSION]` or `e_version` is not 1.
    BadVersion,
    /// Not `EM_X86_64`.
    NotX86_64,
    /// Not `ET_EXEC`.
    NotExecutable,
    /// `e_phentsize` is not 56.
    BadPhentsize,
    /// `e_phnum` is 0 or above [`MAX_PHNUM`].
    BadPhnum,
    /// The program header table lies (partly) outside the file.
    PhdrsOutsideFile,
    /// A `PT_INTERP` or `PT_DYNAMIC` header: dynamic executables are not supported.
    Dynamic,
    /// No `PT_LOAD` segment.
    NoSegments,
    /// More than [`MAX_SEGMENTS`] `PT_LOAD` segments.
    TooManySegments,
    /// A segment with `memsz == 0`.
    EmptySegment { index: usize },
    /// `filesz > memsz`.
    FileszAboveMemsz { index: usize },
    /// `offset` and `vaddr` differ modulo the page size.
    Misaligned { index: usize },
    /// The segment's file bytes are not all inside the image.
    OutsideFile { index: usize },
    /// An address computation overflows.
    Overflow { index: usize },
    /// The segment reaches below `USER_MIN` or at/above `USER_END`.
    OutsideUserSpace { index: usize },
    /// The segment starts below the previous one or shares a page with it.
    OverlapOrUnsorted { index: usize },
    /// The segment is writable and executable.
    WriteAndExecute { index: usize },
    /// The entry point is not inside an executable segment's file bytes.
    BadEntry,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ElfError::TooShort => f.write_str("shorter than an ELF header"),
            ElfError::BadMagic => f.write_str("not an ELF file"),
            ElfError::NotElf64 => f.write_str("not ELF64"),
            ElfError::NotLittleEndian => f.write_str("not little-endian"),
            ElfError::BadVersion => f.write_str("unknown ELF version"),
            ElfError::NotX86_64 => f.write_str("not x86-64"),
            ElfError::NotExecutable => f.write_str("not a static executable (ET_EXEC)"),
            ElfError::BadPhentsize => f.write_str("bad program header size"),
            ElfError::BadPhnum => f.write_str("bad program header count"),
            ElfError::PhdrsOutsideFile => f.write_str("program headers outside the file"),
            ElfError::Dynamic => f.write_str("dynamic executables are not supported"),
            ElfError::NoSegments => f.write_str("no loadable segment"),
            ElfError::TooManySegments => f.write_str("too many loadable segments"),
            ElfError::EmptySegment { index } => write!(f, "segment {index} is empty"),
            ElfError::FileszAboveMemsz { index } => {
                write!(f, "segment {index}: file size above memory size")
            }
            ElfError::Misaligned { index } => {
                write!(
                    f,
                    "segment {index}: offset and address differ modulo the page size"
                )
            }
            ElfError::OutsideFile { index } => write!(f, "segment {index} lies outside the file"),
            ElfError::Overflow { index } => write!(f, "segment {index}: address overflow"),
            ElfError::OutsideUserSpace { index } => {
                write!(f, "segment {index} lies outside user space")
            }
            ElfError::OverlapOrUnsorted { index } => {
                write!(f, "segment {index} overlaps or precedes the previous one")
            }
            ElfError::WriteAndExecute { index } => {
                write!(f, "segment {index} is writable and executable")
            }
            ElfError::BadEntry => f.write_str("entry point outside executable code"),
        }
    }
}

/// One loadable segment, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Segment {
    /// First virtual address (not necessarily page-aligned).
    pub vaddr: u64,
    /// Bytes in memory (the part past `filesz` is zero).
    pub memsz: u64,
    /// Offset of the file bytes in the image.
    pub offset: u64,
    /// Bytes taken from the file.
    pub filesz: u64,
    /// Page permissions (never W+X).
    pub perms: Perms,
}

impl Segment {
    /// The first page's address.
    pub const fn page_start(&self) -> u64 {
        self.vaddr & !(PAGE - 1)
    }

    /// One past the last page (validated not to overflow).
    pub const fn page_end(&self) -> u64 {
        // Cannot overflow: parse() checked vaddr + memsz rounded up < USER_END.
        (self.vaddr.wrapping_add(self.memsz).wrapping_add(PAGE - 1)) & !(PAGE - 1)
    }

    /// Pages the segment spans.
    pub const fn pages(&self) -> u64 {
        (self.page_end().wrapping_sub(self.page_start())) / PAGE
    }
}

/// A validated image: its entry point and its loadable segments in address order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image {
    /// The entry point.
    pub entry: u64,
    segments: [Segment; MAX_SEGMENTS],
    count: usize,
}

impl Image {
    /// The loadable segments, sorted by address, not sharing pages.
    pub fn segments(&self) -> &[Segment] {
        self.segments.get(..self.count).unwrap_or(&[])
    }

    /// One past the last page of the highest segment (where the heap may start after a guard page).
    pub fn end(&self) -> u64 {
        self.segments().last().map_or(USER_MIN, Segment::page_end)
    }
}

/// Validates `image` as a shard executable (see the module documentation).
pub fn parse(image: &[u8]) -> Result<Image, ElfError> {
    let ident = image.get(..EHDR_SIZE).ok_or(ElfError::TooShort)?;
    if ident.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ElfError::BadMagic);
    }
    if ident.get(4) != Some(&2) {
        return Err(ElfError::NotElf64);
    }
    if ident.get(5) != Some(&1) {
        return Err(ElfError::NotLittleEndian);
    }
    let header = |off| u16_at(image, off).ok_or(ElfError::TooShort);
    if ident.get(6) != Some(&1) || u32_at(image, 20) != Some(1) {
        return Err(ElfError::BadVersion);
    }
    if header(18)? != EM_X86_64 {
        return Err(ElfError::NotX86_64);
    }
    if header(16)? != ET_EXEC {
        return Err(ElfError::NotExecutable);
    }
    if usize::from(header(54)?) != PHDR_SIZE {
        return Err(ElfError::BadPhentsize);
    }
    let phnum = usize::from(header(56)?);
    if phnum == 0 || phnum > MAX_PHNUM {
        return Err(ElfError::BadPhnum);
    }
    let entry = u64_at(image, 24).ok_or(ElfError::TooShort)?;
    let phoff = u64_at(image, 32).ok_or(ElfError::TooShort)?;
    let phoff = usize::try_from(phoff).map_err(|_| ElfError::PhdrsOutsideFile)?;
    // phnum <= 64, so this product is small.
    let table_len = phnum.saturating_mul(PHDR_SIZE);
    let table = phoff
        .checked_add(table_len)
        .and_then(|end| image.get(phoff..end))
        .ok_or(ElfError::PhdrsOutsideFile)?;

    let mut out = Image {
        entry,
        segments: [Segment::default(); MAX_SEGMENTS],
        count: 0,
    };
    let mut prev_end: u64 = 0;
    for (index, ph) in table.chunks_exact(PHDR_SIZE).enumerate() {
        let field = |off| u64_at(ph, off).unwrap_or(0);
        let p_type = u32_at(ph, 0).unwrap_or(0);
        if p_type == PT_INTERP || p_type == PT_DYNAMIC {
            return Err(ElfError::Dynamic);
        }
        if p_type != PT_LOAD {
            continue;
        }
        let flags = u32_at(ph, 4).unwrap_or(0);
        let seg = Segment {
            offset: field(8),
            vaddr: field(16),
            filesz: field(32),
            memsz: field(40),
            perms: Perms::new(flags & PF_R != 0, flags & PF_W != 0, flags & PF_X != 0),
        };
        check_segment(&seg, index, image.len())?;
        if seg.page_start() < prev_end {
            return Err(ElfError::OverlapOrUnsorted { index });
        }
        prev_end = seg.page_end();
        let slot = out
            .segments
            .get_mut(out.count)
            .ok_or(ElfError::TooManySegments)?;
        *slot = seg;
        out.count = out.count.saturating_add(1);
    }
    if out.count == 0 {
        return Err(ElfError::NoSegments);
    }
    let entry_ok = out
        .segments()
        .iter()
        .any(|s| s.perms.exec() && entry.checked_sub(s.vaddr).is_some_and(|off| off < s.filesz));
    if !entry_ok {
        return Err(ElfError::BadEntry);
    }
    Ok(out)
}

/// The per-segment rules, in the order the errors are reported.
fn check_segment(seg: &Segment, index: usize, image_len: usize) -> Result<(), ElfError> {
    if seg.memsz == 0 {
        return Err(ElfError::EmptySegment { index });
    }
    if seg.filesz > seg.memsz {
        return Err(ElfError::FileszAboveMemsz { index });
    }
    if seg.offset % PAGE != seg.vaddr % PAGE {
        return Err(ElfError::Misaligned { index });
    }
    let file_end = seg
        .offset
        .checked_add(seg.filesz)
        .ok_or(ElfError::Overflow { index })?;
    if file_end > image_len as u64 {
        return Err(ElfError::OutsideFile { index });
    }
    let mem_end = seg
        .vaddr
        .checked_add(seg.memsz)
        .and_then(|e| e.checked_add(PAGE - 1))
        .ok_or(ElfError::Overflow { index })?;
    if seg.vaddr < USER_MIN || mem_end & !(PAGE - 1) > USER_END {
        return Err(ElfError::OutsideUserSpace { index });
    }
    if !seg.perms.is_wx_safe() {
        return Err(ElfError::WriteAndExecute { index });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
