//! Starting the shards of the boot manifest: frames from the memory map,
//! the ramdisk's file system, the manifest (`coco.manifest=` or
//! `/boot/shards.toml`), each shard loaded, the CPU prepared, the tick
//! started, and the scheduler entered. Without a manifest (the default path
//! absent) boot ends as before: `kmain` acts on `coco.after=`.

use coconut_abi::cmdline::{MANIFEST, TSC_KHZ};
use coconut_abi::{cmdline_value, exit};

use crate::cpu;
use crate::ext2::Fs;
use crate::kernel::{self, kernel};
use crate::loader::{self, Spec};
use crate::manifest;
use crate::physmem::read_boot_info;
use crate::report::BootOptions;
use crate::serial::out;
use crate::shard::State;
use crate::timer::DEFAULT_TSC_KHZ;

/// Where the manifest is unless the command line says otherwise.
pub const DEFAULT_MANIFEST: &str = "/boot/shards.toml";
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
    // SAFETY: boot runs once on one CPU; nothing else uses the buffer.
    let buf = unsafe { &mut *(&raw mut MANIFEST_BUF) };
    if inode.size > MANIFEST_MAX as u64 {
        fail("manifest too large: ", path.as_bytes());
    }
    let n = fs.read(&inode, 0, buf);
    let m = match manifest::parse(&buf[..n]) {
        Ok(m) => m,
        Err(e) => {
            out()
                .s("shards: ")
                .s(path)
                .s(":")
                .dec(e.line as u64)
                .s(": ")
                .s(e.reason)
                .nl();
            cpu::exit(exit::BAD_MANIFEST)
        }
    };

    k.fs = Some(fs);
    k.ramdisk_phys = rd_phys;
    let excluded = [(rd_phys, rd_phys + rd_size)];
    for &(s, e) in &options.ram[..options.ram_len] {
        k.frames.add_ram(s, e, &excluded);
    }
    out()
        .s("frames: ")
        .dec(k.frames.available)
        .s(" free pages")
        .nl();
    kernel::init_cpu(options.gate);

    for spec in &m.shards[..m.len] {
        let load = Spec {
            name: spec.name,
            path: spec.path,
            priority: spec.priority,
            pages: spec.pages,
            args: spec.args,
        };
        match loader::load(k, &load) {
            Ok(id) => {
                out()
                    .s("shard ")
                    .dec(id as u64)
                    .s(" (")
                    .text(spec.name)
                    .s(") loaded from ")
                    .text(spec.path)
                    .nl();
                if spec.start {
                    k.shards[id].state = State::Runnable;
                    k.shards[id].stats.start_tsc = cpu::rdtsc();
                }
            }
            Err(e) => {
                out()
                    .s("shards: cannot load ")
                    .text(spec.path)
                    .s(": ")
                    .s(e.reason)
                    .nl();
                cpu::exit(exit::BAD_MANIFEST)
            }
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
