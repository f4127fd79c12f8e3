//! The guest kernel must only contain instructions kvm-pvm's ring-0
//! emulator can execute (docs/kvm-flavours.md): on that hypervisor every
//! kernel instruction is emulated and an unknown one ends the VM. This test
//! disassembles the kernel that coco-vmm embeds and fails on any instruction
//! from the forbidden set, naming it and where it is.

use std::process::Command;

/// Mnemonics that kill (or hang, or silently mis-execute in) a ring-0 guest
/// on kvm-pvm. AT&T spellings, without size suffixes.
const FORBIDDEN: &[&str] = &[
    // Not emulated at all.
    "popcnt",
    "cmpxchg16b",
    "crc32",
    "rdtscp",
    "rdpid",
    "invpcid",
    "clwb",
    "movbe",
    // BMI1/BMI2/ADX.
    "andn",
    "bextr",
    "blsi",
    "blsmsk",
    "blsr",
    "bzhi",
    "pdep",
    "pext",
    "shlx",
    "shrx",
    "sarx",
    "rorx",
    "mulx",
    "adcx",
    "adox",
    // Executed as bsr: wrong results.
    "lzcnt",
    // Software interrupts from ring 0.
    "int3",
    "int",
    "into",
    "int1",
    // x87 beyond fninit/fxsave/fxrstor, MMX state.
    "fwait",
    "wait",
    "emms",
    "fnstcw",
    "fldcw",
    "fnclex",
    "fnsave",
    "frstor",
    // MXCSR, XSAVE family, XCR0.
    "ldmxcsr",
    "stmxcsr",
    "xsave",
    "xsave64",
    "xsaveopt",
    "xsaveopt64",
    "xsavec",
    "xsavec64",
    "xsaves",
    "xsaves64",
    "xrstor",
    "xrstor64",
    "xrstors",
    "xrstors64",
    "xgetbv",
    "xsetbv",
    // Hypercalls hang the vCPU; fast system calls are not usable.
    "vmcall",
    "vmmcall",
    "syscall",
    "sysret",
    "sysretq",
    "sysretl",
    "sysenter",
    "sysexit",
    // Other unemulated system instructions.
    "monitor",
    "mwait",
    "lar",
    "lsl",
    "verr",
    "verw",
    // SSE scalar/packed arithmetic and non-aligned-move data ops.
    "movd",
    "movq",
    "movss",
    "movsd",
    "movlps",
    "movhps",
    "movlpd",
    "movhpd",
    "movhlps",
    "movlhps",
    "xorps",
    "xorpd",
    "andps",
    "andpd",
    "andnps",
    "andnpd",
    "orps",
    "orpd",
    "addps",
    "addpd",
    "addss",
    "addsd",
    "subps",
    "subpd",
    "subss",
    "subsd",
    "mulps",
    "mulpd",
    "mulss",
    "mulsd",
    "divps",
    "divpd",
    "divss",
    "divsd",
    "sqrtps",
    "sqrtpd",
    "sqrtss",
    "sqrtsd",
    "maxps",
    "maxss",
    "minps",
    "minss",
    "cvtsi2sd",
    "cvtsi2ss",
    "cvttsd2si",
    "cvttss2si",
    "cvtsd2si",
    "cvtss2si",
    "cvtss2sd",
    "cvtsd2ss",
    "cvtps2pd",
    "cvtpd2ps",
    "cvtdq2ps",
    "cvtps2dq",
    "ucomisd",
    "ucomiss",
    "comisd",
    "comiss",
    "shufps",
    "shufpd",
    "unpcklps",
    "unpckhps",
    "unpcklpd",
    "unpckhpd",
    "movmskps",
    "movmskpd",
    "rcpps",
    "rsqrtps",
    "aesenc",
    "aesdec",
    "aesenclast",
    "aesdeclast",
    "pclmulqdq",
];

/// x87 instructions that are emulated (everything else starting with `f` is not).
const X87_ALLOWED: &[&str] = &[
    "fninit",
    "fxsave",
    "fxsave64",
    "fxrstor",
    "fxrstor64",
    "fnstsw",
];
/// `p`-prefixed instructions that are not packed-integer SIMD.
const P_ALLOWED: &[&str] = &[
    "push",
    "pushq",
    "pushw",
    "pushf",
    "pushfq",
    "pop",
    "popq",
    "popw",
    "popf",
    "popfq",
    "pause",
    "prefetcht0",
    "prefetcht1",
    "prefetcht2",
    "prefetchnta",
    "prefetchw",
];

/// Why an instruction is refused, if it is.
fn verdict(mnemonic: &str) -> Option<&'static str> {
    if FORBIDDEN.contains(&mnemonic) {
        return Some("not executable by kvm-pvm in ring 0");
    }
    if mnemonic.starts_with('v') && mnemonic != "verr" && mnemonic != "verw" {
        return Some("AVX is not emulated in ring 0");
    }
    if mnemonic.starts_with('f') && !X87_ALLOWED.contains(&mnemonic) {
        return Some("x87 is not emulated in ring 0 (only fninit/fxsave/fxrstor)");
    }
    if mnemonic.starts_with('p') && !P_ALLOWED.contains(&mnemonic) {
        return Some("packed-integer SIMD is not emulated in ring 0");
    }
    None
}

/// Sections holding 32-bit code (the PVH entry stub runs in protected mode).
const SECTIONS_32BIT: &[&str] = &[".boot32"];

/// Names of the sections that hold code.
fn code_sections(path: &str) -> Vec<String> {
    let out = Command::new("objdump")
        .args(["-h", path])
        .output()
        .expect("objdump (Debian package binutils; scripts/setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut sections = Vec::new();
    for pair in lines.windows(2) {
        let fields: Vec<&str> = pair[0].split_whitespace().collect();
        if fields.len() >= 2 && fields[0].parse::<u32>().is_ok() && pair[1].contains("CODE") {
            sections.push(fields[1].to_string());
        }
    }
    sections
}

/// (address, mnemonic) for every instruction of one section, decoded in the
/// mode that section runs in (Intel syntax, so GPR and SSE moves differ).
fn disassemble_section(path: &str, section: &str) -> Vec<(String, String)> {
    let mut cmd = Command::new("objdump");
    cmd.args(["-d", "--no-show-raw-insn", "-M", "intel", "-j", section]);
    if SECTIONS_32BIT.contains(&section) {
        cmd.args(["-m", "i386"]);
    }
    let out = cmd.arg(path).output().expect("objdump");
    assert!(
        out.status.success(),
        "objdump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut insns = Vec::new();
    for line in text.lines() {
        let Some((addr, rest)) = line.split_once(":\t") else {
            continue;
        };
        let addr = addr.trim();
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let mut words = rest.split_whitespace();
        let mut mnemonic = words.next().unwrap_or("");
        // Prefixes (lock, rep, data16, segment overrides) are not the instruction.
        while matches!(
            mnemonic,
            "lock"
                | "rep"
                | "repz"
                | "repe"
                | "repnz"
                | "repne"
                | "data16"
                | "addr32"
                | "cs"
                | "ds"
                | "es"
                | "ss"
                | "fs"
                | "gs"
                | "notrack"
                | "bnd"
                | "rex"
                | "rex.W"
        ) {
            mnemonic = words.next().unwrap_or("");
        }
        if mnemonic.is_empty() || mnemonic.starts_with('.') {
            continue;
        }
        insns.push((addr.to_string(), mnemonic.to_string()));
    }
    insns
}

/// Every instruction of every code section.
fn disassemble(path: &str) -> Vec<(String, String)> {
    let sections = code_sections(path);
    assert!(
        sections.iter().any(|s| s == ".text"),
        "no .text among code sections {sections:?}"
    );
    sections
        .iter()
        .flat_map(|s| disassemble_section(path, s))
        .collect()
}

/// `int3` that only pads between functions (after an unconditional
/// transfer, after a call to a function that never returns — the compiler
/// only puts `int3` there for noreturn calls — or after more padding) is
/// never executed; any other is real.
fn is_padding(insns: &[(String, String)], i: usize) -> bool {
    insns[i].1 == "int3"
        && i > 0
        && matches!(
            insns[i - 1].1.as_str(),
            "ret" | "jmp" | "ud2" | "int3" | "iretq" | "call"
        )
        && (insns[i - 1].1 != "int3" || is_padding(insns, i - 1))
}

/// The forbidden instructions, formatted for a failure message.
fn forbidden(insns: &[(String, String)]) -> Vec<String> {
    (0..insns.len())
        .filter(|&i| !is_padding(insns, i))
        .filter_map(|i| {
            let (addr, m) = &insns[i];
            verdict(m).map(|why| format!("{addr}: {m} ({why})"))
        })
        .collect()
}

#[test]
fn guest_kernel_uses_only_instructions_kvm_pvm_can_run_in_ring_0() {
    let insns = disassemble(coco_images::GUEST_KERNEL_PATH);
    assert!(
        insns.len() > 100,
        "the kernel disassembled to almost nothing: {insns:?}"
    );
    assert!(
        insns.iter().any(|(_, m)| m == "out"),
        "the 32-bit entry stub (port writes) was not disassembled"
    );
    let bad = forbidden(&insns);
    assert!(
        bad.is_empty(),
        "guest-kernel contains {} forbidden instruction(s):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn padding_int3_is_ignored_but_reachable_int3_is_not() {
    let seq = |ms: &[&str]| -> Vec<(String, String)> {
        ms.iter()
            .map(|m| ("0".to_string(), m.to_string()))
            .collect()
    };
    assert!(forbidden(&seq(&["mov", "ret", "int3", "int3", "push"])).is_empty());
    assert_eq!(forbidden(&seq(&["mov", "int3", "ret"])).len(), 1);
    assert_eq!(forbidden(&seq(&["int3"])).len(), 1);
    assert_eq!(forbidden(&seq(&["jmp", "int3", "popcnt"])).len(), 1);
}

#[test]
fn the_census_rules_catch_what_they_should() {
    for m in [
        "popcnt",
        "cmpxchg16b",
        "int3",
        "vmovdqu",
        "fld",
        "paddd",
        "xsave",
        "syscall",
    ] {
        assert!(verdict(m).is_some(), "{m} must be refused");
    }
    for m in [
        "mov", "push", "pop", "pause", "fxsave64", "fninit", "cpuid", "iretq", "hlt", "movaps",
        "movups", "rdtsc", "wrmsr", "lgdt", "ltr", "verw",
    ] {
        if m == "verw" {
            assert!(verdict(m).is_some(), "verw is not emulated");
        } else {
            assert!(verdict(m).is_none(), "{m} must be allowed");
        }
    }
}
