//! A writer for the "newc" cpio format the Linux kernel unpacks as an
//! initramfs (`070701` headers, 4-byte alignment, `TRAILER!!!` at the end).

/// File type bits of `st_mode`.
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFLNK: u32 = 0o120_000;

/// Builds a newc archive in memory.
#[derive(Debug, Default)]
pub struct CpioWriter {
    buf: Vec<u8>,
    ino: u32,
}

impl CpioWriter {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, perm: u32) {
        self.entry(path, S_IFDIR | perm, 0, &[]);
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.entry(path, S_IFREG | perm, 0, data);
    }

    /// Adds a symbolic link `path` -> `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, S_IFLNK | 0o777, 0, target.as_bytes());
    }

    /// Adds a character device node.
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        self.entry(path, S_IFCHR | perm, (major << 8) | minor, &[]);
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 0, &[]);
        // The kernel does not need it, but pad to 512 bytes like cpio(1).
        while !self.buf.len().is_multiple_of(512) {
            self.buf.push(0);
        }
        self.buf
    }

    /// One header + name + data, each padded to 4 bytes. `rdev` packs the
    /// device major in bits 8.. and the minor in bits 0..8.
    fn entry(&mut self, path: &str, mode: u32, rdev: u32, data: &[u8]) {
        let name = path.trim_start_matches('/');
        let name = if name.is_empty() { "." } else { name };
        self.ino += 1;
        let nlink = if mode & 0o170_000 == S_IFDIR { 2 } else { 1 };
        let fields: [u32; 13] = [
            if name == "TRAILER!!!" { 0 } else { self.ino },
            mode,
            0,                                                 // uid
            0,                                                 // gid
            nlink,                                             // nlink
            0,                                                 // mtime
            u32::try_from(data.len()).unwrap_or(u32::MAX),     // filesize
            0,                                                 // devmajor
            0,                                                 // devminor
            rdev >> 8,                                         // rdevmajor
            rdev & 0xff,                                       // rdevminor
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX), // namesize
            0,                                                 // check
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_the_trailer_ends_the_archive() {
        let mut w = CpioWriter::new();
        w.dir("/dev", 0o755);
        w.char_dev("/dev/console", 0o600, 5, 1);
        w.file("/init", 0o755, b"#!/bin/sh\n");
        let out = w.finish();
        assert_eq!(&out[..6], b"070701");
        assert_eq!(out.len() % 512, 0);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("dev/console\0"));
        assert!(text.contains("TRAILER!!!\0"));
        // The second header starts on a 4-byte boundary: 110-byte header +
        // "dev\0" (4) = 114 -> padded to 116.
        assert_eq!(&out[116..122], b"070701");
        // rdevmajor 5, rdevminor 1 in the console's header.
        let hdr = &out[116..116 + 110];
        assert_eq!(&hdr[6 + 9 * 8..6 + 10 * 8], b"00000005");
        assert_eq!(&hdr[6 + 10 * 8..6 + 11 * 8], b"00000001");
    }
}
