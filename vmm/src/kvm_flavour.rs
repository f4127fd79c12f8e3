//! Which KVM is underneath: hardware (VMX or SVM) or kvm-pvm.
//!
//! kvm-pvm is a software hypervisor: ring-0 guest code is emulated one
//! instruction at a time and `syscall` from ring 3 is not delivered, so the
//! guest kernel must enter through a trap gate there. Nothing else in the VMM
//! changes with the flavour; it is detected only to tell the guest and the log.

use std::path::Path;

use coconut_abi::SyscallGate;

/// The KVM implementation behind `/dev/kvm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvmFlavour {
    /// kvm-pvm: software virtualisation (no VMX/SVM).
    Pvm,
    /// Intel VMX (kvm_intel).
    Vmx,
    /// AMD SVM (kvm_amd).
    Svm,
    /// KVM without a recognised vendor module.
    Unknown,
}

impl KvmFlavour {
    /// Detects the flavour from the loaded modules under `/sys/module`.
    pub fn detect() -> Self {
        Self::detect_at(Path::new("/sys/module"))
    }

    /// Detects the flavour from a module directory (for tests).
    pub fn detect_at(sys_module: &Path) -> Self {
        if sys_module.join("kvm_pvm").exists() {
            KvmFlavour::Pvm
        } else if sys_module.join("kvm_intel").exists() {
            KvmFlavour::Vmx
        } else if sys_module.join("kvm_amd").exists() {
            KvmFlavour::Svm
        } else {
            KvmFlavour::Unknown
        }
    }

    /// How shards should enter the guest kernel on this KVM. The trap gate
    /// works everywhere, so it is also the choice when the flavour is unknown.
    pub fn syscall_gate(self) -> SyscallGate {
        match self {
            KvmFlavour::Vmx | KvmFlavour::Svm => SyscallGate::Syscall,
            KvmFlavour::Pvm | KvmFlavour::Unknown => SyscallGate::Trap,
        }
    }

    /// A description for logs and `coco-vmm check`.
    pub fn describe(self) -> &'static str {
        match self {
            KvmFlavour::Pvm => {
                "kvm-pvm (software virtualisation: ring-0 guest code is emulated, syscall from ring 3 is not delivered)"
            }
            KvmFlavour::Vmx => "hardware KVM (Intel VMX)",
            KvmFlavour::Svm => "hardware KVM (AMD SVM)",
            KvmFlavour::Unknown => "KVM (vendor module not identified)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_flavour_from_module_dirs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(KvmFlavour::detect_at(dir.path()), KvmFlavour::Unknown);
        std::fs::create_dir(dir.path().join("kvm_amd")).unwrap();
        assert_eq!(KvmFlavour::detect_at(dir.path()), KvmFlavour::Svm);
        std::fs::create_dir(dir.path().join("kvm_intel")).unwrap();
        assert_eq!(KvmFlavour::detect_at(dir.path()), KvmFlavour::Vmx);
        std::fs::create_dir(dir.path().join("kvm_pvm")).unwrap();
        assert_eq!(KvmFlavour::detect_at(dir.path()), KvmFlavour::Pvm);
    }

    #[test]
    fn gate_follows_flavour() {
        assert_eq!(KvmFlavour::Pvm.syscall_gate(), SyscallGate::Trap);
        assert_eq!(KvmFlavour::Unknown.syscall_gate(), SyscallGate::Trap);
        assert_eq!(KvmFlavour::Svm.syscall_gate(), SyscallGate::Syscall);
        assert_eq!(KvmFlavour::Vmx.syscall_gate(), SyscallGate::Syscall);
    }
}
