//! Guest images: a file on disk, or one of the images built into coco-vmm.
//!
//! Built-in images are served from a sealed-size memfd so the loaders only
//! ever see a `File`, whichever the source.

use std::fs::File;
use std::io::{Seek, Write};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};

pub use coco_hive_config::{BUILTIN_PREFIX, ImageSource};

/// Parses a command-line image argument: `builtin:NAME` or a path.
pub fn parse_arg(arg: &str) -> ImageSource {
    match arg.strip_prefix(BUILTIN_PREFIX) {
        Some(name) => ImageSource::Builtin(name.to_string()),
        None => ImageSource::Path(PathBuf::from(arg)),
    }
}

/// Errors opening an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a regular file.
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
    /// No built-in image of that name.
    #[error("no built-in image named {name:?} (built in: {known})")]
    UnknownBuiltin {
        /// The requested name.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// The memfd for a built-in image could not be made.
    #[error("cannot stage built-in image {name:?}: {source}")]
    Stage {
        /// The image.
        name: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Names of the built-in images.
pub fn builtin_names() -> Vec<&'static str> {
    coco_images::BUILTINS
        .iter()
        .map(|(name, _)| *name)
        .collect()
}

fn open_path(path: &Path) -> Result<File, ImageError> {
    let file = File::open(path).map_err(|source| ImageError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = file.metadata().map_err(|source| ImageError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(ImageError::NotAFile(path.to_path_buf()));
    }
    Ok(file)
}

fn memfd_with(name: &str, bytes: &[u8]) -> std::io::Result<File> {
    // SAFETY: the name is a valid NUL-terminated C string and the flags are
    // valid; the result is checked before use.
    let fd = unsafe { libc::memfd_create(c"coco-image".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    file.rewind()?;
    tracing::debug!("staged built-in image {name} ({} bytes)", bytes.len());
    Ok(file)
}

/// Opens an image for reading from its start.
pub fn open(image: &ImageSource) -> Result<File, ImageError> {
    match image {
        ImageSource::Path(path) => open_path(path),
        ImageSource::Builtin(name) => {
            let bytes = coco_images::builtin(name).ok_or_else(|| ImageError::UnknownBuiltin {
                name: name.clone(),
                known: builtin_names().join(", "),
            })?;
            memfd_with(name, bytes).map_err(|source| ImageError::Stage {
                name: name.clone(),
                source,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn parse_distinguishes_builtins_from_paths() {
        assert_eq!(
            parse_arg("builtin:guest-kernel"),
            ImageSource::Builtin("guest-kernel".into())
        );
        assert_eq!(parse_arg("./k.elf"), ImageSource::Path("./k.elf".into()));
        assert_eq!(parse_arg("builtin:x").to_string(), "builtin:x");
    }

    #[test]
    fn builtins_open_with_their_bytes() {
        for name in builtin_names() {
            let mut f = open(&ImageSource::Builtin(name.into())).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            assert_eq!(Some(&bytes[..]), coco_images::builtin(name));
        }
    }

    #[test]
    fn bad_images_are_clear_errors() {
        let err = open(&ImageSource::Builtin("nope".into())).unwrap_err();
        assert!(
            err.to_string().contains("no built-in image named \"nope\""),
            "{err}"
        );
        let err = open(&ImageSource::Path("/nonexistent/k.elf".into())).unwrap_err();
        assert!(
            err.to_string().contains("cannot open /nonexistent/k.elf"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = open(&ImageSource::Path(dir.path().into())).unwrap_err();
        assert!(matches!(err, ImageError::NotAFile(_)), "{err}");
    }
}
