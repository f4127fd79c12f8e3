/* coconut.h: the coconut shard ABI for C shards.
 *
 * GENERATED from guest-kernel/abi (the Rust crate is the contract) by
 *   COCO_BLESS=1 cargo test -p coconut-abi --test coconut_h
 * Do not edit by hand: the test fails when this file and the crate differ.
 *
 * A call is one `syscall` instruction: RAX = number; RDI, RSI, RDX, R10, R8 =
 * arguments 0..4; the result is in RAX. RCX, R11 and the argument registers
 * are clobbered. A result r with coconut_is_error(r) is an error whose code
 * (COCONUT_E_*) is coconut_error_code(r).
 */
#ifndef COCONUT_H
#define COCONUT_H

#include <stddef.h>
#include <stdint.h>

/* System call numbers. */
#define COCONUT_SYS_EXIT 0
#define COCONUT_SYS_SERIAL_WRITE 1
#define COCONUT_SYS_TIME 2
#define COCONUT_SYS_CAP_GRANT 11
#define COCONUT_SYS_CAP_REVOKE 12
#define COCONUT_SYS_CAP_RESTRICT 13
#define COCONUT_SYS_CAP_INSPECT 14
#define COCONUT_SYS_CHANNEL_CREATE 20
#define COCONUT_SYS_CHANNEL_SEND 21
#define COCONUT_SYS_CHANNEL_RECV 22
#define COCONUT_SYS_CHANNEL_SEND_TIMEOUT 23
#define COCONUT_SYS_CHANNEL_RECV_TIMEOUT 24
#define COCONUT_SYS_FS_OPEN 30
#define COCONUT_SYS_FS_READ 31
#define COCONUT_SYS_FS_STAT 32
#define COCONUT_SYS_FS_CLOSE 33
#define COCONUT_SYS_FS_MAP 34
#define COCONUT_SYS_GPU_DMA 40
#define COCONUT_SYS_PLEDGE 41
#define COCONUT_SYS_GPU_UNVEIL 42
#define COCONUT_SYS_MMAP 43
#define COCONUT_SYS_DMA_ALLOC 44
#define COCONUT_SYS_MMIO_MAP 45
#define COCONUT_SYS_IRQ_BIND 46
#define COCONUT_SYS_IRQ_ACK 47
#define COCONUT_SYS_SHARD_CREATE 50
#define COCONUT_SYS_SHARD_START 51
#define COCONUT_SYS_SHARD_WAIT 52
#define COCONUT_SYS_SHARD_KILL 53
#define COCONUT_SYS_YIELD 62

/* Errors: a raw result >= COCONUT_ERROR_FLOOR is -(code). */
#define COCONUT_ERROR_FLOOR 0xfffffffffffff001ULL
#define COCONUT_E_INVALID_ARGUMENT 1
#define COCONUT_E_BAD_ADDRESS 2
#define COCONUT_E_BAD_HANDLE 3
#define COCONUT_E_WRONG_TYPE 4
#define COCONUT_E_NO_RIGHT 5
#define COCONUT_E_NO_SUCH_SHARD 6
#define COCONUT_E_NOT_FOUND 7
#define COCONUT_E_NOT_A_FILE 8
#define COCONUT_E_WOULD_BLOCK 9
#define COCONUT_E_TIMED_OUT 10
#define COCONUT_E_NO_MEMORY 11
#define COCONUT_E_NO_SLOTS 12
#define COCONUT_E_MESSAGE_TOO_BIG 13
#define COCONUT_E_PLEDGED 14
#define COCONUT_E_UNKNOWN_SYSCALL 15
#define COCONUT_E_ALREADY 16
#define COCONUT_E_CLOSED 17
#define COCONUT_E_OVERLAP 18
#define COCONUT_E_NO_DEVICE 19

/* Limits. */
#define COCONUT_SERIAL_WRITE_MAX 4096
#define COCONUT_CHANNEL_MSG_MAX 256
#define COCONUT_CHANNEL_CAPACITY_MAX 64
#define COCONUT_MMAP_PAGES_MAX 256
#define COCONUT_CAP_SLOTS 32
#define COCONUT_FD_SLOTS 16
#define COCONUT_PATH_MAX 255
#define COCONUT_KILLED_STATUS_BASE 256
#define COCONUT_WAIT_FOREVER 0xffffffffffffffffULL

/* Capability types (coconut_cap_inspect() >> 48). */
#define COCONUT_CAP_CHANNEL 1
#define COCONUT_CAP_SHARD 2
#define COCONUT_CAP_MEMORY 3
#define COCONUT_CAP_GPU_DMA 4
#define COCONUT_CAP_IRQ 5
#define COCONUT_CAP_FACTORY 6

/* Rights bits (GRANT means the same for every type). */
#define COCONUT_RIGHT_SEND 1
#define COCONUT_RIGHT_RECV 2
#define COCONUT_RIGHT_GRANT 4
#define COCONUT_RIGHT_WAIT 1
#define COCONUT_RIGHT_KILL 2
#define COCONUT_RIGHT_MEMORY_READ 1
#define COCONUT_RIGHT_MEMORY_WRITE 2
#define COCONUT_RIGHT_MEMORY_DMA 8
#define COCONUT_RIGHT_GPU_WRITE 1
#define COCONUT_RIGHT_IRQ_RECEIVE 1
#define COCONUT_RIGHT_FACTORY_CHANNEL 1
#define COCONUT_RIGHT_FACTORY_SHARD 2
#define COCONUT_RIGHT_ALL 15

/* Pledge classes (coconut_pledge keeps the classes in its mask). */
#define COCONUT_PLEDGE_SERIAL 1
#define COCONUT_PLEDGE_CHANNEL 2
#define COCONUT_PLEDGE_GPU_DMA 4
#define COCONUT_PLEDGE_TIME 8
#define COCONUT_PLEDGE_FS 16
#define COCONUT_PLEDGE_MEMORY 32
#define COCONUT_PLEDGE_CAPS 64
#define COCONUT_PLEDGE_SHARD 128
#define COCONUT_PLEDGE_IRQ 256
#define COCONUT_PLEDGE_ALL 511

/* Address-space layout. */
#define COCONUT_USER_MIN 0x400000ULL
#define COCONUT_USER_END 0x7fffffff0000ULL
#define COCONUT_INFO_VA 0x7ffffffe0000ULL
#define COCONUT_STACK_TOP 0x7ffffff00000ULL
#define COCONUT_STACK_PAGES 16
#define COCONUT_FILE_MAP_BASE 0x400000000000ULL
#define COCONUT_DEVICE_MAP_BASE 0x500000000000ULL
#define COCONUT_INFO_MAGIC 0x445248534f434f43ULL
#define COCONUT_INFO_VERSION 1

/* The read-only page at COCONUT_INFO_VA. */
struct coconut_shard_info {
    uint64_t magic;
    uint32_t version;
    uint32_t shard_id;
    uint32_t priority;
    uint32_t name_len;
    uint8_t name[32];
    uint64_t heap_start;
    uint64_t heap_end;
    uint64_t page_quota;
    uint32_t boot_caps[16];
    uint32_t args_len;
    uint32_t _reserved;
    uint8_t args[256];
};

_Static_assert(sizeof(struct coconut_shard_info) == 408, "ShardInfo size");
_Static_assert(offsetof(struct coconut_shard_info, magic) == 0, "ShardInfo.magic");
_Static_assert(offsetof(struct coconut_shard_info, version) == 8, "ShardInfo.version");
_Static_assert(offsetof(struct coconut_shard_info, shard_id) == 12, "ShardInfo.shard_id");
_Static_assert(offsetof(struct coconut_shard_info, priority) == 16, "ShardInfo.priority");
_Static_assert(offsetof(struct coconut_shard_info, name_len) == 20, "ShardInfo.name_len");
_Static_assert(offsetof(struct coconut_shard_info, name) == 24, "ShardInfo.name");
_Static_assert(offsetof(struct coconut_shard_info, heap_start) == 56, "ShardInfo.heap_start");
_Static_assert(offsetof(struct coconut_shard_info, heap_end) == 64, "ShardInfo.heap_end");
_Static_assert(offsetof(struct coconut_shard_info, page_quota) == 72, "ShardInfo.page_quota");
_Static_assert(offsetof(struct coconut_shard_info, boot_caps) == 80, "ShardInfo.boot_caps");
_Static_assert(offsetof(struct coconut_shard_info, args_len) == 144, "ShardInfo.args_len");
_Static_assert(offsetof(struct coconut_shard_info, _reserved) == 148, "ShardInfo._reserved");
_Static_assert(offsetof(struct coconut_shard_info, args) == 152, "ShardInfo.args");

static inline const struct coconut_shard_info *coconut_info(void) {
    return (const struct coconut_shard_info *)(uintptr_t)COCONUT_INFO_VA;
}

static inline int coconut_is_error(uint64_t r) { return r >= COCONUT_ERROR_FLOOR; }
static inline uint64_t coconut_error_code(uint64_t r) { return (uint64_t)0 - r; }

/* Raw calls. */
static inline uint64_t coconut_syscall0(uint64_t nr) {
    __asm__ volatile("syscall" : "+a"(nr) : : "rcx", "r11", "memory");
    return nr;
}
static inline uint64_t coconut_syscall1(uint64_t nr, uint64_t a0) {
    __asm__ volatile("syscall" : "+a"(nr), "+D"(a0) : : "rcx", "r11", "memory");
    return nr;
}
static inline uint64_t coconut_syscall2(uint64_t nr, uint64_t a0, uint64_t a1) {
    __asm__ volatile("syscall" : "+a"(nr), "+D"(a0), "+S"(a1) : : "rcx", "r11", "memory");
    return nr;
}
static inline uint64_t coconut_syscall3(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2) {
    __asm__ volatile("syscall" : "+a"(nr), "+D"(a0), "+S"(a1), "+d"(a2) : : "rcx", "r11", "memory");
    return nr;
}
static inline uint64_t coconut_syscall4(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) {
    register uint64_t r10 __asm__("r10") = a3;
    __asm__ volatile("syscall" : "+a"(nr), "+D"(a0), "+S"(a1), "+d"(a2), "+r"(r10) : : "rcx", "r11", "memory");
    return nr;
}
static inline uint64_t coconut_syscall5(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4) {
    register uint64_t r10 __asm__("r10") = a3;
    register uint64_t r8 __asm__("r8") = a4;
    __asm__ volatile("syscall" : "+a"(nr), "+D"(a0), "+S"(a1), "+d"(a2), "+r"(r10), "+r"(r8) : : "rcx", "r11", "memory");
    return nr;
}

/* One wrapper per call (see guest-kernel/abi/src/syscall.rs for meanings). */
static inline __attribute__((noreturn)) void coconut_exit(uint64_t code) {
    (void)coconut_syscall1(COCONUT_SYS_EXIT, code);
    __builtin_unreachable();
}
static inline uint64_t coconut_serial_write(const void *buf, uint64_t len) {
    return coconut_syscall2(COCONUT_SYS_SERIAL_WRITE, (uint64_t)(uintptr_t)buf, len);
}
static inline uint64_t coconut_time(void) {
    return coconut_syscall0(COCONUT_SYS_TIME);
}
static inline uint64_t coconut_cap_grant(uint64_t handle, uint64_t target_shard, uint64_t rights_mask) {
    return coconut_syscall3(COCONUT_SYS_CAP_GRANT, handle, target_shard, rights_mask);
}
static inline uint64_t coconut_cap_revoke(uint64_t handle) {
    return coconut_syscall1(COCONUT_SYS_CAP_REVOKE, handle);
}
static inline uint64_t coconut_cap_restrict(uint64_t handle, uint64_t rights) {
    return coconut_syscall2(COCONUT_SYS_CAP_RESTRICT, handle, rights);
}
static inline uint64_t coconut_cap_inspect(uint64_t handle) {
    return coconut_syscall1(COCONUT_SYS_CAP_INSPECT, handle);
}
static inline uint64_t coconut_channel_create(uint64_t capacity, uint64_t msg_max) {
    return coconut_syscall2(COCONUT_SYS_CHANNEL_CREATE, capacity, msg_max);
}
static inline uint64_t coconut_channel_send(uint64_t channel, const void *buf, uint64_t len) {
    return coconut_syscall3(COCONUT_SYS_CHANNEL_SEND, channel, (uint64_t)(uintptr_t)buf, len);
}
static inline uint64_t coconut_channel_recv(uint64_t channel, void *buf, uint64_t max) {
    return coconut_syscall3(COCONUT_SYS_CHANNEL_RECV, channel, (uint64_t)(uintptr_t)buf, max);
}
static inline uint64_t coconut_channel_send_timeout(uint64_t channel, const void *buf, uint64_t len, uint64_t timeout_ns) {
    return coconut_syscall4(COCONUT_SYS_CHANNEL_SEND_TIMEOUT, channel, (uint64_t)(uintptr_t)buf, len, timeout_ns);
}
static inline uint64_t coconut_channel_recv_timeout(uint64_t channel, void *buf, uint64_t max, uint64_t timeout_ns) {
    return coconut_syscall4(COCONUT_SYS_CHANNEL_RECV_TIMEOUT, channel, (uint64_t)(uintptr_t)buf, max, timeout_ns);
}
static inline uint64_t coconut_fs_open(const char *path, uint64_t path_len) {
    return coconut_syscall2(COCONUT_SYS_FS_OPEN, (uint64_t)(uintptr_t)path, path_len);
}
static inline uint64_t coconut_fs_read(uint64_t fd, void *buf, uint64_t max) {
    return coconut_syscall3(COCONUT_SYS_FS_READ, fd, (uint64_t)(uintptr_t)buf, max);
}
static inline uint64_t coconut_fs_stat(uint64_t fd) {
    return coconut_syscall1(COCONUT_SYS_FS_STAT, fd);
}
static inline uint64_t coconut_fs_close(uint64_t fd) {
    return coconut_syscall1(COCONUT_SYS_FS_CLOSE, fd);
}
static inline uint64_t coconut_fs_map(uint64_t fd) {
    return coconut_syscall1(COCONUT_SYS_FS_MAP, fd);
}
static inline uint64_t coconut_gpu_dma(uint64_t target_partition, uint64_t src_offset, uint64_t dst_offset_len) {
    return coconut_syscall3(COCONUT_SYS_GPU_DMA, target_partition, src_offset, dst_offset_len);
}
static inline uint64_t coconut_pledge(uint64_t mask) {
    return coconut_syscall1(COCONUT_SYS_PLEDGE, mask);
}
static inline uint64_t coconut_gpu_unveil(uint64_t offset, uint64_t size) {
    return coconut_syscall2(COCONUT_SYS_GPU_UNVEIL, offset, size);
}
static inline uint64_t coconut_mmap(uint64_t va, uint64_t pages) {
    return coconut_syscall2(COCONUT_SYS_MMAP, va, pages);
}
static inline uint64_t coconut_dma_alloc(uint64_t pages, uint64_t *out_phys) {
    return coconut_syscall2(COCONUT_SYS_DMA_ALLOC, pages, (uint64_t)(uintptr_t)out_phys);
}
static inline uint64_t coconut_mmio_map(uint64_t memory_handle) {
    return coconut_syscall1(COCONUT_SYS_MMIO_MAP, memory_handle);
}
static inline uint64_t coconut_irq_bind(uint64_t irq_handle, uint64_t channel_handle) {
    return coconut_syscall2(COCONUT_SYS_IRQ_BIND, irq_handle, channel_handle);
}
static inline uint64_t coconut_irq_ack(uint64_t irq_handle) {
    return coconut_syscall1(COCONUT_SYS_IRQ_ACK, irq_handle);
}
static inline uint64_t coconut_shard_create(const char *path, uint64_t path_len, uint64_t priority) {
    return coconut_syscall3(COCONUT_SYS_SHARD_CREATE, (uint64_t)(uintptr_t)path, path_len, priority);
}
static inline uint64_t coconut_shard_start(uint64_t shard_handle) {
    return coconut_syscall1(COCONUT_SYS_SHARD_START, shard_handle);
}
static inline uint64_t coconut_shard_wait(uint64_t shard_handle, uint64_t timeout_ns) {
    return coconut_syscall2(COCONUT_SYS_SHARD_WAIT, shard_handle, timeout_ns);
}
static inline uint64_t coconut_shard_kill(uint64_t shard_handle) {
    return coconut_syscall1(COCONUT_SYS_SHARD_KILL, shard_handle);
}
static inline uint64_t coconut_yield(void) {
    return coconut_syscall0(COCONUT_SYS_YIELD);
}

#endif /* COCONUT_H */
