//! CPUID: what the guest is told about its processor.
//!
//! Start from what KVM says it can virtualise (`KVM_GET_SUPPORTED_CPUID`) and
//! take away what this VMM does not really offer: no nested virtualisation,
//! no PMU, no thermal/power management, no MONITOR/MWAIT, no SGX, no
//! `IA32_ARCH_CAPABILITIES` unless KVM can back the MSR. The topology leaves
//! describe exactly the vCPUs hive.toml asked for, one core each, with this
//! vCPU's APIC id. The function is pure so every rule is unit-tested.
//!
//! Note: on kvm-pvm the advertised features are still more than ring 0 can
//! execute (see docs/kvm-flavours.md); guests must not pick kernel code paths
//! from CPUID there. The filter does not try to hide that: ring 3 really can
//! execute them.

use kvm_bindings::kvm_cpuid_entry2;

/// What the filter needs to know about the VM.
#[derive(Clone, Copy, Debug)]
pub struct CpuidPolicy {
    /// This vCPU's index, which is also its APIC id.
    pub vcpu_id: u8,
    /// Number of vCPUs in the VM.
    pub vcpu_count: u8,
    /// KVM offers the TSC-deadline LAPIC timer mode.
    pub tsc_deadline: bool,
    /// KVM can back `IA32_ARCH_CAPABILITIES` (MSR 0x10a).
    pub arch_capabilities_msr: bool,
}

mod bit {
    // Leaf 1 ECX.
    pub const MONITOR: u32 = 1 << 3;
    pub const DS_CPL: u32 = 1 << 4;
    pub const VMX: u32 = 1 << 5;
    pub const SMX: u32 = 1 << 6;
    pub const EST: u32 = 1 << 7;
    pub const TM2: u32 = 1 << 8;
    pub const PDCM: u32 = 1 << 15;
    pub const TSC_DEADLINE: u32 = 1 << 24;
    pub const HYPERVISOR: u32 = 1 << 31;
    // Leaf 1 EDX.
    pub const DS: u32 = 1 << 21;
    pub const ACPI_THERMAL: u32 = 1 << 22;
    pub const HTT: u32 = 1 << 28;
    pub const TM: u32 = 1 << 29;
    pub const PBE: u32 = 1 << 31;
    // Leaf 7.0 EBX / ECX / EDX.
    pub const SGX: u32 = 1 << 2;
    pub const WAITPKG: u32 = 1 << 5;
    pub const SGX_LC: u32 = 1 << 30;
    pub const ARCH_CAPABILITIES: u32 = 1 << 29;
    // Leaf 0x8000_0001 ECX.
    pub const SVM: u32 = 1 << 2;
}

/// Leaves removed outright: thermal/power (6), PMU (0xA), SGX (0x12),
/// processor trace (0x14), and AMD SVM features (0x8000_000A).
const DROPPED_LEAVES: [u32; 5] = [0x6, 0xa, 0x12, 0x14, 0x8000_000a];

/// Number of bits needed to number `count` things (ceil(log2(count))).
fn id_bits(count: u8) -> u32 {
    let count = u32::from(count.max(1));
    32 - (count - 1).leading_zeros()
}

/// Rewrites `entries` (KVM's supported set) into this vCPU's CPUID.
pub fn filter(entries: &[kvm_cpuid_entry2], policy: &CpuidPolicy) -> Vec<kvm_cpuid_entry2> {
    let apic_id = u32::from(policy.vcpu_id);
    let count = u32::from(policy.vcpu_count.max(1));
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        if DROPPED_LEAVES.contains(&entry.function) {
            continue;
        }
        let mut e = *entry;
        match e.function {
            0x1 => {
                e.ebx = (e.ebx & 0x0000_ffff) | (apic_id << 24) | (count << 16);
                e.ecx &= !(bit::MONITOR
                    | bit::DS_CPL
                    | bit::VMX
                    | bit::SMX
                    | bit::EST
                    | bit::TM2
                    | bit::PDCM
                    | bit::TSC_DEADLINE);
                if policy.tsc_deadline {
                    e.ecx |= bit::TSC_DEADLINE;
                }
                e.ecx |= bit::HYPERVISOR;
                e.edx &= !(bit::DS | bit::ACPI_THERMAL | bit::TM | bit::PBE | bit::HTT);
                if count > 1 {
                    e.edx |= bit::HTT;
                }
            }
            0x4 => {
                // Cores per package - 1 in EAX[31:26]; one thread shares each cache
                // level below L3, all cores share L3 and above.
                let level = (e.eax >> 5) & 0x7;
                let sharing = if level >= 3 { count - 1 } else { 0 };
                e.eax = (e.eax & 0x0000_3fff) | ((count - 1) << 26) | (sharing << 14);
            }
            0x7 if e.index == 0 => {
                e.ebx &= !bit::SGX;
                e.ecx &= !(bit::WAITPKG | bit::SGX_LC);
                if !policy.arch_capabilities_msr {
                    e.edx &= !bit::ARCH_CAPABILITIES;
                }
            }
            0xb | 0x1f => {
                // Two levels: SMT (one thread per core) and core (count cores).
                e.edx = apic_id;
                match e.index {
                    0 => {
                        e.eax = 0;
                        e.ebx = 1;
                        e.ecx = 1 << 8;
                    }
                    1 => {
                        e.eax = id_bits(policy.vcpu_count);
                        e.ebx = count;
                        e.ecx = (2 << 8) | 1;
                    }
                    n => {
                        e.eax = 0;
                        e.ebx = 0;
                        e.ecx = n & 0xff;
                    }
                }
            }
            0x8000_0001 => {
                e.ecx &= !bit::SVM;
            }
            0x8000_0008 => {
                // AMD: number of cores - 1 in ECX[7:0], APIC id size in ECX[15:12].
                e.ecx = (e.ecx & !0xf0ff) | (id_bits(policy.vcpu_count) << 12) | (count - 1);
            }
            _ => {}
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(function: u32, index: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax,
            ebx,
            ecx,
            edx,
            ..Default::default()
        }
    }

    fn host() -> Vec<kvm_cpuid_entry2> {
        vec![
            leaf(0, 0, 0x1f, 0, 0, 0),
            leaf(1, 0, 0x00a2_0f12, 0xff08_0800, 0xffff_ffff, 0xffff_ffff),
            leaf(4, 0, 0x0000_0121, 0, 0, 0),
            leaf(4, 3, 0x0000_0163, 0, 0, 0),
            leaf(6, 0, 4, 0, 1, 0),
            leaf(7, 0, 0, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff),
            leaf(7, 1, 0, 0xffff_ffff, 0, 0),
            leaf(0xa, 0, 0x0803_0402, 0, 0, 0),
            leaf(0xb, 0, 0, 0, 0, 0),
            leaf(0xb, 1, 0, 0, 0, 0),
            leaf(0x8000_0001, 0, 0, 0, 0xffff_ffff, 0),
            leaf(0x8000_0008, 0, 0x3030, 0, 0xffff_ffff, 0),
            leaf(0x8000_000a, 0, 1, 0x8000, 0, 0xffff),
        ]
    }

    fn policy(vcpu_id: u8, vcpu_count: u8) -> CpuidPolicy {
        CpuidPolicy {
            vcpu_id,
            vcpu_count,
            tsc_deadline: true,
            arch_capabilities_msr: false,
        }
    }

    fn find(entries: &[kvm_cpuid_entry2], f: u32, i: u32) -> Option<kvm_cpuid_entry2> {
        entries
            .iter()
            .find(|e| e.function == f && e.index == i)
            .copied()
    }

    #[test]
    fn leaf1_carries_apic_id_and_count_and_hides_what_we_do_not_offer() {
        let out = filter(&host(), &policy(3, 4));
        let l1 = find(&out, 1, 0).unwrap();
        assert_eq!(l1.ebx >> 24, 3);
        assert_eq!((l1.ebx >> 16) & 0xff, 4);
        assert_eq!(l1.ebx & 0xffff, 0x0800, "CLFLUSH size and brand index kept");
        assert_ne!(l1.ecx & bit::HYPERVISOR, 0);
        for b in [
            bit::VMX,
            bit::MONITOR,
            bit::PDCM,
            bit::SMX,
            bit::EST,
            bit::TM2,
        ] {
            assert_eq!(l1.ecx & b, 0, "ecx bit {b:#x} must be cleared");
        }
        assert_ne!(l1.ecx & bit::TSC_DEADLINE, 0);
        assert_ne!(l1.edx & bit::HTT, 0);
        assert_eq!(
            l1.edx & (bit::TM | bit::PBE | bit::ACPI_THERMAL | bit::DS),
            0
        );
    }

    #[test]
    fn single_vcpu_has_no_htt_and_tsc_deadline_follows_kvm() {
        let mut p = policy(0, 1);
        p.tsc_deadline = false;
        let l1 = find(&filter(&host(), &p), 1, 0).unwrap();
        assert_eq!(l1.edx & bit::HTT, 0);
        assert_eq!(l1.ecx & bit::TSC_DEADLINE, 0);
    }

    #[test]
    fn nested_virt_pmu_thermal_and_sgx_are_removed() {
        let out = filter(&host(), &policy(0, 2));
        assert!(find(&out, 0x6, 0).is_none());
        assert!(find(&out, 0xa, 0).is_none());
        assert!(find(&out, 0x8000_000a, 0).is_none());
        assert_eq!(find(&out, 0x8000_0001, 0).unwrap().ecx & bit::SVM, 0);
        let l7 = find(&out, 7, 0).unwrap();
        assert_eq!(l7.ebx & bit::SGX, 0);
        assert_eq!(l7.ecx & (bit::WAITPKG | bit::SGX_LC), 0);
        assert_eq!(l7.edx & bit::ARCH_CAPABILITIES, 0);
        // Sub-leaf 1 of leaf 7 is passed through untouched.
        assert_eq!(find(&out, 7, 1).unwrap().ebx, 0xffff_ffff);
    }

    #[test]
    fn arch_capabilities_kept_when_the_msr_is_backed() {
        let mut p = policy(0, 1);
        p.arch_capabilities_msr = true;
        let l7 = find(&filter(&host(), &p), 7, 0).unwrap();
        assert_ne!(l7.edx & bit::ARCH_CAPABILITIES, 0);
    }

    #[test]
    fn topology_leaves_describe_the_configured_vcpus() {
        let out = filter(&host(), &policy(2, 3));
        let smt = find(&out, 0xb, 0).unwrap();
        let core = find(&out, 0xb, 1).unwrap();
        assert_eq!((smt.eax, smt.ebx, smt.ecx >> 8, smt.edx), (0, 1, 1, 2));
        assert_eq!((core.eax, core.ebx, core.ecx >> 8, core.edx), (2, 3, 2, 2));
        let l4_l1 = find(&out, 4, 0).unwrap();
        let l4_l3 = find(&out, 4, 3).unwrap();
        assert_eq!(l4_l1.eax >> 26, 2);
        assert_eq!((l4_l1.eax >> 14) & 0xfff, 0);
        assert_eq!((l4_l3.eax >> 14) & 0xfff, 2);
        assert_eq!(l4_l1.eax & 0x3fff, 0x121, "cache type and level kept");
        let amd = find(&out, 0x8000_0008, 0).unwrap();
        assert_eq!(amd.ecx & 0xff, 2);
        assert_eq!((amd.ecx >> 12) & 0xf, 2);
    }

    #[test]
    fn id_bits_rounds_up() {
        assert_eq!([1, 2, 3, 4, 5, 255].map(id_bits), [0, 1, 2, 2, 3, 8]);
    }
}
