//! Loading a shard from an ELF file in the ramdisk.
//!
//! Read-only segments are MAPPED from the ramdisk's own pages when the file
//! system has 4 KiB blocks and the ramdisk is page aligned (the PVH module
//! is; checked) — nothing is copied. Writable segments, and read-only pages
//! whose tail must read as zero, are copied into zeroed frames (frames never
//! handed out are zero already). Then the stack (STACK_PAGES, an unmapped guard
//! page below it), the read-only info page, and the register frame.
//!
//! The whole layout is recorded in the shard's coconut-core `VmSpace` first
//! (`VmSpace::for_shard`, host-tested: it refuses overlaps, W^X and
//! addresses outside the user half, and places the heap), and only then
//! mapped.

use coconut_abi::syscall::{Error, config};

use coconut_core::elf;
use coconut_core::perms::Perms;

use crate::ext2::FsError;
use crate::frames::Frames;
use crate::gdt;
use crate::kernel::Kernel;
use crate::paging::{self, PAGE_SIZE};
use crate::shard::{MAX_SHARDS, Shard, ShardId, State, Vm};
use crate::uspace::AddrSpace;

/// What to load.
#[derive(Clone, Copy, Debug)]
pub struct Spec<'a> {
    /// Shard name (≤ 31 bytes).
    pub name: &'a [u8],
    /// Ramdisk path.
    pub path: &'a [u8],
    /// 0..=3.
    pub priority: u8,
    /// mmap page quota.
    pub pages: u64,
    /// Argument string (≤ 256 bytes).
    pub args: &'a [u8],
}

/// Why a load failed: the ABI error and a reason for the console.
#[derive(Clone, Copy, Debug)]
pub struct LoadError {
    /// For `shard_create`.
    pub error: Error,
    /// For the boot log.
    pub reason: &'static str,
}

fn fail(error: Error, reason: &'static str) -> LoadError {
    LoadError { error, reason }
}

impl From<FsError> for LoadError {
    fn from(e: FsError) -> Self {
        match e {
            FsError::NotFound => fail(Error::NotFound, "file not found"),
            FsError::NotAFile => fail(Error::NotAFile, "not a regular file"),
            FsError::Corrupt => fail(Error::InvalidArgument, "corrupt file system"),
        }
    }
}

/// Loads `spec` into a free slot (state Created).
pub fn load(k: &mut Kernel, spec: &Spec<'_>) -> Result<ShardId, LoadError> {
    let fs = k.fs.ok_or(fail(Error::NotFound, "no ramdisk"))?;
    let id = k
        .shards
        .iter()
        .position(|s| s.state == State::Free)
        .ok_or(fail(Error::NoSlots, "shard table full"))?;
    debug_assert!(id < MAX_SHARDS);
    let inode = fs.lookup(spec.path)?;
    if !inode.is_file() {
        return Err(fail(Error::NotAFile, "not a regular file"));
    }
    // coconut-core validates the whole file (W^X, ranges, entry); shard
    // files are small and mkext2 stores such files as one run, so the image
    // is a slice of the ramdisk (a split file is refused, not copied).
    let file = fs.file_bytes(&inode).ok_or(fail(
        Error::InvalidArgument,
        "ELF not stored contiguously in the ramdisk",
    ))?;
    let image =
        elf::parse(file).map_err(|_| fail(Error::InvalidArgument, "not a valid shard ELF"))?;
    let file_phys = k.ramdisk_phys + (file.as_ptr() as u64 - fs.image_start());
    let vm = Vm::for_shard(image.segments(), image.end(), spec.pages)
        .map_err(|e| fail(e.into(), "segments, stack or info page collide"))?;
    let space = AddrSpace::new(&mut k.frames, id).map_err(|e| fail(e, "out of memory"))?;
    let can_map = fs.block_size() == PAGE_SIZE && file_phys.is_multiple_of(PAGE_SIZE);
    let mapped = map_image(
        &mut k.frames,
        file,
        can_map.then_some(file_phys),
        &image,
        space,
    )
    .and_then(|()| map_stack_and_info(&mut k.frames, space, id, spec, vm.heap_end()));
    let info_pa = match mapped {
        Ok(pa) => pa,
        Err(e) => {
            space.destroy(&mut k.frames, &vm);
            return Err(fail(e, "cannot map the image"));
        }
    };

    let s = &mut k.shards[id];
    *s = Shard::EMPTY;
    s.space = Some(space);
    s.vm = vm;
    s.name_len = spec.name.len().min(31);
    s.name[..s.name_len].copy_from_slice(&spec.name[..s.name_len]);
    s.priority = spec.priority.min(3);
    s.save.rip = image.entry;
    s.save.rsp = config::STACK_TOP;
    s.save.rdi = config::INFO_VA;
    s.save.rflags = 0x202;
    s.save.cs = u64::from(gdt::USER_CS);
    s.save.ss = u64::from(gdt::USER_DS);
    s.info_pa = info_pa;
    s.state = State::Created;
    Ok(id)
}

/// Maps every segment of `image`; `file_phys` (when the file's pages can be
/// mapped) is the physical address of the file's first byte.
fn map_image(
    frames: &mut Frames,
    file: &[u8],
    file_phys: Option<u64>,
    image: &elf::Image,
    space: AddrSpace,
) -> Result<(), Error> {
    for seg in image.segments() {
        let first = seg.page_start();
        let pages = seg.pages();
        let perms = seg.perms;
        let file_first = seg.offset - (seg.vaddr - first);
        let file_end = seg.offset + seg.filesz;
        for i in 0..pages {
            let va = first + i * PAGE_SIZE;
            let foff = file_first + i * PAGE_SIZE;
            // Whole page from the file, and nothing after the segment's
            // file bytes would show: map the ramdisk page itself.
            let whole = foff + PAGE_SIZE <= file_end || seg.memsz == seg.filesz;
            if let Some(base) = file_phys
                && !perms.write()
                && whole
                && foff < file_end
                && foff + PAGE_SIZE <= (file.len() as u64).next_multiple_of(PAGE_SIZE)
            {
                space.map(frames, va, 1, perms, false, |_, _| Ok(base + foff))?;
                continue;
            }
            let pa = frames.alloc(true).ok_or(Error::NoMemory)?;
            // Copy the part of [foff, foff+4096) that is segment file bytes.
            let lo = foff.max(seg.offset);
            let hi = (foff + PAGE_SIZE).min(file_end);
            if lo < hi
                && let Some(src) = file.get(lo as usize..hi as usize)
            {
                // SAFETY: `pa` is a fresh pool frame in the window and
                // `lo - foff + (hi - lo) <= 4096` keeps the copy inside it.
                unsafe {
                    crate::cpu::copy_bytes(
                        paging::window(pa).add((lo - foff) as usize),
                        src.as_ptr(),
                        src.len(),
                    )
                };
            }
            if let Err(e) = space.map(frames, va, 1, perms, true, |_, _| Ok(pa)) {
                frames.free(pa);
                return Err(e);
            }
        }
    }
    Ok(())
}

fn map_stack_and_info(
    frames: &mut Frames,
    space: AddrSpace,
    id: ShardId,
    spec: &Spec<'_>,
    heap_start: u64,
) -> Result<u64, Error> {
    let stack_base = config::STACK_TOP - config::STACK_PAGES * PAGE_SIZE;
    space.map(
        frames,
        stack_base,
        config::STACK_PAGES,
        Perms::RW,
        true,
        |f, _| f.alloc(true).ok_or(Error::NoMemory),
    )?;
    let info_pa = frames.alloc(true).ok_or(Error::NoMemory)?;
    let mut info = config::ShardInfo {
        magic: config::INFO_MAGIC,
        version: config::INFO_VERSION,
        shard_id: id as u32,
        priority: u32::from(spec.priority),
        name_len: spec.name.len().min(31) as u32,
        name: [0; 32],
        heap_start,
        heap_end: heap_start,
        page_quota: spec.pages,
        boot_caps: [u32::MAX; 16],
        args_len: spec.args.len().min(256) as u32,
        _reserved: 0,
        args: [0; 256],
    };
    info.name[..info.name_len as usize].copy_from_slice(&spec.name[..info.name_len as usize]);
    info.args[..info.args_len as usize].copy_from_slice(&spec.args[..info.args_len as usize]);
    // SAFETY: a fresh pool frame in the window; ShardInfo fits in a page.
    unsafe { (paging::window(info_pa) as *mut config::ShardInfo).write_unaligned(info) };
    if let Err(e) = space.map(frames, config::INFO_VA, 1, Perms::R, true, |_, _| {
        Ok(info_pa)
    }) {
        frames.free(info_pa);
        return Err(e);
    }
    Ok(info_pa)
}

/// Records boot capability `handle` at `index` of the shard's info page.
pub fn set_boot_cap(info_pa: u64, index: usize, handle: u32) {
    if index >= 16 || info_pa == 0 {
        return;
    }
    let offset = core::mem::offset_of!(config::ShardInfo, boot_caps) + 4 * index;
    // SAFETY: the info page is a pool frame in the window; the offset is
    // inside ShardInfo (index < 16), which fits in the page.
    unsafe { (paging::window(info_pa).add(offset) as *mut u32).write_unaligned(handle) };
}
