//! The supervisor's end of a guest's virtio-9p bridge.
//!
//! Each VM process gets one end of a fresh socketpair; the supervisor keeps
//! the other and serves it with a NineDoor session whose identity is the
//! guest's role and name from hive.toml (or from the queen's spawn). The
//! guest's attach cannot change it: the socket *is* the credential.

use std::io::BufReader;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use ninedoor::identity::{Identity, Role};
use ninedoor::server::SessionFactory;
use ninedoor::transport::{ReplySink, StreamEnd, serve_stream};
use tracing::{debug, warn};

/// Read buffer of the supervisor's end: one largest frame (64 KiB) plus
/// room for the next request's header.
const BRIDGE_READ_BUFFER: usize = 64 * 1024 + 4096;

/// The identity a guest named `name` with `role` is bound to.
pub fn identity_of(name: &str, role: Role) -> Identity {
    match role {
        Role::WorkerGpu => Identity::gpu(name),
        Role::WorkerHeartbeat => Identity::heartbeat(name),
        _ => Identity::queen(),
    }
}

/// Opens a bridge for guest `name` bound to `identity`: a thread serves the
/// supervisor's end until the VM process closes its end (by exiting); the
/// returned descriptor is the VM process's end (passed as `--ninep-fd`).
pub fn open(
    factory: &Arc<SessionFactory>,
    name: &str,
    identity: Identity,
) -> std::io::Result<OwnedFd> {
    let (ours, theirs) = UnixStream::pair()?;
    let writer = ours.try_clone()?;
    let mut session = factory.guest_session(name, identity);
    let guest = name.to_string();
    std::thread::Builder::new()
        .name(format!("9p-{name}"))
        .spawn(move || {
            let sink = ReplySink::new(Box::new(writer));
            // Buffered: a request's header and body come in one read.
            let input = BufReader::with_capacity(BRIDGE_READ_BUFFER, ours);
            match serve_stream(input, &sink, &mut session) {
                StreamEnd::Eof => debug!(guest = %guest, "virtio-9p bridge closed"),
                StreamEnd::BadFrame(why) => {
                    warn!(guest = %guest, "virtio-9p bridge: bad frame: {why}")
                }
                StreamEnd::Io(why) => debug!(guest = %guest, "virtio-9p bridge ended: {why}"),
            }
        })?;
    Ok(theirs.into())
}
