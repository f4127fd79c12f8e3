//! fuzz: every system call with hostile arguments, each checked against the
//! error the ABI documents (coconut_abi::syscall).
//!
//! It covers at least the "fuzz cases" of coconutOS (serial_write, fs,
//! mmap, caps, channels, gpu, pledge, unknown numbers) plus pointers into
//! the kernel half, unmapped pages, read-only pages where the kernel must
//! write, and buffers straddling a mapped/unmapped page boundary in both
//! directions. Each case prints `fuzz: <case> ok` or
//! `fuzz: <case> FAIL (got <result>, want <errors>)`; the summary is
//! `fuzz: <n> cases, <f> failures` and the exit code is `<f>`.
//!
//! Where the ABI leaves the exact code open (a relative path may be
//! NotFound or InvalidArgument), the case accepts the listed set; it never
//! accepts success. Boot capabilities: a FACTORY with FACTORY_CHANNEL |
//! FACTORY_SHARD | GRANT (from the manifest) enables the channel, grant and
//! shard cases; without one those cases fail, saying so.
#![no_std]
#![no_main]

mod cases;
mod check;

use coconut_rt::println;

coconut_rt::main!(main);

fn main() -> u64 {
    let mut f = check::Fuzz::new();
    cases::serial(&mut f);
    cases::fs(&mut f);
    cases::mmap(&mut f);
    cases::caps(&mut f);
    cases::channels(&mut f);
    cases::shards(&mut f);
    cases::devices(&mut f);
    cases::unknown(&mut f);
    // Last: pledging changes what the rest could do.
    cases::pledge(&mut f);
    println!("fuzz: {} cases, {} failures", f.cases, f.failures);
    f.failures
}
