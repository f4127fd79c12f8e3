//! A deterministic filesystem UUID.
//!
//! ext2 wants a UUID in the superblock, and e2fsck run without `-n`
//! replaces an all-zero one, so the image carries one derived from its own
//! metadata: two FNV-1a streams over the inodes, directory blocks, symlink
//! and indirect blocks, group descriptors and superblock. It follows the
//! tree's names, modes, sizes and layout, but not file contents, which
//! would cost a pass over every data byte. Not cryptographic, and not meant
//! to be.

/// Hashes metadata as it is written.
#[derive(Debug)]
pub struct MetaHash([u64; 2]);

impl MetaHash {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub fn new() -> Self {
        // The standard FNV-1a offset basis, and a second arbitrary one.
        Self([0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142])
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for h in &mut self.0 {
            for &b in bytes {
                *h = (*h ^ u64::from(b)).wrapping_mul(Self::PRIME);
            }
        }
    }

    /// The hash as an RFC 9562 version 8 ("custom") UUID.
    pub fn uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        u[..8].copy_from_slice(&self.0[0].to_be_bytes());
        u[8..].copy_from_slice(&self.0[1].to_be_bytes());
        u[6] = (u[6] & 0x0f) | 0x80;
        u[8] = (u[8] & 0x3f) | 0x80;
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_version_and_variant_and_follows_input() {
        let mut a = MetaHash::new();
        a.update(b"one");
        let mut b = MetaHash::new();
        b.update(b"two");
        let (ua, ub) = (a.uuid(), b.uuid());
        assert_ne!(ua, ub);
        assert_eq!(ua[6] >> 4, 8);
        assert_eq!(ua[8] >> 6, 0b10);
        let mut c = MetaHash::new();
        c.update(b"one");
        assert_eq!(c.uuid(), ua);
    }
}
