//! A bounded, append-only byte stream with absolute offsets: the storage of
//! every append-only node (telemetry rings, logs, JSON-lines files).
//!
//! Offsets never restart: the stream's `end` is the total number of bytes
//! ever appended, and only the last `capacity` bytes (the retained window
//! `base..end`) are kept. A reader holding an offset therefore either gets
//! the bytes that were at that offset or learns they are gone (`Stale`);
//! it never silently gets different bytes. Why one type for all of them:
//! the offset rules (append only at the end, stale below the base, "no data
//! yet" at the end) are the same; only what happens to an oversize append
//! differs ([`Overflow`]).

use std::collections::VecDeque;

/// What to do with one append larger than the whole ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse it (telemetry: a heartbeat must not erase the ring).
    Refuse,
    /// Keep its tail (logs, consoles).
    KeepTail,
}

/// Result of an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Offset the data was written at.
    pub at: u64,
    /// Oldest bytes dropped to make room.
    pub dropped: u64,
}

/// Result of a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingRead {
    /// Bytes at the offset (possibly fewer than asked).
    Data(Vec<u8>),
    /// The offset is at (or past) the end: nothing there yet.
    AtEnd,
    /// The offset is below the retained base: those bytes were dropped.
    Stale {
        /// The oldest offset still readable.
        base: u64,
    },
}

/// The ring.
#[derive(Clone, Debug)]
pub struct ByteRing {
    buf: VecDeque<u8>,
    base: u64,
    capacity: usize,
    overflow: Overflow,
    /// Trim at line boundaries (drop whole lines) when wrapping.
    lines: bool,
    dropped_total: u64,
}

impl ByteRing {
    /// A ring keeping `capacity` bytes (≥ 1). `lines` makes wrapping drop
    /// whole lines so the retained window starts at a line.
    #[must_use]
    pub fn new(capacity: usize, overflow: Overflow, lines: bool) -> ByteRing {
        ByteRing {
            buf: VecDeque::new(),
            base: 0,
            capacity: capacity.max(1),
            overflow,
            lines,
            dropped_total: 0,
        }
    }

    /// Total bytes ever appended (the next append's offset).
    #[must_use]
    pub fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Oldest readable offset.
    #[must_use]
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Configured capacity.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes dropped by wrapping so far.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Appends `data`; `Err(())` when it is larger than the ring and the
    /// ring refuses oversize appends.
    #[allow(clippy::result_unit_err)]
    pub fn append(&mut self, data: &[u8]) -> Result<Appended, ()> {
        let at = self.end();
        let data = if data.len() > self.capacity {
            match self.overflow {
                Overflow::Refuse => return Err(()),
                Overflow::KeepTail => {
                    let skip = data.len() - self.capacity;
                    // The skipped head counts as written and dropped.
                    let dropped = self.buf.len() as u64 + skip as u64;
                    self.base = at + skip as u64;
                    self.buf.clear();
                    self.dropped_total += dropped;
                    let tail = data.get(skip..).unwrap_or_default();
                    let clean = skip == 0 || data.get(skip - 1) == Some(&b'\n');
                    self.buf.extend(tail);
                    let more = self.trim_to_line(clean);
                    self.dropped_total += more;
                    return Ok(Appended {
                        at,
                        dropped: dropped + more,
                    });
                }
            }
        } else {
            data
        };
        let over = (self.buf.len() + data.len()).saturating_sub(self.capacity);
        let mut dropped = over as u64;
        let clean = over == 0 || self.buf.get(over - 1) == Some(&b'\n');
        self.buf.drain(..over);
        self.base += over as u64;
        dropped += self.trim_to_line(clean);
        self.buf.extend(data);
        self.dropped_total += dropped;
        Ok(Appended { at, dropped })
    }

    /// In line mode, drops a partial first line (unless the byte before the
    /// window, `clean`, was a newline); returns bytes dropped.
    fn trim_to_line(&mut self, clean: bool) -> u64 {
        if !self.lines || clean {
            return 0;
        }
        let cut = match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => return 0,
        };
        self.buf.drain(..cut);
        self.base += cut as u64;
        cut as u64
    }

    /// Reads up to `count` bytes at absolute `offset`.
    #[must_use]
    pub fn read(&self, offset: u64, count: usize) -> RingRead {
        if offset < self.base {
            return RingRead::Stale { base: self.base };
        }
        if offset >= self.end() {
            return RingRead::AtEnd;
        }
        let start = usize::try_from(offset - self.base).unwrap_or(usize::MAX);
        let n = count.min(self.buf.len().saturating_sub(start));
        RingRead::Data(self.buf.range(start..start + n).copied().collect())
    }

    /// The retained bytes.
    #[must_use]
    pub fn contents(&self) -> Vec<u8> {
        self.buf.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_absolute_and_wrap_drops_oldest() {
        let mut r = ByteRing::new(8, Overflow::Refuse, false);
        assert_eq!(r.append(b"abcdef").unwrap(), Appended { at: 0, dropped: 0 });
        assert_eq!(r.append(b"ghij").unwrap(), Appended { at: 6, dropped: 2 });
        assert_eq!(r.base(), 2);
        assert_eq!(r.end(), 10);
        assert_eq!(r.read(0, 4), RingRead::Stale { base: 2 });
        assert_eq!(r.read(2, 3), RingRead::Data(b"cde".to_vec()));
        assert_eq!(r.read(8, 100), RingRead::Data(b"ij".to_vec()));
        assert_eq!(r.read(10, 1), RingRead::AtEnd);
        assert_eq!(r.read(u64::MAX, 1), RingRead::AtEnd);
        assert_eq!(r.append(b"123456789"), Err(()));
        assert_eq!(r.end(), 10);
        assert_eq!(r.append(b"12345678").unwrap().dropped, 8);
        assert_eq!(r.contents(), b"12345678");
        assert_eq!(r.dropped_total(), 10);
    }

    #[test]
    fn line_mode_keeps_whole_lines() {
        let mut r = ByteRing::new(10, Overflow::KeepTail, true);
        r.append(b"aaa\nbbb\n").unwrap();
        r.append(b"cc\n").unwrap();
        assert_eq!(r.contents(), b"bbb\ncc\n");
        assert_eq!(r.base(), 4);
        // Dropping part of a line drops the rest of it too.
        r.append(b"dddd").unwrap();
        assert_eq!(r.contents(), b"cc\ndddd");
        r.append(b"0123456789abcdef\nxy\n").unwrap();
        assert_eq!(r.contents(), b"xy\n");
        assert_eq!(r.end(), 35);
        // Dropping exactly one whole line keeps the next one intact.
        let mut r = ByteRing::new(8, Overflow::KeepTail, true);
        r.append(b"abc\ndef\n").unwrap();
        assert_eq!(r.append(b"ghij").unwrap().dropped, 4);
        assert_eq!(r.contents(), b"def\nghij");
        assert_eq!(r.read(r.base(), 100), RingRead::Data(b"def\nghij".to_vec()));
    }
}
