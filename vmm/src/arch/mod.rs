//! x86-64 machine definition: memory layout, CPUID, MSRs, initial
//! registers and ACPI tables. Pure functions where possible, so the rules
//! are unit-tested without KVM.

pub mod acpi;
pub mod cpuid;
pub mod layout;
pub mod msr;
pub mod regs;
