//! Case bookkeeping and the raw call the cases use.

use coconut_rt::sys::SysResult;
use coconut_rt::{Error, println};

/// Counts cases and failures and prints one line per case.
pub struct Fuzz {
    pub cases: u64,
    pub failures: u64,
}

/// A result as the report prints it.
struct Shown(SysResult);

impl core::fmt::Display for Shown {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Ok(v) => write!(f, "success {v:#x}"),
            Err(e) => f.write_str(e.name()),
        }
    }
}

struct Wanted<'a>(&'a [Error]);

impl core::fmt::Display for Wanted<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            f.write_str(e.name())?;
        }
        Ok(())
    }
}

impl Fuzz {
    pub fn new() -> Self {
        Fuzz {
            cases: 0,
            failures: 0,
        }
    }

    fn report(&mut self, name: &str, pass: bool, got: SysResult, want: &dyn core::fmt::Display) {
        self.cases += 1;
        if pass {
            println!("fuzz: {name} ok");
        } else {
            self.failures += 1;
            println!("fuzz: {name} FAIL (got {}, want {want})", Shown(got));
        }
    }

    /// The call must fail with one of `want`.
    pub fn err(&mut self, name: &str, got: SysResult, want: &[Error]) {
        let pass = matches!(got, Err(e) if want.contains(&e));
        self.report(name, pass, got, &Wanted(want));
    }

    /// The call must succeed with a value `pred` accepts (`what` says which).
    pub fn ok(&mut self, name: &str, got: SysResult, what: &str, pred: impl Fn(u64) -> bool) {
        let pass = matches!(got, Ok(v) if pred(v));
        self.report(name, pass, got, &what);
    }

    /// A precondition of later cases did not hold: counts as a failure.
    pub fn missing(&mut self, name: &str, why: &str) {
        self.cases += 1;
        self.failures += 1;
        println!("fuzz: {name} FAIL (got nothing, want {why})");
    }
}

/// One raw system call with arbitrary arguments.
///
/// Every pointer the cases pass is either invalid on purpose (null,
/// unmapped, kernel half, read-only, straddling into an unmapped page) or
/// points into scratch memory no live Rust object uses, so even a kernel
/// that wrongly accepted the call could not corrupt this shard's data.
pub fn raw(nr: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> SysResult {
    // SAFETY: see above: no argument aliases memory Rust relies on.
    Error::from_raw(unsafe { coconut_rt::raw::syscall(nr, a0, a1, a2, a3, 0) })
}
