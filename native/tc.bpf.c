// SPDX-License-Identifier: GPL-2.0
/*
 * The TC packet source (issue 18): two clsact classifiers (direct action), one for ingress and
 * one for egress, that copy each frame into the `events` ring with a kernel timestamp, the
 * ifindex and the direction (tc_event.h). They always return TC_ACT_OK: a capture never drops or
 * alters traffic. Counters are per-CPU (TC_CNT_*), read and summed by the addon.
 *
 * The copy goes through a per-CPU scratch slot (an array keyed by CPU number): a ring record's size
 * must be a constant for bpf_ringbuf_reserve(), and a per-CPU array value is capped at 32 KiB
 * (PCPU_MIN_UNIT_SIZE), less than a 64 KiB GSO frame. bpf_ringbuf_output() then takes a bounded
 * variable size. TC runs with bottom halves off on egress and in softirq on ingress, so one CPU
 * never runs the program twice at once and its slot is its own.
 *
 * The filter (empty = every frame): ports (either end) and IPv4/IPv6 prefixes (either end), set
 * from JS through the `ports`, `nets4`, `nets6` maps and `settings`. IPv6 extension headers are not
 * walked: a frame whose next header is not TCP/UDP/SCTP has no port to match.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tc_event.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_OK 0
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_SCTP 132
#define MAX_CPUS 256

struct scratch {
	struct tc_event ev;
	__u8 data[TC_MAX_SNAP + 1];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* set again at load by the addon (ringBytes) */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TC_CNT_N);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_config);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16); /* host order */
	__type(value, __u8);
} ports SEC(".maps");

struct net4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct net6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct net4_key);
	__type(value, __u8);
} nets4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct net6_key);
	__type(value, __u8);
} nets6 SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1; /* per-CPU: no other writer */
}

static __always_inline int port_in(__u16 p)
{
	return bpf_map_lookup_elem(&ports, &p) != NULL;
}

/* Whether the frame passes the filter. L2: Ethernet with up to one VLAN tag. */
static __always_inline int keep(struct __sk_buff *skb, __u32 filter)
{
	__u16 proto;
	__u32 off = 12;
	if (bpf_skb_load_bytes(skb, off, &proto, 2))
		return 0;
	off += 2;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		if (bpf_skb_load_bytes(skb, off + 2, &proto, 2))
			return 0;
		off += 4;
	}
	__u8 l4proto = 0;
	__u32 l4off = 0;
	int net_ok = !(filter & TC_FILTER_NETS), frag = 0;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
			return 0;
		l4proto = ip.protocol;
		l4off = off + ip.ihl * 4;
		/* a fragment other than the first carries no ports */
		frag = (bpf_ntohs(ip.frag_off) & 0x1fff) != 0;
		if (!net_ok) {
			struct net4_key k = { .prefixlen = 32 };
			__builtin_memcpy(k.addr, &ip.saddr, 4);
			net_ok = bpf_map_lookup_elem(&nets4, &k) != NULL;
			if (!net_ok) {
				__builtin_memcpy(k.addr, &ip.daddr, 4);
				net_ok = bpf_map_lookup_elem(&nets4, &k) != NULL;
			}
		}
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)))
			return 0;
		l4proto = ip6.nexthdr;
		l4off = off + sizeof(ip6);
		if (!net_ok) {
			struct net6_key k = { .prefixlen = 128 };
			__builtin_memcpy(k.addr, &ip6.saddr, 16);
			net_ok = bpf_map_lookup_elem(&nets6, &k) != NULL;
			if (!net_ok) {
				__builtin_memcpy(k.addr, &ip6.daddr, 16);
				net_ok = bpf_map_lookup_elem(&nets6, &k) != NULL;
			}
		}
	} else {
		/* ARP and the rest: no address or port to match */
		return 0;
	}
	__u16 pp[2] = { 0, 0 };
	int ports = !frag && (l4proto == IPPROTO_TCP || l4proto == IPPROTO_UDP || l4proto == IPPROTO_SCTP)
		&& !bpf_skb_load_bytes(skb, l4off, pp, 4);
	/* The agent's drain markers (UDP to the discard port, RFC 863; src/live/barrier.ts) always
	 * pass: the exact filter in the reader lets them through as well, and judges everything else. */
	if (ports && l4proto == IPPROTO_UDP && pp[1] == bpf_htons(TC_MARKER_PORT))
		return 1;
	if (!net_ok)
		return 0;
	if (!(filter & TC_FILTER_PORTS))
		return 1;
	if (!ports)
		return 0;
	return port_in(bpf_ntohs(pp[0])) || port_in(bpf_ntohs(pp[1]));
}

/*
 * Wake the reader only when the data waiting crosses a threshold (as tls.bpf.c does, for the same
 * reason: a wakeup per record costs the poll thread a context switch and JS a batch per packet);
 * the poll thread also drains every 10 ms, which bounds a quiet period's delay. The threshold is
 * a quarter of the ring, at most WAKEUP_BYTES, so that a small ring still wakes its reader.
 */
#define WAKEUP_BYTES (256 << 10)
static __always_inline __u64 wakeup_flags(__u64 size)
{
	__u64 ring = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 4;
	__u64 at = ring < WAKEUP_BYTES ? ring : WAKEUP_BYTES;
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	return avail < at && avail + size >= at ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline int capture(struct __sk_buff *skb, __u8 dir)
{
	__u64 ts = bpf_ktime_get_ns();
	count(TC_CNT_SEEN);
	__u32 zero = 0;
	struct tc_config *cfg = bpf_map_lookup_elem(&settings, &zero);
	__u32 snap = cfg && cfg->snaplen ? cfg->snaplen : TC_MAX_SNAP;
	if (cfg && cfg->filter && !keep(skb, cfg->filter)) {
		count(TC_CNT_FILTERED);
		return TC_ACT_OK;
	}
	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch *s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s) {
		count(TC_CNT_READ_FAIL);
		return TC_ACT_OK;
	}
	__u32 len = skb->len;
	__u32 cap = len < snap ? len : snap;
	/* The verifier wants the bound on the very register passed to the helper: the empty asm keeps
	 * clang from passing an unmasked copy. TC_MAX_SNAP is 0xffff. */
	asm volatile("" : "+r"(cap));
	cap &= TC_MAX_SNAP;
	if (cap == 0 || bpf_skb_load_bytes(skb, 0, s->data, cap)) {
		count(TC_CNT_READ_FAIL);
		return TC_ACT_OK;
	}
	s->ev.ts_ns = ts;
	s->ev.ifindex = skb->ifindex;
	s->ev.len = len;
	s->ev.caplen = cap;
	s->ev.dir = dir;
	if (bpf_ringbuf_output(&events, s, sizeof(struct tc_event) + cap, wakeup_flags(sizeof(struct tc_event) + cap)))
		count(TC_CNT_LOST);
	else
		count(TC_CNT_SENT);
	return TC_ACT_OK;
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	return capture(skb, TC_DIR_INGRESS);
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	return capture(skb, TC_DIR_EGRESS);
}
