import { httpHalves, type FlowRecord, type HttpFlowRecord } from '../flows/index.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { endpointKey, operation } from './endpoint.js';
import { jsonBody, jsonShape } from './shape.js';
import { evidence, type Finding } from './types.js';

/**
 * `payload-shape`: responses of one endpoint whose JSON field types or date formats disagree
 * across calls (`$.id` a number in nine responses and a string in one), and bodies that do not
 * parse as their declared Content-Type. Fields present in some responses and absent in others are
 * optional, not a disagreement; nor is null next to a value.
 */
export function detectPayloadShape(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['payload-shape']): Finding[] {
  const out: Finding[] = [];
  const responses = flows.filter((r): r is HttpFlowRecord => httpHalves(r) && r.response?.status !== undefined && r.response.status < 300);
  for (const calls of groupBy(responses, (r) => endpointKey(r)).values()) {
    const name = `${operation(calls[0]!)} on ${ctx.names.name(calls[0]!.dst)}`;
    const parsed: { r: FlowRecord; shape: Map<string, string> }[] = [];
    const broken: { r: FlowRecord; error: string }[] = [];
    for (const r of calls) {
      const j = jsonBody(r.response!);
      if (!j) continue;
      if (j.ok) parsed.push({ r, shape: jsonShape(j.doc) });
      else if ('error' in j) broken.push({ r, error: j.error });
    }
    if (broken.length > 0) {
      const ct = calls[0]!.response!.headers['content-type'];
      out.push({
        kind: 'payload-shape', severity: 'warning',
        summary: `${broken.length} of ${parsed.length + broken.length} responses to ${name} are not what they declare: ${broken[0]!.error}`,
        evidence: broken.map((b) => evidence(b.r, b.error)),
        details: { cause: 'unparseable-body', count: broken.length, contentType: ct },
      });
    }
    if (parsed.length < t.minSamples) continue;
    // path → type → the responses that had it
    const seen = new Map<string, Map<string, FlowRecord[]>>();
    for (const { r, shape } of parsed) {
      for (const [path, type] of shape) {
        for (const one of type.split('|')) {
          if (one === 'null') continue;
          const byType = seen.get(path) ?? seen.set(path, new Map()).get(path)!;
          (byType.get(one) ?? byType.set(one, []).get(one)!).push(r);
        }
      }
    }
    for (const [path, byType] of seen) {
      // integer and number are one JSON type; 1 and 1.5 in one field is not a disagreement.
      const types = [...byType.keys()];
      if (types.length < 2 || (types.length === 2 && types.includes('integer') && types.includes('number'))) continue;
      const ranked = [...byType].sort((a, b) => b[1].length - a[1].length);
      const odd = ranked.slice(1).flatMap(([type, rs]) => rs.map((r) => evidence(r, `${path} is ${type}`)));
      out.push({
        kind: 'payload-shape', severity: 'warning',
        summary: `${path} in responses to ${name} is ${ranked.map(([type, rs]) => `${type} in ${rs.length}`).join(', ')}`,
        evidence: odd,
        details: { cause: 'type-disagreement', path, types: Object.fromEntries(ranked.map(([type, rs]) => [type, rs.length])), count: odd.length },
      });
    }
  }
  return out;
}
