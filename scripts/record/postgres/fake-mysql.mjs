// A synthetic MySQL connection phase, for the negative fixture pcaps/postgres/mysql-on-5432.pcap: not
// PostgreSQL, on PostgreSQL's port. No MySQL server exists on this machine, so this tiny server and
// client write the real protocol bytes themselves, as the MySQL client/server protocol documents them
// (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html):
//
//   server -> Protocol::HandshakeV10          (seq 0: protocol 10, "8.0.36", connection id, 20-byte
//                                              scramble in two parts, capabilities, utf8mb4,
//                                              mysql_native_password)
//   client -> Protocol::HandshakeResponse41   (seq 1: capabilities, max packet, charset, user "app",
//                                              mysql_native_password token, database "shop", plugin name)
//   server -> OK_Packet                       (seq 2)
//   client -> COM_QUIT                        (seq 0), server closes
//
// Every packet is a 3-byte little-endian payload length, a 1-byte sequence id, then the payload.
// The scramble is fixed (prngBytes), so the bytes are the same on every run.
import net from 'node:net';
import crypto from 'node:crypto';
import { prngBytes } from '../lib.mjs';

// capability flags (include/mysql_com.h)
const CLIENT = {
  LONG_PASSWORD: 0x1, FOUND_ROWS: 0x2, LONG_FLAG: 0x4, CONNECT_WITH_DB: 0x8, NO_SCHEMA: 0x10, COMPRESS: 0x20,
  ODBC: 0x40, LOCAL_FILES: 0x80, IGNORE_SPACE: 0x100, PROTOCOL_41: 0x200, INTERACTIVE: 0x400, SSL: 0x800,
  IGNORE_SIGPIPE: 0x1000, TRANSACTIONS: 0x2000, RESERVED: 0x4000, SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000, MULTI_RESULTS: 0x20000, PS_MULTI_RESULTS: 0x40000, PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000, PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000, CAN_HANDLE_EXPIRED_PASSWORDS: 0x400000,
  SESSION_TRACK: 0x800000, DEPRECATE_EOF: 0x1000000,
};
// what a MySQL 8.0 server without TLS offers: everything up to DEPRECATE_EOF except SSL
const SERVER_CAPS = Object.values(CLIENT).reduce((a, b) => a | b, 0) & ~CLIENT.SSL;
const CLIENT_CAPS = CLIENT.LONG_PASSWORD | CLIENT.LONG_FLAG | CLIENT.CONNECT_WITH_DB | CLIENT.PROTOCOL_41
  | CLIENT.TRANSACTIONS | CLIENT.SECURE_CONNECTION | CLIENT.MULTI_STATEMENTS | CLIENT.MULTI_RESULTS
  | CLIENT.PLUGIN_AUTH | CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA;
const UTF8MB4_0900_AI_CI = 255;
const SERVER_STATUS_AUTOCOMMIT = 0x0002;
const PLUGIN = 'mysql_native_password';
const SERVER_VERSION = '8.0.36';
const CONNECTION_ID = 8;
const USER = 'app';
const PASSWORD = 'tapwire';
const DATABASE = 'shop';

function packet(seq, payload) {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  h[3] = seq;
  return Buffer.concat([h, payload]);
}
const u16 = (n) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; };
const nul = (s) => Buffer.from(`${s}\0`, 'utf8');

// 20 bytes of scramble; the protocol forbids NUL bytes in it (it is sent NUL-terminated)
const SCRAMBLE = Buffer.from(prngBytes(20, 0x5432).map((b) => (b % 94) + 33));

/** Protocol::HandshakeV10 */
export function handshakeV10() {
  return packet(0, Buffer.concat([
    Buffer.from([10]),                                 // protocol version
    nul(SERVER_VERSION),                               // server version
    u32(CONNECTION_ID),                                // thread / connection id
    SCRAMBLE.subarray(0, 8),                           // auth-plugin-data-part-1
    Buffer.from([0]),                                  // filler
    u16(SERVER_CAPS & 0xffff),                         // capability flags, lower 2 bytes
    Buffer.from([UTF8MB4_0900_AI_CI]),                 // character set
    u16(SERVER_STATUS_AUTOCOMMIT),                     // status flags
    u16(SERVER_CAPS >>> 16),                           // capability flags, upper 2 bytes
    Buffer.from([SCRAMBLE.length + 1]),                // length of auth-plugin-data (21)
    Buffer.alloc(10),                                  // reserved
    nul(SCRAMBLE.subarray(8).toString('latin1')),      // auth-plugin-data-part-2: 12 bytes + NUL (13)
    nul(PLUGIN),                                       // auth plugin name
  ]));
}

/** mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))) */
function nativePasswordToken(password, scramble) {
  const sha1 = (b) => crypto.createHash('sha1').update(b).digest();
  const p1 = sha1(Buffer.from(password, 'utf8'));
  const p2 = sha1(Buffer.concat([scramble, sha1(p1)]));
  return Buffer.from(p1.map((b, i) => b ^ p2[i]));
}

/** Protocol::HandshakeResponse41, answering a HandshakeV10 payload */
export function handshakeResponse41(greeting) {
  // scramble = part 1 (after version, conn id) + part 2 (after the fixed 13+10 bytes), minus its NUL
  const verEnd = greeting.indexOf(0, 1);
  const part1 = greeting.subarray(verEnd + 5, verEnd + 13);
  const part2Start = verEnd + 13 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
  const part2 = greeting.subarray(part2Start, greeting.indexOf(0, part2Start));
  const token = nativePasswordToken(PASSWORD, Buffer.concat([part1, part2]));
  return packet(1, Buffer.concat([
    u32(CLIENT_CAPS),                                  // client capability flags
    u32(16 * 1024 * 1024),                             // max packet size
    Buffer.from([UTF8MB4_0900_AI_CI]),                 // character set
    Buffer.alloc(23),                                  // filler
    nul(USER),                                         // username
    Buffer.from([token.length]), token,                // auth response (length-encoded, < 251)
    nul(DATABASE),                                     // database (CLIENT_CONNECT_WITH_DB)
    nul(PLUGIN),                                       // client plugin name (CLIENT_PLUGIN_AUTH)
  ]));
}

// OK_Packet: header 0x00, affected rows 0, last insert id 0 (length-encoded), status flags, warnings
const OK = packet(2, Buffer.from([0x00, 0x00, 0x00, SERVER_STATUS_AUTOCOMMIT, 0x00, 0x00, 0x00]));
const COM_QUIT = packet(0, Buffer.from([0x01]));

/** Read whole MySQL packets from a socket: returns next() resolving with { seq, payload }. */
function packetReader(socket) {
  let buf = Buffer.alloc(0);
  const waiting = [];
  const ready = [];
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUIntLE(0, 3)) {
      const len = buf.readUIntLE(0, 3);
      const p = { seq: buf[3], payload: buf.subarray(4, 4 + len) };
      buf = buf.subarray(4 + len);
      if (waiting.length) waiting.shift()(p); else ready.push(p);
    }
  });
  return () => (ready.length ? Promise.resolve(ready.shift()) : new Promise((resolve) => waiting.push(resolve)));
}

/** Start the fake server on host:port; resolves with the net.Server once listening. */
export function startFakeMysql(port, host = '127.0.0.1') {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const next = packetReader(socket);
    socket.write(handshakeV10());
    (async () => {
      const response = await next();
      if (response.seq !== 1) throw new Error('fake mysql: expected HandshakeResponse41 with seq 1');
      socket.write(OK);
      const cmd = await next();
      if (cmd.payload[0] === 0x01) socket.end(); // COM_QUIT
    })().catch(() => socket.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(e.code === 'EADDRINUSE' ? new Error(`${host}:${port} is in use (a PostgreSQL server?)`) : e));
    server.listen({ port, host, exclusive: true }, () => resolve(server));
  });
}

/** Connect, answer the greeting, read the OK, send COM_QUIT, wait for the close. */
export async function runFakeMysqlClient(port, host = '127.0.0.1') {
  const socket = net.connect({ port, host });
  socket.setNoDelay(true);
  const closed = new Promise((resolve, reject) => { socket.on('close', resolve); socket.on('error', reject); });
  const next = packetReader(socket);
  const greeting = await next();
  if (greeting.payload[0] !== 10) throw new Error(`fake mysql client: protocol ${greeting.payload[0]}, expected 10`);
  socket.write(handshakeResponse41(greeting.payload));
  const ok = await next();
  if (ok.payload[0] !== 0x00) throw new Error('fake mysql client: expected OK_Packet');
  socket.end(COM_QUIT);
  await closed;
}
