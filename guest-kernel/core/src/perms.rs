//! Page permissions shared by the ELF loader and the address-space
//! bookkeeping, with the one rule both enforce: never writable and
//! executable at once (W^X).

/// A set of page permissions (read, write, execute).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Perms(u8);

impl Perms {
    /// No access (guard pages).
    pub const NONE: Perms = Perms(0);
    /// Readable.
    pub const R: Perms = Perms(1);
    /// Readable and writable.
    pub const RW: Perms = Perms(1 | 2);
    /// Readable and executable.
    pub const RX: Perms = Perms(1 | 4);

    const READ: u8 = 1;
    const WRITE: u8 = 2;
    const EXEC: u8 = 4;

    /// Builds a set from its three flags.
    pub const fn new(read: bool, write: bool, exec: bool) -> Perms {
        let mut bits = 0;
        if read {
            bits |= Self::READ;
        }
        if write {
            bits |= Self::WRITE;
        }
        if exec {
            bits |= Self::EXEC;
        }
        Perms(bits)
    }

    /// May be read.
    pub const fn read(self) -> bool {
        self.0 & Self::READ != 0
    }

    /// May be written.
    pub const fn write(self) -> bool {
        self.0 & Self::WRITE != 0
    }

    /// May be executed.
    pub const fn exec(self) -> bool {
        self.0 & Self::EXEC != 0
    }

    /// Obeys W^X (not both writable and executable).
    pub const fn is_wx_safe(self) -> bool {
        !(self.write() && self.exec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_and_wx_is_detected() {
        for bits in 0..8u8 {
            let p = Perms::new(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
            assert_eq!(p.read(), bits & 1 != 0);
            assert_eq!(p.write(), bits & 2 != 0);
            assert_eq!(p.exec(), bits & 4 != 0);
            assert_eq!(p.is_wx_safe(), bits & 6 != 6);
        }
        assert!(Perms::RX.is_wx_safe() && Perms::RW.is_wx_safe());
    }
}
