//! Just enough ELF64 parsing to read a kernel module's `.modinfo` section
//! (NUL-separated `key=value` strings such as `depends=kvm,ccp`).

/// Reads the named section of a little-endian ELF64 file.
pub fn section<'a>(elf: &'a [u8], wanted: &str) -> Result<Option<&'a [u8]>, String> {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if elf[4] != 2 || elf[5] != 1 {
        return Err("not a little-endian ELF64 file".into());
    }
    let shoff = usize_at(elf, 0x28, 8)?;
    let shentsize = usize_at(elf, 0x3a, 2)?;
    let shnum = usize_at(elf, 0x3c, 2)?;
    let shstrndx = usize_at(elf, 0x3e, 2)?;
    if shentsize < 64 {
        return Err(format!("section header size {shentsize} < 64"));
    }
    let header = |i: usize| -> Result<(usize, usize, usize), String> {
        let base = i
            .checked_mul(shentsize)
            .and_then(|o| o.checked_add(shoff))
            .ok_or("section header offset overflows")?;
        Ok((
            usize_at(elf, base, 4)?,        // sh_name
            usize_at(elf, base + 0x18, 8)?, // sh_offset
            usize_at(elf, base + 0x20, 8)?, // sh_size
        ))
    };
    let (_, str_off, str_size) = header(shstrndx)?;
    let strtab = slice(elf, str_off, str_size)?;
    for i in 0..shnum {
        let (name_off, off, size) = header(i)?;
        let name = strtab
            .get(name_off..)
            .and_then(|s| s.split(|&b| b == 0).next())
            .ok_or("section name out of range")?;
        if name == wanted.as_bytes() {
            return slice(elf, off, size).map(Some);
        }
    }
    Ok(None)
}

/// The `key=value` strings of a module's `.modinfo` with key `key`.
pub fn modinfo(elf: &[u8], key: &str) -> Result<Vec<String>, String> {
    let Some(info) = section(elf, ".modinfo")? else {
        return Err("no .modinfo section".into());
    };
    let prefix = format!("{key}=");
    Ok(info
        .split(|&b| b == 0)
        .filter_map(|s| std::str::from_utf8(s).ok())
        .filter_map(|s| s.strip_prefix(&prefix))
        .map(str::to_string)
        .collect())
}

fn slice(elf: &[u8], off: usize, size: usize) -> Result<&[u8], String> {
    off.checked_add(size)
        .and_then(|end| elf.get(off..end))
        .ok_or_else(|| format!("section [{off:#x}+{size:#x}) out of file"))
}

fn usize_at(elf: &[u8], off: usize, len: usize) -> Result<usize, String> {
    let bytes = slice(elf, off, len)?;
    let mut v: u64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        v |= u64::from(*b) << (8 * i);
    }
    usize::try_from(v).map_err(|_| format!("value {v:#x} too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with a null section, `.modinfo` and `.shstrtab`.
    fn tiny_module(info: &[u8]) -> Vec<u8> {
        let shstr = b"\0.modinfo\0.shstrtab\0";
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        let info_off = f.len();
        f.extend_from_slice(info);
        let str_off = f.len();
        f.extend_from_slice(shstr);
        while !f.len().is_multiple_of(8) {
            f.push(0);
        }
        let shoff = f.len();
        let mut sh = |name: u32, off: usize, size: usize| {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            f.extend_from_slice(&h);
        };
        sh(0, 0, 0);
        sh(1, info_off, info.len());
        sh(10, str_off, shstr.len());
        f[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        f[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        f
    }

    #[test]
    fn reads_depends_from_modinfo() {
        let elf = tiny_module(b"license=GPL\0depends=kvm,ccp\0name=kvm_amd\0");
        assert_eq!(modinfo(&elf, "depends").unwrap(), vec!["kvm,ccp"]);
        assert_eq!(modinfo(&elf, "name").unwrap(), vec!["kvm_amd"]);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(modinfo(b"not an elf", "depends").is_err());
        let elf = tiny_module(b"depends=\0");
        assert!(modinfo(&elf[..100], "depends").is_err());
    }
}
