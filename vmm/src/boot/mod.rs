//! Boot loaders: get a kernel and its boot information into guest memory.
//! PVH (guest-kernel) today; multiboot (seL4) and bzImage (Linux) follow the
//! same shape: load, place modules, write boot info, return the entry point.

pub mod image;
pub mod pvh;
