//! coco-vmm: a KVM hypervisor for coco hives.
//!
//! The crate is a library so integration tests and benchmarks drive the same
//! code the binary does. Layout:
//! - [`arch`]: the x86-64 machine (memory map, CPUID, MSRs, registers, ACPI);
//! - [`boot`]: guest images and boot protocols (PVH today);
//! - [`devices`]: the emulated devices and the buses that route exits to them;
//! - [`vm`]: building a VM (one linear recipe), running it, stopping it;
//! - [`hive`]: the supervisor that starts one VM process per hive.toml guest;
//! - [`host`]: what `coco-vmm check` reports about this machine;
//! - [`kvm_flavour`]: hardware KVM versus kvm-pvm.

pub mod arch;
pub mod bench;
pub mod boot;
pub mod devices;
pub mod hive;
pub mod host;
pub mod kvm_flavour;
pub mod vm;
