//! The guest images coco-vmm carries inside its binary, built by this crate's
//! build script from the sources in this repository:
//! - `guest-kernel`: the coconut microkernel (PVH ELF for x86_64-unknown-none);
//! - `ramdisk`: `images/rootfs` plus the shards (`/bin/<name>`) and the
//!   generated `/data/large/pattern.bin` ([`pattern`]) as a read-only ext2
//!   image (PVH module 0).
//!
//! Embedding them makes `coco-vmm run` without a config self-contained: the
//! demo hive needs nothing but the binary. The build-time paths are exported
//! too, for tools (QEMU in benchmarks, the instruction census) that want files.

pub mod pattern;

/// The guest kernel ELF.
pub const GUEST_KERNEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guest-kernel.elf"));
/// The ext2 ramdisk.
pub const RAMDISK: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ramdisk.ext2"));
/// Where the build left the kernel ELF.
pub const GUEST_KERNEL_PATH: &str = concat!(env!("OUT_DIR"), "/guest-kernel.elf");
/// Where the build left the ramdisk.
pub const RAMDISK_PATH: &str = concat!(env!("OUT_DIR"), "/ramdisk.ext2");

/// Every built-in image by name (what `builtin:<name>` refers to).
pub const BUILTINS: &[(&str, &[u8])] = &[("guest-kernel", GUEST_KERNEL), ("ramdisk", RAMDISK)];

/// The built-in image called `name`.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_an_elf64_with_a_pvh_note() {
        assert_eq!(&GUEST_KERNEL[0..4], b"\x7fELF");
        assert_eq!(GUEST_KERNEL[4], 2, "ELFCLASS64");
        // The Xen note name appears in the image.
        assert!(GUEST_KERNEL.windows(4).any(|w| w == b"Xen\0"));
    }

    #[test]
    fn ramdisk_is_ext2() {
        assert!(RAMDISK.len() > 2048);
        assert_eq!(&RAMDISK[1024 + 56..1024 + 58], &[0x53, 0xef]);
    }

    #[test]
    fn ramdisk_holds_the_generated_pattern_file_whole() {
        let p = pattern::pattern_bytes();
        assert_eq!(p.len(), pattern::PATTERN_SIZE);
        assert!(p.len() > (12 + 1024) * 4096, "needs double-indirect blocks");
        // coco-mkext2 stores a file's data as one run of 4 KiB blocks.
        let at = RAMDISK
            .chunks_exact(4096)
            .position(|b| b == &p[..4096])
            .expect("pattern file's first block in the ramdisk")
            * 4096;
        assert_eq!(&RAMDISK[at..at + p.len()], &p[..]);
    }

    #[test]
    fn ramdisk_holds_the_shards() {
        // Every shard ELF starts a block of its own.
        let elves = RAMDISK
            .chunks_exact(4096)
            .filter(|b| b.starts_with(b"\x7fELF\x02\x01\x01"))
            .count();
        let shipped = [
            "hello",
            "hello-c",
            "fs-reader",
            "fuzz",
            "faulter",
            "chan-test",
            "cap-test",
            "ninep",
        ];
        assert_eq!(
            elves,
            shipped.len(),
            "one ELF per shipped shard: {shipped:?}"
        );
    }

    #[test]
    fn lookup_by_name() {
        assert!(builtin("guest-kernel").is_some());
        assert!(builtin("ramdisk").is_some());
        assert!(builtin("nope").is_none());
    }
}
