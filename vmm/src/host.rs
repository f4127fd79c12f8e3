//! `coco-vmm check`: what this host offers coco — the KVM flavour and its
//! capabilities, the CPUID a guest would see, and GPU passthrough readiness.

use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::{Cap, Kvm};

use crate::arch::cpuid::{self, CpuidPolicy};
use crate::kvm_flavour::KvmFlavour;

/// The host report.
#[derive(Debug, serde::Serialize)]
pub struct HostReport {
    /// KVM flavour.
    pub flavour: KvmFlavour,
    /// Why `/dev/kvm` could not be used, if it could not.
    pub kvm_error: Option<String>,
    /// KVM API version.
    pub api_version: Option<i32>,
    /// Capabilities: (name, present).
    pub capabilities: Vec<(&'static str, bool)>,
    /// Highest vCPU count KVM recommends.
    pub recommended_vcpus: Option<usize>,
    /// CPU vendor string from CPUID leaf 0.
    pub cpu_vendor: Option<String>,
    /// Features a guest's CPUID advertises (after the VMM's filter).
    pub guest_cpu_features: Vec<&'static str>,
    /// GPU, VFIO and IOMMU inventory.
    pub gpu: coco_vfio_gpu::Inventory,
}

const CAPS: [(Cap, &str); 12] = [
    (Cap::Irqchip, "irqchip"),
    (Cap::UserMemory, "user-memory"),
    (Cap::SetTssAddr, "set-tss-addr"),
    (Cap::Pit2, "pit2"),
    (Cap::PitState2, "pit-state2"),
    (Cap::Ioeventfd, "ioeventfd"),
    (Cap::Irqfd, "irqfd"),
    (Cap::ExtCpuid, "ext-cpuid"),
    (Cap::TscDeadlineTimer, "tsc-deadline-timer"),
    (Cap::ImmediateExit, "immediate-exit"),
    (Cap::IrqfdResample, "irqfd-resample"),
    (Cap::MpState, "mp-state"),
];

/// Feature bits reported: (leaf, register index 0=eax..3=edx, bit, name).
const FEATURES: [(u32, usize, u32, &str); 14] = [
    (1, 2, 0, "sse3"),
    (1, 2, 9, "ssse3"),
    (1, 2, 19, "sse4.1"),
    (1, 2, 20, "sse4.2"),
    (1, 2, 21, "x2apic"),
    (1, 2, 23, "popcnt"),
    (1, 2, 24, "tsc-deadline"),
    (1, 2, 26, "xsave"),
    (1, 2, 28, "avx"),
    (1, 2, 31, "hypervisor"),
    (7, 1, 5, "avx2"),
    (7, 1, 16, "avx512f"),
    (0x8000_0001, 3, 20, "nx"),
    (0x8000_0001, 3, 26, "1gb-pages"),
];

/// Probes this host.
pub fn probe() -> HostReport {
    let flavour = KvmFlavour::detect();
    let gpu = coco_vfio_gpu::Inventory::probe();
    let mut report = HostReport {
        flavour,
        kvm_error: None,
        api_version: None,
        capabilities: Vec::new(),
        recommended_vcpus: None,
        cpu_vendor: None,
        guest_cpu_features: Vec::new(),
        gpu,
    };
    let kvm = match Kvm::new() {
        Ok(kvm) => kvm,
        Err(e) => {
            report.kvm_error = Some(format!("cannot open /dev/kvm: {e}"));
            return report;
        }
    };
    report.api_version = Some(kvm.get_api_version());
    report.capabilities = CAPS
        .iter()
        .map(|(cap, name)| (*name, kvm.check_extension(*cap)))
        .collect();
    report.recommended_vcpus = Some(kvm.get_nr_vcpus());
    if let Ok(supported) = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES) {
        let entries = cpuid::filter(
            supported.as_slice(),
            &CpuidPolicy {
                vcpu_id: 0,
                vcpu_count: 1,
                tsc_deadline: kvm.check_extension(Cap::TscDeadlineTimer),
                arch_capabilities_msr: false,
            },
        );
        if let Some(leaf0) = entries.iter().find(|e| e.function == 0) {
            let bytes: Vec<u8> = [leaf0.ebx, leaf0.edx, leaf0.ecx]
                .iter()
                .flat_map(|r| r.to_le_bytes())
                .collect();
            report.cpu_vendor = Some(String::from_utf8_lossy(&bytes).into_owned());
        }
        for (leaf, reg, bit, name) in FEATURES {
            let present = entries
                .iter()
                .find(|e| e.function == leaf && e.index == 0)
                .map(|e| [e.eax, e.ebx, e.ecx, e.edx][reg] & (1 << bit) != 0)
                .unwrap_or(false);
            if present {
                report.guest_cpu_features.push(name);
            }
        }
    }
    report
}

impl std::fmt::Display for HostReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "kvm: {}", self.flavour.describe())?;
        if let Some(e) = &self.kvm_error {
            writeln!(f, "kvm: {e}")?;
        }
        if let Some(v) = self.api_version {
            writeln!(f, "kvm api version: {v}")?;
        }
        if !self.capabilities.is_empty() {
            let caps: Vec<String> = self
                .capabilities
                .iter()
                .map(|(name, ok)| format!("{name}{}", if *ok { "" } else { " (MISSING)" }))
                .collect();
            writeln!(f, "kvm capabilities: {}", caps.join(", "))?;
        }
        if let Some(n) = self.recommended_vcpus {
            writeln!(f, "kvm recommended vcpus: {n}")?;
        }
        writeln!(
            f,
            "syscall gate for guest-kernel: {}",
            self.flavour.syscall_gate().as_str()
        )?;
        if let Some(vendor) = &self.cpu_vendor {
            writeln!(f, "guest cpu vendor: {vendor}")?;
        }
        writeln!(
            f,
            "guest cpu features: {}",
            self.guest_cpu_features.join(" ")
        )?;
        if self.flavour == KvmFlavour::Pvm {
            writeln!(
                f,
                "note: on kvm-pvm, ring 0 cannot execute many advertised features; guest kernels must not rely on CPUID"
            )?;
        }
        write!(f, "{}", self.gpu)
    }
}
