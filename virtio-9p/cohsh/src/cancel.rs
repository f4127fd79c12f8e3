//! Cancelling a blocked request: the [`CancelToken`] shared by the shell, the
//! transport and the SIGINT handler.
//!
//! The 9P client is synchronous, so the only code that can stop waiting for
//! a reply is the transport's `recv`. The contract:
//!
//! * The shell **arms** the token around a wait it is willing to abandon (the
//!   outstanding read of `tail -f`, a `WAIT` in a script, a Tflush with a
//!   time limit), optionally with a deadline, and disarms it afterwards.
//! * Ctrl-C **fires** the token ([`CancelToken::fire`]).
//! * A transport's `recv` polls [`CancelToken::should_abort`] while it waits
//!   and, if it is true **before any byte of the next frame was consumed**,
//!   returns an error for which [`Interruptible::is_interrupted`] is true
//!   (for `std::io::Error`: kind `Interrupted`). It must never abandon a
//!   frame half-read, and it must retry a real `EINTR` itself.
//!
//! The shell then sends a Tflush for the outstanding tag. A transport that
//! never polls the token still works: `tail -f` then stops only when data
//! arrives or the connection ends.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Shared cancellation state; cheap to clone (all clones are one token).
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    fired: AtomicBool,
    armed: AtomicBool,
    deadline: Mutex<Option<Instant>>,
}

impl CancelToken {
    /// A token that is neither armed nor fired.
    #[must_use]
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Records a cancellation request (Ctrl-C). Returns whether the token was
    /// already fired (a second Ctrl-C before the shell cleared the first).
    pub fn fire(&self) -> bool {
        self.inner.fired.swap(true, Ordering::SeqCst)
    }

    /// Whether a cancellation was requested since the last [`CancelToken::clear`].
    #[must_use]
    pub fn is_fired(&self) -> bool {
        self.inner.fired.load(Ordering::SeqCst)
    }

    /// Whether a wait is currently abandonable.
    #[must_use]
    pub fn is_armed(&self) -> bool {
        self.inner.armed.load(Ordering::SeqCst)
    }

    /// Makes the current wait abandonable, until `deadline` if given.
    pub fn arm(&self, deadline: Option<Instant>) {
        *self.deadline_slot() = deadline;
        self.inner.armed.store(true, Ordering::SeqCst);
    }

    /// Ends the abandonable wait (the fired flag is kept).
    pub fn disarm(&self) {
        self.inner.armed.store(false, Ordering::SeqCst);
        *self.deadline_slot() = None;
    }

    /// Forgets a cancellation request (the shell does this before each
    /// command).
    pub fn clear(&self) {
        self.inner.fired.store(false, Ordering::SeqCst);
    }

    /// Whether the armed deadline has passed.
    #[must_use]
    pub fn deadline_passed(&self) -> bool {
        self.deadline_slot().is_some_and(|d| Instant::now() >= d)
    }

    /// What a transport polls: armed, and fired or past the deadline.
    #[must_use]
    pub fn should_abort(&self) -> bool {
        self.is_armed() && (self.is_fired() || self.deadline_passed())
    }

    fn deadline_slot(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // The guarded value is a plain Option<Instant>: a panic while holding
        // the lock cannot leave it inconsistent.
        self.inner
            .deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Lets the shell recognise a transport error that means "gave up waiting
/// because the [`CancelToken`] asked to" (see the module docs).
pub trait Interruptible {
    /// Whether this error is a cancelled wait (no frame was consumed).
    fn is_interrupted(&self) -> bool;
}

impl Interruptible for io::Error {
    fn is_interrupted(&self) -> bool {
        self.kind() == io::ErrorKind::Interrupted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn arm_fire_deadline() {
        let t = CancelToken::new();
        assert!(!t.should_abort());
        t.fire();
        assert!(!t.should_abort(), "not armed");
        t.arm(None);
        assert!(t.should_abort());
        t.clear();
        assert!(!t.should_abort());
        t.arm(Some(Instant::now()));
        assert!(t.should_abort(), "deadline now");
        t.arm(Some(Instant::now() + Duration::from_secs(60)));
        assert!(!t.should_abort());
        t.disarm();
        assert!(!t.is_armed());
        assert!(!t.fire());
        assert!(t.fire());
    }
}
