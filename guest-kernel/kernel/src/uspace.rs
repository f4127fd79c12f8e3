//! Shard address spaces: one PML4 per shard whose upper half (entries
//! 256..512) is a copy of the kernel's, and whose lower half the kernel
//! fills from shard requests, plus [`UserSlice`], the one checked type every
//! user pointer goes through before the kernel touches it.
//!
//! Page-table pages and shard pages are pool frames reached through the
//! frame window. Every leaf is checked W^X before it is written (a writable
//! executable request is refused with `InvalidArgument`, never asserted), and
//! an already-present leaf is refused with `Overlap`. Leaves whose frame the
//! shard owns carry [`OWNED`] (a software bit) so tearing the space down
//! frees exactly those and not ramdisk or device pages.

use coconut_abi::syscall::{Error, config};

use crate::cpu;
use crate::frames::Frames;
use crate::paging::{
    self, ADDR_MASK, LARGE, LARGE_PAGE_SIZE, NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE,
};
use crate::shard::MAX_SHARDS;

/// Software bit: the leaf's frame belongs to the shard (freed with it).
pub const OWNED: u64 = 1 << 9;
/// Software bit: device memory (MMIO). The kernel never reads or writes it
/// on a shard's behalf: user pointers into it are refused.
pub const DEVICE: u64 = 1 << 10;
/// Most lower-half page-table frames one space may have (one per 2 MiB of
/// 4 KiB-mapped memory, plus directories).
const MAX_TABLES: usize = 128;
/// Most separate runs of owned pages one space may have.
const MAX_OWNED_RUNS: usize = 32;

/// What a space must free when it dies, kept on the side so tear-down costs
/// per mapped page instead of a scan of every table slot (each scanned slot
/// is several emulated instructions on kvm-pvm: a full scan took ~20 ms).
#[derive(Clone, Copy, Debug)]
struct Book {
    tables: [u64; MAX_TABLES],
    ntables: usize,
    owned: [(u64, u64); MAX_OWNED_RUNS],
    nowned: usize,
}

static mut BOOKS: [Book; MAX_SHARDS] = [Book {
    tables: [0; MAX_TABLES],
    ntables: 0,
    owned: [(0, 0); MAX_OWNED_RUNS],
    nowned: 0,
}; MAX_SHARDS];

fn book(slot: usize) -> &'static mut Book {
    let books = &raw mut BOOKS;
    // SAFETY: one CPU, interrupts off in the kernel; each space has its own
    // slot and no two references to one slot are live at once (every use is
    // a short statement sequence inside one AddrSpace method).
    unsafe { &mut (*books)[slot % MAX_SHARDS] }
}
/// Entries of intermediate tables in the lower half.
const USER_TABLE: u64 = PRESENT | WRITABLE | USER;

/// Reads entry `index` of the table at physical `table`.
fn entry(table: u64, index: u64) -> u64 {
    // SAFETY: page tables are pool frames (mapped in the window); index < 512.
    unsafe {
        (paging::window(table) as *const u64)
            .add((index & 511) as usize)
            .read()
    }
}

/// Writes entry `index` of the table at physical `table`.
fn set_entry(table: u64, index: u64, value: u64) {
    // SAFETY: as for `entry`; single CPU with interrupts off.
    unsafe {
        (paging::window(table) as *mut u64)
            .add((index & 511) as usize)
            .write(value)
    }
}

/// Permissions of a user mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
}

impl Perms {
    /// Read-only, no-execute.
    pub const RO: Perms = Perms {
        write: false,
        exec: false,
    };
    /// Read-write, no-execute.
    pub const RW: Perms = Perms {
        write: true,
        exec: false,
    };

    fn bits(self) -> Result<u64, Error> {
        if self.write && self.exec {
            return Err(Error::InvalidArgument); // W^X
        }
        Ok(PRESENT
            | USER
            | if self.write { WRITABLE } else { 0 }
            | if self.exec { 0 } else { NO_EXECUTE })
    }
}

/// One shard's page tables.
#[derive(Clone, Copy, Debug)]
pub struct AddrSpace {
    /// Physical address of the PML4 (what CR3 gets).
    pub pml4: u64,
    /// The shard slot (whose book lists the space's frames).
    slot: usize,
}

impl AddrSpace {
    /// A space with the kernel half and nothing else, for shard `slot`.
    pub fn new(frames: &mut Frames, slot: usize) -> Result<Self, Error> {
        let pml4 = frames.alloc(true).ok_or(Error::NoMemory)?;
        for (i, &e) in paging::kernel_half().iter().enumerate() {
            set_entry(pml4, 256 + i as u64, e);
        }
        let b = book(slot);
        b.ntables = 0;
        b.nowned = 0;
        Ok(AddrSpace { pml4, slot })
    }

    /// Records `pages` owned pages at `va` (merging with the last run).
    fn record_owned(&self, va: u64, pages: u64) -> Result<(), Error> {
        let b = book(self.slot);
        if let Some(last) = b.nowned.checked_sub(1).map(|i| &mut b.owned[i])
            && last.0 + last.1 * PAGE_SIZE == va
        {
            last.1 += pages;
            return Ok(());
        }
        if b.nowned == MAX_OWNED_RUNS {
            return Err(Error::NoMemory);
        }
        b.owned[b.nowned] = (va, pages);
        b.nowned += 1;
        Ok(())
    }

    /// The page table covering `va`, created on the way if `create`.
    fn table_for(&self, frames: &mut Frames, va: u64, create: bool) -> Result<u64, Error> {
        let mut table = self.pml4;
        for shift in [39u32, 30, 21] {
            let index = (va >> shift) & 511;
            let e = entry(table, index);
            if e & PRESENT == 0 {
                if !create {
                    return Err(Error::BadAddress);
                }
                let b = book(self.slot);
                if b.ntables == MAX_TABLES {
                    return Err(Error::NoMemory);
                }
                let fresh = frames.alloc(true).ok_or(Error::NoMemory)?;
                b.tables[b.ntables] = fresh;
                b.ntables += 1;
                set_entry(table, index, fresh | USER_TABLE);
                table = fresh;
            } else if e & LARGE != 0 {
                return Err(Error::Overlap);
            } else {
                table = e & ADDR_MASK;
            }
        }
        Ok(table)
    }

    /// Maps `pages` pages at `va` to the frames `frame(i)` returns, with
    /// `perms`; `owned` marks frames the shard owns. Checks W^X and the
    /// user range first; stops at the first error (pages mapped so far stay
    /// mapped and are torn down with the space).
    pub fn map(
        &self,
        frames: &mut Frames,
        va: u64,
        pages: u64,
        perms: Perms,
        owned: bool,
        mut frame: impl FnMut(&mut Frames, u64) -> Result<u64, Error>,
    ) -> Result<(), Error> {
        let bits = perms.bits()? | if owned { OWNED } else { 0 };
        let len = pages.checked_mul(PAGE_SIZE).ok_or(Error::InvalidArgument)?;
        let end = va.checked_add(len).ok_or(Error::InvalidArgument)?;
        if !va.is_multiple_of(PAGE_SIZE) || va < config::USER_MIN || end > config::USER_END {
            return Err(Error::InvalidArgument);
        }
        if owned {
            self.record_owned(va, pages)?;
        }
        let mut i = 0;
        while i < pages {
            let page_va = va + i * PAGE_SIZE;
            // One walk per page table: fill every slot it covers.
            let table = self.table_for(frames, page_va, true)?;
            let mut index = (page_va >> 12) & 511;
            while index < 512 && i < pages {
                if entry(table, index) & PRESENT != 0 {
                    return Err(Error::Overlap);
                }
                let pa = frame(frames, i)?;
                set_entry(table, index, (pa & ADDR_MASK) | bits);
                index += 1;
                i += 1;
            }
        }
        Ok(())
    }

    /// Maps the device window `[pa, pa + pages * 4096)` uncached, no-execute,
    /// writable only if `write`, at `va`.
    pub fn map_device(
        &self,
        frames: &mut Frames,
        va: u64,
        pa: u64,
        pages: u64,
        write: bool,
    ) -> Result<(), Error> {
        let perms = Perms { write, exec: false };
        self.map(frames, va, pages, perms, false, |_, i| {
            Ok(pa + i * PAGE_SIZE)
        })?;
        // Mark the leaves uncached device pages (same tables, just walked).
        for i in 0..pages {
            let page = va + i * PAGE_SIZE;
            let table = self.table_for(frames, page, false)?;
            let index = (page >> 12) & 511;
            let e = entry(table, index);
            set_entry(
                table,
                index,
                e | DEVICE | paging::CACHE_DISABLE | paging::WRITE_THROUGH,
            );
        }
        Ok(())
    }

    /// Whether any page of `[va, va + pages)` is mapped.
    pub fn any_mapped(&self, frames: &mut Frames, va: u64, pages: u64) -> bool {
        (0..pages).any(|i| self.translate(frames, va + i * PAGE_SIZE, false).is_ok())
    }

    /// The leaf entry for `va` (present, user), or `BadAddress`.
    fn leaf(&self, _frames: &mut Frames, va: u64) -> Result<u64, Error> {
        if va >= config::USER_END {
            return Err(Error::BadAddress);
        }
        let mut table = self.pml4;
        for shift in [39u32, 30, 21, 12] {
            let e = entry(table, (va >> shift) & 511);
            if e & PRESENT == 0 {
                return Err(Error::BadAddress);
            }
            let is_leaf = shift == 12 || (shift == 21 && e & LARGE != 0);
            if is_leaf {
                if e & (USER | DEVICE) != USER {
                    return Err(Error::BadAddress);
                }
                // Fold a 2 MiB leaf into a 4 KiB view of the page at `va`.
                return Ok(if shift == 21 {
                    (e & !LARGE & !((LARGE_PAGE_SIZE - 1) & ADDR_MASK))
                        | (va & (LARGE_PAGE_SIZE - 1) & !(PAGE_SIZE - 1))
                } else {
                    e
                });
            }
            table = e & ADDR_MASK;
        }
        Err(Error::BadAddress)
    }

    /// The physical address of user `va`, checked present + user (+ writable).
    pub fn translate(&self, frames: &mut Frames, va: u64, write: bool) -> Result<u64, Error> {
        let e = self.leaf(frames, va)?;
        if write && e & WRITABLE == 0 {
            return Err(Error::BadAddress);
        }
        Ok((e & ADDR_MASK) | (va & (PAGE_SIZE - 1)))
    }

    /// Maps one 2 MiB page at `va` (2 MiB aligned) to `pa` (2 MiB aligned),
    /// not owned, checked like [`AddrSpace::map`].
    pub fn map_large(
        &self,
        frames: &mut Frames,
        va: u64,
        pa: u64,
        perms: Perms,
    ) -> Result<(), Error> {
        let bits = perms.bits()? | LARGE;
        if !va.is_multiple_of(LARGE_PAGE_SIZE)
            || !pa.is_multiple_of(LARGE_PAGE_SIZE)
            || va < config::USER_MIN
            || va + LARGE_PAGE_SIZE > config::USER_END
        {
            return Err(Error::InvalidArgument);
        }
        // Walk (creating) down to the page directory.
        let mut table = self.pml4;
        for shift in [39u32, 30] {
            let index = (va >> shift) & 511;
            let e = entry(table, index);
            if e & PRESENT == 0 {
                let b = book(self.slot);
                if b.ntables == MAX_TABLES {
                    return Err(Error::NoMemory);
                }
                let fresh = frames.alloc(true).ok_or(Error::NoMemory)?;
                b.tables[b.ntables] = fresh;
                b.ntables += 1;
                set_entry(table, index, fresh | USER_TABLE);
                table = fresh;
            } else {
                table = e & ADDR_MASK;
            }
        }
        let index = (va >> 21) & 511;
        if entry(table, index) & PRESENT != 0 {
            return Err(Error::Overlap);
        }
        set_entry(table, index, pa | bits);
        Ok(())
    }

    /// Frees every owned frame and every lower-half table, then the PML4.
    /// The caller must not have this space loaded in CR3.
    pub fn destroy(self, frames: &mut Frames) {
        let b = *book(self.slot);
        for &(va, pages) in &b.owned[..b.nowned] {
            for i in 0..pages {
                if let Ok(e) = self.leaf(frames, va + i * PAGE_SIZE)
                    && e & OWNED != 0
                {
                    frames.free(e & ADDR_MASK);
                }
            }
        }
        for &t in &b.tables[..b.ntables] {
            frames.free(t);
        }
        frames.free(self.pml4);
        let b = book(self.slot);
        b.ntables = 0;
        b.nowned = 0;
    }
}

/// A user range the kernel has checked against the shard's page tables:
/// every page present and user-accessible (and writable when asked), inside
/// the lower half, not wrapping. Only a `UserSlice` can be read or written.
#[derive(Clone, Copy, Debug)]
pub struct UserSlice {
    space: AddrSpace,
    va: u64,
    len: u64,
    write: bool,
}

impl UserSlice {
    /// Checks `[va, va + len)` in `space`; `write` for ranges the kernel
    /// will write. Length 0 is valid and touches nothing.
    pub fn new(
        frames: &mut Frames,
        space: AddrSpace,
        va: u64,
        len: u64,
        write: bool,
    ) -> Result<Self, Error> {
        let end = va.checked_add(len).ok_or(Error::BadAddress)?;
        if end > config::USER_END {
            return Err(Error::BadAddress);
        }
        if len > 0 {
            let mut page = va & !(PAGE_SIZE - 1);
            while page < end {
                space.translate(frames, page, write)?;
                page += PAGE_SIZE;
            }
        }
        Ok(UserSlice {
            space,
            va,
            len,
            write,
        })
    }

    /// Its length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Runs `f(window_ptr, offset, n)` for each physically contiguous piece.
    fn pieces(&self, frames: &mut Frames, mut f: impl FnMut(*mut u8, usize, usize)) {
        let mut done = 0u64;
        while done < self.len {
            let va = self.va + done;
            let n = (PAGE_SIZE - (va & (PAGE_SIZE - 1))).min(self.len - done);
            // Checked in `new`; the space cannot change under a syscall.
            if let Ok(pa) = self.space.translate(frames, va, self.write) {
                f(paging::window(pa), done as usize, n as usize);
            }
            done += n;
        }
    }

    /// Copies the user bytes into `buf` (at most `buf.len()`); returns the count.
    pub fn read_into(&self, frames: &mut Frames, buf: &mut [u8]) -> usize {
        let max = buf.len().min(self.len as usize);
        let dst = buf.as_mut_ptr();
        self.pieces(frames, |src, off, n| {
            if off < max {
                let n = n.min(max - off);
                // SAFETY: `src..src+n` is a checked user page in the window;
                // `dst+off..+n` is inside `buf` (off + n <= max <= len).
                unsafe { cpu::copy_bytes(dst.add(off), src, n) };
            }
        });
        max
    }

    /// Copies `data` to the user range (at most its length); returns the count.
    pub fn write_from(&self, frames: &mut Frames, data: &[u8]) -> usize {
        let max = data.len().min(self.len as usize);
        let src = data.as_ptr();
        self.pieces(frames, |dst, off, n| {
            if off < max {
                let n = n.min(max - off);
                // SAFETY: the page was checked writable in `new`; the source
                // range is inside `data`.
                unsafe { cpu::copy_bytes(dst, src.add(off), n) };
            }
        });
        max
    }
}
