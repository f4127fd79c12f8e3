//! Safe wrappers, one per call in `coconut_abi::syscall::nr`, each returning
//! `Result<u64, Error>` (or `!` for `exit`).
//!
//! Buffers are passed as slices, so every pointer the kernel sees names
//! memory the caller owns for the duration of the call. Handles and fds are
//! plain `u64` slot numbers, as in the ABI.

use crate::raw::syscall;
use coconut_abi::syscall::{Error, nr};

/// A syscall result.
pub type SysResult = Result<u64, Error>;

#[inline(always)]
fn call(n: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> SysResult {
    // SAFETY: only called below with pointer arguments derived from
    // slices/references that live across the call.
    Error::from_raw(unsafe { syscall(n, a0, a1, a2, a3, 0) })
}

/// Ends the shard with `code` (low 32 bits are kept). Flushes the console first.
pub fn exit(code: u64) -> ! {
    crate::console::flush();
    // SAFETY: exit takes no pointers.
    unsafe {
        syscall(nr::EXIT, code, 0, 0, 0, 0);
    }
    // The kernel never returns from exit; if it did, fault rather than run on.
    // SAFETY: ud2 raises #UD, which kills this shard.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
}

/// Writes `buf` (1..=4096 bytes) to the console; returns the length.
pub fn serial_write(buf: &[u8]) -> SysResult {
    call(
        nr::SERIAL_WRITE,
        buf.as_ptr() as u64,
        buf.len() as u64,
        0,
        0,
    )
}

/// Monotonic nanoseconds since boot.
pub fn time() -> SysResult {
    call(nr::TIME, 0, 0, 0, 0)
}

/// Copies capability `handle` to the shard named by the SHARD capability
/// `target_shard`, with rights ∩ `mask`; returns the handle in the target.
pub fn cap_grant(handle: u64, target_shard: u64, mask: u64) -> SysResult {
    call(nr::CAP_GRANT, handle, target_shard, mask, 0)
}

/// Drops `handle` and every copy derived from it.
pub fn cap_revoke(handle: u64) -> SysResult {
    call(nr::CAP_REVOKE, handle, 0, 0, 0)
}

/// Shrinks the rights of `handle` to rights ∩ `rights`.
pub fn cap_restrict(handle: u64, rights: u64) -> SysResult {
    call(nr::CAP_RESTRICT, handle, rights, 0, 0)
}

/// `(type << 48) | (resource << 16) | rights` of `handle`.
pub fn cap_inspect(handle: u64) -> SysResult {
    call(nr::CAP_INSPECT, handle, 0, 0, 0)
}

/// A capability's fields, as [`cap_inspect`] packs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapInfo {
    /// `coconut_abi::syscall::cap_type`.
    pub cap_type: u64,
    /// The kernel object's id.
    pub resource: u64,
    /// `coconut_abi::syscall::rights` bits.
    pub rights: u64,
}

/// [`cap_inspect`], unpacked.
pub fn cap_info(handle: u64) -> Result<CapInfo, Error> {
    let raw = cap_inspect(handle)?;
    Ok(CapInfo {
        cap_type: raw >> 48,
        resource: (raw >> 16) & 0xffff_ffff,
        rights: raw & 0xffff,
    })
}

/// Creates a channel of `capacity` messages of at most `msg_max` bytes
/// (needs a FACTORY capability with FACTORY_CHANNEL).
pub fn channel_create(capacity: u64, msg_max: u64) -> SysResult {
    call(nr::CHANNEL_CREATE, capacity, msg_max, 0, 0)
}

/// Sends `msg`, blocking while the queue is full.
pub fn channel_send(channel: u64, msg: &[u8]) -> SysResult {
    call(
        nr::CHANNEL_SEND,
        channel,
        msg.as_ptr() as u64,
        msg.len() as u64,
        0,
    )
}

/// Receives one message into `buf`, blocking while the queue is empty;
/// returns its length. A message longer than `buf` stays queued and the
/// call fails with `MessageTooBig`.
pub fn channel_recv(channel: u64, buf: &mut [u8]) -> SysResult {
    call(
        nr::CHANNEL_RECV,
        channel,
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
        0,
    )
}

/// [`channel_send`] waiting at most `timeout_ns` (0: fail with `WouldBlock`).
pub fn channel_send_timeout(channel: u64, msg: &[u8], timeout_ns: u64) -> SysResult {
    call(
        nr::CHANNEL_SEND_TIMEOUT,
        channel,
        msg.as_ptr() as u64,
        msg.len() as u64,
        timeout_ns,
    )
}

/// [`channel_recv`] waiting at most `timeout_ns`.
pub fn channel_recv_timeout(channel: u64, buf: &mut [u8], timeout_ns: u64) -> SysResult {
    call(
        nr::CHANNEL_RECV_TIMEOUT,
        channel,
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
        timeout_ns,
    )
}

/// Opens the ramdisk file at absolute `path`; returns an fd.
pub fn fs_open(path: &str) -> SysResult {
    call(nr::FS_OPEN, path.as_ptr() as u64, path.len() as u64, 0, 0)
}

/// Reads from the fd's offset into `buf`; returns the count, 0 at end of file.
pub fn fs_read(fd: u64, buf: &mut [u8]) -> SysResult {
    call(
        nr::FS_READ,
        fd,
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
        0,
    )
}

/// The file's size in bytes.
pub fn fs_stat(fd: u64) -> SysResult {
    call(nr::FS_STAT, fd, 0, 0, 0)
}

/// Closes `fd`.
pub fn fs_close(fd: u64) -> SysResult {
    call(nr::FS_CLOSE, fd, 0, 0, 0)
}

/// Maps the whole file read-only into this shard; returns its address.
pub fn fs_map(fd: u64) -> SysResult {
    call(nr::FS_MAP, fd, 0, 0, 0)
}

/// [`fs_map`] as a byte slice of the file's size ([`fs_stat`]).
///
/// The mapping is never removed (the ABI has no unmap), so `'static` holds;
/// it is read-only, so no Rust code can alias it mutably.
pub fn fs_map_bytes(fd: u64) -> Result<&'static [u8], Error> {
    let len = fs_stat(fd)?;
    let addr = fs_map(fd)?;
    let len = usize::try_from(len).map_err(|_| Error::InvalidArgument)?;
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: the kernel mapped `len` readable bytes at `addr` for the rest
    // of this shard's life and nothing writes them.
    Ok(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
}

/// Peer DMA of `len` bytes from `src_offset` in this shard's partition to
/// `dst_offset` in `target_partition` (both offsets and len below 2^32).
pub fn gpu_dma(target_partition: u64, src_offset: u64, dst_offset: u64, len: u64) -> SysResult {
    if dst_offset > u64::from(u32::MAX) || len > u64::from(u32::MAX) {
        return Err(Error::InvalidArgument);
    }
    call(
        nr::GPU_DMA,
        target_partition,
        src_offset,
        (dst_offset << 32) | len,
        0,
    )
}

/// Keeps only the `coconut_abi::syscall::pledge` classes in `mask`.
pub fn pledge(mask: u64) -> SysResult {
    call(nr::PLEDGE, mask, 0, 0, 0)
}

/// One-shot: locks the VRAM range DMA may touch.
pub fn gpu_unveil(offset: u64, size: u64) -> SysResult {
    call(nr::GPU_UNVEIL, offset, size, 0, 0)
}

/// Maps `pages` zeroed R+W+NX pages at `va`, the current heap end.
///
/// The runtime's allocator owns the heap end; a shard that maps pages
/// itself makes the allocator's next growth fail (cleanly, with an
/// allocation error), never corrupts it.
pub fn mmap(va: u64, pages: u64) -> SysResult {
    call(nr::MMAP, va, pages, 0, 0)
}

/// Allocates `pages` physically contiguous zeroed pages for device DMA;
/// returns their address and stores the guest-physical address in `phys`.
pub fn dma_alloc(pages: u64, phys: &mut u64) -> SysResult {
    call(nr::DMA_ALLOC, pages, phys as *mut u64 as u64, 0, 0)
}

/// Maps the device window the MEMORY capability names; returns its address.
pub fn mmio_map(memory_handle: u64) -> SysResult {
    call(nr::MMIO_MAP, memory_handle, 0, 0, 0)
}

/// Routes the IRQ capability's interrupts to the channel as notifications.
pub fn irq_bind(irq_handle: u64, channel_handle: u64) -> SysResult {
    call(nr::IRQ_BIND, irq_handle, channel_handle, 0, 0)
}

/// Unmasks the IRQ line after handling it.
pub fn irq_ack(irq_handle: u64) -> SysResult {
    call(nr::IRQ_ACK, irq_handle, 0, 0, 0)
}

/// Loads the ELF at `path` as a new (not yet running) shard; returns a
/// SHARD handle. Needs FACTORY with FACTORY_SHARD.
pub fn shard_create(path: &str, priority: u64) -> SysResult {
    call(
        nr::SHARD_CREATE,
        path.as_ptr() as u64,
        path.len() as u64,
        priority,
        0,
    )
}

/// Makes a created shard runnable.
pub fn shard_start(shard: u64) -> SysResult {
    call(nr::SHARD_START, shard, 0, 0, 0)
}

/// Waits at most `timeout_ns` for the shard to end; returns its status.
pub fn shard_wait(shard: u64, timeout_ns: u64) -> SysResult {
    call(nr::SHARD_WAIT, shard, timeout_ns, 0, 0)
}

/// Kills the shard (needs KILL).
pub fn shard_kill(shard: u64) -> SysResult {
    call(nr::SHARD_KILL, shard, 0, 0, 0)
}

/// Gives up the CPU.
pub fn yield_now() -> SysResult {
    call(nr::YIELD, 0, 0, 0, 0)
}
