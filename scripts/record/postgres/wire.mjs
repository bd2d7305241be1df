// A minimal PostgreSQL v3 frontend over node:net, for what the `pg` client cannot do: pipelining
// (many Bind/Execute before one Sync), Execute with a row limit (PortalSuspended), Flush, Close,
// and CancelRequest. Protocol: https://www.postgresql.org/docs/15/protocol-message-formats.html
//
//   const c = await Wire.connect(port, { user: 'postgres', database: 'shop' });  // trust auth only
//   c.send(msg.parse('s1', 'SELECT $1::int'), msg.bind('', 's1', ['7']), msg.execute(), msg.sync());
//   const replies = await c.until('Z');     // backend messages up to and including ReadyForQuery
//   await c.end();                          // Terminate, then wait for the server to close
//
// send() concatenates its messages into ONE socket write, so a pipeline leaves as one TCP segment.
// Backend messages come back as { type: 'Z', body: Buffer }; describe(m) renders one for logs.
import net from 'node:net';

const PROTOCOL_3_0 = 196608;
const CANCEL_REQUEST_CODE = 80877102;

function cstr(s) { return Buffer.from(`${s}\0`, 'utf8'); }
function int16(n) { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; }
function int32(n) { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; }
/** A typed frontend message: type byte, Int32 length (including itself), body. */
function typed(type, ...parts) {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(type, 'ascii'), int32(body.length + 4), body]);
}

/** Frontend message encoders. Parameters: string (text format), Buffer (binary format) or null. */
export const msg = {
  startup(params) {
    const body = Buffer.concat([int32(PROTOCOL_3_0), ...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]);
    return Buffer.concat([int32(body.length + 4), body]);
  },
  cancelRequest(pid, key) { return Buffer.concat([int32(16), int32(CANCEL_REQUEST_CODE), int32(pid), int32(key)]); },
  query(sql) { return typed('Q', cstr(sql)); },
  parse(name, sql, typeOids = []) { return typed('P', cstr(name), cstr(sql), int16(typeOids.length), ...typeOids.map(int32)); },
  bind(portal, statement, params = [], resultFormats = []) {
    const formats = params.map((p) => (Buffer.isBuffer(p) ? 1 : 0));
    const values = params.flatMap((p) => {
      if (p === null) return [int32(-1)];
      const b = Buffer.isBuffer(p) ? p : Buffer.from(String(p), 'utf8');
      return [int32(b.length), b];
    });
    return typed('B', cstr(portal), cstr(statement), int16(formats.length), ...formats.map(int16),
      int16(params.length), ...values, int16(resultFormats.length), ...resultFormats.map(int16));
  },
  describe(kind, name) { return typed('D', Buffer.from(kind, 'ascii'), cstr(name)); }, // kind: 'S' statement, 'P' portal
  execute(portal = '', maxRows = 0) { return typed('E', cstr(portal), int32(maxRows)); },
  close(kind, name) { return typed('C', Buffer.from(kind, 'ascii'), cstr(name)); },
  sync() { return typed('S'); },
  flush() { return typed('H'); },
  terminate() { return typed('X'); },
};

/** Fields of an ErrorResponse/NoticeResponse body: { S, V, C, M, ... } by field code. */
export function fields(body) {
  const out = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]);
    const end = body.indexOf(0, i + 1);
    out[code] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
}

/** One-line rendering of a backend message, for logs and errors. */
export function describe(m) {
  switch (m.type) {
    case 'E': case 'N': { const f = fields(m.body); return `${m.type}(${f.C} ${f.M})`; }
    case 'C': return `C(${m.body.toString('utf8', 0, m.body.length - 1)})`;
    case 'Z': return `Z(${String.fromCharCode(m.body[0])})`;
    case 'D': return `D(${m.body.readInt16BE(0)} cols)`;
    default: return m.type;
  }
}

export class Wire {
  /** Connect, send StartupMessage and read up to the first ReadyForQuery (trust auth: AuthenticationOk). */
  static async connect(port, params, host = '127.0.0.1') {
    const w = new Wire(await new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => { s.off('error', reject); resolve(s); });
      s.once('error', reject);
    }));
    w.send(msg.startup(params));
    const hello = await w.until('Z');
    const auth = hello.find((m) => m.type === 'R');
    if (!auth || auth.body.readInt32BE(0) !== 0) throw new Error(`wire: expected AuthenticationOk (trust), got ${hello.map(describe).join(' ')}`);
    const key = hello.find((m) => m.type === 'K');
    w.pid = key.body.readInt32BE(0);
    w.secretKey = key.body.readInt32BE(4);
    return w;
  }

  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.queue = [];     // parsed backend messages not yet consumed
    this.waiter = null;  // resolve() of a pending until()
    this.closed = false;
    socket.setNoDelay(true);
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length < 1 + len) break;
        this.queue.push({ type: String.fromCharCode(this.buf[0]), body: this.buf.subarray(5, 1 + len) });
        this.buf = this.buf.subarray(1 + len);
      }
      this.waiter?.();
    });
    socket.on('close', () => { this.closed = true; this.waiter?.(); });
    socket.on('error', () => {});
  }

  /** Write all messages in one socket write. */
  send(...messages) { this.socket.write(Buffer.concat(messages)); }

  /** Resolve with the backend messages up to and including the first one of `type` (e.g. 'Z', 's'). */
  async until(type, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((m) => m.type === type);
      if (i >= 0) return this.queue.splice(0, i + 1);
      if (this.closed) throw new Error(`wire: connection closed waiting for '${type}' (got ${this.queue.map(describe).join(' ')})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`wire: no '${type}' after ${timeoutMs} ms (got ${this.queue.map(describe).join(' ')})`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(t); this.waiter = null; resolve(); };
      });
    }
  }

  /** Send Terminate and wait until the server has closed the connection. */
  async end() {
    this.send(msg.terminate());
    this.socket.end();
    if (!this.closed) await new Promise((resolve) => this.socket.once('close', resolve));
  }
}

/** Send a CancelRequest for (pid, secretKey) on a new connection; resolves when the server closes it. */
export function sendCancel(port, pid, secretKey, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host }, () => s.write(msg.cancelRequest(pid, secretKey)));
    s.on('error', reject);
    s.on('close', () => resolve());
    s.resume();
  });
}
