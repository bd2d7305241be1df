// SPDX-License-Identifier: GPL-2.0
/*
 * Which process holds each end of a TCP connection (issue 17, "Coverage"): so that a TLS
 * connection the uprobes could not read is named with its processes and their library, instead of
 * disappearing. Tracepoints only (this kernel has no kprobes or fentry); CO-RE.
 *
 * - The connecting end: sock:inet_sock_set_state. TCP_CLOSE → TCP_SYN_SENT runs inside connect(),
 *   in the caller's context, but before the source port is chosen (tcp_v4_connect() sets SYN_SENT,
 *   then inet_hash_connect() picks the port), so the caller is saved by socket; the
 *   SYN_SENT → ESTABLISHED transition (softirq, any context) carries the whole 4-tuple and emits.
 * - The accepting end: syscalls:sys_exit_accept4 and sys_exit_accept, in the acceptor's context:
 *   the returned fd's socket gives the 4-tuple (the same walk as tls.bpf.c's read_socket).
 * - sched:sched_process_exec: a pid's library must be looked at again.
 *
 * One event per connection end, to this object's own `events` ring (conn_event.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "conn_event.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define S_IFMT 00170000
#define S_IFSOCK 0140000

struct connector {
	__u64 ts_ns;
	__u64 cgroup_id;
	__u32 pid;
	__u32 tid;
	char comm[16];
};

/* struct sock * → who called connect() on it, until its handshake ends (LRU: a lost SYN ages out). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct connector);
} connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* set again at load by the addon (ringBytes) */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CONN_CNT_N);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* The process's name (its thread group leader's comm), not the calling thread's: a JVM connects
 * from "HttpClient-1-Se" and accepts on "HTTP-Dispatcher", and coverage names processes. */
static __always_inline void leader_comm(char *comm)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	if (!leader || bpf_core_read_str(comm, 16, &leader->comm) <= 0)
		bpf_get_current_comm(comm, 16);
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/*
 * Every event wakes the reader (tls.bpf.c waits for 256 KiB or the 10 ms poll): userspace must look
 * at the process's /proc before a short-lived client (curl: ~20 ms) exits. Connections are far
 * rarer than SSL calls; bench/owners.mjs measures the rate this carries.
 */
static __always_inline void submit(struct conn_event *e)
{
	if (bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_FORCE_WAKEUP))
		count(CONN_CNT_LOST);
}

SEC("tracepoint/sock/inet_sock_set_state")
int tp_sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	__u64 sk = (__u64)ctx->skaddr;
	if (ctx->oldstate == TCP_CLOSE && ctx->newstate == TCP_SYN_SENT) {
		struct connector c = {};
		__u64 id = bpf_get_current_pid_tgid();
		c.ts_ns = bpf_ktime_get_ns();
		c.cgroup_id = bpf_get_current_cgroup_id();
		c.pid = id >> 32;
		c.tid = (__u32)id;
		leader_comm(c.comm);
		bpf_map_update_elem(&connecting, &sk, &c, BPF_ANY);
		return 0;
	}
	if (ctx->oldstate != TCP_SYN_SENT)
		return 0;
	struct connector *c = bpf_map_lookup_elem(&connecting, &sk);
	if (!c) {
		if (ctx->newstate == TCP_ESTABLISHED)
			count(CONN_CNT_UNPAIRED);
		return 0;
	}
	if (ctx->newstate == TCP_ESTABLISHED) {
		struct conn_event e = {};
		e.ts_ns = c->ts_ns;
		e.cgroup_id = c->cgroup_id;
		e.pid = c->pid;
		e.tid = c->tid;
		__builtin_memcpy(e.comm, c->comm, sizeof(e.comm));
		e.kind = CONN_KIND_CONNECT;
		e.family = ctx->family;
		e.lport = ctx->sport;
		e.rport = ctx->dport;
		/* read, not memcpy: the verifier refuses a ctx pointer moved by a variable offset, which
		 * clang makes of the two branches */
		if (ctx->family == AF_INET) {
			bpf_probe_read_kernel(e.laddr, 4, ctx->saddr);
			bpf_probe_read_kernel(e.raddr, 4, ctx->daddr);
		} else {
			bpf_probe_read_kernel(e.laddr, 16, ctx->saddr_v6);
			bpf_probe_read_kernel(e.raddr, 16, ctx->daddr_v6);
		}
		submit(&e);
	}
	/* established, or the connect failed (SYN_SENT → CLOSE): done with this socket either way */
	bpf_map_delete_elem(&connecting, &sk);
	return 0;
}

/* The accepted fd's socket addresses (tls.bpf.c read_socket's walk: task → files → fdtable → file → socket → sock). */
static __always_inline int accepted(struct trace_event_raw_sys_exit *ctx)
{
	long fd = ctx->ret;
	if (fd < 0)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
	/* accept() returns only connection-mode sockets: an inet one is TCP (SCTP aside) */
	if (!sk)
		return 0;
	struct conn_event e = {};
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(e.laddr, &l, 4);
		__builtin_memcpy(e.raddr, &r, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e.laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e.raddr, sk, __sk_common.skc_v6_daddr);
	} else {
		return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	e.ts_ns = bpf_ktime_get_ns();
	e.cgroup_id = bpf_get_current_cgroup_id();
	e.pid = id >> 32;
	e.tid = (__u32)id;
	leader_comm(e.comm);
	e.kind = CONN_KIND_ACCEPT;
	e.family = family;
	e.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e.rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	submit(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx);
}

SEC("tracepoint/sched/sched_process_exec")
int tp_owner_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct conn_event e = {};
	__u64 id = bpf_get_current_pid_tgid();
	e.ts_ns = bpf_ktime_get_ns();
	e.cgroup_id = bpf_get_current_cgroup_id();
	e.pid = id >> 32;
	e.tid = (__u32)id;
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	e.kind = CONN_KIND_EXEC;
	submit(&e);
	return 0;
}
