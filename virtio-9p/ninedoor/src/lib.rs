//! NineDoor: the hive's synthetic Secure9P namespace server.
//!
//! This crate is the namespace's *semantic core*: the tree, node kinds,
//! per-role policy, ticket budgets, control files (spawn, kill, leases,
//! lifecycle, bind, mount, models), the audit journal, and the hooks the
//! supervisor implements ([`effects::Effects`]) — everything except 9P
//! framing. The session layer (fids, tags, flush, readdir packing) and the
//! host transports are built on [`hive::Hive`].
//!
//! Module map:
//! - [`hive`] — [`hive::Hive`], the API the session layer and supervisor call;
//! - [`node`], [`tree`] — node kinds, attributes, stable directory cookies;
//! - [`policy`] — who may see, read and write what (the table);
//! - [`budget`] — per-session ticket budgets and limits;
//! - [`ctl`], [`lease`], [`lifecycle`], [`models`], [`job`] — the control
//!   languages and their rules;
//! - [`audit`] — the durable hash-chained journal;
//! - [`effects`], [`clock`], [`config`], [`identity`], [`errno`], [`ring`],
//!   [`sha256`] — supporting pieces.
//!
//! Shared types come from the `secure9p` codec: [`identity::Role`] and the
//! ticket types re-exported by [`budget`] are `secure9p::ticket`'s, and the
//! raw values behind [`Errno`] are `secure9p::errno`'s (plus `EKEYREVOKED`).

pub mod audit;
pub mod budget;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod effects;
pub mod errno;
pub mod hive;
pub mod identity;
pub mod job;
pub mod lease;
pub mod lifecycle;
pub mod models;
pub mod node;
pub mod policy;
pub mod ring;
pub mod server;
pub mod session;
pub mod sha256;
pub mod transport;
pub mod tree;

pub use errno::Errno;
pub use hive::Hive;
pub use identity::{Identity, Role};
