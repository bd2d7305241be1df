import { Redactor, type FlowRecord } from '../flows/index.js';
import { loadRedactKey, type DecodeCoverage } from '../pipeline/index.js';
import { loadSpecFile, SpecError, verdictText, verifyWithSpec, type PartialData, type Spec, type WindowContext } from '../verify/index.js';
import { windowContext } from '../run/index.js';
import { RemoteSource, timeOf } from '../service/index.js';
import { openIdentities } from './identities.js';
import { apiFlows, captureFlows, type ApiSource } from './source.js';
import { fitToWidth } from '../common/index.js';
import { terminalWidth } from './output.js';

export const VERIFY_EXIT = { pass: 0, fail: 1, badInput: 2, inconclusive: 3 } as const;

export interface VerifyCliOptions {
  format: 'text' | 'json';
  spec?: string;
  maxEvidence?: number;
  /** Flows from a running agent instead of a capture file. */
  api?: ApiSource;
  /** The progress bar while a large capture is read: undefined shows it on a terminal. */
  progress?: boolean;
  /** Who the peers are: an identities file, a cluster (src/cli/identities.ts). */
  identities?: string;
  kubeconfig?: string;
}

/**
 * `tapwire verify`: the built-in detectors, and a spec's checks, over a capture's flows or over
 * flows a running agent holds. Returns the exit status.
 */
export async function runVerify(file: string | undefined, o: VerifyCliOptions): Promise<number> {
  let spec: Spec | undefined;
  if (o.spec !== undefined) {
    try {
      spec = await loadSpecFile(o.spec);
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      process.stderr.write(`tapwire: spec ${e.message}\n`);
      return VERIFY_EXIT.badInput;
    }
  }
  const ids = await openIdentities(o, (line) => process.stderr.write(`tapwire: ${line}\n`));
  if (!ids) return VERIFY_EXIT.badInput;
  let flows: FlowRecord[] | undefined;
  // What the capture held but did not decode; an agent's API does not say, so it stays unknown.
  let undecoded: DecodeCoverage | undefined;
  // An agent's window also has cluster events (issue 16); a capture file has none.
  let window: WindowContext | undefined;
  try {
    if (o.api) {
      const missing = new Map<string, { agent: string; error: string }>();
      flows = await apiFlows(o.api, (ms) => { for (const m of ms) missing.set(m.agent, m); });
      // An agent named its flows already; identities given here name them again, over its names.
      if (ids.enricher) for (const r of flows ?? []) ids.enricher.enrich(r);
      if (flows) window = await apiWindow(o.api, flows, missing.size ? { missing: [...missing.values()] } : undefined);
    } else {
      // Redacted like analyze: evidence shown to people carries tokens, not secrets.
      const c = await captureFlows(file!, new Redactor({ key: loadRedactKey().key }), { progress: o.progress, enricher: ids.enricher });
      flows = c?.flows;
      undecoded = c?.summary.coverage;
    }
  } finally {
    ids.stop();
  }
  if (!flows) return VERIFY_EXIT.badInput;
  const v = verifyWithSpec(flows, spec, o.maxEvidence, undecoded, window);
  process.stdout.write(o.format === 'json' ? `${JSON.stringify(v, null, 2)}\n` : fitToWidth(verdictText(v), terminalWidth()));
  return v.verdict === 'pass' ? VERIFY_EXIT.pass : v.verdict === 'fail' ? VERIFY_EXIT.fail : VERIFY_EXIT.inconclusive;
}

/** The agent's cluster events of the window judged, a snapshot's by its id (windowContext says when they cannot be read). */
function apiWindow(a: ApiSource, flows: readonly FlowRecord[], partial: PartialData | undefined): Promise<WindowContext> {
  return windowContext(RemoteSource.open(a.url, a.token), flows, {
    partial,
    since: a.since === undefined ? undefined : timeOf('since', a.since), until: a.until === undefined ? undefined : timeOf('until', a.until),
    snapshot: a.snapshot, label: 'window',
  });
}
