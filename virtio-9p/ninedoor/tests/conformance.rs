//! 9P2000.L conformance over the wire: every rule of `ninep.md` against a
//! real server, over the Unix socket and over loopback TCP.
//!
//! Sections: version, auth/attach, walk, open and I/O, readdir, attributes,
//! clunk/remove, flush (and the EOF-then-block rule of append-only files),
//! robustness (bad frames, limits).

#[macro_use]
mod support;

use secure9p::Request;
use secure9p::Response;
use secure9p::limits::{MAX_MSIZE, NOFID, NONUNAME, NOTAG};
use secure9p::wire::{
    Attr, GETATTR_ALL, GETATTR_ATIME, GETATTR_BLOCKS, GETATTR_BTIME, GETATTR_CTIME,
    GETATTR_DATA_VERSION, GETATTR_GEN, GETATTR_GID, GETATTR_MODE, GETATTR_MTIME, GETATTR_NLINK,
    GETATTR_RDEV, GETATTR_SIZE, GETATTR_UID, O_APPEND, O_RDONLY, O_WRONLY, QTAPPEND, QTDIR,
    SETATTR_ATIME, SETATTR_MODE, SETATTR_MTIME, SETATTR_SIZE, SetAttr, decode_dirents, msg,
};
use support::*;

both_transports!(
    // Version
    version_echoes_9p2000l_and_negotiates_msize,
    version_unknown_is_answered_not_refused,
    version_refuses_zero_and_tiny_msize,
    nothing_but_version_is_accepted_first,
    new_version_drops_all_fids,
    new_version_aborts_blocked_reads,
    // Auth / attach
    auth_is_enoent,
    attach_afid_nofid_and_fid_in_use,
    queen_needs_a_ticket_only_over_tcp,
    // Walk
    walk_without_names_clones,
    walk_of_seventeen_names_is_an_error_and_the_connection_lives,
    walk_first_name_missing_is_an_error,
    walk_later_name_missing_returns_partial_qids_without_newfid,
    walk_to_a_fid_in_use_is_an_error,
    walk_dotdot_at_root_stays_at_root,
    walk_refuses_empty_dot_and_slash_names,
    walk_from_a_file_with_names_is_enotdir,
    walk_from_an_open_fid_to_a_new_fid_works,
    // Open and I/O
    opening_twice_is_an_error,
    io_on_unopened_fids_fails,
    replies_never_exceed_msize,
    iounit_is_msize_minus_24,
    writes_larger_than_iounit_fail_and_the_session_lives,
    append_only_files_carry_qtappend_and_write_only_at_the_end,
    failing_control_line_returns_its_errno_and_stops_later_lines,
    // Readdir
    readdir_split_reads_return_each_entry_once,
    readdir_count_smaller_than_one_entry_returns_nothing,
    readdir_bogus_cookies_are_empty_or_einval,
    readdir_of_a_changing_directory_stays_consistent,
    // Attributes
    getattr_fills_only_valid_bits_and_qid_version_is_zero,
    setattr_on_control_files_is_refused,
    statfs_is_sane,
    // Clunk / remove
    clunk_frees_the_fid_and_a_second_clunk_is_ebadf,
    remove_clunks_even_when_it_fails,
    // Flush and blocking reads
    flush_of_an_unknown_tag_is_rflush,
    eof_then_block_and_flush_of_a_blocked_read,
    the_rest_of_a_short_read_is_not_yet_the_clients_eof,
    blocked_read_is_answered_when_the_file_grows,
    tag_is_reusable_as_soon_as_a_deferred_reply_arrives,
    blocked_reads_per_session_are_bounded,
    blocked_read_of_a_killed_worker_is_answered,
    // Robustness
    unknown_message_types_get_eopnotsupp,
    truncated_strings_get_rlerror_and_the_connection_lives,
    size_below_seven_closes_only_that_connection,
    declared_size_above_msize_is_refused,
    garbage_closes_the_connection_with_an_audit_line,
    fid_limit_per_session_is_an_error_not_a_crash,
);

// ---------------------------------------------------------------------------
// Version
// ---------------------------------------------------------------------------

fn version_echoes_9p2000l_and_negotiates_msize(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw(kind);
    for (asked, got) in [
        (8192, 8192),
        (65536, 65536),
        (1 << 20, MAX_MSIZE),
        (u32::MAX, MAX_MSIZE),
        (512, 512),
        (4000, 4000),
    ] {
        r.send(
            NOTAG,
            &Request::Version {
                msize: asked,
                version: "9P2000.L".into(),
            },
        );
        let (tag, resp) = r.recv();
        assert_eq!(tag, NOTAG, "Rversion travels on NOTAG");
        assert_eq!(
            resp,
            Response::Version {
                msize: got,
                version: "9P2000.L".into()
            },
            "Tversion msize {asked}"
        );
    }
    // The negotiated msize is in force: an attach works afterwards.
    assert!(matches!(
        r.attach(1, 0, "queen", &h.queen_aname(kind)),
        Response::Attach { .. }
    ));
}

fn version_unknown_is_answered_not_refused(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw(kind);
    for v in ["9P2000", "9P2000.u", "9P3000.L", "", "9p2000.l"] {
        match r.version(8192, v) {
            Response::Version { version, .. } => {
                assert_eq!(version, "unknown", "Tversion {v:?}")
            }
            other => panic!("Tversion {v:?} must get Rversion \"unknown\", got {other:?}"),
        }
        // Not versioned: nothing else is accepted yet.
        assert_any_lerror(&r.attach(1, 0, "queen", &h.queen_aname(kind)));
    }
    // The connection lives and can still negotiate.
    assert_eq!(r.version_ok(8192), 8192);
    assert!(matches!(
        r.attach(1, 0, "queen", &h.queen_aname(kind)),
        Response::Attach { .. }
    ));
}

fn version_refuses_zero_and_tiny_msize(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw(kind);
    for tiny in [0u32, 1, 7, 24, 100, 511] {
        assert_any_lerror(&r.version(tiny, "9P2000.L"));
        // Refused means not versioned.
        assert_any_lerror(&r.attach(1, 0, "queen", &h.queen_aname(kind)));
    }
    // The connection lives.
    assert_eq!(r.version_ok(512), 512);
}

fn nothing_but_version_is_accepted_first(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw(kind);
    let before: Vec<Request> = vec![
        Request::Attach {
            fid: 0,
            afid: NOFID,
            uname: "queen".into(),
            aname: h.queen_aname(kind),
            n_uname: NONUNAME,
        },
        Request::Auth {
            afid: 0,
            uname: "queen".into(),
            aname: String::new(),
            n_uname: NONUNAME,
        },
        Request::Walk {
            fid: 0,
            newfid: 1,
            names: vec![],
        },
        Request::Clunk { fid: 0 },
        Request::Flush { oldtag: 3 },
        Request::Statfs { fid: 0 },
        Request::Unsupported { ty: 200 },
    ];
    for (i, req) in before.iter().enumerate() {
        let resp = r.call(10 + i as u16, req);
        assert_lerror(&resp, e::EPROTO);
    }
    r.version_ok(8192);
    assert!(matches!(
        r.attach(1, 0, "queen", &h.queen_aname(kind)),
        Response::Attach { .. }
    ));
}

fn new_version_drops_all_fids(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["proc", "boot"]);
    r.lopen_ok(1, O_RDONLY);
    r.walk_ok(0, 2, &["proc"]);
    assert_eq!(r.version_ok(8192), 8192);
    for fid in [0, 1, 2] {
        assert_lerror(&r.clunk(1, fid), e::EBADF);
    }
    assert_any_lerror(&r.walk(1, 0, 3, &[]));
    // A fresh attach on the same fid number works.
    assert!(matches!(
        r.attach(1, 0, "queen", &h.queen_aname(kind)),
        Response::Attach { .. }
    ));
    r.walk_ok(0, 1, &["proc"]);
}

fn new_version_aborts_blocked_reads(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["log", "queen.log"]);
    r.lopen_ok(1, O_RDONLY);
    let (_, end) = r.read_to_eof(1, 0);
    // Blocks: the same offset again on the same fid.
    r.send(
        7,
        &Request::Read {
            fid: 1,
            offset: end,
            count: 100,
        },
    );
    r.send(
        NOTAG,
        &Request::Version {
            msize: 8192,
            version: "9P2000.L".into(),
        },
    );
    // The read may have been answered before the Tversion (if the log grew);
    // after the Rversion nothing more for tag 7 may come.
    let (mut tag, mut resp) = r.recv();
    if tag == 7 {
        assert!(matches!(resp, Response::Read { .. }), "{resp:?}");
        (tag, resp) = r.recv();
    }
    assert_eq!(tag, NOTAG);
    assert!(matches!(resp, Response::Version { .. }), "{resp:?}");
    r.send(
        7,
        &Request::Attach {
            fid: 0,
            afid: NOFID,
            uname: "queen".into(),
            aname: h.queen_aname(kind),
            n_uname: NONUNAME,
        },
    );
    let (tag, resp) = r.recv();
    assert_eq!(tag, 7, "no stale reply after Tversion: {resp:?}");
    assert!(matches!(resp, Response::Attach { .. }), "{resp:?}");
}

// ---------------------------------------------------------------------------
// Auth / attach
// ---------------------------------------------------------------------------

fn auth_is_enoent(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw(kind);
    r.version_ok(8192);
    for uname in ["queen", "worker-heartbeat:worker-1", "nobody"] {
        let resp = r.call(
            5,
            &Request::Auth {
                afid: 9,
                uname: uname.into(),
                aname: String::new(),
                n_uname: NONUNAME,
            },
        );
        assert_lerror(&resp, e::ENOENT);
    }
    // Tauth created nothing: afid 9 is not a fid.
    assert_lerror(&r.clunk(1, 9), e::EBADF);
}

fn attach_afid_nofid_and_fid_in_use(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw(kind);
    r.version_ok(8192);
    let aname = h.queen_aname(kind);
    // An afid other than NOFID: there is no auth fid.
    let resp = r.call(
        2,
        &Request::Attach {
            fid: 0,
            afid: 5,
            uname: "queen".into(),
            aname: aname.clone(),
            n_uname: NONUNAME,
        },
    );
    assert_any_lerror(&resp);
    let root = match r.attach(1, 0, "queen", &aname) {
        Response::Attach { qid } => qid,
        other => panic!("{other:?}"),
    };
    assert_ne!(root.ty & QTDIR, 0, "the root is a directory");
    // The fid is in use now.
    assert_any_lerror(&r.attach(1, 0, "queen", &aname));
    // ... and still the root.
    assert_eq!(r.qid_of(0), root);
    // Another fid attaches fine.
    assert!(matches!(
        r.attach(1, 1, "queen", &aname),
        Response::Attach { .. }
    ));
    // A walked fid in use is refused as an attach fid too.
    r.walk_ok(0, 2, &["proc"]);
    assert_any_lerror(&r.attach(1, 2, "queen", &aname));
}

fn queen_needs_a_ticket_only_over_tcp(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw(kind);
    r.version_ok(8192);
    let no_ticket = r.attach(1, 0, "queen", "");
    match kind {
        Kind::Unix => assert!(
            matches!(no_ticket, Response::Attach { .. }),
            "{no_ticket:?}"
        ),
        Kind::Tcp => assert_lerror(&no_ticket, e::EACCES),
    }
    // A queen ticket works on both.
    assert!(matches!(
        r.attach(1, 1, "queen", &h.queen_ticket()),
        Response::Attach { .. }
    ));
    // A worker always needs one, even on the Unix socket.
    let mut c = h.client(kind);
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    assert_eq!(
        errno(c.attach(&format!("worker-heartbeat:{w}"), "")),
        e::EACCES
    );
}

// ---------------------------------------------------------------------------
// Walk
// ---------------------------------------------------------------------------

fn walk_without_names_clones(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    let root = r.qid_of(0);
    assert_eq!(r.walk(1, 0, 1, &[]), Response::Walk { qids: vec![] });
    assert_eq!(r.qid_of(1), root);
    // The clone is independent: walking it on does not move fid 0.
    r.walk_ok(1, 1, &["proc"]);
    assert_eq!(r.qid_of(0), root);
    assert_ne!(r.qid_of(1), root);
    // A clone of a non-root fid.
    assert_eq!(r.walk(1, 1, 2, &[]), Response::Walk { qids: vec![] });
    assert_eq!(r.qid_of(2), r.qid_of(1));
    assert!(matches!(r.clunk(1, 1), Response::Clunk));
    assert_eq!(r.qid_of(0), root);
}

fn walk_of_seventeen_names_is_an_error_and_the_connection_lives(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    // 16 names are fine (`..` at the root stays at the root).
    let qids = r.walk_ok(0, 1, &[".."; 16]);
    assert_eq!(qids.len(), 16);
    // 17 cannot be encoded by the codec: build the frame by hand.
    let mut f = FrameBuf::new(msg::TWALK, 42).u32(0).u32(2).u16(17);
    for _ in 0..17 {
        f = f.str("..");
    }
    let resp = r.call_bytes(42, &f.finish());
    assert_any_lerror(&resp);
    assert_lerror(&r.clunk(1, 2), e::EBADF);
    // The connection lives.
    r.walk_ok(0, 3, &["proc", "boot"]);
}

fn walk_first_name_missing_is_an_error(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    assert_lerror(&r.walk(1, 0, 1, &["no-such-name"]), e::ENOENT);
    assert_lerror(&r.clunk(1, 1), e::EBADF);
    assert_lerror(&r.walk(1, 0, 1, &["no-such-name", "proc"]), e::ENOENT);
    assert_lerror(&r.clunk(1, 1), e::EBADF);
}

fn walk_later_name_missing_returns_partial_qids_without_newfid(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    let proc_qid = r.walk_ok(0, 9, &["proc"])[0];
    match r.walk(1, 0, 1, &["proc", "nope"]) {
        Response::Walk { qids } => assert_eq!(qids, vec![proc_qid]),
        other => panic!("expected a partial Rwalk, got {other:?}"),
    }
    assert_lerror(&r.clunk(1, 1), e::EBADF);
    match r.walk(1, 0, 1, &["proc", "lifecycle", "nope", "deeper"]) {
        Response::Walk { qids } => {
            assert_eq!(qids.len(), 2);
            assert_eq!(qids[0], proc_qid);
            assert_ne!(qids[1].ty & QTDIR, 0);
        }
        other => panic!("expected a partial Rwalk, got {other:?}"),
    }
    assert_lerror(&r.clunk(1, 1), e::EBADF);
    // newfid == fid: a partial walk leaves the fid where it was.
    let root = r.qid_of(0);
    match r.walk(1, 0, 0, &["proc", "nope"]) {
        Response::Walk { qids } => assert_eq!(qids.len(), 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.qid_of(0), root);
}

fn walk_to_a_fid_in_use_is_an_error(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    let root = r.qid_of(0);
    r.walk_ok(0, 1, &[]);
    assert_any_lerror(&r.walk(1, 0, 1, &["proc"]));
    // fid 1 is unchanged.
    assert_eq!(r.qid_of(1), root);
    r.walk_ok(0, 2, &["proc"]);
    assert_any_lerror(&r.walk(1, 0, 2, &[]));
    assert_ne!(r.qid_of(2), root);
    // newfid == fid is not "in use".
    r.walk_ok(2, 2, &["boot"]);
}

fn walk_dotdot_at_root_stays_at_root(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    let root = r.qid_of(0);
    assert_eq!(r.walk_ok(0, 1, &[".."]), vec![root]);
    assert_eq!(r.qid_of(1), root);
    let proc_qid = r.walk_ok(0, 9, &["proc"])[0];
    let q = r.walk_ok(0, 2, &["..", "..", "proc"]);
    assert_eq!(q, vec![root, root, proc_qid]);
    let q = r.walk_ok(0, 3, &["proc", ".."]);
    assert_eq!(q, vec![proc_qid, root]);
    let q = r.walk_ok(0, 4, &["proc", "lifecycle", "..", ".."]);
    assert_eq!(q[2], proc_qid);
    assert_eq!(q[3], root);
}

fn walk_refuses_empty_dot_and_slash_names(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    for names in [
        vec![""],
        vec!["."],
        vec!["proc/boot"],
        vec!["/"],
        vec!["/proc"],
        vec!["proc", ""],
        vec!["proc", "."],
        vec!["proc", "lifecycle/state"],
    ] {
        let resp = r.walk(1, 0, 1, &names);
        // Refused outright: never a partial walk that "succeeds" through
        // a bad name, and never a newfid.
        assert_any_lerror(&resp);
        assert_lerror(&r.clunk(1, 1), e::EBADF);
    }
    r.walk_ok(0, 1, &["proc"]);
}

fn walk_from_a_file_with_names_is_enotdir(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["proc", "boot"]);
    assert_lerror(&r.walk(1, 1, 2, &["x"]), e::ENOTDIR);
    assert_lerror(&r.clunk(1, 2), e::EBADF);
    // `..` is a name too: a walk with names must start at a directory
    // (walk(5): "fid must represent a directory unless nwname is zero").
    let resp = r.walk(1, 1, 2, &[".."]);
    assert_lerror(&resp, e::ENOTDIR);
    assert_lerror(&r.clunk(1, 2), e::EBADF);
    // Zero names from a file is a clone and is fine.
    r.walk_ok(1, 3, &[]);
}

fn walk_from_an_open_fid_to_a_new_fid_works(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["proc"]);
    r.lopen_ok(1, O_RDONLY);
    r.walk_ok(1, 2, &["boot"]);
    r.lopen_ok(2, O_RDONLY);
    let (text, _) = r.read_to_eof(2, 0);
    assert!(!text.is_empty());
    // A clone of an open file is not open.
    r.walk_ok(2, 3, &[]);
    assert_lerror(&r.read(1, 3, 0, 10), e::EBADF);
    r.lopen_ok(3, O_RDONLY);
    assert!(!r.read_ok(3, 0, 10).is_empty());
    // The open directory still reads.
    assert!(!r.readdir_ok(1, 0, 4096).is_empty());
}

// ---------------------------------------------------------------------------
// Open and I/O
// ---------------------------------------------------------------------------

fn opening_twice_is_an_error(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["proc", "boot"]);
    r.lopen_ok(1, O_RDONLY);
    assert_any_lerror(&r.lopen(1, 1, O_RDONLY));
    // Still usable as it was opened.
    assert!(!r.read_ok(1, 0, 64).is_empty());
    r.walk_ok(0, 2, &["proc"]);
    r.lopen_ok(2, O_RDONLY);
    assert_any_lerror(&r.lopen(1, 2, O_RDONLY));
}

fn io_on_unopened_fids_fails(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["proc", "boot"]);
    assert_any_lerror(&r.read(1, 1, 0, 64));
    r.walk_ok(0, 2, &["worker", &w, "telemetry"]);
    assert_any_lerror(&r.write(1, 2, u64::MAX, b"x\n"));
    assert_any_lerror(&r.read(1, 2, 0, 64));
    r.walk_ok(0, 3, &["proc"]);
    assert_any_lerror(&r.readdir(1, 3, 0, 4096));
    assert_any_lerror(&r.readdir(1, 0, 0, 4096));
    // Opened for the other direction.
    r.lopen_ok(2, O_RDONLY);
    assert_any_lerror(&r.write(1, 2, u64::MAX, b"x\n"));
    r.walk_ok(0, 4, &["worker", &w, "telemetry"]);
    r.lopen_ok(4, O_WRONLY);
    assert_any_lerror(&r.read(1, 4, 0, 64));
    // Readdir on an open file, read on an open directory.
    r.lopen_ok(1, O_RDONLY);
    assert_any_lerror(&r.readdir(1, 1, 0, 4096));
    r.lopen_ok(3, O_RDONLY);
    assert_any_lerror(&r.read(1, 3, 0, 4096));
    // Nothing was written.
    assert_eq!(r.read_ok(2, 0, 64), Vec::<u8>::new());
}

/// Makes `/log/queen.log` longer than `min` bytes with rejected control
/// lines written over the wire (each one is audited).
fn grow_queen_log(h: &Harness, kind: Kind, min: u64) {
    let mut r = h.raw_queen(kind, MAX_MSIZE);
    r.walk_ok(0, 1, &["queen", "ctl"]);
    r.lopen_ok(1, O_WRONLY);
    r.walk_ok(0, 2, &["log", "queen.log"]);
    let line = format!("{{\"nonsense\":\"{}\"}}\n", "z".repeat(150));
    loop {
        let size = match r.getattr(1, 2) {
            Response::Getattr(a) => a.size,
            other => panic!("{other:?}"),
        };
        if size > min {
            return;
        }
        for _ in 0..50 {
            assert_lerror(&r.write(1, 1, 0, line.as_bytes()), e::EINVAL);
        }
    }
}

fn replies_never_exceed_msize(kind: Kind) {
    let h = Harness::start();
    grow_queen_log(&h, kind, u64::from(MAX_MSIZE) + 8192);
    for msize in [512u32, 4096, 8192, MAX_MSIZE] {
        let mut r = h.raw_queen(kind, msize);
        r.walk_ok(0, 1, &["log", "queen.log"]);
        r.lopen_ok(1, O_RDONLY);
        for count in [1u32 << 30, u32::MAX, msize, msize - 23] {
            r.send(
                3,
                &Request::Read {
                    fid: 1,
                    offset: 0,
                    count,
                },
            );
            let frame = r.recv_frame().expect("an Rread");
            assert!(
                frame.len() <= msize as usize,
                "Rread of {} bytes exceeds msize {msize} (count {count})",
                frame.len()
            );
            assert_eq!(frame[4], msg::RREAD, "an Rread");
            let declared = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
            assert_eq!(declared, frame.len());
            // The log is bigger than msize: the reply is not empty.
            assert!(frame.len() > 11);
        }
        // Same for directories.
        r.walk_ok(0, 2, &["proc"]);
        r.lopen_ok(2, O_RDONLY);
        r.send(
            4,
            &Request::Readdir {
                fid: 2,
                offset: 0,
                count: 1 << 30,
            },
        );
        let frame = r.recv_frame().expect("an Rreaddir");
        assert!(frame.len() <= msize as usize);
        assert_eq!(frame[4], msg::RREADDIR);
    }
}

fn iounit_is_msize_minus_24(kind: Kind) {
    let h = Harness::start();
    for msize in [512u32, 1000, 8192, MAX_MSIZE] {
        let mut r = h.raw_queen(kind, msize);
        r.walk_ok(0, 1, &["proc", "boot"]);
        assert_eq!(r.lopen_ok(1, O_RDONLY).1, msize - 24, "msize {msize}");
        r.walk_ok(0, 2, &["proc"]);
        assert_eq!(r.lopen_ok(2, O_RDONLY).1, msize - 24, "msize {msize}");
    }
}

fn writes_larger_than_iounit_fail_and_the_session_lives(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let msize = 1024;
    let mut r = h.raw_queen(kind, msize);
    r.walk_ok(0, 1, &["worker", &w, "telemetry"]);
    r.lopen_ok(1, O_WRONLY);
    // A Twrite frame of exactly msize carries msize - 23 bytes: one more
    // than the iounit.
    let data = vec![b'x'; (msize - 23) as usize];
    assert_lerror(&r.write(1, 1, u64::MAX, &data), e::EMSGSIZE);
    // The session lives, and an iounit-sized write goes through.
    let data = vec![b'y'; (msize - 24) as usize];
    assert_eq!(
        r.write(1, 1, u64::MAX, &data),
        Response::Write { count: msize - 24 }
    );
}

fn append_only_files_carry_qtappend_and_write_only_at_the_end(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let mut r = h.raw_queen(kind, 8192);
    // Qids: walk, lopen and getattr agree.
    for (path, append) in [
        (vec!["worker", w.as_str(), "telemetry"], true),
        (vec!["log", "queen.log"], true),
        (vec!["gpu", "gpu0", "lease"], true),
        (vec!["gpu", "gpu0", "job"], true),
        (vec!["gpu", "models", "active"], true),
        (vec!["proc", "boot"], false),
        (vec!["queen", "ctl"], false),
    ] {
        let q = *r.walk_ok(0, 1, &path).last().unwrap();
        assert_eq!(q.ty & QTAPPEND != 0, append, "{path:?}: {q:?}");
        assert_eq!(q.version, 0);
        assert_eq!(r.qid_of(1), q);
        if path[0] != "queen" {
            assert_eq!(r.lopen_ok(1, O_RDONLY).0, q);
        }
        assert!(matches!(r.clunk(1, 1), Response::Clunk));
    }
    // Writes: only at the end (or u64::MAX).
    r.walk_ok(0, 2, &["worker", &w, "telemetry"]);
    r.lopen_ok(2, O_WRONLY);
    assert_eq!(r.write(1, 2, 0, b"a\n"), Response::Write { count: 2 });
    for off in [0u64, 1, 3, 100, u64::MAX - 1] {
        assert_lerror(&r.write(1, 2, off, b"no\n"), e::ESPIPE);
    }
    assert_eq!(r.write(1, 2, 2, b"b\n"), Response::Write { count: 2 });
    assert_eq!(
        r.write(1, 2, u64::MAX, b"c\n"),
        Response::Write { count: 2 }
    );
    // Opened O_APPEND: every write lands at the end.
    r.walk_ok(0, 3, &["worker", &w, "telemetry"]);
    r.lopen_ok(3, O_WRONLY | O_APPEND);
    assert_eq!(r.write(1, 3, 0, b"d\n"), Response::Write { count: 2 });
    r.walk_ok(0, 4, &["worker", &w, "telemetry"]);
    r.lopen_ok(4, O_RDONLY);
    assert_eq!(r.read_to_eof(4, 0).0, b"a\nb\nc\nd\n");
    match r.getattr(1, 4) {
        Response::Getattr(a) => assert_eq!(a.size, 8, "size is the end offset"),
        other => panic!("{other:?}"),
    }
}

fn failing_control_line_returns_its_errno_and_stops_later_lines(kind: Kind) {
    let h = Harness::start();
    let (mut c, root) = h.queen(kind);
    let before = h.worker_ids().len();
    let three = concat!(
        "{\"spawn\":\"heartbeat\"}\n",
        "{\"kill\":\"worker-999\"}\n",
        "{\"spawn\":\"heartbeat\"}\n",
    );
    let err = errno(write_file(&mut c, root, "/queen/ctl", 0, three.as_bytes()));
    assert_eq!(err, e::ENOENT, "the failing line's errno");
    // Line 1 ran, line 3 did not.
    assert_eq!(h.worker_ids().len(), before + 1);
    // A parse error is EINVAL, and nothing after it runs either.
    let two = "{\"spawn\":\"heartbeat\",\"bogus\":1}\n{\"spawn\":\"heartbeat\"}\n";
    assert_eq!(
        errno(write_file(&mut c, root, "/queen/ctl", 0, two.as_bytes())),
        e::EINVAL
    );
    assert_eq!(h.worker_ids().len(), before + 1);
    // GPU control file: an unknown verb.
    assert_eq!(
        errno(write_file(
            &mut c,
            root,
            "/gpu/gpu0/ctl",
            0,
            b"GRAB worker-1\n"
        )),
        e::EINVAL
    );
    // Lifecycle: drain from ONLINE is not a transition.
    assert_eq!(
        errno(write_file(
            &mut c,
            root,
            "/queen/lifecycle/ctl",
            0,
            b"drain\n"
        )),
        e::EINVAL
    );
    let log = read_text(&mut c, root, "/log/queen.log").unwrap();
    assert!(log.contains("queen ctl line 2 rejected"), "{log}");
}

// ---------------------------------------------------------------------------
// Readdir
// ---------------------------------------------------------------------------

/// All entries of open directory `fid`, read `count` bytes at a time.
fn readdir_in_pieces(r: &mut Raw, fid: u32, count: u32) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for _ in 0..10_000 {
        let batch = r.readdir_ok(fid, offset, count);
        let Some(last) = batch.last() else {
            return out;
        };
        offset = last.offset;
        out.extend(batch.into_iter().map(|e| (e.offset, e.name)));
    }
    panic!("readdir never ended (count {count})");
}

fn readdir_split_reads_return_each_entry_once(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let cmds = "{\"spawn\":\"heartbeat\"}\n".repeat(14);
    assert_eq!(h.spawn_via(&mut q, root, &cmds).len(), 14);
    let mut r = h.raw_queen(kind, 8192);
    for path in [vec![], vec!["worker"], vec!["proc"], vec!["gpu"]] {
        r.walk_ok(0, 1, &path);
        r.lopen_ok(1, O_RDONLY);
        let full = readdir_in_pieces(&mut r, 1, 8192);
        let names: Vec<&str> = full.iter().map(|(_, n)| n.as_str()).collect();
        assert!(names.contains(&".") && names.contains(&".."), "{names:?}");
        let mut dedup = names.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(
            dedup.len(),
            names.len(),
            "duplicates in {path:?}: {names:?}"
        );
        if path == ["worker"] {
            assert_eq!(names.len(), 16, "{names:?}");
        }
        for count in [128, 256, 512] {
            let split = readdir_in_pieces(&mut r, 1, count);
            assert_eq!(split, full, "{path:?} read {count} bytes at a time");
        }
        assert!(matches!(r.clunk(1, 1), Response::Clunk));
    }
}

fn readdir_count_smaller_than_one_entry_returns_nothing(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &[]);
    r.lopen_ok(1, O_RDONLY);
    // "." takes qid 13 + offset 8 + type 1 + name 2+1 = 25 bytes.
    for count in [0u32, 1, 10, 24] {
        match r.readdir(1, 1, 0, count) {
            Response::Readdir { data } => assert!(data.is_empty(), "count {count}: {data:?}"),
            other => panic!("count {count}: {other:?}"),
        }
    }
    let one = r.readdir_ok(1, 0, 25);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name, ".");
    // Nothing was consumed by the short reads: a full read still starts at ".".
    assert_eq!(r.readdir_ok(1, 0, 8192)[0].name, ".");
}

fn readdir_bogus_cookies_are_empty_or_einval(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["proc"]);
    r.lopen_ok(1, O_RDONLY);
    for cookie in [u64::MAX, u64::MAX - 1, 1 << 40, 1 << 63, 123_456_789] {
        match r.readdir(1, 1, cookie, 8192) {
            Response::Readdir { data } => {
                assert!(
                    data.is_empty(),
                    "cookie {cookie}: {:?}",
                    decode_dirents(&data)
                );
            }
            Response::Lerror { ecode } => assert_eq!(ecode, e::EINVAL, "cookie {cookie}"),
            other => panic!("cookie {cookie}: {other:?}"),
        }
    }
    // Following cookies from any starting point ends.
    for start in 0..40u64 {
        let mut offset = start;
        let mut n = 0;
        loop {
            let batch = match r.readdir(1, 1, offset, 64) {
                Response::Readdir { data } => decode_dirents(&data).unwrap(),
                Response::Lerror { ecode } => {
                    assert_eq!(ecode, e::EINVAL);
                    break;
                }
                other => panic!("{other:?}"),
            };
            let Some(last) = batch.last() else { break };
            assert!(last.offset > offset, "cookies must move forward");
            offset = last.offset;
            n += 1;
            assert!(n < 100, "readdir loops from cookie {start}");
        }
    }
}

fn readdir_of_a_changing_directory_stays_consistent(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let old = h.spawn_via(&mut q, root, &"{\"spawn\":\"heartbeat\"}\n".repeat(8));
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["worker"]);
    r.lopen_ok(1, O_RDONLY);
    let mut seen: Vec<String> = Vec::new();
    let mut offset = 0;
    let mut round = 0;
    loop {
        let batch = r.readdir_ok(1, offset, 128);
        let Some(last) = batch.last() else { break };
        offset = last.offset;
        seen.extend(batch.into_iter().map(|e| e.name));
        // Change the directory between reads: spawn, and (once) kill a
        // worker that was already listed.
        round += 1;
        if round <= 3 {
            h.spawn_heartbeat_via(&mut q, root);
        }
        if round == 2 {
            let listed = seen.iter().find(|n| n.starts_with("worker-")).unwrap();
            write_file(
                &mut q,
                root,
                "/queen/ctl",
                0,
                format!("{{\"kill\":\"{listed}\"}}\n").as_bytes(),
            )
            .unwrap();
        }
        assert!(round < 1000, "readdir never ended");
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "duplicates: {seen:?}");
    for w in &old {
        assert_eq!(
            seen.iter().filter(|n| *n == w).count(),
            1,
            "{w} listed once: {seen:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Attributes
// ---------------------------------------------------------------------------

/// Fields whose `valid` bit is clear must be zero.
fn check_valid_bits(a: &Attr, what: &str) {
    let zero_unless = |bit: u64, fields: &[u64], name: &str| {
        if a.valid & bit == 0 {
            assert!(
                fields.iter().all(|f| *f == 0),
                "{what}: {name} filled without its valid bit: {a:?}"
            );
        }
    };
    zero_unless(GETATTR_MODE, &[u64::from(a.mode)], "mode");
    zero_unless(GETATTR_NLINK, &[a.nlink], "nlink");
    zero_unless(GETATTR_UID, &[u64::from(a.uid)], "uid");
    zero_unless(GETATTR_GID, &[u64::from(a.gid)], "gid");
    zero_unless(GETATTR_RDEV, &[a.rdev], "rdev");
    zero_unless(GETATTR_ATIME, &[a.atime_sec, a.atime_nsec], "atime");
    zero_unless(GETATTR_MTIME, &[a.mtime_sec, a.mtime_nsec], "mtime");
    zero_unless(GETATTR_CTIME, &[a.ctime_sec, a.ctime_nsec], "ctime");
    zero_unless(GETATTR_SIZE, &[a.size], "size");
    zero_unless(GETATTR_BLOCKS, &[a.blocks], "blocks");
    zero_unless(GETATTR_BTIME, &[a.btime_sec, a.btime_nsec], "btime");
    zero_unless(GETATTR_GEN, &[a.generation], "gen");
    zero_unless(GETATTR_DATA_VERSION, &[a.data_version], "data_version");
    assert_eq!(a.valid & !GETATTR_ALL, 0, "{what}: undefined valid bits");
}

fn getattr_fills_only_valid_bits_and_qid_version_is_zero(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    for (path, dir) in [
        (vec![], true),
        (vec!["proc"], true),
        (vec!["proc", "boot"], false),
        (vec!["queen", "ctl"], false),
        (vec!["log", "queen.log"], false),
        (vec!["gpu", "gpu0", "info"], false),
    ] {
        let walked = r.walk_ok(0, 1, &path).last().copied();
        for mask in [GETATTR_ALL, GETATTR_MODE, GETATTR_SIZE, 0] {
            let a = match r.call(1, &Request::Getattr { fid: 1, mask }) {
                Response::Getattr(a) => a,
                other => panic!("{path:?}: {other:?}"),
            };
            let what = format!("{path:?} mask {mask:#x}");
            check_valid_bits(&a, &what);
            assert_eq!(a.qid.version, 0, "{what}");
            if let Some(q) = walked {
                assert_eq!(a.qid, q, "{what}: getattr qid = walk qid");
            }
            assert_eq!(a.qid.ty & QTDIR != 0, dir, "{what}");
            if a.valid & GETATTR_MODE != 0 {
                let fmt = a.mode & 0o170_000;
                assert_eq!(fmt, if dir { 0o040_000 } else { 0o100_000 }, "{what}");
            }
            if a.valid & GETATTR_NLINK != 0 {
                assert!(a.nlink >= 1, "{what}");
            }
        }
        assert!(matches!(r.clunk(1, 1), Response::Clunk));
    }
}

fn setattr_on_control_files_is_refused(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    for path in [
        vec!["queen", "ctl"],
        vec!["queen", "lifecycle", "ctl"],
        vec!["gpu", "gpu0", "ctl"],
        vec!["proc", "boot"],
        vec!["log", "queen.log"],
    ] {
        r.walk_ok(0, 1, &path);
        for valid in [SETATTR_MODE, SETATTR_SIZE, SETATTR_MODE | SETATTR_SIZE] {
            let resp = r.call(
                1,
                &Request::Setattr {
                    fid: 1,
                    attr: SetAttr {
                        valid,
                        mode: 0o777,
                        size: 0,
                        ..SetAttr::default()
                    },
                },
            );
            assert!(
                is_errno(&resp, e::EPERM) || is_errno(&resp, e::EACCES),
                "{path:?} setattr {valid:#x}: {resp:?}"
            );
        }
        // Nothing changed.
        if let Response::Getattr(a) = r.getattr(1, 1) {
            assert_ne!(a.mode & 0o777, 0o777, "{path:?}");
        }
        // Timestamps only (what `touch` sends) may be accepted.
        let touch = r.call(
            1,
            &Request::Setattr {
                fid: 1,
                attr: SetAttr {
                    valid: SETATTR_ATIME | SETATTR_MTIME,
                    ..SetAttr::default()
                },
            },
        );
        assert!(
            matches!(touch, Response::Setattr)
                || is_errno(&touch, e::EPERM)
                || is_errno(&touch, e::EACCES),
            "{touch:?}"
        );
        assert!(matches!(r.clunk(1, 1), Response::Clunk));
    }
}

fn statfs_is_sane(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["proc", "boot"]);
    for fid in [0, 1] {
        match r.call(1, &Request::Statfs { fid }) {
            Response::Statfs(s) => {
                assert!(s.bsize > 0, "{s:?}");
                assert_eq!(s.namelen, 255, "{s:?}");
                assert_eq!(s.ty, 0x0102_1997, "V9FS_MAGIC: {s:?}");
                assert!(s.bfree <= s.blocks && s.bavail <= s.blocks, "{s:?}");
                assert!(s.ffree <= s.files || s.files == 0, "{s:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_lerror(&r.call(1, &Request::Statfs { fid: 77 }), e::EBADF);
}

// ---------------------------------------------------------------------------
// Clunk / remove
// ---------------------------------------------------------------------------

fn clunk_frees_the_fid_and_a_second_clunk_is_ebadf(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["proc", "boot"]);
    r.lopen_ok(1, O_RDONLY);
    assert_eq!(r.clunk(1, 1), Response::Clunk);
    assert_lerror(&r.clunk(1, 1), e::EBADF);
    assert_lerror(&r.read(1, 1, 0, 10), e::EBADF);
    // The fid number is free again.
    r.walk_ok(0, 1, &["proc"]);
    assert_eq!(r.clunk(1, 1), Response::Clunk);
    // Clunking the attach fid.
    assert_eq!(r.clunk(1, 0), Response::Clunk);
    assert_lerror(&r.clunk(1, 0), e::EBADF);
    assert_lerror(&r.clunk(1, 12345), e::EBADF);
}

fn remove_clunks_even_when_it_fails(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let mut r = h.raw_queen(kind, 8192);
    for path in [
        vec!["proc", "boot"],
        vec!["worker", w.as_str(), "telemetry"],
        vec!["queen", "ctl"],
        vec!["proc"],
    ] {
        r.walk_ok(0, 1, &path);
        let resp = r.call(1, &Request::Remove { fid: 1 });
        assert_any_lerror(&resp);
        assert_lerror(&r.clunk(1, 1), e::EBADF);
    }
    // Open fids too.
    r.walk_ok(0, 2, &["proc", "boot"]);
    r.lopen_ok(2, O_RDONLY);
    assert_any_lerror(&r.call(1, &Request::Remove { fid: 2 }));
    assert_lerror(&r.read(1, 2, 0, 10), e::EBADF);
    // The node is still there.
    r.walk_ok(0, 3, &["proc", "boot"]);
}

// ---------------------------------------------------------------------------
// Flush and blocking reads
// ---------------------------------------------------------------------------

fn flush_of_an_unknown_tag_is_rflush(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    for oldtag in [77u16, 0, 1, NOTAG - 1] {
        assert_eq!(r.call(9, &Request::Flush { oldtag }), Response::Flush);
    }
    // The session is untouched.
    r.walk_ok(0, 1, &["proc"]);
}

/// The empty reads a fid gets at the end of an append-only file before a
/// read there blocks (`EMPTY_READS_BEFORE_BLOCKING`), less the `done` it
/// already had (`read_to_eof` stops after one).
fn eof_reads(r: &mut Raw, fid: u32, offset: u64, count: u32) {
    eof_reads_after(r, 0, fid, offset, count);
}

fn eof_reads_after(r: &mut Raw, done: u8, fid: u32, offset: u64, count: u32) {
    for i in done..ninedoor::session::EMPTY_READS_BEFORE_BLOCKING {
        assert_eq!(
            r.read_ok(fid, offset, count),
            Vec::<u8>::new(),
            "empty read {i} at {offset}"
        );
    }
}

/// Opens `/log/queen.log` on `fid` and reads to its end; returns the end.
fn queen_log_at_eof(r: &mut Raw, fid: u32) -> u64 {
    r.walk_ok(0, fid, &["log", "queen.log"]);
    r.lopen_ok(fid, O_RDONLY);
    r.read_to_eof(fid, 0).1
}

fn eof_then_block_and_flush_of_a_blocked_read(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    let end = queen_log_at_eof(&mut r, 1);
    // The reads at the end answer 0 bytes (that is how read_to_eof stopped)
    // until the fid has had its empty reads; the next one blocks: send it,
    // then flush it.
    eof_reads_after(&mut r, 1, 1, end, 512);
    r.send(
        5,
        &Request::Read {
            fid: 1,
            offset: end,
            count: 512,
        },
    );
    r.send(6, &Request::Flush { oldtag: 5 });
    let (tag, resp) = r.recv();
    if tag == 5 {
        // The original reply may come first (the log grew meanwhile)...
        assert!(
            matches!(resp, Response::Read { ref data } if !data.is_empty()),
            "{resp:?}"
        );
        let (tag, resp) = r.recv();
        assert_eq!((tag, resp), (6, Response::Flush));
    } else {
        // ... or nothing, then Rflush.
        assert_eq!((tag, resp), (6, Response::Flush));
    }
    // Tag 5 is reusable at once, and no late reply for the old tag 5 comes.
    let resp = r.getattr(5, 1);
    assert!(matches!(resp, Response::Getattr(_)), "{resp:?}");
    // Flushing the same tag again is harmless.
    assert_eq!(r.call(6, &Request::Flush { oldtag: 5 }), Response::Flush);
    // A read on a fresh fid at the end answers EOF (0 bytes) first.
    let end2 = queen_log_at_eof(&mut r, 2);
    assert!(end2 >= end);
}

/// Linux's netfs finishes a short read itself: `Tread(0, 4096)` → 50 bytes,
/// then `Tread(50, 4046)`. That second read is answered EOF without counting
/// as one of the fid's empty reads, so `cat`'s own next read (and netfs's
/// retry of it) still get EOF and `cat` ends; only a read after that blocks.
fn the_rest_of_a_short_read_is_not_yet_the_clients_eof(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["log", "queen.log"]);
    r.lopen_ok(1, O_RDONLY);
    // Read to the end with reads that come back short.
    let mut offset = 0u64;
    let rest = loop {
        let d = r.read_ok(1, offset, 4096);
        offset += d.len() as u64;
        if d.len() < 4096 {
            break 4096 - d.len() as u32;
        }
    };
    // netfs's continuation: EOF, not armed.
    assert_eq!(r.read_ok(1, offset, rest), Vec::<u8>::new());
    // cat's own read, and netfs's retry of an empty read: EOF both times.
    eof_reads(&mut r, 1, offset, 4096);
    // Only now does a read block (until growth or a flush).
    r.send(
        7,
        &Request::Read {
            fid: 1,
            offset,
            count: 4096,
        },
    );
    r.send(8, &Request::Flush { oldtag: 7 });
    let (tag, resp) = r.recv();
    if tag == 7 {
        assert!(
            matches!(resp, Response::Read { ref data } if !data.is_empty()),
            "{resp:?}"
        );
        assert_eq!(r.recv(), (8, Response::Flush));
    } else {
        assert_eq!((tag, resp), (8, Response::Flush));
    }
    // A read of a different size at the end is not a continuation: after
    // the usual empty reads, it blocks.
    let mut r2 = h.raw_queen(kind, 8192);
    r2.walk_ok(0, 1, &["log", "queen.log"]);
    r2.lopen_ok(1, O_RDONLY);
    let end = r2.read_to_eof(1, 0).1;
    eof_reads_after(&mut r2, 1, 1, end, 100);
    r2.send(
        3,
        &Request::Read {
            fid: 1,
            offset: end,
            count: 100,
        },
    );
    r2.send(4, &Request::Flush { oldtag: 3 });
    let (tag, resp) = r2.recv();
    if tag == 3 {
        // Answered only because the log grew, never an immediate EOF.
        assert!(
            matches!(resp, Response::Read { ref data } if !data.is_empty()),
            "{resp:?}"
        );
        assert_eq!(r2.recv(), (4, Response::Flush));
    } else {
        assert_eq!((tag, resp), (4, Response::Flush));
    }
}

fn blocked_read_is_answered_when_the_file_grows(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let tel = format!("/worker/{w}/telemetry");
    let mut r = h.raw_attached(
        kind,
        8192,
        &format!("worker-heartbeat:{w}"),
        &h.hb_ticket(&w),
    );
    r.walk_ok(0, 1, &["worker", &w, "telemetry"]);
    r.lopen_ok(1, O_RDONLY);
    let mut offset = 0u64;
    for i in 0..40u32 {
        // EOF first ...
        eof_reads(&mut r, 1, offset, 512);
        // ... then a blocking read at the same offset, answered when another
        // session appends.
        // (A fresh tag each round: tag reuse has its own test below.)
        let tag = 100 + i as u16;
        r.send(
            tag,
            &Request::Read {
                fid: 1,
                offset,
                count: 512,
            },
        );
        let line = format!("beat {i}\n");
        write_file(&mut q, root, &tel, u64::MAX, line.as_bytes()).unwrap();
        let (got, resp) = r.recv();
        assert_eq!(got, tag, "round {i}");
        assert_eq!(
            resp,
            Response::Read {
                data: line.clone().into_bytes()
            },
            "round {i}"
        );
        offset += line.len() as u64;
    }
}

/// A tag is free again once its reply has arrived — also the reply of a
/// read that blocked and was answered later from the server's tail thread.
/// (The window in which a server could still consider the tag in flight is
/// narrow, hence many rounds; a correct server passes every round.)
fn tag_is_reusable_as_soon_as_a_deferred_reply_arrives(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let writer = q
        .walk_path(root, &format!("/worker/{w}/telemetry"))
        .unwrap();
    q.lopen(writer, O_WRONLY).unwrap();
    let mut r = h.raw_queen(kind, 8192);
    r.walk_ok(0, 1, &["worker", &w, "telemetry"]);
    r.lopen_ok(1, O_RDONLY);
    let mut refused = Vec::new();
    for i in 0..3000u64 {
        // At the end: EOF, then a read that blocks until the append.
        eof_reads(&mut r, 1, i, 64);
        r.send(
            9,
            &Request::Read {
                fid: 1,
                offset: i,
                count: 64,
            },
        );
        q.write(writer, u64::MAX, b"x").unwrap();
        let (tag, resp) = r.recv();
        assert_eq!(
            (tag, resp),
            (
                9,
                Response::Read {
                    data: b"x".to_vec()
                }
            )
        );
        // Reuse tag 9 immediately.
        let resp = r.call(9, &Request::Statfs { fid: 0 });
        if !matches!(resp, Response::Statfs(_)) {
            refused.push((i, resp));
        }
    }
    assert!(
        refused.is_empty(),
        "tag 9 refused right after its deferred Rread arrived, in {} of 3000 rounds: {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
}

fn blocked_reads_per_session_are_bounded(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    let end = queen_log_at_eof(&mut r, 1);
    // Pile up blocked reads until the server refuses one (it must, at some
    // bound, and with an error rather than by dying). After each read a
    // cheap Tstatfs tells whether the read blocked: the Rstatfs comes first
    // unless the read was answered.
    let mut blocked: Vec<u16> = Vec::new();
    let mut refused = None;
    for tag in 100u16..400 {
        r.send(
            tag,
            &Request::Read {
                fid: 1,
                offset: end,
                count: 64,
            },
        );
        r.send(1, &Request::Statfs { fid: 0 });
        let mut this_blocked = true;
        loop {
            let (t, resp) = r.recv();
            match (t, resp) {
                (1, Response::Statfs(_)) => break,
                (t, Response::Lerror { ecode }) if t == tag => {
                    refused = Some(ecode);
                    this_blocked = false;
                }
                // Answered because the log grew (this read or an earlier one).
                (t, Response::Read { .. }) if t == tag => this_blocked = false,
                (t, Response::Read { .. }) if blocked.contains(&t) => blocked.retain(|b| *b != t),
                (t, other) => panic!("tag {t}: {other:?}"),
            }
        }
        if this_blocked {
            blocked.push(tag);
        }
        if refused.is_some() {
            break;
        }
    }
    let refused = refused.expect("blocked reads are bounded per session");
    assert_eq!(refused, e::EAGAIN);
    assert!(
        blocked.len() >= 8,
        "at least a few blocked reads are allowed"
    );
    // Flush them all; each flush ends with its Rflush.
    for tag in blocked {
        r.send(2, &Request::Flush { oldtag: tag });
        loop {
            let (t, resp) = r.recv();
            if t == 2 {
                assert_eq!(resp, Response::Flush);
                break;
            }
            assert!(matches!(resp, Response::Read { .. }), "{resp:?}");
        }
    }
    r.walk_ok(0, 2, &["proc"]);
}

fn blocked_read_of_a_killed_worker_is_answered(kind: Kind) {
    let h = Harness::start();
    let (mut q, root) = h.queen(kind);
    let w = h.spawn_heartbeat_via(&mut q, root);
    let mut r = h.raw_attached(
        kind,
        8192,
        &format!("worker-heartbeat:{w}"),
        &h.hb_ticket(&w),
    );
    r.walk_ok(0, 1, &["worker", &w, "telemetry"]);
    r.lopen_ok(1, O_RDONLY);
    eof_reads(&mut r, 1, 0, 64);
    r.send(
        4,
        &Request::Read {
            fid: 1,
            offset: 0,
            count: 64,
        },
    );
    write_file(
        &mut q,
        root,
        "/queen/ctl",
        0,
        format!("{{\"kill\":\"{w}\"}}\n").as_bytes(),
    )
    .unwrap();
    // The blocked read does not hang: it fails (revoked, or gone).
    let (tag, resp) = r.recv();
    assert_eq!(tag, 4);
    assert_any_lerror(&resp);
}

// ---------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------

fn unknown_message_types_get_eopnotsupp(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    for (i, ty) in [
        0u8,
        msg::TSYMLINK,
        msg::TMKNOD,
        msg::TRENAME,
        msg::TREADLINK,
        msg::TLOCK,
        msg::TGETLOCK,
        msg::TLINK,
        msg::TRENAMEAT,
        msg::TOPEN,
        msg::TCREATE,
        msg::TSTAT,
        msg::TWSTAT,
        msg::RVERSION,
        msg::RLERROR,
        150,
        255,
    ]
    .into_iter()
    .enumerate()
    {
        let tag = 20 + i as u16;
        let frame = FrameBuf::new(ty, tag).u32(0).u32(1).finish();
        let resp = r.call_bytes(tag, &frame);
        assert_lerror(&resp, e::EOPNOTSUPP);
        // The connection lives.
        assert!(matches!(r.getattr(1, 0), Response::Getattr(_)));
    }
}

fn truncated_strings_get_rlerror_and_the_connection_lives(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    let frames = [
        // Tattach: uname claims 50 bytes, 3 present.
        FrameBuf::new(msg::TATTACH, 31)
            .u32(5)
            .u32(NOFID)
            .u16(50)
            .bytes(b"que")
            .finish(),
        // Twalk: a name claims 10 bytes, 2 present.
        FrameBuf::new(msg::TWALK, 32)
            .u32(0)
            .u32(6)
            .u16(1)
            .u16(10)
            .bytes(b"pr")
            .finish(),
        // Twalk: nwname 2, one name present.
        FrameBuf::new(msg::TWALK, 33)
            .u32(0)
            .u32(6)
            .u16(2)
            .str("proc")
            .finish(),
        // Tversion: a string length with nothing behind it.
        FrameBuf::new(msg::TVERSION, 34).u32(8192).u16(8).finish(),
        // Twrite: count larger than the data.
        FrameBuf::new(msg::TWRITE, 35)
            .u32(0)
            .u64(0)
            .u32(100)
            .bytes(b"abc")
            .finish(),
        // Tread missing its count.
        FrameBuf::new(msg::TREAD, 36).u32(0).u64(0).finish(),
        // A name that is not UTF-8.
        FrameBuf::new(msg::TWALK, 37)
            .u32(0)
            .u32(6)
            .u16(1)
            .u16(2)
            .bytes(&[0xff, 0xfe])
            .finish(),
        // Trailing garbage after a complete Tclunk.
        FrameBuf::new(msg::TCLUNK, 38)
            .u32(77)
            .bytes(b"xyz")
            .finish(),
    ];
    for f in frames {
        let tag = u16::from_le_bytes([f[5], f[6]]);
        let resp = r.call_bytes(tag, &f);
        assert_any_lerror(&resp);
        // Alive, still versioned and attached.
        assert!(matches!(r.getattr(1, 0), Response::Getattr(_)));
    }
    assert_lerror(&r.clunk(1, 5), e::EBADF);
    assert_lerror(&r.clunk(1, 6), e::EBADF);
}

fn size_below_seven_closes_only_that_connection(kind: Kind) {
    let h = Harness::start();
    let mut other = h.raw_queen(kind, 8192);
    for bad in [
        &[0u8, 0, 0, 0][..],
        &[4, 0, 0, 0],
        &[6, 0, 0, 0, 110, 1],
        &[5, 0, 0, 0, 120, 0, 0, 0, 0],
    ] {
        let mut r = h.raw_queen(kind, 8192);
        r.send_bytes(bad);
        r.expect_closed();
        // Other connections are unaffected.
        assert!(matches!(other.getattr(1, 0), Response::Getattr(_)));
        other.walk_ok(0, 1, &["proc"]);
        assert_eq!(other.clunk(1, 1), Response::Clunk);
    }
    // Before Tversion too.
    let mut r = h.raw(kind);
    r.send_bytes(&[3, 0, 0, 0]);
    r.expect_closed();
    // New connections still work.
    let mut fresh = h.raw_queen(kind, 8192);
    fresh.walk_ok(0, 1, &["proc", "boot"]);
}

/// Sends a whole frame larger than the negotiated msize. ninep.md allows
/// either answer: an Rlerror on its tag with the session intact, or a clean
/// disconnect. Returns whether the connection survived.
fn send_oversized(r: &mut Raw, frame: &[u8], tag: u16) -> bool {
    if !r.try_send_bytes(frame) {
        r.expect_closed();
        return false;
    }
    match r.recv_frame() {
        None => false,
        Some(f) => {
            let (t, resp) = secure9p::decode_response(&f, MAX_MSIZE).unwrap();
            assert_eq!(t, tag, "{resp:?}");
            assert_lerror(&resp, e::EMSGSIZE);
            // Alive, still versioned and attached.
            assert!(matches!(r.getattr(1, 0), Response::Getattr(_)));
            true
        }
    }
}

fn declared_size_above_msize_is_refused(kind: Kind) {
    let h = Harness::start();
    let mut other = h.raw_queen(kind, 8192);
    let before = read_text_raw(&mut other, 2).lines().count();
    // After negotiating 4096: a 5000-byte Twrite, then a 4097-byte Tclunk.
    let mut r = h.raw_queen(kind, 4096);
    let f = FrameBuf::new(msg::TWRITE, 3)
        .u32(0)
        .u64(0)
        .u32(5000 - 23)
        .bytes(&vec![b'x'; 5000 - 23])
        .finish();
    assert_eq!(f.len(), 5000);
    if send_oversized(&mut r, &f, 3) {
        let f = FrameBuf::new(msg::TCLUNK, 4)
            .u32(0)
            .bytes(&vec![0; 4097 - 11])
            .finish();
        assert_eq!(f.len(), 4097);
        send_oversized(&mut r, &f, 4);
    }
    // The msize in force is the negotiated one, not the 8192 the client
    // could have asked for: the same 5000 bytes are fine at msize 8192.
    assert!(matches!(other.getattr(1, 0), Response::Getattr(_)));
    // A header declaring 2 GiB (before Tversion) cannot be a frame: closed.
    let mut r = h.raw(kind);
    r.send_bytes(&0x7fff_ffffu32.to_le_bytes());
    r.send_bytes(&[msg::TVERSION, 0xff, 0xff]);
    r.expect_closed();
    // And after Tversion.
    let mut r = h.raw_queen(kind, 8192);
    r.send_bytes(&0xffff_fff0u32.to_le_bytes());
    r.expect_closed();
    // Other connections are unaffected; each refusal was audited.
    assert!(matches!(other.getattr(1, 0), Response::Getattr(_)));
    let log = read_text_raw(&mut other, 2);
    let new: Vec<&str> = log.lines().skip(before).collect();
    let audited = new
        .iter()
        .filter(|l| l.contains("bad frame") || l.contains("byte request"))
        .count();
    assert!(
        audited >= 3,
        "audit lines for the oversized frames: {new:#?}"
    );
}

/// Reads `/log/queen.log` on a raw queen connection with fid `fid`.
fn read_text_raw(r: &mut Raw, fid: u32) -> String {
    r.walk_ok(0, fid, &["log", "queen.log"]);
    r.lopen_ok(fid, O_RDONLY);
    let text = String::from_utf8(r.read_to_eof(fid, 0).0).unwrap();
    assert_eq!(r.clunk(1, fid), Response::Clunk);
    text
}

fn garbage_closes_the_connection_with_an_audit_line(kind: Kind) {
    let h = Harness::start();
    let mut other = h.raw_queen(kind, 8192);
    let before = read_text_raw(&mut other, 1).lines().count();
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: ninedoor\r\n\r\n"[..],
        &[0xff; 64],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let mut r = h.raw(kind);
        r.try_send_bytes(garbage);
        r.expect_closed();
        assert!(matches!(other.getattr(1, 0), Response::Getattr(_)));
    }
    let log = read_text_raw(&mut other, 1);
    let peer = match kind {
        Kind::Unix => "unix(",
        Kind::Tcp => "tcp(",
    };
    let new: Vec<&str> = log.lines().skip(before).collect();
    let bad = new
        .iter()
        .filter(|l| l.contains("bad frame") && l.contains(peer))
        .count();
    assert!(
        bad >= 3,
        "an audit line per garbage connection naming the peer: {new:#?}"
    );
}

fn fid_limit_per_session_is_an_error_not_a_crash(kind: Kind) {
    let h = Harness::start();
    let mut r = h.raw_queen(kind, 8192);
    let mut fid = 1u32;
    let refused = loop {
        match r.walk(1, 0, fid, &[]) {
            Response::Walk { .. } => fid += 1,
            other => break other,
        }
        assert!(fid <= 1_000_000, "no fid limit per session");
    };
    assert_any_lerror(&refused);
    let held = fid; // fids 0..fid
    assert_eq!(held as usize, ninedoor::session::MAX_FIDS);
    // Attach to a new fid is refused as well, and the connection lives.
    assert_any_lerror(&r.attach(1, 5_000_000, "queen", &h.queen_aname(kind)));
    assert!(matches!(r.getattr(1, 7), Response::Getattr(_)));
    // Freeing one makes room for one.
    assert_eq!(r.clunk(1, 7), Response::Clunk);
    r.walk_ok(0, 7, &["proc"]);
    assert_any_lerror(&r.walk(1, 0, 9_999_999, &[]));
    // Other sessions have their own fids.
    let mut other = h.raw_queen(kind, 8192);
    other.walk_ok(0, 1, &["proc"]);
}
