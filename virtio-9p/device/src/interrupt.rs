//! The interrupt status word a virtio-mmio device shares with its transport.
//!
//! The device sets a bit and signals (coco-vmm's signal is an irqfd, so the
//! in-kernel irqchip injects the line without a VMM round trip); the guest
//! reads `InterruptStatus` and acknowledges with `InterruptACK`, both handled
//! by the transport.

use std::fmt;
use std::sync::{Mutex, MutexGuard};

/// `InterruptStatus` bit: the device used a buffer.
pub const USED_BUFFER: u32 = 1 << 0;
/// `InterruptStatus` bit: the configuration (or device status) changed.
pub const CONFIG_CHANGE: u32 = 1 << 1;

/// How a raised interrupt reaches the guest; called with the bits just
/// raised (virtio-pci sends used-buffer and configuration interrupts to
/// different MSI-X vectors; virtio-mmio has one line for both).
pub type Signal = Box<dyn Fn(u32) + Send + Sync>;

/// The interrupt state of one device.
pub struct Interrupt {
    state: Mutex<State>,
    signal: Signal,
}

#[derive(Debug, Default)]
struct State {
    /// `InterruptStatus`.
    status: u32,
    /// How many times bits were raised (wraps; only compared for equality).
    raised: u64,
    /// `raised` and `status` when the guest last read `InterruptStatus`.
    seen: (u64, u32),
}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interrupt")
            .field("state", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl Interrupt {
    /// An interrupt that calls `signal` whenever a bit is raised.
    pub fn new(signal: Signal) -> Self {
        Interrupt {
            state: Mutex::new(State::default()),
            signal,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned state is still
        // consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets `bits` in the status word and signals the guest.
    pub fn raise(&self, bits: u32) {
        {
            let mut s = self.lock();
            s.status |= bits;
            s.raised = s.raised.wrapping_add(1);
        }
        (self.signal)(bits);
    }

    /// The status word, without side effects (for tests and logs).
    pub fn status(&self) -> u32 {
        self.lock().status
    }

    /// The guest reads `InterruptStatus`: the word, remembered for
    /// [`Interrupt::posted_ack`].
    pub fn read_status(&self) -> u32 {
        let mut s = self.lock();
        s.seen = (s.raised, s.status);
        s.status
    }

    /// Returns the status word and clears it, in one step (virtio-pci's ISR
    /// status register is read-to-clear).
    pub fn take_status(&self) -> u32 {
        let mut s = self.lock();
        let bits = s.status;
        s.status = 0;
        s.seen = (s.raised, 0);
        bits
    }

    /// Clears `bits` (a trapped `InterruptACK` write: the value is known).
    pub fn ack(&self, bits: u32) {
        self.lock().status &= !bits;
    }

    /// An `InterruptACK` write that arrived through an ioeventfd, so its
    /// value is unknown and it is handled after the fact. Drivers write back
    /// what they just read from `InterruptStatus` (Linux and guest-kernel
    /// both do), so this clears the bits of the last status read — unless
    /// anything was raised since that read: then those bits may stand for
    /// events the guest has not seen, and everything stays set (at worst the
    /// next interrupt handler finds nothing new to do; an event is never
    /// lost). Saves the guest an exit to the VMM on every interrupt.
    pub fn posted_ack(&self) {
        let mut s = self.lock();
        let (raised, bits) = s.seen;
        if raised == s.raised {
            s.status &= !bits;
        }
    }

    /// Clears everything (device reset).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.status = 0;
        s.seen = (s.raised, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn raise_sets_bits_and_signals_ack_clears_only_named_bits() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        let irq = Interrupt::new(Box::new(move |_| {
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

    fn quiet() -> Interrupt {
        Interrupt::new(Box::new(|_| {}))
    }

    #[test]
    fn a_posted_ack_clears_what_the_guest_read() {
        let irq = quiet();
        irq.raise(USED_BUFFER);
        assert_eq!(irq.read_status(), USED_BUFFER);
        irq.posted_ack();
        assert_eq!(irq.status(), 0);
        // A second posted ack (eventfd counts coalesce) changes nothing.
        irq.posted_ack();
        assert_eq!(irq.status(), 0);
    }

    #[test]
    fn a_posted_ack_keeps_bits_raised_after_the_guest_read() {
        let irq = quiet();
        irq.raise(USED_BUFFER);
        assert_eq!(irq.read_status(), USED_BUFFER);
        // The device used another buffer before the ack was handled: the
        // guest may not have seen it, so the bit must survive the ack.
        irq.raise(USED_BUFFER);
        irq.posted_ack();
        assert_eq!(irq.status(), USED_BUFFER);
        // The next handler reads and acks it.
        assert_eq!(irq.read_status(), USED_BUFFER);
        irq.posted_ack();
        assert_eq!(irq.status(), 0);
    }

    #[test]
    fn a_posted_ack_without_a_read_or_after_reset_clears_nothing_new() {
        let irq = quiet();
        irq.raise(CONFIG_CHANGE);
        irq.posted_ack();
        assert_eq!(irq.status(), CONFIG_CHANGE, "no status read yet");
        assert_eq!(irq.read_status(), CONFIG_CHANGE);
        irq.clear();
        irq.raise(USED_BUFFER);
        irq.posted_ack();
        assert_eq!(irq.status(), USED_BUFFER, "raised after the reset");
    }

    #[test]
    fn posted_acks_racing_raises_never_lose_an_event() {
        // The invariant that makes posted acks safe: the used-buffer bit is
        // clear only if the guest read the status after the latest raise
        // (so its handler is processing that event). Checked after every
        // read/ack pair while another thread raises.
        let irq = Arc::new(quiet());
        let raiser = {
            let irq = Arc::clone(&irq);
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    irq.raise(USED_BUFFER);
                }
            })
        };
        // The raise generation of the latest read that showed the bit.
        let mut shown = 0u64;
        let holds = |irq: &Interrupt, shown: u64| {
            let s = irq.lock();
            s.status & USED_BUFFER != 0 || s.raised == shown
        };
        for _ in 0..20_000 {
            if irq.read_status() & USED_BUFFER != 0 {
                shown = irq.lock().seen.0;
            }
            irq.posted_ack();
            assert!(holds(&irq, shown), "{irq:?}");
        }
        raiser.join().unwrap();
        irq.posted_ack();
        assert!(holds(&irq, shown), "{irq:?}");
    }
}
