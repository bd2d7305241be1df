import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { constants, gunzipSync, inflateSync } from 'node:zlib';
import protobuf from 'protobufjs';

/** A .proto set that could not be loaded: names the file and what was wrong (CLI exit 2). */
export class ProtoLoadError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'ProtoLoadError';
  }
}

/** One decoded field of a message read without its schema. */
export interface RawField {
  /** Field number. */
  no: number;
  /** Wire type as a word: varint, fixed64, bytes, fixed32. */
  type: 'varint' | 'fixed64' | 'bytes' | 'fixed32';
  /** Numbers (as strings past 2^53), UTF-8 strings, or base64 for other bytes. */
  value?: number | string;
  /** A length-delimited field that parses as a message. */
  fields?: RawField[];
  /** Set when `value` is base64 of bytes that are neither text nor a message. */
  base64?: true;
}

const MAX_DEPTH = 8;
const MAX_FIELDS = 2000;

function protoFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new ProtoLoadError(path, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : `cannot read (${(err as NodeJS.ErrnoException).code})`);
  }
  if (st.isFile()) return [path];
  const out: string[] = [];
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) out.push(...protoFiles(p));
    else if (e.name.endsWith('.proto')) out.push(p);
  }
  return out.sort();
}

/**
 * The schemas given with --proto: maps "/pkg.Service/Method" to its request and response types
 * and decodes messages to JSON with protobufjs.
 */
export class ProtoSchemas {
  private readonly methods = new Map<string, { request: protobuf.Type; response: protobuf.Type }>();

  private constructor(readonly root: protobuf.Root) {
    const walk = (ns: protobuf.NamespaceBase) => {
      for (const obj of ns.nestedArray) {
        if (obj instanceof protobuf.Service) {
          for (const m of obj.methodsArray) {
            m.resolve();
            const full = obj.fullName.replace(/^\./, '');
            this.methods.set(`/${full}/${m.name}`, { request: m.resolvedRequestType!, response: m.resolvedResponseType! });
          }
        } else if (obj instanceof protobuf.Namespace) walk(obj);
      }
    };
    walk(root);
  }

  /** Loads every .proto in the given files and directories (imports resolve relative to each). */
  static load(paths: string[]): ProtoSchemas {
    const files = paths.flatMap(protoFiles);
    if (files.length === 0) throw new ProtoLoadError(paths.join(', '), 'no .proto files found');
    const root = new protobuf.Root();
    for (const f of files) {
      try {
        root.loadSync(f, { keepCase: true });
      } catch (err) {
        throw new ProtoLoadError(f, (err as Error).message);
      }
    }
    try {
      root.resolveAll();
    } catch (err) {
      throw new ProtoLoadError(files.join(', '), `unresolved types: ${(err as Error).message}`);
    }
    return new ProtoSchemas(root);
  }

  get methodCount(): number {
    return this.methods.size;
  }

  /** JSON for a message of `path`'s request (dir 0) or response (dir 1) type; undefined if unknown. */
  decode(path: string, dir: 0 | 1, bytes: Uint8Array): Record<string, unknown> | undefined {
    const m = this.methods.get(path);
    if (!m) return undefined;
    const type = dir === 0 ? m.request : m.response;
    const msg = type.decode(bytes);
    return type.toObject(msg, { longs: String, enums: String, bytes: String, defaults: false, arrays: true }) as Record<string, unknown>;
  }
}

/** Undoes grpc-encoding (gzip, deflate) for a message, bounded. */
export function decompressMessage(bytes: Buffer, encoding: string | undefined, limit: number): Buffer {
  const opts = { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: Math.max(limit, 1024) * 8 };
  if (encoding === 'gzip') return gunzipSync(bytes, opts);
  if (encoding === 'deflate') return inflateSync(bytes, opts);
  throw new Error(`unsupported grpc-encoding "${encoding ?? 'none'}"`);
}

/**
 * Reads a protobuf message without its schema (protobuf encoding: tag = field << 3 | wire type).
 * Returns undefined when the bytes are not a well-formed message. Length-delimited fields become
 * nested messages where they parse completely, strings where they are valid UTF-8 text, else base64.
 */
export function schemaless(bytes: Uint8Array, depth = 0): RawField[] | undefined {
  const out: RawField[] = [];
  const b = bytes;
  let p = 0;
  const varint = (): number | bigint | undefined => {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (p >= b.length) return undefined;
      const c = b[p++]!;
      result |= BigInt(c & 0x7f) << shift;
      if ((c & 0x80) === 0) return result <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(result) : result;
      shift += 7n;
    }
    return undefined;
  };
  while (p < b.length) {
    if (out.length >= MAX_FIELDS) return undefined;
    const tag = varint();
    if (tag === undefined || typeof tag === 'bigint') return undefined;
    const no = Math.floor(tag / 8);
    const wire = tag & 7;
    if (no < 1 || no > 536_870_911) return undefined;
    if (wire === 0) {
      const v = varint();
      if (v === undefined) return undefined;
      out.push({ no, type: 'varint', value: typeof v === 'bigint' ? v.toString() : v });
    } else if (wire === 1) {
      if (p + 8 > b.length) return undefined;
      const v = Buffer.from(b.buffer, b.byteOffset + p, 8).readBigUInt64LE(0);
      p += 8;
      out.push({ no, type: 'fixed64', value: v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString() });
    } else if (wire === 5) {
      if (p + 4 > b.length) return undefined;
      out.push({ no, type: 'fixed32', value: Buffer.from(b.buffer, b.byteOffset + p, 4).readUInt32LE(0) });
      p += 4;
    } else if (wire === 2) {
      const len = varint();
      if (len === undefined || typeof len === 'bigint' || p + len > b.length) return undefined;
      const sub = b.subarray(p, p + len);
      p += len;
      const f: RawField = { no, type: 'bytes' };
      const nested = depth < MAX_DEPTH && len > 0 ? schemaless(sub, depth + 1) : undefined;
      const buf = Buffer.from(sub.buffer, sub.byteOffset, sub.length);
      if (nested && nested.length > 0 && !looksLikeText(buf)) f.fields = nested;
      else if (looksLikeText(buf)) f.value = buf.toString('utf8');
      else if (nested && nested.length > 0) f.fields = nested;
      else {
        f.value = buf.toString('base64');
        f.base64 = true;
      }
      out.push(f);
    } else return undefined; // groups (3, 4) are obsolete; 6 and 7 do not exist
  }
  return out;
}

/** Valid UTF-8 with no control characters other than tab, CR and LF. */
function looksLikeText(b: Buffer): boolean {
  if (b.length === 0) return true;
  for (const c of b) if (c < 0x20 && c !== 9 && c !== 10 && c !== 13) return false;
  return Buffer.from(b).toString('utf8').indexOf('\ufffd') < 0;
}
