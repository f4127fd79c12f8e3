//! Ports whose writes are known to be harmless and deliberately dropped:
//! POST codes on 0x80 and the early-printf bytes some kernels (seL4) send to
//! port 0x00 before their UART is up. Claiming them keeps the log quiet.

use super::bus::BusDevice;

/// A sink that reads as zero and drops writes.
#[derive(Debug, Default)]
pub struct Ignored;

impl BusDevice for Ignored {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, _offset: u64, _data: &[u8]) {}
}
