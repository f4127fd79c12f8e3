//! The interrupt status word a virtio-mmio device shares with its transport.
//!
//! The device sets a bit and signals (coco-vmm's signal is an irqfd, so the
//! in-kernel irqchip injects the line without a VMM round trip); the guest
//! reads `InterruptStatus` and acknowledges with `InterruptACK`, both handled
//! by the transport.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// `InterruptStatus` bit: the device used a buffer.
pub const USED_BUFFER: u32 = 1 << 0;
/// `InterruptStatus` bit: the configuration (or device status) changed.
pub const CONFIG_CHANGE: u32 = 1 << 1;

/// How a raised interrupt reaches the guest.
pub type Signal = Box<dyn Fn() + Send + Sync>;

/// The interrupt state of one device.
pub struct Interrupt {
    status: AtomicU32,
    signal: Signal,
}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interrupt")
            .field("status", &self.status.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Interrupt {
    /// An interrupt that calls `signal` whenever a bit is raised.
    pub fn new(signal: Signal) -> Self {
        Interrupt {
            status: AtomicU32::new(0),
            signal,
        }
    }

    /// Sets `bits` in the status word and signals the guest.
    pub fn raise(&self, bits: u32) {
        self.status.fetch_or(bits, Ordering::SeqCst);
        (self.signal)();
    }

    /// The status word (`InterruptStatus`).
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// Clears `bits` (`InterruptACK`).
    pub fn ack(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// Clears everything (device reset).
    pub fn clear(&self) {
        self.status.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn raise_sets_bits_and_signals_ack_clears_only_named_bits() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        let irq = Interrupt::new(Box::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        irq.raise(USED_BUFFER);
        irq.raise(CONFIG_CHANGE);
        assert_eq!(irq.status(), USED_BUFFER | CONFIG_CHANGE);
        assert_eq!(count.load(Ordering::SeqCst), 2);
        irq.ack(USED_BUFFER);
        assert_eq!(irq.status(), CONFIG_CHANGE);
        irq.clear();
        assert_eq!(irq.status(), 0);
    }
}
