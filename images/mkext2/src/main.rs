//! `coco-mkext2`: the command-line front end of the `coco_mkext2` library.
//!
//! Arguments are parsed by hand from `std::env::args_os` (paths may be any
//! bytes), keeping the tool dependency-free apart from the library.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use coco_mkext2::{Options, write_image};

const USAGE: &str = "\
Usage: coco-mkext2 [--label LABEL] [--min-size BYTES] <src-dir> <out.img>

Builds a read-only ext2 image (4 KiB blocks) of <src-dir> and writes it to
<out.img>, without root privileges.

Options:
  --label LABEL      volume label, at most 16 bytes
  --min-size BYTES   make the image at least this large; accepts a K, M or G
                     suffix (powers of 1024)
  -h, --help         print this help

Timestamps come from SOURCE_DATE_EPOCH if set, else 0.
";

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Build(args)) => args,
        Err(msg) => {
            eprintln!("coco-mkext2: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match write_image(&args.src, &args.out, &args.opts) {
        Ok(summary) => {
            println!("{}: {summary}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("coco-mkext2: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug)]
enum Command {
    Help,
    Build(Args),
}

#[derive(Debug)]
struct Args {
    src: PathBuf,
    out: PathBuf,
    opts: Options,
}

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut opts = Options::default();
    let mut positional: Vec<PathBuf> = Vec::new();
    let mut args = args.into_iter();
    let mut options_done = false;
    while let Some(arg) = args.next() {
        if options_done {
            positional.push(arg.into());
            continue;
        }
        let Some(text) = arg.to_str() else {
            positional.push(arg.into());
            continue;
        };
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (text, None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .ok_or_else(|| format!("{name} needs a value"))?
                    .into_string()
                    .map_err(|_| format!("{name}: value is not UTF-8")),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--label" => opts.label = value("--label")?,
            "--min-size" => opts.min_size_bytes = parse_size(&value("--min-size")?)?,
            "--" => options_done = true,
            f if f.starts_with('-') && f.len() > 1 => return Err(format!("unknown option {f}")),
            _ => positional.push(arg.into()),
        }
    }
    match <[PathBuf; 2]>::try_from(positional) {
        Ok([src, out]) => Ok(Command::Build(Args { src, out, opts })),
        Err(p) => Err(format!(
            "expected <src-dir> and <out.img>, got {} path argument{}",
            p.len(),
            if p.len() == 1 { "" } else { "s" }
        )),
    }
}

/// Parses `123`, `64K`, `512M` or `1G` (binary multiples).
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("--min-size: {s:?} is not a size in bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn parses_options_and_paths() {
        let Ok(Command::Build(a)) =
            parse_strs(&["--label", "root", "--min-size=2M", "src", "out.img"])
        else {
            panic!("did not parse");
        };
        assert_eq!(a.opts.label, "root");
        assert_eq!(a.opts.min_size_bytes, 2 << 20);
        assert_eq!(a.src, PathBuf::from("src"));
        assert_eq!(a.out, PathBuf::from("out.img"));
    }

    #[test]
    fn rejects_bad_usage() {
        assert!(parse_strs(&["only-one"]).is_err());
        assert!(parse_strs(&["a", "b", "c"]).is_err());
        assert!(parse_strs(&["--bogus", "a", "b"]).is_err());
        assert!(parse_strs(&["--label"]).is_err());
        assert!(parse_strs(&["--min-size", "12Q", "a", "b"]).is_err());
        assert!(parse_strs(&["--min-size", "99999999999G", "a", "b"]).is_err());
        assert!(matches!(parse_strs(&["x", "--help"]), Ok(Command::Help)));
        assert!(matches!(
            parse_strs(&["--", "-a", "b"]),
            Ok(Command::Build(_))
        ));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
    }
}
