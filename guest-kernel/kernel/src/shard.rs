//! The shard control block: everything the kernel keeps per shard.

use coconut_abi::syscall::{FD_SLOTS, pledge};

use crate::ext2::Inode;
use crate::idt::SaveArea;
use crate::uspace::AddrSpace;
use coconut_core::vmspace::VmSpace;

/// Most shards alive or remembered at once (ids are slot indices).
pub const MAX_SHARDS: usize = 16;

/// Most regions one shard's address space records: up to 16 ELF segments,
/// stack, its guard, the info page, the heap, and the `fs_map`, `mmio_map`
/// and `dma_alloc` windows it asks for (more is `NoMemory`).
pub const VM_REGIONS: usize = 48;

/// A shard's address-space bookkeeping (coconut-core): regions, the heap
/// end, the page quota.
pub type Vm = VmSpace<VM_REGIONS>;

/// A shard id (its slot).
pub type ShardId = usize;

/// How a shard ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// `exit(code)`.
    Exited(u32),
    /// Killed by exception `vector` (or by `shard_kill`: vector 0xff).
    Killed(u8),
}

impl Ending {
    /// The status `shard_wait` reports.
    pub fn status(self) -> u64 {
        match self {
            Ending::Exited(code) => u64::from(code),
            Ending::Killed(v) => coconut_abi::syscall::KILLED_STATUS_BASE + u64::from(v),
        }
    }
}

/// What a blocked shard waits for; whoever completes the wait writes RAX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// `shard_wait` on this child.
    Child(ShardId),
    /// `channel_send` to a full channel: the message is at `va`, `len` bytes.
    Send {
        /// Channel id (capability resource).
        chan: u32,
        /// User buffer.
        va: u64,
        /// Its length.
        len: u64,
    },
    /// `channel_recv` from an empty channel into `va`, at most `max` bytes.
    Recv {
        /// Channel id.
        chan: u32,
        /// User buffer.
        va: u64,
        /// Its size.
        max: u64,
    },
}

/// Scheduling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The slot is empty.
    Free,
    /// Loaded by `shard_create`, not started yet.
    Created,
    /// Ready to run (or running).
    Runnable,
    /// Waiting; `deadline` (TSC, 0 = none) ends the wait with TimedOut.
    Blocked {
        /// What it waits for.
        wait: Wait,
        /// TSC deadline or 0.
        deadline: u64,
    },
    /// Ended; kept for the profile and for `shard_wait`.
    Dead(Ending),
}

/// An open file.
#[derive(Clone, Copy, Debug)]
pub struct OpenFile {
    /// Its inode.
    pub inode: Inode,
    /// Read position.
    pub offset: u64,
}

/// The x87/SSE save area (`fxsave64` wants 512 bytes, 16-aligned).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct FxArea(pub [u8; 512]);

/// Per-shard counters for the profiling table.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// System calls made.
    pub syscalls: u64,
    /// TSC cycles spent in the kernel handling them.
    pub syscall_cycles: u64,
    /// Times the shard was switched to.
    pub switches: u64,
    /// TSC when it started.
    pub start_tsc: u64,
    /// TSC when it ended.
    pub end_tsc: u64,
}

/// One shard.
#[derive(Debug)]
#[repr(C)]
pub struct Shard {
    /// Its registers while it is not running (TSS.RSP0 points at the end).
    pub save: SaveArea,
    /// Its FPU/SSE registers while another shard runs.
    pub fx: FxArea,
    /// Whether its FPU state is still the clean initial one.
    pub fpu_fresh: bool,
    /// Scheduling state.
    pub state: State,
    /// Page tables (None once torn down).
    pub space: Option<AddrSpace>,
    /// Name bytes.
    pub name: [u8; 32],
    /// Bytes of `name` used.
    pub name_len: usize,
    /// 0 (highest) ..= 3.
    pub priority: u8,
    /// The shard that created it (None for manifest shards).
    pub parent: Option<ShardId>,
    /// What is mapped where, the heap end and the page quota; every
    /// page-table edit is recorded here first.
    pub vm: Vm,
    /// Pledge classes still allowed.
    pub pledge: u64,
    /// Open files.
    pub fds: [Option<OpenFile>; FD_SLOTS],
    /// Profiling counters.
    pub stats: Stats,
    /// Physical address of its info page (to record boot capabilities).
    pub info_pa: u64,
}

impl Shard {
    /// An empty slot.
    pub const EMPTY: Shard = Shard {
        save: SaveArea {
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rbp: 0,
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            rbx: 0,
            rax: 0,
            vector: 0,
            error: 0,
            rip: 0,
            cs: 0,
            rflags: 0,
            rsp: 0,
            ss: 0,
        },
        fx: FxArea([0; 512]),
        fpu_fresh: true,
        state: State::Free,
        space: None,
        name: [0; 32],
        name_len: 0,
        priority: 2,
        parent: None,
        vm: VmSpace::new(0, 0),
        pledge: pledge::ALL,
        fds: [None; FD_SLOTS],
        stats: Stats {
            syscalls: 0,
            syscall_cycles: 0,
            switches: 0,
            start_tsc: 0,
            end_tsc: 0,
        },
        info_pa: 0,
    };

    /// The name as bytes.
    pub fn name(&self) -> &[u8] {
        &self.name[..self.name_len]
    }

    /// Whether it still counts for shutdown (not free, not dead).
    pub fn alive(&self) -> bool {
        !matches!(self.state, State::Free | State::Dead(_))
    }
}
