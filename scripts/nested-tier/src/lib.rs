//! The nested-QEMU test tier of coco.
//!
//! This machine's `/dev/kvm` is kvm-pvm, which cannot run everything a
//! hardware host can. The tier closes that gap: QEMU's software CPU (TCG,
//! `-cpu max`, which emulates AMD SVM with nested paging) boots a Debian
//! Linux **L1** in which `kvm_amd` provides a hardware-style KVM, and coco's
//! own binaries run inside L1 against L2 guests.
//!
//! The pieces, in the order a run uses them:
//! - [`Cache::prepare`] fetches the Debian kernel and busybox packages into
//!   `.coco-cache/nested/` (idempotent; offline once filled);
//! - [`modules::resolve`] picks the kernel modules L1 needs, in dependency
//!   order, from each module's `.modinfo`;
//! - [`Initramfs::build`] writes a newc cpio with busybox, the modules and
//!   the `/init` script [`script::init_script`] generates;
//! - [`L1::boot`] starts QEMU and streams its serial console;
//! - [`tier::run_tier`] runs a named list of [`InnerTest`]s inside L1 (each
//!   one a command line run in `chroot /host`, the host's root shared
//!   read-only over virtio-9p) and turns the markers the init script prints
//!   into per-test results;
//! - [`tenants`] is the list of named inner tests and their assertions.

pub mod bench;
pub mod cache;
pub mod cpio;
pub mod elf;
pub mod error;
pub mod hive9p;
pub mod initramfs;
pub mod modules;
pub mod qemu;
pub mod script;
pub mod tenants;
pub mod tier;
pub mod tool;

pub use cache::Cache;
pub use error::Error;
pub use initramfs::Initramfs;
pub use qemu::{L1, L1Config, Run};
pub use tier::{InnerResult, InnerTest, TierOptions, TierReport};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
