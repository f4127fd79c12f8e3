//! Small, forgiving readers for sysfs and devfs entries.
//!
//! Why this module exists: the inventory runs on arbitrary hosts — containers
//! with a partial `/sys`, kernels built without PCI or IOMMU support, hosts
//! where some attributes are root-only. Every reader here therefore returns a
//! typed [`SysfsError`] instead of panicking, and separates "absent" (`Ok(None)`:
//! normal, the kernel simply does not expose that attribute here) from
//! "present but unreadable or malformed" (`Err`: the caller turns it into a
//! note in the report and carries on).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest attribute we are willing to read. Real sysfs attributes are at most
/// one page; the cap only keeps a tree that is not really sysfs (say, a bind
/// mount of something else) from making us read an unbounded file.
const MAX_ATTR_BYTES: u64 = 64 * 1024;

/// Why a sysfs or devfs entry could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SysfsError {
    /// The entry exists (or might) but the operating system refused the read.
    #[error("cannot read {}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    /// The file is larger than any sysfs attribute can be.
    #[error("{} is larger than {MAX_ATTR_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    /// The content does not have the shape the kernel documents.
    #[error("{}: expected {expected}, found {found:?}", path.display())]
    Malformed {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
}

impl SysfsError {
    fn io(path: &Path, error: io::Error) -> Self {
        SysfsError::Io {
            path: path.to_owned(),
            error,
        }
    }

    pub(crate) fn malformed(path: &Path, expected: &'static str, found: &str) -> Self {
        // Keep notes readable even if the file holds garbage.
        let found: String = found.chars().take(64).collect();
        SysfsError::Malformed {
            path: path.to_owned(),
            expected,
            found,
        }
    }
}

/// Whether `path` exists (symlinks are followed). Errors other than "not
/// found" (for example a permission problem on a parent directory) are
/// returned so the caller can say it could not tell.
pub(crate) fn exists(path: &Path) -> Result<bool, SysfsError> {
    path.try_exists().map_err(|e| SysfsError::io(path, e))
}

/// Reads a text attribute and trims surrounding whitespace.
/// `Ok(None)` when the file does not exist.
pub(crate) fn read_attr(path: &Path) -> Result<Option<String>, SysfsError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SysfsError::io(path, e)),
    };
    let mut text = String::new();
    file.take(MAX_ATTR_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| SysfsError::io(path, e))?;
    if text.len() as u64 > MAX_ATTR_BYTES {
        return Err(SysfsError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(Some(text.trim().to_owned()))
}

/// Parses hex text such as `0x10de` (the `0x` prefix is optional) into any
/// unsigned integer type, rejecting values that do not fit.
pub(crate) fn parse_hex<T: TryFrom<u64>>(
    path: &Path,
    text: &str,
    expected: &'static str,
) -> Result<T, SysfsError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    // `from_str_radix` would also accept a leading '+'; sysfs never writes one.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SysfsError::malformed(path, expected, text));
    }
    u64::from_str_radix(digits, 16)
        .ok()
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| SysfsError::malformed(path, expected, text))
}

/// Reads a hex attribute (see [`parse_hex`]). `Ok(None)` when absent.
pub(crate) fn read_hex<T: TryFrom<u64>>(
    path: &Path,
    expected: &'static str,
) -> Result<Option<T>, SysfsError> {
    read_attr(path)?
        .map(|text| parse_hex(path, &text, expected))
        .transpose()
}

/// Reads a decimal `u32` attribute such as `sriov_totalvfs`. `Ok(None)` when absent.
pub(crate) fn read_dec_u32(path: &Path, expected: &'static str) -> Result<Option<u32>, SysfsError> {
    read_attr(path)?
        .map(|text| {
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                text.parse::<u32>()
                    .map_err(|_| SysfsError::malformed(path, expected, &text))
            } else {
                Err(SysfsError::malformed(path, expected, &text))
            }
        })
        .transpose()
}

/// The last component of a symlink's target, e.g. `vfio-pci` for a `driver`
/// link pointing at `../../../bus/pci/drivers/vfio-pci`. `Ok(None)` when the
/// link does not exist. The target itself is never followed.
pub(crate) fn link_basename(path: &Path) -> Result<Option<String>, SysfsError> {
    let target = match fs::read_link(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SysfsError::io(path, e)),
    };
    match target.file_name() {
        Some(name) => Ok(Some(name.to_string_lossy().into_owned())),
        None => Err(SysfsError::malformed(
            path,
            "a symlink whose target names an entry",
            &target.to_string_lossy(),
        )),
    }
}

/// Names in a directory, sorted. `Ok(None)` when the directory does not exist.
pub(crate) fn list_dir(path: &Path) -> Result<Option<Vec<String>>, SysfsError> {
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SysfsError::io(path, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| SysfsError::io(path, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parsing_is_strict() {
        let p = Path::new("x");
        assert_eq!(parse_hex::<u16>(p, "0x10de", "id").unwrap(), 0x10de);
        assert_eq!(parse_hex::<u16>(p, "10DE", "id").unwrap(), 0x10de);
        assert!(parse_hex::<u16>(p, "0x", "id").is_err());
        assert!(parse_hex::<u16>(p, "+10", "id").is_err());
        assert!(parse_hex::<u16>(p, "0x10000", "id").is_err());
        assert!(parse_hex::<u16>(p, "zz", "id").is_err());
        assert!(parse_hex::<u64>(p, "0x1ffffffffffffffff", "id").is_err());
    }

    #[test]
    fn malformed_notes_are_bounded() {
        let long = "x".repeat(10_000);
        let msg = SysfsError::malformed(Path::new("f"), "hex", &long).to_string();
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn oversized_attribute_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        fs::write(&f, vec![b'a'; (MAX_ATTR_BYTES + 10) as usize]).unwrap();
        assert!(matches!(read_attr(&f), Err(SysfsError::TooLarge { .. })));
        assert!(read_attr(&dir.path().join("missing")).unwrap().is_none());
    }
}
