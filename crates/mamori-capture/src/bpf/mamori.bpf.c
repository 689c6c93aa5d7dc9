// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* mamori's system-call probe: one ring-buffer record per system-call entry (with the arguments a
 * class table can look at) and, for the calls user space asks for, one per exit (the return
 * value: a new fd, a child pid). Everything else (names, fd tables, containers, windows) is done
 * in user space, so the probe stays short and the traced program is slowed as little as possible. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define HALF 256
#define PAYLOAD_MAX (2 * HALF)
#define ARGV_MAX 8
#define ARGV_PIECE 64
#define PAYLOAD_BUF 1024
/* ring-buffer bytes waiting before the reader is woken early (see submit) */
#define WAKEUP_BYTES (256 << 10)
/* from linux/bpf.h: flags of the ring-buffer helpers */
#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_FORCE_WAKEUP 2
#define BPF_RB_AVAIL_DATA 0
/* from linux/bpf.h: map update flag */
#define BPF_ANY 0
#define SOCKADDR_MAX 112
#define SYSCALL_MAX 512

/* How to read a call's arguments, one word per syscall number (filled by user space per
 * architecture): bits 0-3 the kind, 4-7 the first argument's index, 8-11 the second's, bit 16 asks
 * for the exit record too. */
enum payload_kind {
	PAY_NONE = 0,
	PAY_STR = 1,     /* a NUL-terminated string at arg A (a path) */
	PAY_BUF = 2,     /* the first bytes of a buffer at arg A, length in arg B (write) */
	PAY_SOCKADDR = 3,/* a socket address at arg A, length in arg B (connect, sendto) */
	PAY_EXEC = 4,    /* filename at arg A, argv at arg B */
	PAY_STR2 = 5,    /* two strings, at args A and B (rename, link, symlink) */
};
#define SPEC_WANT_EXIT (1u << 16)
/* accept, accept4: the exit also carries the peer's address, and the new connection is
 * remembered until its first data */
#define SPEC_ACCEPT (1u << 17)
/* read, recvfrom: on a remembered connection, the exit carries the first bytes received; on a
 * socket that is standard input (a remote shell), every read's bytes */
#define SPEC_FIRST_DATA (1u << 18)
/* clone, fork, vfork, clone3: the child's own return carries its parent's process id. The
 * parent's return value is the child's id in the parent's pid namespace, which inside a
 * container is not the id the probe reports, so only the child can say whose descriptors it
 * inherited. */
#define SPEC_NEW_TASK (1u << 19)

#define KIND_ENTER 0
#define KIND_EXIT 1
/* an entry whose exit record follows although its spec does not ask for one (first data) */
#define KIND_ENTER_EXIT_FOLLOWS 2
/* bytes of a connection's first data: the request line a context rule reads */
#define REQUEST_BYTES HALF
/* reads are checked for a remembered connection only this long after the last accept: a
 * workload that accepts nothing (or long ago) pays one array lookup per read, not a descriptor
 * walk and a hash lookup */
#define FRESH_NS (30ull * 1000000000ull)

struct event {
	__u64 ts;       /* CLOCK_MONOTONIC ns */
	__u64 cgroup;   /* cgroup id: v2 unless the v1 memory controller is configured */
	__u32 tgid;
	__u32 tid;
	__s32 nr;
	__u16 kind;
	__u16 len;      /* payload bytes that follow the header */
	__s64 ret;
	__u64 args[6];
	char comm[16];
	/* PAYLOAD_MAX plus room for the last argv piece, rounded up to a power of two so that a
	 * length mask keeps every length up to PAYLOAD_MAX intact and satisfies the verifier */
	char payload[PAYLOAD_BUF];
};
#define HEADER_SIZE (sizeof(struct event) - PAYLOAD_BUF)

/* Set by user space before load. */
const volatile __u32 self_tgid = 0;
const volatile bool filter_cgroups = false;
const volatile bool use_v1_memory_cgroup = false;
const volatile __u32 write_bytes = 128;
const volatile bool read_requests = true;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSCALL_MAX);
	__type(key, __u32);
	__type(value, __u32);
} specs SEC(".maps");

/* Containers being watched when filter_cgroups is set (cgroup id -> 1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} watched SEC(".maps");

/* Per-CPU counters: 0 records written, 1 records dropped because the ring was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Accepted connections that have not received data yet, by their open file's address. Keyed by
 * the file, not (process, descriptor): a forking server (busybox httpd, inetd) accepts in the
 * parent and reads in a child, after moving the descriptor to 0 with dup2. LRU: a connection
 * that never sends data is forgotten in time. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} fresh_conns SEC(".maps");

struct first_read {
	__u64 file;
	__u64 buf;
};

/* Threads inside a read of a remembered connection, by thread id. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct first_read);
} first_reads SEC(".maps");

/* Cheap gates for the read path: 0 the time of the last accept, 1 the reads of remembered
 * connections still waiting for their exit. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} conn_gate SEC(".maps");
#define GATE_LAST_ACCEPT 0
#define GATE_OPEN_READS 1

static __always_inline __u64 *gate(__u32 which)
{
	return bpf_map_lookup_elem(&conn_gate, &which);
}

/* One scratch record per CPU: too big for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1;
}

static __always_inline __u64 current_cgroup(void)
{
	if (use_v1_memory_cgroup) {
		struct task_struct *task = bpf_get_current_task_btf();
		int memory = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		if (memory < 0 || memory >= 14)
			return 0;
		return BPF_CORE_READ(task, cgroups, subsys[memory], cgroup, kn, id);
	}
	return bpf_get_current_cgroup_id();
}

/* Returns the cgroup id, or 0 when this task is not to be recorded. */
static __always_inline __u64 wanted(__u32 tgid)
{
	if (tgid == self_tgid)
		return 0;
	__u64 cg = current_cgroup();
	if (filter_cgroups && !bpf_map_lookup_elem(&watched, &cg))
		return 0;
	return cg ? cg : 1;
}

static __always_inline unsigned long syscall_arg(struct pt_regs *regs, int i)
{
#if defined(__TARGET_ARCH_x86)
	switch (i) {
	case 0: return BPF_CORE_READ(regs, di);
	case 1: return BPF_CORE_READ(regs, si);
	case 2: return BPF_CORE_READ(regs, dx);
	case 3: return BPF_CORE_READ(regs, r10);
	case 4: return BPF_CORE_READ(regs, r8);
	default: return BPF_CORE_READ(regs, r9);
	}
#else
	if (i == 0)
		return BPF_CORE_READ(regs, orig_x0);
	return BPF_CORE_READ(regs, regs[i & 7]);
#endif
}

/* The open file behind descriptor `fd` of the current task, or 0. */
static __always_inline __u64 file_of(__s64 fd)
{
	if (fd < 0)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return 0;
	if ((__u64)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return 0;
	return (__u64)f;
}

#define S_IFMT 0170000
#define S_IFSOCK 0140000

/* Whether an open file is a socket. */
static __always_inline bool is_socket(__u64 f)
{
	struct file *file = (struct file *)f;
	unsigned short mode = BPF_CORE_READ(file, f_inode, i_mode);
	return (mode & S_IFMT) == S_IFSOCK;
}

static __always_inline __u32 read_str(struct event *e, __u32 off, unsigned long ptr)
{
	off &= HALF - 1;
	long n = bpf_probe_read_user_str(&e->payload[off], HALF, (const void *)ptr);
	return n > 0 ? off + (__u32)n : off;
}

static __always_inline void submit(struct event *e, __u32 len)
{
	if (len > PAYLOAD_MAX)
		len = PAYLOAD_MAX;
	e->len = len;
	/* len <= PAYLOAD_MAX < PAYLOAD_BUF, so the mask changes nothing but proves the bound */
	__u64 size = HEADER_SIZE + (len & (PAYLOAD_BUF - 1));
	/* Waking the reader for every record costs the traced program a wakeup (and, on a small
	 * machine, its CPU) per system call. The reader polls every 50 ms anyway, so it is woken
	 * early only once a good share of the ring has filled. */
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES
		? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, e, size, flags) == 0)
		count(0);
	else
		count(1);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u64 cg = wanted(tgid);
	if (!cg)
		return 0;

	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->ts = bpf_ktime_get_ns();
	e->cgroup = cg;
	e->tgid = tgid;
	e->tid = (__u32)pid_tgid;
	e->nr = id;
	e->kind = KIND_ENTER;
	e->ret = 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	for (int i = 0; i < 6; i++)
		e->args[i] = syscall_arg(regs, i);

	__u32 spec = 0;
	if (id >= 0 && id < SYSCALL_MAX) {
		__u32 key = id;
		__u32 *s = bpf_map_lookup_elem(&specs, &key);
		if (s)
			spec = *s;
	}
	__u64 *last_accept = (read_requests && (spec & SPEC_FIRST_DATA)) ? gate(GATE_LAST_ACCEPT) : 0;
	/* a remembered connection's first data; or standard input that is a socket, every read of
	 * it: a remote shell (bash 0</dev/tcp/...) reading its next command */
	bool fresh = last_accept && *last_accept && e->ts - *last_accept < FRESH_NS;
	bool net_stdin = read_requests && (spec & SPEC_FIRST_DATA) && e->args[0] == 0;
	if (fresh || net_stdin) {
		__u64 f = file_of((__s32)e->args[0]);
		if (f && ((fresh && bpf_map_lookup_elem(&fresh_conns, &f)) || (net_stdin && is_socket(f)))) {
			struct first_read r = { .file = f, .buf = e->args[1] };
			__u32 tid = e->tid;
			__u64 *open_reads = gate(GATE_OPEN_READS);
			if (open_reads && bpf_map_update_elem(&first_reads, &tid, &r, BPF_ANY) == 0) {
				__sync_fetch_and_add(open_reads, 1);
				e->kind = KIND_ENTER_EXIT_FOLLOWS;
			}
		}
	}
	__u32 a = (spec >> 4) & 7, b = (spec >> 8) & 7, len = 0;
	switch (spec & 15) {
	case PAY_STR:
		len = read_str(e, 0, e->args[a & 7]);
		break;
	case PAY_STR2:
		len = read_str(e, 0, e->args[a & 7]);
		len = read_str(e, len, e->args[b & 7]);
		break;
	case PAY_BUF: {
		__u64 n = e->args[b & 7];
		__u32 cap = write_bytes;
		if (n > cap)
			n = cap;
		if (n > HALF)
			n = HALF;
		if (n > 0 && bpf_probe_read_user(e->payload, n & (PAYLOAD_MAX - 1), (const void *)e->args[a & 7]) == 0)
			len = n;
		break;
	}
	case PAY_SOCKADDR: {
		__u64 n = e->args[b & 7];
		if (n > SOCKADDR_MAX)
			n = SOCKADDR_MAX;
		if (n > 0 && bpf_probe_read_user(e->payload, n & 127, (const void *)e->args[a & 7]) == 0)
			len = n;
		break;
	}
	case PAY_EXEC: {
		/* filename, then argv[0..] each up to ARGV_PIECE bytes, NUL-separated */
		len = read_str(e, 0, e->args[a & 7]);
		const char *const *argv = (const char *const *)e->args[b & 7];
		for (int i = 0; i < ARGV_MAX && argv; i++) {
			const char *arg = 0;
			if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
				break;
			if (len >= PAYLOAD_MAX - ARGV_PIECE)
				break;
			long n = bpf_probe_read_user_str(&e->payload[len & (PAYLOAD_MAX - 1)], ARGV_PIECE, arg);
			if (n <= 0)
				break;
			len += n;
		}
		break;
	}
	default:
		break;
	}
	submit(e, len);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
#if defined(__TARGET_ARCH_x86)
	long id = BPF_CORE_READ(regs, orig_ax);
#else
	long id = BPF_CORE_READ(regs, syscallno);
#endif
	if (id < 0 || id >= SYSCALL_MAX)
		return 0;
	__u32 key = id;
	__u32 *s = bpf_map_lookup_elem(&specs, &key);
	__u32 spec = s ? *s : 0;
	if (!(spec & (SPEC_WANT_EXIT | SPEC_FIRST_DATA)))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;
	/* a read reports its exit only when its entry found a remembered connection or a socket on
 * standard input */
	struct first_read r = {};
	if (spec & SPEC_FIRST_DATA) {
		__u64 *open_reads = gate(GATE_OPEN_READS);
		if (!open_reads || !*open_reads)
			return 0;
		struct first_read *found = bpf_map_lookup_elem(&first_reads, &tid);
		if (!found)
			return 0;
		r = *found;
		if (bpf_map_delete_elem(&first_reads, &tid) == 0)
			__sync_fetch_and_sub(open_reads, 1);
	}
	__u64 cg = wanted(tgid);
	if (!cg)
		return 0;
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->ts = bpf_ktime_get_ns();
	e->cgroup = cg;
	e->tgid = tgid;
	e->tid = tid;
	e->nr = id;
	e->kind = KIND_EXIT;
	e->ret = ret;
	/* the arguments again: a call that was already blocked when capture began (a server
	 * waiting in accept) has no entry record */
	for (int i = 0; i < 6; i++)
		e->args[i] = syscall_arg(regs, i);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	__u32 len = 0;
	if (r.file) {
		/* EAGAIN on a non-blocking socket: the data is still to come */
		if (ret >= 0)
			bpf_map_delete_elem(&fresh_conns, &r.file);
		__u64 n = ret > 0 ? (__u64)ret : 0;
		if (n > REQUEST_BYTES)
			n = REQUEST_BYTES;
		if (n > 0 && bpf_probe_read_user(e->payload, n & (PAYLOAD_MAX - 1), (const void *)r.buf) == 0)
			len = n;
	} else if ((spec & SPEC_NEW_TASK) && ret == 0) {
		/* the parent's process id, and the child's id in its own pid namespace: what the
		 * parent's return value says (for a child in a new namespace, 1, which matches nothing) */
		struct task_struct *task = bpf_get_current_task_btf();
		__u32 ids[2] = { BPF_CORE_READ(task, real_parent, tgid), 0 };
		struct pid *pid = BPF_CORE_READ(task, thread_pid);
		unsigned int level = BPF_CORE_READ(pid, level);
		struct upid *numbers = (struct upid *)((char *)pid + bpf_core_field_offset(struct pid, numbers));
		bpf_probe_read_kernel(&ids[1], sizeof(ids[1]), &numbers[level & 31].nr);
		__builtin_memcpy(e->payload, ids, sizeof(ids));
		len = sizeof(ids);
	} else if ((spec & SPEC_ACCEPT) && ret >= 0) {
		__u64 f = read_requests ? file_of(ret) : 0;
		__u8 one = 1;
		__u64 *last_accept = gate(GATE_LAST_ACCEPT);
		if (f && bpf_map_update_elem(&fresh_conns, &f, &one, BPF_ANY) == 0 && last_accept)
			*last_accept = e->ts;
		/* the peer's address, which the kernel wrote to the caller's buffer */
		unsigned long addr = syscall_arg(regs, 1), addrlen = syscall_arg(regs, 2);
		__u32 n = 0;
		if (addr && addrlen && bpf_probe_read_user(&n, sizeof(n), (const void *)addrlen) == 0) {
			if (n > SOCKADDR_MAX)
				n = SOCKADDR_MAX;
			if (n > 0 && bpf_probe_read_user(e->payload, n & 127, (const void *)addr) == 0)
				len = n;
		}
	}
	submit(e, len);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
