//! A whole NineDoor session under fuzzing: the input is cut into frames the
//! way the transport cuts a byte stream, and every frame goes through the
//! real session (version, attach, walks, opens, reads, writes to control
//! files, flushes, ...). The session must never panic, and it must answer
//! every frame it does not reject with a reply the codec can decode.
#![no_main]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use ninedoor::clock::ManualClock;
use ninedoor::config::HiveSpec;
use ninedoor::effects::RecordingEffects;
use ninedoor::hive::Hive;
use ninedoor::server::SessionFactory;
use ninedoor::session::Binding;
use ninedoor::transport::{ConnectionHandler, ReplySink};

struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn factory() -> &'static SessionFactory {
    static FACTORY: OnceLock<SessionFactory> = OnceLock::new();
    FACTORY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ninedoor-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fuzz state dir");
        let hive = Hive::new(
            HiveSpec::default(),
            &dir,
            Arc::new(ManualClock::new(1_700_000_000_000)),
            Arc::new(RecordingEffects::new()),
        )
        .expect("hive");
        hive.set_online().expect("online");
        SessionFactory::new(Arc::new(hive))
    })
}

fuzz_target!(|data: &[u8]| {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = ReplySink::new(Box::new(Captured(out.clone())));
    let mut session = factory().local_session(Binding::Open);
    let mut rest = data;
    while rest.len() >= 4 {
        let declared = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let size = declared.clamp(7, 1 << 16).min(rest.len());
        let (frame, tail) = rest.split_at(size);
        if frame.len() >= 7 {
            let mut owned = frame.to_vec();
            owned[..4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
            session.handle(&owned, &sink);
        }
        rest = tail;
        if sink.is_closed() {
            break;
        }
    }
    session.closed();
    // Every reply must decode.
    let replies = out.lock().map(|v| v.clone()).unwrap_or_default();
    let mut r = replies.as_slice();
    while r.len() >= 4 {
        let n = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize;
        assert!(n >= 7 && n <= r.len(), "torn reply");
        secure9p::decode_response(&r[..n], 1 << 16).expect("reply decodes");
        r = &r[n..];
    }
});
