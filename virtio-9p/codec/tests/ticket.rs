//! Ticket tests: mint/verify, tampering, malformed payloads, expiry.

use secure9p::errno;
use secure9p::ticket::*;

const SECRET: &[u8] = b"queen-secret-for-tests";

fn full_ticket(role: Role) -> Ticket {
    let mut t = Ticket::new(role, 1_700_000_000_000);
    t.subject = Some("worker-7".into());
    t.mount_service = "gpu".into();
    t.mount_point = "/gpu/0".into();
    t.scopes = vec![
        Scope {
            path: "/worker/worker-7/telemetry".into(),
            verb: Verb::Write,
            rate_per_s: 50,
        },
        Scope {
            path: "/gpu/0".into(),
            verb: Verb::ReadWrite,
            rate_per_s: 0,
        },
    ];
    t.quotas = Some(Quotas {
        bandwidth_bytes: 1 << 20,
        cursor_resumes: 3,
        cursor_advances: 0,
    });
    t
}

/// Builds a ticket text with a valid MAC over arbitrary payload bytes (the
/// same construction as `mint`, written out independently here).
fn seal_raw(payload: &[u8], secret: &[u8]) -> String {
    let key = blake3::hash(secret);
    let mac = blake3::keyed_hash(key.as_bytes(), payload);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("cohesix-ticket-{}.{}", hex(payload), hex(mac.as_bytes()))
}

#[test]
fn mint_verify_round_trip_each_role() {
    for role in Role::ALL {
        for t in [Ticket::new(role, 42), full_ticket(role)] {
            let text = t.mint(SECRET).unwrap();
            assert!(text.starts_with("cohesix-ticket-"));
            assert!(text.len() <= MAX_TICKET_TEXT);
            assert!(
                text[TICKET_PREFIX.len()..]
                    .bytes()
                    .all(|b| b == b'.' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "lowercase hex"
            );
            assert_eq!(Ticket::verify(&text, SECRET).unwrap(), t);
            assert_eq!(Ticket::peek_role(&text).unwrap(), role);
            assert_eq!(seal_raw(&t.to_payload().unwrap(), SECRET), text);
        }
        assert_eq!(Role::parse(role.as_str()), Some(role));
        assert_eq!(Role::from_u8(role.as_u8()), Some(role));
    }
    assert_eq!(Role::parse("Queen"), None);
    assert_eq!(Role::from_u8(5), None);
}

#[test]
fn minimal_queen_ticket_fits_cohesix_limit_and_layout() {
    let t = Ticket::new(Role::Queen, 0x0102_0304_0506_0708);
    let payload = t.to_payload().unwrap();
    assert_eq!(
        payload,
        [
            1, 0, 0, // version, role queen, no flags
            8, 7, 6, 5, 4, 3, 2, 1, // issued_at_ms
            0, 0, 0, 0 // empty mount service and point
        ]
    );
    let text = t.mint(SECRET).unwrap();
    assert!(text.len() <= COHESIX_MAX_TICKET_TEXT);
    // A heartbeat ticket with default budgets: flags ticks|ops|ttl.
    let hb = Ticket::new(Role::WorkerHeartbeat, 0).to_payload().unwrap();
    assert_eq!(&hb[..3], &[1, 1, FLAG_TICKS | FLAG_OPS | FLAG_TTL]);
    assert_eq!(&hb[3..11], &HEARTBEAT_TICKS.to_le_bytes());
    assert_eq!(&hb[11..19], &HEARTBEAT_OPS.to_le_bytes());
    assert_eq!(&hb[19..27], &HEARTBEAT_TTL_S.to_le_bytes());
    let gpu = Ticket::new(Role::WorkerGpu, 0);
    assert_eq!(
        (gpu.ticks, gpu.ops, gpu.ttl_s),
        (None, Some(GPU_OPS), Some(GPU_TTL_S))
    );
    let q = Ticket::new(Role::Queen, 0);
    assert_eq!((q.ticks, q.ops, q.ttl_s), (None, None, None));
}

#[test]
fn tampered_payload_and_mac() {
    let text = full_ticket(Role::WorkerGpu).mint(SECRET).unwrap();
    let dot = text.find('.').unwrap();
    // Flip one hex digit in every position of the payload and the MAC.
    for i in TICKET_PREFIX.len()..text.len() {
        if i == dot {
            continue;
        }
        let mut b = text.clone().into_bytes();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        let t = String::from_utf8(b).unwrap();
        assert_eq!(
            Ticket::verify(&t, SECRET),
            Err(TicketError::BadMac),
            "pos {i}"
        );
    }
    // Truncated or extended MAC.
    assert_eq!(
        Ticket::verify(&text[..text.len() - 2], SECRET),
        Err(TicketError::BadMac)
    );
    assert_eq!(
        Ticket::verify(&format!("{text}00"), SECRET),
        Err(TicketError::BadMac)
    );
    assert_eq!(
        Ticket::verify(&text[..text.len() - 1], SECRET),
        Err(TicketError::BadHex)
    );
    // No MAC at all.
    assert_eq!(
        Ticket::verify(&text[..dot], SECRET),
        Err(TicketError::BadMac)
    );
    assert_eq!(
        Ticket::verify(&text[..=dot], SECRET),
        Err(TicketError::BadMac)
    );
}

#[test]
fn wrong_secret_and_empty_secret() {
    let text = Ticket::new(Role::WorkerHeartbeat, 1).mint(SECRET).unwrap();
    assert_eq!(Ticket::verify(&text, b"another"), Err(TicketError::BadMac));
    assert_eq!(Ticket::verify(&text, b""), Err(TicketError::EmptySecret));
    assert_eq!(
        Ticket::new(Role::Queen, 1).mint(b""),
        Err(TicketError::EmptySecret)
    );
    assert_eq!(TicketError::BadMac.errno(), errno::EKEYREJECTED);
}

#[test]
fn prefix_and_hex() {
    let text = Ticket::new(Role::Queen, 1).mint(SECRET).unwrap();
    assert_eq!(
        Ticket::verify(&text.replacen("cohesix", "Cohesix", 1), SECRET),
        Err(TicketError::BadPrefix)
    );
    assert_eq!(Ticket::verify("", SECRET), Err(TicketError::BadPrefix));
    assert_eq!(Ticket::peek_role("ticket"), Err(TicketError::BadPrefix));
    assert_eq!(
        Ticket::verify(
            &text
                .to_uppercase()
                .replacen("COHESIX-TICKET-", "cohesix-ticket-", 1),
            SECRET
        ),
        Err(TicketError::BadHex)
    );
    assert_eq!(
        Ticket::verify("cohesix-ticket-0g.00", SECRET),
        Err(TicketError::BadHex)
    );
    assert_eq!(
        Ticket::verify("cohesix-ticket-0.00", SECRET),
        Err(TicketError::BadHex)
    );
    // Non-ASCII never panics on a char boundary.
    assert_eq!(
        Ticket::verify("cohesix-ticket-é.é", SECRET),
        Err(TicketError::BadHex)
    );
    assert_eq!(
        Ticket::peek_role("cohesix-ticket-éé"),
        Err(TicketError::BadHex)
    );
    assert_eq!(
        Ticket::peek_role("cohesix-ticket-01é"),
        Err(TicketError::BadHex)
    );
    assert_eq!(
        Ticket::peek_role("cohesix-ticket-01xé"),
        Err(TicketError::Truncated)
    );
    assert_eq!(
        Ticket::peek_role("cohesix-ticket-0é"),
        Err(TicketError::Truncated)
    );
    assert_eq!(
        Ticket::peek_role("cohesix-ticket-010"),
        Err(TicketError::Truncated)
    );
    assert_eq!(
        Ticket::peek_role("cohesix-ticket-0102.zz"),
        Ok(Role::WorkerGpu)
    );
    assert_eq!(
        Ticket::peek_role("cohesix-ticket-0205"),
        Err(TicketError::UnknownVersion { version: 2 })
    );
    assert_eq!(
        Ticket::peek_role("cohesix-ticket-0105"),
        Err(TicketError::UnknownRole { role: 5 })
    );
}

#[test]
fn truncated_payloads() {
    let payload = full_ticket(Role::WorkerLora).to_payload().unwrap();
    for cut in 0..payload.len() {
        let text = seal_raw(&payload[..cut], SECRET);
        let e = Ticket::verify(&text, SECRET).unwrap_err();
        assert_eq!(e, TicketError::Truncated, "cut {cut}");
        assert_eq!(
            Ticket::from_payload(&payload[..cut]),
            Err(TicketError::Truncated)
        );
    }
}

#[test]
fn trailing_bytes() {
    let mut payload = Ticket::new(Role::WorkerBus, 9).to_payload().unwrap();
    payload.push(0);
    assert_eq!(
        Ticket::verify(&seal_raw(&payload, SECRET), SECRET),
        Err(TicketError::TrailingBytes)
    );
}

#[test]
fn bad_fields() {
    let good = Ticket::new(Role::Queen, 9).to_payload().unwrap();
    let mut v = good.clone();
    v[0] = 2;
    assert_eq!(
        Ticket::from_payload(&v),
        Err(TicketError::UnknownVersion { version: 2 })
    );
    let mut r = good.clone();
    r[1] = 9;
    assert_eq!(
        Ticket::from_payload(&r),
        Err(TicketError::UnknownRole { role: 9 })
    );
    let mut f = good.clone();
    f[2] = 0x40;
    assert_eq!(
        Ticket::from_payload(&f),
        Err(TicketError::UnknownFlags { flags: 0x40 })
    );
    // Bad verb.
    let mut t = Ticket::new(Role::Queen, 9);
    t.scopes = vec![Scope {
        path: "/".into(),
        verb: Verb::Read,
        rate_per_s: 0,
    }];
    let mut p = t.to_payload().unwrap();
    let verb_at = p.len() - 5;
    p[verb_at] = 3;
    assert_eq!(
        Ticket::from_payload(&p),
        Err(TicketError::UnknownVerb { verb: 3 })
    );
    // Bad UTF-8 in the mount point.
    let mut u = good.clone();
    u.truncate(u.len() - 2);
    u.extend_from_slice(&[1, 0, 0xff]);
    assert_eq!(Ticket::from_payload(&u), Err(TicketError::BadUtf8));
    assert_eq!(
        Ticket::verify(&seal_raw(&u, SECRET), SECRET),
        Err(TicketError::BadUtf8)
    );
    // The scopes flag with a count of zero is accepted.
    let mut z = good.clone();
    z[2] |= FLAG_SCOPES;
    z.push(0);
    assert_eq!(Ticket::from_payload(&z).unwrap().scopes, vec![]);
}

#[test]
fn seventeen_scopes() {
    let mut t = Ticket::new(Role::Queen, 1);
    t.scopes = (0..17)
        .map(|i| Scope {
            path: format!("/s{i}"),
            verb: Verb::Read,
            rate_per_s: 1,
        })
        .collect();
    assert_eq!(
        t.mint(SECRET),
        Err(TicketError::TooManyScopes { count: 17 })
    );
    // Hand-built payload claiming 17 scopes, correctly MACed.
    t.scopes.truncate(16);
    let mut p = t.to_payload().unwrap();
    let count_at = 3 + 8 + 2 + 2;
    assert_eq!(p[count_at], 16);
    p[count_at] = 17;
    p.extend_from_slice(&[3, 0, b'/', b'x', b'y', 0, 1, 0, 0, 0]);
    assert_eq!(
        Ticket::verify(&seal_raw(&p, SECRET), SECRET),
        Err(TicketError::TooManyScopes { count: 17 })
    );
    // 16 short scopes still mint within 1024 characters.
    let mut ok = Ticket::new(Role::WorkerHeartbeat, 1);
    ok.scopes = (0..16)
        .map(|i| Scope {
            path: format!("/w/{i}"),
            verb: Verb::ReadWrite,
            rate_per_s: 10,
        })
        .collect();
    let text = ok.mint(SECRET).unwrap();
    assert_eq!(Ticket::verify(&text, SECRET).unwrap(), ok);
}

#[test]
fn too_long() {
    let mut t = Ticket::new(Role::Queen, 1);
    t.mount_point = "m".repeat(600);
    assert!(matches!(t.mint(SECRET), Err(TicketError::TooLong { .. })));
    // The longest mintable text is exactly at the limit.
    let fixed = 15 + 2 * 15 + 1 + 64; // prefix, queen payload with empty strings, '.', mac
    let room = (MAX_TICKET_TEXT - fixed) / 2;
    t.mount_point = "m".repeat(room);
    let text = t.mint(SECRET).unwrap();
    assert_eq!(text.len(), MAX_TICKET_TEXT);
    assert!(Ticket::verify(&text, SECRET).is_ok());
    // Longer text is refused before any decoding.
    let long = format!("{text}0");
    assert_eq!(
        Ticket::verify(&long, SECRET),
        Err(TicketError::TooLong {
            len: MAX_TICKET_TEXT + 1
        })
    );
    assert!(matches!(
        Ticket::peek_role(&"x".repeat(5000)),
        Err(TicketError::TooLong { .. })
    ));
    t.mount_point = "m".repeat(70_000);
    assert!(matches!(
        t.to_payload(),
        Err(TicketError::TooLong { len: 70_000 })
    ));
}

#[test]
fn expiry() {
    let t = Ticket::new(Role::WorkerHeartbeat, 10_000);
    assert_eq!(t.expires_at_ms(), Some(10_000 + HEARTBEAT_TTL_S * 1000));
    assert!(!t.expired(10_000));
    assert!(!t.expired(10_000 + 299_999));
    assert!(t.expired(10_000 + 300_000));
    assert!(t.expired(u64::MAX));
    let q = Ticket::new(Role::Queen, 10_000);
    assert!(!q.expired(u64::MAX));
    let mut huge = Ticket::new(Role::WorkerGpu, u64::MAX - 5);
    huge.ttl_s = Some(u64::MAX);
    assert_eq!(huge.expires_at_ms(), Some(u64::MAX));
    assert!(huge.expired(u64::MAX));
    assert!(!huge.expired(u64::MAX - 1));
}

#[test]
fn uname_and_verbs() {
    assert_eq!(split_uname("queen"), Some((Role::Queen, None)));
    assert_eq!(
        split_uname("worker-gpu:worker-3"),
        Some((Role::WorkerGpu, Some("worker-3")))
    );
    assert_eq!(split_uname("worker-gpu:"), None);
    assert_eq!(split_uname("worker-x:1"), None);
    assert_eq!(split_uname(""), None);
    for v in [Verb::Read, Verb::Write, Verb::ReadWrite] {
        assert_eq!(Verb::parse(v.as_str()), Some(v));
        assert_eq!(Verb::from_u8(v.as_u8()), Some(v));
    }
    assert!(Verb::ReadWrite.allows_read() && Verb::ReadWrite.allows_write());
    assert!(!Verb::Read.allows_write() && !Verb::Write.allows_read());
}

#[test]
fn errors_display() {
    assert!(
        TicketError::TooManyScopes { count: 17 }
            .to_string()
            .contains("17")
    );
    assert!(TicketError::BadMac.to_string().contains("MAC"));
}
