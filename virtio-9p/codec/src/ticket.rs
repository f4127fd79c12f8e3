//! Cohesix tickets: bearer tokens carried in Tattach's `aname`.
//!
//! # Text form
//! `cohesix-ticket-<payload hex>.<mac hex>`, both lowercase hex. The MAC is
//! the 32-byte BLAKE3 keyed hash of the payload bytes, keyed with
//! `BLAKE3(role secret)`. The text is at most [`MAX_TICKET_TEXT`] (1024)
//! characters: Cohesix caps it at 224 ([`COHESIX_MAX_TICKET_TEXT`]), which
//! leaves no room for scopes; coco accepts longer tickets so a handful of
//! scopes fit, and refuses anything longer than 1024 before decoding a byte.
//!
//! # Payload (little-endian)
//! ```text
//! version u8 = 1
//! role    u8        0 queen, 1 worker-heartbeat, 2 worker-gpu, 3 worker-bus, 4 worker-lora
//! flags   u8        0x01 ticks, 0x02 ops, 0x04 ttl, 0x08 subject, 0x10 scopes, 0x20 quotas
//! ticks   u64       if 0x01
//! ops     u64       if 0x02
//! ttl_s   u64       if 0x04
//! subject str       if 0x08   (str = len u16 + UTF-8)
//! issued_at_ms u64
//! mount_service str
//! mount_point   str
//! scopes            if 0x10: count u8 (<= 16), each: path str, verb u8 (0 read,
//!                   1 write, 2 read-write), rate_per_s u32 (0 = unlimited)
//! quotas            if 0x20: bandwidth_bytes u64, cursor_resumes u32,
//!                   cursor_advances u32 (0 = unlimited)
//! ```
//! Unknown flag bits and trailing bytes are rejected. [`Ticket::mint`] sets
//! the scopes flag exactly when there are scopes and the quotas flag when
//! there are quotas; [`Ticket::verify`] also accepts the scopes flag with a
//! count of 0.
//!
//! # Verification
//! [`Ticket::verify`] checks the length, prefix and hex, then the MAC (in
//! constant time) and only then parses the payload. Expiry is separate
//! ([`Ticket::expired`]) because it needs the caller's clock. A server picks
//! the role secret with [`Ticket::peek_role`] (which authenticates nothing)
//! and must then check that the verified ticket's role matches the role in
//! `uname` (see [`split_uname`]).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::errno;

/// Prefix of every ticket text.
pub const TICKET_PREFIX: &str = "cohesix-ticket-";
/// The only payload version.
pub const TICKET_VERSION: u8 = 1;
/// Longest ticket text coco accepts (see the module docs).
pub const MAX_TICKET_TEXT: usize = 1024;
/// Cohesix's own limit, for reference: a ticket that must also work with a
/// Cohesix server keeps to this.
pub const COHESIX_MAX_TICKET_TEXT: usize = 224;
/// Most scopes in one ticket.
pub const MAX_SCOPES: usize = 16;
/// Length of the MAC in bytes (64 hex digits).
pub const MAC_LEN: usize = 32;

/// Payload flag: `ticks` present.
pub const FLAG_TICKS: u8 = 0x01;
/// Payload flag: `ops` present.
pub const FLAG_OPS: u8 = 0x02;
/// Payload flag: `ttl_s` present.
pub const FLAG_TTL: u8 = 0x04;
/// Payload flag: `subject` present.
pub const FLAG_SUBJECT: u8 = 0x08;
/// Payload flag: scopes present.
pub const FLAG_SCOPES: u8 = 0x10;
/// Payload flag: quotas present.
pub const FLAG_QUOTAS: u8 = 0x20;
const FLAGS_KNOWN: u8 = 0x3f;

/// Cohesix default budget of a heartbeat worker: ticks.
pub const HEARTBEAT_TICKS: u64 = 1000;
/// Cohesix default budget of a heartbeat worker: operations.
pub const HEARTBEAT_OPS: u64 = 10_000;
/// Cohesix default budget of a heartbeat worker: lifetime in seconds.
pub const HEARTBEAT_TTL_S: u64 = 300;
/// Cohesix default budget of a GPU worker: operations (a lease's streams × 8
/// overrides it when a lease exists).
pub const GPU_OPS: u64 = 64;
/// Cohesix default budget of a GPU worker: lifetime in seconds.
pub const GPU_TTL_S: u64 = 120;

/// Who a ticket (and a session) speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Role {
    /// The hive's controller: sees and may write everything.
    Queen = 0,
    /// A heartbeat worker.
    WorkerHeartbeat = 1,
    /// A GPU worker.
    WorkerGpu = 2,
    /// A bus worker.
    WorkerBus = 3,
    /// A LoRa worker.
    WorkerLora = 4,
}

impl Role {
    /// Every role, in wire order.
    pub const ALL: [Role; 5] = [
        Role::Queen,
        Role::WorkerHeartbeat,
        Role::WorkerGpu,
        Role::WorkerBus,
        Role::WorkerLora,
    ];

    /// The role's name as used in `uname` and cohsh: `"queen"`,
    /// `"worker-heartbeat"`, `"worker-gpu"`, `"worker-bus"`, `"worker-lora"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Queen => "queen",
            Role::WorkerHeartbeat => "worker-heartbeat",
            Role::WorkerGpu => "worker-gpu",
            Role::WorkerBus => "worker-bus",
            Role::WorkerLora => "worker-lora",
        }
    }

    /// Parses a name produced by [`Role::as_str`] (exact, case-sensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The wire byte.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The role of a wire byte.
    #[must_use]
    pub const fn from_u8(b: u8) -> Option<Role> {
        match b {
            0 => Some(Role::Queen),
            1 => Some(Role::WorkerHeartbeat),
            2 => Some(Role::WorkerGpu),
            3 => Some(Role::WorkerBus),
            4 => Some(Role::WorkerLora),
            _ => None,
        }
    }

    /// Whether this is one of the worker roles.
    #[must_use]
    pub const fn is_worker(self) -> bool {
        !matches!(self, Role::Queen)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Splits a Tattach `uname` of the form `role` or `role:id` (e.g.
/// `"worker-gpu:worker-3"`) into the role and the optional id. Returns `None`
/// for an unknown role or an empty id after the colon. Whether a role needs
/// an id is the server's rule.
#[must_use]
pub fn split_uname(uname: &str) -> Option<(Role, Option<&str>)> {
    match uname.split_once(':') {
        None => Role::parse(uname).map(|r| (r, None)),
        Some((_, "")) => None,
        Some((role, id)) => Role::parse(role).map(|r| (r, Some(id))),
    }
}

/// What a scope permits on its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Verb {
    /// Read only.
    Read = 0,
    /// Write only.
    Write = 1,
    /// Read and write.
    ReadWrite = 2,
}

impl Verb {
    /// `"read"`, `"write"` or `"rw"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Read => "read",
            Verb::Write => "write",
            Verb::ReadWrite => "rw",
        }
    }

    /// Parses `"read"`/`"r"`, `"write"`/`"w"`, `"rw"`/`"read-write"`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Verb> {
        match s {
            "read" | "r" => Some(Verb::Read),
            "write" | "w" => Some(Verb::Write),
            "rw" | "read-write" => Some(Verb::ReadWrite),
            _ => None,
        }
    }

    /// The wire byte.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The verb of a wire byte.
    #[must_use]
    pub const fn from_u8(b: u8) -> Option<Verb> {
        match b {
            0 => Some(Verb::Read),
            1 => Some(Verb::Write),
            2 => Some(Verb::ReadWrite),
            _ => None,
        }
    }

    /// Whether reading is allowed.
    #[must_use]
    pub const fn allows_read(self) -> bool {
        matches!(self, Verb::Read | Verb::ReadWrite)
    }

    /// Whether writing is allowed.
    #[must_use]
    pub const fn allows_write(self) -> bool {
        matches!(self, Verb::Write | Verb::ReadWrite)
    }
}

/// A path the ticket grants access to (the path and everything below it, by
/// the server's rule), with a verb and a rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Absolute namespace path.
    pub path: String,
    /// What is allowed.
    pub verb: Verb,
    /// Operations per second (0: unlimited).
    pub rate_per_s: u32,
}

/// Session quotas (0 in any field: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Quotas {
    /// Total bytes read and written.
    pub bandwidth_bytes: u64,
    /// How many times a read cursor may be resumed.
    pub cursor_resumes: u32,
    /// How many times a read cursor may advance.
    pub cursor_advances: u32,
}

/// A decoded ticket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ticket {
    /// The role it speaks for (its secret keys the MAC).
    pub role: Role,
    /// Who it was issued to (e.g. `"worker-3"`).
    pub subject: Option<String>,
    /// Issue time, milliseconds since the Unix epoch (or the hive's clock).
    pub issued_at_ms: u64,
    /// Tick budget.
    pub ticks: Option<u64>,
    /// Operation budget.
    pub ops: Option<u64>,
    /// Lifetime in seconds from `issued_at_ms`.
    pub ttl_s: Option<u64>,
    /// Service to mount (may be empty).
    pub mount_service: String,
    /// Where to mount it (may be empty).
    pub mount_point: String,
    /// Granted paths (at most [`MAX_SCOPES`]); empty means "the role's
    /// default view".
    pub scopes: Vec<Scope>,
    /// Quotas, if any.
    pub quotas: Option<Quotas>,
}

/// Why a ticket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketError {
    /// The text does not start with [`TICKET_PREFIX`].
    BadPrefix,
    /// A non-lowercase-hex digit, or an odd number of digits.
    BadHex,
    /// The MAC is missing, not 32 bytes, or does not match.
    BadMac,
    /// The payload ends inside a field.
    Truncated,
    /// Bytes after the last field.
    TrailingBytes,
    /// A payload version other than 1.
    UnknownVersion {
        /// The version byte.
        version: u8,
    },
    /// A role byte above 4.
    UnknownRole {
        /// The role byte.
        role: u8,
    },
    /// Flag bits other than the six defined ones.
    UnknownFlags {
        /// The flags byte.
        flags: u8,
    },
    /// A scope verb above 2.
    UnknownVerb {
        /// The verb byte.
        verb: u8,
    },
    /// More than [`MAX_SCOPES`] scopes.
    TooManyScopes {
        /// How many.
        count: usize,
    },
    /// The text is (or would be) longer than [`MAX_TICKET_TEXT`], or a string
    /// is longer than 65535 bytes.
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A string is not UTF-8.
    BadUtf8,
    /// An empty role secret (it would make the MAC forgeable by anyone).
    EmptySecret,
}

impl TicketError {
    /// The errno a server answers a refused Tattach with: `EKEYREJECTED`.
    /// (An expired ticket, see [`Ticket::expired`], gets `EKEYEXPIRED`.)
    #[must_use]
    pub const fn errno(&self) -> u32 {
        errno::EKEYREJECTED
    }
}

impl fmt::Display for TicketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TicketError::BadPrefix => write!(f, "ticket does not start with {TICKET_PREFIX}"),
            TicketError::BadHex => f.write_str("ticket is not lowercase hex"),
            TicketError::BadMac => f.write_str("ticket MAC does not verify"),
            TicketError::Truncated => f.write_str("ticket payload is truncated"),
            TicketError::TrailingBytes => f.write_str("ticket payload has trailing bytes"),
            TicketError::UnknownVersion { version } => {
                write!(f, "unknown ticket version {version}")
            }
            TicketError::UnknownRole { role } => write!(f, "unknown ticket role {role}"),
            TicketError::UnknownFlags { flags } => write!(f, "unknown ticket flags {flags:#04x}"),
            TicketError::UnknownVerb { verb } => write!(f, "unknown scope verb {verb}"),
            TicketError::TooManyScopes { count } => {
                write!(f, "{count} scopes exceed {MAX_SCOPES}")
            }
            TicketError::TooLong { len } => {
                write!(f, "ticket of {len} characters exceeds {MAX_TICKET_TEXT}")
            }
            TicketError::BadUtf8 => f.write_str("ticket string is not UTF-8"),
            TicketError::EmptySecret => f.write_str("empty role secret"),
        }
    }
}

impl core::error::Error for TicketError {}

impl Ticket {
    /// A ticket for `role` issued at `issued_at_ms`, with Cohesix's default
    /// budgets: heartbeat workers ticks [`HEARTBEAT_TICKS`] / ops
    /// [`HEARTBEAT_OPS`] / ttl [`HEARTBEAT_TTL_S`]; GPU workers ops
    /// [`GPU_OPS`] / ttl [`GPU_TTL_S`]; the queen, bus and LoRa workers
    /// unbounded. No subject, mounts, scopes or quotas.
    #[must_use]
    pub fn new(role: Role, issued_at_ms: u64) -> Ticket {
        let (ticks, ops, ttl_s) = match role {
            Role::WorkerHeartbeat => (
                Some(HEARTBEAT_TICKS),
                Some(HEARTBEAT_OPS),
                Some(HEARTBEAT_TTL_S),
            ),
            Role::WorkerGpu => (None, Some(GPU_OPS), Some(GPU_TTL_S)),
            Role::Queen | Role::WorkerBus | Role::WorkerLora => (None, None, None),
        };
        Ticket {
            role,
            subject: None,
            issued_at_ms,
            ticks,
            ops,
            ttl_s,
            mount_service: String::new(),
            mount_point: String::new(),
            scopes: Vec::new(),
            quotas: None,
        }
    }

    /// When the ticket expires (`issued_at_ms + ttl_s * 1000`, saturating),
    /// or `None` without a TTL.
    #[must_use]
    pub fn expires_at_ms(&self) -> Option<u64> {
        self.ttl_s
            .map(|ttl| self.issued_at_ms.saturating_add(ttl.saturating_mul(1000)))
    }

    /// Whether the ticket's TTL has run out at `now_ms`: valid from
    /// `issued_at_ms` (inclusive) to `issued_at_ms + ttl_s * 1000`
    /// (exclusive). A ticket without a TTL never expires.
    #[must_use]
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms().is_some_and(|end| now_ms >= end)
    }

    /// The binary payload (unauthenticated; see the module docs).
    pub fn to_payload(&self) -> Result<Vec<u8>, TicketError> {
        if self.scopes.len() > MAX_SCOPES {
            return Err(TicketError::TooManyScopes {
                count: self.scopes.len(),
            });
        }
        let mut flags = 0u8;
        if self.ticks.is_some() {
            flags |= FLAG_TICKS;
        }
        if self.ops.is_some() {
            flags |= FLAG_OPS;
        }
        if self.ttl_s.is_some() {
            flags |= FLAG_TTL;
        }
        if self.subject.is_some() {
            flags |= FLAG_SUBJECT;
        }
        if !self.scopes.is_empty() {
            flags |= FLAG_SCOPES;
        }
        if self.quotas.is_some() {
            flags |= FLAG_QUOTAS;
        }
        let mut out = Vec::with_capacity(64);
        out.push(TICKET_VERSION);
        out.push(self.role.as_u8());
        out.push(flags);
        for v in [self.ticks, self.ops, self.ttl_s].into_iter().flatten() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(s) = &self.subject {
            put_str(&mut out, s)?;
        }
        out.extend_from_slice(&self.issued_at_ms.to_le_bytes());
        put_str(&mut out, &self.mount_service)?;
        put_str(&mut out, &self.mount_point)?;
        if !self.scopes.is_empty() {
            let count =
                u8::try_from(self.scopes.len()).map_err(|_| TicketError::TooManyScopes {
                    count: self.scopes.len(),
                })?;
            out.push(count);
            for s in &self.scopes {
                put_str(&mut out, &s.path)?;
                out.push(s.verb.as_u8());
                out.extend_from_slice(&s.rate_per_s.to_le_bytes());
            }
        }
        if let Some(q) = &self.quotas {
            out.extend_from_slice(&q.bandwidth_bytes.to_le_bytes());
            out.extend_from_slice(&q.cursor_resumes.to_le_bytes());
            out.extend_from_slice(&q.cursor_advances.to_le_bytes());
        }
        Ok(out)
    }

    /// Parses a binary payload **without authenticating it** (for tools and
    /// fuzzing; servers use [`Ticket::verify`]).
    pub fn from_payload(payload: &[u8]) -> Result<Ticket, TicketError> {
        let mut r = Cursor { buf: payload };
        let version = r.u8()?;
        if version != TICKET_VERSION {
            return Err(TicketError::UnknownVersion { version });
        }
        let role_byte = r.u8()?;
        let role = Role::from_u8(role_byte).ok_or(TicketError::UnknownRole { role: role_byte })?;
        let flags = r.u8()?;
        if flags & !FLAGS_KNOWN != 0 {
            return Err(TicketError::UnknownFlags { flags });
        }
        let ticks = r.opt_u64(flags & FLAG_TICKS != 0)?;
        let ops = r.opt_u64(flags & FLAG_OPS != 0)?;
        let ttl_s = r.opt_u64(flags & FLAG_TTL != 0)?;
        let subject = if flags & FLAG_SUBJECT != 0 {
            Some(r.string()?)
        } else {
            None
        };
        let issued_at_ms = r.u64()?;
        let mount_service = r.string()?;
        let mount_point = r.string()?;
        let mut scopes = Vec::new();
        if flags & FLAG_SCOPES != 0 {
            let count = usize::from(r.u8()?);
            if count > MAX_SCOPES {
                return Err(TicketError::TooManyScopes { count });
            }
            scopes.reserve_exact(count);
            for _ in 0..count {
                let path = r.string()?;
                let verb_byte = r.u8()?;
                let verb =
                    Verb::from_u8(verb_byte).ok_or(TicketError::UnknownVerb { verb: verb_byte })?;
                let rate_per_s = r.u32()?;
                scopes.push(Scope {
                    path,
                    verb,
                    rate_per_s,
                });
            }
        }
        let quotas = if flags & FLAG_QUOTAS != 0 {
            Some(Quotas {
                bandwidth_bytes: r.u64()?,
                cursor_resumes: r.u32()?,
                cursor_advances: r.u32()?,
            })
        } else {
            None
        };
        if !r.buf.is_empty() {
            return Err(TicketError::TrailingBytes);
        }
        Ok(Ticket {
            role,
            subject,
            issued_at_ms,
            ticks,
            ops,
            ttl_s,
            mount_service,
            mount_point,
            scopes,
            quotas,
        })
    }

    /// The ticket text, MAC keyed with `BLAKE3(secret)` where `secret` is the
    /// secret of `self.role`. Fails if the text would exceed
    /// [`MAX_TICKET_TEXT`], there are more than [`MAX_SCOPES`] scopes, or the
    /// secret is empty.
    pub fn mint(&self, secret: &[u8]) -> Result<String, TicketError> {
        let payload = self.to_payload()?;
        seal(&payload, secret)
    }

    /// Verifies `text` with the role secret `secret` and decodes it.
    ///
    /// Order: length (≤ [`MAX_TICKET_TEXT`], before anything else), prefix,
    /// hex, MAC (constant-time comparison), then the payload. Does not check
    /// expiry ([`Ticket::expired`]) or that the ticket's role is the one the
    /// secret belongs to: the caller picked the secret by role, so a ticket
    /// of another role fails the MAC unless two roles share a secret —
    /// compare `ticket.role` with the expected role anyway.
    pub fn verify(text: &str, secret: &[u8]) -> Result<Ticket, TicketError> {
        if secret.is_empty() {
            return Err(TicketError::EmptySecret);
        }
        let (payload_hex, mac_hex) = split_text(text)?;
        let mac_hex = mac_hex.ok_or(TicketError::BadMac)?;
        let payload = hex_decode(payload_hex)?;
        let mac = hex_decode(mac_hex)?;
        let mac: [u8; MAC_LEN] = mac.as_slice().try_into().map_err(|_| TicketError::BadMac)?;
        // blake3::Hash's equality is constant-time.
        if blake3::Hash::from_bytes(mac) != compute_mac(&payload, secret) {
            return Err(TicketError::BadMac);
        }
        Ticket::from_payload(&payload)
    }

    /// The role a ticket claims, **without verifying it**, so a server can
    /// choose which role secret to verify with.
    pub fn peek_role(text: &str) -> Result<Role, TicketError> {
        let (payload_hex, _) = split_text(text)?;
        let head = payload_hex.get(..4).ok_or(TicketError::Truncated)?;
        let head = hex_decode(head)?;
        let (Some(&version), Some(&role)) = (head.first(), head.get(1)) else {
            return Err(TicketError::Truncated);
        };
        if version != TICKET_VERSION {
            return Err(TicketError::UnknownVersion { version });
        }
        Role::from_u8(role).ok_or(TicketError::UnknownRole { role })
    }
}

/// Checks the length and prefix; returns the payload hex and the MAC hex (if
/// there is a `.`).
fn split_text(text: &str) -> Result<(&str, Option<&str>), TicketError> {
    if text.len() > MAX_TICKET_TEXT {
        return Err(TicketError::TooLong { len: text.len() });
    }
    let body = text
        .strip_prefix(TICKET_PREFIX)
        .ok_or(TicketError::BadPrefix)?;
    Ok(match body.split_once('.') {
        Some((p, m)) => (p, Some(m)),
        None => (body, None),
    })
}

fn compute_mac(payload: &[u8], secret: &[u8]) -> blake3::Hash {
    let key = blake3::hash(secret);
    blake3::keyed_hash(key.as_bytes(), payload)
}

/// Builds the text for an already-encoded payload.
fn seal(payload: &[u8], secret: &[u8]) -> Result<String, TicketError> {
    if secret.is_empty() {
        return Err(TicketError::EmptySecret);
    }
    let len = TICKET_PREFIX
        .len()
        .saturating_add(payload.len().saturating_mul(2))
        .saturating_add(1 + 2 * MAC_LEN);
    if len > MAX_TICKET_TEXT {
        return Err(TicketError::TooLong { len });
    }
    let mac = compute_mac(payload, secret);
    let mut text = String::with_capacity(len);
    text.push_str(TICKET_PREFIX);
    hex_encode(payload, &mut text);
    text.push('.');
    hex_encode(mac.as_bytes(), &mut text);
    Ok(text)
}

fn hex_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            // from_digit yields lowercase; a nibble is always < 16.
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
}

fn hex_digit(c: u8) -> Result<u8, TicketError> {
    if !(c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return Err(TicketError::BadHex);
    }
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
        .ok_or(TicketError::BadHex)
}

/// Lowercase hex only (the text is ≤ [`MAX_TICKET_TEXT`], which bounds the
/// allocation).
fn hex_decode(s: &str) -> Result<Vec<u8>, TicketError> {
    let bytes = s.as_bytes();
    let (pairs, rest) = bytes.as_chunks::<2>();
    if !rest.is_empty() {
        return Err(TicketError::BadHex);
    }
    let mut out = Vec::with_capacity(pairs.len());
    for &[hi, lo] in pairs {
        out.push((hex_digit(hi)? << 4) | hex_digit(lo)?);
    }
    Ok(out)
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), TicketError> {
    let len = u16::try_from(s.len()).map_err(|_| TicketError::TooLong { len: s.len() })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Bounds-checked payload reader.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TicketError> {
        if n > self.buf.len() {
            return Err(TicketError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TicketError> {
        let (head, tail) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(TicketError::Truncated)?;
        self.buf = tail;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, TicketError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, TicketError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, TicketError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn opt_u64(&mut self, present: bool) -> Result<Option<u64>, TicketError> {
        if present {
            self.u64().map(Some)
        } else {
            Ok(None)
        }
    }

    fn string(&mut self) -> Result<String, TicketError> {
        let len = usize::from(u16::from_le_bytes(self.array()?));
        let bytes = self.take(len)?;
        core::str::from_utf8(bytes)
            .map(String::from)
            .map_err(|_| TicketError::BadUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex() {
        let mut s = String::new();
        hex_encode(&[0x00, 0xab, 0xff], &mut s);
        assert_eq!(s, "00abff");
        assert_eq!(hex_decode("00abff").unwrap(), [0x00, 0xab, 0xff]);
        assert_eq!(hex_decode("00ABff"), Err(TicketError::BadHex));
        assert_eq!(hex_decode("abc"), Err(TicketError::BadHex));
        assert_eq!(hex_decode("zz"), Err(TicketError::BadHex));
        assert_eq!(hex_decode("").unwrap(), []);
    }

    #[test]
    fn seal_matches_mint() {
        let t = Ticket::new(Role::WorkerGpu, 5);
        let payload = t.to_payload().unwrap();
        assert_eq!(seal(&payload, b"s").unwrap(), t.mint(b"s").unwrap());
    }
}
