//! The part of the i8042 keyboard controller that PC guests use to reset:
//! command 0xFE on port 0x64 ends the VM. The status register reads as
//! "no data, input buffer empty" so guests polling it make progress.

use std::sync::Arc;

use coconut_abi::ports::I8042_RESET;

use super::bus::BusDevice;
use crate::vm::control::{Outcome, VmControl};

/// Offset of the command/status port from the data port (0x60).
pub const COMMAND_OFFSET: u64 = 4;

/// The i8042 reset line.
#[derive(Debug)]
pub struct I8042 {
    control: Arc<VmControl>,
}

impl I8042 {
    /// A controller whose reset stops `control`'s VM.
    pub fn new(control: Arc<VmControl>) -> Self {
        I8042 { control }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset == COMMAND_OFFSET && data.first() == Some(&I8042_RESET) {
            self.control.request_stop(Outcome::Reset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_reset_command_resets() {
        let control = Arc::new(VmControl::new().unwrap());
        let mut dev = I8042::new(control.clone());
        dev.write(0, &[I8042_RESET]);
        dev.write(COMMAND_OFFSET, &[0xad]);
        assert!(!control.is_stopping());
        dev.write(COMMAND_OFFSET, &[I8042_RESET]);
        assert_eq!(control.outcome(), Some(Outcome::Reset));
    }
}
