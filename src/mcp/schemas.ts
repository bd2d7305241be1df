import { z } from 'zod';

/**
 * Output schemas shared by several tools. The SDK checks every result's structuredContent against
 * its tool's schema (server and client), and zod objects are closed unless marked loose: each
 * schema lists every field the core's JSON has, or is loose where the record is open (a flow).
 */

export const truncationSchema = z.object({
  note: z.string(),
  evidenceOmitted: z.number().int().optional(),
  detailsOmitted: z.number().int().optional(),
  rowsOmitted: z.number().int().optional(),
  bodyBytesOmitted: z.number().int().optional(),
  fieldsCut: z.number().int().optional().describe('flow fields besides bodies (long strings, long lists) cut to fit; payloads names them'),
  charsOmitted: z.number().int().optional(),
  findingsCompacted: z.number().int().optional().describe('findings shown as kind, severity, one-line summary and details.evidenceTotal'),
  findingsOmitted: z.number().int().optional().describe('findings not on this page: pass next as verify\'s cursor'),
}).describe('What was left out to keep the result bounded, and how to get the rest');

export const evidenceSchema = z.object({
  flowId: z.string(),
  time: z.number().describe('epoch seconds'),
  frames: z.array(z.number()).optional().describe('first and last frame numbers in the capture'),
  summary: z.string(),
});

export const severitySchema = z.enum(['error', 'warning', 'info']);

export const findingSchema = z.object({
  kind: z.string(),
  severity: severitySchema,
  summary: z.string(),
  evidence: z.array(evidenceSchema),
  details: z.record(z.string(), z.unknown()).describe('detector facts; evidenceTotal is the number of evidence entries before any cap'),
  events: z.array(z.string()).optional().describe('ids of the verdict\'s cluster events that overlap this finding\'s evidence (its pods, its time span)'),
});

/** A cluster event as a verdict lists it (src/verify/events.ts VerdictEvent: the fields it copies). */
export const verdictEventSchema = z.object({
  id: z.string(), time: z.number().describe('epoch seconds'), kind: z.string(), namespace: z.string(), reason: z.string(), source: z.string(),
  pod: z.string().optional(), workload: z.string().optional(), node: z.string().optional(), container: z.string().optional(),
  object: z.string().optional(), message: z.string().optional(), exitCode: z.number().optional(), count: z.number().optional(),
  probe: z.string().optional(),
  at: z.number().describe('seconds from the window\'s start (negative: before it)'),
  text: z.string(),
});

const podUsageSchema = z.object({
  cpu: z.object({ max: z.number(), mean: z.number() }).describe('millicores'),
  memory: z.object({ max: z.number(), mean: z.number() }).describe('bytes (working set)'),
  samples: z.number().int(),
});

/** The pods' resource use in a window, or why there is none (src/enrich/usage). */
export const usageSchema = z.union([
  z.object({ unavailable: z.string() }),
  z.object({
    pods: z.record(z.string(), podUsageSchema).describe('by "namespace/name"'), unsampled: z.array(z.string()).optional(),
    interval: z.number().describe('seconds between samples'), skipped: z.number().int().optional(), note: z.string().optional(),
  }),
]);

/** A process at an end of TLS connections not decrypted (src/verify/tls-coverage.ts TlsUnreadProcess). */
const tlsUnreadProcessSchema = z.object({
  end: z.enum(['client', 'server']), pid: z.number().int(), comm: z.string().optional(),
  library: z.string().describe('openssl, go, java, gnutls, nss, boringssl, rustls, unknown'), libraryName: z.string(), probed: z.boolean(),
  reason: z.string().optional().describe('unsupported-library, stripped-binary, no-symbols, not-probed'), detail: z.string().optional(), connections: z.number().int(),
});

export const tlsServerSchema = z.object({
  server: z.string().describe('"namespace/workload", else "ip:port"'), namespace: z.string().optional(), workload: z.string().optional(),
  plaintextFlows: z.number().int(),
  wire: z.object({ connections: z.number().int(), snis: z.array(z.string()) }),
  decrypted: z.object({ connections: z.number().int() }),
  notDecrypted: z.object({
    connections: z.number().int(), byReason: z.record(z.string(), z.number()),
    processes: z.array(tlsUnreadProcessSchema).optional().describe('the processes at the ends of those connections, with their TLS library and why it was not read'),
  }),
  processes: z.array(z.object({ pid: z.number().int().optional(), comm: z.string().optional(), library: z.string(), connections: z.number().int() })).optional(),
  clients: z.array(z.object({ client: z.string(), connections: z.number().int(), decrypted: z.number().int(), notDecrypted: z.number().int(), libraries: z.array(z.string()).optional() })).optional()
    .describe('its TLS callers (workload, else ip), at most 10: which caller\'s library was not probed'),
});

/** TLS coverage (src/verify/tls-coverage.ts TlsCoverage). */
export const tlsCoverageSchema = z.object({
  since: z.number().optional(), until: z.number().optional(),
  uprobes: z.enum(['capture-file', 'seen', 'attached', 'none-seen']),
  plaintextFlows: z.number().int(),
  wire: z.object({ connections: z.number().int() }),
  decrypted: z.object({ connections: z.number().int() }),
  notDecrypted: z.object({
    connections: z.number().int(),
    reasons: z.array(z.object({
      code: z.string().describe('no-uprobes-capture-file, no-uprobes, not-probed, unsupported-library, no-symbols, stripped-binary, probed-no-plaintext'), text: z.string(), connections: z.number().int(),
      libraries: z.array(z.string()).optional().describe('the TLS libraries of the ends this reason is about ("Java JSSE")'),
    })),
    processes: z.array(tlsUnreadProcessSchema).optional().describe('every process at an end of a connection not decrypted (at most 20)'),
  }),
  servers: z.array(tlsServerSchema),
  serversOmitted: z.number().int(),
});

export const verdictNameSchema = z.enum(['pass', 'fail', 'inconclusive']);

/** The verdict JSON of `tapwire verify --format json` (src/verify/verdict.ts). */
/** What the flows' source saw but did not decode (src/verify/verdict.ts UndecodedCoverage). */
export const undecodedSchema = z.object({
  connections: z.number().int(),
  udpFlows: z.number().int(),
  byReason: z.record(z.string(), z.number()),
  udpByReason: z.record(z.string(), z.number()),
  servers: z.array(z.object({
    server: z.string(), transport: z.enum(['tcp', 'udp']), reason: z.string(), connections: z.number().int(), service: z.string().optional(),
  })),
  serversOmitted: z.number().int(),
});

export const verdictShape = {
  verdict: verdictNameSchema,
  findings: z.array(findingSchema),
  reason: z.string().optional(),
  summary: z.string().describe('one line: what was judged (flows by protocol, inbound requests and their calls, detectors and checks run, connections not decoded)'),
  coverage: z.object({
    flows: z.number().int(), incomplete: z.number().int(), byReason: z.record(z.string(), z.number()),
    undecoded: undecodedSchema.optional().describe('connections and UDP flows seen but not decoded, and their servers; absent when the source cannot say (an agent\'s API)'),
    tls: tlsCoverageSchema.optional().describe('TLS connections on the wire, decrypted, and not decrypted with why (code and words); absent when the flows hold no TLS'),
  }),
  events: z.array(verdictEventSchema).optional().describe('cluster events that touched the pods of these flows in the window; absent for a capture file'),
  eventsOmitted: z.number().int().optional(),
  eventsNote: z.string().optional().describe('why events may be missing (an agent that does not watch Kubernetes)'),
  usage: usageSchema.optional(),
  partial: z.object({ missing: z.array(z.object({ agent: z.string(), error: z.string(), node: z.string().optional() })) }).optional()
    .describe('agents the hub could not reach: their flows are missing'),
};

const peerSchema = z.object({ ip: z.string(), port: z.number() }).loose();

/** A flow record (src/flows/record.ts): the fields every record has, the rest as the record has them. */
export const flowRecordSchema = z.object({
  id: z.string(),
  protocol: z.string(),
  connectionId: z.string(),
  src: peerSchema,
  dst: peerSchema,
  start: z.number(),
  end: z.number(),
  durationMs: z.number(),
}).loose();

/** A flow record as its schema types it (open: index signatures), for records typed by record.ts. */
export type FlowJson = z.infer<typeof flowRecordSchema>;

/** A snapshot (src/store/snapshots.ts); a stopped one may say whether the drain was proven. */
export const snapshotSchema = z.object({
  id: z.string(),
  name: z.string().optional(),
  since: z.number(),
  until: z.number().optional(),
  filter: z.string().optional(),
  createdAt: z.number(),
  open: z.boolean(),
  drained: z.enum(['proven', 'unproven']).optional(),
});

/** Where a tool's flows came from (src/mcp/source.ts). */
export const sourceSchema = z.object({
  capture: z.string().optional(),
  snapshot: z.string().optional(),
  since: z.string().optional(),
  until: z.string().optional(),
  flows: z.number().int(),
});
