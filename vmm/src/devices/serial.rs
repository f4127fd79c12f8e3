//! COM1: a 16550 UART (rust-vmm `vm-superio`) whose output goes to the
//! VMM's stdout, one line at a time with the guest's name in front, and to
//! the guest's console log file, byte for byte.
//!
//! The interrupt line is an eventfd registered with KVM as an irqfd on GSI 4,
//! so raising it never leaves the vCPU thread.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use tracing::warn;
use vm_superio::{Serial, Trigger, serial::NoEvents};
use vmm_sys_util::eventfd::EventFd;

use super::bus::BusDevice;

/// Longest line kept before it is emitted unterminated (a guest that never
/// sends a newline cannot grow the buffer without bound).
pub const MAX_LINE: usize = 4096;

/// Where console bytes go.
#[derive(Debug)]
pub struct Console {
    prefix: String,
    pending: Vec<u8>,
    log: Option<BufWriter<File>>,
    echo: bool,
}

impl Console {
    /// A console for guest `name`, echoing lines to stdout when `echo`, and
    /// appending raw bytes to `log` when given.
    pub fn new(name: &str, echo: bool, log: Option<File>) -> Self {
        Console {
            prefix: format!("[{name}] "),
            pending: Vec::new(),
            log: log.map(BufWriter::new),
            echo,
        }
    }

    fn emit_line(&mut self) {
        if self.echo {
            let mut line = Vec::with_capacity(self.prefix.len() + self.pending.len() + 1);
            line.extend_from_slice(self.prefix.as_bytes());
            line.extend_from_slice(&self.pending);
            line.push(b'\n');
            let stdout = io::stdout();
            let mut out = stdout.lock();
            // A closed stdout must not stop the guest; the log file still has it.
            let _ = out.write_all(&line).and_then(|_| out.flush());
        }
        self.pending.clear();
    }

    /// Emits any unterminated last line and flushes the log file.
    pub fn finish(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.emit_line();
        }
        if let Some(log) = self.log.as_mut() {
            log.flush()?;
            log.get_ref().sync_data()?;
        }
        Ok(())
    }
}

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(log) = self.log.as_mut() {
            log.write_all(buf)?;
        }
        for &b in buf {
            match b {
                b'\n' => {
                    self.emit_line();
                    if let Some(log) = self.log.as_mut() {
                        log.flush()?;
                    }
                }
                b'\r' => {}
                _ => {
                    self.pending.push(b);
                    if self.pending.len() >= MAX_LINE {
                        self.emit_line();
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Lines are flushed as they complete; partial lines wait for their end.
        Ok(())
    }
}

/// Raises the UART's interrupt through an irqfd.
#[derive(Debug)]
pub struct IrqTrigger(pub EventFd);

impl Trigger for IrqTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// The UART on the port bus.
pub struct SerialDevice {
    serial: Serial<IrqTrigger, NoEvents, Console>,
}

impl std::fmt::Debug for SerialDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialDevice").finish_non_exhaustive()
    }
}

impl SerialDevice {
    /// A UART raising `irq` and writing to `console`.
    pub fn new(irq: IrqTrigger, console: Console) -> Self {
        SerialDevice {
            serial: Serial::new(irq, console),
        }
    }

    /// The console, to finish it when the VM stops.
    pub fn console_mut(&mut self) -> &mut Console {
        self.serial.writer_mut()
    }
}

impl BusDevice for SerialDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Some(first), Ok(offset)) = (data.first_mut(), u8::try_from(offset)) {
            *first = self.serial.read(offset);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let (Some(&value), Ok(offset)) = (data.first(), u8::try_from(offset)) else {
            return;
        };
        if let Err(e) = self.serial.write(offset, value) {
            warn!("serial: {e:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn log_gets_every_byte_and_partial_lines_survive_finish() {
        let mut file = tempfile::tempfile().unwrap();
        let mut console = Console::new("g", false, Some(file.try_clone().unwrap()));
        console.write_all(b"hello\r\nwor").unwrap();
        console.write_all(b"ld").unwrap();
        console.finish().unwrap();
        let mut text = String::new();
        use std::io::Seek;
        file.rewind().unwrap();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello\r\nworld");
        assert!(console.pending.is_empty());
    }

    #[test]
    fn endless_lines_are_bounded() {
        let mut console = Console::new("g", false, None);
        console.write_all(&vec![b'x'; MAX_LINE * 3 + 5]).unwrap();
        assert_eq!(console.pending.len(), 5);
    }

    #[test]
    fn uart_transmits_to_the_console_and_reports_thr_empty() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let console = Console::new("g", false, Some(file.reopen().unwrap()));
        let irq = IrqTrigger(EventFd::new(0).unwrap());
        let mut dev = SerialDevice::new(irq, console);
        for b in b"ok\n" {
            dev.write(0, &[*b]);
        }
        let mut lsr = [0u8];
        dev.read(5, &mut lsr);
        assert_eq!(lsr[0] & 0x60, 0x60, "transmitter ready");
        // Out-of-range offsets and empty accesses are harmless.
        dev.write(0x1_0000, &[1]);
        dev.write(0, &[]);
        dev.console_mut().finish().unwrap();
        assert_eq!(std::fs::read(file.path()).unwrap(), b"ok\n");
    }
}
