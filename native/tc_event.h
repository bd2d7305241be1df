/*
 * The ring-buffer record shared by tc.bpf.c (writer) and src/capture/tc/events.ts (reader): one
 * packet seen by a TC clsact filter, a 24-byte header then `caplen` bytes of the frame from its
 * Ethernet header. Little-endian. Keep TC_EVENT_SIZE in events.ts in step with any change here.
 */
#ifndef TAPWIRE_TC_EVENT_H
#define TAPWIRE_TC_EVENT_H

#define TC_DIR_INGRESS 0
#define TC_DIR_EGRESS 1

/* The most bytes copied of one frame: a veth or loopback GSO packet is up to 64 KiB, and libpcap's
 * snap length in `cap` is 65535, so that both sources cut the same frames. */
#define TC_MAX_SNAP 65535

/* Indexes of the per-CPU counters map. */
#define TC_CNT_SEEN 0      /* frames the program ran on */
#define TC_CNT_SENT 1      /* records put in the ring */
#define TC_CNT_LOST 2      /* records the ring had no room for */
#define TC_CNT_FILTERED 3  /* frames the in-kernel filter left out */
#define TC_CNT_READ_FAIL 4 /* frames that could not be copied (no scratch slot for this CPU, load failure) */
#define TC_CNT_N 8

/* UDP to this port (discard, RFC 863) passes any filter: the agent's drain markers (src/live/barrier.ts MARKER_PORT) */
#define TC_MARKER_PORT 9

/* Little-endian 16-bit filter flags in tc_config. */
#define TC_FILTER_PORTS 1 /* keep a frame only when a TCP/UDP/SCTP port at either end is in `ports` */
#define TC_FILTER_NETS 2  /* keep a frame only when an address at either end is in nets4/nets6 */

struct tc_config { /* the one value of the `settings` map */
	__u32 snaplen; /* 0: TC_MAX_SNAP */
	__u32 filter;  /* TC_FILTER_* bits; 0 keeps every frame */
};

struct tc_event {
	__u64 ts_ns;   /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) when the program ran */
	__u32 ifindex; /* skb->ifindex: the device the filter is attached to */
	__u32 len;     /* the frame's length (skb->len, from the Ethernet header) */
	__u32 caplen;  /* bytes that follow */
	__u8 dir;      /* TC_DIR_* */
	__u8 pad[3];
};

#endif
