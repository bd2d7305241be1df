import { DEFAULT_REDACTED_HEADERS, httpHalves, SECRET_NAME, type FlowRecord, type RecordRequest } from '../flows/index.js';
import { attribute, type Attribution } from './group.js';

/** A credential that arrived on an inbound request and left again on a call the service made. */
export interface ForwardedSecret {
  inbound: FlowRecord;
  outbound: FlowRecord;
  /** Where it arrived: "header authorization", "query access_token". */
  arrivedIn: string;
  /** Where it left: "header authorization", "path", "body". */
  sentIn: string;
  /** The value as the record shows it: a redaction token unless the capture was read with --no-redact. */
  token: string;
}

/** Values shorter than this are not treated as secrets: they would match by accident. */
const MIN_SECRET_LENGTH = 8;

/**
 * Finds credentials forwarded downstream. Records carry keyed-hash tokens in place of secrets, and
 * the same secret always gives the same token, so a token seen on the inbound request and again on
 * an outbound call is the same credential, whether or not the values were redacted.
 */
export function findForwardedSecrets(
  flows: readonly FlowRecord[],
  opts: { headers?: readonly string[]; parents?: Map<FlowRecord, Attribution> } = {},
): ForwardedSecret[] {
  const names = new Set([...DEFAULT_REDACTED_HEADERS, ...(opts.headers ?? []).map((h) => h.toLowerCase())]);
  const parents = opts.parents ?? attribute(flows);
  const secretsOf = new Map<FlowRecord, { where: string; value: string }[]>();
  const out: ForwardedSecret[] = [];
  for (const [call, { parent }] of parents) {
    if (!httpHalves(call) || !call.request || !httpHalves(parent) || !parent.request) continue;
    let secrets = secretsOf.get(parent);
    if (!secrets) secretsOf.set(parent, (secrets = credentials(parent.request, names)));
    for (const s of secrets) {
      const sentIn = findIn(call.request, s.value);
      if (sentIn) out.push({ inbound: parent, outbound: call, arrivedIn: s.where, sentIn, token: s.value });
    }
  }
  return out;
}

/** The credential values of a request: credential headers, cookies, and secret-named query parameters. */
function credentials(q: RecordRequest, names: Set<string>): { where: string; value: string }[] {
  const out: { where: string; value: string }[] = [];
  for (const [name, v] of Object.entries(q.headers)) {
    if (!names.has(name)) continue;
    if (name === 'cookie') {
      for (const c of v.split(/;\s*/)) {
        const eq = c.indexOf('=');
        if (eq > 0) out.push({ where: `cookie ${c.slice(0, eq)}`, value: c.slice(eq + 1) });
      }
    } else {
      // "Bearer <token>": the scheme is not the secret.
      const m = /^[A-Za-z][A-Za-z0-9-]* +(\S.*)$/.exec(v);
      out.push({ where: `header ${name}`, value: m && name.endsWith('authorization') ? m[1]! : v });
    }
  }
  const qs = q.path.indexOf('?');
  if (qs >= 0) {
    for (const kv of q.path.slice(qs + 1).split('&')) {
      const eq = kv.indexOf('=');
      if (eq > 0 && SECRET_NAME.test(kv.slice(0, eq))) out.push({ where: `query ${kv.slice(0, eq)}`, value: kv.slice(eq + 1) });
    }
  }
  return out.filter((s) => s.value.length >= MIN_SECRET_LENGTH);
}

function findIn(q: RecordRequest, value: string): string | undefined {
  for (const [name, v] of Object.entries(q.headers)) if (v.includes(value)) return `header ${name}`;
  if (q.path.includes(value)) return 'path';
  if (q.body !== undefined && !q.bodyEncoding && q.body.includes(value)) return 'body';
  return undefined;
}
