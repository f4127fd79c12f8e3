//! Property-style robustness: every truncation, every bit flip and thousands
//! of pseudo-random inputs must decode or fail cleanly, never panic, and
//! whatever decodes must re-encode to the same value (and the same bytes).

mod common;

use common::*;
use secure9p::limits::*;
use secure9p::ticket::Ticket;
use secure9p::wire::*;

/// Decodes as a request and a response; checks the round-trip property.
fn exercise(frame: &[u8], msize: u32) -> (bool, bool) {
    let _ = frame_size(frame, msize);
    let req = match decode_request(frame, msize) {
        Ok((tag, req)) => {
            let again = enc_req(tag, &req);
            if !matches!(req, Request::Unsupported { .. }) {
                assert_eq!(again, frame, "canonical re-encoding of {}", req.name());
            }
            assert_eq!(decode_request(&again, MAX_MSIZE).unwrap(), (tag, req));
            true
        }
        Err(e) => {
            let _ = (e.errno(), e.tag(), e.to_string());
            false
        }
    };
    let resp = match decode_response(frame, msize) {
        Ok((tag, resp)) => {
            let again = enc_resp(tag, &resp);
            assert_eq!(again, frame, "canonical re-encoding of {}", resp.name());
            if let Response::Readdir { data } = &resp
                && let Ok(entries) = decode_dirents(data)
            {
                let mut packed = Vec::new();
                assert_eq!(
                    encode_dirents(&entries, u32::MAX, &mut packed),
                    entries.len()
                );
                assert_eq!(&packed, data);
            }
            true
        }
        Err(e) => {
            let _ = (e.errno(), e.tag(), e.to_string());
            false
        }
    };
    (req, resp)
}

fn fixed(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() >= 4 {
        let n = f.len() as u32;
        f[..4].copy_from_slice(&n.to_le_bytes());
    }
    f
}

/// Frames of every variant, with whether they are T-messages whose body the
/// decoder parses (not `Unsupported`) or R-messages.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Request,
    Unsupported,
    Response,
}

fn valid_frames() -> Vec<(Vec<u8>, Side)> {
    let mut v: Vec<(Vec<u8>, Side)> = all_requests()
        .iter()
        .map(|(t, r)| {
            let side = if matches!(r, Request::Unsupported { .. }) {
                Side::Unsupported
            } else {
                Side::Request
            };
            (enc_req(*t, r), side)
        })
        .collect();
    v.extend(
        all_responses()
            .iter()
            .map(|(t, r)| (enc_resp(*t, r), Side::Response)),
    );
    let mut d = Vec::new();
    encode_dirents(
        &[
            DirEntry {
                qid: Qid::default(),
                offset: 1,
                ty: DT_DIR,
                name: "proc".into(),
            },
            DirEntry {
                qid: Qid::default(),
                offset: 2,
                ty: DT_REG,
                name: "log".into(),
            },
        ],
        u32::MAX,
        &mut d,
    );
    v.push((enc_resp(1, &Response::Readdir { data: d }), Side::Response));
    v
}

#[test]
fn every_truncation_fails_cleanly() {
    let mut n = 0;
    for (frame, side) in valid_frames() {
        for cut in 0..frame.len() {
            // As received: the size field no longer matches.
            let (a, b) = exercise(&frame[..cut], MAX_MSIZE);
            assert!(!a && !b, "prefix {cut} of {frame:?} decoded");
            // With the size patched, so the body parser sees the cut: a
            // strictly shorter body never decodes on its own side.
            let f = fixed(frame[..cut].to_vec());
            let (a, b) = exercise(&f, MAX_MSIZE);
            match side {
                Side::Request => assert!(!a, "cut {cut} of {frame:?} decoded"),
                Side::Response => assert!(!b, "cut {cut} of {frame:?} decoded"),
                Side::Unsupported => assert_eq!(a, cut >= HEADER_LEN),
            }
            n += 2;
        }
    }
    assert!(n > 1000);
}

#[test]
fn every_bit_flip() {
    for (frame, _side) in valid_frames() {
        for i in 0..frame.len() {
            for bit in 0..8 {
                let mut f = frame.clone();
                f[i] ^= 1 << bit;
                exercise(&f, MAX_MSIZE);
                exercise(&f, 512);
                let _ = decode_dirents(&f);
            }
        }
    }
}

#[test]
fn pseudo_random_frames() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let types: Vec<u8> = (0..=255u8)
        .filter(|t| {
            msg::is_supported_request(*t)
                || msg::is_supported_request(t.wrapping_sub(1))
                || *t == msg::RLERROR
        })
        .collect();
    let mut decoded = 0;
    for round in 0..20_000 {
        let len = rng.below(300) as usize;
        let mut f = rng.bytes(len);
        if round % 2 == 0 && f.len() >= HEADER_LEN {
            // Plausible header so the body parsers get exercised.
            f[4] = types[rng.below(types.len() as u64) as usize];
            f = fixed(f);
        }
        let msize = [MIN_MSIZE, DEFAULT_MSIZE, MAX_MSIZE, u32::MAX, 0][round % 5];
        let (a, b) = exercise(&f, msize);
        decoded += usize::from(a) + usize::from(b);
        let _ = decode_dirents(&f);
    }
    assert!(decoded > 0, "some random frames decode (and round-trip)");
}

#[test]
fn pseudo_random_structured_bodies() {
    // Short random bodies behind every type with small lengths, so string
    // and count fields often land in range.
    let mut rng = XorShift(12345);
    let mut ok = 0;
    for ty in 0..=255u8 {
        for _ in 0..200 {
            let body_len = rng.below(40) as usize;
            let mut f = vec![0, 0, 0, 0, ty, rng.next() as u8, rng.next() as u8];
            for _ in 0..body_len {
                // Mostly small bytes: lengths and counts stay plausible.
                let b = if rng.below(4) == 0 {
                    rng.next() as u8
                } else {
                    rng.below(4) as u8
                };
                f.push(b);
            }
            let f = fixed(f);
            let (a, b) = exercise(&f, MAX_MSIZE);
            ok += usize::from(a) + usize::from(b);
        }
    }
    assert!(ok > 1000, "{ok}");
}

#[test]
fn pseudo_random_dirents_and_tickets() {
    let mut rng = XorShift(777);
    const SECRET: &[u8] = b"s";
    for round in 0..5_000 {
        let len = rng.below(200) as usize;
        let raw = rng.bytes(len);
        let _ = decode_dirents(&raw);
        if let Ok(t) = Ticket::from_payload(&raw) {
            assert_eq!(Ticket::from_payload(&t.to_payload().unwrap()).unwrap(), t);
        }
        // Ticket texts: random hex (mostly), random bytes (sometimes).
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let text = match round % 4 {
            0 => format!("cohesix-ticket-{hex}"),
            1 => format!("cohesix-ticket-{hex}.{}", "0".repeat(64)),
            2 => format!("cohesix-ticket-{}", String::from_utf8_lossy(&raw)),
            _ => String::from_utf8_lossy(&raw).into_owned(),
        };
        assert!(Ticket::verify(&text, SECRET).is_err());
        let _ = Ticket::peek_role(&text);
        // Payloads that start plausibly reach deeper parsing.
        let mut p = vec![1, (rng.below(6)) as u8, rng.below(64) as u8];
        p.extend_from_slice(&raw[..len.min(60)]);
        if let Ok(t) = Ticket::from_payload(&p) {
            assert!(t.to_payload().unwrap().len() <= p.len());
        }
    }
}
