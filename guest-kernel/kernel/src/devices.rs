//! User-space drivers: the kernel only maps and routes.
//!
//! * `dma_alloc` gives physically contiguous, zeroed frames (charged to
//!   the page quota), mapped R+W+NX in the device window, and tells the
//!   holder their guest-physical address (needs a MEMORY capability with
//!   MEMORY_DMA).
//! * `mmio_map` maps the MMIO window a MEMORY capability names, uncached
//!   and NX, writable only with MEMORY_WRITE. Such regions are recorded as
//!   `Kind::Device` (and their leaves marked DEVICE): the kernel refuses
//!   user pointers into them.
//!
//! Window addresses come from the shard's coconut-core `VmSpace` (lowest
//! gap, one guard page after each window).
//! * `irq_bind` routes an IOAPIC line (IRQ capability with IRQ_RECEIVE) to
//!   a channel (SEND): each interrupt masks the line and queues a one-byte
//!   notification (the line number); `irq_ack` unmasks it. A notification
//!   that finds the channel full stays pending and is queued at the ack,
//!   so none is lost (the line is masked meanwhile).

use coconut_abi::syscall::{CAP_SLOTS, Error, MMAP_PAGES_MAX, cap_type, rights};
use coconut_core::channel::ChannelId;
use coconut_core::perms::Perms;
use coconut_core::vmspace::{Kind, Window};

use crate::kernel::{Kernel, MemObj};
use crate::paging::{self, PAGE_SIZE};
use crate::shard::ShardId;
use crate::syscalls::{Args, Ret, user};

/// IOAPIC lines the kernel routes (vectors IRQ_VECTOR_BASE + line).
pub const IRQ_LINES: usize = 24;
/// The vector of IOAPIC line 0.
pub const IRQ_VECTOR_BASE: u64 = 0x30;
const IOAPIC_BASE: u64 = 0xfec0_0000;
/// Device-table slot of the IOAPIC page (slot 0 is the LAPIC).
const IOAPIC_SLOT: usize = 1;

/// One routed line.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// Channel the notifications go to.
    pub chan: u32,
    /// An interrupt arrived while the channel was full.
    pub pending: bool,
}

/// The routing table and the IOAPIC mapping.
#[derive(Debug)]
pub struct Irqs {
    routes: [Option<Route>; IRQ_LINES],
    ioapic: u64,
}

impl Irqs {
    /// Nothing routed.
    pub const fn new() -> Self {
        Irqs {
            routes: [None; IRQ_LINES],
            ioapic: 0,
        }
    }

    /// Whether any line is routed to a channel (an interrupt may wake a shard).
    pub fn any_routed(&self) -> bool {
        self.routes.iter().any(Option::is_some)
    }

    fn write(&mut self, reg: u32, value: u32) {
        if self.ioapic == 0 {
            self.ioapic = paging::map_device_page(IOAPIC_SLOT, IOAPIC_BASE);
        }
        // SAFETY: the IOAPIC's register page is mapped uncached; IOREGSEL
        // at +0 selects, IOWIN at +0x10 carries the value.
        unsafe {
            (self.ioapic as *mut u32).write_volatile(reg);
            ((self.ioapic + 0x10) as *mut u32).write_volatile(value);
        }
    }

    /// Programs line `line` to the boot CPU, edge, active high; masked or not.
    fn program(&mut self, line: usize, masked: bool) {
        let low = (IRQ_VECTOR_BASE as u32 + line as u32) | if masked { 1 << 16 } else { 0 };
        self.write(0x11 + 2 * line as u32, 0); // destination APIC 0
        self.write(0x10 + 2 * line as u32, low);
    }
}

/// Finds a MEMORY capability with MEMORY_DMA in the caller's table.
fn dma_right(k: &Kernel, id: ShardId) -> Result<(), Error> {
    let mut seen_memory = false;
    for h in 0..CAP_SLOTS as u64 {
        if let Ok(c) = k.caps.get(id, h)
            && c.cap_type == cap_type::MEMORY
        {
            seen_memory = true;
            if c.rights & rights::MEMORY_DMA != 0
                && k.memory.get(c.resource as usize) == Some(&MemObj::Dma)
            {
                return Ok(());
            }
        }
    }
    Err(if seen_memory {
        Error::NoRight
    } else {
        Error::WrongType
    })
}

pub fn sys_dma_alloc(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let (pages, out) = (a.a[0], a.a[1]);
    dma_right(k, id)?;
    if pages == 0 || pages > MMAP_PAGES_MAX {
        return Err(Error::InvalidArgument);
    }
    let out_slice = user(k, id, out, 8, true)?;
    let s = &mut k.shards[id];
    let space = s.space.ok_or(Error::BadAddress)?;
    s.vm.charge(pages)?;
    let Some(pa) = k.frames.alloc_contiguous(pages) else {
        k.shards[id].vm.uncharge(pages);
        return Err(Error::NoMemory);
    };
    let va = match k.shards[id]
        .vm
        .map_in_window(Window::Device, pages, Perms::RW, Kind::Dma)
    {
        Ok(va) => va,
        Err(e) => {
            for i in 0..pages {
                k.frames.free(pa + i * PAGE_SIZE);
            }
            k.shards[id].vm.uncharge(pages);
            return Err(e.into());
        }
    };
    // From here the frames are the shard's (recorded as a DMA region):
    // whatever got mapped is freed with the space.
    space.map(&mut k.frames, va, pages, Perms::RW, true, |_, i| {
        Ok(pa + i * PAGE_SIZE)
    })?;
    out_slice.write_from(&pa.to_le_bytes());
    Ok(Ret::Value(va))
}

pub fn sys_mmio_map(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let cap = k.caps.get(id, a.a[0])?;
    if cap.cap_type != cap_type::MEMORY {
        return Err(Error::WrongType);
    }
    let Some(&MemObj::Mmio { base, pages }) = k.memory.get(cap.resource as usize) else {
        return Err(Error::WrongType);
    };
    if cap.rights & (rights::MEMORY_READ | rights::MEMORY_WRITE) == 0 {
        return Err(Error::NoRight);
    }
    let write = cap.rights & rights::MEMORY_WRITE != 0;
    let s = &mut k.shards[id];
    let space = s.space.ok_or(Error::BadAddress)?;
    let perms = if write { Perms::RW } else { Perms::R };
    let va =
        s.vm.map_in_window(Window::Device, pages, perms, Kind::Device)?;
    space.map_device(&mut k.frames, va, base, pages, write)?;
    Ok(Ret::Value(va))
}

/// The line an IRQ capability names (with IRQ_RECEIVE).
fn line(k: &Kernel, id: ShardId, handle: u64) -> Result<usize, Error> {
    let line = k
        .caps
        .lookup(id, handle, cap_type::IRQ, rights::IRQ_RECEIVE)? as usize;
    if line >= IRQ_LINES {
        return Err(Error::NoDevice);
    }
    Ok(line)
}

pub fn sys_irq_bind(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let line = line(k, id, a.a[0])?;
    let chan = k.caps.lookup(id, a.a[1], cap_type::CHANNEL, rights::SEND)? as u32;
    if k.irqs.routes[line].is_some() {
        return Err(Error::Already);
    }
    k.irqs.routes[line] = Some(Route {
        chan,
        pending: false,
    });
    k.irqs.program(line, false);
    Ok(Ret::Value(0))
}

pub fn sys_irq_ack(k: &mut Kernel, id: ShardId, a: &Args) -> Result<Ret, Error> {
    let line = line(k, id, a.a[0])?;
    let Some(route) = k.irqs.routes[line] else {
        return Err(Error::InvalidArgument);
    };
    if route.pending {
        if k.chans
            .try_send(ChannelId(route.chan), &[line as u8])
            .is_err()
        {
            return Ok(Ret::Value(0)); // still full: stays masked and pending
        }
        k.irqs.routes[line] = Some(Route {
            pending: false,
            ..route
        });
        crate::ipc::pump(k, route.chan);
    }
    k.irqs.program(line, false);
    Ok(Ret::Value(0))
}

/// An interrupt on `line` (from ring 3 or idle): mask it, notify the
/// bound channel, acknowledge the LAPIC.
pub fn interrupt(k: &mut Kernel, line: usize) {
    if let Some(route) = k.irqs.routes.get(line).copied().flatten() {
        k.irqs.program(line, true);
        if k.chans
            .try_send(ChannelId(route.chan), &[line as u8])
            .is_ok()
        {
            crate::ipc::pump(k, route.chan);
        } else {
            k.irqs.routes[line] = Some(Route {
                pending: true,
                ..route
            });
        }
    }
    k.timer.eoi();
}
