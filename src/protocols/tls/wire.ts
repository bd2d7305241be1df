/**
 * TLS code points and bounds, as the records and handshake messages carry them on the wire.
 * Only the handshake's clear part is read: nothing here decrypts. Numbers are IANA's (the "TLS
 * Parameters" and "TLS ExtensionType Values" registries); each table cites where it is defined.
 */

/** ContentType of a record (RFC 8446 §5.1; RFC 5246 §6.2.1). */
export const CONTENT = {
  change_cipher_spec: 20,
  alert: 21,
  handshake: 22,
  application_data: 23,
  heartbeat: 24,
} as const;

/** HandshakeType (RFC 8446 §4; RFC 5246 §7.4). */
export const HANDSHAKE = {
  client_hello: 1,
  server_hello: 2,
  new_session_ticket: 4,
  end_of_early_data: 5,
  encrypted_extensions: 8,
  certificate: 11,
  server_key_exchange: 12,
  certificate_request: 13,
  server_hello_done: 14,
  certificate_verify: 15,
  client_key_exchange: 16,
  finished: 20,
} as const;

/** ExtensionType values read here (RFC 8446 §4.2; RFC 6066 §3 SNI; RFC 7301 §3.1 ALPN; RFC 5077 tickets). */
export const EXT = {
  server_name: 0,
  supported_groups: 10,
  signature_algorithms: 13,
  alpn: 16,
  session_ticket: 35,
  pre_shared_key: 41,
  early_data: 42,
  supported_versions: 43,
  key_share: 51,
} as const;

/** Bounds on what a session holds. */
export const TLS_LIMITS = {
  /**
   * A record's length field: TLSPlaintext is at most 2^14 bytes, TLSCiphertext at most 2^14 + 256
   * in TLS 1.3 (RFC 8446 §5.2) and 2^14 + 2048 in TLS 1.2 (RFC 5246 §6.2.3). Past the larger, the
   * bytes are not TLS.
   */
  maxRecord: 16384 + 2048,
  /**
   * A ClientHello or ServerHello being reassembled across records. The handshake length field
   * allows 2^24 − 1; real hellos are a few KiB (post-quantum key shares included), so a hello
   * past this is reported, not held.
   */
  maxHandshake: 64 * 1024,
  /** Entries kept from one offered list (cipher suites, extensions, ALPN names, signature algorithms). */
  maxList: 256,
  /** Bytes kept of one SNI host name or ALPN protocol name (RFC 6066 §3 caps HostName at 2^16 − 1). */
  maxName: 255,
} as const;

/**
 * GREASE values (RFC 8701 §2): 0x0A0A, 0x1A1A … 0xFAFA in cipher suites, extensions, versions,
 * groups and signature algorithms. Clients send them to keep servers tolerant; fingerprints skip them.
 */
export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
}

/** The protocol version by name (RFC 8446 §4.2.1 and its predecessors), or its hex code. */
export function versionName(v: number): string {
  switch (v) {
    case 0x0304: return 'TLS 1.3';
    case 0x0303: return 'TLS 1.2';
    case 0x0302: return 'TLS 1.1';
    case 0x0301: return 'TLS 1.0';
    case 0x0300: return 'SSL 3.0';
    default: return hex4(v);
  }
}

/** "0x1302". */
export function hex4(v: number): string {
  return `0x${v.toString(16).padStart(4, '0')}`;
}

/**
 * IANA names of the cipher suites a current client or server negotiates (the "TLS Cipher
 * Suites" registry; RFC 8446 §B.4 for TLS 1.3, RFC 5289, RFC 7905, RFC 5288, RFC 5246 for
 * the rest). A suite not listed is shown by its code.
 */
const CIPHERS: Readonly<Record<number, string>> = {
  0x1301: 'TLS_AES_128_GCM_SHA256',
  0x1302: 'TLS_AES_256_GCM_SHA384',
  0x1303: 'TLS_CHACHA20_POLY1305_SHA256',
  0x1304: 'TLS_AES_128_CCM_SHA256',
  0x1305: 'TLS_AES_128_CCM_8_SHA256',
  0xc02b: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  0xc02c: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  0xc02f: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  0xc030: 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  0xcca8: 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  0xcca9: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  0xccaa: 'TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  0xc009: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA',
  0xc00a: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA',
  0xc013: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA',
  0xc014: 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA',
  0xc023: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
  0xc024: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384',
  0xc027: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256',
  0xc028: 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384',
  0x009c: 'TLS_RSA_WITH_AES_128_GCM_SHA256',
  0x009d: 'TLS_RSA_WITH_AES_256_GCM_SHA384',
  0x009e: 'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256',
  0x009f: 'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384',
  0x002f: 'TLS_RSA_WITH_AES_128_CBC_SHA',
  0x0035: 'TLS_RSA_WITH_AES_256_CBC_SHA',
  0x003c: 'TLS_RSA_WITH_AES_128_CBC_SHA256',
  0x003d: 'TLS_RSA_WITH_AES_256_CBC_SHA256',
  0x0033: 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA',
  0x0039: 'TLS_DHE_RSA_WITH_AES_256_CBC_SHA',
  0x0067: 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA256',
  0x006b: 'TLS_DHE_RSA_WITH_AES_256_CBC_SHA256',
  0x000a: 'TLS_RSA_WITH_3DES_EDE_CBC_SHA',
  0x0005: 'TLS_RSA_WITH_RC4_128_SHA',
  0x00ff: 'TLS_EMPTY_RENEGOTIATION_INFO_SCSV',
};

/** The IANA name of a cipher suite, or its code ("0x1302"). */
export function cipherName(c: number): string {
  return CIPHERS[c] ?? hex4(c);
}

/** AlertDescription names (RFC 8446 §6; RFC 5246 §7.2) for the alerts a handshake fails with. */
const ALERTS: Readonly<Record<number, string>> = {
  0: 'close_notify', 10: 'unexpected_message', 20: 'bad_record_mac', 22: 'record_overflow', 40: 'handshake_failure',
  42: 'bad_certificate', 43: 'unsupported_certificate', 44: 'certificate_revoked', 45: 'certificate_expired',
  46: 'certificate_unknown', 47: 'illegal_parameter', 48: 'unknown_ca', 49: 'access_denied', 50: 'decode_error',
  51: 'decrypt_error', 70: 'protocol_version', 71: 'insufficient_security', 80: 'internal_error',
  86: 'inappropriate_fallback', 90: 'user_canceled', 109: 'missing_extension', 110: 'unsupported_extension',
  112: 'unrecognized_name', 116: 'certificate_required', 120: 'no_application_protocol',
};

export function alertName(d: number): string {
  return ALERTS[d] ?? `alert_${d}`;
}

/**
 * A ServerHello whose random is SHA-256("HelloRetryRequest") is a HelloRetryRequest
 * (RFC 8446 §4.1.3): the server asks for a second ClientHello with another key share.
 */
export const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');
