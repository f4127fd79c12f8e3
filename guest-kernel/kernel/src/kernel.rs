//! The kernel proper: the shard table, every entry from ring 3 ([`trap`]),
//! the scheduler, switching, killing, and shutdown with the profiling table.
//!
//! Only the boot CPU runs and the kernel never enables interrupts except in
//! the idle step, so the one [`Kernel`] value is reached through
//! [`kernel()`] without locks.

use coconut_abi::syscall::{Error, config, fault_name};
use coconut_abi::{After, SyscallGate, exit, milestone};
use coconut_core::captable::CapTable;
use coconut_core::channel::ChannelPool;
use coconut_core::sched::Sched;

use crate::cpu;
use crate::devices::{self, IRQ_LINES, IRQ_VECTOR_BASE, Irqs};
use crate::ext2::Fs;
use crate::frames::Frames;
use crate::gdt;
use crate::idt::{self, SYSCALL_VECTOR, SaveArea, TIMER_VECTOR};
use crate::paging;
use crate::serial::out;
use crate::shard::{Ending, MAX_SHARDS, Shard, ShardId, State};
use crate::syscalls;
use crate::timer::Timer;

/// RFLAGS bits a system call returns as the shard left them (in R11):
/// CF, PF, AF, ZF, SF, OF. DF and AC are cleared (the ABI has DF clear at
/// calls), as are TF, NT, IOPL, RF and VM.
const RFLAGS_USER: u64 = 0x8d5;
/// After an interrupt or exception the shard's own DF and AC survive too
/// (a tick inside a `std … cld` sequence must not flip a copy's direction).
const RFLAGS_INTERRUPTED: u64 = RFLAGS_USER | 0x400 | 0x4_0000;
/// RFLAGS forced on: IF and the reserved bit 1.
const RFLAGS_FORCED: u64 = 0x202;
/// Highest user RIP the kernel resumes (below the canonical hole).
const USER_RIP_END: u64 = config::USER_END;
/// Pseudo-vector recorded for `shard_kill`.
pub const KILLED_BY_REQUEST: u8 = 0xff;

/// Channels the kernel can hold at once.
pub const CHANNELS: usize = 16;
/// Message buffers shared by all channels (256 bytes each).
pub const CHANNEL_SLOTS: usize = 256;
/// Memory objects (MMIO windows, DMA grants) the kernel tracks.
pub const MEMORY_OBJECTS: usize = 16;

/// What a MEMORY capability's resource (an index here) names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemObj {
    /// Unused entry.
    None,
    /// Permission to allocate DMA-able memory.
    Dma,
    /// The MMIO window `[base, base + pages * 4096)`.
    Mmio {
        /// Physical base.
        base: u64,
        /// Pages.
        pages: u64,
    },
}

/// The whole kernel state.
#[derive(Debug)]
pub struct Kernel {
    /// Shard slots (the id is the index).
    pub shards: [Shard; MAX_SHARDS],
    /// The shard whose save area RSP0 points at (running, or last run).
    pub current: ShardId,
    /// Whose registers are in the FPU.
    fpu_owner: Option<ShardId>,
    /// Physical frames.
    pub frames: Frames,
    /// The ramdisk file system.
    pub fs: Option<Fs>,
    /// Physical address of the ramdisk (page aligned when mapping is possible).
    pub ramdisk_phys: u64,
    /// Clock and tick.
    pub timer: Timer,
    /// How shards enter the kernel.
    pub gate: SyscallGate,
    /// Issue IBPB on each switch.
    ibpb: bool,
    /// Whether a shard has run yet (for the FIRST_SHARD milestone).
    entered: bool,
    /// What to do when every shard is gone.
    pub after: After,
    /// A frame that stays zero, mapped read-only for file holes (0: none yet).
    zero_frame: u64,
    /// Every shard's capabilities.
    pub caps: CapTable<MAX_SHARDS>,
    /// Channel queues.
    pub chans: ChannelPool<CHANNELS, CHANNEL_SLOTS>,
    /// MEMORY capability objects.
    pub memory: [MemObj; MEMORY_OBJECTS],
    /// Interrupt routes.
    pub irqs: Irqs,
    /// Run queues (coconut-core): every runnable shard except the running one.
    sched: Sched<MAX_SHARDS>,
    /// System calls that arrived through the `syscall` stub (LSTAR in ring 0).
    syscall_entries: u64,
    /// System calls that arrived as a ring-3 #PF at LSTAR (the trap gate).
    trap_entries: u64,
}

/// The shared zero frame (allocated on first use, never written).
pub fn zero_page(k: &mut Kernel) -> Result<u64, Error> {
    if k.zero_frame == 0 {
        k.zero_frame = k.frames.alloc(true).ok_or(Error::NoMemory)?;
    }
    Ok(k.zero_frame)
}

static mut KERNEL: Kernel = Kernel {
    shards: [const { Shard::EMPTY }; MAX_SHARDS],
    current: 0,
    fpu_owner: None,
    frames: Frames::new(),
    fs: None,
    ramdisk_phys: 0,
    timer: Timer::new(),
    gate: SyscallGate::Trap,
    ibpb: false,
    entered: false,
    after: After::Exit,
    zero_frame: 0,
    caps: CapTable::new(),
    chans: ChannelPool::new(),
    memory: [MemObj::None; MEMORY_OBJECTS],
    irqs: Irqs::new(),
    sched: Sched::new(),
    syscall_entries: 0,
    trap_entries: 0,
};

/// The kernel state.
pub fn kernel() -> &'static mut Kernel {
    let state = &raw mut KERNEL;
    // SAFETY: one CPU, interrupts off in the kernel except in the idle step,
    // whose handler (`interrupt_in_idle`) runs while the interrupted code holds
    // no reference into the state it touches (the idle loop re-reads it).
    // Every caller is on the kernel's single control path.
    unsafe { &mut *state }
}

/// A clean x87/SSE image: FCW 0x37f, MXCSR 0x1f80, every register zero.
/// Restoring it resets the FPU without SSE arithmetic (fatal in ring 0 on kvm-pvm).
static CLEAN_FPU: crate::shard::FxArea = {
    let mut a = [0u8; 512];
    a[0] = 0x7f;
    a[1] = 0x03;
    a[24] = 0x80;
    a[25] = 0x1f;
    crate::shard::FxArea(a)
};

const MSR_EFER: u32 = 0xc000_0080;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_SFMASK: u32 = 0xc000_0084;
const MSR_PRED_CMD: u32 = 0x49;
const EFER_SCE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_EM: u64 = 1 << 2;
const CR0_TS: u64 = 1 << 3;
const CR0_NE: u64 = 1 << 5;
const CR4_TSD: u64 = 1 << 2;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;

/// Sets up the CPU for shards: SSE for ring 3, CR4.TSD, the `syscall` MSRs,
/// debug registers cleared (shards cannot set them: once at boot is enough),
/// IBPB when the gate is `syscall` and CPUID offers it.
pub fn init_cpu(gate: SyscallGate) {
    let k = kernel();
    k.gate = gate;
    // SAFETY: clearing EM/TS and setting MP/NE keeps protection and paging;
    // OSFXSR/OSXMMEXCPT/TSD exist on every x86-64 CPU.
    unsafe {
        cpu::write_cr0((cpu::cr0() & !(CR0_EM | CR0_TS)) | CR0_MP | CR0_NE);
        cpu::write_cr4(cpu::cr4() | CR4_TSD | CR4_OSFXSR | CR4_OSXMMEXCPT);
        core::arch::asm!(
            "mov dr7, {0}", "mov dr0, {0}", "mov dr1, {0}", "mov dr2, {0}", "mov dr3, {0}",
            "mov dr6, {1}",
            in(reg) 0u64, in(reg) 0xffff_0ff0u64, options(nomem, nostack, preserves_flags)
        );
    }
    // STAR: kernel CS/SS from 0x08, (unused) sysret base 0x10 → user 0x1b/0x23.
    let star = (u64::from(gdt::KERNEL_CS) << 32) | (0x10u64 << 48);
    // SAFETY: these MSRs exist on every x86-64 CPU; LSTAR is the entry stub.
    unsafe {
        cpu::wrmsr(MSR_EFER, cpu::rdmsr(MSR_EFER) | EFER_SCE);
        cpu::wrmsr(MSR_STAR, star);
        cpu::wrmsr(MSR_LSTAR, idt::syscall_entry_address());
        // IF, TF, DF, AC, NT cleared on entry.
        cpu::wrmsr(MSR_SFMASK, 0x200 | 0x100 | 0x400 | 0x4_0000 | 0x4000);
    }
    if gate == SyscallGate::Syscall {
        let max = cpu::cpuid(0, 0).0;
        let max_ext = cpu::cpuid(0x8000_0000, 0).0;
        let intel = max >= 7 && cpu::cpuid(7, 0).3 & (1 << 26) != 0;
        let amd = max_ext >= 0x8000_0008 && cpu::cpuid(0x8000_0008, 0).1 & (1 << 12) != 0;
        k.ibpb = intel || amd;
    }
    out()
        .s("cpu: sse for shards, cr4.tsd, debug registers cleared, ibpb on switch: ")
        .s(if k.ibpb { "yes" } else { "no" })
        .nl();
}

/// The entry from ring 3 (called by the stubs in idt.rs with the running
/// shard's save area); returns the save area to resume.
pub extern "C" fn trap(save: *mut SaveArea) -> *const SaveArea {
    let k = kernel();
    let cur = k.current;
    let t0 = cpu::rdtsc();
    // SAFETY: RSP0 pointed at the end of shards[cur].save, so `save` is
    // that save area; nothing else references it during the trap.
    let vector = unsafe { (*save).vector };
    let mut rotate = false;
    let lstar = idt::syscall_entry_address();
    match vector {
        SYSCALL_VECTOR => {
            k.syscall_entries += 1;
            let s = &mut k.shards[cur].save;
            s.rflags = (s.rflags & RFLAGS_USER) | RFLAGS_FORCED;
            syscalls::dispatch(k, cur, t0, &mut rotate);
        }
        14 if k.gate == SyscallGate::Trap && k.shards[cur].save.rip == lstar => {
            let s = &mut k.shards[cur].save;
            s.rip = s.rcx;
            s.rflags = (s.r11 & RFLAGS_USER) | RFLAGS_FORCED;
            k.trap_entries += 1;
            syscalls::dispatch(k, cur, t0, &mut rotate);
        }
        TIMER_VECTOR => {
            k.timer.tick();
            expire_timeouts(k);
            rotate = true;
        }
        v if (IRQ_VECTOR_BASE..IRQ_VECTOR_BASE + IRQ_LINES as u64).contains(&v) => {
            devices::interrupt(k, (v - IRQ_VECTOR_BASE) as usize);
        }
        // An NMI is not the shard's doing: resume it.
        2 => {}
        // Machine check: the hardware is failing, not the shard.
        18 => panic!("machine check while a shard ran"),
        v => {
            let cr2 = cpu::cr2();
            report_kill(k, cur, v as u8, cr2);
            end_shard(k, cur, Ending::Killed(v as u8));
        }
    }
    if k.timer.take_due() {
        expire_timeouts(k);
        rotate = true;
    }
    schedule(rotate)
}

/// An interrupt while the CPU idles in ring 0: the tick or a device line.
pub fn interrupt_in_idle(vector: u64) {
    let k = kernel();
    if vector == TIMER_VECTOR {
        k.timer.tick();
        expire_timeouts(k);
    } else {
        devices::interrupt(k, (vector - IRQ_VECTOR_BASE) as usize);
    }
}

/// Makes shard `id` runnable (state and run queue). Every transition to
/// Runnable goes through here, except the running shard's own.
pub fn make_runnable(k: &mut Kernel, id: ShardId) {
    k.shards[id].state = State::Runnable;
    let prio = k.shards[id].priority;
    // id < MAX_SHARDS and prio <= 3 (the loader clamps it): cannot fail.
    let _ = k.sched.make_runnable(id, prio);
}

/// Ends blocked waits whose deadline passed (RAX = TimedOut).
fn expire_timeouts(k: &mut Kernel) {
    let now = cpu::rdtsc();
    for id in 0..MAX_SHARDS {
        if let State::Blocked { deadline, .. } = k.shards[id].state
            && deadline != 0
            && now >= deadline
        {
            k.shards[id].save.rax = Error::TimedOut.to_raw();
            make_runnable(k, id);
        }
    }
}

/// Prints the kill line.
pub fn report_kill(k: &Kernel, id: ShardId, vector: u8, cr2: u64) {
    let s = &k.shards[id];
    let o = out();
    o.s("shard ")
        .dec(id as u64)
        .s(" (")
        .text(s.name())
        .s(") killed: ");
    if vector == KILLED_BY_REQUEST {
        o.s("killed by request").nl();
        return;
    }
    o.s(fault_name(vector)).s(" at ");
    if vector == 14 {
        o.hex(cr2)
            .s(" (rip ")
            .hex(s.save.rip)
            .s(", error ")
            .hex(s.save.error)
            .s(")");
    } else {
        o.hex(s.save.rip).s(" (rip ").hex(s.save.rip).s(")");
    }
    o.nl();
}

/// Ends a shard: tears its memory down, wakes whoever waits for it.
pub fn end_shard(k: &mut Kernel, id: ShardId, ending: Ending) {
    let shard = &mut k.shards[id];
    if !shard.alive() {
        return;
    }
    shard.state = State::Dead(ending);
    shard.stats.end_tsc = cpu::rdtsc();
    k.sched.remove(id);
    let shard = &mut k.shards[id];
    shard.fds = [None; coconut_abi::syscall::FD_SLOTS];
    if let Some(space) = shard.space.take() {
        // SAFETY: the kernel's PML4 maps the kernel half, which is all the
        // kernel uses; the dying space must not stay loaded while freed.
        unsafe { cpu::write_cr3(paging::kernel_pml4_phys()) };
        space.destroy(&mut k.frames, &k.shards[id].vm);
    }
    if k.fpu_owner == Some(id) {
        k.fpu_owner = None;
    }
    syscalls::shard_ended(k, id, ending);
}

/// Picks the next shard and prepares the CPU for it (or idles, or shuts
/// down); returns its save area.
fn schedule(rotate: bool) -> *const SaveArea {
    loop {
        // A fresh reference each round: none may be live across the idle
        // step, whose interrupt handler changes the state through its own.
        let k = kernel();
        let next = match pick(k, rotate) {
            Some(next) => next,
            None => {
                let waiting = k
                    .shards
                    .iter()
                    .any(|s| matches!(s.state, State::Blocked { .. }));
                if !waiting {
                    shutdown(k);
                }
                if !anything_can_wake(k) {
                    end_stuck_shards(k);
                    continue;
                }
                cpu::idle_once();
                continue;
            }
        };
        if let Some(save) = switch_to(k, next) {
            return save;
        }
    }
}

/// Whether an idle CPU could ever see a blocked shard wake: a wait with a
/// deadline, or a device line routed to a channel.
fn anything_can_wake(k: &Kernel) -> bool {
    k.irqs.any_routed()
        || k.shards
            .iter()
            .any(|s| matches!(s.state, State::Blocked { deadline, .. } if deadline != 0))
}

/// Every remaining shard waits forever and nothing can wake it (no timeout,
/// no interrupt route): say so and end them, rather than idling until the
/// VMM is killed. Not a kernel panic: the status says shards failed.
fn end_stuck_shards(k: &mut Kernel) {
    for id in 0..MAX_SHARDS {
        if matches!(k.shards[id].state, State::Blocked { .. }) {
            out()
                .s("shard ")
                .dec(id as u64)
                .s(" (")
                .text(k.shards[id].name())
                .s(") killed: waits forever (every shard is blocked, nothing can wake them)")
                .nl();
            end_shard(k, id, Ending::Killed(KILLED_BY_REQUEST));
        }
    }
}

/// The next shard to run, from coconut-core's run queues (strict priority,
/// FIFO round robin within one). The running shard is in no queue: with
/// `rotate` (tick, yield) it goes to the back of its queue first; without,
/// it keeps the CPU unless a strictly higher priority shard is runnable.
fn pick(k: &mut Kernel, rotate: bool) -> Option<ShardId> {
    let cur = k.current;
    let running = k.shards[cur].state == State::Runnable && !k.sched.is_queued(cur);
    if running {
        let prio = k.shards[cur].priority;
        let preempted = k.sched.highest_ready().is_some_and(|p| p < prio);
        if !rotate && !preempted {
            return Some(cur);
        }
        let _ = k.sched.make_runnable(cur, prio);
    }
    k.sched.pick_next()
}

/// Makes `next` the running shard: FPU state, address space, RSP0, and the
/// checks on the frame it resumes with. `None` if that frame was unusable
/// (the shard is killed; pick again).
fn switch_to(k: &mut Kernel, next: ShardId) -> Option<*const SaveArea> {
    if k.fpu_owner != Some(next) {
        if let Some(owner) = k.fpu_owner
            && k.shards[owner].alive()
        {
            // SAFETY: the area is 512 bytes, 16-aligned, owned by the shard.
            unsafe { cpu::fxsave(k.shards[owner].fx.0.as_mut_ptr()) };
        }
        let s = &mut k.shards[next];
        let image = if s.fpu_fresh {
            CLEAN_FPU.0.as_ptr()
        } else {
            s.fx.0.as_ptr()
        };
        s.fpu_fresh = false;
        // SAFETY: both images are 16-aligned 512-byte areas written only by
        // fxsave64 or the clean constant (MXCSR reserved bits clear).
        unsafe { cpu::fxrstor(image) };
        k.fpu_owner = Some(next);
    }
    let s = &mut k.shards[next];
    let pml4 = s.space.map(|sp| sp.pml4)?;
    if cpu::cr3() != pml4 {
        // SAFETY: every shard PML4 carries the kernel half.
        unsafe { cpu::write_cr3(pml4) };
    }
    if next != k.current || !k.entered {
        s.stats.switches += 1;
        if k.ibpb {
            // SAFETY: CPUID advertised IBPB (checked in init_cpu).
            unsafe { cpu::wrmsr(MSR_PRED_CMD, 1) };
        }
    }
    // Sanitise what ring 3 gets back: its selectors, a user RIP, safe flags.
    let save = &mut s.save;
    save.cs = u64::from(gdt::USER_CS);
    save.ss = u64::from(gdt::USER_DS);
    save.rflags = (save.rflags & RFLAGS_INTERRUPTED) | RFLAGS_FORCED;
    k.current = next;
    if save.rip >= USER_RIP_END || save.rsp >= config::USER_END {
        report_kill(k, next, 13, 0);
        end_shard(k, next, Ending::Killed(13));
        return None;
    }
    idt::set_save_area(&mut k.shards[next].save);
    if !k.entered {
        k.entered = true;
        cpu::milestone(milestone::FIRST_SHARD);
    }
    Some(&raw const k.shards[next].save)
}

/// Starts the scheduler (from `kmain`, once the manifest's shards are loaded).
pub fn run() -> ! {
    let k = kernel();
    // Start the search at the last slot so slot 0 runs first.
    k.current = MAX_SHARDS - 1;
    let save = schedule(true);
    idt::enter_user(save)
}

/// Prints the profiling table and ends the VM (or halts, with `coco.after=halt`).
fn shutdown(k: &mut Kernel) -> ! {
    k.timer.stop();
    let shown = k.shards.iter().filter(|s| s.state != State::Free).count();
    out()
        .s("gate: ")
        .s(k.gate.as_str())
        .s(", syscall entries ")
        .dec(k.syscall_entries)
        .s(", trap entries ")
        .dec(k.trap_entries)
        .nl();
    // Every shard is gone: frames still in use are the kernel's own (the
    // shared zero page, if fs_map needed it); more would be a leak.
    out()
        .s("frames: ")
        .dec(k.frames.in_use)
        .s(" in use at shutdown (")
        .dec(u64::from(k.zero_frame != 0))
        .s(" kernel), ")
        .dec(k.frames.bad_frees)
        .s(" refused frees, ")
        .dec(k.frames.zeroed)
        .s(" recycled frames zeroed")
        .nl();
    out().s("profile: shards=").dec(shown as u64).nl();
    let mut ok = true;
    for (id, s) in k.shards.iter().enumerate() {
        let State::Dead(ending) = s.state else {
            if s.state != State::Free {
                ok = false; // created, never started
            }
            continue;
        };
        let st = &s.stats;
        let per = st.syscall_cycles.checked_div(st.syscalls).unwrap_or(0);
        let us = k.timer.tsc_to_ns(st.end_tsc.saturating_sub(st.start_tsc)) / 1000;
        let o = out();
        o.s("profile: id=")
            .dec(id as u64)
            .s(" name=")
            .text(s.name());
        o.s(" syscalls=")
            .dec(st.syscalls)
            .s(" cycles_per_syscall=")
            .dec(per);
        o.s(" switches=")
            .dec(st.switches)
            .s(" wall_ms=")
            .dec(us / 1000)
            .s(".");
        let frac = us % 1000;
        o.byte(b'0' + (frac / 100) as u8)
            .byte(b'0' + (frac / 10 % 10) as u8)
            .byte(b'0' + (frac % 10) as u8);
        match ending {
            Ending::Exited(code) => {
                ok &= code == 0;
                o.s(" exit=").dec(code.into())
            }
            Ending::Killed(v) => {
                ok = false;
                o.s(" exit=killed:").dec(v.into())
            }
        };
        o.nl();
    }
    let status = if ok {
        exit::SUCCESS
    } else {
        exit::SHARD_FAILED
    };
    out().s("all shards ended: status ").dec(status.into()).nl();
    match k.after {
        After::Exit => cpu::exit(status),
        After::Halt => cpu::halt_forever(),
    }
}
