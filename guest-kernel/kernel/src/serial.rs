//! COM1, a polled 16550 UART: the kernel's only output.
//!
//! Every port access is a VM exit (~9 µs on kvm-pvm) and every instruction
//! around it is emulated, so output goes byte by byte straight to the UART
//! (no buffering, no `core::fmt` on the boot path) with a tiny number
//! formatter. `core::fmt` is only implemented for the panic path.
//!
//! The writer methods return `&Self` so a line reads as one chain:
//! `out().s("memory: ").dec(kib).s(" KiB usable").nl();`

use core::fmt;

use coconut_abi::ports::COM1;

use crate::cpu::{inb, outb};

const DATA: u16 = COM1;
const INTERRUPT_ENABLE: u16 = COM1 + 1;
const FIFO_CONTROL: u16 = COM1 + 2;
const LINE_CONTROL: u16 = COM1 + 3;
const MODEM_CONTROL: u16 = COM1 + 4;
const LINE_STATUS: u16 = COM1 + 5;

/// Line status: the transmit holding register is empty.
const LSR_THR_EMPTY: u8 = 0x20;
/// Line control: divisor latch access.
const LCR_DLAB: u8 = 0x80;
/// Line control: 8 data bits, no parity, 1 stop bit.
const LCR_8N1: u8 = 0x03;
/// 115200 baud from the 1.8432 MHz UART clock.
const DIVISOR_115200: u16 = 1;

/// Programs COM1 for 115200 8N1 with its interrupts off.
pub fn init() {
    outb(INTERRUPT_ENABLE, 0x00);
    outb(LINE_CONTROL, LCR_DLAB);
    outb(DATA, DIVISOR_115200 as u8);
    outb(INTERRUPT_ENABLE, (DIVISOR_115200 >> 8) as u8);
    outb(LINE_CONTROL, LCR_8N1);
    // FIFOs on and cleared; the trigger level is irrelevant without IRQs.
    outb(FIFO_CONTROL, 0x07);
    // DTR and RTS; OUT2 stays off so the UART raises no interrupts.
    outb(MODEM_CONTROL, 0x03);
}

/// Bytes the 16550's transmit FIFO holds.
const FIFO_DEPTH: u8 = 16;
/// Bytes that may still be written without polling the line status.
static mut FIFO_CREDIT: u8 = 0;

/// The COM1 writer (a zero-sized handle; the UART is the state).
#[derive(Clone, Copy, Debug)]
pub struct Serial;

/// The COM1 writer.
pub fn out() -> Serial {
    Serial
}

impl Serial {
    /// Sends one byte once the transmitter can take it.
    ///
    /// The FIFO is on, so one "transmitter empty" status read makes room
    /// for [`FIFO_DEPTH`] bytes: polling once per 16 bytes halves the port
    /// exits (~9 µs each on kvm-pvm) of a long line.
    #[inline]
    pub fn byte(&self, b: u8) -> &Self {
        let credit = &raw mut FIFO_CREDIT;
        // SAFETY: one CPU; the kernel never prints from an interrupt
        // handler while another print is in progress (IF is off in the kernel).
        let credit = unsafe { &mut *credit };
        if *credit == 0 {
            while inb(LINE_STATUS) & LSR_THR_EMPTY == 0 {}
            *credit = FIFO_DEPTH;
        }
        *credit -= 1;
        outb(DATA, b);
        self
    }

    /// Sends raw bytes.
    pub fn bytes(&self, bytes: &[u8]) -> &Self {
        for &b in bytes {
            self.byte(b);
        }
        self
    }

    /// Sends a string.
    pub fn s(&self, s: &str) -> &Self {
        self.bytes(s.as_bytes())
    }

    /// Sends bytes that should be text (ACPI signatures, volume labels):
    /// anything outside printable ASCII becomes `?`.
    pub fn text(&self, bytes: &[u8]) -> &Self {
        for &b in bytes {
            self.byte(if (0x20..0x7f).contains(&b) { b } else { b'?' });
        }
        self
    }

    /// Ends the line.
    pub fn nl(&self) -> &Self {
        self.byte(b'\n')
    }

    /// `0x` and the lowercase hex digits of `v`, without leading zeros.
    pub fn hex(&self, v: u64) -> &Self {
        let digits = if v == 0 {
            1
        } else {
            16 - (v.leading_zeros() / 4)
        };
        self.s("0x").hex_digits(v, digits)
    }

    /// `0x` and exactly 16 lowercase hex digits.
    pub fn hex16(&self, v: u64) -> &Self {
        self.s("0x").hex_digits(v, 16)
    }

    fn hex_digits(&self, v: u64, digits: u32) -> &Self {
        let mut shift = digits * 4;
        while shift > 0 {
            shift -= 4;
            self.byte(b"0123456789abcdef"[((v >> shift) & 0xf) as usize]);
        }
        self
    }

    /// The decimal digits of `v`.
    pub fn dec(&self, mut v: u64) -> &Self {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.bytes(&buf[i..])
    }
}

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Serial::s(self, s);
        Ok(())
    }
}
