/* The few kernel types mamori's probe reads, declared by hand instead of a generated vmlinux.h.
 * preserve_access_index makes every field access a CO-RE relocation: libbpf rewrites the offsets
 * against the running kernel's BTF (/sys/kernel/btf/vmlinux) at load time, so one object file
 * runs on any kernel with BTF whatever its struct layouts. */
#ifndef MAMORI_KERNEL_TYPES_H
#define MAMORI_KERNEL_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long r8;
	unsigned long r9;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	__u64 regs[31];
	__u64 orig_x0;
	__s32 syscallno;
} __attribute__((preserve_access_index));
#else
#error "mamori's probe supports x86_64 and arm64"
#endif

/* For cgroup-v1-only hosts: the memory controller's cgroup of the task. */
enum cgroup_subsys_id { memory_cgrp_id = 4 };
struct kernfs_node { __u64 id; } __attribute__((preserve_access_index));
struct cgroup { struct kernfs_node *kn; } __attribute__((preserve_access_index));
struct cgroup_subsys_state { struct cgroup *cgroup; } __attribute__((preserve_access_index));
struct css_set { struct cgroup_subsys_state *subsys[14]; } __attribute__((preserve_access_index));
/* A descriptor's open file: the probe compares its address, which fork and dup keep, and reads
 * its inode's type to tell a socket. */
struct inode { unsigned short i_mode; } __attribute__((preserve_access_index));
struct file { struct inode *f_inode; } __attribute__((preserve_access_index));
struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));
struct files_struct { struct fdtable *fdt; } __attribute__((preserve_access_index));
/* A task's id in each pid namespace it lives in, numbers[level] being its own namespace's.
 * struct upid is laid out in full so that indexing numbers[] steps by the kernel's size. */
struct upid {
	int nr;
	void *ns;
};
struct pid {
	unsigned int level;
	struct upid numbers[1];
} __attribute__((preserve_access_index));
struct task_struct {
	struct css_set *cgroups;
	struct files_struct *files;
	struct task_struct *real_parent;
	int tgid;
	struct pid *thread_pid;
} __attribute__((preserve_access_index));

#endif
