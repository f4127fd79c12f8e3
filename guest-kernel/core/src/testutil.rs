//! Helpers shared by the unit tests: a tiny deterministic PRNG for the
//! hostile-input tests (no external crates, same sequence on every run).

/// xorshift64*: good enough to mutate bytes and pick operations.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }

    /// Applies `count` random single-byte mutations to `buf`.
    pub fn mutate(&mut self, buf: &mut [u8], count: usize) {
        if buf.is_empty() {
            return;
        }
        for _ in 0..count {
            let i = self.below(buf.len() as u64) as usize;
            buf[i] = match self.below(4) {
                0 => 0,
                1 => 0xff,
                2 => buf[i] ^ (1 << self.below(8)),
                _ => self.next() as u8,
            };
        }
    }
}
