// SPDX-License-Identifier: GPL-2.0
/*
 * OpenSSL plaintext through uprobes (issue 17). CO-RE, built against a vmlinux.h generated from
 * /sys/kernel/btf/vmlinux at build time (scripts/build-native.mjs).
 *
 * This kernel has no kprobes and no fentry: everything here is uprobes/uretprobes (declared with
 * BPF_KPROBE/BPF_KRETPROBE, libbpf 1.1 has no BPF_UPROBE) and syscall tracepoints.
 *
 * Entry probes save (SSL*, buf, size pointer for the _ex forms) per thread; the return probe reads
 * the byte count (return value, or *size when an _ex call returns 1) and copies the plaintext into
 * the ring buffer in events of at most TLS_CHUNK_MAX bytes (see tls_event.h).
 *
 * The fd: while a thread is inside an SSL call, the first read/write-family syscall it makes names
 * the socket (OpenSSL's socket BIO: curl, openssl s_server, most C programs). The SSL* → fd pair is
 * remembered for later calls that make no syscall (buffered reads) and is set by SSL_set_fd too.
 * Node drives OpenSSL through memory BIOs, so no syscall happens inside its calls: for SSL_read the
 * thread's last read syscall before the call is taken (libuv reads the ciphertext, then Node calls
 * SSL_read), and for SSL_write the first write syscall after it returns (libuv writes the
 * ciphertext right away), announced by a TLS_KIND_BIND event since the data event already left.
 *
 * Go's crypto/tls (no OpenSSL): probes on (*tls.Conn).Write/Read entries and on each of their RET
 * instructions, found by userspace (see "Go crypto/tls" below and docs/ebpf.md). A process that
 * made probed calls reports its exit (sched_process_exit), so its sessions end without SSL_free.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tls_event.h"

char LICENSE[] SEC("license") = "GPL";

struct call {
	__u64 ssl;
	__u64 buf;
	__u64 sizep; /* size_t * of SSL_read_ex/SSL_write_ex, 0 otherwise */
	__s32 fd;    /* from a syscall inside the call, -1 until then */
	__s32 last_read_fd; /* the thread's last read fd at SSL_read entry, -1 if none */
	__u8 dir;
};

struct ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct call);
} active SEC(".maps");

/* What is known of an SSL*'s connection: its fd and, once read, the socket's addresses. */
struct conn {
	__s32 fd;
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, struct conn);
} ssl_fd SEC(".maps");

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* fd of the current task → its TCP/UDP socket's addresses (c->family stays 0 if not a socket). */
static __always_inline void read_socket(__s32 fd, struct conn *c)
{
	c->fd = fd;
	c->family = 0;
	if (fd < 0)
		return;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
	if (!sk)
		return;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memset(c->laddr, 0, 16);
		__builtin_memset(c->raddr, 0, 16);
		__builtin_memcpy(c->laddr, &l, 4);
		__builtin_memcpy(c->raddr, &r, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&c->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&c->raddr, sk, __sk_common.skc_v6_daddr);
	} else {
		return;
	}
	c->family = family;
	c->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
}

static __always_inline void put_conn(struct tls_event *e, const struct conn *c)
{
	e->family = c->family;
	e->lport = c->lport;
	e->rport = c->rport;
	e->pad2 = 0;
	__builtin_memcpy(e->laddr, c->laddr, 16);
	__builtin_memcpy(e->raddr, c->raddr, 16);
}

/* Thread → its last read-family fd (Node's SSL_read comes after the read). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __s32);
} last_read SEC(".maps");

/* Thread → SSL* whose SSL_write returned without an fd: the next write syscall binds it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} write_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* userspace may resize before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TLS_CNT_N);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct scratch {
	struct tls_event hdr;
	__u8 data[TLS_CHUNK_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

/*
 * Wake the reader only when the data waiting crosses WAKEUP_BYTES: a wakeup per event costs the
 * poll thread a context switch and JS a batch per event (seen: 52 k events/s, one batch each),
 * and forcing one on every event while more than WAKEUP_BYTES wait (a reader held up) doubled
 * the return probe's cost (1.1 → 2.7 µs, bpf_stats). The poll thread also drains every few ms,
 * which bounds the delay of a quiet period's events.
 */
#define WAKEUP_BYTES (256 << 10)
static __always_inline __u64 wakeup_flags(__u64 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	return avail < WAKEUP_BYTES && avail + size >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/*
 * Processes with TLS calls probed: their leader's exit (sched_process_exit) ends all their sessions
 * at once in userspace (SIGKILL, or an exit without SSL_free / Close). Other exits send nothing.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} tls_pids SEC(".maps");

static __always_inline void mark_tls_pid(__u32 tgid)
{
	__u8 one = 1;
	if (!bpf_map_lookup_elem(&tls_pids, &tgid))
		bpf_map_update_elem(&tls_pids, &tgid, &one, BPF_ANY);
}

/*
 * The plaintext of one call into the ring buffer: events of at most TLS_CHUNK_MAX bytes, at most
 * TLS_CHUNKS_PER_CALL of them (the rest is counted as truncated). Shared by OpenSSL's return probes
 * and Go's RET probes.
 */
static __always_inline int emit_data(__u64 id, __u64 ssl, __u64 buf, __u64 total, __u8 dir, const struct conn *conn, __u8 fd_src, __u8 library)
{
	__u32 tgid = id >> 32;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!s)
		return 0;
	s->hdr.ts_ns = bpf_ktime_get_ns();
	s->hdr.ssl = ssl;
	s->hdr.cgroup_id = bpf_get_current_cgroup_id();
	s->hdr.pid = tgid;
	s->hdr.tid = (__u32)id;
	s->hdr.fd = conn->fd;
	put_conn(&s->hdr, conn);
	s->hdr.total = total > 0xffffffffULL ? 0xffffffffU : (__u32)total;
	s->hdr.kind = TLS_KIND_DATA;
	s->hdr.dir = dir;
	s->hdr.fd_src = fd_src;
	s->hdr.library = library;
	__builtin_memset(s->hdr.pad, 0, sizeof(s->hdr.pad));
	bpf_get_current_comm(s->hdr.comm, sizeof(s->hdr.comm));

	__u64 limit = (__u64)TLS_CHUNK_MAX * TLS_CHUNKS_PER_CALL;
	__u64 copy = total < limit ? total : limit;
	if (total > limit)
		count(TLS_CNT_TRUNCATED);

	for (__u32 i = 0; i < TLS_CHUNKS_PER_CALL; i++) {
		__u64 off = (__u64)i * TLS_CHUNK_MAX;
		if (off >= copy)
			break;
		__u64 n = copy - off;
		if (n > TLS_CHUNK_MAX)
			n = TLS_CHUNK_MAX;
		/* The verifier wants the copy bounded explicitly. */
		n &= (TLS_CHUNK_MAX << 1) - 1;
		if (n > TLS_CHUNK_MAX)
			n = TLS_CHUNK_MAX;
		s->hdr.offset = off;
		s->hdr.len = n;
		s->hdr.flags = (off + n >= copy && total > limit) ? TLS_FLAG_TRUNCATED : 0;
		if (bpf_probe_read_user(s->data, n, (void *)(buf + off))) {
			count(TLS_CNT_READ_FAIL);
			return 0;
		}
		if (bpf_ringbuf_output(&events, s, sizeof(struct tls_event) + n, wakeup_flags(sizeof(struct tls_event) + n)))
			count(TLS_CNT_LOST);
	}
	return 0;
}

static __always_inline int enter(__u64 ssl, __u64 buf, __u64 sizep, __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call c = { .ssl = ssl, .buf = buf, .sizep = sizep, .fd = -1, .last_read_fd = -1, .dir = dir };
	if (dir == TLS_DIR_INGRESS) {
		__s32 *lr = bpf_map_lookup_elem(&last_read, &id);
		if (lr)
			c.last_read_fd = *lr;
	}
	bpf_map_update_elem(&active, &id, &c, BPF_ANY);
	return 0;
}

static __always_inline int leave(long rc, int ex)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&active, &id);
	if (!c)
		return 0;
	struct call call = *c;
	bpf_map_delete_elem(&active, &id);

	__u64 total = 0;
	if (ex) {
		if (rc != 1 || !call.sizep)
			return 0;
		if (bpf_probe_read_user(&total, sizeof(total), (void *)call.sizep))
			return 0;
	} else {
		if (rc <= 0)
			return 0;
		total = rc;
	}
	if (total == 0)
		return 0;
	count(TLS_CNT_CALLS);

	__u32 tgid = id >> 32;
	struct ssl_key key = { .ssl = call.ssl, .tgid = tgid };
	/* The connection: a syscall inside the call names the fd; else what this SSL* had before;
	 * else (Node) the thread's last read before SSL_read, or the first write after SSL_write. */
	struct conn conn = { .fd = -1 };
	__u8 fd_src = TLS_FD_NONE;
	struct conn *known = bpf_map_lookup_elem(&ssl_fd, &key);
	if (call.fd >= 0) {
		fd_src = TLS_FD_SYSCALL;
		if (known && known->fd == call.fd && known->family) {
			conn = *known;
		} else {
			read_socket(call.fd, &conn);
			bpf_map_update_elem(&ssl_fd, &key, &conn, BPF_ANY);
		}
	} else if (known) {
		fd_src = TLS_FD_CACHED;
		if (!known->family && known->fd >= 0) {
			/* set by SSL_set_fd before connect(): read the socket now */
			read_socket(known->fd, known);
		}
		conn = *known;
	} else if (call.dir == TLS_DIR_INGRESS && call.last_read_fd >= 0) {
		fd_src = TLS_FD_LAST_READ;
		read_socket(call.last_read_fd, &conn);
		bpf_map_update_elem(&ssl_fd, &key, &conn, BPF_ANY);
	} else if (call.dir == TLS_DIR_EGRESS) {
		bpf_map_update_elem(&write_pending, &id, &call.ssl, BPF_ANY);
	}

	mark_tls_pid(tgid);
	return emit_data(id, call.ssl, call.buf, total, call.dir, &conn, fd_src, TLS_LIB_OPENSSL);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter, void *ssl, const void *buf, int num)
{
	return enter((__u64)ssl, (__u64)buf, 0, TLS_DIR_EGRESS);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_leave, int rc)
{
	return leave(rc, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_enter, void *ssl, void *buf, int num)
{
	return enter((__u64)ssl, (__u64)buf, 0, TLS_DIR_INGRESS);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_leave, int rc)
{
	return leave(rc, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter, void *ssl, const void *buf, size_t num, size_t *written)
{
	return enter((__u64)ssl, (__u64)buf, (__u64)written, TLS_DIR_EGRESS);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_ex_leave, int rc)
{
	return leave(rc, 1);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter, void *ssl, void *buf, size_t num, size_t *readbytes)
{
	return enter((__u64)ssl, (__u64)buf, (__u64)readbytes, TLS_DIR_INGRESS);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_ex_leave, int rc)
{
	return leave(rc, 1);
}

SEC("uprobe")
int BPF_KPROBE(ssl_set_fd_enter, void *ssl, int fd)
{
	struct ssl_key key = { .ssl = (__u64)ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct conn c = { .fd = fd };
	if (fd >= 0)
		bpf_map_update_elem(&ssl_fd, &key, &c, BPF_ANY);
	return 0;
}

/* A header-only event (end of a session, an exec): no data, woken like the others. */
static __always_inline void control_event(__u8 kind, __u64 ssl, const struct conn *c, __u8 library)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 wake = wakeup_flags(sizeof(struct tls_event));
	struct tls_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(TLS_CNT_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->ssl = ssl;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->fd = -1;
	e->kind = kind;
	e->library = library;
	if (c) {
		e->fd = c->fd;
		put_conn(e, c);
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wake);
}

/*
 * SSL_free: the session is over, so userspace closes its stream at once (an HTTP/1.0 body delimited
 * by the close completes then, not after an idle timeout). This is the library's own end, the same
 * for a socket BIO (curl), memory BIOs (Node: no syscall inside its SSL calls, and libuv closes the
 * fd later on its own) and BIO layers; close(2) would need an fd → SSL* map and misses Node's
 * memory BIOs. The freed SSL* may come back for another connection: its fd is forgotten.
 */
SEC("uprobe")
int BPF_KPROBE(ssl_free_enter, void *ssl)
{
	struct ssl_key key = { .ssl = (__u64)ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct conn c = { .fd = -1 };
	struct conn *known = bpf_map_lookup_elem(&ssl_fd, &key);
	if (known)
		c = *known;
	control_event(TLS_KIND_END, (__u64)ssl, &c, TLS_LIB_OPENSSL);
	bpf_map_delete_elem(&ssl_fd, &key);
	return 0;
}

/* A process ran a new program: userspace checks its executable and mappings for OpenSSL not yet probed. */
SEC("tracepoint/sched/sched_process_exec")
int tp_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	control_event(TLS_KIND_EXEC, 0, NULL, TLS_LIB_OPENSSL);
	return 0;
}

/* A read/write-family syscall: inside an SSL call it names the fd; outside, it feeds Node's case. */
static __always_inline int on_sys(struct trace_event_raw_sys_enter *ctx, __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 fd = (__s32)ctx->args[0];
	struct call *c = bpf_map_lookup_elem(&active, &id);
	if (c) {
		if (c->dir == dir && c->fd < 0)
			c->fd = fd;
		return 0;
	}
	if (dir == TLS_DIR_INGRESS) {
		bpf_map_update_elem(&last_read, &id, &fd, BPF_ANY);
		return 0;
	}
	__u64 *ssl = bpf_map_lookup_elem(&write_pending, &id);
	if (!ssl)
		return 0;
	__u64 sslv = *ssl;
	bpf_map_delete_elem(&write_pending, &id);
	struct ssl_key key = { .ssl = sslv, .tgid = id >> 32 };
	struct conn conn;
	read_socket(fd, &conn);
	bpf_map_update_elem(&ssl_fd, &key, &conn, BPF_ANY);
	__u64 wake = wakeup_flags(sizeof(struct tls_event)); /* before reserving: it counts as waiting at once */
	struct tls_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(TLS_CNT_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->ssl = sslv;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->fd = fd;
	e->kind = TLS_KIND_BIND;
	e->dir = TLS_DIR_EGRESS;
	e->fd_src = TLS_FD_AFTER_WRITE;
	put_conn(e, &conn);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wake);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int tp_write(struct trace_event_raw_sys_enter *ctx) { return on_sys(ctx, TLS_DIR_EGRESS); }
SEC("tracepoint/syscalls/sys_enter_writev")
int tp_writev(struct trace_event_raw_sys_enter *ctx) { return on_sys(ctx, TLS_DIR_EGRESS); }
SEC("tracepoint/syscalls/sys_enter_sendto")
int tp_sendto(struct trace_event_raw_sys_enter *ctx) { return on_sys(ctx, TLS_DIR_EGRESS); }
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int tp_sendmsg(struct trace_event_raw_sys_enter *ctx) { return on_sys(ctx, TLS_DIR_EGRESS); }
SEC("tracepoint/syscalls/sys_enter_read")
int tp_read(struct trace_event_raw_sys_enter *ctx) { return on_sys(ctx, TLS_DIR_INGRESS); }
SEC("tracepoint/syscalls/sys_enter_readv")
int tp_readv(struct trace_event_raw_sys_enter *ctx) { return on_sys(ctx, TLS_DIR_INGRESS); }
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int tp_recvfrom(struct trace_event_raw_sys_enter *ctx) { return on_sys(ctx, TLS_DIR_INGRESS); }
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int tp_recvmsg(struct trace_event_raw_sys_enter *ctx) { return on_sys(ctx, TLS_DIR_INGRESS); }

/*
 * A process is gone (its thread-group leader exited: exit(), a signal, SIGKILL included): every
 * TLS session it had is over, whether or not SSL_free / Close ran. Only processes that made a
 * probed TLS call are reported.
 */
SEC("tracepoint/sched/sched_process_exit")
int tp_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if ((__u32)id != tgid || !bpf_map_lookup_elem(&tls_pids, &tgid))
		return 0;
	bpf_map_delete_elem(&tls_pids, &tgid);
	control_event(TLS_KIND_EXIT, 0, NULL, TLS_LIB_OPENSSL);
	return 0;
}

/*
 * Go crypto/tls. Go's register ABI (ABIInternal, Go 1.17+, amd64; Go source
 * src/cmd/compile/abi-internal.md): integer arguments in RAX, RBX, RCX, RDI, RSI, R8–R11, results
 * in the same registers, R14 holds the current goroutine (g). So for
 * func (c *Conn) Write(b []byte) (int, error) / Read: c in RAX, b's pointer in RBX, its length in
 * RCX; n in RAX at the return.
 *
 * Go grows a goroutine's stack by copying it, so a uretprobe (which rewrites the return address on
 * the stack) breaks the program: userspace finds every RET of Write and Read in the binary and
 * go_tls_ret is attached at each. A goroutine may move to another thread while it blocks in Read,
 * so calls are keyed by (tgid, g), not by thread.
 */
struct go_key {
	__u64 g;
	__u32 tgid;
	__u32 pad;
};

struct go_call {
	__u64 conn; /* *tls.Conn */
	__u64 buf;
	__u8 dir;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, struct go_call);
} go_active SEC(".maps");

#if defined(__TARGET_ARCH_x86)
#define GO_ARG1(x) ((x)->ax)
#define GO_ARG2(x) ((x)->bx)
#define GO_G(x) ((x)->r14)
#define GO_RET1(x) ((x)->ax)
#else
/* Only x86-64 is probed (src/capture/tls/goelf.ts refuses other machines). */
#define GO_ARG1(x) 0
#define GO_ARG2(x) 0
#define GO_G(x) 0
#define GO_RET1(x) 0
#endif

/*
 * The socket fd behind a *tls.Conn, or -1: tls.Conn's first field is conn net.Conn, an interface
 * (itab, data) whose data is a *net.TCPConn for TCP; TCPConn is struct{ conn{ fd *netFD } } and
 * netFD starts with pfd poll.FD, whose Sysfd int follows fdmu (fdMutex: state u64, rsema u32,
 * wsema u32 = 16 bytes) (Go source crypto/tls/conn.go, net/tcpsock.go, net/net.go, net/fd_posix.go,
 * internal/poll/fd_unix.go; the same from Go 1.17 to 1.26). Another net.Conn (a wrapper, a pipe)
 * gives a number that read_socket() then finds is not a socket of this process.
 */
static __always_inline __s32 go_conn_fd(__u64 conn)
{
	__u64 data = 0, netfd = 0;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&data, sizeof(data), (void *)(conn + 8)) || !data)
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)data) || !netfd)
		return -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + 16)))
		return -1;
	return sysfd < 0 || sysfd > 0x7fffffff ? -1 : (__s32)sysfd;
}

/* The connection of a *tls.Conn: remembered per (conn, tgid), else read through its net.Conn. */
static __always_inline __u8 go_connection(__u64 c, __u32 tgid, struct conn *conn)
{
	struct ssl_key key = { .ssl = c, .tgid = tgid };
	struct conn *known = bpf_map_lookup_elem(&ssl_fd, &key);
	if (known && known->family) {
		*conn = *known;
		return TLS_FD_CACHED;
	}
	read_socket(go_conn_fd(c), conn);
	if (!conn->family) {
		conn->fd = -1;
		return TLS_FD_NONE;
	}
	bpf_map_update_elem(&ssl_fd, &key, conn, BPF_ANY);
	return TLS_FD_GO_CONN;
}

static __always_inline int go_enter(struct pt_regs *ctx, __u8 dir)
{
	struct go_key k = { .g = GO_G(ctx), .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct go_call c = { .conn = GO_ARG1(ctx), .buf = GO_ARG2(ctx), .dir = dir };
	/* Entered twice when the stack grows first (morestack calls the function again): same values. */
	bpf_map_update_elem(&go_active, &k, &c, BPF_ANY);
	return 0;
}

SEC("uprobe")
int go_write_enter(struct pt_regs *ctx)
{
	return go_enter(ctx, TLS_DIR_EGRESS);
}

SEC("uprobe")
int go_read_enter(struct pt_regs *ctx)
{
	return go_enter(ctx, TLS_DIR_INGRESS);
}

/* At each RET of (*Conn).Write and (*Conn).Read. */
SEC("uprobe")
int go_tls_ret(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct go_key k = { .g = GO_G(ctx), .tgid = tgid };
	struct go_call *c = bpf_map_lookup_elem(&go_active, &k);
	if (!c)
		return 0;
	struct go_call call = *c;
	bpf_map_delete_elem(&go_active, &k);
	long n = (long)GO_RET1(ctx);
	if (n <= 0)
		return 0;
	count(TLS_CNT_CALLS);

	struct conn conn = { .fd = -1 };
	__u8 fd_src = go_connection(call.conn, tgid, &conn);
	mark_tls_pid(tgid);
	return emit_data(id, call.conn, call.buf, (__u64)n, call.dir, &conn, fd_src, TLS_LIB_GO);
}

/*
 * (*Conn).writeRecordLocked(typ recordType, data []byte): c in RAX, typ in RBX, data's pointer in
 * RCX and length in RDI. It runs under c.out's lock once per record, so its calls come in wire
 * order whichever goroutine wrote; the plaintext is emitted here, not at Write's return (Go source
 * crypto/tls/conn.go). Attached at the body's first instruction, which a grown stack does not run
 * twice. Only application data (record type 23, RFC 8446 §5.1): handshake messages and alerts go
 * through it too.
 */
#define GO_RECORD_APPLICATION_DATA 23
#if defined(__TARGET_ARCH_x86)
#define GO_ARG3(x) ((x)->cx)
#define GO_ARG4(x) ((x)->di)
#else
#define GO_ARG3(x) 0
#define GO_ARG4(x) 0
#endif

SEC("uprobe")
int go_write_record(struct pt_regs *ctx)
{
	if ((GO_ARG2(ctx) & 0xff) != GO_RECORD_APPLICATION_DATA)
		return 0;
	__u64 len = GO_ARG4(ctx);
	if (len == 0)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__u64 c = GO_ARG1(ctx);
	count(TLS_CNT_CALLS);
	struct conn conn = { .fd = -1 };
	__u8 fd_src = go_connection(c, tgid, &conn);
	mark_tls_pid(tgid);
	return emit_data(id, c, GO_ARG3(ctx), len, TLS_DIR_EGRESS, &conn, fd_src, TLS_LIB_GO);
}

/* (*Conn).Close: the session is over (as SSL_free for OpenSSL). */
SEC("uprobe")
int go_close_enter(struct pt_regs *ctx)
{
	__u64 c = GO_ARG1(ctx);
	struct ssl_key key = { .ssl = c, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct conn conn = { .fd = -1 };
	struct conn *known = bpf_map_lookup_elem(&ssl_fd, &key);
	if (known)
		conn = *known;
	control_event(TLS_KIND_END, c, &conn, TLS_LIB_GO);
	bpf_map_delete_elem(&ssl_fd, &key);
	return 0;
}
