//! Linux boot (`Documentation/arch/x86/boot.rst`): load a bzImage at 1 MiB,
//! place the initrd, describe the machine in the zero page (`boot_params`),
//! and enter through the **64-bit boot protocol**.
//!
//! Why the 64-bit entry: it needs no real-mode setup code and no 32-bit
//! trampoline, only long mode on an identity map the VMM builds here (2 MiB
//! pages over the first 4 GiB, which holds the kernel, zero page, command
//! line and initrd), RIP = load address + 0x200 (`startup_64`) and RSI = the
//! zero page. Every bzImage since boot protocol 2.12 that sets
//! `XLF_KERNEL_64` has it; older ones are refused with a clear error.
//!
//! The image is loaded with rust-vmm's `linux-loader` (`BzImage`); the zero
//! page is written with its `LinuxBootConfigurator`. The fixed addresses
//! (zero page, page tables, GDT) are in `arch/layout.rs`, checked there at
//! compile time against the PVH structures and the ACPI area.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::KernelLoader;
use linux_loader::loader::bootparam::{
    CAN_USE_HEAP, E820_MAX_ENTRIES_ZEROPAGE, XLF_KERNEL_64, boot_e820_entry, boot_params,
    setup_header,
};
use linux_loader::loader::bzimage::BzImage;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::arch::layout::{
    BOOT_IDENTITY_GIB, BOOT_PD, BOOT_PDPT, BOOT_PML4, CMDLINE, CMDLINE_MAX, HIMEM_START,
    LINUX_BOOT_GDT, MapEntry, MemoryLayout, ZERO_PAGE,
};
use crate::arch::regs::LINUX_GDT_ENTRIES;

/// `setup_header.header`: "HdrS".
pub const HDR_MAGIC: u32 = 0x5372_6448;
/// `setup_header.boot_flag`.
pub const BOOT_FLAG: u16 = 0xaa55;
/// Offset of the setup header in the image (and in the zero page).
pub const SETUP_HEADER_OFFSET: u64 = 0x1f1;
/// The oldest boot protocol with the 64-bit entry (2.12).
pub const MIN_PROTOCOL: u16 = 0x020c;
/// `type_of_loader`: an unregistered loader.
pub const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// Offset of the 64-bit entry from the load address.
pub const ENTRY_64_OFFSET: u64 = 0x200;
/// `heap_end_ptr` (relative to the real-mode code; the 64-bit entry ignores
/// it, but CAN_USE_HEAP promises a sane value).
const HEAP_END: u16 = 0xfe00;
const PAGE: u64 = 4096;
const TWO_MIB: u64 = 2 << 20;
/// Page-table entry bits.
const PTE_PRESENT: u64 = 1;
const PTE_WRITE: u64 = 1 << 1;
const PTE_HUGE: u64 = 1 << 7;

/// Errors of the Linux loader.
#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    /// The file is not a bzImage (no "HdrS" setup header).
    #[error(
        "the kernel is not a Linux bzImage (no \"HdrS\" setup header at offset 0x202); \
         for an ELF guest use --kind coconut"
    )]
    NotBzImage,
    /// The image's boot protocol has no 64-bit entry.
    #[error(
        "the bzImage speaks boot protocol {major}.{minor:02} without the 64-bit entry \
         (XLF_KERNEL_64); coco-vmm needs protocol 2.12 or later on a 64-bit kernel"
    )]
    No64BitEntry {
        /// Protocol major version.
        major: u16,
        /// Protocol minor version.
        minor: u16,
    },
    /// Reading the image failed.
    #[error("cannot read the kernel image: {0}")]
    Read(std::io::Error),
    /// linux-loader refused the image.
    #[error("cannot load the bzImage: {0}")]
    Load(#[from] linux_loader::loader::Error),
    /// The kernel's working area does not fit in low RAM.
    #[error(
        "the kernel needs memory up to {end:#x} (its preferred address + init_size) but \
         low RAM ends at \
         {ram_end:#x}; give the guest more memory"
    )]
    KernelTooBig {
        /// End of the kernel's working area.
        end: u64,
        /// End of low RAM.
        ram_end: u64,
    },
    /// The initrd does not fit between the kernel and its highest address.
    #[error(
        "the initrd ({size} bytes) does not fit in guest memory: {free} bytes are free \
         between the kernel and the initrd limit {limit:#x}; give the guest more memory"
    )]
    InitrdTooBig {
        /// Its size.
        size: u64,
        /// Room there was.
        free: u64,
        /// The highest address it may reach.
        limit: u64,
    },
    /// Reading the initrd failed.
    #[error("cannot read the initrd: {0}")]
    InitrdRead(String),
    /// The command line is too long for the kernel or contains a NUL.
    #[error("the kernel command line must be at most {max} bytes and contain no NUL")]
    BadCmdline {
        /// The longest the kernel (and coco-vmm) accepts.
        max: usize,
    },
    /// The memory map has too many entries for the zero page.
    #[error("the memory map has more than {E820_MAX_ENTRIES_ZEROPAGE} entries")]
    MemmapTooLong,
    /// Writing to guest memory failed.
    #[error("cannot write Linux boot information: {0}")]
    Write(String),
}

/// Where the kernel and initrd landed.
#[derive(Clone, Copy, Debug)]
pub struct LoadedLinux {
    /// The setup header read from the image (code32_start updated).
    pub header: setup_header,
    /// Load address of the protected-mode kernel.
    pub load_addr: u64,
    /// One past the kernel's working area (max(load address, pref_address)
    /// + init_size).
    pub end: u64,
}

/// The initrd in guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacedInitrd {
    /// Guest-physical address (page aligned).
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Whether `file` starts like a bzImage ("HdrS" at 0x202, 0xAA55 at 0x1FE).
/// Leaves the file position at 0.
pub fn is_bzimage(file: &mut File) -> Result<bool, LinuxError> {
    let mut buf = [0u8; 8];
    file.seek(SeekFrom::Start(0x1fe))
        .map_err(LinuxError::Read)?;
    let ok = match file.read_exact(&mut buf) {
        Ok(()) => {
            u16::from_le_bytes([buf[0], buf[1]]) == BOOT_FLAG
                && u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) == HDR_MAGIC
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(LinuxError::Read(e)),
    };
    file.seek(SeekFrom::Start(0)).map_err(LinuxError::Read)?;
    Ok(ok)
}

/// Loads a bzImage's protected-mode kernel at 1 MiB.
pub fn load_kernel(
    mem: &GuestMemoryMmap,
    layout: &MemoryLayout,
    kernel: &mut File,
) -> Result<LoadedLinux, LinuxError> {
    if !is_bzimage(kernel)? {
        return Err(LinuxError::NotBzImage);
    }
    let result = BzImage::load(
        mem,
        Some(GuestAddress(HIMEM_START)),
        kernel,
        Some(GuestAddress(HIMEM_START)),
    )?;
    let Some(header) = result.setup_header else {
        return Err(LinuxError::NotBzImage);
    };
    let (version, xloadflags) = (header.version, header.xloadflags);
    if version < MIN_PROTOCOL || xloadflags & XLF_KERNEL_64 == 0 {
        return Err(LinuxError::No64BitEntry {
            major: version >> 8,
            minor: version & 0xff,
        });
    }
    // A relocatable kernel loaded below its preferred address decompresses
    // itself there (LOAD_PHYSICAL_ADDR, 16 MiB on distribution kernels) and
    // needs init_size bytes from it.
    let base = HIMEM_START.max(header.pref_address);
    let end = base
        .saturating_add(u64::from(header.init_size))
        .max(result.kernel_end);
    if end > layout.low_ram_end() {
        return Err(LinuxError::KernelTooBig {
            end,
            ram_end: layout.low_ram_end(),
        });
    }
    Ok(LoadedLinux {
        header,
        load_addr: HIMEM_START,
        end,
    })
}

/// Places the initrd as high as it may go: below the top of low RAM and
/// `initrd_addr_max`, page aligned, never below `floor` (the kernel's end).
pub fn place_initrd(
    mem: &GuestMemoryMmap,
    layout: &MemoryLayout,
    initrd_addr_max: u32,
    floor: u64,
    initrd: &mut File,
) -> Result<PlacedInitrd, LinuxError> {
    let size = initrd
        .metadata()
        .map_err(|e| LinuxError::InitrdRead(e.to_string()))?
        .len();
    let floor = floor.div_ceil(PAGE) * PAGE;
    // initrd_addr_max is the highest address of the last byte.
    let limit = layout
        .low_ram_end()
        .min(u64::from(initrd_addr_max).saturating_add(1));
    let free = limit.saturating_sub(floor);
    if size > free {
        return Err(LinuxError::InitrdTooBig { size, free, limit });
    }
    let addr = (limit - size) / PAGE * PAGE;
    if addr < floor {
        return Err(LinuxError::InitrdTooBig { size, free, limit });
    }
    initrd
        .seek(SeekFrom::Start(0))
        .map_err(|e| LinuxError::InitrdRead(e.to_string()))?;
    mem.read_exact_volatile_from(GuestAddress(addr), initrd, size as usize)
        .map_err(|e| LinuxError::InitrdRead(e.to_string()))?;
    Ok(PlacedInitrd { addr, size })
}

/// The zero page for `header` (from the image), the command line at
/// [`CMDLINE`], the initrd, the memory map and the RSDP.
pub fn zero_page(
    header: &setup_header,
    initrd: Option<PlacedInitrd>,
    memmap: &[MapEntry],
    rsdp: u64,
) -> Result<boot_params, LinuxError> {
    if memmap.len() > E820_MAX_ENTRIES_ZEROPAGE {
        return Err(LinuxError::MemmapTooLong);
    }
    let mut params = boot_params {
        hdr: *header,
        ..Default::default()
    };
    params.hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    params.hdr.loadflags |= CAN_USE_HEAP;
    params.hdr.heap_end_ptr = HEAP_END;
    params.hdr.cmd_line_ptr = CMDLINE as u32;
    if let Some(initrd) = initrd {
        // Low RAM ends below 4 GiB, so both fit in 32 bits.
        params.hdr.ramdisk_image = initrd.addr as u32;
        params.hdr.ramdisk_size = initrd.size as u32;
    }
    params.acpi_rsdp_addr = rsdp;
    params.e820_entries = memmap.len() as u8;
    for (slot, e) in params.e820_table.iter_mut().zip(memmap) {
        *slot = boot_e820_entry {
            addr: e.start,
            size: e.len,
            r#type: e.kind as u32,
        };
    }
    Ok(params)
}

/// The identity map the 64-bit entry runs on, as (guest address, page)
/// pairs: PML4 → one PDPT → [`BOOT_IDENTITY_GIB`] page directories of
/// 2 MiB pages.
pub fn identity_page_tables() -> Vec<(u64, Vec<u8>)> {
    let table = |entries: &[u64]| -> Vec<u8> {
        let mut page = vec![0u8; PAGE as usize];
        for (i, e) in entries.iter().enumerate() {
            page[i * 8..i * 8 + 8].copy_from_slice(&e.to_le_bytes());
        }
        page
    };
    let mut pages = vec![(BOOT_PML4, table(&[BOOT_PDPT | PTE_PRESENT | PTE_WRITE]))];
    let pdpt: Vec<u64> = (0..BOOT_IDENTITY_GIB)
        .map(|g| (BOOT_PD + g * PAGE) | PTE_PRESENT | PTE_WRITE)
        .collect();
    pages.push((BOOT_PDPT, table(&pdpt)));
    for g in 0..BOOT_IDENTITY_GIB {
        let pd: Vec<u64> = (0..512u64)
            .map(|i| ((g * 512 + i) * TWO_MIB) | PTE_PRESENT | PTE_WRITE | PTE_HUGE)
            .collect();
        pages.push((BOOT_PD + g * PAGE, table(&pd)));
    }
    pages
}

/// Writes the command line, zero page, identity map and boot GDT. Returns
/// the zero page's address (RSI at entry).
pub fn write_boot_info(
    mem: &GuestMemoryMmap,
    header: &setup_header,
    cmdline: &str,
    initrd: Option<PlacedInitrd>,
    memmap: &[MapEntry],
    rsdp: u64,
) -> Result<u64, LinuxError> {
    // cmdline_size is the longest line the kernel takes, NUL excluded.
    let max = (header.cmdline_size as usize).min(CMDLINE_MAX - 1);
    if cmdline.len() > max || cmdline.as_bytes().contains(&0) {
        return Err(LinuxError::BadCmdline { max });
    }
    let write = |bytes: &[u8], at: u64| {
        mem.write_slice(bytes, GuestAddress(at))
            .map_err(|e| LinuxError::Write(e.to_string()))
    };
    let mut line = cmdline.as_bytes().to_vec();
    line.push(0);
    write(&line, CMDLINE)?;
    for (at, page) in identity_page_tables() {
        write(&page, at)?;
    }
    let gdt: Vec<u8> = LINUX_GDT_ENTRIES
        .iter()
        .flat_map(|e| e.to_le_bytes())
        .collect();
    write(&gdt, LINUX_BOOT_GDT)?;
    let params = zero_page(header, initrd, memmap, rsdp)?;
    let boot = BootParams::new(&params, GuestAddress(ZERO_PAGE));
    LinuxBootConfigurator::write_bootparams::<GuestMemoryMmap>(&boot, mem)
        .map_err(|e| LinuxError::Write(e.to_string()))?;
    Ok(ZERO_PAGE)
}

/// The 64-bit entry point of a kernel loaded at `load_addr`.
pub fn entry_point(load_addr: u64) -> u64 {
    load_addr + ENTRY_64_OFFSET
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::layout::MIB;
    use std::io::Write;

    fn memory(layout: &MemoryLayout) -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&layout.ram_regions()).unwrap()
    }

    fn read<T: vm_memory::ByteValued>(mem: &GuestMemoryMmap, at: u64) -> T {
        mem.read_obj(GuestAddress(at)).unwrap()
    }

    /// A minimal bzImage: one setup sector plus the boot sector, protocol
    /// 2.15, 64-bit entry, `payload` as the protected-mode kernel.
    fn fake_bzimage(version: u16, xloadflags: u16, payload: &[u8]) -> File {
        let mut img = vec![0u8; 2 * 512];
        img[0x1f1] = 1; // setup_sects
        img[0x1fe..0x200].copy_from_slice(&BOOT_FLAG.to_le_bytes());
        img[0x202..0x206].copy_from_slice(&HDR_MAGIC.to_le_bytes());
        img[0x206..0x208].copy_from_slice(&version.to_le_bytes());
        img[0x211] = 1; // loadflags: LOADED_HIGH
        img[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes()); // code32_start
        img[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
        img[0x236..0x238].copy_from_slice(&xloadflags.to_le_bytes());
        img[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes()); // cmdline_size
        img[0x258..0x260].copy_from_slice(&(2 * MIB).to_le_bytes()); // pref_address
        img[0x260..0x264].copy_from_slice(&(4 * MIB as u32).to_le_bytes()); // init_size
        img.extend_from_slice(payload);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&img).unwrap();
        f.rewind().unwrap();
        f
    }

    #[test]
    fn a_bzimage_is_loaded_at_one_mib_with_its_header() {
        let layout = MemoryLayout::new(32 * MIB).unwrap();
        let mem = memory(&layout);
        let mut f = fake_bzimage(0x020f, XLF_KERNEL_64, b"KERNEL!!");
        let k = load_kernel(&mem, &layout, &mut f).unwrap();
        assert_eq!(k.load_addr, 0x10_0000);
        assert_eq!(k.end, 6 * MIB, "pref_address + init_size");
        assert_eq!(entry_point(k.load_addr), 0x10_0200);
        let mut buf = [0u8; 8];
        mem.read_slice(&mut buf, GuestAddress(0x10_0000)).unwrap();
        assert_eq!(&buf, b"KERNEL!!");
        assert_eq!({ k.header.initrd_addr_max }, 0x7fff_ffff);
    }

    #[test]
    fn non_bzimages_and_old_protocols_are_clear_errors() {
        let layout = MemoryLayout::new(32 * MIB).unwrap();
        let mem = memory(&layout);
        let mut junk = tempfile::tempfile().unwrap();
        junk.write_all(&[0x7f, b'E', b'L', b'F']).unwrap();
        junk.write_all(&[0u8; 2000]).unwrap();
        let err = load_kernel(&mem, &layout, &mut junk).unwrap_err();
        assert!(matches!(err, LinuxError::NotBzImage), "{err}");
        assert!(err.to_string().contains("not a Linux bzImage"));
        let mut empty = tempfile::tempfile().unwrap();
        assert!(matches!(
            load_kernel(&mem, &layout, &mut empty),
            Err(LinuxError::NotBzImage)
        ));
        let mut old = fake_bzimage(0x020a, 0, b"x");
        let err = load_kernel(&mem, &layout, &mut old).unwrap_err();
        assert!(
            matches!(
                err,
                LinuxError::No64BitEntry {
                    major: 2,
                    minor: 10
                }
            ),
            "{err}"
        );
        let mut no64 = fake_bzimage(0x020f, 0, b"x");
        assert!(matches!(
            load_kernel(&mem, &layout, &mut no64),
            Err(LinuxError::No64BitEntry { .. })
        ));
        // pref_address + init_size beyond RAM.
        let small = MemoryLayout::new(5 * MIB).unwrap();
        let mut f = fake_bzimage(0x020f, XLF_KERNEL_64, b"x");
        assert!(matches!(
            load_kernel(&memory(&small), &small, &mut f),
            Err(LinuxError::KernelTooBig { .. })
        ));
    }

    #[test]
    fn zero_page_fields_are_where_the_boot_protocol_says() {
        let layout = MemoryLayout::new(64 * MIB).unwrap();
        let mem = memory(&layout);
        let mut f = fake_bzimage(0x020f, XLF_KERNEL_64, b"k");
        let k = load_kernel(&mem, &layout, &mut f).unwrap();
        let initrd = PlacedInitrd {
            addr: 0x300_0000,
            size: 1234,
        };
        let map = layout.memory_map();
        let at = write_boot_info(
            &mem,
            &k.header,
            "console=ttyS0",
            Some(initrd),
            &map,
            0xe0000,
        )
        .unwrap();
        assert_eq!(at, ZERO_PAGE);
        let z = ZERO_PAGE;
        assert_eq!(read::<u64>(&mem, z + 0x070), 0xe0000, "acpi_rsdp_addr");
        assert_eq!(read::<u8>(&mem, z + 0x1e8), 4, "e820_entries");
        assert_eq!(read::<u16>(&mem, z + 0x1fe), BOOT_FLAG);
        assert_eq!(read::<u32>(&mem, z + 0x202), HDR_MAGIC);
        assert_eq!(read::<u16>(&mem, z + 0x206), 0x020f, "version");
        assert_eq!(read::<u8>(&mem, z + 0x210), 0xff, "type_of_loader");
        assert_eq!(
            read::<u8>(&mem, z + 0x211),
            1 | CAN_USE_HEAP,
            "loadflags: LOADED_HIGH | CAN_USE_HEAP"
        );
        assert_eq!(read::<u32>(&mem, z + 0x214), 0x10_0000, "code32_start");
        assert_eq!(read::<u32>(&mem, z + 0x218), 0x300_0000, "ramdisk_image");
        assert_eq!(read::<u32>(&mem, z + 0x21c), 1234, "ramdisk_size");
        assert_eq!(read::<u16>(&mem, z + 0x224), HEAP_END, "heap_end_ptr");
        assert_eq!(read::<u32>(&mem, z + 0x228), CMDLINE as u32, "cmd_line_ptr");
        // e820 table at 0x2d0, 20-byte entries: the high RAM entry is 4th.
        let e = z + 0x2d0 + 3 * 20;
        assert_eq!(read::<u64>(&mem, e), 0x10_0000);
        assert_eq!(read::<u64>(&mem, e + 8), 63 * MIB);
        assert_eq!(read::<u32>(&mem, e + 16), 1);
        assert_eq!(read::<u32>(&mem, z + 0x2d0 + 2 * 20 + 16), 3, "acpi");
        let mut line = [0u8; 14];
        mem.read_slice(&mut line, GuestAddress(CMDLINE)).unwrap();
        assert_eq!(&line, b"console=ttyS0\0");
        // The Linux GDT: __BOOT_CS at 0x10 is 64-bit code.
        assert_eq!(
            read::<u64>(&mem, LINUX_BOOT_GDT + 0x10),
            LINUX_GDT_ENTRIES[2]
        );
    }

    #[test]
    fn command_lines_longer_than_the_kernel_takes_are_refused() {
        let layout = MemoryLayout::new(64 * MIB).unwrap();
        let mem = memory(&layout);
        let mut f = fake_bzimage(0x020f, XLF_KERNEL_64, b"k");
        let k = load_kernel(&mem, &layout, &mut f).unwrap();
        let map = layout.memory_map();
        let long = "x".repeat(2048);
        assert!(matches!(
            write_boot_info(&mem, &k.header, &long, None, &map, 0),
            Err(LinuxError::BadCmdline { max: 2047 })
        ));
        assert!(matches!(
            write_boot_info(&mem, &k.header, "a\0b", None, &map, 0),
            Err(LinuxError::BadCmdline { .. })
        ));
        assert!(write_boot_info(&mem, &k.header, &"x".repeat(2047), None, &map, 0).is_ok());
    }

    #[test]
    fn identity_map_covers_four_gib_with_two_mib_pages() {
        let pages = identity_page_tables();
        assert_eq!(pages.len(), 2 + BOOT_IDENTITY_GIB as usize);
        let entry =
            |page: &[u8], i: usize| u64::from_le_bytes(page[i * 8..i * 8 + 8].try_into().unwrap());
        let (pml4_at, pml4) = &pages[0];
        assert_eq!(*pml4_at, BOOT_PML4);
        assert_eq!(entry(pml4, 0), BOOT_PDPT | 3);
        assert!((1..512).all(|i| entry(pml4, i) == 0));
        let (pdpt_at, pdpt) = &pages[1];
        assert_eq!(*pdpt_at, BOOT_PDPT);
        for g in 0..4 {
            assert_eq!(entry(pdpt, g), (BOOT_PD + g as u64 * PAGE) | 3);
        }
        assert_eq!(entry(pdpt, 4), 0);
        // PD 0 maps 0..1 GiB; the last PD's last entry maps 4 GiB - 2 MiB.
        assert_eq!(pages[2].0, BOOT_PD);
        assert_eq!(entry(&pages[2].1, 0), 0x83);
        assert_eq!(entry(&pages[2].1, 1), TWO_MIB | 0x83);
        let (last_at, last) = pages.last().unwrap();
        assert_eq!(*last_at, BOOT_PD + 3 * PAGE);
        assert_eq!(entry(last, 511), ((4 << 30) - TWO_MIB) | 0x83);
        // Every table is one page and they do not overlap.
        for w in pages.windows(2) {
            assert_eq!(w[0].1.len(), PAGE as usize);
            assert!(w[0].0 + PAGE <= w[1].0);
        }
    }

    #[test]
    fn the_initrd_goes_high_below_its_limit_and_must_fit() {
        let layout = MemoryLayout::new(32 * MIB).unwrap();
        let mem = memory(&layout);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[9u8; 5000]).unwrap();
        let p = place_initrd(&mem, &layout, 0x7fff_ffff, 5 * MIB, &mut f).unwrap();
        assert_eq!(p.size, 5000);
        assert_eq!(p.addr % PAGE, 0);
        assert!(p.addr + 5000 <= 32 * MIB && p.addr >= 31 * MIB);
        assert_eq!(read::<u8>(&mem, p.addr + 4999), 9);
        // initrd_addr_max below the top of RAM wins.
        let p = place_initrd(&mem, &layout, (16 * MIB - 1) as u32, 5 * MIB, &mut f).unwrap();
        assert!(p.addr + 5000 <= 16 * MIB);
        let big = tempfile::tempfile().unwrap();
        big.set_len(30 * MIB).unwrap();
        let mut big = big;
        assert!(matches!(
            place_initrd(&mem, &layout, 0x7fff_ffff, 5 * MIB, &mut big),
            Err(LinuxError::InitrdTooBig { .. })
        ));
    }
}
