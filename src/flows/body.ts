import { isUtf8 } from 'node:buffer';
import { brotliDecompressSync, constants, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';

/** Decoded previews may grow this many times the captured bytes before decoding stops. */
const MAX_EXPANSION = 8;

export interface Preview {
  /** The decoded body was longer than the limit and was cut. */
  cut?: boolean;
  body?: string;
  bodyEncoding?: 'base64';
  bodyDecodeError?: string;
}

/**
 * Undoes Content-Encoding for a preview. Captured bodies may be cut by the body limit, so the
 * decoders flush what they have instead of demanding a complete stream (Z_SYNC_FLUSH).
 * Codings are undone in reverse order of application (RFC 9110 §8.4).
 */
export function decodeContent(raw: Buffer, contentEncoding: string | undefined, limit: number): { bytes: Buffer; error?: string } {
  if (!contentEncoding) return { bytes: raw };
  const codings = contentEncoding.toLowerCase().split(',').map((s) => s.trim()).filter((s) => s && s !== 'identity');
  let bytes = raw;
  const max = Math.max(limit, raw.length) * MAX_EXPANSION;
  for (let i = codings.length - 1; i >= 0; i--) {
    const c = codings[i]!;
    try {
      if (c === 'gzip' || c === 'x-gzip') {
        bytes = gunzipSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: max });
      } else if (c === 'deflate') {
        // "deflate" means zlib-wrapped (RFC 9110 §8.4.1.2), but servers often send raw deflate.
        const zlibHeader = bytes.length >= 2 && (bytes[0]! & 0x0f) === 8 && ((bytes[0]! << 8) | bytes[1]!) % 31 === 0;
        bytes = zlibHeader
          ? inflateSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: max })
          : inflateRawSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: max });
      } else if (c === 'br') {
        bytes = brotliDecompressSync(bytes, { finishFlush: constants.BROTLI_OPERATION_FLUSH, maxOutputLength: max });
      } else {
        return { bytes, error: `unsupported content-encoding "${c}"` };
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      return { bytes: raw, error: `${c} decoding failed${code ? ` (${code})` : ''}` };
    }
  }
  return { bytes };
}

/** Text when the bytes are UTF-8 without NULs; base64 otherwise. */
export function preview(raw: Buffer | undefined, contentEncoding: string | undefined, limit: number, rawCut = false): Preview {
  if (!raw || raw.length === 0) return {};
  const { bytes: decoded, error } = decodeContent(raw, contentEncoding, limit);
  const bytes = decoded.length > limit ? decoded.subarray(0, limit) : decoded;
  const out: Preview = {};
  if (decoded.length > limit) out.cut = true;
  if (error) out.bodyDecodeError = error;
  // A cut may fall inside a multi-byte character: drop up to 3 trailing bytes of a partial one
  // (only when the body was cut; a whole body that is not UTF-8 is shown as base64).
  let text = isText(bytes) ? bytes : undefined;
  if (!text && (rawCut || out.cut)) {
    for (let k = 1; k <= 3 && !text && bytes.length > k; k++) {
      if (isText(bytes.subarray(0, bytes.length - k))) text = bytes.subarray(0, bytes.length - k);
    }
  }
  if (text) out.body = text.toString('utf8');
  else {
    out.body = bytes.toString('base64');
    out.bodyEncoding = 'base64';
  }
  return out;
}

function isText(b: Buffer): boolean {
  return b.indexOf(0) < 0 && isUtf8(b);
}
