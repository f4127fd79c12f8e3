//! The durable, hash-chained audit journal behind `/log/queen.log`.
//!
//! Why: every denial and every state change (spawn, kill, revocation, lease,
//! lifecycle, bind, mount, model switch) must survive a crash and must not be
//! quietly edited afterwards. Each record is one line in
//! `<state dir>/audit.log`, appended and `fsync`ed before the call returns:
//!
//! ```text
//! <seq> <ts_ms> <prev hash hex> <hash hex> <escaped text>
//! ```
//!
//! `seq` counts from 1; `prev` of the first record is 64 zeros; `hash` is
//! BLAKE3 over a domain tag, `prev`, `seq` and `ts_ms` (little-endian) and the
//! escaped text. [`AuditJournal::verify`] recomputes the chain, so a modified,
//! removed, inserted or reordered line is detected; cutting records off the
//! *end* is only detectable against an anchor kept elsewhere
//! ([`AuditJournal::head`] gives the current one).
//!
//! Text is escaped so a record is always one line: `\` → `\\`, newline →
//! `\n`, other control characters → `\xNN`. Client-controlled strings
//! (paths, names) therefore cannot forge extra records.
//!
//! Restart: [`AuditJournal::open`] verifies the existing file and continues
//! its chain. A final line without a newline is a torn write from a crash:
//! it is cut off and a record saying so is appended. Any other damage makes
//! `open` fail — the supervisor decides what to do with a tampered journal.
//!
//! Failure: when a write or `fsync` fails, the file is cut back to the last
//! whole record (so the chain stays valid) and the error is returned; the
//! hive then keeps the record pending and goes degraded (see `hive`).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};

/// The journal's file name inside the state directory.
pub const JOURNAL_FILE: &str = "audit.log";

const DOMAIN: &[u8] = b"coco-audit-v1\0";

/// Journal errors.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading, writing or syncing the file failed.
    #[error("audit journal i/o: {0}")]
    Io(#[from] io::Error),
    /// The chain does not verify at the given 1-based line.
    #[error("audit journal corrupt at line {line}: {reason}")]
    Corrupt {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One verified record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Sequence number (1-based).
    pub seq: u64,
    /// Timestamp, milliseconds.
    pub ts_ms: u64,
    /// Hash of the previous record (zeros for the first).
    pub prev: [u8; 32],
    /// This record's hash.
    pub hash: [u8; 32],
    /// The escaped text.
    pub text: String,
}

/// Escapes text so it fits on one journal line.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                for b in c.to_string().bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn record_hash(prev: &[u8; 32], seq: u64, ts_ms: u64, text: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(DOMAIN);
    h.update(prev);
    h.update(&seq.to_le_bytes());
    h.update(&ts_ms.to_le_bytes());
    h.update(text.as_bytes());
    *h.finalize().as_bytes()
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let pair = s.get(2 * i..2 * i + 2)?;
        if !pair.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        *o = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

fn parse_line(line: &str) -> Result<AuditRecord, String> {
    let mut parts = line.splitn(5, ' ');
    let mut field = |name: &str| parts.next().ok_or_else(|| format!("missing {name}"));
    let seq = field("seq")?;
    let ts = field("timestamp")?;
    let prev = field("prev hash")?;
    let hash = field("hash")?;
    let text = field("text")?;
    let num = |s: &str, what: &str| -> Result<u64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad {what}"));
        }
        s.parse().map_err(|_| format!("bad {what}"))
    };
    Ok(AuditRecord {
        seq: num(seq, "seq")?,
        ts_ms: num(ts, "timestamp")?,
        prev: unhex(prev).ok_or("bad prev hash")?,
        hash: unhex(hash).ok_or("bad hash")?,
        text: text.to_owned(),
    })
}

/// Outcome of scanning a journal file.
struct Scan {
    count: usize,
    head: (u64, [u8; 32]),
    /// Byte length of the whole, verified records.
    good_len: u64,
    /// A final fragment without a newline.
    torn: bool,
}

fn scan(path: &Path, mut each: impl FnMut(&AuditRecord)) -> Result<Scan, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Scan {
                count: 0,
                head: (0, [0; 32]),
                good_len: 0,
                torn: false,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut prev = [0u8; 32];
    let mut seq = 0u64;
    let mut good_len = 0u64;
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            return Ok(Scan {
                count: line_no - 1,
                head: (seq, prev),
                good_len,
                torn: true,
            });
        }
        let corrupt = |reason: String| AuditError::Corrupt {
            line: line_no,
            reason,
        };
        let text =
            std::str::from_utf8(&buf[..buf.len() - 1]).map_err(|_| corrupt("not UTF-8".into()))?;
        let rec = parse_line(text).map_err(corrupt)?;
        if rec.seq != seq + 1 {
            return Err(corrupt(format!(
                "sequence {} where {} was expected",
                rec.seq,
                seq + 1
            )));
        }
        if rec.prev != prev {
            return Err(corrupt("previous-hash link broken".into()));
        }
        if rec.hash != record_hash(&rec.prev, rec.seq, rec.ts_ms, &rec.text) {
            return Err(corrupt("hash mismatch (record modified)".into()));
        }
        each(&rec);
        seq = rec.seq;
        prev = rec.hash;
        good_len += n as u64;
    }
    Ok(Scan {
        count: line_no,
        head: (seq, prev),
        good_len,
        torn: false,
    })
}

/// An open journal, positioned after its last record.
pub struct AuditJournal {
    file: File,
    path: PathBuf,
    seq: u64,
    head: [u8; 32],
    /// File length covering exactly the committed records.
    committed_len: u64,
    /// A failed append may have left bytes past `committed_len`.
    dirty: bool,
    clock: Arc<dyn Clock>,
    #[cfg(test)]
    fail_appends: usize,
}

impl std::fmt::Debug for AuditJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditJournal")
            .field("path", &self.path)
            .field("seq", &self.seq)
            .field("head", &hex(&self.head))
            .finish_non_exhaustive()
    }
}

impl AuditJournal {
    /// Opens (or creates) `<dir>/audit.log` with the system clock.
    pub fn open(dir: &Path) -> Result<AuditJournal, AuditError> {
        AuditJournal::open_with_clock(dir, Arc::new(SystemClock))
    }

    /// Opens (or creates) `<dir>/audit.log`, verifying what is there and
    /// continuing its chain; timestamps come from `clock`.
    pub fn open_with_clock(dir: &Path, clock: Arc<dyn Clock>) -> Result<AuditJournal, AuditError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let existed = path.exists();
        let scan = scan(&path, |_| {})?;
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        if !existed {
            // Make the new directory entry durable too.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let mut journal = AuditJournal {
            file,
            path,
            seq: scan.head.0,
            head: scan.head.1,
            committed_len: scan.good_len,
            dirty: scan.torn,
            clock,
            #[cfg(test)]
            fail_appends: 0,
        };
        if scan.torn {
            journal.append(&format!(
                "audit journal: cut a torn final record after line {}",
                scan.count
            ))?;
        }
        Ok(journal)
    }

    /// Appends one record (the text is escaped first) and syncs it to disk.
    pub fn append(&mut self, text: &str) -> Result<AuditRecord, AuditError> {
        if self.dirty {
            self.file.set_len(self.committed_len)?;
            self.file.sync_data()?;
            self.dirty = false;
        }
        let text = escape(text);
        let seq = self.seq + 1;
        let ts_ms = self.clock.now_ms();
        let hash = record_hash(&self.head, seq, ts_ms, &text);
        let line = format!("{seq} {ts_ms} {} {} {text}\n", hex(&self.head), hex(&hash));
        if let Err(e) = self.write_durably(line.as_bytes()) {
            self.dirty = true;
            // Best effort now; retried before the next append.
            if self.file.set_len(self.committed_len).is_ok() {
                self.dirty = false;
            }
            return Err(e.into());
        }
        let rec = AuditRecord {
            seq,
            ts_ms,
            prev: self.head,
            hash,
            text,
        };
        self.seq = seq;
        self.head = hash;
        self.committed_len += line.len() as u64;
        Ok(rec)
    }

    fn write_durably(&mut self, bytes: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_appends > 0 {
            self.fail_appends -= 1;
            // Simulate a partial write followed by a failure.
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            self.file.write_all(half)?;
            return Err(io::Error::other("injected journal failure"));
        }
        self.file.write_all(bytes)?;
        self.file.sync_data()
    }

    /// Makes the next `n` appends fail (tests only).
    #[cfg(test)]
    pub(crate) fn inject_failures(&mut self, n: usize) {
        self.fail_appends = n;
    }

    /// The journal file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last record's sequence number and hash (an anchor to detect
    /// truncation later).
    #[must_use]
    pub fn head(&self) -> (u64, [u8; 32]) {
        (self.seq, self.head)
    }

    /// Verifies a journal file; returns the number of records.
    pub fn verify(path: &Path) -> Result<usize, AuditError> {
        let s = scan(path, |_| {})?;
        if s.torn {
            return Err(AuditError::Corrupt {
                line: s.count + 1,
                reason: "incomplete final record".into(),
            });
        }
        Ok(s.count)
    }

    /// Verifies a journal file, handing each record to `each` in order;
    /// returns the number of records. A torn final line is ignored (as
    /// `open` would cut it).
    pub fn replay(path: &Path, each: impl FnMut(&AuditRecord)) -> Result<usize, AuditError> {
        Ok(scan(path, each)?.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        let mut s = lines.join("\n");
        s.push('\n');
        std::fs::write(path, s).unwrap();
    }

    fn journal(dir: &Path) -> AuditJournal {
        AuditJournal::open_with_clock(dir, Arc::new(ManualClock::new(42))).unwrap()
    }

    #[test]
    fn chain_verifies_and_resumes_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        j.append("one").unwrap();
        j.append("two\nforged 1 2 3").unwrap();
        let head = j.head();
        drop(j);
        let path = dir.path().join(JOURNAL_FILE);
        assert_eq!(AuditJournal::verify(&path).unwrap(), 2);
        let mut j = journal(dir.path());
        assert_eq!(j.head(), head);
        let r = j.append("three").unwrap();
        assert_eq!(r.seq, 3);
        assert_eq!(r.prev, head.1);
        assert_eq!(AuditJournal::verify(&path).unwrap(), 3);
        let mut texts = Vec::new();
        AuditJournal::replay(&path, |r| texts.push(r.text.clone())).unwrap();
        assert_eq!(texts, ["one", "two\\nforged 1 2 3", "three"]);
    }

    #[test]
    fn tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        for t in ["a", "b", "c", "d"] {
            j.append(t).unwrap();
        }
        drop(j);
        let path = dir.path().join(JOURNAL_FILE);
        let orig = lines(&path);

        // Modified text.
        let mut l = orig.clone();
        l[1] = l[1].replace(" b", " B");
        write_lines(&path, &l);
        let e = AuditJournal::verify(&path).unwrap_err();
        assert!(matches!(e, AuditError::Corrupt { line: 2, .. }), "{e}");
        assert!(AuditJournal::open(dir.path()).is_err());

        // Removed line.
        let mut l = orig.clone();
        l.remove(2);
        write_lines(&path, &l);
        assert!(matches!(
            AuditJournal::verify(&path),
            Err(AuditError::Corrupt { line: 3, .. })
        ));

        // Reordered lines.
        let mut l = orig.clone();
        l.swap(1, 2);
        write_lines(&path, &l);
        assert!(matches!(
            AuditJournal::verify(&path),
            Err(AuditError::Corrupt { line: 2, .. })
        ));

        // A recomputed-looking but wrong timestamp.
        let mut l = orig.clone();
        l[0] = l[0].replacen(" 42 ", " 43 ", 1);
        write_lines(&path, &l);
        assert!(AuditJournal::verify(&path).is_err());

        write_lines(&path, &orig);
        assert_eq!(AuditJournal::verify(&path).unwrap(), 4);
    }

    #[test]
    fn torn_tail_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        j.append("a").unwrap();
        drop(j);
        let path = dir.path().join(JOURNAL_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"2 42 0000").unwrap();
        drop(f);
        assert!(AuditJournal::verify(&path).is_err());
        let j = journal(dir.path());
        assert_eq!(j.head().0, 2);
        assert_eq!(AuditJournal::verify(&path).unwrap(), 2);
        assert!(lines(&path)[1].ends_with("cut a torn final record after line 1"));
    }

    #[test]
    fn failed_append_keeps_the_chain_valid() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path());
        j.append("a").unwrap();
        j.inject_failures(1);
        assert!(j.append("b").is_err());
        j.append("c").unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        assert_eq!(AuditJournal::verify(&path).unwrap(), 2);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a\\b\nc\t\u{7f}"), "a\\\\b\\nc\\x09\\x7f");
        assert_eq!(escape("ünïcode ok"), "ünïcode ok");
    }

    #[test]
    fn garbage_lines_are_corrupt_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        for junk in [
            &b"\n"[..],
            b"1\n",
            b"x 1 a b c\n",
            b"1 1 zz zz t\n",
            b"\xff\xfe\n",
            b"99999999999999999999999 1 0 0 t\n",
        ] {
            std::fs::write(&path, junk).unwrap();
            assert!(AuditJournal::verify(&path).is_err());
        }
    }
}
