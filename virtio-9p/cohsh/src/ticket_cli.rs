//! `cohsh ticket mint` / `cohsh ticket inspect`: minting and decoding
//! Cohesix tickets (see [`secure9p::ticket`]).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use secure9p::ticket::{MAX_TICKET_TEXT, Role, Scope, TICKET_PREFIX, Ticket, TicketError, Verb};
use serde_json::{Value, json};

/// Why a ticket command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketCliError {
    /// An unknown role name.
    #[error("unknown role {0:?} (queen, worker-heartbeat, worker-gpu, worker-bus, worker-lora)")]
    Role(String),
    /// A malformed `--scope`.
    #[error("bad scope {0:?}: expected <path>:<read|write|rw>[:<rate_per_s>]")]
    Scope(String),
    /// The codec refused the ticket.
    #[error("{0}")]
    Ticket(#[from] TicketError),
}

/// What to mint. Budgets left `None` keep the role's defaults from
/// [`Ticket::new`] (heartbeat ticks 1000 / ops 10000 / ttl 300 s; gpu ops
/// 64 / ttl 120 s; others unbounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintSpec {
    /// Role.
    pub role: Role,
    /// Subject (e.g. `worker-3`).
    pub subject: Option<String>,
    /// Issue time (ms since the epoch).
    pub issued_at_ms: u64,
    /// TTL override (seconds).
    pub ttl_s: Option<u64>,
    /// Ops budget override.
    pub ops: Option<u64>,
    /// Ticks budget override.
    pub ticks: Option<u64>,
    /// Scopes.
    pub scopes: Vec<Scope>,
}

impl MintSpec {
    /// The ticket this spec describes.
    #[must_use]
    pub fn ticket(&self) -> Ticket {
        let mut t = Ticket::new(self.role, self.issued_at_ms);
        t.subject.clone_from(&self.subject);
        if self.ttl_s.is_some() {
            t.ttl_s = self.ttl_s;
        }
        if self.ops.is_some() {
            t.ops = self.ops;
        }
        if self.ticks.is_some() {
            t.ticks = self.ticks;
        }
        t.scopes.clone_from(&self.scopes);
        t
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Parses a role name (`queen`, `worker-heartbeat`, …; `heartbeat` and
/// `gpu` are accepted for the worker roles).
pub fn parse_role(s: &str) -> Result<Role, TicketCliError> {
    let s = match s {
        "heartbeat" => "worker-heartbeat",
        "gpu" => "worker-gpu",
        other => other,
    };
    Role::parse(s).ok_or_else(|| TicketCliError::Role(s.to_owned()))
}

/// Parses `<path>:<verb>[:<rate>]` (the path may itself contain `:`; the
/// verb and rate are taken from the right).
pub fn parse_scope(s: &str) -> Result<Scope, TicketCliError> {
    let bad = || TicketCliError::Scope(s.to_owned());
    let (head, last) = s.rsplit_once(':').ok_or_else(bad)?;
    let (path, verb, rate) = if let Some(v) = Verb::parse(last) {
        (head, v, 0)
    } else {
        let rate: u32 = last.parse().map_err(|_| bad())?;
        let (path, verb) = head.rsplit_once(':').ok_or_else(bad)?;
        (path, Verb::parse(verb).ok_or_else(bad)?, rate)
    };
    if !path.starts_with('/') {
        return Err(bad());
    }
    Ok(Scope {
        path: path.to_owned(),
        verb,
        rate_per_s: rate,
    })
}

/// Mints the ticket text.
pub fn mint(spec: &MintSpec, secret: &[u8]) -> Result<String, TicketCliError> {
    Ok(spec.ticket().mint(secret)?)
}

/// A decoded ticket and whether its MAC was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The payload.
    pub ticket: Ticket,
    /// Whether the MAC was verified with a secret.
    pub verified: bool,
}

/// Decodes `text`; with a secret, verifies the MAC first (and fails if it
/// does not verify). Without one, the payload is decoded unauthenticated.
pub fn inspect(text: &str, secret: Option<&[u8]>) -> Result<Inspection, TicketCliError> {
    let text = text.trim();
    if let Some(secret) = secret {
        return Ok(Inspection {
            ticket: Ticket::verify(text, secret)?,
            verified: true,
        });
    }
    if text.len() > MAX_TICKET_TEXT {
        return Err(TicketError::TooLong { len: text.len() }.into());
    }
    let body = text
        .strip_prefix(TICKET_PREFIX)
        .ok_or(TicketError::BadPrefix)?;
    let payload_hex = body.split_once('.').map_or(body, |(p, _)| p);
    let payload = hex_decode(payload_hex).ok_or(TicketError::BadHex)?;
    Ok(Inspection {
        ticket: Ticket::from_payload(&payload)?,
        verified: false,
    })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| match p {
            [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
            _ => None,
        })
        .collect()
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

impl Inspection {
    /// Human-readable form, one `key: value` per line.
    #[must_use]
    pub fn render_text(&self, now_ms: u64) -> String {
        let t = &self.ticket;
        let mut s = String::new();
        let _ = writeln!(s, "role: {}", t.role);
        let _ = writeln!(s, "subject: {}", t.subject.as_deref().unwrap_or("-"));
        let _ = writeln!(s, "issued_at_ms: {}", t.issued_at_ms);
        let _ = writeln!(s, "ttl_s: {}", opt(t.ttl_s));
        match t.expires_at_ms() {
            Some(e) => {
                let state = if t.expired(now_ms) {
                    "expired"
                } else {
                    "valid"
                };
                let _ = writeln!(s, "expires_at_ms: {e} ({state})");
            }
            None => {
                let _ = writeln!(s, "expires_at_ms: never");
            }
        }
        let _ = writeln!(s, "ticks: {}", opt(t.ticks));
        let _ = writeln!(s, "ops: {}", opt(t.ops));
        if t.mount_service.is_empty() && t.mount_point.is_empty() {
            let _ = writeln!(s, "mount: -");
        } else {
            let _ = writeln!(s, "mount: {} at {}", t.mount_service, t.mount_point);
        }
        if t.scopes.is_empty() {
            let _ = writeln!(s, "scopes: - (the role's default view)");
        } else {
            let _ = writeln!(s, "scopes:");
            for sc in &t.scopes {
                let _ = writeln!(
                    s,
                    "  {} {} rate_per_s={}",
                    sc.path,
                    sc.verb.as_str(),
                    sc.rate_per_s
                );
            }
        }
        match &t.quotas {
            Some(q) => {
                let _ = writeln!(
                    s,
                    "quotas: bandwidth_bytes={} cursor_resumes={} cursor_advances={}",
                    q.bandwidth_bytes, q.cursor_resumes, q.cursor_advances
                );
            }
            None => {
                let _ = writeln!(s, "quotas: -");
            }
        }
        let _ = writeln!(
            s,
            "mac: {}",
            if self.verified {
                "verified"
            } else {
                "NOT CHECKED (no secret given)"
            }
        );
        s
    }

    /// JSON form.
    #[must_use]
    pub fn to_json(&self, now_ms: u64) -> Value {
        let t = &self.ticket;
        json!({
            "role": t.role.as_str(),
            "subject": t.subject,
            "issued_at_ms": t.issued_at_ms,
            "ttl_s": t.ttl_s,
            "expires_at_ms": t.expires_at_ms(),
            "expired": t.expired(now_ms),
            "ticks": t.ticks,
            "ops": t.ops,
            "mount_service": t.mount_service,
            "mount_point": t.mount_point,
            "scopes": t.scopes.iter().map(|s| json!({
                "path": s.path, "verb": s.verb.as_str(), "rate_per_s": s.rate_per_s,
            })).collect::<Vec<_>>(),
            "quotas": t.quotas.map(|q| json!({
                "bandwidth_bytes": q.bandwidth_bytes,
                "cursor_resumes": q.cursor_resumes,
                "cursor_advances": q.cursor_advances,
            })),
            "verified": self.verified,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(role: Role) -> MintSpec {
        MintSpec {
            role,
            subject: Some("worker-1".into()),
            issued_at_ms: 1_000,
            ttl_s: None,
            ops: None,
            ticks: None,
            scopes: Vec::new(),
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(
            parse_scope("/worker/worker-1/telemetry:rw:10").expect("ok"),
            Scope {
                path: "/worker/worker-1/telemetry".into(),
                verb: Verb::ReadWrite,
                rate_per_s: 10
            }
        );
        assert_eq!(parse_scope("/log:read").expect("ok").rate_per_s, 0);
        assert_eq!(parse_scope("/a:b:w:3").expect("ok").path, "/a:b");
        for bad in [
            "",
            "/x",
            "x:read",
            "/x:fly",
            "/x:read:-1",
            "/x:read:many",
            ":read",
        ] {
            assert!(parse_scope(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles() {
        assert_eq!(parse_role("queen"), Ok(Role::Queen));
        assert_eq!(parse_role("gpu"), Ok(Role::WorkerGpu));
        assert_eq!(parse_role("worker-heartbeat"), Ok(Role::WorkerHeartbeat));
        assert!(parse_role("king").is_err());
    }

    #[test]
    fn mint_inspect_round_trip() {
        let mut s = spec(Role::WorkerHeartbeat);
        s.ops = Some(5);
        s.scopes
            .push(parse_scope("/worker/worker-1:rw:2").expect("ok"));
        let text = mint(&s, b"secret").expect("mint");
        assert!(text.starts_with(TICKET_PREFIX));
        let i = inspect(&text, Some(b"secret")).expect("verify");
        assert!(i.verified);
        assert_eq!(i.ticket, s.ticket());
        assert_eq!(i.ticket.ticks, Some(1000), "default kept");
        assert_eq!(i.ticket.ops, Some(5), "override");
        let u = inspect(&text, None).expect("decode");
        assert!(!u.verified);
        assert_eq!(u.ticket, i.ticket);
        assert_eq!(
            inspect(&text, Some(b"wrong")),
            Err(TicketCliError::Ticket(TicketError::BadMac))
        );
        assert!(inspect("nonsense", None).is_err());
        assert!(inspect("cohesix-ticket-zz.00", None).is_err());
        assert!(inspect("cohesix-ticket-0", None).is_err());
        let text_out = i.render_text(1_000);
        assert!(text_out.contains("role: worker-heartbeat"));
        assert!(text_out.contains("(valid)"));
        assert!(i.render_text(10_000_000).contains("(expired)"));
        assert_eq!(i.to_json(0)["scopes"][0]["verb"], "rw");
        assert!(mint(&s, b"").is_err(), "empty secret");
    }
}
