// Structure-aware PostgreSQL v3 generator (PostgreSQL docs, "Message Flow" and "Message Formats"):
// SSLRequest / GSSENCRequest / CancelRequest, StartupMessage, trust / cleartext / MD5 / SASL
// authentication, simple queries (multi-statement, errors, notices, COPY in and out) and the
// extended protocol (Parse / Bind / Describe / Execute / Sync, pipelined, portal suspension).

const cstr = (s) => Buffer.from(`${s}\0`, 'utf8');
const i16 = (v) => { const b = Buffer.alloc(2); b.writeInt16BE(v); return b; };
const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32BE(v | 0); return b; };

/** A typed message: type byte, Int32 length (counting itself), body. The length is a lie target. */
function msg(dir, type, ...body) {
  const b = Buffer.concat(body);
  return { dir, bytes: Buffer.concat([Buffer.from(type, 'latin1'), i32(b.length + 4), b]), fields: [{ off: 1, width: 4, kind: 'pg-len', value: b.length + 4 }] };
}

function untyped(dir, code, ...body) {
  const b = Buffer.concat(body);
  return { dir, bytes: Buffer.concat([i32(b.length + 8), i32(code), b]), fields: [{ off: 0, width: 4, kind: 'pg-len', value: b.length + 8 }] };
}

const SQL = [
  'SELECT 1', 'SELECT id, customer, total FROM orders WHERE id = $1', 'INSERT INTO t (a, b) VALUES ($1, $2)', 'UPDATE t SET a = a + 1 WHERE b IN (1, 2, 3)',
  'BEGIN', 'COMMIT', 'SELECT pg_sleep(0.1)', "SELECT 'it''s' AS s, 1.5::numeric, NULL", 'DELETE FROM t', '', ';', 'SELECT 1; SELECT 2',
  'COPY t FROM STDIN', 'COPY t TO STDOUT', 'LISTEN ch', 'SELECT $1::int + $2::int', 'select/*c*/ x from "Quoted" where y = \'%\'',
];

/** SQL for the fingerprint's lexer: the list above, or a run of its hard tokens. */
function sql(rng) {
  if (rng.chance(0.7)) return rng.pick(SQL);
  const T = ["'", "''", "E'\\'", '$$', '$a$', '$1', '/*', '*/', '--', '\n', '"', '""', '::', '-', '1e', '.5', '0x', 'IN (', '?', ',', ')', '(', 'select', ' ', '\u00e9', '\\', ';', 'x'];
  let s = '';
  for (let k = rng.int(1, 60); k > 0; k--) s += rng.pick(T);
  return rng.chance(0.05) ? s.repeat(rng.int(10, 2000)) : s;
}

function errorFields(rng, kind = 'E') {
  const f = [];
  f.push(Buffer.from('S'), cstr(rng.pick(kind === 'E' ? ['ERROR', 'FATAL'] : ['NOTICE', 'WARNING'])));
  f.push(Buffer.from('C'), cstr(rng.pick(['42P01', '23505', '57014', '22012', 'XX000'])));
  f.push(Buffer.from('M'), cstr(rng.token(0, 60)));
  if (rng.chance(0.3)) f.push(Buffer.from('P'), cstr(String(rng.int(1, 99))));
  if (rng.chance(0.1)) f.push(Buffer.from(rng.pick(['D', 'H', 'W', 'F', 'L', 'R', 'Z'])), cstr(rng.token()));
  f.push(Buffer.from([0]));
  return f;
}

function rowDescription(rng, cols) {
  const parts = [i16(cols)];
  for (let i = 0; i < cols; i++) parts.push(cstr(rng.token(1, 10)), i32(rng.int(0, 99999)), i16(rng.int(0, 9)), i32(rng.pick([16, 20, 23, 25, 700, 701, 1043, 1700, 2950, 3802, 114, 17, 1184, 1082])), i16(rng.pick([-1, 4, 8])), i32(-1), i16(rng.chance(0.8) ? 0 : 1));
  return parts;
}

function dataRow(rng, cols) {
  const parts = [i16(cols)];
  for (let i = 0; i < cols; i++) {
    if (rng.chance(0.1)) { parts.push(i32(-1)); continue; }
    const v = rng.chance(0.002) ? Buffer.alloc(rng.int(1 << 20, 3 << 20), 0x63) : rng.chance(0.7) ? Buffer.from(rng.pick([String(rng.int(-1000, 1e6)), rng.token(0, 30), 't', '2026-12-07', '{"a":1}', '1.25'])) : rng.bytes(rng.size(16));
    parts.push(i32(v.length), v);
  }
  return parts;
}

function results(out, rng, withDescription = true) {
  const cols = rng.int(0, 5);
  if (withDescription) out.push(cols ? msg(1, 'T', ...rowDescription(rng, cols)) : msg(1, 'n'));
  for (let r = rng.int(0, 6); r > 0; r--) out.push(msg(1, 'D', ...dataRow(rng, cols)));
  if (rng.chance(0.05)) out.push(msg(1, 'I'));
  out.push(msg(1, 'C', cstr(rng.pick(['SELECT 3', 'INSERT 0 1', 'UPDATE 2', 'DELETE 0', 'BEGIN', 'COMMIT', 'COPY 4', 'SELECT']))));
}

function auth(out, rng) {
  const kind = rng.weighted([[4, 'ok'], [2, 'md5'], [1, 'clear'], [2, 'sasl'], [1, 'fail']]);
  const R = (code, ...b) => msg(1, 'R', i32(code), ...b);
  if (kind === 'md5') { out.push(R(5, rng.bytes(4))); out.push(msg(0, 'p', cstr(`md5${rng.token(32, 32)}`))); }
  if (kind === 'clear') { out.push(R(3)); out.push(msg(0, 'p', cstr(rng.token()))); }
  if (kind === 'sasl') {
    out.push(R(10, cstr('SCRAM-SHA-256'), Buffer.from([0])));
    const first = Buffer.from(`n,,n=,r=${rng.token(24, 24)}`);
    out.push(msg(0, 'p', cstr('SCRAM-SHA-256'), i32(first.length), first));
    out.push(R(11, Buffer.from(`r=${rng.token(40, 40)},s=${rng.token(24, 24)},i=4096`)));
    out.push(msg(0, 'p', Buffer.from(`c=biws,r=${rng.token(40, 40)},p=${rng.token(44, 44)}`)));
    out.push(R(12, Buffer.from(`v=${rng.token(44, 44)}`)));
  }
  if (kind === 'fail') { out.push(msg(1, 'E', ...errorFields(rng))); return false; }
  out.push(R(0));
  for (let k = rng.int(0, 4); k > 0; k--) out.push(msg(1, 'S', cstr(rng.pick(['server_version', 'client_encoding', 'TimeZone', 'integer_datetimes'])), cstr(rng.token())));
  out.push(msg(1, 'K', i32(rng.int(1, 99999)), i32(rng.u32())));
  out.push(msg(1, 'Z', Buffer.from(rng.pick(['I', 'I', 'T', 'E']))));
  return true;
}

function simple(out, rng) {
  out.push(msg(0, 'Q', cstr(sql(rng))));
  const shape = rng.weighted([[5, 'rows'], [1, 'error'], [1, 'multi'], [1, 'copy-in'], [1, 'copy-out'], [1, 'notice']]);
  if (shape === 'rows') results(out, rng);
  if (shape === 'multi') { results(out, rng); results(out, rng); }
  if (shape === 'error') out.push(msg(1, 'E', ...errorFields(rng)));
  if (shape === 'notice') { out.push(msg(1, 'N', ...errorFields(rng, 'N'))); out.push(msg(1, 'A', i32(rng.int(1, 999)), cstr('ch'), cstr(rng.token()))); results(out, rng); }
  if (shape === 'copy-in') {
    out.push(msg(1, 'G', Buffer.from([0]), i16(2), i16(0), i16(0)));
    for (let k = rng.int(0, 4); k > 0; k--) out.push(msg(0, 'd', Buffer.from(`${rng.int(0, 99)}\t${rng.token()}\n`)));
    if (rng.chance(0.8)) { out.push(msg(0, 'c')); out.push(msg(1, 'C', cstr('COPY 3'))); } else { out.push(msg(0, 'f', cstr('nope'))); out.push(msg(1, 'E', ...errorFields(rng))); }
  }
  if (shape === 'copy-out') {
    out.push(msg(1, 'H', Buffer.from([0]), i16(1), i16(0)));
    for (let k = rng.int(0, 4); k > 0; k--) out.push(msg(1, 'd', rng.chance(0.05) ? Buffer.alloc(rng.int(1 << 20, 3 << 20), 0x64) : Buffer.from(`${rng.token()}\n`)));
    out.push(msg(1, 'c'));
    out.push(msg(1, 'C', cstr('COPY 2')));
  }
  out.push(msg(1, 'Z', Buffer.from(rng.pick(['I', 'T', 'E']))));
}

/** One extended-protocol batch, pipelined: all frontend messages, then all backend ones. */
function extended(out, rng) {
  const front = [], back = [];
  for (let n = rng.int(1, 3); n > 0; n--) {
    const stmt = rng.chance(0.5) ? '' : `s${rng.int(0, 9)}`, portal = rng.chance(0.8) ? '' : `p${rng.int(0, 9)}`;
    const np = rng.int(0, 3);
    if (rng.chance(0.8)) {
      const oids = []; for (let i = 0; i < np; i++) oids.push(i32(rng.pick([0, 23, 25, 1043, 17])));
      front.push(msg(0, 'P', cstr(stmt), cstr(sql(rng)), i16(np), ...oids));
      back.push(msg(1, '1'));
    }
    const fmts = rng.int(0, np);
    const fmt = []; for (let i = 0; i < fmts; i++) fmt.push(i16(rng.int(0, 1)));
    const params = [];
    for (let i = 0; i < np; i++) {
      if (rng.chance(0.15)) { params.push(i32(-1)); continue; }
      const v = rng.chance(0.7) ? Buffer.from(String(rng.int(0, 99999))) : rng.bytes(rng.pick([4, 8, rng.size(20)]));
      params.push(i32(v.length), v);
    }
    front.push(msg(0, 'B', cstr(portal), cstr(stmt), i16(fmts), ...fmt, i16(np), ...params, i16(1), i16(rng.int(0, 1))));
    back.push(msg(1, '2'));
    if (rng.chance(0.5)) {
      front.push(msg(0, 'D', Buffer.from(rng.pick(['S', 'P'])), cstr(rng.chance(0.5) ? stmt : portal)));
      if (rng.chance(0.5)) back.push(msg(1, 't', i16(np), ...Array.from({ length: np }, () => i32(23))));
    }
    const maxRows = rng.chance(0.8) ? 0 : rng.int(1, 3);
    front.push(msg(0, 'E', cstr(portal), i32(maxRows)));
    if (rng.chance(0.1)) { back.push(msg(1, 'E', ...errorFields(rng))); break; }
    results(back, rng, rng.chance(0.5));
    if (maxRows && rng.chance(0.5)) back.splice(back.length - 1, 1, msg(1, 's'));
    if (rng.chance(0.1)) front.push(msg(0, rng.pick(['H', 'C']), ...(rng.chance(0.5) ? [Buffer.from('S'), cstr(stmt)] : [])));
  }
  front.push(msg(0, 'S'));
  back.push(msg(1, 'Z', Buffer.from(rng.pick(['I', 'T', 'E']))));
  out.push(...front, ...back);
}

/** One PostgreSQL connection as units { dir, bytes, fields }. */
export function genPostgres(rng) {
  const out = [];
  const open = rng.weighted([[2, 'plain'], [2, 'ssl-n'], [1, 'gss-n'], [1, 'cancel'], [1, 'ssl-s'], [1, 'mid']]);
  if (open === 'cancel') { out.push(untyped(0, 80_877_102, i32(rng.int(1, 99999)), i32(rng.u32()))); return out; }
  if (open === 'ssl-n' || open === 'ssl-s') { out.push(untyped(0, 80_877_103)); out.push({ dir: 1, bytes: Buffer.from(open === 'ssl-n' ? 'N' : 'S'), fields: [] }); }
  if (open === 'ssl-s') {
    // TLS follows: opaque records both ways (a ClientHello-like start).
    out.push({ dir: 0, bytes: Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), rng.bytes(rng.size(200))]), fields: [] });
    out.push({ dir: 1, bytes: Buffer.concat([Buffer.from([0x16, 0x03, 0x03]), rng.bytes(rng.size(200))]), fields: [] });
    return out;
  }
  if (open === 'gss-n') { out.push(untyped(0, 80_877_104)); out.push({ dir: 1, bytes: Buffer.from('N'), fields: [] }); }
  if (open !== 'mid') {
    const params = [];
    for (const [k, v] of [['user', rng.token()], ['database', rng.token()], ['application_name', rng.token(0, 8)], ['options', '-c x=y']]) if (rng.chance(0.8)) params.push(cstr(k), cstr(v));
    out.push(untyped(0, rng.chance(0.97) ? 196_608 : rng.pick([196_609, 131_072, 1234]), ...params, Buffer.from([0])));
    if (rng.chance(0.05)) out.push(msg(1, 'v', i32(0), i32(1), cstr('_pq_.x')));
    if (!auth(out, rng)) return out;
  }
  for (let n = rng.chance(0.05) ? rng.int(20, 200) : rng.int(1, 6); n > 0; n--) {
    if (rng.chance(0.5)) simple(out, rng);
    else extended(out, rng);
  }
  if (rng.chance(0.5)) out.push(msg(0, 'X'));
  return out;
}
