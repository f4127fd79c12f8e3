/*
 * hello-c: a shard written in C against guest-kernel/include/coconut.h (the
 * header generated from the abi crate), compiled freestanding by the host C
 * compiler and linked by guest-kernel/runtime/shard.ld like the Rust shards
 * (images/build.rs). It greets with its id and name, checks two calls'
 * results through the header's error helpers, and exits 0.
 *
 * There is no C library: _start, the line buffer and number formatting are
 * here. Built with -fno-tree-loop-distribute-patterns so the compiler does
 * not turn loops into memcpy/memset calls nobody provides.
 */
#include <stddef.h>
#include <stdint.h>

#include "coconut.h"

/* The entry point: align the stack, run main, exit with its result. */
__asm__(".section .text._start,\"ax\",@progbits\n"
        ".globl _start\n"
        "_start:\n"
        "    xor %ebp, %ebp\n"
        "    and $-16, %rsp\n"
        "    call hello_c_main\n"
        "    mov %rax, %rdi\n"
        "    mov $" "0" ", %eax\n" /* COCONUT_SYS_EXIT */
        "    syscall\n"
        "    ud2\n"
        ".text\n");

_Static_assert(COCONUT_SYS_EXIT == 0, "_start's exit number");

/* One console line, written with one serial_write. */
struct line {
    char buf[256];
    size_t len;
};

static void put(struct line *l, const char *s) {
    while (*s && l->len < sizeof l->buf - 1) {
        l->buf[l->len++] = *s++;
    }
}

static void put_bytes(struct line *l, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n && l->len < sizeof l->buf - 1; i++) {
        l->buf[l->len++] = (char)s[i];
    }
}

static void put_u64(struct line *l, uint64_t v) {
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0 && l->len < sizeof l->buf - 1) {
        l->buf[l->len++] = digits[--n];
    }
}

static uint64_t flush(struct line *l) {
    l->buf[l->len++] = '\n';
    uint64_t r = coconut_serial_write(l->buf, l->len);
    l->len = 0;
    return r;
}

__attribute__((used)) uint64_t hello_c_main(void) {
    const struct coconut_shard_info *info = coconut_info();
    uint64_t failures = 0;
    struct line l = {.len = 0};

    if (info->magic != COCONUT_INFO_MAGIC || info->version != COCONUT_INFO_VERSION) {
        put(&l, "hello-c: bad ShardInfo page");
        flush(&l);
        return 1;
    }
    size_t name_len = info->name_len < sizeof info->name ? info->name_len : sizeof info->name;
    put(&l, "hello-c: hello from shard ");
    put_u64(&l, info->shard_id);
    put(&l, " (");
    put_bytes(&l, info->name, name_len);
    put(&l, "), written in C");
    if (coconut_is_error(flush(&l))) {
        failures++;
    }

    /* time() works; an empty capability slot is refused with BadHandle. */
    uint64_t t = coconut_time();
    uint64_t cap = coconut_cap_inspect(COCONUT_CAP_SLOTS - 1);
    int time_ok = !coconut_is_error(t);
    int cap_ok = coconut_is_error(cap) && coconut_error_code(cap) == COCONUT_E_BAD_HANDLE;
    put(&l, "hello-c: time ");
    put(&l, time_ok ? "ok" : "FAIL");
    put(&l, ", empty capability slot ");
    put(&l, cap_ok ? "refused (bad handle)" : "FAIL");
    flush(&l);
    failures += !time_ok + !cap_ok;
    return failures;
}
