//! A 9P client on the hive's Unix socket (the queen needs no ticket there),
//! for tests that check the namespace from the host side.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use secure9p::client::{Client, Fid, Transport};
use secure9p::wire::O_RDONLY;

/// Whole 9P frames over a Unix stream.
pub struct Stream(pub UnixStream);

impl Transport for Stream {
    type Error = std::io::Error;

    fn send(&mut self, frame: &[u8]) -> Result<(), Self::Error> {
        self.0.write_all(frame)
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<(), Self::Error> {
        let mut size = [0u8; 4];
        self.0.read_exact(&mut size)?;
        buf.extend_from_slice(&size);
        buf.resize(u32::from_le_bytes(size) as usize, 0);
        self.0.read_exact(&mut buf[4..])
    }
}

/// Connects to `socket` (waiting up to a minute for the hive to create it)
/// and negotiates an 8 KiB msize.
pub fn connect(socket: &Path) -> Client<Stream> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match UnixStream::connect(socket) {
            Ok(s) => return Client::connect(Stream(s), 8192).expect("Tversion"),
            Err(e) if Instant::now() >= deadline => {
                panic!("cannot connect to {}: {e}", socket.display())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reads the whole file at `path` (below `root`).
pub fn read_file(c: &mut Client<Stream>, root: Fid, path: &str) -> String {
    let fid = c.walk_path(root, path).expect(path);
    c.lopen(fid, O_RDONLY).expect("open");
    let data = c.read_to_end_max(fid, 1 << 20).expect("read");
    c.clunk(fid).expect("clunk");
    String::from_utf8_lossy(&data).into_owned()
}

/// Writes one command line to `/queen/ctl` and checks it was taken whole.
pub fn queen_write(c: &mut Client<Stream>, root: Fid, line: &str) {
    let ctl = c.walk_path(root, "queen/ctl").expect("/queen/ctl");
    c.lopen(ctl, secure9p::wire::O_WRONLY).expect("open ctl");
    let cmd = format!("{line}\n");
    assert_eq!(
        c.write(ctl, 0, cmd.as_bytes()).expect(line),
        cmd.len() as u32
    );
    c.clunk(ctl).expect("clunk");
}
