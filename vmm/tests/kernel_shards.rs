//! Kernel-level shard tests: the guest kernel loads tiny hand-assembled
//! shards (built here as ELF files, so these tests need no shard toolchain)
//! from a ramdisk made with coco-mkext2, runs them in ring 3 through the
//! gate this machine needs, kills a faulting one while others finish, prints
//! the profiling table and ends with the documented exit status.

mod common;

use std::path::{Path, PathBuf};

use common::run;

const KERNEL: &str = "builtin:guest-kernel";
const LOAD_VA: u64 = 0x40_0000;
/// ELF header + one program header.
const HEADERS: usize = 64 + 56;

/// An ELF64 executable with one R+X PT_LOAD at LOAD_VA holding `code`
/// (which starts right after the headers).
fn shard_elf(code: &[u8]) -> Vec<u8> {
    let total = (HEADERS + code.len()) as u64;
    let entry = LOAD_VA + HEADERS as u64;
    let mut e = Vec::new();
    e.extend_from_slice(b"\x7fELF\x02\x01\x01\0");
    e.extend_from_slice(&[0; 8]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&62u16.to_le_bytes()); // x86-64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&entry.to_le_bytes());
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    e.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    e.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    e.extend_from_slice(&1u16.to_le_bytes()); // phnum
    e.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
    assert_eq!(e.len(), 64);
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R+X
    e.extend_from_slice(&0u64.to_le_bytes()); // offset
    e.extend_from_slice(&LOAD_VA.to_le_bytes()); // vaddr
    e.extend_from_slice(&LOAD_VA.to_le_bytes()); // paddr
    e.extend_from_slice(&total.to_le_bytes()); // filesz
    e.extend_from_slice(&total.to_le_bytes()); // memsz
    e.extend_from_slice(&4096u64.to_le_bytes()); // align
    assert_eq!(e.len(), HEADERS);
    e.extend_from_slice(code);
    e
}

/// `serial_write(msg)` then `exit(code)`, with `msg` placed after the code.
fn hello(msg: &str, code: u32) -> Vec<u8> {
    let mut c = vec![0x48, 0x8d, 0x3d]; // lea rdi, [rip + rel32]
    let lea_end = 7;
    let body_len = 7 + 5 + 5 + 2 + 5 + 5 + 2 + 2; // up to and including ud2
    c.extend_from_slice(&((body_len - lea_end) as i32).to_le_bytes());
    c.push(0xbe); // mov esi, len
    c.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    c.extend_from_slice(&[0xb8, 1, 0, 0, 0]); // mov eax, SERIAL_WRITE
    c.extend_from_slice(&[0x0f, 0x05]); // syscall
    c.push(0xbf); // mov edi, code
    c.extend_from_slice(&code.to_le_bytes());
    c.extend_from_slice(&[0xb8, 0, 0, 0, 0]); // mov eax, EXIT
    c.extend_from_slice(&[0x0f, 0x05]); // syscall
    c.extend_from_slice(&[0x0f, 0x0b]); // ud2: exit never returns
    assert_eq!(c.len(), body_len);
    c.extend_from_slice(msg.as_bytes());
    c
}

/// Writes `rounds` lines, yielding after each, then exits 0.
fn yielder(msg: &str, rounds: u32) -> Vec<u8> {
    let mut c = vec![0xbb]; // mov ebx, rounds
    c.extend_from_slice(&rounds.to_le_bytes());
    let top = c.len(); // 5
    // lea rdi,[rip+rel]; mov esi,len; mov eax,1; syscall; mov eax,62;
    // syscall; dec ebx; jnz top; xor edi,edi; xor eax,eax; syscall; ud2
    let loop_len = 7 + 5 + 5 + 2 + 5 + 2 + 2 + 2;
    let tail_len = 2 + 2 + 2 + 2;
    let msg_at = top + loop_len + tail_len;
    c.extend_from_slice(&[0x48, 0x8d, 0x3d]);
    c.extend_from_slice(&((msg_at - (top + 7)) as i32).to_le_bytes());
    c.push(0xbe);
    c.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    c.extend_from_slice(&[0xb8, 1, 0, 0, 0, 0x0f, 0x05]);
    c.extend_from_slice(&[0xb8, 62, 0, 0, 0, 0x0f, 0x05]);
    c.extend_from_slice(&[0xff, 0xcb]); // dec ebx
    let jnz_end = c.len() + 2;
    c.extend_from_slice(&[0x75, (top as i64 - jnz_end as i64) as i8 as u8]);
    c.extend_from_slice(&[0x31, 0xff, 0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b]);
    assert_eq!(c.len(), msg_at);
    c.extend_from_slice(msg.as_bytes());
    c
}

/// Counts down from 2^30 in ring 3 (no system calls), then exits 0.
fn spinner() -> Vec<u8> {
    vec![
        0xb9, 0, 0, 0, 0x40, // mov ecx, 0x40000000
        0x48, 0xff, 0xc9, // dec rcx
        0x75, 0xfb, // jnz dec
        0x31, 0xff, 0x31, 0xc0, 0x0f, 0x05, // exit(0)
        0x0f, 0x0b,
    ]
}

/// `fs_open(path)`, `fs_map(fd)`, then exits with the mapping's first
/// byte plus its last byte (at `size - 1`): the file must be readable
/// through the mapping at both ends.
fn mapper(path: &str, size: u64) -> Vec<u8> {
    let mut c = vec![0x48, 0x8d, 0x3d, 0, 0, 0, 0]; // lea rdi, [rip + path]
    c.push(0xbe); // mov esi, len
    c.extend_from_slice(&(path.len() as u32).to_le_bytes());
    c.extend_from_slice(&[0xb8, 30, 0, 0, 0, 0x0f, 0x05]); // fs_open
    c.extend_from_slice(&[0x48, 0x89, 0xc7]); // mov rdi, rax
    c.extend_from_slice(&[0xb8, 34, 0, 0, 0, 0x0f, 0x05]); // fs_map
    c.extend_from_slice(&[0x48, 0x89, 0xc3]); // mov rbx, rax
    c.extend_from_slice(&[0x0f, 0xb6, 0x3b]); // movzx edi, byte [rbx]
    c.extend_from_slice(&[0x48, 0xb9]); // movabs rcx, size - 1
    c.extend_from_slice(&(size - 1).to_le_bytes());
    c.extend_from_slice(&[0x0f, 0xb6, 0x0c, 0x0b]); // movzx ecx, byte [rbx + rcx]
    c.extend_from_slice(&[0x01, 0xcf]); // add edi, ecx
    c.extend_from_slice(&[0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b]); // exit
    let path_at = c.len();
    c[3..7].copy_from_slice(&((path_at - 7) as i32).to_le_bytes());
    c.extend_from_slice(path.as_bytes());
    c
}

/// `channel_recv(handle 0, stack buffer, 64)`, then exits with the result
/// (exit keeps its low 32 bits).
fn receiver() -> Vec<u8> {
    vec![
        0x31, 0xff, // xor edi, edi (boot capability 0)
        0x48, 0x89, 0xe6, // mov rsi, rsp
        0x48, 0x81, 0xee, 0, 1, 0, 0, // sub rsi, 256
        0xba, 64, 0, 0, 0, // mov edx, 64
        0xb8, 22, 0, 0, 0, // mov eax, CHANNEL_RECV
        0x0f, 0x05, // syscall
        0x89, 0xc7, // mov edi, eax
        0x31, 0xc0, 0x0f, 0x05, // exit
        0x0f, 0x0b,
    ]
}

/// `channel_recv_timeout(handle 0, stack buffer, 64, 50 ms)`, then exits
/// with the result (exit keeps its low 32 bits).
fn timed_receiver() -> Vec<u8> {
    let mut c = vec![
        0x31, 0xff, // xor edi, edi
        0x48, 0x89, 0xe6, // mov rsi, rsp
        0x48, 0x81, 0xee, 0, 1, 0, 0, // sub rsi, 256
        0xba, 64, 0, 0, 0, // mov edx, 64
        0x41, 0xba, // mov r10d, 50 ms
    ];
    c.extend_from_slice(&50_000_000u32.to_le_bytes());
    c.extend_from_slice(&[0xb8, 24, 0, 0, 0, 0x0f, 0x05]); // recv_timeout
    c.extend_from_slice(&[0x89, 0xc7, 0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b]); // exit(eax)
    c
}

/// Checks that XMM1 starts zero (a fresh shard gets a clean FPU image),
/// puts `k` in XMM0 and XMM1, then yields 50 times checking XMM0 still
/// holds `k` after each switch; exits 0, or 1 on a mismatch.
fn sse_keeper(k: u32) -> Vec<u8> {
    let k = k.to_le_bytes();
    let mut c = vec![
        0x66, 0x0f, 0x7e, 0xca, // 0: movd edx, xmm1
        0x85, 0xd2, // 4: test edx, edx
        0x75, 49, // 6: jnz fail (57)
        0xb8, k[0], k[1], k[2], k[3], // 8: mov eax, k
        0x66, 0x0f, 0x6e, 0xc0, // 13: movd xmm0, eax
        0x66, 0x0f, 0x6e, 0xc8, // 17: movd xmm1, eax
        0xbb, 50, 0, 0, 0, // 21: mov ebx, 50
        0xb8, 62, 0, 0, 0, // 26: mov eax, YIELD
        0x0f, 0x05, // 31: syscall
        0x66, 0x0f, 0x7e, 0xc1, // 33: movd ecx, xmm0
        0x81, 0xf9, k[0], k[1], k[2], k[3], // 37: cmp ecx, k
        0x75, 12, // 43: jnz fail (57)
        0xff, 0xcb, // 45: dec ebx
        0x75, 0xe9, // 47: jnz 26
        0x31, 0xff, 0x31, 0xc0, 0x0f, 0x05, // 49: exit(0)
        0x0f, 0x0b, // 55
    ];
    c.extend_from_slice(&[0xbf, 1, 0, 0, 0, 0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b]); // 57: exit(1)
    c
}

/// Binds IRQ capability 0 to channel capability 1, then twice: waits up to
/// 2 s for a notification, checks it is one byte naming `line`, acks.
/// Exits 0, or 1 at the first failure.
fn irq_waiter(line: u8) -> Vec<u8> {
    let mut c: Vec<u8> = Vec::new();
    let mut to_fail: Vec<usize> = Vec::new(); // rel8 slots that jump to fail
    let jne_fail = |c: &mut Vec<u8>, to_fail: &mut Vec<usize>| {
        c.extend_from_slice(&[0x75, 0]);
        to_fail.push(c.len() - 1);
    };
    c.extend_from_slice(&[0x31, 0xff, 0xbe, 1, 0, 0, 0]); // edi = 0, esi = 1
    c.extend_from_slice(&[0xb8, 46, 0, 0, 0, 0x0f, 0x05]); // irq_bind
    c.extend_from_slice(&[0x48, 0x85, 0xc0]); // test rax, rax
    jne_fail(&mut c, &mut to_fail);
    c.extend_from_slice(&[0xbb, 2, 0, 0, 0]); // mov ebx, 2
    let top = c.len();
    c.extend_from_slice(&[0xbf, 1, 0, 0, 0]); // mov edi, 1
    c.extend_from_slice(&[0x48, 0x89, 0xe6, 0x48, 0x81, 0xee, 0, 1, 0, 0]); // rsi = rsp - 256
    c.extend_from_slice(&[0xba, 64, 0, 0, 0]); // mov edx, 64
    c.extend_from_slice(&[0x41, 0xba]); // mov r10d, 2 s
    c.extend_from_slice(&2_000_000_000u32.to_le_bytes());
    c.extend_from_slice(&[0xb8, 24, 0, 0, 0, 0x0f, 0x05]); // channel_recv_timeout
    c.extend_from_slice(&[0x48, 0x83, 0xf8, 0x01]); // cmp rax, 1
    jne_fail(&mut c, &mut to_fail);
    c.extend_from_slice(&[0x0f, 0xb6, 0x8c, 0x24, 0x00, 0xff, 0xff, 0xff]); // movzx ecx, byte [rsp-256]
    c.extend_from_slice(&[0x83, 0xf9, line]); // cmp ecx, line
    jne_fail(&mut c, &mut to_fail);
    c.extend_from_slice(&[0x31, 0xff, 0xb8, 47, 0, 0, 0, 0x0f, 0x05]); // irq_ack(0)
    c.extend_from_slice(&[0xff, 0xcb, 0x75]); // dec ebx; jnz top
    c.push((top as i64 - (c.len() as i64 + 1)) as i8 as u8);
    c.extend_from_slice(&[0x31, 0xff, 0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b]); // exit(0)
    let fail = c.len();
    c.extend_from_slice(&[0xbf, 1, 0, 0, 0, 0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b]); // exit(1)
    for at in to_fail {
        c[at] = (fail - (at + 1)) as u8;
    }
    c
}

/// `dma_alloc(2, &phys)` (phys on the stack), writes both pages through the
/// returned address, and exits with the low 32 bits of the physical
/// address it learned (page aligned, so the low 12 bits are 0) ORed with 1
/// if the call failed.
fn dma_user() -> Vec<u8> {
    let mut c = vec![
        0xbf, 2, 0, 0, 0, // mov edi, 2
        0x48, 0x89, 0xe6, 0x48, 0x83, 0xee, 0x08, // rsi = rsp - 8
        0x48, 0xc7, 0x06, 0, 0, 0, 0, // mov qword [rsi], 0
        0xb8, 44, 0, 0, 0, 0x0f, 0x05, // dma_alloc
        0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, // cmp rax, -4095
        0x73, 0, // jae fail (patched)
        0x48, 0xc7, 0x00, 0x5a, 0, 0, 0, // mov qword [rax], 0x5a
        0x48, 0xc7, 0x80, 0x00, 0x10, 0, 0, 0x5a, 0, 0, 0, // mov qword [rax+4096], 0x5a
        0x48, 0x8b, 0x7c, 0x24, 0xf8, // mov rdi, [rsp-8]
        0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b, // exit(phys)
    ];
    let fail = c.len();
    c[33] = (fail - 34) as u8;
    c.extend_from_slice(&[0xbf, 1, 0, 0, 0, 0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b]); // exit(1)
    c
}

/// Sets DF, counts down from 2^30 (timer ticks interrupt it), then exits
/// 0 if DF is still set, 1 if an interrupt return cleared it.
fn direction_keeper() -> Vec<u8> {
    vec![
        0xfd, // std
        0xb9, 0, 0, 0, 0x40, // mov ecx, 0x40000000
        0x48, 0xff, 0xc9, 0x75, 0xfb, // dec rcx; jnz
        0x9c, 0x5f, // pushfq; pop rdi
        0xc1, 0xef, 0x0a, // shr edi, 10
        0x83, 0xe7, 0x01, // and edi, 1
        0x83, 0xf7, 0x01, // xor edi, 1
        0xfc, // cld
        0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b, // exit(edi)
    ]
}

/// `mmio_map(handle 0)`, reads the 32-bit register at offset 0 and exits
/// with its high 16 bits (or 1 if the call failed).
fn mmio_reader() -> Vec<u8> {
    let mut c = vec![
        0x31, 0xff, // xor edi, edi
        0xb8, 45, 0, 0, 0, 0x0f, 0x05, // mmio_map
        0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, // cmp rax, -4095
        0x73, 0, // jae fail (patched)
        0x8b, 0x38, // mov edi, [rax]
        0xc1, 0xef, 0x10, // shr edi, 16
        0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b, // exit(edi)
    ];
    let fail = c.len();
    c[16] = (fail - 17) as u8;
    c.extend_from_slice(&[0xbf, 1, 0, 0, 0, 0x31, 0xc0, 0x0f, 0x05, 0x0f, 0x0b]); // exit(1)
    c
}

/// Reads address 0x10 (unmapped): a page fault in ring 3.
fn faulter() -> Vec<u8> {
    vec![0x48, 0x8b, 0x04, 0x25, 0x10, 0, 0, 0, 0x0f, 0x0b]
}

/// A ramdisk holding `files` (path, bytes) and a manifest at /boot/test.toml.
fn ramdisk(dir: &Path, files: &[(&str, Vec<u8>)], manifest: &str) -> PathBuf {
    let root = dir.join("root");
    for (path, bytes) in files {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
    }
    std::fs::create_dir_all(root.join("boot")).unwrap();
    std::fs::write(root.join("boot/test.toml"), manifest).unwrap();
    let image = dir.join("ramdisk.ext2");
    let options = coco_mkext2::Options {
        label: "kernel-test".into(),
        ..Default::default()
    };
    coco_mkext2::write_image(&root, &image, &options).unwrap();
    image
}

fn boot(name: &str, image: &Path) -> common::Run {
    let r = run(&[
        "boot",
        "--name",
        name,
        "--kernel",
        KERNEL,
        "--initrd",
        image.to_str().unwrap(),
        "--memory",
        "64",
        "--cmdline",
        "coco.manifest=/boot/test.toml",
        "--timings",
        "json",
    ]);
    r.assert_no_panic();
    // COCO_SHOW_CONSOLE=1 prints the guest's console (for measuring by hand).
    if std::env::var_os("COCO_SHOW_CONSOLE").is_some() {
        eprintln!("{}", r.console(name).join("\n"));
    }
    r
}

fn on_kvm_pvm() -> bool {
    Path::new("/sys/module/kvm_pvm").exists()
}

fn profile_line(console: &[String], id: u32) -> &str {
    let prefix = format!("profile: id={id} ");
    console
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {console:?}"))
}

#[test]
fn a_shard_runs_in_ring_3_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[("/bin/hello", shard_elf(&hello("hello from ring 3\n", 0)))],
        "# one shard\n[[shard]]\nname = \"hello\"\npath = \"/bin/hello\"\npriority = 1\n",
    );
    let r = boot("k1", &image);
    let console = r.console("k1");
    assert_eq!(r.status, Some(0), "{console:#?}\n{}", r.stderr);
    let gate = if on_kvm_pvm() { "trap" } else { "syscall" };
    assert!(
        console.contains(&format!("syscall gate: {gate}")),
        "{console:?}"
    );
    let at = |line: &str| {
        console
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("missing {line:?} in {console:#?}"))
    };
    // The clock runs on the TSC frequency the VMM passed.
    assert!(
        console
            .iter()
            .any(|l| l.starts_with("timer: lapic ") && l.ends_with(" kHz")),
        "{console:#?}"
    );
    let loaded = at("shard 0 (hello) loaded from /bin/hello");
    let said = at("hello from ring 3");
    let exited = at("shard 0 (hello) exited: 0");
    assert!(loaded < said && said < exited, "{console:#?}");
    assert!(
        console.contains(&"profile: shards=1".to_string()),
        "{console:?}"
    );
    // Both calls came through the gate this machine needs, none the other way.
    let gates = if on_kvm_pvm() {
        "gate: trap, syscall entries 0, trap entries 2"
    } else {
        "gate: syscall, syscall entries 2, trap entries 0"
    };
    assert!(console.contains(&gates.to_string()), "{console:#?}");
    let p = profile_line(&console, 0);
    assert!(p.starts_with("profile: id=0 name=hello syscalls=2 "), "{p}");
    assert!(p.ends_with(" exit=0"), "{p}");
    assert_eq!(console.last().unwrap(), "all shards ended: status 0");
    // The first-shard milestone was reported after kernel-ready.
    assert!(r.stderr.contains("\"id\":3"), "{}", r.stderr);
}

#[test]
fn a_faulting_shard_is_killed_while_the_others_finish() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[
            ("/bin/a", shard_elf(&yielder("a\n", 3))),
            ("/bin/fault", shard_elf(&faulter())),
            ("/bin/b", shard_elf(&yielder("b\n", 3))),
        ],
        "[[shard]]\nname = \"a\"\npath = \"/bin/a\"\n\
         [[shard]]\nname = \"fault\"\npath = \"/bin/fault\"\n\
         [[shard]]\nname = \"b\"\npath = \"/bin/b\"\n",
    );
    let r = boot("k2", &image);
    let console = r.console("k2");
    assert_eq!(
        r.status,
        Some(i32::from(coconut_abi::exit::SHARD_FAILED)),
        "{console:#?}\n{}",
        r.stderr
    );
    let kill = format!(
        "shard 1 (fault) killed: page fault at 0x10 (rip {:#x}, error 0x4)",
        LOAD_VA + HEADERS as u64
    );
    assert!(console.contains(&kill), "{console:#?}");
    // The other two ran to completion, interleaved by yield.
    assert_eq!(
        console.iter().filter(|l| *l == "a").count(),
        3,
        "{console:#?}"
    );
    assert_eq!(
        console.iter().filter(|l| *l == "b").count(),
        3,
        "{console:#?}"
    );
    let first_a = console.iter().position(|l| l == "a").unwrap();
    let first_b = console.iter().position(|l| l == "b").unwrap();
    let last_a = console.iter().rposition(|l| l == "a").unwrap();
    assert!(first_b < last_a && first_a < first_b, "{console:#?}");
    assert!(console.contains(&"shard 0 (a) exited: 0".to_string()));
    assert!(console.contains(&"shard 2 (b) exited: 0".to_string()));
    assert!(console.contains(&"profile: shards=3".to_string()));
    assert!(profile_line(&console, 1).ends_with(" exit=killed:14"));
    assert!(profile_line(&console, 0).contains(" syscalls=7 "));
    assert!(profile_line(&console, 2).ends_with(" exit=0"));
    assert_eq!(console.last().unwrap(), "all shards ended: status 114");
}

#[test]
fn a_non_zero_exit_makes_the_vm_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[
            ("/bin/ok", shard_elf(&hello("ok\n", 0))),
            ("/sub/dir/three", shard_elf(&hello("three\n", 3))),
        ],
        "[[shard]]\nname = \"ok\"\npath = \"/bin/ok\"\n\
         [[shard]]\nname = \"three\"\npath = \"/sub/dir/three\"\npriority = 0\n",
    );
    let r = boot("k3", &image);
    let console = r.console("k3");
    assert_eq!(
        r.status,
        Some(i32::from(coconut_abi::exit::SHARD_FAILED)),
        "{console:#?}"
    );
    // Priority 0 runs first.
    let three = console.iter().position(|l| l == "three").unwrap();
    let ok = console.iter().position(|l| l == "ok").unwrap();
    assert!(three < ok, "{console:#?}");
    assert!(profile_line(&console, 1).ends_with(" exit=3"));
    assert!(profile_line(&console, 0).ends_with(" exit=0"));
}

#[test]
fn a_bad_manifest_is_reported_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[],
        "[[shard]]\nname = \"x\"\npath = \"/bin/x\"\npriority = 9\n",
    );
    let r = boot("k4", &image);
    let console = r.console("k4");
    assert_eq!(
        r.status,
        Some(i32::from(coconut_abi::exit::BAD_MANIFEST)),
        "{console:#?}"
    );
    assert!(
        console.contains(&"shards: /boot/test.toml: shards.toml:4: value out of range".to_string()),
        "{console:#?}"
    );
}

#[test]
fn the_timer_preempts_a_shard_that_never_enters_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[
            ("/bin/spin", shard_elf(&spinner())),
            ("/bin/hello", shard_elf(&hello("preempted it\n", 0))),
        ],
        "[[shard]]\nname = \"spin\"\npath = \"/bin/spin\"\n\
         [[shard]]\nname = \"hello\"\npath = \"/bin/hello\"\n",
    );
    let r = boot("k5", &image);
    let console = r.console("k5");
    assert_eq!(r.status, Some(0), "{console:#?}");
    // Same priority, spin first: only a timer tick lets hello run before
    // spin's countdown ends.
    let said = console.iter().position(|l| l == "preempted it").unwrap();
    let spun = console
        .iter()
        .position(|l| l == "shard 0 (spin) exited: 0")
        .unwrap();
    assert!(said < spun, "{console:#?}");
    let p = profile_line(&console, 0);
    assert!(p.contains(" syscalls=1 "), "{p}");
    assert!(
        !p.contains(" switches=1 "),
        "spin was switched back to: {p}"
    );
}

#[test]
fn fs_map_maps_a_60_mb_file_without_copying_it() {
    const SIZE: u64 = 60 << 20;
    let dir = tempfile::tempdir().unwrap();
    let mut big = vec![0u8; SIZE as usize];
    big[0] = 3;
    big[SIZE as usize - 1] = 4;
    let image = ramdisk(
        dir.path(),
        &[
            ("/bin/map", shard_elf(&mapper("/data/big.bin", SIZE))),
            ("/data/big.bin", big),
        ],
        "[[shard]]\nname = \"map\"\npath = \"/bin/map\"\n",
    );
    let r = run(&[
        "boot",
        "--name",
        "k6",
        "--kernel",
        KERNEL,
        "--initrd",
        image.to_str().unwrap(),
        "--memory",
        "256",
        "--cmdline",
        "coco.manifest=/boot/test.toml",
    ]);
    r.assert_no_panic();
    let console = r.console("k6");
    if std::env::var_os("COCO_SHOW_CONSOLE").is_some() {
        eprintln!("{}", console.join("\n"));
    }
    // Exit status 7 = first byte 3 + last byte 4, read through the mapping.
    assert!(
        console.contains(&"shard 0 (map) exited: 7".to_string()),
        "{console:#?}"
    );
    assert_eq!(
        r.status,
        Some(i32::from(coconut_abi::exit::SHARD_FAILED)),
        "{console:#?}"
    );
    // Report what the three calls (open, map, exit) cost: a measurement
    // for the docs, not an assertion.
    let p = profile_line(&console, 0);
    let per: u64 = p
        .split(' ')
        .find_map(|w| w.strip_prefix("cycles_per_syscall="))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let khz: u64 = console
        .iter()
        .find_map(|l| l.split("tsc_khz=").nth(1))
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    eprintln!(
        "fs_map of 60 MiB: open+map+exit took {:.1} ms of kernel time ({p})",
        (3 * per) as f64 / khz as f64
    );
}

#[test]
fn shards_that_can_never_wake_are_ended_not_left_idling() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[
            ("/bin/recv", shard_elf(&receiver())),
            ("/bin/hello", shard_elf(&hello("done\n", 0))),
        ],
        "[[channel]]\nname = \"c\"\ncapacity = 1\nmsg_max = 64\n\
         [[shard]]\nname = \"r1\"\npath = \"/bin/recv\"\ncaps = [\"channel:c:recv\"]\n\
         [[shard]]\nname = \"r2\"\npath = \"/bin/recv\"\ncaps = [\"channel:c:recv\"]\n\
         [[shard]]\nname = \"hello\"\npath = \"/bin/hello\"\n",
    );
    let r = boot("k7", &image);
    let console = r.console("k7");
    assert_eq!(
        r.status,
        Some(i32::from(coconut_abi::exit::SHARD_FAILED)),
        "{console:#?}"
    );
    // Both receivers block on an empty channel nobody can send to; once
    // hello is gone the kernel ends them instead of idling forever.
    for (id, name) in [(0, "r1"), (1, "r2")] {
        let line = format!(
            "shard {id} ({name}) killed: waits forever (every shard is blocked, nothing can wake them)"
        );
        assert!(console.contains(&line), "{console:#?}");
        assert!(profile_line(&console, id).ends_with(" exit=killed:255"));
    }
    assert!(profile_line(&console, 2).ends_with(" exit=0"));
}

#[test]
fn a_timed_wait_idles_the_cpu_and_ends_with_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[("/bin/wait", shard_elf(&timed_receiver()))],
        "[[channel]]\nname = \"c\"\ncapacity = 1\nmsg_max = 64\n\
         [[shard]]\nname = \"w\"\npath = \"/bin/wait\"\ncaps = [\"channel:c:recv\"]\n",
    );
    let r = boot("k8", &image);
    let console = r.console("k8");
    // Nothing else runs: the kernel idles (sti; hlt) until the deadline,
    // then the call returns TimedOut; exit keeps the low 32 bits of -10.
    let code = coconut_abi::syscall::Error::TimedOut.to_raw() as u32;
    assert!(
        console.contains(&format!("shard 0 (w) exited: {code}")),
        "{console:#?}"
    );
    let p = profile_line(&console, 0);
    assert!(p.contains(" syscalls=2 "), "{p}");
}

#[test]
fn each_shard_keeps_its_own_sse_registers_and_starts_clean() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[
            ("/bin/a", shard_elf(&sse_keeper(0x1111_1111))),
            ("/bin/b", shard_elf(&sse_keeper(0x2222_2222))),
        ],
        "[[shard]]\nname = \"a\"\npath = \"/bin/a\"\n\
         [[shard]]\nname = \"b\"\npath = \"/bin/b\"\n",
    );
    let r = boot("k9", &image);
    let console = r.console("k9");
    assert_eq!(r.status, Some(0), "{console:#?}");
    for id in [0, 1] {
        let p = profile_line(&console, id);
        assert!(p.ends_with(" exit=0"), "{p}");
        // They alternated: each was switched to after most of its yields.
        let switches: u64 = p
            .split(' ')
            .find_map(|w| w.strip_prefix("switches="))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(switches > 10, "{p}");
    }
}

/// The `syscall` gate on this machine: QEMU's TCG (no KVM) executes
/// `syscall` like hardware, so the same image boots with `qemu -kernel`
/// (PVH) and its shards enter through LSTAR in ring 0. The nested tier
/// checks the same gate on real kvm_amd.
#[test]
fn under_qemu_tcg_the_default_shards_use_the_syscall_gate() {
    let out = std::process::Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35",
            "-accel",
            "tcg",
            "-m",
            "256",
            "-nographic",
        ])
        .args([
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
            "-display",
            "none",
        ])
        .args(["-device", "isa-debug-exit,iobase=0x501,iosize=1"])
        .args(["-kernel", coco_images::GUEST_KERNEL_PATH])
        .args(["-initrd", coco_images::RAMDISK_PATH])
        .args(["-append", "coco.gate=syscall coco.tsc_khz=1000000"])
        .output()
        .expect("qemu-system-x86_64 (installed by the README's setup) must run");
    let console = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    // isa-debug-exit: QEMU exits with (status << 1) | 1; the kernel wrote 0.
    assert_eq!(out.status.code(), Some(1), "{console}");
    assert!(lines.contains(&"syscall gate: syscall"), "{console}");
    let gate = lines
        .iter()
        .find_map(|l| l.strip_prefix("gate: syscall, syscall entries "))
        .unwrap_or_else(|| panic!("no gate line in {console}"));
    let (entries, traps) = gate.split_once(", trap entries ").unwrap();
    assert!(entries.parse::<u64>().unwrap() > 0, "{console}");
    assert_eq!(traps, "0", "{console}");
    assert!(lines.iter().any(|l| l.starts_with("profile: shards=")));
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("profile: id="))
            .all(|l| l.ends_with(" exit=0")),
        "{console}"
    );
    assert_eq!(
        lines.last(),
        Some(&"all shards ended: status 0"),
        "{console}"
    );
}

/// An interrupt reaches a ring-3 driver as a channel notification: under
/// QEMU (TCG) the firmware leaves the PIT ticking, and on q35 it arrives on
/// IOAPIC line 2; a shard holding `irq:2` binds it to a channel and receives
/// two notifications, acknowledging each.
#[test]
fn an_interrupt_line_is_delivered_to_a_shard_as_channel_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[("/bin/irq", shard_elf(&irq_waiter(2)))],
        "[[channel]]\nname = \"n\"\ncapacity = 4\nmsg_max = 8\n\
         [[shard]]\nname = \"drv\"\npath = \"/bin/irq\"\n\
         caps = [\"irq:2:receive\", \"channel:n:send+recv\"]\n",
    );
    let out = std::process::Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35",
            "-accel",
            "tcg",
            "-m",
            "128",
            "-nographic",
        ])
        .args([
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
            "-display",
            "none",
        ])
        .args(["-device", "isa-debug-exit,iobase=0x501,iosize=1"])
        .args(["-kernel", coco_images::GUEST_KERNEL_PATH])
        .args(["-initrd", image.to_str().unwrap()])
        .args(["-append", "coco.gate=syscall coco.manifest=/boot/test.toml"])
        .output()
        .expect("qemu-system-x86_64 (installed by the README's setup) must run");
    let console = String::from_utf8_lossy(&out.stdout);
    assert!(console.contains("shard 0 (drv) exited: 0"), "{console}");
    assert_eq!(out.status.code(), Some(1), "{console}");
}

#[test]
fn dma_alloc_gives_a_driver_writable_pages_and_their_physical_address() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[("/bin/dma", shard_elf(&dma_user()))],
        "[[shard]]\nname = \"dma\"\npath = \"/bin/dma\"\ncaps = [\"memory:dma:dma\"]\n",
    );
    let r = boot("k10", &image);
    let console = r.console("k10");
    let code: u64 = console
        .iter()
        .find_map(|l| l.strip_prefix("shard 0 (dma) exited: "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{console:#?}"));
    // A page-aligned guest-physical address inside the VM's 64 MiB of RAM,
    // above the kernel's 2 MiB floor: the shard wrote both pages without a fault.
    assert_eq!(code % 4096, 0, "{console:#?}");
    assert!((2 << 20..64 << 20).contains(&code), "{console:#?}");
}

#[test]
fn an_interrupt_return_keeps_the_shards_direction_flag() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[("/bin/df", shard_elf(&direction_keeper()))],
        "[[shard]]\nname = \"df\"\npath = \"/bin/df\"\n",
    );
    let r = boot("k11", &image);
    let console = r.console("k11");
    assert!(
        console.contains(&"shard 0 (df) exited: 0".to_string()),
        "{console:#?}"
    );
    assert_eq!(r.status, Some(0), "{console:#?}");
}

/// A MEMORY capability for an MMIO window lets a ring-3 driver read device
/// registers: under QEMU (q35) the HPET at 0xfed00000, whose first register
/// carries the vendor id 0x8086 in its high half.
#[test]
fn mmio_map_gives_a_driver_its_device_registers() {
    let dir = tempfile::tempdir().unwrap();
    let image = ramdisk(
        dir.path(),
        &[("/bin/mmio", shard_elf(&mmio_reader()))],
        "[[shard]]\nname = \"hpet\"\npath = \"/bin/mmio\"\n\
         caps = [\"memory:0xfed00000:1:read\"]\n",
    );
    let out = std::process::Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35",
            "-accel",
            "tcg",
            "-m",
            "128",
            "-nographic",
        ])
        .args([
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
            "-display",
            "none",
        ])
        .args(["-device", "isa-debug-exit,iobase=0x501,iosize=1"])
        .args(["-kernel", coco_images::GUEST_KERNEL_PATH])
        .args(["-initrd", image.to_str().unwrap()])
        .args(["-append", "coco.gate=syscall coco.manifest=/boot/test.toml"])
        .output()
        .expect("qemu-system-x86_64 (installed by the README's setup) must run");
    let console = String::from_utf8_lossy(&out.stdout);
    assert!(
        console.contains(&format!("shard 0 (hpet) exited: {}", 0x8086)),
        "{console}"
    );
}
