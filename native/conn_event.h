/*
 * The ring-buffer record shared by conn.bpf.c (writer) and src/capture/owners/events.ts (reader):
 * which process holds each end of a TCP connection. Little-endian, 80 bytes, no payload. Keep the
 * JS parser in step with any change here (OWNER_EVENT_SIZE there).
 */
#ifndef TAPWIRE_CONN_EVENT_H
#define TAPWIRE_CONN_EVENT_H

#define CONN_KIND_CONNECT 1 /* the process connected: local is the client's end */
#define CONN_KIND_ACCEPT 2  /* the process accepted: local is the server's end */
#define CONN_KIND_EXEC 3    /* the process ran a new program: what it was classified as is stale */

/* Indexes of the per-CPU counters map (index 0 is what the addon reports as `lost`). */
#define CONN_CNT_LOST 0      /* events the ring buffer had no room for */
#define CONN_CNT_UNPAIRED 1  /* SYN_SENT → ESTABLISHED with no saved connector (it predates the object) */
#define CONN_CNT_N 4

struct conn_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns() (CLOCK_MONOTONIC): connect() or accept() return */
	__u64 cgroup_id; /* bpf_get_current_cgroup_id() of the owning process */
	__u32 pid;       /* tgid */
	__u32 tid;
	__u8 kind;
	__u8 pad;
	__u16 family;    /* 2 AF_INET, 10 AF_INET6 */
	__u16 lport;     /* host order */
	__u16 rport;     /* host order */
	__u8 laddr[16];  /* network order; IPv4 in the first 4 bytes */
	__u8 raddr[16];
	char comm[16];   /* the thread group leader's comm (the process's name) */
};

#endif
