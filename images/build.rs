//! Builds the guest images that coco-vmm embeds and the tests boot:
//! - `guest-kernel.elf`: guest-kernel/kernel, built for x86_64-unknown-none
//!   by a nested cargo with its own target directory (always release: every
//!   ring-0 instruction is emulated on kvm-pvm, so optimisation is not optional);
//! - the shards: guest-kernel/shards (Rust, with guest-kernel/runtime) by a
//!   second nested cargo for x86_64-unknown-linux-gnu as freestanding static
//!   executables (that workspace's `.cargo/config.toml` holds the flags),
//!   and every C shard (a `main.c` in guest-kernel/shards/<name>/) by the C
//!   compiler (`$CC`, else `cc`) against guest-kernel/include/coconut.h;
//! - `ramdisk.ext2`: a staging copy of images/rootfs plus `/bin/<shard>` and
//!   the generated `/data/large/pattern.bin` (src/pattern.rs), as a
//!   read-only ext2 image (coco-mkext2).
//!
//! All of it lands in OUT_DIR; `src/lib.rs` embeds the kernel and the ramdisk.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/pattern.rs"]
#[allow(dead_code)]
mod pattern;

const GUEST_TARGET: &str = "x86_64-unknown-none";
/// Shards run in ring 3 natively: the host target gives them the SSE2
/// hard-float ABI (see guest-kernel/runtime/src/lib.rs, "Target").
const SHARD_TARGET: &str = "x86_64-unknown-linux-gnu";
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
    let mut cmd = nested_cargo();
    cmd.args(["build", "--release", "--target", GUEST_TARGET])
        .arg("--manifest-path")
        .arg(kernel_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
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

/// A nested cargo with the parent's flags scrubbed.
fn nested_cargo() -> Command {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// The Rust shards: every member of the guest-kernel/shards workspace.
/// Returns (name, built ELF) pairs.
fn build_rust_shards(root: &Path, out: &Path) -> Vec<(String, PathBuf)> {
    let shards_dir = root.join("guest-kernel/shards");
    rerun_if_changed(&root.join("guest-kernel/runtime"));
    // The ninep shard builds the shared Secure9P codec into itself.
    rerun_if_changed(&root.join("virtio-9p/codec"));
    rerun_if_changed(&root.join("virtio-9p/mmio-regs"));
    rerun_if_changed(&shards_dir);
    let target_dir = out.join("shard-target");
    let mut cmd = nested_cargo();
    // The shards' .cargo/config.toml is found from the working directory.
    cmd.current_dir(&shards_dir)
        .args(["build", "--release", "--target", SHARD_TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the shards: {e}"));
    assert!(status.success(), "building the shards failed ({status})");
    let mut shards = Vec::new();
    for entry in read_dir_sorted(&shards_dir) {
        let name = file_name(&entry);
        if entry.join("Cargo.toml").is_file() {
            let built = target_dir.join(SHARD_TARGET).join("release").join(&name);
            assert!(
                built.is_file(),
                "shard {name} was not built at {}",
                built.display()
            );
            shards.push((name, built));
        }
    }
    shards
}

/// The C shards: guest-kernel/shards/<name>/main.c, freestanding and static,
/// linked by the same script as the Rust shards.
fn build_c_shards(root: &Path, out: &Path) -> Vec<(String, PathBuf)> {
    let shards_dir = root.join("guest-kernel/shards");
    let include = root.join("guest-kernel/include");
    let script = root.join("guest-kernel/runtime/shard.ld");
    rerun_if_changed(&include);
    println!("cargo:rerun-if-env-changed=CC");
    let cc = env::var_os("CC").unwrap_or_else(|| "cc".into());
    let bin_dir = out.join("c-shards");
    std::fs::create_dir_all(&bin_dir).unwrap_or_else(|e| panic!("{}: {e}", bin_dir.display()));
    let mut shards = Vec::new();
    for entry in read_dir_sorted(&shards_dir) {
        let source = entry.join("main.c");
        if !source.is_file() {
            continue;
        }
        let name = file_name(&entry);
        let dest = bin_dir.join(&name);
        let status = Command::new(&cc)
            .args([
                "-std=c11",
                "-O2",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-ffreestanding",
                "-fno-stack-protector",
                "-fno-pie",
                "-fno-asynchronous-unwind-tables",
                "-fcf-protection=none",
                // No libc: keep loops from becoming memcpy/memset calls.
                "-fno-tree-loop-distribute-patterns",
                "-static",
                "-no-pie",
                "-nostdlib",
                "-nostartfiles",
                "-Wl,--build-id=none",
                "-Wl,-z,max-page-size=4096",
                "-Wl,-z,noexecstack",
            ])
            .arg(format!("-Wl,-T,{}", script.display()))
            .arg("-I")
            .arg(&include)
            .arg("-o")
            .arg(&dest)
            .arg(&source)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run the C compiler {} for shard {name}: {e} \
                     (scripts/setup installs gcc)",
                    Path::new(&cc).display()
                )
            });
        assert!(
            status.success(),
            "compiling C shard {name} failed ({status})"
        );
        shards.push((name, dest));
    }
    shards
}

fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    v.sort();
    v
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_else(|| panic!("{}: not a UTF-8 name", path.display()))
        .to_string()
}

/// Copies the tree at `from` to `to` (files, directories, symlinks).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in read_dir_sorted(from) {
        let dest = to.join(entry.file_name().expect("read_dir names entries"));
        let meta = std::fs::symlink_metadata(&entry)
            .unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
        if meta.is_dir() {
            copy_tree(&entry, &dest);
        } else if meta.file_type().is_symlink() {
            let target =
                std::fs::read_link(&entry).unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
            std::os::unix::fs::symlink(&target, &dest)
                .unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
        } else {
            std::fs::copy(&entry, &dest).unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
        }
    }
}

/// images/rootfs plus the shards and the generated files, in OUT_DIR.
fn stage_rootfs(manifest_dir: &Path, out: &Path, shards: &[(String, PathBuf)]) -> PathBuf {
    let rootfs = manifest_dir.join("rootfs");
    rerun_if_changed(&rootfs);
    rerun_if_changed(&manifest_dir.join("src/pattern.rs"));
    let stage = out.join("rootfs");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).unwrap_or_else(|e| panic!("{}: {e}", stage.display()));
    }
    copy_tree(&rootfs, &stage);
    let bin = stage.join("bin");
    std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    for (name, elf) in shards {
        let dest = bin.join(name);
        assert!(!dest.exists(), "two shards are called {name}");
        std::fs::copy(elf, &dest).unwrap_or_else(|e| panic!("{}: {e}", elf.display()));
    }
    let large = stage.join(pattern::PATTERN_PATH.trim_start_matches('/'));
    let dir = large.parent().expect("the pattern lives in a directory");
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    std::fs::write(&large, pattern::pattern_bytes())
        .unwrap_or_else(|e| panic!("{}: {e}", large.display()));
    stage
}

/// Checks the staged tree with the kernel's own validators: every shard ELF
/// passes `coconut_core::elf::parse` (W^X, page-aligned segments in user
/// space), and every `/boot/*.toml` manifest parses and names shard files
/// that exist.
fn validate(stage: &Path, shards: &[(String, PathBuf)]) {
    for (name, elf) in shards {
        let bytes = std::fs::read(elf).unwrap_or_else(|e| panic!("{}: {e}", elf.display()));
        if let Err(e) = coconut_core::elf::parse(&bytes) {
            panic!("shard {name} ({}) is not loadable: {e}", elf.display());
        }
    }
    for entry in read_dir_sorted(&stage.join("boot")) {
        if entry.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read(&entry).unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
        let manifest = coconut_core::manifest::parse(&text)
            .unwrap_or_else(|e| panic!("manifest {}: {e}", entry.display()));
        for shard in manifest.shards() {
            let file = stage.join(shard.path.trim_start_matches('/'));
            assert!(
                file.is_file(),
                "manifest {}: shard {} names {}, which the ramdisk does not have",
                entry.display(),
                shard.name,
                shard.path
            );
        }
    }
}

fn build_ramdisk(rootfs: &Path, out: &Path) -> PathBuf {
    // coco-mkext2 stamps SOURCE_DATE_EPOCH into the image when it is set.
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let dest = out.join("ramdisk.ext2");
    let options = coco_mkext2::Options {
        label: "coco-ramdisk".into(),
        ..Default::default()
    };
    coco_mkext2::write_image(rootfs, &dest, &options)
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
    let mut shards = build_rust_shards(&root, &out);
    shards.extend(build_c_shards(&root, &out));
    let rootfs = stage_rootfs(&manifest_dir, &out, &shards);
    validate(&rootfs, &shards);
    build_ramdisk(&rootfs, &out);
}
