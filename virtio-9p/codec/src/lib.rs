//! Secure9P: the 9P2000.L codec, Cohesix tickets and a small client session
//! shared by every coco party (the NineDoor server, cohsh, and guests).
//!
//! `#![no_std]` + `alloc`: it builds for `x86_64-unknown-none` guest kernels.
//! Nothing in this crate panics on any input: every read is bounds-checked,
//! every size is checked before allocating (frames against the negotiated
//! `msize`, at most 64 KiB), and arithmetic on decoded numbers is checked.
//!
//! * [`limits`] — msize bounds, walk/name limits, NOTAG/NOFID, IOHDRSZ.
//! * [`errno`] — Linux errno values for Rlerror (and Cohesix's `ELIMIT`).
//! * [`wire`] — [`wire::Request`]/[`wire::Response`],
//!   [`frame_size`], `decode_*`/`encode_*`, directory entry
//!   packing.
//! * [`ticket`] — `cohesix-ticket-…` bearer tokens (BLAKE3 keyed MAC).
//! * [`ctl`] — words of the control files shared by server and clients.
//! * [`client`] — a synchronous session over any frame [`Transport`].
#![no_std]
// Panic-freedom is a contract of this crate: keep it machine-checked.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod client;
pub mod ctl;
pub mod errno;
pub mod limits;
pub mod ticket;
pub mod wire;

pub use client::{Client, ClientError, Fid, Transport};
pub use ticket::{Quotas, Role, Scope, Ticket, TicketError, Verb};
pub use wire::{
    Attr, DecodeError, DecodeErrorKind, DirEntry, EncodeError, Qid, Request, Response, SetAttr,
    StatFs, decode_dirents, decode_request, decode_response, encode_dirents, encode_request,
    encode_response, frame_size,
};
