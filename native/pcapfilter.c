/*
 * libpcap's verdict on raw IP packets (DLT_RAW) for a tcpdump-syntax filter: the agent's --filter,
 * applied to TLS plaintext, which has no packets of its own (JS builds one synthetic IP+TCP header
 * per direction of a connection). Apart from addon.c, because libpcap's classic `struct bpf_insn`
 * and linux/bpf.h's cannot be in one translation unit.
 */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tw_filter_match(const char *expr, const unsigned char *const *pkts, const size_t *lens, unsigned n, int *out, char *err, size_t errlen)
{
	pcap_t *p = pcap_open_dead(DLT_RAW, 65535);
	if (!p) {
		snprintf(err, errlen, "pcap_open_dead failed");
		return -1;
	}
	struct bpf_program prog;
	if (pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(err, errlen, "%s", pcap_geterr(p));
		pcap_close(p);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct pcap_pkthdr h;
		memset(&h, 0, sizeof(h));
		h.caplen = (bpf_u_int32)lens[i];
		h.len = (bpf_u_int32)lens[i];
		out[i] = lens[i] > 0 && pcap_offline_filter(&prog, &h, pkts[i]) != 0;
	}
	pcap_freecode(&prog);
	pcap_close(p);
	return 0;
}

/*
 * A compiled filter kept for the TC source's reader thread: the agent's --filter in tcpdump syntax
 * is checked exactly, frame by frame, before a frame is handed to JS. The in-kernel filter of
 * tc.bpf.c only knows ports and prefixes, so it lets a superset through (src/capture/tc/expression.ts);
 * this is what makes `--source ebpf` keep the same packets as libpcap would for any expression.
 */
void *tw_filter_compile(const char *expr, int linktype, char *err, size_t errlen)
{
	pcap_t *p = pcap_open_dead(linktype, 65535);
	if (!p) {
		snprintf(err, errlen, "pcap_open_dead failed");
		return NULL;
	}
	struct bpf_program *prog = calloc(1, sizeof(*prog));
	if (!prog || pcap_compile(p, prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(err, errlen, "%s", prog ? pcap_geterr(p) : "out of memory");
		free(prog);
		pcap_close(p);
		return NULL;
	}
	pcap_close(p);
	return prog;
}

int tw_filter_run(const void *prog, const unsigned char *pkt, unsigned caplen, unsigned len)
{
	struct pcap_pkthdr h;
	memset(&h, 0, sizeof(h));
	h.caplen = caplen;
	h.len = len;
	return pcap_offline_filter((const struct bpf_program *)prog, &h, pkt) != 0;
}

void tw_filter_free(void *prog)
{
	if (!prog)
		return;
	pcap_freecode(prog);
	free(prog);
}
