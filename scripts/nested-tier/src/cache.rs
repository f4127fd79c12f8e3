//! The package cache: Debian's kernel and busybox, downloaded with
//! `apt-get download` and unpacked with `dpkg -x` (never installed) under
//! `<workspace>/.coco-cache/nested/`. Once filled it works offline; a
//! half-finished unpack is never mistaken for a finished one (each package
//! is unpacked into a scratch directory and renamed into place).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{Error, Result, tool};

/// The kernel flavour preferred: Debian 12's 6.12 (bookworm-security or
/// backports) reaches /init in ≈ 2.5 s under TCG, the 6.1 default in ≈ 4 s.
const KERNEL_META: &[&str] = &["linux-image-6.12-amd64", "linux-image-amd64"];
const BUSYBOX: &str = "busybox-static";
const APT_LIMIT: Duration = Duration::from_secs(600);

/// A filled cache: where L1's kernel, modules and busybox are.
#[derive(Debug, Clone)]
pub struct Cache {
    /// The cache directory.
    pub dir: PathBuf,
    /// The kernel release (`6.12.117+deb12-amd64`).
    pub kernel_release: String,
    /// The bzImage.
    pub kernel: PathBuf,
    /// `lib/modules/<release>`.
    pub modules_dir: PathBuf,
    /// The static busybox binary.
    pub busybox: PathBuf,
}

/// The workspace root (this crate lives in `<root>/scripts/nested-tier`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The default cache directory: `$COCO_NESTED_CACHE` or
/// `<workspace>/.coco-cache/nested`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("COCO_NESTED_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".coco-cache/nested"))
}

impl Cache {
    /// Fills the default cache (see [`default_dir`]) if needed.
    pub fn prepare() -> Result<Self> {
        Self::prepare_in(&default_dir())
    }

    /// Fills `dir` if needed: nothing is downloaded when both packages are
    /// already unpacked there.
    pub fn prepare_in(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let kernel_root = dir.join("kernel");
        let busybox_root = dir.join("busybox");
        if !kernel_root.is_dir() || !busybox_root.is_dir() {
            ensure_tools(&["apt-get", "apt-cache", "dpkg"])?;
        }
        if !kernel_root.is_dir() {
            let pkg = pick_kernel_package()?;
            unpack(dir, &pkg, &kernel_root)?;
        }
        if !busybox_root.is_dir() {
            unpack(dir, BUSYBOX, &busybox_root)?;
        }
        Self::open(dir)
    }

    /// Reads an already filled cache.
    pub fn open(dir: &Path) -> Result<Self> {
        let kernel_root = dir.join("kernel");
        let modules_root = kernel_root.join("lib/modules");
        let release = std::fs::read_dir(&modules_root)
            .map_err(|e| Error::io("read", &modules_root, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .max()
            .ok_or_else(|| Error::MissingFile {
                what: "a lib/modules/<release> directory".into(),
                dir: kernel_root.clone(),
            })?;
        let kernel = kernel_root.join(format!("boot/vmlinuz-{release}"));
        let busybox = dir.join("busybox/bin/busybox");
        for (what, path) in [("the kernel image", &kernel), ("bin/busybox", &busybox)] {
            if !path.is_file() {
                return Err(Error::MissingFile {
                    what: format!("{what} ({})", path.display()),
                    dir: dir.to_path_buf(),
                });
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            modules_dir: modules_root.join(&release),
            kernel_release: release,
            kernel,
            busybox,
        })
    }
}

fn ensure_tools(tools: &[&str]) -> Result<()> {
    for t in tools {
        if tool::which(t).is_none() {
            return Err(Error::MissingTool((*t).to_string()));
        }
    }
    Ok(())
}

/// The versioned kernel package a meta package depends on
/// (`linux-image-6.12-amd64` -> `linux-image-6.12.117+deb12-amd64`), for the
/// first meta package apt knows. Runs `apt-get update` once if apt knows none
/// and we are root.
fn pick_kernel_package() -> Result<String> {
    if let Some(p) = kernel_from_apt() {
        return Ok(p);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        tool::run(Command::new("apt-get").args(["update", "-qq"]), APT_LIMIT)?;
        if let Some(p) = kernel_from_apt() {
            return Ok(p);
        }
    }
    Err(Error::NoPackage(KERNEL_META.join(" or ")))
}

fn kernel_from_apt() -> Option<String> {
    KERNEL_META.iter().find_map(|meta| {
        let out = tool::run(
            Command::new("apt-cache").args(["show", "--no-all-versions", meta]),
            Duration::from_secs(60),
        )
        .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("Depends:"))
            .and_then(|deps| deps.split(',').next())
            .and_then(|first| first.split_whitespace().next())
            .filter(|p| p.starts_with("linux-image-"))
            .map(str::to_string)
    })
}

/// Downloads `pkg` into `dir/debs` and unpacks it at `dest`.
fn unpack(dir: &Path, pkg: &str, dest: &Path) -> Result<()> {
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| Error::io("create", &debs, e))?;
    let deb = match find_deb(&debs, pkg)? {
        Some(d) => d,
        None => {
            tool::run(
                Command::new("apt-get")
                    .args(["download", "-q", pkg])
                    .current_dir(&debs),
                APT_LIMIT,
            )?;
            find_deb(&debs, pkg)?.ok_or_else(|| Error::MissingFile {
                what: format!("{pkg}_*.deb after apt-get download"),
                dir: debs.clone(),
            })?
        }
    };
    let scratch = dest.with_extension("partial");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(|e| Error::io("remove", &scratch, e))?;
    }
    tool::run(
        Command::new("dpkg").arg("-x").arg(&deb).arg(&scratch),
        Duration::from_secs(300),
    )?;
    std::fs::rename(&scratch, dest).map_err(|e| Error::io("rename into", dest, e))
}

fn find_deb(debs: &Path, pkg: &str) -> Result<Option<PathBuf>> {
    let prefix = format!("{pkg}_");
    let entries = std::fs::read_dir(debs).map_err(|e| Error::io("read", debs, e))?;
    Ok(entries.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
        p.extension().is_some_and(|x| x == "deb")
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
    }))
}
