//! NineDoor as a running service: the hive, its host transports, and a
//! ticker that enforces lease TTLs even when no request arrives.
//!
//! The supervisor (`coco-vmm run`) and the tests build a [`Server`] from a
//! [`Hive`]; each accepted connection gets a [`Session`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::hive::Hive;
use crate::session::{Binding, Session, SessionStats};
use crate::transport::{self, HandlerFactory, ListenAddress, ListenError, Listener, Peer};

/// How often lease TTLs are checked without traffic.
pub const TICK: Duration = Duration::from_millis(200);

/// Makes a [`Session`] for every host connection.
#[derive(Debug)]
pub struct SessionFactory {
    hive: Arc<Hive>,
    stats: Arc<SessionStats>,
}

impl SessionFactory {
    /// Sessions on `hive`.
    pub fn new(hive: Arc<Hive>) -> SessionFactory {
        SessionFactory {
            hive,
            stats: Arc::new(SessionStats::default()),
        }
    }

    /// A session for an in-process client (benchmarks, tests, fuzzing).
    pub fn local_session(&self, binding: Binding) -> Session {
        Session::new(self.hive.clone(), Peer::Local, binding, self.stats.clone())
    }

    /// A session for guest `guest`'s virtio-9p bridge: its identity is
    /// fixed by the supervisor, whatever the guest sends at attach.
    pub fn guest_session(&self, guest: &str, identity: crate::identity::Identity) -> Session {
        Session::new(
            self.hive.clone(),
            Peer::Guest(guest.to_owned()),
            Binding::Bound(identity),
            self.stats.clone(),
        )
    }

    /// Counters over every session this factory made.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }
}

impl HandlerFactory for SessionFactory {
    type Handler = Session;

    fn connect(&self, peer: Peer) -> Session {
        Session::new(self.hive.clone(), peer, Binding::Open, self.stats.clone())
    }

    fn audit(&self, line: &str) {
        self.hive.audit(line);
    }
}

/// A serving NineDoor: listeners plus the TTL ticker. Dropping it stops
/// accepting connections and the ticker.
#[derive(Debug)]
pub struct Server {
    hive: Arc<Hive>,
    factory: Arc<SessionFactory>,
    listeners: Vec<Listener>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `hive` (no listeners yet; add them with [`Server::listen_unix`]
    /// and [`Server::listen_tcp`]).
    pub fn new(hive: Arc<Hive>) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let hive = hive.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ninedoor-tick".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        hive.tick();
                        std::thread::sleep(TICK);
                    }
                })
                .ok()
        };
        Server {
            factory: Arc::new(SessionFactory::new(hive.clone())),
            hive,
            listeners: Vec::new(),
            stop,
            ticker,
        }
    }

    /// The hive served.
    pub fn hive(&self) -> &Arc<Hive> {
        &self.hive
    }

    /// The session factory (for in-process sessions).
    pub fn factory(&self) -> &Arc<SessionFactory> {
        &self.factory
    }

    /// Listens on a Unix socket (mode 0600); returns where.
    pub fn listen_unix(&mut self, path: &Path) -> Result<ListenAddress, ListenError> {
        let listener = transport::listen_unix(path, self.factory.clone())?;
        Ok(self.add(listener))
    }

    /// Listens on loopback TCP (port 0 picks a free port); returns where.
    pub fn listen_tcp(&mut self, addr: SocketAddr) -> Result<ListenAddress, ListenError> {
        let listener = transport::listen_tcp(addr, self.factory.clone())?;
        Ok(self.add(listener))
    }

    fn add(&mut self, listener: Listener) -> ListenAddress {
        let address = listener.address.clone();
        self.hive.audit(&format!("listening on {address:?}"));
        self.listeners.push(listener);
        address
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for l in &mut self.listeners {
            l.stop();
        }
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}
