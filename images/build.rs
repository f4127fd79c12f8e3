//! Builds the guest images that coco-vmm embeds and the tests boot:
//! - `guest-kernel.elf`: guest-kernel/kernel, built for x86_64-unknown-none
//!   by a nested cargo with its own target directory (always release: every
//!   ring-0 instruction is emulated on kvm-pvm, so optimisation is not optional);
//! - `ramdisk.ext2`: images/rootfs as a read-only ext2 image (coco-mkext2).
//!
//! Both land in OUT_DIR; `src/lib.rs` embeds them.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_TARGET: &str = "x86_64-unknown-none";
/// Embed this kernel ELF instead of building guest-kernel (for kernel
/// developers iterating on a custom image).
const PREBUILT_KERNEL_ENV: &str = "COCO_PREBUILT_GUEST_KERNEL";

/// Environment a parent cargo sets that must not leak into the nested build
/// (flags and wrappers meant for host crates, or a target override).
const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "__CARGO_FIX_PLZ",
    "CARGO_LLVM_COV",
    "RUSTDOCFLAGS",
];

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

fn build_kernel(root: &Path, out: &Path) -> PathBuf {
    let dest = out.join("guest-kernel.elf");
    println!("cargo:rerun-if-env-changed={PREBUILT_KERNEL_ENV}");
    if let Some(prebuilt) = env::var_os(PREBUILT_KERNEL_ENV) {
        std::fs::copy(&prebuilt, &dest).unwrap_or_else(|e| {
            panic!(
                "{PREBUILT_KERNEL_ENV}={}: {e}",
                Path::new(&prebuilt).display()
            )
        });
        return dest;
    }
    let kernel_dir = root.join("guest-kernel/kernel");
    for p in ["src", "Cargo.toml", "build.rs", "linker.ld"] {
        rerun_if_changed(&kernel_dir.join(p));
    }
    for p in ["src", "Cargo.toml"] {
        rerun_if_changed(&root.join("guest-kernel/abi").join(p));
    }
    let target_dir = out.join("guest-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", GUEST_TARGET])
        .arg("--manifest-path")
        .arg(kernel_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build guest-kernel: {e}"));
    assert!(
        status.success(),
        "building guest-kernel for {GUEST_TARGET} failed ({status}); \
         is the target installed? (rust-toolchain.toml asks rustup for it)"
    );
    let built = target_dir.join(GUEST_TARGET).join("release/guest-kernel");
    std::fs::copy(&built, &dest)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", built.display(), dest.display()));
    dest
}

fn build_ramdisk(manifest_dir: &Path, out: &Path) -> PathBuf {
    let rootfs = manifest_dir.join("rootfs");
    rerun_if_changed(&rootfs);
    // coco-mkext2 stamps SOURCE_DATE_EPOCH into the image when it is set.
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let dest = out.join("ramdisk.ext2");
    let options = coco_mkext2::Options {
        label: "coco-ramdisk".into(),
        ..Default::default()
    };
    coco_mkext2::write_image(&rootfs, &dest, &options)
        .unwrap_or_else(|e| panic!("building the ramdisk from {}: {e}", rootfs.display()));
    dest
}

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("images/ lives in the workspace root")
        .to_path_buf();
    rerun_if_changed(&manifest_dir.join("build.rs"));
    build_kernel(&root, &out);
    build_ramdisk(&manifest_dir, &out);
}
