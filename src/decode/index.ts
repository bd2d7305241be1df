/**
 * decode/: stateless packet decoding: link layers (Ethernet, 802.1Q, SLL, raw …), IPv4/IPv6 with
 * fragments and extension headers, TCP/UDP headers; zero-copy views into the packet buffer.
 */
export { Decoder, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, formatIp, type DecodeStats, type Decoded } from './packet.js';
