//! Bounds-checked little-endian reads from byte slices that came from
//! outside the kernel (boot information, ACPI tables, ELF and disk images);
//! the kernel's own parsers use these too.
//!
//! Every read returns `None` past the end, so the parsers built on these
//! cannot index out of range on hostile input.

/// The `N` bytes at `offset`, if they all lie inside `bytes`.
#[inline]
pub fn array<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    let end = offset.checked_add(N)?;
    let slice = bytes.get(offset..end)?;
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    Some(out)
}

/// The byte at `offset`.
#[inline]
pub fn u8_at(bytes: &[u8], offset: usize) -> Option<u8> {
    bytes.get(offset).copied()
}

/// The wrapping byte sum ACPI uses for its checksums (valid when it is 0).
pub fn byte_sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
}

/// The little-endian `u16` at `offset`.
#[inline]
pub fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    array(bytes, offset).map(u16::from_le_bytes)
}

/// The little-endian `u32` at `offset`.
#[inline]
pub fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    array(bytes, offset).map(u32::from_le_bytes)
}

/// The little-endian `u64` at `offset`.
#[inline]
pub fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    array(bytes, offset).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_and_refuses_past_the_end() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(u16_at(&b, 0), Some(0x0201));
        assert_eq!(u32_at(&b, 5), Some(0x0908_0706));
        assert_eq!(u32_at(&b, 6), None);
        assert_eq!(u64_at(&b, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(u64_at(&b, 2), None);
        assert_eq!(u16_at(&b, usize::MAX), None);
        assert_eq!(u8_at(&b, 8), Some(9));
        assert_eq!(u8_at(&b, 9), None);
        assert_eq!(byte_sum(&[0xff, 0x01, 0x10]), 0x10);
    }
}
