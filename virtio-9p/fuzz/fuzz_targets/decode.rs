//! Arbitrary bytes into every Secure9P decoder. Nothing may panic, and
//! whatever decodes must re-encode canonically: encode(decode(x)) == x for
//! frames (except `Unsupported`, whose ignored body is dropped) and dirents,
//! and decode(encode(decode(x))) == decode(x) for everything.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure9p::limits::{DEFAULT_MSIZE, MAX_MSIZE, MIN_MSIZE};
use secure9p::ticket::Ticket;
use secure9p::wire::{
    Request, Response, decode_dirents, decode_request, decode_response, encode_dirents,
    encode_request, encode_response, frame_size,
};

fn frames(frame: &[u8], msize: u32) {
    if let Ok(Some(n)) = frame_size(frame, msize) {
        assert!((7..=msize.min(MAX_MSIZE) as usize).contains(&n));
    }
    match decode_request(frame, msize) {
        Ok((tag, req)) => {
            assert!(frame.len() <= msize.min(MAX_MSIZE) as usize);
            let mut out = Vec::new();
            encode_request(tag, &req, &mut out).expect("decoded request re-encodes");
            if !matches!(req, Request::Unsupported { .. }) {
                assert_eq!(out, frame, "canonical {}", req.name());
            }
            let again = decode_request(&out, MAX_MSIZE).expect("re-encoded request decodes");
            assert_eq!(again, (tag, req));
        }
        Err(e) => {
            let _ = (e.errno(), e.tag(), e.kind(), e.to_string());
        }
    }
    match decode_response(frame, msize) {
        Ok((tag, resp)) => {
            let mut out = Vec::new();
            encode_response(tag, &resp, &mut out).expect("decoded response re-encodes");
            assert_eq!(out, frame, "canonical {}", resp.name());
            let again = decode_response(&out, MAX_MSIZE).expect("re-encoded response decodes");
            assert_eq!(again, (tag, resp.clone()));
            if let Response::Readdir { data } = &resp {
                dirents(data);
            }
        }
        Err(e) => {
            let _ = (e.errno(), e.tag(), e.kind(), e.to_string());
        }
    }
}

fn dirents(data: &[u8]) {
    if let Ok(entries) = decode_dirents(data) {
        let mut out = Vec::new();
        assert_eq!(encode_dirents(&entries, u32::MAX, &mut out), entries.len());
        assert_eq!(out, data);
        // Packing under a smaller budget never splits an entry.
        let budget = (data.len() / 2) as u32;
        let mut half = Vec::new();
        let n = encode_dirents(&entries, budget, &mut half);
        assert!(half.len() <= budget as usize);
        assert_eq!(decode_dirents(&half).expect("packed dirents decode").len(), n);
    }
}

fn tickets(data: &[u8]) {
    if let Ok(t) = Ticket::from_payload(data) {
        let p = t.to_payload().expect("decoded ticket re-encodes");
        assert_eq!(Ticket::from_payload(&p).expect("re-encoded ticket decodes"), t);
        if let Ok(text) = t.mint(b"fuzz-secret") {
            assert_eq!(Ticket::verify(&text, b"fuzz-secret").expect("minted ticket verifies"), t);
            assert_eq!(Ticket::peek_role(&text).expect("minted role"), t.role);
        }
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = Ticket::peek_role(text);
        if let Ok(t) = Ticket::verify(text, b"fuzz-secret") {
            // Only reachable by forging a BLAKE3 MAC.
            panic!("forged ticket verified: {t:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    for msize in [MIN_MSIZE, DEFAULT_MSIZE, MAX_MSIZE, u32::MAX] {
        frames(data, msize);
    }
    // The same bytes with the size field made consistent, so the body
    // parsers see every input rather than only those with a matching size.
    if data.len() >= 7 {
        let mut fixed = data.to_vec();
        let n = u32::try_from(fixed.len()).unwrap_or(u32::MAX);
        fixed[..4].copy_from_slice(&n.to_le_bytes());
        frames(&fixed, MAX_MSIZE);
    }
    dirents(data);
    tickets(data);
});
