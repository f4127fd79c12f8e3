//! The debug-exit port (0x501): a write of `v` ends the VM with status `v`.
//!
//! Unlike QEMU's isa-debug-exit (which reports `(v << 1) | 1`), the status is
//! passed through unchanged, so a guest's 0 is the VMM's 0.

use std::sync::Arc;

use super::bus::BusDevice;
use crate::vm::control::{Outcome, VmControl};

/// The debug-exit device.
#[derive(Debug)]
pub struct DebugExit {
    control: Arc<VmControl>,
}

impl DebugExit {
    /// A device that stops `control`'s VM.
    pub fn new(control: Arc<VmControl>) -> Self {
        DebugExit { control }
    }
}

impl BusDevice for DebugExit {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        let status = data.first().copied().unwrap_or(0);
        self.control.request_stop(Outcome::GuestExit { status });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_stops_with_the_low_byte() {
        let control = Arc::new(VmControl::new().unwrap());
        let mut dev = DebugExit::new(control.clone());
        dev.write(0, &[0x2a, 0x01, 0, 0]);
        assert_eq!(control.outcome(), Some(Outcome::GuestExit { status: 0x2a }));
    }
}
