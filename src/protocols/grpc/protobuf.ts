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
/** Import chains longer than this are refused (protobufjs's own recursion limit is 100). */
const MAX_IMPORT_DEPTH = 100;

/** "google/protobuf/any.proto" and the other well-known types protobufjs bundles, by their import name. */
function bundledName(file: string): string | undefined {
  const i = file.lastIndexOf('google/protobuf/');
  const name = i >= 0 ? file.slice(i) : file;
  return protobuf.common.get(name) ? name : undefined;
}
const MAX_FIELDS = 2000;

/**
 * Where the .proto text comes from: the caller does the I/O (src/pipeline/protos.ts reads files),
 * so this module parses and never touches the file system.
 */
export interface ProtoSource {
  /** The .proto files to load, in order. */
  files: string[];
  /** A file's text (given, or named by an import); throws when it cannot be read. */
  read(file: string): string;
  /** The file an `import "target"` in `from` names. */
  resolve(from: string, target: string): string;
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

  /**
   * Parses every .proto of `source` and what they import (well-known google/protobuf types come
   * bundled with protobufjs), then resolves all types.
   */
  static load(source: ProtoSource): ProtoSchemas {
    const root = new protobuf.Root();
    const seen = new Set<string>();
    const add = (file: string, top: string, weak: boolean, depth: number): void => {
      const bundled = bundledName(file);
      const name = bundled ?? file;
      if (seen.has(name)) return;
      seen.add(name);
      if (bundled) {
        root.addJSON(protobuf.common.get(bundled)!.nested ?? {});
        return;
      }
      let text: string;
      try {
        text = source.read(file);
      } catch (err) {
        if (weak) return;
        throw new ProtoLoadError(top, (err as Error).message);
      }
      if (depth > MAX_IMPORT_DEPTH) throw new ProtoLoadError(top, 'imports nest too deep');
      let parsed: protobuf.IParserResult;
      try {
        (protobuf.parse as unknown as { filename: string }).filename = file;
        parsed = protobuf.parse(text, root, { keepCase: true });
      } catch (err) {
        throw new ProtoLoadError(top === file ? file : top, (err as Error).message);
      }
      for (const i of parsed.imports ?? []) add(bundledName(i) ?? source.resolve(file, i), top, false, depth + 1);
      for (const i of parsed.weakImports ?? []) add(bundledName(i) ?? source.resolve(file, i), top, true, depth + 1);
    };
    for (const f of source.files) add(f, f, false, 0);
    try {
      root.resolveAll();
    } catch (err) {
      throw new ProtoLoadError(source.files.join(', '), `unresolved types: ${(err as Error).message}`);
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
export function schemaless(bytes: Uint8Array): RawField[] | undefined {
  const b = bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return fieldsIn(b, 0, b.length, 0, { p: 0 });
}

/** The fields of the message in b[start, end), or undefined; works on ranges to avoid views. */
function fieldsIn(b: Buffer, start: number, end: number, depth: number, pos: { p: number }): RawField[] | undefined {
  const out: RawField[] = [];
  pos.p = start;
  while (pos.p < end) {
    if (out.length >= MAX_FIELDS) return undefined;
    const tag = varint(b, pos, end);
    if (tag === undefined || typeof tag === 'string') return undefined;
    const no = Math.floor(tag / 8);
    const wire = tag % 8;
    if (no < 1 || no > 536_870_911) return undefined;
    if (wire === 0) {
      const v = varint(b, pos, end);
      if (v === undefined) return undefined;
      out.push({ no, type: 'varint', value: v });
    } else if (wire === 1) {
      if (pos.p + 8 > end) return undefined;
      const lo = b.readUInt32LE(pos.p), hi = b.readUInt32LE(pos.p + 4);
      pos.p += 8;
      // Exact as a double below 2^53; beyond, a decimal string via BigInt.
      const value = hi < 0x200000 ? hi * 4294967296 + lo : ((BigInt(hi) << 32n) | BigInt(lo)).toString();
      out.push({ no, type: 'fixed64', value });
    } else if (wire === 5) {
      if (pos.p + 4 > end) return undefined;
      out.push({ no, type: 'fixed32', value: b.readUInt32LE(pos.p) });
      pos.p += 4;
    } else if (wire === 2) {
      const len = varint(b, pos, end);
      if (len === undefined || typeof len === 'string' || pos.p + len > end) return undefined;
      const s = pos.p, e = s + len;
      const f: RawField = { no, type: 'bytes' };
      // Text first: it is cheap to check, and text rarely parses as a message anyway.
      const text = textIn(b, s, e);
      if (text !== undefined) f.value = text;
      else {
        const nested = depth < MAX_DEPTH ? fieldsIn(b, s, e, depth + 1, pos) : undefined;
        if (nested && nested.length > 0) f.fields = nested;
        else {
          f.value = b.toString('base64', s, e);
          f.base64 = true;
        }
      }
      pos.p = e;
      out.push(f);
    } else return undefined; // groups (3, 4) are obsolete; 6 and 7 do not exist
  }
  return out;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A base-128 varint at pos.p (advanced past it): a number, or a decimal string past 2^53, or
 * undefined when cut short or longer than 10 bytes. Plain arithmetic; BigInt only for the rare
 * values too large for a double.
 */
function varint(b: Buffer, pos: { p: number }, end: number): number | string | undefined {
  let p = pos.p;
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (p >= end) return undefined;
    const c = b[p++]!;
    if (i === 7) {
      // An 8th byte: past 49 bits a double may lose digits, so finish exactly with BigInt.
      let big = BigInt(result);
      let shift = BigInt(7 * i);
      let cc = c;
      for (let j = i; j < 10; j++) {
        big |= BigInt(cc & 0x7f) << shift;
        if ((cc & 0x80) === 0) {
          pos.p = p;
          return big <= MAX_SAFE ? Number(big) : big.toString();
        }
        if (p >= end) return undefined;
        cc = b[p++]!;
        shift += 7n;
      }
      return undefined;
    }
    result += (c & 0x7f) * mul;
    if ((c & 0x80) === 0) {
      pos.p = p;
      return result;
    }
    mul *= 128;
  }
  return undefined;
}

/**
 * b[s, e) as a string when it is UTF-8 text with no control characters other than tab, CR and
 * LF; else undefined. Invalid UTF-8 shows as U+FFFD after decoding, which saves a second pass.
 */
function textIn(b: Buffer, s: number, e: number): string | undefined {
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c < 0x20 && c !== 9 && c !== 10 && c !== 13) return undefined;
  }
  const t = b.toString('utf8', s, e);
  return t.indexOf('\ufffd') < 0 ? t : undefined;
}
