//! Block and inode bitmaps: one bit per block or inode, bit 0 being the
//! least significant bit of byte 0.
//!
//! Ranges are filled a byte at a time where they can be, so marking a
//! large file's run costs one `fill` rather than a loop over its blocks.

/// Sets `len` bits starting at bit `start`.
pub fn set_bits(bits: &mut [u8], mut start: u64, mut len: u64) {
    while len > 0 && !start.is_multiple_of(8) {
        set_bit(bits, start);
        start += 1;
        len -= 1;
    }
    let whole = (len / 8) as usize;
    let at = (start / 8) as usize;
    bits[at..at + whole].fill(0xFF);
    start += whole as u64 * 8;
    len -= whole as u64 * 8;
    while len > 0 {
        set_bit(bits, start);
        start += 1;
        len -= 1;
    }
}

fn set_bit(bits: &mut [u8], bit: u64) {
    bits[(bit / 8) as usize] |= 1 << (bit % 8);
}

/// Number of set bits.
pub fn count_ones(bits: &[u8]) -> u32 {
    bits.iter().map(|b| b.count_ones()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_bits_handles_partial_bytes() {
        let mut b = [0u8; 4];
        set_bits(&mut b, 3, 14);
        assert_eq!(b, [0b1111_1000, 0xFF, 0b0000_0001, 0]);
        assert_eq!(count_ones(&b), 14);
        let mut b = [0u8; 2];
        set_bits(&mut b, 0, 16);
        assert_eq!(b, [0xFF, 0xFF]);
        set_bits(&mut b, 16, 0);
        let mut b = [0u8; 1];
        set_bits(&mut b, 2, 3);
        assert_eq!(b, [0b0001_1100]);
    }
}
