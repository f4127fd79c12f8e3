//! The guest side of the control plane: a virtio-mmio transport and the
//! virtio-9p device behind it.
//!
//! A guest's 9P client (Linux v9fs, guest-kernel's driver) puts each request
//! frame in a descriptor chain: readable descriptors carry the T-message,
//! writable ones receive the R-message. This crate takes whole frames out of
//! those chains and hands them to the caller (coco-vmm forwards them over the
//! VM process's socketpair to NineDoor in the supervisor), then writes the
//! replies back and raises the used-buffer interrupt. Replies may come back
//! in any order — a `tail` of a telemetry file blocks in NineDoor while other
//! requests complete — so pending chains are kept by 9P tag.
//!
//! Everything a guest controls is untrusted: every descriptor address is
//! checked against guest memory, chain shapes are checked (readable before
//! writable, bounded lengths), frames are checked (size field, minimum
//! header, tags). A bad *frame* fails that one request with an `Rlerror`; a
//! chain the device cannot interpret at all marks the device
//! `DEVICE_NEEDS_RESET`, as the virtio spec intends. Nothing here panics on
//! guest input.
//!
//! * [`common`] — what every transport shares: feature negotiation, status,
//!   queue setup and activation.
//! * [`mmio`] — the virtio-mmio (version 2, "modern") register window.
//! * [`pci`] — the virtio-pci (modern) capability structures of a BAR.
//! * [`interrupt`] — the interrupt status word shared by transport and device.
//! * [`ninep`] — the virtio-9p device: mount-tag config, request and reply paths.

pub mod common;
pub mod interrupt;
pub mod mmio;
pub mod ninep;
pub mod pci;

pub use common::{MmioEvent, VirtioDevice};
pub use interrupt::Interrupt;
pub use mmio::MmioTransport;
pub use ninep::{CompleteError, ProcessError, Virtio9p};
pub use pci::PciTransport;

pub use coco_virtio_mmio::{device_id, features};
