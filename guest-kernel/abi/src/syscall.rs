//! The shard ↔ kernel system-call ABI.
//!
//! Numbers follow coconutOS (`../shared/reference/coconut.md`) where it has
//! the call, so its C shards' ABI stays familiar; calls it lacks take free
//! numbers. Every call is one `syscall` instruction:
//!
//! ```text
//! RAX = number   RDI, RSI, RDX, R10, R8 = arguments 0..4   result in RAX
//! RCX, R11 and the argument registers are clobbered; all others are kept.
//! ```
//!
//! A result in `[ERROR_FLOOR, u64::MAX]` is an error: `-(code)` for an
//! [`Error`] code (so coconutOS's "error is `u64::MAX`" still reads as "an
//! error"); anything else is the call's value.
//!
//! The instruction is the same on every hypervisor. Where hardware KVM
//! delivers `syscall`, the kernel's LSTAR handler runs; on kvm-pvm control
//! reaches LSTAR still in ring 3 and faults, and the kernel (told
//! `coco.gate=trap`) treats a ring-3 #PF whose RIP is LSTAR as the call. A
//! shard never needs to know which gate carried it.

/// Call numbers.
pub mod nr {
    /// `exit(code)`: the shard ends with `code` (low 32 bits); never returns.
    pub const EXIT: u64 = 0;
    /// `serial_write(buf, len)`: len 1..=[`super::SERIAL_WRITE_MAX`]; returns len.
    pub const SERIAL_WRITE: u64 = 1;
    /// `time()`: monotonic nanoseconds since boot (shards cannot `rdtsc`: CR4.TSD).
    pub const TIME: u64 = 2;
    /// `cap_grant(handle, target_shard, rights_mask)`: copies a capability to
    /// the shard whose SHARD capability is `target_shard` (a handle in the
    /// caller's table) with rights ∩ mask; needs [`super::rights::GRANT`] on
    /// `handle`. Returns the handle in the target's table.
    pub const CAP_GRANT: u64 = 11;
    /// `cap_revoke(handle)`: drops the capability and every copy derived from it.
    pub const CAP_REVOKE: u64 = 12;
    /// `cap_restrict(handle, rights)`: rights ∩= `rights` (can only shrink).
    pub const CAP_RESTRICT: u64 = 13;
    /// `cap_inspect(handle)`: `(type << 48) | (resource << 16) | rights`.
    pub const CAP_INSPECT: u64 = 14;
    /// `channel_create(capacity, msg_max)`: needs a FACTORY capability with
    /// [`super::rights::FACTORY_CHANNEL`]; capacity 1..=[`super::CHANNEL_CAPACITY_MAX`]
    /// messages of 1..=[`super::CHANNEL_MSG_MAX`] bytes. Returns a CHANNEL
    /// handle with SEND | RECV | GRANT.
    pub const CHANNEL_CREATE: u64 = 20;
    /// `channel_send(channel, buf, len)`: needs SEND; blocks while the queue is full.
    pub const CHANNEL_SEND: u64 = 21;
    /// `channel_recv(channel, buf, max)`: needs RECV; blocks while empty;
    /// returns the message length. A message longer than `max` is not
    /// delivered and not dropped: the call fails with
    /// [`super::Error::MessageTooBig`] and the message stays queued.
    pub const CHANNEL_RECV: u64 = 22;
    /// `channel_send_timeout(channel, buf, len, timeout_ns)`: as SEND, waiting
    /// at most `timeout_ns` (0 = do not wait → [`super::Error::WouldBlock`];
    /// expiry → [`super::Error::TimedOut`]).
    pub const CHANNEL_SEND_TIMEOUT: u64 = 23;
    /// `channel_recv_timeout(channel, buf, max, timeout_ns)`: as RECV with a bound.
    pub const CHANNEL_RECV_TIMEOUT: u64 = 24;
    /// `fs_open(path, path_len)`: absolute path in the ramdisk; returns an fd.
    pub const FS_OPEN: u64 = 30;
    /// `fs_read(fd, buf, max)`: reads from the fd's offset; 0 at end of file.
    pub const FS_READ: u64 = 31;
    /// `fs_stat(fd)`: the file's size in bytes.
    pub const FS_STAT: u64 = 32;
    /// `fs_close(fd)`.
    pub const FS_CLOSE: u64 = 33;
    /// `fs_map(fd)`: maps the whole file read-only, no-execute into the
    /// caller (the ramdisk's own pages; nothing is copied) and returns its
    /// address. The size is `fs_stat(fd)`.
    pub const FS_MAP: u64 = 34;
    /// `gpu_dma(target_partition, src_offset, (dst_offset << 32) | len)`.
    pub const GPU_DMA: u64 = 40;
    /// `pledge(mask)`: the [`super::pledge`] classes still allowed; only shrinks.
    pub const PLEDGE: u64 = 41;
    /// `gpu_unveil(offset, size)`: one-shot lock of the VRAM range DMA may touch.
    pub const GPU_UNVEIL: u64 = 42;
    /// `mmap(va, pages)`: zeroed R+W+NX pages at `va`, which must be the
    /// current end of the heap (see [`super::config::ShardInfo::heap_end`]);
    /// pages 1..=[`super::MMAP_PAGES_MAX`]; returns `va`.
    pub const MMAP: u64 = 43;
    /// `dma_alloc(pages, out_phys)`: physically contiguous zeroed R+W+NX pages
    /// a device may DMA to; returns their address and stores the
    /// guest-physical address at `out_phys` (a user `u64`). Needs a MEMORY
    /// capability with [`super::rights::MEMORY_DMA`].
    pub const DMA_ALLOC: u64 = 44;
    /// `mmio_map(memory_handle)`: maps the device window the MEMORY
    /// capability names (uncached, NX; writable only with MEMORY_WRITE) and
    /// returns its address.
    pub const MMIO_MAP: u64 = 45;
    /// `irq_bind(irq_handle, channel_handle)`: interrupts of the IRQ
    /// capability's line arrive as one-byte notifications on the channel
    /// (the kernel masks the line until [`IRQ_ACK`]).
    pub const IRQ_BIND: u64 = 46;
    /// `irq_ack(irq_handle)`: unmask the line after handling it.
    pub const IRQ_ACK: u64 = 47;
    /// `shard_create(path, path_len, priority)`: loads an ELF from the
    /// ramdisk as a new shard; needs FACTORY with FACTORY_SHARD. Returns a
    /// SHARD handle (WAIT | KILL | GRANT). The child starts with no
    /// capabilities except its own SHARD-self; grant it what it needs, then
    /// [`SHARD_START`] it.
    pub const SHARD_CREATE: u64 = 50;
    /// `shard_start(shard_handle)`: makes a created shard runnable.
    pub const SHARD_START: u64 = 51;
    /// `shard_wait(shard_handle, timeout_ns)`: the child's exit status
    /// (`code` for exit, [`super::KILLED_STATUS_BASE`] + vector when killed by a fault).
    pub const SHARD_WAIT: u64 = 52;
    /// `shard_kill(shard_handle)`: needs KILL.
    pub const SHARD_KILL: u64 = 53;
    /// `yield()`: give up the CPU to the next runnable shard of equal or higher priority.
    pub const YIELD: u64 = 62;
}

/// Errors, returned as `-(code as i64) as u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Error {
    /// An argument is out of its documented range.
    InvalidArgument = 1,
    /// A user pointer/length is not mapped (readable or writable as needed)
    /// in the caller, wraps, or reaches kernel space.
    BadAddress = 2,
    /// The handle is out of range or its slot is empty.
    BadHandle = 3,
    /// The capability is of the wrong type for this call.
    WrongType = 4,
    /// The capability lacks a right the call needs.
    NoRight = 5,
    /// The target shard does not exist (or has exited).
    NoSuchShard = 6,
    /// No such file.
    NotFound = 7,
    /// The path names a directory where a file is needed (or vice versa).
    NotAFile = 8,
    /// The operation would block and the caller asked not to wait.
    WouldBlock = 9,
    /// A wait's timeout expired.
    TimedOut = 10,
    /// Out of frames or of the caller's page quota.
    NoMemory = 11,
    /// The caller's capability or file table is full.
    NoSlots = 12,
    /// The queued message is longer than the receive buffer; it stays queued.
    MessageTooBig = 13,
    /// The call's class was given up with `pledge`.
    Pledged = 14,
    /// Unknown system call number.
    UnknownSyscall = 15,
    /// A one-shot call was already made.
    Already = 16,
    /// The object went away (channel revoked while waiting, shard killed).
    Closed = 17,
    /// The requested range overlaps an existing mapping.
    Overlap = 18,
    /// No such device or GPU partition.
    NoDevice = 19,
}

impl Error {
    /// Every error, in code order.
    pub const ALL: [Error; 19] = [
        Error::InvalidArgument,
        Error::BadAddress,
        Error::BadHandle,
        Error::WrongType,
        Error::NoRight,
        Error::NoSuchShard,
        Error::NotFound,
        Error::NotAFile,
        Error::WouldBlock,
        Error::TimedOut,
        Error::NoMemory,
        Error::NoSlots,
        Error::MessageTooBig,
        Error::Pledged,
        Error::UnknownSyscall,
        Error::Already,
        Error::Closed,
        Error::Overlap,
        Error::NoDevice,
    ];

    /// The code (1..).
    pub const fn code(self) -> u64 {
        self as u64
    }

    /// The value the kernel puts in RAX.
    pub const fn to_raw(self) -> u64 {
        (self as u64).wrapping_neg()
    }

    /// Decodes a raw result: `Err` for a known error code, `Ok` otherwise.
    pub fn from_raw(raw: u64) -> Result<u64, Error> {
        if raw < ERROR_FLOOR {
            return Ok(raw);
        }
        let code = raw.wrapping_neg();
        Err(Error::ALL
            .iter()
            .copied()
            .find(|e| e.code() == code)
            .unwrap_or(Error::InvalidArgument))
    }

    /// A short name, as printed in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Error::InvalidArgument => "invalid argument",
            Error::BadAddress => "bad address",
            Error::BadHandle => "bad handle",
            Error::WrongType => "wrong capability type",
            Error::NoRight => "missing right",
            Error::NoSuchShard => "no such shard",
            Error::NotFound => "not found",
            Error::NotAFile => "not a file",
            Error::WouldBlock => "would block",
            Error::TimedOut => "timed out",
            Error::NoMemory => "out of memory",
            Error::NoSlots => "table full",
            Error::MessageTooBig => "message too big",
            Error::Pledged => "pledged away",
            Error::UnknownSyscall => "unknown syscall",
            Error::Already => "already done",
            Error::Closed => "closed",
            Error::Overlap => "overlap",
            Error::NoDevice => "no device",
        }
    }
}

/// Raw results at or above this are errors (the top 4095 values, as on Linux).
pub const ERROR_FLOOR: u64 = 4095u64.wrapping_neg();

/// Largest `serial_write` length.
pub const SERIAL_WRITE_MAX: u64 = 4096;
/// Largest channel message.
pub const CHANNEL_MSG_MAX: u64 = 256;
/// Largest channel queue (messages).
pub const CHANNEL_CAPACITY_MAX: u64 = 64;
/// Largest single `mmap`.
pub const MMAP_PAGES_MAX: u64 = 256;
/// Capability slots per shard; a handle is a slot index.
pub const CAP_SLOTS: usize = 32;
/// Open files per shard; an fd is a slot index.
pub const FD_SLOTS: usize = 16;
/// Longest ramdisk path `fs_open` and `shard_create` accept.
pub const PATH_MAX: u64 = 255;
/// Exit status of a shard killed by a fault: this plus the exception vector.
pub const KILLED_STATUS_BASE: u64 = 0x100;
/// `timeout_ns` meaning "wait forever".
pub const WAIT_FOREVER: u64 = u64::MAX;

/// Capability types (`cap_inspect() >> 48`).
pub mod cap_type {
    /// A channel: SEND, RECV, GRANT.
    pub const CHANNEL: u64 = 1;
    /// A shard: WAIT, KILL, GRANT (and the target of `cap_grant`).
    pub const SHARD: u64 = 2;
    /// Physical memory: a device MMIO window or DMA-able memory.
    pub const MEMORY: u64 = 3;
    /// Peer DMA into a GPU partition: WRITE, GRANT.
    pub const GPU_DMA: u64 = 4;
    /// An interrupt line: RECEIVE, GRANT.
    pub const IRQ: u64 = 5;
    /// The right to create kernel objects: FACTORY_CHANNEL, FACTORY_SHARD, GRANT.
    pub const FACTORY: u64 = 6;
}

/// Rights bits. [`GRANT`] means the same for every type.
pub mod rights {
    /// Channel: may send.
    pub const SEND: u64 = 1;
    /// Channel: may receive.
    pub const RECV: u64 = 2;
    /// Any type: may copy the capability to another shard.
    pub const GRANT: u64 = 4;
    /// Shard: may wait for its exit.
    pub const WAIT: u64 = 1;
    /// Shard: may kill it.
    pub const KILL: u64 = 2;
    /// Memory: may map it readable.
    pub const MEMORY_READ: u64 = 1;
    /// Memory: may map it writable.
    pub const MEMORY_WRITE: u64 = 2;
    /// Memory: may allocate DMA-able memory from it (`dma_alloc`).
    pub const MEMORY_DMA: u64 = 8;
    /// GPU DMA: may write into the target partition.
    pub const GPU_WRITE: u64 = 1;
    /// IRQ: may bind and acknowledge the line.
    pub const IRQ_RECEIVE: u64 = 1;
    /// Factory: may create channels.
    pub const FACTORY_CHANNEL: u64 = 1;
    /// Factory: may create shards.
    pub const FACTORY_SHARD: u64 = 2;
    /// Every right bit any type defines.
    pub const ALL: u64 = 0xf;
}

/// Pledge classes: `pledge(mask)` keeps the classes in `mask`. EXIT and
/// YIELD are never pledged away.
pub mod pledge {
    /// serial_write.
    pub const SERIAL: u64 = 1;
    /// channel_*.
    pub const CHANNEL: u64 = 2;
    /// gpu_dma, gpu_unveil.
    pub const GPU_DMA: u64 = 4;
    /// time.
    pub const TIME: u64 = 8;
    /// fs_*.
    pub const FS: u64 = 16;
    /// mmap, dma_alloc, mmio_map.
    pub const MEMORY: u64 = 32;
    /// cap_*.
    pub const CAPS: u64 = 64;
    /// shard_*.
    pub const SHARD: u64 = 128;
    /// irq_*.
    pub const IRQ: u64 = 256;
    /// Every class.
    pub const ALL: u64 = 0x1ff;

    /// The class a call belongs to; `None` for calls that are always allowed
    /// (exit, yield) and for unknown numbers.
    pub const fn class_of(nr: u64) -> Option<u64> {
        // `nr::TIME` and `nr::GPU_DMA` share names with the classes here, and
        // this block's glob import shadows the module's constants: spell
        // both sides out.
        use super::nr::*;
        match nr {
            SERIAL_WRITE => Some(SERIAL),
            super::nr::TIME => Some(self::TIME),
            CAP_GRANT | CAP_REVOKE | CAP_RESTRICT | CAP_INSPECT => Some(CAPS),
            CHANNEL_CREATE | CHANNEL_SEND | CHANNEL_RECV | CHANNEL_SEND_TIMEOUT
            | CHANNEL_RECV_TIMEOUT => Some(CHANNEL),
            FS_OPEN | FS_READ | FS_STAT | FS_CLOSE | FS_MAP => Some(FS),
            super::nr::GPU_DMA | GPU_UNVEIL => Some(self::GPU_DMA),
            MMAP | DMA_ALLOC | MMIO_MAP => Some(MEMORY),
            IRQ_BIND | IRQ_ACK => Some(IRQ),
            SHARD_CREATE | SHARD_START | SHARD_WAIT | SHARD_KILL => Some(SHARD),
            _ => None,
        }
    }
}

/// The shard address-space layout and the read-only info page every shard
/// finds at [`config::INFO_VA`].
pub mod config {
    /// Lowest user address a shard's ELF may load at (page 0..4 MiB unmapped).
    pub const USER_MIN: u64 = 0x40_0000;
    /// One past the highest user address (the lower canonical half minus a guard).
    pub const USER_END: u64 = 0x0000_7fff_ffff_0000;
    /// The read-only [`ShardInfo`] page.
    pub const INFO_VA: u64 = 0x0000_7fff_fffe_0000;
    /// Top of the initial stack (grows down; a guard page lies below it).
    pub const STACK_TOP: u64 = 0x0000_7fff_fff0_0000;
    /// Initial stack size in pages.
    pub const STACK_PAGES: u64 = 16;
    /// Where `fs_map` places files (each at the next free 2 MiB boundary).
    pub const FILE_MAP_BASE: u64 = 0x0000_4000_0000_0000;
    /// Where `mmio_map` and `dma_alloc` place windows.
    pub const DEVICE_MAP_BASE: u64 = 0x0000_5000_0000_0000;
    /// [`ShardInfo::magic`].
    pub const INFO_MAGIC: u64 = u64::from_le_bytes(*b"COCOSHRD");
    /// [`ShardInfo::version`].
    pub const INFO_VERSION: u32 = 1;

    const _: () = assert!(core::mem::size_of::<ShardInfo>() <= 4096);
    const _: () = assert!(USER_MIN < FILE_MAP_BASE && FILE_MAP_BASE < DEVICE_MAP_BASE);
    const _: () = assert!(DEVICE_MAP_BASE < STACK_TOP && STACK_TOP < INFO_VA && INFO_VA < USER_END);
    const _: () = assert!(
        (USER_MIN | FILE_MAP_BASE | DEVICE_MAP_BASE | STACK_TOP | INFO_VA | USER_END)
            .is_multiple_of(4096)
    );

    /// The info page's layout (`#[repr(C)]`, read-only to the shard).
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct ShardInfo {
        /// [`INFO_MAGIC`].
        pub magic: u64,
        /// [`INFO_VERSION`].
        pub version: u32,
        /// This shard's id (as in the profiling table).
        pub shard_id: u32,
        /// Its priority, 0 (highest) ..= 3.
        pub priority: u32,
        /// Bytes used in `name`.
        pub name_len: u32,
        /// The shard's name (UTF-8, not NUL-terminated).
        pub name: [u8; 32],
        /// First heap address (page-aligned, right after the ELF's last segment and a guard page).
        pub heap_start: u64,
        /// Heap end at start (== heap_start); `mmap` extends it.
        pub heap_end: u64,
        /// Most pages this shard may map with `mmap`/`dma_alloc`.
        pub page_quota: u64,
        /// Handles the boot manifest gave this shard, in manifest order
        /// (slot indices; `u32::MAX` when unused), so a shard can find its
        /// capabilities without guessing.
        pub boot_caps: [u32; 16],
        /// Bytes used in `args`.
        pub args_len: u32,
        /// Reserved, zero.
        pub _reserved: u32,
        /// The manifest's `args` string for this shard.
        pub args: [u8; 256],
    }
}

/// The CPU's exception vectors that can kill a shard, with the names the
/// kill report uses.
pub const fn fault_name(vector: u8) -> &'static str {
    match vector {
        0 => "divide error",
        1 => "debug",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range",
        6 => "invalid opcode",
        7 => "device not available",
        13 => "general protection fault",
        14 => "page fault",
        16 => "x87 floating-point error",
        17 => "alignment check",
        19 => "SIMD floating-point error",
        _ => "exception",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_raw() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.code(), i as u64 + 1, "codes are dense and ordered");
            assert_eq!(Error::from_raw(e.to_raw()), Err(*e));
            assert!(e.to_raw() >= ERROR_FLOOR);
        }
        assert_eq!(Error::to_raw(Error::InvalidArgument), u64::MAX);
        assert_eq!(Error::from_raw(0), Ok(0));
        assert_eq!(Error::from_raw(ERROR_FLOOR - 1), Ok(ERROR_FLOOR - 1));
    }

    #[test]
    fn every_call_but_exit_and_yield_has_a_pledge_class() {
        let calls = [
            nr::SERIAL_WRITE,
            nr::TIME,
            nr::CAP_GRANT,
            nr::CAP_REVOKE,
            nr::CAP_RESTRICT,
            nr::CAP_INSPECT,
            nr::CHANNEL_CREATE,
            nr::CHANNEL_SEND,
            nr::CHANNEL_RECV,
            nr::CHANNEL_SEND_TIMEOUT,
            nr::CHANNEL_RECV_TIMEOUT,
            nr::FS_OPEN,
            nr::FS_READ,
            nr::FS_STAT,
            nr::FS_CLOSE,
            nr::FS_MAP,
            nr::GPU_DMA,
            nr::PLEDGE,
            nr::GPU_UNVEIL,
            nr::MMAP,
            nr::DMA_ALLOC,
            nr::MMIO_MAP,
            nr::IRQ_BIND,
            nr::IRQ_ACK,
            nr::SHARD_CREATE,
            nr::SHARD_START,
            nr::SHARD_WAIT,
            nr::SHARD_KILL,
        ];
        for n in calls {
            if n == nr::PLEDGE {
                // pledge itself can always shrink further.
                assert_eq!(pledge::class_of(n), None);
                continue;
            }
            let class = pledge::class_of(n).unwrap_or(0);
            assert!(class != 0 && class & pledge::ALL == class, "call {n}");
        }
        assert_eq!(pledge::class_of(nr::EXIT), None);
        assert_eq!(pledge::class_of(nr::YIELD), None);
        // The calls whose names collide with class names map to their class.
        assert_eq!(pledge::class_of(nr::TIME), Some(pledge::TIME));
        assert_eq!(pledge::class_of(nr::GPU_DMA), Some(pledge::GPU_DMA));
        assert_eq!(pledge::class_of(pledge::TIME), None);
    }

    #[test]
    fn coconut_numbers_are_kept() {
        assert_eq!(
            [
                nr::EXIT,
                nr::SERIAL_WRITE,
                nr::CAP_GRANT,
                nr::CAP_REVOKE,
                nr::CAP_RESTRICT
            ],
            [0, 1, 11, 12, 13]
        );
        assert_eq!(
            [nr::CAP_INSPECT, nr::CHANNEL_SEND, nr::CHANNEL_RECV],
            [14, 21, 22]
        );
        assert_eq!(
            [nr::FS_OPEN, nr::FS_READ, nr::FS_STAT, nr::FS_CLOSE],
            [30, 31, 32, 33]
        );
        assert_eq!(
            [nr::GPU_DMA, nr::PLEDGE, nr::GPU_UNVEIL, nr::MMAP, nr::YIELD],
            [40, 41, 42, 43, 62]
        );
        assert_eq!(
            [
                cap_type::CHANNEL,
                cap_type::SHARD,
                cap_type::MEMORY,
                cap_type::GPU_DMA
            ],
            [1, 2, 3, 4]
        );
        assert_eq!(
            [rights::SEND, rights::RECV, rights::GRANT, rights::GPU_WRITE],
            [1, 2, 4, 1]
        );
    }
}
