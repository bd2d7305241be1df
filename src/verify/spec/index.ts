import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FlowRecord } from '../../flows/index.js';
import type { DecodeCoverage } from '../../pipeline/index.js';
import { verify, type Verdict } from '../verdict.js';
import type { WindowContext } from '../events.js';
import { runChecks } from './checks.js';
import { parseSpec } from './parse.js';
import { SpecError } from './errors.js';
import type { Spec } from './types.js';

/**
 * The verification spec language (issue 5): `parseSpec`/`loadSpecFile` turn a YAML or JSON spec
 * into a Spec or throw a SpecError naming the file and field; `runChecks` evaluates its checks
 * over flow records. The spec's `detectors:` section is for the built-in detectors' runner.
 */
export { parseSpec, specValidator } from './parse.js';
export { runChecks, type CheckResults } from './checks.js';
export { parseSelector, selectFlows, matches } from './selector.js';
export { SpecError } from './errors.js';
export type { Check, Expect, Selector, Spec } from './types.js';

/** Reads and parses a spec file; body assertions' files (schemas, OpenAPI) resolve beside it. */
export async function loadSpecFile(path: string): Promise<Spec> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SpecError(path, 'file', code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a spec file' : (e as Error).message);
  }
  return parseSpec(text, path, dirname(path));
}

/**
 * The verdict on flows: the built-in detectors (with a spec's thresholds and names) and the spec's
 * checks. `tapwire verify`, `tapwire run`, standing specs and the MCP server all judge this way.
 * `undecoded`: what the flows' source saw but did not decode, when it can say; traffic of it to a
 * service the spec names makes a pass inconclusive.
 */
export function verifyWithSpec(flows: readonly FlowRecord[], spec: Spec | undefined, maxEvidence?: number, undecoded?: DecodeCoverage, window?: WindowContext): Verdict {
  const max = maxEvidence ?? spec?.maxEvidence;
  return verify(flows, {
    detectors: spec?.detectors, names: spec?.names, maxEvidence: max, undecoded, named: spec && namedServices(spec), window,
    checks: spec && ((fs, ctx) => ({ ...runChecks(spec, fs, { maxEvidence: max, parents: ctx.parents }), ran: spec.checks.length })),
  });
}

/**
 * The services a spec is about: the names of its `services:` map, and every service its checks
 * name (`service=` and `client=` in selectors, noSecretLeaves' and cache's service), as written: a name, an
 * "ip" or an "ip:port". noSecretLeaves' allowTo is left out: what goes there is allowed anyway.
 */
export function namedServices(spec: Spec): string[] {
  const out = new Set(Object.keys(spec.services));
  for (const c of spec.checks) {
    for (const sel of [c.select, ...(c.order ?? [])]) for (const t of sel?.tests ?? []) if (t.value !== undefined) out.add(t.value);
    if (c.noSecretLeaves) out.add(c.noSecretLeaves.service);
    if (c.cache?.service !== undefined) out.add(c.cache.service);
  }
  return [...out];
}
