use super::*;
use crate::testutil::Rng;
use coconut_abi::syscall::{cap_type, rights};
use std::format;
use std::string::String;
use std::vec::Vec;

const GOOD: &str = r#"
# the demo system
[[channel]]
name = "pipe"
capacity = 8
msg_max = 0x100   # hex is fine

[[shard]]
name = "producer"
path = "/bin/producer"
priority = 1
pages = 1_024
args = "--count 3"
caps = [
    "channel:pipe:send+grant",   # comment inside an array
    "factory:channel+shard",
    "shard:consumer:wait+kill",
    "memory:dma:dma",
    "memory:0xfeb00000:4:read+write",
    "irq:11:receive+grant",
    "gpu:1:write",
]

[[shard]]
name = "consumer"
path = "/bin/consumer"
start = false
caps = ["channel:pipe:recv",]
"#;

fn err(text: &str) -> ManifestError {
    match parse(text.as_bytes()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

fn shard_with(line: &str) -> String {
    format!("[[shard]]\nname = \"a\"\npath = \"/a\"\n{line}\n")
}

#[test]
fn parses_the_documented_example() {
    let m = parse(GOOD.as_bytes()).expect("valid manifest");
    assert_eq!(m.channels().len(), 1);
    assert_eq!(
        m.channels()[0],
        Channel {
            name: "pipe",
            capacity: 8,
            msg_max: 256
        }
    );
    let [p, c] = m.shards() else {
        panic!("two shards")
    };
    assert_eq!(
        (p.name, p.path, p.priority, p.pages),
        ("producer", "/bin/producer", 1, 1024)
    );
    assert_eq!((p.args, p.start), ("--count 3", true));
    assert_eq!(
        p.caps(),
        &[
            CapSpec::Channel {
                channel: 0,
                rights: rights::SEND | rights::GRANT
            },
            CapSpec::Factory {
                rights: rights::FACTORY_CHANNEL | rights::FACTORY_SHARD
            },
            CapSpec::Shard {
                shard: 1,
                rights: rights::WAIT | rights::KILL
            },
            CapSpec::Dma {
                rights: rights::MEMORY_DMA
            },
            CapSpec::Mmio {
                base: 0xfeb0_0000,
                pages: 4,
                rights: rights::MEMORY_READ | rights::MEMORY_WRITE
            },
            CapSpec::Irq {
                line: 11,
                rights: rights::IRQ_RECEIVE | rights::GRANT
            },
            CapSpec::GpuDma {
                partition: 1,
                rights: rights::GPU_WRITE
            },
        ]
    );
    let types: Vec<u64> = p.caps().iter().map(CapSpec::cap_type).collect();
    assert_eq!(
        types,
        [
            cap_type::CHANNEL,
            cap_type::FACTORY,
            cap_type::SHARD,
            cap_type::MEMORY,
            cap_type::MEMORY,
            cap_type::IRQ,
            cap_type::GPU_DMA
        ]
    );
    assert_eq!(
        (c.priority, c.pages, c.args, c.start),
        (DEFAULT_PRIORITY, DEFAULT_PAGES, "", false)
    );
    assert_eq!(
        c.caps(),
        &[CapSpec::Channel {
            channel: 0,
            rights: rights::RECV
        }]
    );
}

#[test]
fn empty_and_comment_only_manifests_have_no_shards() {
    for text in ["", "\n\n", "# nothing\n  # here\r\n"] {
        let m = parse(text.as_bytes()).expect("empty is valid");
        assert!(m.shards().is_empty() && m.channels().is_empty());
    }
}

#[test]
fn errors_carry_line_and_reason() {
    let cases: &[(&str, u32, Reason)] = &[
        ("name = \"x\"\n", 1, Reason::KeyOutsideTable),
        ("[shard]\n", 1, Reason::UnknownTable),
        ("[[disk]]\n", 1, Reason::UnknownTable),
        ("[[shard]] x\n", 1, Reason::Unexpected),
        ("[[shard]]\nname = \"a\"\n", 1, Reason::Missing("path")),
        ("[[shard]]\npath = \"/a\"\n", 1, Reason::Missing("name")),
        (
            "[[channel]]\nname = \"c\"\nmsg_max = 1\n",
            1,
            Reason::Missing("capacity"),
        ),
        (
            "[[channel]]\nname = \"c\"\ncapacity = 1\n",
            1,
            Reason::Missing("msg_max"),
        ),
        (
            "\n[[shard]]\nname = \"a\nb\"\n",
            3,
            Reason::UnterminatedString,
        ),
        ("[[shard]]\nname = \"a\\n\"\n", 2, Reason::EscapeInString),
        ("[[shard]]\nname = \"a\u{1}\"\n", 2, Reason::ControlInString),
        ("[[shard]]\nname = 'a'\n", 2, Reason::Unexpected),
        ("[[shard]]\nname = \"a\" \"b\"\n", 2, Reason::Unexpected),
        ("[[shard]]\nname = 3\n", 2, Reason::WrongType),
        ("[[shard]]\nstart = yes\n", 2, Reason::Unexpected),
        ("[[shard]]\nstart = 1\n", 2, Reason::WrongType),
        ("[[shard]]\ncolour = 1\n", 2, Reason::UnknownKey),
        (
            "[[shard]]\nname = \"a\"\nname = \"b\"\n",
            3,
            Reason::DuplicateKey,
        ),
        ("[[shard]]\nname = \"\"\n", 2, Reason::BadName),
        ("[[shard]]\nname = \"a b\"\n", 2, Reason::BadName),
        ("[[shard]]\nname = \"a:b\"\n", 2, Reason::BadName),
        (
            "[[shard]]\nname = \"abcdefghijabcdefghijabcdefghijab\"\n",
            2,
            Reason::BadName,
        ),
        ("[[shard]]\npath = \"bin/x\"\n", 2, Reason::BadPath),
        ("[[shard]]\npriority = 4\n", 2, Reason::OutOfRange),
        ("[[shard]]\npriority = -1\n", 2, Reason::BadNumber),
        (
            "[[shard]]\npages = 99999999999999999999999\n",
            2,
            Reason::BadNumber,
        ),
        ("[[shard]]\npages = 0x\n", 2, Reason::BadNumber),
        ("[[shard]]\npages = 1_\n", 2, Reason::BadNumber),
        ("[[shard]]\npages = 12ab\n", 2, Reason::BadNumber),
        ("[[shard]]\npages = 1048577\n", 2, Reason::OutOfRange),
        ("[[channel]]\ncapacity = 0\n", 2, Reason::OutOfRange),
        ("[[channel]]\ncapacity = 65\n", 2, Reason::OutOfRange),
        ("[[channel]]\nmsg_max = 257\n", 2, Reason::OutOfRange),
        ("[[channel]]\nmsg_max = 0\n", 2, Reason::OutOfRange),
        ("[[shard]]\ncaps = [\n\"a\",\n3]\n", 4, Reason::Unexpected),
        ("[[shard]]\ncaps = [\"a\"\n", 3, Reason::Unexpected),
        ("[[shard]]\ncaps = \"a\"\n", 2, Reason::WrongType),
        ("\u{ff}", 1, Reason::Unexpected),
    ];
    for &(text, line, reason) in cases {
        assert_eq!(err(text), ManifestError { line, reason }, "{text:?}");
    }
    let mut bytes = b"[[shard]]\n# caf\xc3\xa9 ok\nname = \"\xff\"\n".to_vec();
    assert_eq!(
        parse(&bytes).err(),
        Some(ManifestError {
            line: 3,
            reason: Reason::NotUtf8
        })
    );
    bytes.truncate(10);
    assert_eq!(
        err(core::str::from_utf8(&bytes).unwrap()).reason,
        Reason::Missing("name")
    );
}

#[test]
fn limits_on_args_path_and_counts() {
    let long_args = "x".repeat(ARGS_MAX + 1);
    assert_eq!(
        err(&shard_with(&format!("args = \"{long_args}\""))).reason,
        Reason::ArgsTooLong
    );
    let ok_args = "x".repeat(ARGS_MAX);
    assert!(parse(shard_with(&format!("args = \"{ok_args}\"")).as_bytes()).is_ok());
    let long_path = format!("/{}", "p".repeat(255));
    assert_eq!(
        err(&format!("[[shard]]\npath = \"{long_path}\"\n")).reason,
        Reason::BadPath
    );

    let mut many = String::new();
    for i in 0..=MAX_SHARDS {
        many += &format!("[[shard]]\nname = \"s{i}\"\npath = \"/s\"\n");
    }
    assert_eq!(
        err(&many),
        ManifestError {
            line: 3 * MAX_SHARDS as u32 + 1,
            reason: Reason::TooManyShards
        }
    );
    let mut many = String::new();
    for i in 0..=MAX_CHANNELS {
        many += &format!("[[channel]]\nname = \"c{i}\"\ncapacity = 1\nmsg_max = 1\n");
    }
    assert_eq!(err(&many).reason, Reason::TooManyChannels);
    let caps: Vec<String> = (0..=MAX_CAPS)
        .map(|_| String::from("\"factory:grant\""))
        .collect();
    assert_eq!(
        err(&shard_with(&format!("caps = [{}]", caps.join(",")))).reason,
        Reason::TooManyCaps
    );
    let caps = &caps[..MAX_CAPS];
    let text = shard_with(&format!("caps = [{}]", caps.join(",")));
    assert_eq!(
        parse(text.as_bytes()).map(|m| m.shards()[0].caps().len()),
        Ok(MAX_CAPS)
    );
}

#[test]
fn duplicate_names_are_reported_at_the_second_table() {
    let text = "[[shard]]\nname = \"a\"\npath = \"/a\"\n[[shard]]\nname = \"a\"\npath = \"/b\"\n";
    assert_eq!(
        err(text),
        ManifestError {
            line: 4,
            reason: Reason::DuplicateName
        }
    );
    let text = "[[channel]]\nname = \"c\"\ncapacity = 1\nmsg_max = 1\n\n[[channel]]\nname = \"c\"\ncapacity = 1\nmsg_max = 1\n";
    assert_eq!(
        err(text),
        ManifestError {
            line: 6,
            reason: Reason::DuplicateName
        }
    );
    // a shard and a channel may share a name
    let text = "[[channel]]\nname = \"x\"\ncapacity = 1\nmsg_max = 1\n[[shard]]\nname = \"x\"\npath = \"/x\"\n";
    assert!(parse(text.as_bytes()).is_ok());
}

#[test]
fn bad_capability_spellings_are_refused_on_their_line() {
    let cases: &[(&str, Reason)] = &[
        ("serial", Reason::BadCap),
        ("", Reason::BadCap),
        ("factory", Reason::BadCap),
        ("factory:", Reason::BadRight),
        ("factory:send", Reason::BadRight),
        ("factory:channel+", Reason::BadRight),
        ("factory:channel:extra", Reason::BadCap),
        ("channel:nope:send", Reason::UnknownChannel),
        ("channel:pipe", Reason::BadCap),
        ("channel:pipe:wait", Reason::BadRight),
        ("shard:nope:wait", Reason::UnknownShard),
        ("shard:a:send", Reason::BadRight),
        ("memory:dma:read", Reason::BadRight),
        ("memory:0xfeb00001:1:read", Reason::OutOfRange),
        ("memory:0xfeb00000:0:read", Reason::OutOfRange),
        ("memory:0xfffffffffffff000:1:read", Reason::OutOfRange),
        ("memory:0xfeb00000:x:read", Reason::BadCap),
        ("memory:0xfeb00000:1:dma", Reason::BadRight),
        ("irq:256:receive", Reason::OutOfRange),
        ("irq:x:receive", Reason::BadCap),
        ("gpu:4294967296:write", Reason::OutOfRange),
        ("gpu:0:send", Reason::BadRight),
    ];
    let chan = "[[channel]]\nname = \"pipe\"\ncapacity = 1\nmsg_max = 1\n";
    for &(cap, reason) in cases {
        let text = format!(
            "{chan}{}",
            shard_with(&format!("caps = [\n  \"factory:grant\",\n  \"{cap}\",\n]"))
        );
        assert_eq!(err(&text), ManifestError { line: 10, reason }, "{cap}");
    }
    // a shard may hold a capability to itself; channels declared after the shard resolve
    let text = format!(
        "{}{chan}",
        shard_with("caps = [\"shard:a:wait\", \"channel:pipe:send\"]")
    );
    let m = parse(text.as_bytes()).expect("forward references resolve");
    assert_eq!(
        m.shards()[0].caps()[0],
        CapSpec::Shard {
            shard: 0,
            rights: rights::WAIT
        }
    );
}

#[test]
fn random_bytes_and_mutations_never_panic() {
    let mut rng = Rng::new(0x70a1);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut text = GOOD.as_bytes().to_vec();
        let n = 1 + rng.below(4) as usize;
        rng.mutate(&mut text, n);
        if rng.below(5) == 0 {
            text.truncate(rng.below(text.len() as u64) as usize);
        }
        if let Ok(m) = parse(&text) {
            accepted += 1;
            for s in m.shards() {
                assert!(s.priority <= 3 && !s.name.is_empty() && s.name.len() <= NAME_MAX);
                assert!(s.caps().len() <= MAX_CAPS);
            }
        }
    }
    assert!(accepted > 0);
    let mut junk = [0u8; 300];
    for _ in 0..5_000 {
        rng.fill(&mut junk);
        let _ = parse(&junk);
        // mostly-ASCII junk reaches deeper into the lexer
        for b in junk.iter_mut() {
            *b = b"[]=\"#\n ,:+abx01_-shardchannelcaps"[(*b as usize) % 33];
        }
        let _ = parse(&junk);
    }
}

#[test]
fn display_names_line_and_key() {
    let e = err("[[shard]]\nname = \"a\"\n");
    assert_eq!(format!("{e}"), "shards.toml:1: missing key `path`");
}
