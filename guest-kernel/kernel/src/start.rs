//! Starting the shards of the boot manifest: frames from the memory map,
//! the ramdisk's file system, the manifest (`coco.manifest=` or
//! `/boot/shards.toml`, parsed by coconut-core), its channels created, each
//! shard loaded and given its capabilities (handles recorded in
//! `ShardInfo::boot_caps`), the CPU prepared, the tick started, and the
//! scheduler entered. Without a manifest (the default path absent) boot
//! ends as before: `kmain` acts on `coco.after=`.

use core::fmt::Write;

use coconut_abi::cmdline::{MANIFEST, TSC_KHZ};
use coconut_abi::syscall::{Error, rights};
use coconut_abi::{cmdline_value, exit, expand_args};
use coconut_core::captable::Cap;
use coconut_core::manifest::{self, CapSpec};

use crate::cpu;
use crate::ext2::Fs;
use crate::kernel::{self, Kernel, MemObj, kernel};
use crate::loader::{self, Spec};
use crate::physmem::read_boot_info;
use crate::report::BootOptions;
use crate::serial::{Serial, out};
use crate::shard::ShardId;
use crate::timer::DEFAULT_TSC_KHZ;

/// Where the manifest is unless the command line says otherwise.
pub const DEFAULT_MANIFEST: &str = "/boot/shards.toml";
/// Bytes of `ShardInfo::args`.
const ARGS_MAX: usize = 256;
/// Largest manifest read.
const MANIFEST_MAX: usize = 8192;

/// The manifest's bytes (the parsed manifest borrows from here).
static mut MANIFEST_BUF: [u8; MANIFEST_MAX] = [0; MANIFEST_MAX];

fn fail(what: &str, detail: &[u8]) -> ! {
    out().s("shards: ").s(what).text(detail).nl();
    cpu::exit(exit::BAD_MANIFEST)
}

/// Loads and runs the manifest's shards; returns only when there is no
/// manifest at the default path.
pub fn shards(options: &BootOptions) {
    let k = kernel();
    k.after = options.after;
    let explicit = cmdline_value(options.cmdline, MANIFEST);
    let path = explicit.unwrap_or(DEFAULT_MANIFEST);
    let Some((rd_phys, rd_size)) = options.ramdisk else {
        if explicit.is_some() {
            fail("no ramdisk for manifest ", path.as_bytes());
        }
        return;
    };
    let Some(fs) = read_boot_info(rd_phys, rd_size).and_then(Fs::new) else {
        if explicit.is_some() {
            fail("ramdisk is not ext2; manifest ", path.as_bytes());
        }
        return;
    };
    let Ok(inode) = fs.lookup(path.as_bytes()) else {
        if explicit.is_some() {
            fail("manifest not found: ", path.as_bytes());
        }
        return;
    };
    let buf = &raw mut MANIFEST_BUF;
    // SAFETY: boot runs once on one CPU; nothing else uses the buffer.
    let buf = unsafe { &mut *buf };
    if inode.size > MANIFEST_MAX as u64 {
        fail("manifest too large: ", path.as_bytes());
    }
    let n = fs.read(&inode, 0, buf);
    let m = match manifest::parse(&buf[..n]) {
        Ok(m) => m,
        Err(e) => {
            // Rare and fatal: worth core::fmt for the core's message.
            let _ = writeln!(Serial, "shards: {path}: {e}");
            cpu::exit(exit::BAD_MANIFEST)
        }
    };

    k.fs = Some(fs);
    k.ramdisk_phys = rd_phys;
    // Shards see ramdisk pages (mapped text, fs_map); the kernel reaches
    // what they pass it through the frame window, so the ramdisk is in it
    // too (never written: those shard mappings are read-only).
    if !crate::paging::window_map(rd_phys, rd_size) {
        fail("ramdisk beyond the frame window: ", path.as_bytes());
    }
    let excluded = [(rd_phys, rd_phys + rd_size)];
    for &(s, e) in &options.ram[..options.ram_len] {
        k.frames.add_ram(s, e, &excluded);
    }
    out()
        .s("frames: ")
        .dec(k.frames.available())
        .s(" free pages")
        .nl();
    kernel::init_cpu(options.gate);

    let mut chan_ids = [0u32; manifest::MAX_CHANNELS];
    for (i, c) in m.channels().iter().enumerate() {
        match k.chans.create(u64::from(c.capacity), u64::from(c.msg_max)) {
            Ok(id) => chan_ids[i] = id.0,
            Err(_) => fail("cannot create channel ", c.name.as_bytes()),
        }
    }
    let mut ids: [ShardId; manifest::MAX_SHARDS] = [0; manifest::MAX_SHARDS];
    for (i, spec) in m.shards().iter().enumerate() {
        // `@coco.<key>` words in args take the command line's value.
        let mut args = [0u8; ARGS_MAX];
        let Some(args_len) = expand_args(spec.args, options.cmdline, &mut args) else {
            fail(
                "args too long with the command line's values: ",
                spec.name.as_bytes(),
            );
        };
        let load = Spec {
            name: spec.name.as_bytes(),
            path: spec.path.as_bytes(),
            priority: spec.priority,
            pages: spec.pages,
            args: &args[..args_len],
        };
        match loader::load(k, &load) {
            Ok(id) => {
                ids[i] = id;
                out()
                    .s("shard ")
                    .dec(id as u64)
                    .s(" (")
                    .s(spec.name)
                    .s(") loaded from ")
                    .s(spec.path)
                    .nl();
            }
            Err(e) => {
                out()
                    .s("shards: cannot load ")
                    .s(spec.path)
                    .s(": ")
                    .s(e.reason)
                    .nl();
                cpu::exit(exit::BAD_MANIFEST)
            }
        }
    }
    for (i, spec) in m.shards().iter().enumerate() {
        let id = ids[i];
        for (slot, cap) in spec.caps().iter().enumerate() {
            match install(k, id, cap, &chan_ids, &ids) {
                Ok(handle) => loader::set_boot_cap(k.shards[id].info_pa, slot, handle),
                Err(_) => fail("cannot install a capability for ", spec.name.as_bytes()),
            }
        }
        if spec.start {
            kernel::make_runnable(k, id);
            k.shards[id].stats.start_tsc = cpu::rdtsc();
        }
    }

    let tsc_khz = cmdline_value(options.cmdline, TSC_KHZ)
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&v| v > 0);
    let mode = k.timer.start(tsc_khz.unwrap_or(DEFAULT_TSC_KHZ));
    let o = out();
    o.s("timer: lapic ")
        .s(mode)
        .s(", 100 Hz, tsc ")
        .dec(k.timer.tsc_khz)
        .s(" kHz");
    if tsc_khz.is_none() {
        o.s(" (assumed: no coco.tsc_khz)");
    }
    o.nl();
    kernel::run()
}

/// Creates the root capability `spec` names in shard `id`'s table.
fn install(
    k: &mut Kernel,
    id: ShardId,
    spec: &CapSpec,
    chan_ids: &[u32],
    ids: &[ShardId],
) -> Result<u32, Error> {
    let resource = match *spec {
        CapSpec::Factory { .. } | CapSpec::GpuDma { .. } => 0,
        CapSpec::Channel { channel, .. } => {
            u64::from(*chan_ids.get(channel).ok_or(Error::InvalidArgument)?)
        }
        CapSpec::Shard { shard, .. } => *ids.get(shard).ok_or(Error::InvalidArgument)? as u64,
        CapSpec::Irq { line, .. } => u64::from(line),
        CapSpec::Dma { .. } => memory_object(k, MemObj::Dma)?,
        CapSpec::Mmio { base, pages, .. } => memory_object(k, MemObj::Mmio { base, pages })?,
    };
    let _ = rights::ALL;
    k.caps.create(
        id,
        Cap {
            cap_type: spec.cap_type(),
            resource,
            rights: spec.rights(),
        },
    )
}

/// The index of a memory object equal to `obj`, added if new.
fn memory_object(k: &mut Kernel, obj: MemObj) -> Result<u64, Error> {
    if let Some(i) = k.memory.iter().position(|&m| m == obj) {
        return Ok(i as u64);
    }
    let i = k
        .memory
        .iter()
        .position(|&m| m == MemObj::None)
        .ok_or(Error::NoSlots)?;
    k.memory[i] = obj;
    Ok(i as u64)
}
