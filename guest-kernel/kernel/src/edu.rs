//! `coco.test=edu`: drives QEMU's `edu` teaching device, passed through to
//! this guest with VFIO, and reports each step on COM1:
//!
//! ```text
//! edu: found at 00:<slot>.0, BAR0 0x<addr>
//! edu: id 0x010000ed
//! edu: liveness ok
//! edu: factorial 10! = 3628800
//! edu: dma ok 4095 bytes
//! edu: msi vector 0x45 received
//! edu: all tests passed
//! ```
//!
//! or `edu: FAIL <what>` and exit status [`TEST_FAILED`]. The DMA buffers
//! are in the kernel image (below 2 MiB, so inside edu's 28-bit DMA mask)
//! and transfers are 4095 bytes (QEMU 7.2's edu aborts on exactly 4096).
//! Interrupts stay disabled: the MSI is seen as its vector's bit in the
//! LAPIC's IRR, so no IDT entry is needed.

use core::ptr::{read_volatile, write_volatile};

use coconut_abi::cmdline::TEST;
use coconut_abi::{cmdline_value, exit};

use crate::paging::{self, KERNEL_VIRT_OFFSET};
use crate::pci;
use crate::physmem::read_boot_info;
use crate::pvh::{self, START_INFO_V1_SIZE};
use crate::serial::out;

/// Exit status of a failed device test (next to `coconut_abi::exit`'s codes).
pub const TEST_FAILED: u8 = 0x72;

const EDU_VENDOR: u16 = 0x1234;
const EDU_DEVICE: u16 = 0x11e8;
const BAR0_SIZE: u64 = 1 << 20;

const REG_ID: usize = 0x00;
const REG_LIVENESS: usize = 0x04;
const REG_FACTORIAL: usize = 0x08;
const REG_STATUS: usize = 0x20;
const REG_IRQ_STATUS: usize = 0x24;
const REG_IRQ_ACK: usize = 0x64;
const REG_DMA_SRC: usize = 0x80;
const REG_DMA_DST: usize = 0x88;
const REG_DMA_COUNT: usize = 0x90;
const REG_DMA_CMD: usize = 0x98;

const STATUS_COMPUTING: u32 = 1 << 0;
const DMA_START: u32 = 1 << 0;
const DMA_TO_RAM: u32 = 1 << 1;
const DMA_IRQ: u32 = 1 << 2;
const IRQ_DMA_DONE: u32 = 0x100;
/// edu's internal DMA buffer, as the device addresses it.
const EDU_BUFFER: u32 = 0x4_0000;
const DMA_LEN: usize = 4095;

const LAPIC_BASE: u64 = 0xfee0_0000;
const LAPIC_SVR: usize = 0xf0;
const LAPIC_IRR: usize = 0x200;
const SVR_ENABLE: u32 = 1 << 8;
const VECTOR: u8 = 0x45;

/// Polls before a device step counts as hung (each is an MMIO read; the
/// edu DMA timer fires after 100 ms of the emulator's virtual time).
const POLLS: u64 = 200_000_000;

#[repr(C, align(4096))]
struct Page([u8; 4096]);

static mut SOURCE: Page = Page([0; 4096]);
static mut TARGET: Page = Page([0; 4096]);

struct Mmio(*mut u8);

impl Mmio {
    fn read(&self, reg: usize) -> u32 {
        // SAFETY: `reg` is a register offset inside the mapped window and
        // 4-byte aligned; the mapping is uncached device memory.
        unsafe { read_volatile(self.0.add(reg).cast::<u32>()) }
    }

    fn write(&self, reg: usize, value: u32) {
        // SAFETY: as for `read`.
        unsafe { write_volatile(self.0.add(reg).cast::<u32>(), value) }
    }

    fn wait_clear(&self, reg: usize, bits: u32) -> bool {
        (0..POLLS).any(|_| self.read(reg) & bits == 0)
    }
}

fn fail(what: &str) -> u8 {
    out().s("edu: FAIL ").s(what).nl();
    TEST_FAILED
}

/// The command line from the start info (`None` if unreadable).
fn cmdline(start_info_phys: u64) -> Option<&'static str> {
    let raw = read_boot_info(start_info_phys, START_INFO_V1_SIZE as u64)?;
    let info = pvh::parse_start_info(raw).ok()?;
    if info.cmdline_paddr == 0 {
        return None;
    }
    let bytes = read_boot_info(info.cmdline_paddr, 4096)?;
    let bytes = &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())];
    core::str::from_utf8(bytes).ok()
}

/// Runs the test if the command line asks for `coco.test=edu` and returns
/// the exit status; `None` when no test was asked for.
pub fn run_if_requested(start_info_phys: u64) -> Option<u8> {
    let test = cmdline(start_info_phys).and_then(|line| cmdline_value(line, TEST))?;
    if test != "edu" {
        out().s("test: unknown coco.test=").s(test).nl();
        return Some(TEST_FAILED);
    }
    // Interrupts stay off: the MSI is observed in the IRR.
    // SAFETY: `cli` only masks interrupts.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
    Some(run())
}

fn run() -> u8 {
    let Some(dev) = pci::find(EDU_VENDOR, EDU_DEVICE) else {
        return fail("no 1234:11e8 on PCI bus 0");
    };
    let bar0 = u64::from(dev.read32(0x10) & !0xf);
    let digit = |d: u8| b"0123456789abcdef"[usize::from(d & 0xf)];
    out()
        .s("edu: found at 00:")
        .byte(digit(dev.slot >> 4))
        .byte(digit(dev.slot))
        .s(".0, BAR0 ")
        .hex(bar0)
        .nl();
    if bar0 == 0 {
        return fail("BAR0 not placed");
    }
    // Memory decoding and bus mastering (DMA).
    dev.write16(0x04, dev.read16(0x04) | 0b110);
    // SAFETY: BAR0 is edu's 1 MiB register window, below 4 GiB and not RAM.
    let Some(regs) = (unsafe { paging::map_mmio(bar0, BAR0_SIZE) }) else {
        return fail("BAR0 outside the direct map");
    };
    let edu = Mmio(regs);

    let id = edu.read(REG_ID);
    out().s("edu: id ").hex(id.into()).nl();
    if id & 0xff != 0xed {
        return fail("ID register");
    }
    edu.write(REG_LIVENESS, 0x1234_5678);
    if edu.read(REG_LIVENESS) != !0x1234_5678u32 {
        return fail("liveness register");
    }
    out().s("edu: liveness ok").nl();

    edu.write(REG_FACTORIAL, 10);
    if !edu.wait_clear(REG_STATUS, STATUS_COMPUTING) {
        return fail("factorial never finished");
    }
    let fact = edu.read(REG_FACTORIAL);
    out().s("edu: factorial 10! = ").dec(fact.into()).nl();
    if fact != 3_628_800 {
        return fail("factorial value");
    }

    let Some(lapic) = setup_msi(dev) else {
        return fail("no MSI capability");
    };
    match dma(&edu) {
        Ok(()) => out().s("edu: dma ok ").dec(DMA_LEN as u64).s(" bytes").nl(),
        Err(what) => return fail(what),
    };

    let irr = LAPIC_IRR + usize::from(VECTOR / 32) * 0x10;
    let bit = 1u32 << (VECTOR % 32);
    if !(0..POLLS).any(|_| lapic.read(irr) & bit != 0) {
        return fail("MSI never reached the LAPIC");
    }
    if edu.read(REG_IRQ_STATUS) & IRQ_DMA_DONE == 0 {
        return fail("interrupt status lacks DMA done");
    }
    edu.write(REG_IRQ_ACK, IRQ_DMA_DONE);
    out()
        .s("edu: msi vector ")
        .hex(VECTOR.into())
        .s(" received")
        .nl();
    out().s("edu: all tests passed").nl();
    exit::SUCCESS
}

/// Enables the LAPIC and programs edu's MSI to vector [`VECTOR`] on APIC 0.
fn setup_msi(dev: pci::Device) -> Option<Mmio> {
    let cap = dev.capability(pci::CAP_MSI)?;
    // SAFETY: the LAPIC page is device memory at its architectural address.
    let lapic = Mmio(unsafe { paging::map_mmio(LAPIC_BASE, 4096) }?);
    lapic.write(LAPIC_SVR, lapic.read(LAPIC_SVR) | SVR_ENABLE | 0xff);
    let control = dev.read16(cap + 2);
    let is64 = control & (1 << 7) != 0;
    dev.write32(cap + 4, LAPIC_BASE as u32);
    let data_at = if is64 {
        dev.write32(cap + 8, 0);
        cap + 0x0c
    } else {
        cap + 0x08
    };
    dev.write16(data_at, u16::from(VECTOR));
    dev.write16(cap + 2, (control & !0x70) | 1);
    Some(lapic)
}

/// RAM → edu buffer → other RAM, then compares.
fn dma(edu: &Mmio) -> Result<(), &'static str> {
    let source = &raw mut SOURCE;
    let target = &raw mut TARGET;
    // SAFETY: the buffers are only touched here, on the one running CPU;
    // the device writes `TARGET` only between the start and the completion
    // of the second transfer, while nothing reads it.
    unsafe {
        for i in 0..4096 {
            (*source).0[i] = (i as u8).wrapping_mul(31).wrapping_add(7);
            (*target).0[i] = 0;
        }
    }
    let phys = |p: u64| (p - KERNEL_VIRT_OFFSET) as u32;
    let (src, dst) = (phys(source as u64), phys(target as u64));

    edu.write(REG_DMA_SRC, src);
    edu.write(REG_DMA_DST, EDU_BUFFER);
    edu.write(REG_DMA_COUNT, DMA_LEN as u32);
    edu.write(REG_DMA_CMD, DMA_START);
    if !edu.wait_clear(REG_DMA_CMD, DMA_START) {
        return Err("DMA RAM -> edu never finished");
    }
    edu.write(REG_DMA_SRC, EDU_BUFFER);
    edu.write(REG_DMA_DST, dst);
    edu.write(REG_DMA_COUNT, DMA_LEN as u32);
    edu.write(REG_DMA_CMD, DMA_START | DMA_TO_RAM | DMA_IRQ);
    if !edu.wait_clear(REG_DMA_CMD, DMA_START) {
        return Err("DMA edu -> RAM never finished");
    }
    // SAFETY: the device is done with TARGET (its DMA completed above);
    // volatile reads because the compiler cannot see the device's writes.
    let same = (0..4096).all(|i| unsafe {
        let got = read_volatile(&raw const (*target).0[i]);
        let want = if i < DMA_LEN { (*source).0[i] } else { 0 };
        got == want
    });
    if same {
        Ok(())
    } else {
        Err("DMA data mismatch")
    }
}
