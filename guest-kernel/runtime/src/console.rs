//! `print!`/`println!` over `serial_write`.
//!
//! Output is collected in a line buffer and written with one system call per
//! line (every system call costs a kernel entry, and one write per line keeps
//! lines of different shards from interleaving mid-line). A line longer than
//! the buffer is written in buffer-sized pieces. The buffer is flushed at
//! exit and before a panic message.

use crate::lock::SpinLock;
use core::fmt;

const LINE_MAX: usize = 1024;

struct LineBuf {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl LineBuf {
    fn flush(&mut self) {
        if self.len > 0 {
            // A console that refuses output leaves nothing better to do.
            let _ = crate::sys::serial_write(&self.buf[..self.len]);
            self.len = 0;
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == LINE_MAX {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
    }
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

static CONSOLE: SpinLock<LineBuf> = SpinLock::new(LineBuf {
    buf: [0; LINE_MAX],
    len: 0,
});

/// Writes pre-formatted output into the line buffer (used by the macros).
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    match CONSOLE.try_lock() {
        Some(mut c) => {
            let _ = fmt::write(&mut *c, args);
        }
        // Re-entered (a Display impl printing, or a panic mid-print): write
        // straight through rather than deadlock.
        None => {
            let _ = fmt::write(&mut Unbuffered, args);
        }
    }
}

/// Writes whatever is buffered.
pub fn flush() {
    if let Some(mut c) = CONSOLE.try_lock() {
        c.flush();
    }
}

/// A line assembled on the stack and written with one call (for the panic
/// path, which must not depend on the shared buffer's lock). Longer lines
/// are cut at [`LINE_MAX`] bytes.
#[cfg_attr(test, allow(dead_code))] // only the panic handler uses it
pub(crate) struct LineOut {
    buf: [u8; LINE_MAX],
    len: usize,
}

#[cfg_attr(test, allow(dead_code))]
impl LineOut {
    pub(crate) fn new() -> Self {
        LineOut {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// Adds the newline and writes the line.
    pub(crate) fn finish(mut self) {
        if self.len == LINE_MAX {
            self.len -= 1;
        }
        self.buf[self.len] = b'\n';
        let _ = crate::sys::serial_write(&self.buf[..=self.len]);
    }
}

impl fmt::Write for LineOut {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LINE_MAX - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes every piece straight to the console (for re-entrant prints).
pub(crate) struct Unbuffered;

impl fmt::Write for Unbuffered {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s
            .as_bytes()
            .chunks(coconut_abi::syscall::SERIAL_WRITE_MAX as usize)
        {
            let _ = crate::sys::serial_write(chunk);
        }
        Ok(())
    }
}

/// Prints to the console (buffered until the end of the line).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the console with one `serial_write`.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
