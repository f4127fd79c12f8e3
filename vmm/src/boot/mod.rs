//! Boot loaders: get a kernel and its boot information into guest memory.
//! PVH (guest-kernel) and bzImage (Linux, 64-bit boot protocol) today;
//! multiboot (seL4) follows the same shape: load, place modules, write boot
//! info, return the entry point.

pub mod image;
pub mod linux;
pub mod pvh;
