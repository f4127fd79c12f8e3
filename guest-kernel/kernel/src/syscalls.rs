//! The system calls: one function per call with one signature
//! ([`Handler`]), a dispatch table indexed by call number, and the pledge
//! check in the dispatcher (`pledge::class_of`). Every user pointer goes
//! through [`UserSlice`]; user errors are return codes, never panics.

use coconut_abi::syscall::{Error, MMAP_PAGES_MAX, PATH_MAX, SERIAL_WRITE_MAX, nr, pledge};

use crate::cpu;
use crate::kernel::Kernel;
use crate::paging::{self, LARGE_PAGE_SIZE, PAGE_SIZE};
use crate::serial::out;
use crate::shard::{Ending, OpenFile, ShardId};
use crate::uspace::UserSlice;
use crate::{devices, ipc};
use coconut_core::perms::Perms;
use coconut_core::vmspace::{Kind, Window};

/// The arguments of a call (RDI, RSI, RDX, R10, R8).
#[derive(Clone, Copy, Debug)]
pub struct Args {
    /// Call number (RAX).
    pub nr: u64,
    /// Arguments 0..4.
    pub a: [u64; 5],
}

/// What a handler did besides failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// Return this value in RAX.
    Value(u64),
    /// Return 0 and let the next shard of equal priority run.
    Yield,
    /// The caller blocked or ended: RAX is written by whoever completes it.
    NoReply,
}

/// Every system call has this signature.
pub type Handler = fn(&mut Kernel, ShardId, &Args) -> Result<Ret, Error>;

/// Table size (one past the highest call number).
const CALLS: usize = 64;

/// The dispatch table.
static TABLE: [Option<Handler>; CALLS] = {
    let mut t: [Option<Handler>; CALLS] = [None; CALLS];
    t[nr::EXIT as usize] = Some(sys_exit);
    t[nr::SERIAL_WRITE as usize] = Some(sys_serial_write);
    t[nr::TIME as usize] = Some(sys_time);
    t[nr::YIELD as usize] = Some(sys_yield);
    t[nr::MMAP as usize] = Some(sys_mmap);
    t[nr::FS_OPEN as usize] = Some(sys_fs_open);
    t[nr::FS_READ as usize] = Some(sys_fs_read);
    t[nr::FS_STAT as usize] = Some(sys_fs_stat);
    t[nr::FS_CLOSE as usize] = Some(sys_fs_close);
    t[nr::FS_MAP as usize] = Some(sys_fs_map);
    t[nr::PLEDGE as usize] = Some(sys_pledge);
    t[nr::CHANNEL_CREATE as usize] = Some(ipc::sys_channel_create);
    t[nr::CHANNEL_SEND as usize] = Some(ipc::sys_channel_send);
    t[nr::CHANNEL_RECV as usize] = Some(ipc::sys_channel_recv);
    t[nr::CHANNEL_SEND_TIMEOUT as usize] = Some(ipc::sys_channel_send_timeout);
    t[nr::CHANNEL_RECV_TIMEOUT as usize] = Some(ipc::sys_channel_recv_timeout);
    t[nr::CAP_GRANT as usize] = Some(ipc::sys_cap_grant);
    t[nr::CAP_REVOKE as usize] = Some(ipc::sys_cap_revoke);
    t[nr::CAP_RESTRICT as usize] = Some(ipc::sys_cap_restrict);
    t[nr::CAP_INSPECT as usize] = Some(ipc::sys_cap_inspect);
    t[nr::SHARD_CREATE as usize] = Some(ipc::sys_shard_create);
    t[nr::SHARD_START as usize] = Some(ipc::sys_shard_start);
    t[nr::SHARD_WAIT as usize] = Some(ipc::sys_shard_wait);
    t[nr::SHARD_KILL as usize] = Some(ipc::sys_shard_kill);
    t[nr::DMA_ALLOC as usize] = Some(devices::sys_dma_alloc);
    t[nr::MMIO_MAP as usize] = Some(devices::sys_mmio_map);
    t[nr::IRQ_BIND as usize] = Some(devices::sys_irq_bind);
    t[nr::IRQ_ACK as usize] = Some(devices::sys_irq_ack);
    t[nr::GPU_DMA as usize] = Some(sys_no_device);
    t[nr::GPU_UNVEIL as usize] = Some(sys_no_device);
    t
};

/// Handles the call in `shard`'s save area (from either gate).
pub fn dispatch(k: &mut Kernel, id: ShardId, t0: u64, rotate: &mut bool) {
    let save = &k.shards[id].save;
    let args = Args {
        nr: save.rax,
        a: [save.rdi, save.rsi, save.rdx, save.r10, save.r8],
    };
    let allowed = match pledge::class_of(args.nr) {
        Some(class) => k.shards[id].pledge & class != 0,
        None => true,
    };
    let result = if !allowed {
        Err(Error::Pledged)
    } else {
        match TABLE.get(args.nr as usize).copied().flatten() {
            Some(handler) => handler(k, id, &args),
            None => Err(Error::UnknownSyscall),
        }
    };
    let s = &mut k.shards[id];
    match result {
        Ok(Ret::Value(v)) => s.save.rax = v,
        Ok(Ret::Yield) => {
            s.save.rax = 0;
            *rotate = true;
        }
        Ok(Ret::NoReply) => {}
        Err(e) => s.save.rax = e.to_raw(),
    }
    s.stats.syscalls += 1;
    s.stats.syscall_cycles += cpu::rdtsc().wrapping_sub(t0);
}

/// Called when a shard ends (exit or kill): completes waits on it.
pub fn shard_ended(k: &mut Kernel, id: ShardId, ending: Ending) {
    crate::ipc::shard_ended(k, id, ending);
}

/// A checked user range of the calling shard.
pub fn user(
    k: &mut Kernel,
    id: ShardId,
    va: u64,
    len: u64,
    write: bool,
) -> Result<UserSlice, Error> {
    let s = &k.shards[id];
    let space = s.space.ok_or(Error::BadAddress)?;
    UserSlice::new(&s.vm, space, va, len, write)
}

fn sys_exit(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let code = a.a[0] as u32;
    out()
        .s("shard ")
        .dec(id as u64)
        .s(" (")
        .text(k.shards[id].name())
        .s(") exited: ")
        .dec(code.into())
        .nl();
    crate::kernel::end_shard(k, id, Ending::Exited(code));
    Ok(Ret::NoReply)
}

fn sys_serial_write(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let len = a.a[1];
    if len == 0 || len > SERIAL_WRITE_MAX {
        return Err(Error::InvalidArgument);
    }
    let slice = user(k, id, a.a[0], len, false)?;
    let mut buf = [0u8; 256];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64);
        let part = user(k, id, a.a[0] + done, n, false)?;
        let got = part.read_into(&mut buf[..n as usize]);
        for &b in &buf[..got] {
            // Text, newlines and UTF-8 pass; other control bytes do not
            // reach the host terminal.
            let ok = b == b'\n' || b == b'\t' || b >= 0x20 && b != 0x7f;
            out().byte(if ok { b } else { b'?' });
        }
        done += n;
    }
    Ok(Ret::Value(slice.len()))
}

fn sys_time(k: &mut Kernel, _id: ShardId, _a: &Args) -> Result<Ret, Error> {
    Ok(Ret::Value(k.timer.now_ns()))
}

fn sys_yield(_k: &mut Kernel, _id: ShardId, _a: &Args) -> Result<Ret, Error> {
    Ok(Ret::Yield)
}

fn sys_no_device(_k: &mut Kernel, _id: ShardId, _a: &Args) -> Result<Ret, Error> {
    Err(Error::NoDevice)
}

fn sys_pledge(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    if a.a[0] & !pledge::ALL != 0 {
        return Err(Error::InvalidArgument);
    }
    let s = &mut k.shards[id];
    s.pledge &= a.a[0];
    Ok(Ret::Value(s.pledge))
}

fn sys_mmap(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let (va, pages) = (a.a[0], a.a[1]);
    // Keep a few frames for page tables (a valid request only: invalid
    // arguments get their own error below).
    if (1..=MMAP_PAGES_MAX).contains(&pages) && k.frames.available() < pages + 8 {
        return Err(Error::NoMemory);
    }
    let s = &mut k.shards[id];
    let space = s.space.ok_or(Error::BadAddress)?;
    // coconut-core: heap end, length, alignment, quota, overlap, the file window.
    s.vm.mmap(va, pages)?;
    space.map(&mut k.frames, va, pages, Perms::RW, true, |f, _| {
        f.alloc(true).ok_or(Error::NoMemory)
    })?;
    Ok(Ret::Value(va))
}

/// The open file behind `fd`.
fn file(k: &Kernel, id: ShardId, fd: u64) -> Result<OpenFile, Error> {
    k.shards[id]
        .fds
        .get(fd as usize)
        .copied()
        .flatten()
        .ok_or(Error::BadHandle)
}

fn sys_fs_open(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let len = a.a[1];
    if len == 0 || len > PATH_MAX {
        return Err(Error::InvalidArgument);
    }
    let mut path = [0u8; PATH_MAX as usize];
    let slice = user(k, id, a.a[0], len, false)?;
    let n = slice.read_into(&mut path);
    let fs = k.fs.ok_or(Error::NotFound)?;
    let inode = fs.lookup(&path[..n]).map_err(|e| match e {
        crate::ext2::FsError::NotAFile => Error::NotAFile,
        _ => Error::NotFound,
    })?;
    if !inode.is_file() {
        return Err(Error::NotAFile);
    }
    let s = &mut k.shards[id];
    let fd = s
        .fds
        .iter()
        .position(Option::is_none)
        .ok_or(Error::NoSlots)?;
    s.fds[fd] = Some(OpenFile { inode, offset: 0 });
    Ok(Ret::Value(fd as u64))
}

fn sys_fs_read(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let (fd, va, max) = (a.a[0], a.a[1], a.a[2]);
    let mut f = file(k, id, fd)?;
    if max == 0 {
        return Err(Error::InvalidArgument);
    }
    let fs = k.fs.ok_or(Error::NotFound)?;
    let space = k.shards[id].space.ok_or(Error::BadAddress)?;
    let max = max.min(f.inode.size.saturating_sub(f.offset));
    user(k, id, va, max, true)?;
    // Straight from the ramdisk (direct map) into the shard's pages (frame
    // window), one `rep movsq` per piece: each copied word is an emulated
    // step on kvm-pvm, so copy once, in words. fs_map avoids even that.
    let mut done = 0u64;
    while done < max {
        let dst_va = va + done;
        let pa = space.translate(dst_va, true)?;
        let room = (PAGE_SIZE - (dst_va & (PAGE_SIZE - 1))).min(max - done);
        let src = fs.bytes_at(&f.inode, f.offset + done);
        let pos = f.offset + done;
        let hole = (fs.block_size() - pos % fs.block_size()).min(max - done);
        let n = src.map_or(hole, |s| s.len() as u64).min(room);
        match src {
            // SAFETY: `pa..pa+n` is a checked writable user page in the
            // window (n <= room stays inside it); `s` has at least n bytes.
            Some(s) => unsafe { cpu::copy_bytes(paging::window(pa), s.as_ptr(), n as usize) },
            // A hole (or an unreadable block) reads as zeroes.
            None => {
                // SAFETY: as above.
                unsafe { core::ptr::write_bytes(paging::window(pa), 0, n as usize) }
            }
        }
        done += n;
    }
    f.offset += done;
    k.shards[id].fds[fd as usize] = Some(f);
    Ok(Ret::Value(done))
}

fn sys_fs_stat(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    Ok(Ret::Value(file(k, id, a.a[0])?.inode.size))
}

fn sys_fs_close(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    file(k, id, a.a[0])?;
    k.shards[id].fds[a.a[0] as usize] = None;
    Ok(Ret::Value(0))
}

/// Maps the whole file read-only + NX from the ramdisk's pages (no copy).
///
/// When the file is one physically contiguous run (what coco-mkext2
/// writes), the shard's `VmSpace` places the mapping in the lowest free gap
/// of the file window at the file's offset inside its 2 MiB ramdisk page
/// (`map_in_window_at`), so every whole 2 MiB piece
/// inside the file maps with one large page and only the edges take 4 KiB
/// pages: a 60 MB file is ~30 large entries instead of 15 000 small ones
/// (each emulated on kvm-pvm). Otherwise each block is mapped on its own,
/// starting at a 2 MiB boundary, holes as a shared zero page. A large page never
/// reaches past the file, so no other file's bytes become visible.
fn sys_fs_map(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let f = file(k, id, a.a[0])?;
    let fs = k.fs.ok_or(Error::NotFound)?;
    if fs.block_size() != PAGE_SIZE || !k.ramdisk_phys.is_multiple_of(PAGE_SIZE) {
        return Err(Error::NoDevice);
    }
    let pages = f.inode.size.div_ceil(PAGE_SIZE);
    if pages == 0 {
        return Err(Error::InvalidArgument);
    }
    let (ramdisk, inode) = (k.ramdisk_phys, f.inode);
    let run = fs.contiguous_run(&inode, pages);
    let phase = run.map_or(0, |b| {
        (ramdisk + u64::from(b) * PAGE_SIZE) % LARGE_PAGE_SIZE
    });
    let s = &mut k.shards[id];
    let space = s.space.ok_or(Error::BadAddress)?;
    // The region stays recorded even if mapping fails part-way (pages
    // already mapped stay until the shard ends), so nothing is placed over it.
    let va =
        s.vm.map_in_window_at(Window::File, phase, pages, Perms::R, Kind::File)?;
    if let Some(b) = run {
        let pa0 = ramdisk + u64::from(b) * PAGE_SIZE;
        let mut i = 0;
        while i < pages {
            let v = va + i * PAGE_SIZE;
            if v.is_multiple_of(LARGE_PAGE_SIZE) && pages - i >= 512 {
                space.map_large(&mut k.frames, v, pa0 + i * PAGE_SIZE, Perms::R)?;
                i += 512;
                continue;
            }
            // 4 KiB pages up to the next 2 MiB boundary or the end.
            let to_boundary = (LARGE_PAGE_SIZE - v % LARGE_PAGE_SIZE) / PAGE_SIZE;
            let n = to_boundary.min(pages - i);
            let start = pa0 + i * PAGE_SIZE;
            space.map(&mut k.frames, v, n, Perms::R, false, |_, j| {
                Ok(start + j * PAGE_SIZE)
            })?;
            i += n;
        }
    } else {
        let zero = crate::kernel::zero_page(k)?;
        let mut cursor = crate::ext2::BlockCursor::new(&fs, &inode);
        space.map(
            &mut k.frames,
            va,
            pages,
            Perms::R,
            false,
            |_, i| match cursor.block_of(i) {
                Some(0) => Ok(zero),
                Some(b) => Ok(ramdisk + u64::from(b) * PAGE_SIZE),
                None => Err(Error::InvalidArgument),
            },
        )?;
    }
    Ok(Ret::Value(va))
}
