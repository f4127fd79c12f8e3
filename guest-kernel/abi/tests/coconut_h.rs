//! `guest-kernel/include/coconut.h` is generated from this crate, so C
//! shards and Rust cannot drift: this test renders the header from the
//! crate's constants and fails if the checked-in file differs.
//!
//! Regenerate after an ABI change with
//! `COCO_BLESS=1 cargo test -p coconut-abi --test coconut_h`.
//!
//! If a C compiler (`cc`) is installed, the header is also compiled with
//! `-Wall -Wextra -Werror`, which checks its `_Static_assert`s on the
//! `ShardInfo` layout and its inline-assembly wrappers.

use coconut_abi::syscall::config::{self, ShardInfo};
use coconut_abi::syscall::{self, Error, cap_type, nr, pledge, rights};
use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

/// A system call: its C name, number and typed arguments.
struct Call {
    name: &'static str,
    nr: u64,
    ret: &'static str,
    args: &'static [(&'static str, &'static str)],
}

const U64: &str = "uint64_t";

/// Every call of the ABI, in number order.
const CALLS: &[Call] = &[
    Call {
        name: "exit",
        nr: nr::EXIT,
        ret: "void",
        args: &[("uint64_t", "code")],
    },
    Call {
        name: "serial_write",
        nr: nr::SERIAL_WRITE,
        ret: U64,
        args: &[("const void *", "buf"), ("uint64_t", "len")],
    },
    Call {
        name: "time",
        nr: nr::TIME,
        ret: U64,
        args: &[],
    },
    Call {
        name: "cap_grant",
        nr: nr::CAP_GRANT,
        ret: U64,
        args: &[
            ("uint64_t", "handle"),
            ("uint64_t", "target_shard"),
            ("uint64_t", "rights_mask"),
        ],
    },
    Call {
        name: "cap_revoke",
        nr: nr::CAP_REVOKE,
        ret: U64,
        args: &[("uint64_t", "handle")],
    },
    Call {
        name: "cap_restrict",
        nr: nr::CAP_RESTRICT,
        ret: U64,
        args: &[("uint64_t", "handle"), ("uint64_t", "rights")],
    },
    Call {
        name: "cap_inspect",
        nr: nr::CAP_INSPECT,
        ret: U64,
        args: &[("uint64_t", "handle")],
    },
    Call {
        name: "channel_create",
        nr: nr::CHANNEL_CREATE,
        ret: U64,
        args: &[("uint64_t", "capacity"), ("uint64_t", "msg_max")],
    },
    Call {
        name: "channel_send",
        nr: nr::CHANNEL_SEND,
        ret: U64,
        args: &[
            ("uint64_t", "channel"),
            ("const void *", "buf"),
            ("uint64_t", "len"),
        ],
    },
    Call {
        name: "channel_recv",
        nr: nr::CHANNEL_RECV,
        ret: U64,
        args: &[
            ("uint64_t", "channel"),
            ("void *", "buf"),
            ("uint64_t", "max"),
        ],
    },
    Call {
        name: "channel_send_timeout",
        nr: nr::CHANNEL_SEND_TIMEOUT,
        ret: U64,
        args: &[
            ("uint64_t", "channel"),
            ("const void *", "buf"),
            ("uint64_t", "len"),
            ("uint64_t", "timeout_ns"),
        ],
    },
    Call {
        name: "channel_recv_timeout",
        nr: nr::CHANNEL_RECV_TIMEOUT,
        ret: U64,
        args: &[
            ("uint64_t", "channel"),
            ("void *", "buf"),
            ("uint64_t", "max"),
            ("uint64_t", "timeout_ns"),
        ],
    },
    Call {
        name: "fs_open",
        nr: nr::FS_OPEN,
        ret: U64,
        args: &[("const char *", "path"), ("uint64_t", "path_len")],
    },
    Call {
        name: "fs_read",
        nr: nr::FS_READ,
        ret: U64,
        args: &[("uint64_t", "fd"), ("void *", "buf"), ("uint64_t", "max")],
    },
    Call {
        name: "fs_stat",
        nr: nr::FS_STAT,
        ret: U64,
        args: &[("uint64_t", "fd")],
    },
    Call {
        name: "fs_close",
        nr: nr::FS_CLOSE,
        ret: U64,
        args: &[("uint64_t", "fd")],
    },
    Call {
        name: "fs_map",
        nr: nr::FS_MAP,
        ret: U64,
        args: &[("uint64_t", "fd")],
    },
    Call {
        name: "gpu_dma",
        nr: nr::GPU_DMA,
        ret: U64,
        args: &[
            ("uint64_t", "target_partition"),
            ("uint64_t", "src_offset"),
            ("uint64_t", "dst_offset_len"),
        ],
    },
    Call {
        name: "pledge",
        nr: nr::PLEDGE,
        ret: U64,
        args: &[("uint64_t", "mask")],
    },
    Call {
        name: "gpu_unveil",
        nr: nr::GPU_UNVEIL,
        ret: U64,
        args: &[("uint64_t", "offset"), ("uint64_t", "size")],
    },
    Call {
        name: "mmap",
        nr: nr::MMAP,
        ret: U64,
        args: &[("uint64_t", "va"), ("uint64_t", "pages")],
    },
    Call {
        name: "dma_alloc",
        nr: nr::DMA_ALLOC,
        ret: U64,
        args: &[("uint64_t", "pages"), ("uint64_t *", "out_phys")],
    },
    Call {
        name: "mmio_map",
        nr: nr::MMIO_MAP,
        ret: U64,
        args: &[("uint64_t", "memory_handle")],
    },
    Call {
        name: "irq_bind",
        nr: nr::IRQ_BIND,
        ret: U64,
        args: &[("uint64_t", "irq_handle"), ("uint64_t", "channel_handle")],
    },
    Call {
        name: "irq_ack",
        nr: nr::IRQ_ACK,
        ret: U64,
        args: &[("uint64_t", "irq_handle")],
    },
    Call {
        name: "shard_create",
        nr: nr::SHARD_CREATE,
        ret: U64,
        args: &[
            ("const char *", "path"),
            ("uint64_t", "path_len"),
            ("uint64_t", "priority"),
        ],
    },
    Call {
        name: "shard_start",
        nr: nr::SHARD_START,
        ret: U64,
        args: &[("uint64_t", "shard_handle")],
    },
    Call {
        name: "shard_wait",
        nr: nr::SHARD_WAIT,
        ret: U64,
        args: &[("uint64_t", "shard_handle"), ("uint64_t", "timeout_ns")],
    },
    Call {
        name: "shard_kill",
        nr: nr::SHARD_KILL,
        ret: U64,
        args: &[("uint64_t", "shard_handle")],
    },
    Call {
        name: "yield",
        nr: nr::YIELD,
        ret: U64,
        args: &[],
    },
];

/// The `ShardInfo` fields: C declaration, Rust offset and size.
fn info_fields() -> Vec<(&'static str, usize, usize)> {
    vec![
        ("uint64_t magic", offset_of!(ShardInfo, magic), 8),
        ("uint32_t version", offset_of!(ShardInfo, version), 4),
        ("uint32_t shard_id", offset_of!(ShardInfo, shard_id), 4),
        ("uint32_t priority", offset_of!(ShardInfo, priority), 4),
        ("uint32_t name_len", offset_of!(ShardInfo, name_len), 4),
        ("uint8_t name[32]", offset_of!(ShardInfo, name), 32),
        ("uint64_t heap_start", offset_of!(ShardInfo, heap_start), 8),
        ("uint64_t heap_end", offset_of!(ShardInfo, heap_end), 8),
        ("uint64_t page_quota", offset_of!(ShardInfo, page_quota), 8),
        (
            "uint32_t boot_caps[16]",
            offset_of!(ShardInfo, boot_caps),
            64,
        ),
        ("uint32_t args_len", offset_of!(ShardInfo, args_len), 4),
        ("uint32_t _reserved", offset_of!(ShardInfo, _reserved), 4),
        ("uint8_t args[256]", offset_of!(ShardInfo, args), 256),
    ]
}

/// `InvalidArgument` → `INVALID_ARGUMENT`.
fn screaming(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn define(out: &mut String, name: &str, value: u64) {
    let v = if value > 0xffff {
        format!("0x{value:x}ULL")
    } else {
        format!("{value}")
    };
    writeln!(out, "#define COCONUT_{name} {v}").unwrap();
}

fn render() -> String {
    let mut h = String::new();
    for line in [
        "/* coconut.h: the coconut shard ABI for C shards.",
        " *",
        " * GENERATED from guest-kernel/abi (the Rust crate is the contract) by",
        " *   COCO_BLESS=1 cargo test -p coconut-abi --test coconut_h",
        " * Do not edit by hand: the test fails when this file and the crate differ.",
        " *",
        " * A call is one `syscall` instruction: RAX = number; RDI, RSI, RDX, R10, R8 =",
        " * arguments 0..4; the result is in RAX. RCX, R11 and the argument registers",
        " * are clobbered. A result r with coconut_is_error(r) is an error whose code",
        " * (COCONUT_E_*) is coconut_error_code(r).",
        " */",
        "#ifndef COCONUT_H",
        "#define COCONUT_H",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
    ] {
        h.push_str(line);
        h.push('\n');
    }

    h.push_str("/* System call numbers. */\n");
    for c in CALLS {
        define(
            &mut h,
            &format!("SYS_{}", c.name.to_ascii_uppercase()),
            c.nr,
        );
    }

    h.push_str("\n/* Errors: a raw result >= COCONUT_ERROR_FLOOR is -(code). */\n");
    define(&mut h, "ERROR_FLOOR", syscall::ERROR_FLOOR);
    for e in Error::ALL {
        define(
            &mut h,
            &format!("E_{}", screaming(&format!("{e:?}"))),
            e.code(),
        );
    }

    h.push_str("\n/* Limits. */\n");
    for (name, v) in [
        ("SERIAL_WRITE_MAX", syscall::SERIAL_WRITE_MAX),
        ("CHANNEL_MSG_MAX", syscall::CHANNEL_MSG_MAX),
        ("CHANNEL_CAPACITY_MAX", syscall::CHANNEL_CAPACITY_MAX),
        ("MMAP_PAGES_MAX", syscall::MMAP_PAGES_MAX),
        ("CAP_SLOTS", syscall::CAP_SLOTS as u64),
        ("FD_SLOTS", syscall::FD_SLOTS as u64),
        ("PATH_MAX", syscall::PATH_MAX),
        ("KILLED_STATUS_BASE", syscall::KILLED_STATUS_BASE),
        ("WAIT_FOREVER", syscall::WAIT_FOREVER),
    ] {
        define(&mut h, name, v);
    }

    h.push_str("\n/* Capability types (coconut_cap_inspect() >> 48). */\n");
    for (name, v) in [
        ("CHANNEL", cap_type::CHANNEL),
        ("SHARD", cap_type::SHARD),
        ("MEMORY", cap_type::MEMORY),
        ("GPU_DMA", cap_type::GPU_DMA),
        ("IRQ", cap_type::IRQ),
        ("FACTORY", cap_type::FACTORY),
    ] {
        define(&mut h, &format!("CAP_{name}"), v);
    }

    h.push_str("\n/* Rights bits (GRANT means the same for every type). */\n");
    for (name, v) in [
        ("SEND", rights::SEND),
        ("RECV", rights::RECV),
        ("GRANT", rights::GRANT),
        ("WAIT", rights::WAIT),
        ("KILL", rights::KILL),
        ("MEMORY_READ", rights::MEMORY_READ),
        ("MEMORY_WRITE", rights::MEMORY_WRITE),
        ("MEMORY_DMA", rights::MEMORY_DMA),
        ("GPU_WRITE", rights::GPU_WRITE),
        ("IRQ_RECEIVE", rights::IRQ_RECEIVE),
        ("FACTORY_CHANNEL", rights::FACTORY_CHANNEL),
        ("FACTORY_SHARD", rights::FACTORY_SHARD),
        ("ALL", rights::ALL),
    ] {
        define(&mut h, &format!("RIGHT_{name}"), v);
    }

    h.push_str("\n/* Pledge classes (coconut_pledge keeps the classes in its mask). */\n");
    for (name, v) in [
        ("SERIAL", pledge::SERIAL),
        ("CHANNEL", pledge::CHANNEL),
        ("GPU_DMA", pledge::GPU_DMA),
        ("TIME", pledge::TIME),
        ("FS", pledge::FS),
        ("MEMORY", pledge::MEMORY),
        ("CAPS", pledge::CAPS),
        ("SHARD", pledge::SHARD),
        ("IRQ", pledge::IRQ),
        ("ALL", pledge::ALL),
    ] {
        define(&mut h, &format!("PLEDGE_{name}"), v);
    }

    h.push_str("\n/* Address-space layout. */\n");
    for (name, v) in [
        ("USER_MIN", config::USER_MIN),
        ("USER_END", config::USER_END),
        ("INFO_VA", config::INFO_VA),
        ("STACK_TOP", config::STACK_TOP),
        ("STACK_PAGES", config::STACK_PAGES),
        ("FILE_MAP_BASE", config::FILE_MAP_BASE),
        ("DEVICE_MAP_BASE", config::DEVICE_MAP_BASE),
        ("INFO_MAGIC", config::INFO_MAGIC),
        ("INFO_VERSION", u64::from(config::INFO_VERSION)),
    ] {
        define(&mut h, name, v);
    }

    h.push_str("\n/* The read-only page at COCONUT_INFO_VA. */\nstruct coconut_shard_info {\n");
    for (decl, _, _) in info_fields() {
        writeln!(h, "    {decl};").unwrap();
    }
    h.push_str("};\n\n");
    writeln!(
        h,
        "_Static_assert(sizeof(struct coconut_shard_info) == {}, \"ShardInfo size\");",
        size_of::<ShardInfo>()
    )
    .unwrap();
    for (decl, offset, _) in info_fields() {
        let field = decl.rsplit(' ').next().unwrap().split('[').next().unwrap();
        writeln!(
            h,
            "_Static_assert(offsetof(struct coconut_shard_info, {field}) == {offset}, \"ShardInfo.{field}\");"
        )
        .unwrap();
    }
    h.push_str(
        "\nstatic inline const struct coconut_shard_info *coconut_info(void) {\n    \
         return (const struct coconut_shard_info *)(uintptr_t)COCONUT_INFO_VA;\n}\n\n\
         static inline int coconut_is_error(uint64_t r) { return r >= COCONUT_ERROR_FLOOR; }\n\
         static inline uint64_t coconut_error_code(uint64_t r) { return (uint64_t)0 - r; }\n",
    );

    h.push_str("\n/* Raw calls. */\n");
    for n in 0..=5usize {
        let params: Vec<String> = (0..n).map(|i| format!(", uint64_t a{i}")).collect();
        writeln!(
            h,
            "static inline uint64_t coconut_syscall{n}(uint64_t nr{}) {{",
            params.concat()
        )
        .unwrap();
        let mut outs = vec![String::from("\"+a\"(nr)")];
        for i in 0..n {
            match i {
                0 => outs.push(String::from("\"+D\"(a0)")),
                1 => outs.push(String::from("\"+S\"(a1)")),
                2 => outs.push(String::from("\"+d\"(a2)")),
                3 => {
                    h.push_str("    register uint64_t r10 __asm__(\"r10\") = a3;\n");
                    outs.push(String::from("\"+r\"(r10)"));
                }
                _ => {
                    h.push_str("    register uint64_t r8 __asm__(\"r8\") = a4;\n");
                    outs.push(String::from("\"+r\"(r8)"));
                }
            }
        }
        writeln!(
            h,
            "    __asm__ volatile(\"syscall\" : {} : : \"rcx\", \"r11\", \"memory\");\n    return nr;\n}}",
            outs.join(", ")
        )
        .unwrap();
    }

    h.push_str(
        "\n/* One wrapper per call (see guest-kernel/abi/src/syscall.rs for meanings). */\n",
    );
    for c in CALLS {
        let params = if c.args.is_empty() {
            String::from("void")
        } else {
            c.args
                .iter()
                .map(|(t, n)| format!("{t}{}{n}", if t.ends_with('*') { "" } else { " " }))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let args: String = c
            .args
            .iter()
            .map(|(t, n)| {
                if t.contains('*') {
                    format!(", (uint64_t)(uintptr_t){n}")
                } else {
                    format!(", {n}")
                }
            })
            .collect();
        let call = format!(
            "coconut_syscall{}(COCONUT_SYS_{}{args})",
            c.args.len(),
            c.name.to_ascii_uppercase()
        );
        if c.ret == "void" {
            writeln!(
                h,
                "static inline __attribute__((noreturn)) void coconut_{}({params}) {{\n    (void){call};\n    __builtin_unreachable();\n}}",
                c.name
            )
            .unwrap();
        } else {
            writeln!(
                h,
                "static inline {} coconut_{}({params}) {{\n    return {call};\n}}",
                c.ret, c.name
            )
            .unwrap();
        }
    }
    h.push_str("\n#endif /* COCONUT_H */\n");
    h
}

fn header_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include/coconut.h")
}

#[test]
fn every_call_is_in_the_table() {
    // A new call in the crate gets a pledge class (the abi's own test says
    // so), so every numbered call with a class, plus exit/yield/pledge,
    // must be rendered.
    for n in 0..4096u64 {
        let is_call =
            pledge::class_of(n).is_some() || [nr::EXIT, nr::YIELD, nr::PLEDGE].contains(&n);
        assert_eq!(
            is_call,
            CALLS.iter().any(|c| c.nr == n),
            "call {n} and the header table disagree"
        );
    }
    let mut sorted: Vec<u64> = CALLS.iter().map(|c| c.nr).collect();
    sorted.dedup();
    assert_eq!(sorted.len(), CALLS.len(), "no number twice");
    assert!(CALLS.iter().all(|c| c.args.len() <= 5));
}

#[test]
fn shard_info_fields_cover_the_struct() {
    let fields = info_fields();
    let total: usize = fields.iter().map(|f| f.2).sum();
    assert_eq!(
        total,
        size_of::<ShardInfo>(),
        "a ShardInfo field is missing from the header (or padding appeared)"
    );
    let mut end = 0;
    for (decl, offset, size) in fields {
        assert_eq!(offset, end, "{decl} follows the previous field");
        end = offset + size;
    }
}

#[test]
fn checked_in_header_matches_the_crate() {
    let want = render();
    let path = header_path();
    if std::env::var_os("COCO_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale; regenerate with COCO_BLESS=1 cargo test -p coconut-abi --test coconut_h",
        path.display()
    );
}

#[test]
fn header_compiles_with_a_c_compiler() {
    let cc = std::env::var("CC").unwrap_or_else(|_| String::from("cc"));
    if Command::new(&cc).arg("--version").output().is_err() {
        eprintln!("SKIPPED: no C compiler `{cc}` (install gcc: scripts/setup does)");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("coconut_h");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("uses_coconut_h.c");
    std::fs::write(
        &src,
        r#"#include "coconut.h"
uint64_t use_everything(void) {
    static const char msg[] = "hello from C\n";
    uint64_t r = coconut_serial_write(msg, sizeof msg - 1);
    uint64_t phys = 0;
    char buf[COCONUT_CHANNEL_MSG_MAX];
    r += coconut_channel_recv_timeout(0, buf, sizeof buf, COCONUT_WAIT_FOREVER);
    r += coconut_dma_alloc(1, &phys);
    r += coconut_fs_open("/boot/shards.toml", 17);
    r += coconut_time() + coconut_yield();
    if (coconut_is_error(r) && coconut_error_code(r) == COCONUT_E_NO_SLOTS)
        coconut_exit(1);
    return r + coconut_info()->shard_id + phys;
}
"#,
    )
    .unwrap();
    let out = Command::new(&cc)
        .args([
            "-std=c11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-ffreestanding",
            "-c",
        ])
        .arg("-I")
        .arg(header_path().parent().unwrap())
        .arg(&src)
        .arg("-o")
        .arg(dir.join("uses_coconut_h.o"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cc} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
