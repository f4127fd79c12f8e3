//! The large test file the build generates into the ramdisk
//! (`/data/large/pattern.bin`) so fs-reader can prove reads through ext2
//! double-indirect blocks. It is generated, not checked in, and its bytes
//! follow a formula so the shard and the tests can verify it independently:
//! little-endian u64 word `k` is `splitmix64(k ^ PATTERN_SEED)`, truncated
//! to [`PATTERN_SIZE`] bytes.
//!
//! This file is compiled twice: into the library (tests use it) and, by
//! `#[path]`, into the build script (which writes the file).

/// Path of the file in the ramdisk.
pub const PATTERN_PATH: &str = "/data/large/pattern.bin";
/// Seed mixed into every word index.
pub const PATTERN_SEED: u64 = 0xc0c0_5eed_0000_0001;
/// Size in bytes: past 12 direct blocks (48 KiB) and the single-indirect
/// range (4 MiB) of a 4 KiB-block ext2, by 300 KiB and an odd tail, so the
/// end of the file is reached only through double-indirect blocks.
pub const PATTERN_SIZE: usize = (12 << 12) + (1024 << 12) + 300 * 1024 + 4567;

/// One step of SplitMix64.
pub const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The file's bytes.
pub fn pattern_bytes() -> Vec<u8> {
    let mut v = Vec::with_capacity(PATTERN_SIZE + 8);
    let mut k = 0u64;
    while v.len() < PATTERN_SIZE {
        v.extend_from_slice(&splitmix64(k ^ PATTERN_SEED).to_le_bytes());
        k += 1;
    }
    v.truncate(PATTERN_SIZE);
    v
}

/// 64-bit FNV-1a, the checksum fs-reader prints.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
