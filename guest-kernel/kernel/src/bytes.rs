//! Little-endian field access in byte slices that came from outside the
//! kernel (boot information, ACPI tables, disk images): coconut-core's
//! bounds-checked readers, unit-tested on the host. Every read returns
//! `None` past the end, so parsers built on these never index out of range
//! on hostile input.

pub use coconut_core::bytes::{array, byte_sum, u8_at, u16_at, u32_at, u64_at};
