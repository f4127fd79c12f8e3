//! Building a VM is one linear recipe: check KVM, lay out memory, load the
//! kernel and its modules, write ACPI and boot information, wire the devices,
//! create and initialise the vCPUs. Each step's failure is a [`BuildError`]
//! variant that says which step failed; nothing here panics on user input.

use std::fs::{File, OpenOptions};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use coconut_abi::{cmdline as abi_cmdline, ports};
use kvm_bindings::{
    CpuId, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY, Msrs, kvm_msr_entry, kvm_pit_config,
    kvm_userspace_memory_region,
};
use kvm_ioctls::{Cap, IoEventAddress, Kvm, NoDatamatch, VcpuFd, VmFd};
use tracing::{debug, info};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

use crate::arch::acpi::{self, AcpiError, AcpiTables, PciWindow, VirtioWindow};
use crate::arch::cpuid::{self, CpuidPolicy};
use crate::arch::layout::{
    BOOT_GDT, BOOT_PML4, KVM_IDENTITY_MAP, KVM_TSS, LayoutError, MIB, MemoryLayout,
    VIRTIO_MMIO_BASE, VIRTIO_MMIO_GSI_BASE, VIRTIO_MMIO_SIZE,
};
use crate::arch::{msr, regs};
use crate::boot::image::{self, ImageError};
use crate::boot::linux::{self, LinuxError};
use crate::boot::pvh::{self, PvhError};
use crate::devices::boot_timer::{BootTimer, Milestone};
use crate::devices::bus::{Bus, BusError};
use crate::devices::debug_exit::DebugExit;
use crate::devices::i8042::I8042;
use crate::devices::ignored::Ignored;
use crate::devices::pci::bars::{BarAllocator, PCI_MMIO_END, PCI_MMIO_START};
use crate::devices::pci::host_bridge::HostBridge;
use crate::devices::pci::msix::{KvmVectors, MsixTable};
use crate::devices::pci::root::{CONFIG_ADDRESS_PORT, CONFIG_PORTS_LEN, PciRoot, PlugError};
use crate::devices::serial::{Console, IrqTrigger, SerialDevice};
use crate::devices::vfio::VfioError;
use crate::devices::vfio::host::parse_device_arg;
use crate::devices::vfio::passthrough::{AttachContext, VfioPci};
use crate::devices::virtio_pci::{self, PciFunction};
use crate::devices::virtio9p::{self, NinePDevice, NinePEvents};
use crate::kvm_flavour::KvmFlavour;
use crate::vm::control::VmControl;
use crate::vm::irq_routes::GsiRoutes;
use crate::vm::spec::{GuestKind, NinePSpec, NinePTransport, VmSpec};
use coco_virtio9p::Interrupt;
use coco_virtio9p::pci::layout as pci_layout;

/// GSI of COM1.
pub const COM1_GSI: u32 = 4;
/// Most vCPUs (xAPIC ids are 8 bits and the IOAPIC takes the next id).
pub const MAX_VCPUS: u8 = coco_hive_config::MAX_VCPUS;

/// KVM capabilities the VMM cannot work without.
const REQUIRED_CAPS: [(Cap, &str); 8] = [
    (Cap::Irqchip, "KVM_CAP_IRQCHIP"),
    (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
    (Cap::SetTssAddr, "KVM_CAP_SET_TSS_ADDR"),
    (Cap::Pit2, "KVM_CAP_PIT2"),
    (Cap::Ioeventfd, "KVM_CAP_IOEVENTFD"),
    (Cap::Irqfd, "KVM_CAP_IRQFD"),
    (Cap::ExtCpuid, "KVM_CAP_EXT_CPUID"),
    (Cap::PitState2, "KVM_CAP_PIT_STATE2"),
];

/// Why a VM could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Bad vCPU count.
    #[error("{0} vCPUs requested; 1..={MAX_VCPUS} are supported")]
    Vcpus(u8),
    /// Bad memory size.
    #[error("guest memory: {0}")]
    Layout(#[from] LayoutError),
    /// An image could not be opened.
    #[error("{what}: {source}")]
    Image {
        /// "kernel" or "initrd".
        what: &'static str,
        /// Why.
        source: ImageError,
    },
    /// `/dev/kvm` could not be opened.
    #[error("cannot open /dev/kvm: {0} (is KVM loaded, and may this user use it?)")]
    OpenKvm(kvm_ioctls::Error),
    /// KVM lacks a capability.
    #[error("KVM lacks {0}, which coco-vmm needs")]
    MissingCap(&'static str),
    /// A KVM call failed.
    #[error("{step}: {source}")]
    Kvm {
        /// What was being done.
        step: &'static str,
        /// The error.
        source: kvm_ioctls::Error,
    },
    /// Guest memory could not be allocated or written.
    #[error("guest memory: {0}")]
    Memory(String),
    /// The kernel or a module could not be loaded.
    #[error("{0}")]
    Pvh(#[from] PvhError),
    /// The Linux kernel or its initrd could not be loaded.
    #[error(transparent)]
    Linux(#[from] LinuxError),
    /// A guest kind this build cannot boot.
    #[error("guest kind {0} is not supported by this coco-vmm yet (coconut and linux are)")]
    UnsupportedKind(GuestKind),
    /// ACPI tables could not be built.
    #[error("ACPI: {0}")]
    Acpi(#[from] AcpiError),
    /// Devices overlap.
    #[error("device layout: {0}")]
    Bus(#[from] BusError),
    /// A VFIO device could not be passed through.
    #[error("VFIO passthrough of {device}")]
    Vfio {
        /// The `--vfio` argument.
        device: String,
        /// Why.
        source: VfioError,
    },
    /// The PCI bus is full.
    #[error("PCI: {0}")]
    Pci(#[from] PlugError),
    /// The virtio-9p PCI function's BAR or MSI-X vectors could not be set up.
    #[error("virtio-9p PCI function: {0}")]
    NinePPci(String),
    /// KVM accepted fewer MSRs than given.
    #[error("KVM refused MSR {0:#x}")]
    Msr(u32),
    /// Another I/O failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn kvm_step(step: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> BuildError {
    move |source| BuildError::Kvm { step, source }
}

/// A built VM, ready to run.
#[derive(Debug)]
pub struct Vm {
    /// Guest name.
    pub name: String,
    /// The KVM flavour it runs on.
    pub flavour: KvmFlavour,
    /// The command line the guest received.
    pub cmdline: String,
    pub(crate) _kvm: Kvm,
    pub(crate) vm_fd: Arc<VmFd>,
    pub(crate) memory: GuestMemoryMmap,
    pub(crate) vcpus: Vec<VcpuFd>,
    pub(crate) pio: Bus,
    pub(crate) mmio: Bus,
    pub(crate) control: Arc<VmControl>,
    pub(crate) serial: Arc<Mutex<SerialDevice>>,
    pub(crate) milestones: Arc<Mutex<Vec<Milestone>>>,
    pub(crate) origin: Instant,
    /// Device event sources the VM's event loop must watch.
    pub(crate) subscribers: Vec<Arc<Mutex<NinePEvents>>>,
}

/// The virtio-mmio windows a spec gets, in order (today: the 9P device,
/// when it is not a PCI function).
pub fn virtio_windows(spec: &VmSpec) -> Vec<VirtioWindow> {
    spec.ninep
        .iter()
        .filter(|n| n.transport == NinePTransport::Mmio)
        .enumerate()
        .map(|(i, _)| VirtioWindow {
            base: (VIRTIO_MMIO_BASE + i as u64 * VIRTIO_MMIO_SIZE) as u32,
            gsi: VIRTIO_MMIO_GSI_BASE + i as u32,
        })
        .collect()
}

/// The command line the guest kernel gets. Coconut: the VMM's options
/// first, the user's after them (so the user's win, as later options do on
/// Linux). Linux: the user's line only, with `console=ttyS0` in front when
/// it names no `console=` (the `coco.*` options mean nothing to Linux).
pub fn guest_cmdline(spec: &VmSpec, flavour: KvmFlavour, tsc_khz: Option<u32>) -> String {
    if spec.kind == GuestKind::Linux {
        let user = spec.cmdline.trim();
        let has_console = user.split_whitespace().any(|w| w.starts_with("console="));
        return match (has_console, user.is_empty()) {
            (true, _) => user.to_string(),
            (false, true) => "console=ttyS0".to_string(),
            (false, false) => format!("console=ttyS0 {user}"),
        };
    }
    let mut line = format!(
        "{}={} {}={}",
        abi_cmdline::SYSCALL_GATE,
        flavour.syscall_gate().as_str(),
        abi_cmdline::GUEST_NAME,
        spec.name
    );
    if let Some(khz) = tsc_khz.filter(|&k| k > 0) {
        line.push_str(&format!(" {}={khz}", abi_cmdline::TSC_KHZ));
    }
    // guest-kernel reads its virtio-mmio windows from the command line
    // (Linux finds them in the DSDT instead).
    for w in virtio_windows(spec) {
        line.push_str(&format!(" virtio_mmio.device=4K@{:#x}:{}", w.base, w.gsi));
    }
    if !spec.cmdline.trim().is_empty() {
        line.push(' ');
        line.push_str(spec.cmdline.trim());
    }
    line
}

fn check_kvm(kvm: &Kvm) -> Result<(), BuildError> {
    for (cap, name) in REQUIRED_CAPS {
        if !kvm.check_extension(cap) {
            return Err(BuildError::MissingCap(name));
        }
    }
    Ok(())
}

fn register_memory(vm_fd: &VmFd, memory: &GuestMemoryMmap) -> Result<(), BuildError> {
    for (slot, region) in memory.iter().enumerate() {
        let slot_info = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: region.as_ptr() as u64,
        };
        // SAFETY: the region is a live mapping owned by `memory`, which the
        // VM owns and outlives every vCPU; slots do not overlap because the
        // layout's regions do not.
        unsafe { vm_fd.set_user_memory_region(slot_info) }
            .map_err(kvm_step("registering guest memory with KVM"))?;
    }
    Ok(())
}

/// The PCI host bridge's window for the DSDT, when the machine has a bus.
fn pci_window(spec: &VmSpec) -> Option<PciWindow> {
    spec.has_pci_bus().then_some(PciWindow {
        start: PCI_MMIO_START as u32,
        end: (PCI_MMIO_END - 1) as u32,
    })
}

fn write_platform_tables(
    memory: &GuestMemoryMmap,
    spec: &VmSpec,
) -> Result<AcpiTables, BuildError> {
    let tables = acpi::build_with(spec.vcpus, &virtio_windows(spec), pci_window(spec))?;
    memory
        .write_slice(&tables.bytes, GuestAddress(AcpiTables::base()))
        .map_err(|e| BuildError::Memory(format!("writing ACPI tables: {e}")))?;
    let gdt: Vec<u8> = regs::BOOT_GDT_ENTRIES
        .iter()
        .flat_map(|e| e.to_le_bytes())
        .collect();
    memory
        .write_slice(&gdt, GuestAddress(BOOT_GDT))
        .map_err(|e| BuildError::Memory(format!("writing the boot GDT: {e}")))?;
    Ok(tables)
}

fn open_console_log(spec: &VmSpec) -> Result<Option<File>, BuildError> {
    let Some(path) = &spec.console_log else {
        return Ok(None);
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| BuildError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(Some)
        .map_err(|source| BuildError::Io {
            what: format!("opening console log {}", path.display()),
            source,
        })
}

struct Devices {
    pio: Bus,
    mmio: Bus,
    serial: Arc<Mutex<SerialDevice>>,
    milestones: Arc<Mutex<Vec<Milestone>>>,
}

fn create_devices(
    spec: &VmSpec,
    vm_fd: &VmFd,
    control: &Arc<VmControl>,
    origin: Instant,
) -> Result<Devices, BuildError> {
    let irq = EventFd::new(libc::EFD_NONBLOCK).map_err(|source| BuildError::Io {
        what: "creating the COM1 irqfd".into(),
        source,
    })?;
    vm_fd
        .register_irqfd(&irq, COM1_GSI)
        .map_err(kvm_step("registering the COM1 irqfd"))?;
    let console = Console::new(&spec.name, spec.echo_console, open_console_log(spec)?);
    let serial = Arc::new(Mutex::new(SerialDevice::new(IrqTrigger(irq), console)));
    let milestones = Arc::new(Mutex::new(Vec::new()));

    let mut pio = Bus::new("port");
    pio.insert(u64::from(ports::COM1), 8, "com1", serial.clone())?;
    pio.insert(
        u64::from(ports::DEBUG_EXIT),
        1,
        "debug-exit",
        Arc::new(Mutex::new(DebugExit::new(control.clone()))),
    )?;
    pio.insert(
        u64::from(ports::BOOT_TIMER),
        4,
        "boot-timer",
        Arc::new(Mutex::new(BootTimer::new(
            origin,
            &spec.name,
            milestones.clone(),
        ))),
    )?;
    pio.insert(
        0x60,
        5,
        "i8042",
        Arc::new(Mutex::new(I8042::new(control.clone()))),
    )?;
    let ignored = Arc::new(Mutex::new(Ignored));
    pio.insert(u64::from(ports::POST), 1, "post", ignored.clone())?;
    pio.insert(u64::from(ports::EARLY_PRINT), 1, "early-print", ignored)?;
    Ok(Devices {
        pio,
        mmio: Bus::new("mmio"),
        serial,
        milestones,
    })
}

/// The PCI bus, when the spec has one ([`VmSpec::has_pci_bus`]): the host
/// bridge at 00:00.0, then each VFIO device in the order given (00:01.0,
/// ...), then the virtio-9p function if it is one (whose event source is
/// returned).
fn attach_pci(
    spec: &VmSpec,
    vm_fd: &Arc<VmFd>,
    memory: &GuestMemoryMmap,
    devices: &mut Devices,
) -> Result<Option<Arc<Mutex<NinePEvents>>>, BuildError> {
    if !spec.has_pci_bus() {
        return Ok(None);
    }
    let mut root = PciRoot::default();
    root.plug(0, Arc::new(Mutex::new(HostBridge::default())))?;
    let routes = Arc::new(GsiRoutes::new(vm_fd.clone()));
    let mut bars = BarAllocator::default();
    // RAM uses the first slots (one per region); BARs go after them.
    let mut next_slot = memory.num_regions() as u32;
    for arg in &spec.vfio {
        let vfio_err = |source| BuildError::Vfio {
            device: arg.clone(),
            source,
        };
        let parsed = parse_device_arg(arg).map_err(vfio_err)?;
        let bdf = parsed.bdf;
        let device = VfioPci::attach(
            bdf,
            AttachContext {
                memory,
                routes: routes.clone(),
                bars: &mut bars,
                mmio: &mut devices.mmio,
                next_slot: &mut next_slot,
                no_mmap: parsed.no_mmap,
            },
        )
        .map_err(vfio_err)?;
        let slot = root.plug_next(Arc::new(Mutex::new(device)))?;
        info!(guest = %spec.name, "PCI 00:{slot:02x}.0: VFIO {bdf}");
    }
    let ninep = match &spec.ninep {
        Some(n) if n.transport == NinePTransport::Pci => Some(attach_virtio9p_pci(
            spec,
            n,
            vm_fd,
            memory,
            PciParts {
                root: &mut root,
                routes: &routes,
                bars: &mut bars,
                mmio: &mut devices.mmio,
            },
        )?),
        _ => None,
    };
    devices.pio.insert(
        CONFIG_ADDRESS_PORT,
        CONFIG_PORTS_LEN,
        "pci-config",
        Arc::new(Mutex::new(root)),
    )?;
    Ok(ninep)
}

/// The bus pieces a PCI function is attached with.
struct PciParts<'a> {
    root: &'a mut PciRoot,
    routes: &'a Arc<GsiRoutes>,
    bars: &'a mut BarAllocator,
    mmio: &'a mut Bus,
}

/// The bridge socket a 9P device forwards on, and a clone the event loop
/// reads replies from.
fn open_bridge(ninep: &NinePSpec) -> Result<(UnixStream, UnixStream), BuildError> {
    let io = |what: &'static str| {
        move |source| BuildError::Io {
            what: format!("virtio-9p: {what}"),
            source,
        }
    };
    let bridge = ninep
        .bridge
        .try_clone()
        .and_then(virtio9p::bridge_from_fd)
        .map_err(io("the bridge descriptor"))?;
    let reader = bridge
        .try_clone()
        .map_err(io("cloning the bridge socket"))?;
    Ok((bridge, reader))
}

/// The virtio-9p step for a PCI function: BAR 0 placed in the PCI window,
/// two MSI-X vectors (GSIs with irqfds), the notify address as an ioeventfd,
/// the function on the next free slot.
fn attach_virtio9p_pci(
    spec: &VmSpec,
    ninep: &NinePSpec,
    vm_fd: &VmFd,
    memory: &GuestMemoryMmap,
    parts: PciParts<'_>,
) -> Result<Arc<Mutex<NinePEvents>>, BuildError> {
    let (bridge, reader) = open_bridge(ninep)?;
    let bar = parts
        .bars
        .alloc(pci_layout::BAR_SIZE)
        .map_err(|e| BuildError::NinePPci(format!("BAR 0: {e}")))?;
    let sink = KvmVectors::new(parts.routes.clone(), virtio_pci::MSIX_VECTORS)
        .map_err(|e| BuildError::NinePPci(format!("MSI-X: {e}")))?;
    let msix = Arc::new(Mutex::new(MsixTable::new(
        virtio_pci::MSIX_VECTORS,
        Arc::new(sink),
    )));
    let (function, irq) = PciFunction::new(&ninep.mount_tag, msix, bar)
        .map_err(|e| BuildError::NinePPci(format!("BAR 0: {e}")))?;
    let device = Arc::new(Mutex::new(NinePDevice::pci(
        &spec.name,
        function,
        memory.clone(),
        bridge,
    )));
    parts
        .mmio
        .insert(bar, pci_layout::BAR_SIZE, "virtio-9p-pci", device.clone())?;
    let notify = EventFd::new(libc::EFD_NONBLOCK).map_err(|source| BuildError::Io {
        what: "virtio-9p: creating the ioeventfd".into(),
        source,
    })?;
    vm_fd
        .register_ioevent(
            &notify,
            &IoEventAddress::Mmio(bar + pci_layout::NOTIFY),
            NoDatamatch,
        )
        .map_err(kvm_step("registering the virtio-9p ioeventfd"))?;
    let slot = parts.root.plug_next(device.clone())?;
    info!(
        guest = %spec.name,
        "PCI 00:{slot:02x}.0: virtio-9p, BAR 0 at {bar:#x}, MSI-X, mount tag {:?}",
        ninep.mount_tag
    );
    Ok(Arc::new(Mutex::new(NinePEvents::new(
        device, notify, None, irq, reader,
    ))))
}

/// LAPIC LVT LINT0 as ExtINT and LINT1 as NMI, as PC firmware leaves them,
/// so the PIC and NMIs reach the vCPU before the guest programs its LAPIC.
fn configure_lapic_lint(vcpu: &VcpuFd) -> Result<(), BuildError> {
    const LVT_LINT0: usize = 0x350;
    const LVT_LINT1: usize = 0x360;
    const DELIVERY_EXTINT: u32 = 0x7 << 8;
    const DELIVERY_NMI: u32 = 0x4 << 8;
    let mut lapic = vcpu.get_lapic().map_err(kvm_step("reading the LAPIC"))?;
    for (offset, mode) in [(LVT_LINT0, DELIVERY_EXTINT), (LVT_LINT1, DELIVERY_NMI)] {
        let bytes: Vec<u8> = lapic.regs[offset..offset + 4]
            .iter()
            .map(|b| *b as u8)
            .collect();
        let old = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let new = (old & !0x700) | mode;
        for (i, b) in new.to_le_bytes().iter().enumerate() {
            lapic.regs[offset + i] = *b as _;
        }
    }
    vcpu.set_lapic(&lapic)
        .map_err(kvm_step("writing the LAPIC"))
}

/// How the bootstrap processor enters the kernel.
#[derive(Clone, Copy, Debug)]
enum Entry {
    /// PVH: 32-bit protected mode at `entry`, EBX = `start_info`.
    Pvh { entry: u64, start_info: u64 },
    /// Linux 64-bit boot protocol: long mode on the identity map at `pml4`,
    /// RIP = `entry`, RSI = `zero_page`.
    Linux64 {
        entry: u64,
        zero_page: u64,
        pml4: u64,
    },
}

/// Creates the vCPUs (CPUID, MSRs, LAPIC, FPU); the entry registers come
/// later from [`set_boot_regs`], once the boot information is written (the
/// command line in it carries the vCPU's TSC frequency).
fn create_vcpus(kvm: &Kvm, vm_fd: &VmFd, count: u8) -> Result<Vec<VcpuFd>, BuildError> {
    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(kvm_step("KVM_GET_SUPPORTED_CPUID"))?;
    let msr_list = kvm
        .get_msr_index_list()
        .map_err(kvm_step("KVM_GET_MSR_INDEX_LIST"))?;
    let boot_msrs = msr::boot_msrs(msr_list.as_slice());
    let policy_base = CpuidPolicy {
        vcpu_id: 0,
        vcpu_count: count,
        tsc_deadline: kvm.check_extension(Cap::TscDeadlineTimer),
        arch_capabilities_msr: msr_list.as_slice().contains(&msr::ARCH_CAPABILITIES),
    };
    let mut vcpus = Vec::with_capacity(usize::from(count));
    for id in 0..count {
        let vcpu = vm_fd
            .create_vcpu(u64::from(id))
            .map_err(kvm_step("creating a vCPU"))?;
        let entries = cpuid::filter(
            supported.as_slice(),
            &CpuidPolicy {
                vcpu_id: id,
                ..policy_base
            },
        );
        let cpuid = CpuId::from_entries(&entries)
            .map_err(|_| BuildError::Memory("CPUID table too large".into()))?;
        vcpu.set_cpuid2(&cpuid)
            .map_err(kvm_step("KVM_SET_CPUID2"))?;

        let entries: Vec<kvm_msr_entry> = boot_msrs
            .iter()
            .map(|(index, data)| kvm_msr_entry {
                index: *index,
                data: *data,
                ..Default::default()
            })
            .collect();
        let msrs = Msrs::from_entries(&entries)
            .map_err(|_| BuildError::Memory("MSR table too large".into()))?;
        let written = vcpu.set_msrs(&msrs).map_err(kvm_step("KVM_SET_MSRS"))?;
        if written < entries.len() {
            return Err(BuildError::Msr(entries[written].index));
        }
        configure_lapic_lint(&vcpu)?;
        vcpu.set_fpu(&regs::reset_fpu())
            .map_err(kvm_step("KVM_SET_FPU"))?;
        vcpus.push(vcpu);
    }
    Ok(vcpus)
}

/// Points the bootstrap processor at the entry. Only it starts there; the
/// others wait for INIT/SIPI from the guest in the in-kernel LAPIC.
fn set_boot_regs(vcpu: &VcpuFd, boot: Entry) -> Result<(), BuildError> {
    let sregs = vcpu.get_sregs().map_err(kvm_step("KVM_GET_SREGS"))?;
    let (sregs, gprs) = match boot {
        Entry::Pvh { entry, start_info } => (
            regs::protected_mode_sregs(&sregs),
            regs::entry_regs(entry, start_info, 0),
        ),
        Entry::Linux64 {
            entry,
            zero_page,
            pml4,
        } => (
            regs::long_mode_sregs(&sregs, pml4),
            regs::linux64_entry_regs(entry, zero_page),
        ),
    };
    vcpu.set_sregs(&sregs).map_err(kvm_step("KVM_SET_SREGS"))?;
    vcpu.set_regs(&gprs).map_err(kvm_step("KVM_SET_REGS"))?;
    Ok(())
}

/// The Linux step of the recipe: bzImage at 1 MiB, initrd high, ACPI, then
/// the zero page, identity map and boot GDT.
fn load_linux(
    memory: &GuestMemoryMmap,
    layout: &MemoryLayout,
    spec: &VmSpec,
    kernel: &mut File,
    modules: &mut [File],
    cmdline: &str,
) -> Result<Entry, BuildError> {
    let loaded = linux::load_kernel(memory, layout, kernel)?;
    let initrd = match modules.first_mut() {
        Some(file) => Some(linux::place_initrd(
            memory,
            layout,
            loaded.header.initrd_addr_max,
            loaded.end,
            file,
        )?),
        None => None,
    };
    write_platform_tables(memory, spec)?;
    let zero_page = linux::write_boot_info(
        memory,
        &loaded.header,
        cmdline,
        initrd,
        &layout.memory_map(),
        AcpiTables::rsdp_address(),
    )?;
    let entry = linux::entry_point(loaded.load_addr);
    debug!(
        entry = format_args!("{entry:#x}"),
        kernel_end = format_args!("{:#x}", loaded.end),
        initrd = ?initrd,
        "Linux kernel loaded (64-bit boot protocol)"
    );
    Ok(Entry::Linux64 {
        entry,
        zero_page,
        pml4: BOOT_PML4,
    })
}

/// Builds a VM from `spec`. `origin` is the instant boot milestones are
/// measured from (the VMM's start).
pub fn build_vm(spec: &VmSpec, origin: Instant) -> Result<Vm, BuildError> {
    if spec.vcpus == 0 || spec.vcpus > MAX_VCPUS {
        return Err(BuildError::Vcpus(spec.vcpus));
    }
    if !matches!(spec.kind, GuestKind::Coconut | GuestKind::Linux) {
        return Err(BuildError::UnsupportedKind(spec.kind));
    }
    let layout = MemoryLayout::new(spec.memory_mib.saturating_mul(MIB))?;
    let mut kernel = image::open(&spec.kernel).map_err(|source| BuildError::Image {
        what: "kernel",
        source,
    })?;
    let mut modules = Vec::new();
    if let Some(initrd) = &spec.initrd {
        modules.push(image::open(initrd).map_err(|source| BuildError::Image {
            what: "initrd",
            source,
        })?);
    }

    let flavour = KvmFlavour::detect();
    info!(guest = %spec.name, "KVM flavour: {}", flavour.describe());

    let kvm = Kvm::new().map_err(BuildError::OpenKvm)?;
    check_kvm(&kvm)?;
    let vm_fd = Arc::new(kvm.create_vm().map_err(kvm_step("creating the VM"))?);
    vm_fd
        .set_tss_address(KVM_TSS as usize)
        .map_err(kvm_step("KVM_SET_TSS_ADDR"))?;
    if let Err(e) = vm_fd.set_identity_map_address(KVM_IDENTITY_MAP) {
        // Only Intel's real-mode emulation uses it; other KVMs may refuse.
        debug!("KVM_SET_IDENTITY_MAP_ADDR: {e} (ignored)");
    }
    vm_fd
        .create_irq_chip()
        .map_err(kvm_step("creating the in-kernel irqchip"))?;
    vm_fd
        .create_pit2(kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        })
        .map_err(kvm_step("creating the in-kernel PIT"))?;

    let memory = GuestMemoryMmap::from_ranges(&layout.ram_regions())
        .map_err(|e| BuildError::Memory(format!("allocating {} MiB: {e}", spec.memory_mib)))?;
    register_memory(&vm_fd, &memory)?;

    let vcpus = create_vcpus(&kvm, &vm_fd, spec.vcpus)?;
    // KVM_GET_TSC_KHZ: the guest kernel's clock; unknown on old KVMs.
    let tsc_khz = vcpus.first().and_then(|v| v.get_tsc_khz().ok());
    let cmdline = guest_cmdline(spec, flavour, tsc_khz);
    let boot = if spec.kind == GuestKind::Linux {
        load_linux(&memory, &layout, spec, &mut kernel, &mut modules, &cmdline)?
    } else {
        let kernel_info = pvh::load_kernel(&memory, &layout, &mut kernel)?;
        let placed = pvh::place_modules(&memory, &layout, kernel_info.end, &mut modules)?;
        write_platform_tables(&memory, spec)?;
        let start_info = pvh::write_boot_info(
            &memory,
            &cmdline,
            &layout.memory_map(),
            &placed,
            AcpiTables::rsdp_address(),
        )?;
        debug!(
            entry = format_args!("{:#x}", kernel_info.entry),
            kernel_end = format_args!("{:#x}", kernel_info.end),
            modules = ?placed,
            "kernel loaded"
        );
        Entry::Pvh {
            entry: kernel_info.entry,
            start_info,
        }
    };

    let control = Arc::new(VmControl::new().map_err(|source| BuildError::Io {
        what: "creating the stop event".into(),
        source,
    })?);
    let mut devices = create_devices(spec, &vm_fd, &control, origin)?;
    let mut subscribers = Vec::new();
    subscribers.extend(attach_pci(spec, &vm_fd, &memory, &mut devices)?);
    if let (Some(ninep), Some(window)) = (&spec.ninep, virtio_windows(spec).first()) {
        subscribers.push(attach_virtio9p(
            spec,
            ninep,
            window,
            &vm_fd,
            &memory,
            &mut devices.mmio,
        )?);
    }
    if let Some(bsp) = vcpus.first() {
        set_boot_regs(bsp, boot)?;
    }

    Ok(Vm {
        name: spec.name.clone(),
        flavour,
        cmdline,
        _kvm: kvm,
        vm_fd,
        memory,
        vcpus,
        pio: devices.pio,
        mmio: devices.mmio,
        control,
        serial: devices.serial,
        milestones: devices.milestones,
        origin,
        subscribers,
    })
}

/// The virtio-9p step: the device in its window, its interrupt as an irqfd
/// on the window's GSI, `QueueNotify` as an ioeventfd, and the event source
/// that carries frames to and from the supervisor.
fn attach_virtio9p(
    spec: &VmSpec,
    ninep: &NinePSpec,
    window: &VirtioWindow,
    vm_fd: &VmFd,
    memory: &GuestMemoryMmap,
    mmio: &mut Bus,
) -> Result<Arc<Mutex<NinePEvents>>, BuildError> {
    let io = |what: &str| {
        let what = format!("virtio-9p: {what}");
        move |source| BuildError::Io { what, source }
    };
    let (bridge, reader) = open_bridge(ninep)?;
    let irqfd = EventFd::new(libc::EFD_NONBLOCK).map_err(io("creating the irqfd"))?;
    vm_fd
        .register_irqfd(&irqfd, window.gsi)
        .map_err(kvm_step("registering the virtio-9p irqfd"))?;
    let notify = EventFd::new(libc::EFD_NONBLOCK).map_err(io("creating the ioeventfd"))?;
    let base = u64::from(window.base);
    vm_fd
        .register_ioevent(
            &notify,
            &IoEventAddress::Mmio(base + virtio9p::NOTIFY_OFFSET),
            NoDatamatch,
        )
        .map_err(kvm_step("registering the virtio-9p ioeventfd"))?;
    // InterruptACK as an ioeventfd too: the guest's interrupt handler then
    // exits to the VMM once (the status read), not twice.
    let ack = EventFd::new(libc::EFD_NONBLOCK).map_err(io("creating the ack ioeventfd"))?;
    vm_fd
        .register_ioevent(
            &ack,
            &IoEventAddress::Mmio(base + virtio9p::ACK_OFFSET),
            NoDatamatch,
        )
        .map_err(kvm_step("registering the virtio-9p ack ioeventfd"))?;
    let irq = Arc::new(Interrupt::new(Box::new(move |_| {
        // A full eventfd counter still means "interrupt pending".
        let _ = irqfd.write(1);
    })));
    let device = Arc::new(Mutex::new(NinePDevice::new(
        &spec.name,
        &ninep.mount_tag,
        memory.clone(),
        irq.clone(),
        bridge,
    )));
    mmio.insert(base, VIRTIO_MMIO_SIZE, "virtio-9p", device.clone())?;
    info!(
        guest = %spec.name,
        "virtio-9p at {base:#x} (GSI {}), mount tag {:?}",
        window.gsi,
        ninep.mount_tag
    );
    Ok(Arc::new(Mutex::new(NinePEvents::new(
        device,
        notify,
        Some(ack),
        irq,
        reader,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::image::ImageSource;

    fn spec(cmdline: &str) -> VmSpec {
        VmSpec {
            name: "w1".into(),
            kind: GuestKind::Coconut,
            kernel: ImageSource::Builtin("guest-kernel".into()),
            initrd: None,
            cmdline: cmdline.into(),
            memory_mib: 64,
            vcpus: 1,
            console_log: None,
            echo_console: false,
            ninep: None,
            vfio: Vec::new(),
        }
    }

    #[test]
    fn cmdline_puts_vmm_options_first_and_user_options_last() {
        assert_eq!(
            guest_cmdline(&spec(""), KvmFlavour::Pvm, None),
            "coco.gate=trap coco.guest=w1"
        );
        assert_eq!(
            guest_cmdline(&spec("  coco.gate=syscall quiet "), KvmFlavour::Svm, None),
            "coco.gate=syscall coco.guest=w1 coco.gate=syscall quiet"
        );
    }

    #[test]
    fn cmdline_carries_the_tsc_frequency_when_kvm_knows_it() {
        assert_eq!(
            guest_cmdline(&spec("quiet"), KvmFlavour::Pvm, Some(2_400_000)),
            "coco.gate=trap coco.guest=w1 coco.tsc_khz=2400000 quiet"
        );
        assert_eq!(
            guest_cmdline(&spec(""), KvmFlavour::Svm, Some(0)),
            "coco.gate=syscall coco.guest=w1"
        );
    }

    #[test]
    fn linux_cmdline_has_no_coco_options_and_a_console_only_when_missing() {
        let linux = |line: &str| VmSpec {
            kind: GuestKind::Linux,
            ..spec(line)
        };
        assert_eq!(
            guest_cmdline(&linux(""), KvmFlavour::Svm, None),
            "console=ttyS0"
        );
        assert_eq!(
            guest_cmdline(&linux(" quiet panic=-1 "), KvmFlavour::Svm, None),
            "console=ttyS0 quiet panic=-1"
        );
        assert_eq!(
            guest_cmdline(&linux("console=hvc0 quiet"), KvmFlavour::Pvm, None),
            "console=hvc0 quiet"
        );
    }

    #[test]
    fn sel4_is_refused_before_touching_kvm() {
        let s = VmSpec {
            kind: GuestKind::Sel4,
            ..spec("")
        };
        let err = build_vm(&s, Instant::now()).unwrap_err();
        assert!(
            matches!(err, BuildError::UnsupportedKind(GuestKind::Sel4)),
            "{err}"
        );
    }

    #[test]
    fn bad_vcpu_counts_fail_before_touching_kvm() {
        let mut s = spec("");
        s.vcpus = 0;
        assert!(matches!(
            build_vm(&s, Instant::now()),
            Err(BuildError::Vcpus(0))
        ));
        s.vcpus = 255;
        assert!(matches!(
            build_vm(&s, Instant::now()),
            Err(BuildError::Vcpus(255))
        ));
    }

    #[test]
    fn too_little_memory_is_a_layout_error() {
        let mut s = spec("");
        s.memory_mib = 1;
        let err = build_vm(&s, Instant::now()).unwrap_err();
        assert!(
            matches!(err, BuildError::Layout(LayoutError::TooSmall { .. })),
            "{err}"
        );
    }
}
