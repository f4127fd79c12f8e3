//! Model-specific registers every vCPU starts with.
//!
//! The values are what firmware would leave behind: the fast-string bit,
//! MTRRs enabled with write-back as the default type, and the system-call
//! MSRs cleared. Only MSRs that KVM lists as supported are written, so the
//! same code works on hardware KVM and on kvm-pvm (which, for example, has no
//! `IA32_ARCH_CAPABILITIES`); a refused write is an error naming the MSR.

/// `IA32_SYSENTER_CS`.
pub const SYSENTER_CS: u32 = 0x174;
/// `IA32_SYSENTER_ESP`.
pub const SYSENTER_ESP: u32 = 0x175;
/// `IA32_SYSENTER_EIP`.
pub const SYSENTER_EIP: u32 = 0x176;
/// `IA32_MISC_ENABLE`.
pub const MISC_ENABLE: u32 = 0x1a0;
/// `IA32_MTRR_DEF_TYPE`.
pub const MTRR_DEF_TYPE: u32 = 0x2ff;
/// `IA32_ARCH_CAPABILITIES`.
pub const ARCH_CAPABILITIES: u32 = 0x10a;
/// `STAR`.
pub const STAR: u32 = 0xc000_0081;
/// `LSTAR`.
pub const LSTAR: u32 = 0xc000_0082;
/// `CSTAR`.
pub const CSTAR: u32 = 0xc000_0083;
/// `SFMASK`.
pub const SYSCALL_MASK: u32 = 0xc000_0084;
/// `KERNEL_GS_BASE`.
pub const KERNEL_GS_BASE: u32 = 0xc000_0102;

const MISC_ENABLE_FAST_STRING: u64 = 1;
const MTRR_ENABLE: u64 = 1 << 11;
const MTRR_TYPE_WRITE_BACK: u64 = 6;

/// The boot MSRs as (index, value), before filtering.
pub const BOOT_MSRS: [(u32, u64); 10] = [
    (SYSENTER_CS, 0),
    (SYSENTER_ESP, 0),
    (SYSENTER_EIP, 0),
    (STAR, 0),
    (LSTAR, 0),
    (CSTAR, 0),
    (SYSCALL_MASK, 0),
    (KERNEL_GS_BASE, 0),
    (MISC_ENABLE, MISC_ENABLE_FAST_STRING),
    (MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRITE_BACK),
];

/// The boot MSRs that KVM supports, given its MSR index list.
pub fn boot_msrs(supported: &[u32]) -> Vec<(u32, u64)> {
    BOOT_MSRS
        .iter()
        .copied()
        .filter(|(index, _)| supported.contains(index))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_supported_msrs_are_written() {
        let supported = [STAR, LSTAR, MTRR_DEF_TYPE, 0x10];
        assert_eq!(
            boot_msrs(&supported),
            vec![(STAR, 0), (LSTAR, 0), (MTRR_DEF_TYPE, (1 << 11) | 6)]
        );
        assert!(boot_msrs(&[]).is_empty());
    }

    #[test]
    fn every_boot_msr_when_all_are_supported() {
        let all: Vec<u32> = BOOT_MSRS.iter().map(|(i, _)| *i).collect();
        assert_eq!(boot_msrs(&all).len(), BOOT_MSRS.len());
        assert!(!all.contains(&ARCH_CAPABILITIES));
    }
}
