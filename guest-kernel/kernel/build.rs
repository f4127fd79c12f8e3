//! Links the kernel with `linker.ld` (higher-half image, PVH note, physical
//! load address); see the comments in that file for the layout.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let script = dir.join("linker.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    // x86_64-unknown-none links static PIEs by default; the kernel runs at the
    // fixed addresses of the linker script, so link a plain static executable
    // (no dynamic relocations for anyone to apply).
    println!("cargo:rustc-link-arg-bins=--no-pie");
}
