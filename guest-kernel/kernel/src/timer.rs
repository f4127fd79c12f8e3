//! Time: the TSC is the clock (its frequency comes from the VMM as
//! `coco.tsc_khz=`), the local APIC timer is the preemption tick.
//!
//! The tick is 100 Hz: every tick costs emulated ring-0 instructions on
//! kvm-pvm. In TSC-deadline mode (when CPUID.1:ECX[24] says the LAPIC has
//! it) each tick arms the next deadline; otherwise the timer runs periodic
//! with a count calibrated against the TSC once at boot.

use crate::cpu;
use crate::idt::{SPURIOUS_VECTOR, TIMER_VECTOR};
use crate::paging;

/// Ticks per second.
pub const HZ: u64 = 100;
const MSR_APIC_BASE: u32 = 0x1b;
const MSR_TSC_DEADLINE: u32 = 0x6e0;
const APIC_EOI: u64 = 0xb0;
const APIC_SVR: u64 = 0xf0;
const APIC_LVT_TIMER: u64 = 0x320;
const APIC_LVT_LINT0: u64 = 0x350;
const APIC_TIMER_INIT: u64 = 0x380;
const APIC_TIMER_CURRENT: u64 = 0x390;
const APIC_TIMER_DIVIDE: u64 = 0x3e0;
const LVT_PERIODIC: u32 = 1 << 17;
const LVT_TSC_DEADLINE: u32 = 2 << 17;
const LVT_MASKED: u32 = 1 << 16;
/// Used when the VMM did not say (e.g. under plain QEMU): a guess, reported.
pub const DEFAULT_TSC_KHZ: u64 = 2_000_000;

/// The clock and timer state.
#[derive(Debug)]
pub struct Timer {
    /// TSC ticks per millisecond.
    pub tsc_khz: u64,
    /// TSC at boot (time 0).
    pub tsc0: u64,
    apic: u64,
    deadline_mode: bool,
    period_tsc: u64,
    /// TSC of the next scheduling tick (hardware or soft).
    next: u64,
}

impl Timer {
    /// A clock that is not started.
    pub const fn new() -> Self {
        Timer {
            tsc_khz: DEFAULT_TSC_KHZ,
            tsc0: 0,
            apic: 0,
            deadline_mode: false,
            period_tsc: 0,
            next: 0,
        }
    }

    /// Nanoseconds since boot.
    pub fn now_ns(&self) -> u64 {
        self.tsc_to_ns(cpu::rdtsc().wrapping_sub(self.tsc0))
    }

    /// Converts TSC ticks to nanoseconds (without 128-bit arithmetic).
    pub fn tsc_to_ns(&self, ticks: u64) -> u64 {
        let khz = self.tsc_khz.max(1);
        (ticks / khz).saturating_mul(1_000_000) + (ticks % khz) * 1_000_000 / khz
    }

    /// Converts nanoseconds to TSC ticks (saturating).
    pub fn ns_to_tsc(&self, ns: u64) -> u64 {
        (ns / 1_000_000).saturating_mul(self.tsc_khz) + (ns % 1_000_000) * self.tsc_khz / 1_000_000
    }

    fn write(&self, reg: u64, value: u32) {
        // SAFETY: `apic` maps the local APIC's register page (uncached);
        // `reg` is a register offset inside it.
        unsafe { ((self.apic + reg) as *mut u32).write_volatile(value) }
    }

    fn read(&self, reg: u64) -> u32 {
        // SAFETY: as for `write`.
        unsafe { ((self.apic + reg) as *const u32).read_volatile() }
    }

    /// Maps and enables the local APIC and starts the tick. Returns the
    /// mode's name for the boot report.
    ///
    /// The legacy 8259 PICs are remapped away from the exception vectors
    /// and masked first: firmware (SeaBIOS under `qemu -kernel`) leaves them
    /// delivering the PIT on vector 8, which would look like a double fault
    /// the first time a shard runs with interrupts on.
    pub fn start(&mut self, tsc_khz: u64) -> &'static str {
        disable_pic();
        self.tsc_khz = tsc_khz.max(1);
        self.tsc0 = cpu::rdtsc();
        self.period_tsc = self.tsc_khz * 1000 / HZ;
        // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU with a LAPIC.
        let base = unsafe { cpu::rdmsr(MSR_APIC_BASE) } & paging::ADDR_MASK;
        self.apic = paging::map_device_page(0, base);
        self.write(APIC_SVR, 0x100 | SPURIOUS_VECTOR as u32);
        // No legacy (ExtINT) interrupts through LINT0: the PICs are masked
        // and device lines come through the IOAPIC.
        self.write(APIC_LVT_LINT0, LVT_MASKED);
        let (_, _, ecx, _) = cpu::cpuid(1, 0);
        self.deadline_mode = ecx & (1 << 24) != 0;
        if self.deadline_mode {
            self.write(APIC_LVT_TIMER, LVT_TSC_DEADLINE | TIMER_VECTOR as u32);
            self.rearm();
            "tsc-deadline"
        } else {
            // Calibrate: count down for ~1 ms of TSC.
            self.write(APIC_TIMER_DIVIDE, 0xb); // divide by 1
            self.write(APIC_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
            self.write(APIC_TIMER_INIT, u32::MAX);
            let t0 = cpu::rdtsc();
            while cpu::rdtsc().wrapping_sub(t0) < self.tsc_khz {}
            let per_ms = u64::from(u32::MAX - self.read(APIC_TIMER_CURRENT));
            let count = (per_ms * 1000 / HZ).clamp(1, u64::from(u32::MAX)) as u32;
            self.write(APIC_LVT_TIMER, LVT_PERIODIC | TIMER_VECTOR as u32);
            self.write(APIC_TIMER_INIT, count);
            self.next = cpu::rdtsc() + self.period_tsc;
            "periodic"
        }
    }

    /// Signals end-of-interrupt to the local APIC.
    pub fn eoi(&self) {
        self.write(APIC_EOI, 0);
    }

    /// Acknowledges the tick and arms the next one.
    pub fn tick(&mut self) {
        self.write(APIC_EOI, 0);
        if self.deadline_mode {
            self.rearm();
        } else {
            self.next = cpu::rdtsc() + self.period_tsc;
        }
    }

    fn rearm(&mut self) {
        self.next = cpu::rdtsc() + self.period_tsc;
        // SAFETY: the LAPIC is in TSC-deadline mode; the MSR exists.
        unsafe { cpu::wrmsr(MSR_TSC_DEADLINE, self.next) };
    }

    /// Whether a tick is due (a soft tick, checked when leaving the kernel).
    ///
    /// kvm-pvm delivers a pending interrupt only after a few hundred ring-3
    /// instructions, so a shard that spends its time in system calls would
    /// never see its tick; the kernel checks the clock itself on the way
    /// out instead. The hardware tick still comes and re-arms.
    pub fn take_due(&mut self) -> bool {
        let now = cpu::rdtsc();
        if self.next != 0 && now >= self.next {
            self.next = now + self.period_tsc;
            return true;
        }
        false
    }

    /// Stops the tick (at shutdown).
    pub fn stop(&self) {
        self.write(APIC_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
    }
}

/// Remaps both 8259 PICs to vectors [`PIC_VECTOR_BASE`].. (whose gates only
/// return) and masks every line.
fn disable_pic() {
    const PIC1: u16 = 0x20;
    const PIC2: u16 = 0xa0;
    // ICW1 (init, ICW4 follows), ICW2 (vector base), ICW3 (cascade on
    // IRQ2), ICW4 (8086 mode), then mask everything.
    for (cmd, base, cascade) in [(PIC1, PIC_VECTOR_BASE, 4u8), (PIC2, PIC_VECTOR_BASE + 8, 2)] {
        cpu::outb(cmd, 0x11);
        cpu::outb(cmd + 1, base);
        cpu::outb(cmd + 1, cascade);
        cpu::outb(cmd + 1, 0x01);
        cpu::outb(cmd + 1, 0xff);
    }
}

/// Where the (masked) legacy PICs' vectors are: only their spurious
/// interrupts can arrive, and those gates just return.
pub const PIC_VECTOR_BASE: u8 = 0xe0;
