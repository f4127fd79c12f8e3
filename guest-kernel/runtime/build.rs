//! Lets shards find the shared linker script: a dependent's link line gets
//! this directory as a library search path, and GNU ld looks up
//! `-T coconut-shard.ld` there (the shards' `.cargo/config.toml` passes it).

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let script = dir.join("shard.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    std::fs::copy(&script, out.join("coconut-shard.ld"))
        .unwrap_or_else(|e| panic!("copying {}: {e}", script.display()));
    println!("cargo:rustc-link-search=native={}", out.display());
}
