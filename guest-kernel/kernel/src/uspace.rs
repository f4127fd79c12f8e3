//! Shard address spaces, the mechanism: one PML4 per shard whose upper half
//! (entries 256..512) is a copy of the kernel's, and whose lower half the
//! kernel fills from shard requests, plus [`UserSlice`], the one checked type
//! every user pointer goes through before the kernel touches it.
//!
//! The policy is coconut-core's `vmspace` (host-tested), kept per shard in
//! `Shard::vm`: every mapping is first recorded there as a region (W^X,
//! overlap, the user range, the `mmap` rules, the quota, window placement),
//! and only then written here. A [`UserSlice`] is checked against those
//! regions (no page-table walk); tear-down frees the owned frames of the
//! regions that can hold them.
//!
//! Page-table pages and shard pages are pool frames reached through the
//! frame window. The PTE writer still refuses a writable executable leaf, a
//! leaf outside the user half, and an already-present leaf (`Overlap`): the
//! last line of defence if the bookkeeping and the tables ever disagreed.
//! Leaves whose frame the shard owns carry [`OWNED`] (a software bit) so
//! tearing the space down frees exactly those and not ramdisk pages mapped
//! into code regions.

use coconut_abi::syscall::{Error, config};
use coconut_core::perms::Perms;
use coconut_core::vmspace::Kind;

use crate::cpu;
use crate::frames::Frames;
use crate::paging::{
    self, ADDR_MASK, LARGE, LARGE_PAGE_SIZE, NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE,
};
use crate::shard::{MAX_SHARDS, Vm};

/// Software bit: the leaf's frame belongs to the shard (freed with it).
pub const OWNED: u64 = 1 << 9;
/// Software bit: device memory (MMIO). The kernel never reads or writes it
/// on a shard's behalf: user pointers into it are refused.
pub const DEVICE: u64 = 1 << 10;
/// Most lower-half page-table frames one space may have (one per 2 MiB of
/// 4 KiB-mapped memory, plus directories).
const MAX_TABLES: usize = 128;

/// The lower-half page-table frames of a space, kept on the side so
/// tear-down costs per table instead of a scan of every table slot (each
/// scanned slot is several emulated instructions on kvm-pvm: a full scan
/// took ~20 ms). Which pages are owned comes from the shard's regions.
#[derive(Clone, Copy, Debug)]
struct Book {
    tables: [u64; MAX_TABLES],
    ntables: usize,
}

static mut BOOKS: [Book; MAX_SHARDS] = [Book {
    tables: [0; MAX_TABLES],
    ntables: 0,
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

/// The leaf bits for `perms` (W^X checked again here, never asserted).
fn leaf_bits(perms: Perms) -> Result<u64, Error> {
    if !perms.is_wx_safe() {
        return Err(Error::InvalidArgument);
    }
    Ok(PRESENT
        | USER
        | if perms.write() { WRITABLE } else { 0 }
        | if perms.exec() { 0 } else { NO_EXECUTE })
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
        book(slot).ntables = 0;
        Ok(AddrSpace { pml4, slot })
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
    /// `perms`; `owned` marks frames the shard owns (they must lie in a
    /// region of a kind [`owns_frames`] lists, or tear-down misses them).
    /// Checks W^X and the user range first; stops at the first error (pages
    /// mapped so far stay mapped and are torn down with the space).
    pub fn map(
        &self,
        frames: &mut Frames,
        va: u64,
        pages: u64,
        perms: Perms,
        owned: bool,
        mut frame: impl FnMut(&mut Frames, u64) -> Result<u64, Error>,
    ) -> Result<(), Error> {
        let bits = leaf_bits(perms)? | if owned { OWNED } else { 0 };
        let len = pages.checked_mul(PAGE_SIZE).ok_or(Error::InvalidArgument)?;
        let end = va.checked_add(len).ok_or(Error::InvalidArgument)?;
        if !va.is_multiple_of(PAGE_SIZE) || va < config::USER_MIN || end > config::USER_END {
            return Err(Error::InvalidArgument);
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
        let perms = if write { Perms::RW } else { Perms::R };
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

    /// The leaf entry for `va` (present, user), or `BadAddress`.
    fn leaf(&self, va: u64) -> Result<u64, Error> {
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
    pub fn translate(&self, va: u64, write: bool) -> Result<u64, Error> {
        let e = self.leaf(va)?;
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
        let bits = leaf_bits(perms)? | LARGE;
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

    /// Frees every owned frame of `vm`'s regions and every lower-half
    /// table, then the PML4. The caller must not have this space loaded in
    /// CR3.
    pub fn destroy(self, frames: &mut Frames, vm: &Vm) {
        for r in vm.regions().iter().filter(|r| owns_frames(r.kind)) {
            // One walk per page table, then its slots (a walk per page
            // costs ~4x the emulated instructions).
            let mut i = 0;
            while i < r.pages {
                let va = r.start + i * PAGE_SIZE;
                let mut index = (va >> 12) & 511;
                let in_table = (512 - index).min(r.pages - i);
                if let Ok(table) = self.table_for(frames, va, false) {
                    while index < 512 && i < r.pages {
                        let e = entry(table, index);
                        if e & (PRESENT | OWNED) == PRESENT | OWNED {
                            frames.free(e & ADDR_MASK);
                        }
                        index += 1;
                        i += 1;
                    }
                } else {
                    // No table here, or a 2 MiB leaf (never owned).
                    i += in_table;
                }
            }
        }
        let b = book(self.slot);
        for &t in &b.tables[..b.ntables] {
            frames.free(t);
        }
        b.ntables = 0;
        frames.free(self.pml4);
    }
}

/// Region kinds whose pages may be frames the shard owns (copied ELF pages,
/// heap, stack, info page, DMA buffers); file and device windows never are.
pub fn owns_frames(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Code | Kind::Data | Kind::Heap | Kind::Stack | Kind::Info | Kind::Dma
    )
}

/// A user range the kernel has checked against the shard's regions
/// (coconut-core's `check_user_range`): every page inside readable (and
/// writable when asked) regions, not a device window, inside the lower half,
/// not wrapping. Only a `UserSlice` can be read or written.
#[derive(Clone, Copy, Debug)]
pub struct UserSlice {
    space: AddrSpace,
    va: u64,
    len: u64,
    write: bool,
}

impl UserSlice {
    /// Checks `[va, va + len)` against `vm`, the regions of `space`;
    /// `write` for ranges the kernel will write. Length 0 is valid and
    /// touches nothing.
    pub fn new(vm: &Vm, space: AddrSpace, va: u64, len: u64, write: bool) -> Result<Self, Error> {
        vm.check_user_range(va, len, write)?;
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
    ///
    /// Regions are mapped in full when they are recorded, so every page
    /// translates; a page that does not (a mapping that failed part-way)
    /// is skipped, never touched.
    fn pieces(&self, mut f: impl FnMut(*mut u8, usize, usize)) {
        let mut done = 0u64;
        while done < self.len {
            let va = self.va + done;
            let n = (PAGE_SIZE - (va & (PAGE_SIZE - 1))).min(self.len - done);
            if let Ok(pa) = self.space.translate(va, self.write) {
                f(paging::window(pa), done as usize, n as usize);
            }
            done += n;
        }
    }

    /// Copies the user bytes into `buf` (at most `buf.len()`); returns the count.
    pub fn read_into(&self, buf: &mut [u8]) -> usize {
        let max = buf.len().min(self.len as usize);
        let dst = buf.as_mut_ptr();
        self.pieces(|src, off, n| {
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
    pub fn write_from(&self, data: &[u8]) -> usize {
        let max = data.len().min(self.len as usize);
        let src = data.as_ptr();
        self.pieces(|dst, off, n| {
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
