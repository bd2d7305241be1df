/*
 * The ring-buffer record shared by tls.bpf.c (writer) and src/capture/tls/events.ts (reader).
 * All fields little-endian, header 112 bytes, then `len` bytes of plaintext. Keep the JS parser in
 * step with any change here (TLS_EVENT_HDR_SIZE there).
 */
#ifndef TAPWIRE_TLS_EVENT_H
#define TAPWIRE_TLS_EVENT_H

/* Plaintext bytes per event; a call moving more is split into several events (offset grows). */
#define TLS_CHUNK_MAX 16384
/* Events per call at most: beyond TLS_CHUNK_MAX * TLS_CHUNKS_PER_CALL bytes the rest is not copied,
 * and the last event carries TLS_FLAG_TRUNCATED (total keeps the true byte count). */
#define TLS_CHUNKS_PER_CALL 8

#define TLS_KIND_DATA 1 /* plaintext of one SSL_read/SSL_write call (or a part of it) */
#define TLS_KIND_BIND 2 /* an SSL* was tied to an fd after its data event went out (Node's memory BIOs) */
#define TLS_KIND_END 3  /* SSL_free: the session is over (len 0; fd and socket as known for the SSL*) */
#define TLS_KIND_EXEC 4 /* sched_process_exec: pid ran a new program (len 0, ssl 0): userspace looks for new files to probe */
#define TLS_KIND_EXIT 5 /* sched_process_exit of a thread-group leader that had TLS calls probed: every session of pid is over (len 0, ssl 0) */

/* Which library's calls the event comes from (library byte). */
#define TLS_LIB_OPENSSL 0 /* SSL_* (ssl is an SSL*) */
#define TLS_LIB_GO 1      /* Go crypto/tls (ssl is a *tls.Conn) */

#define TLS_DIR_EGRESS 0  /* SSL_write / SSL_write_ex */
#define TLS_DIR_INGRESS 1 /* SSL_read / SSL_read_ex */

/* Where the fd came from. */
#define TLS_FD_NONE 0      /* unknown: fd is -1 */
#define TLS_FD_SYSCALL 1   /* a read/write syscall on this thread inside the SSL call */
#define TLS_FD_CACHED 2    /* remembered from an earlier call on the same SSL* (or SSL_set_fd) */
#define TLS_FD_LAST_READ 3 /* the last read syscall of this thread before SSL_read (Node: ciphertext read first) */
#define TLS_FD_AFTER_WRITE 4 /* the first write syscall of this thread after SSL_write returned (bind events) */
#define TLS_FD_GO_CONN 5   /* read from the *tls.Conn: conn net.Conn → *net.TCPConn → netFD → poll.FD.Sysfd */

#define TLS_FLAG_TRUNCATED 1

/* Indexes of the per-CPU counters map. */
#define TLS_CNT_LOST 0       /* events the ring buffer had no room for */
#define TLS_CNT_CALLS 1      /* SSL calls that returned > 0 bytes */
#define TLS_CNT_TRUNCATED 2  /* calls longer than the per-call copy limit */
#define TLS_CNT_READ_FAIL 3  /* bpf_probe_read_user failures (page not present) */
#define TLS_CNT_N 4

struct tls_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns() at the return probe (CLOCK_MONOTONIC) */
	__u64 ssl;       /* the SSL* */
	__u64 cgroup_id; /* bpf_get_current_cgroup_id() */
	__u32 pid;       /* tgid */
	__u32 tid;
	__s32 fd;
	__u32 total;     /* bytes the call moved (true length) */
	__u32 offset;    /* where this event's bytes start within the call */
	__u32 len;       /* bytes that follow the header */
	__u8 kind;
	__u8 dir;
	__u8 fd_src;
	__u8 flags;
	__u8 library;    /* TLS_LIB_* */
	__u8 pad[3];
	char comm[16];
	/* The socket behind fd, read in the kernel when the fd became known (so a connection that
	 * closed before userspace looked is still named). family 0: unknown. Ports host order;
	 * addresses network order (IPv4 in the first 4 bytes). The probed process's end is "local". */
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 pad2;
	__u8 laddr[16];
	__u8 raddr[16];
};

#endif
