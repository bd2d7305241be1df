import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_NAMES } from '../../src/flows/index.js';
import { DETECTOR_DEFAULTS, DETECTOR_KINDS } from '../../src/verify/config.js';
import { loadSpecFile, parseSpec, SpecError } from '../../src/verify/spec/index.js';

/** Issue 5, the spec language: bad specs fail with the file, the field and what is wrong. */

const parse = (text: string) => parseSpec(text, 'bad.yaml', '/tmp');
/** The error a spec gives; the test fails when it parses. */
function errorOf(text: string): SpecError {
  try {
    parse(text);
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return e as SpecError;
  }
  throw new Error(`parsed without error:\n${text}`);
}
/** A one-check spec around a select/expect body. */
const check = (body: string) => `version: 1\nchecks:\n  - name: c\n${body.replace(/^/gm, '    ')}\n`;

describe('spec errors name the file, the field and what was wrong', () => {
  it('YAML syntax errors give line and column', () => {
    const e = errorOf('version: 1\nchecks:\n  - name: a\n   select: b\n');
    expect(e.message).toMatch(/^bad\.yaml: line 4, column \d+: not valid YAML: /);
    expect(errorOf('version: 1\nversion: 1\n').message).toBe('bad.yaml: line 2, column 1: not valid YAML: Map keys must be unique');
    expect(errorOf('').message).toBe('bad.yaml: top level: the spec is empty: it needs at least `version: 1`');
  });

  it('an unknown key is an error, with a suggestion and the line', () => {
    const e = errorOf(check('select: http\nexpect:\n  cout: { atMost: 1 }'));
    expect(e.message).toBe('bad.yaml: checks[0].expect.cout: unknown key (did you mean count?); allowed here: count, backoff, latency, request, response, perRequest (line 6)');
    expect(e.at).toBe('checks[0].expect.cout');
    expect(errorOf('version: 1\nchekcs: []\n').message).toMatch(/^bad\.yaml: chekcs: unknown key \(did you mean checks\?\)/);
    expect(errorOf('version: 1\ndetectors:\n  redundant: { errorCount: 5 }\n').message).toMatch(/detectors\.redundant: unknown key \(did you mean redundant-call\?\)/);
    expect(errorOf(check("select: { protocol: http, pth: '/x' }\nexpect: { count: { atMost: 1 } }")).message).toMatch(/checks\[0\]\.select\.pth: unknown key \(did you mean path\?\)/);
    // The typo, not the key it was meant to be, is the error.
    expect(errorOf(check('noSecretLeaves: { servce: a }')).message).toMatch(/checks\[0\]\.noSecretLeaves\.servce: unknown key \(did you mean service\?\); allowed here: service, allowTo \(line 4\)/);
  });

  it('wrong types and bounds say what the field must be and what it got', () => {
    expect(errorOf(check('select: http\nexpect:\n  count: { atMost: -1 }')).message)
      .toBe('bad.yaml: checks[0].expect.count.atMost: must be a whole number ≥ 0, got number -1 (line 6)');
    expect(errorOf(check('select: http\nexpect:\n  count: { atMost: "x" }')).message).toMatch(/count\.atMost: must be a whole number ≥ 0, got string "x"/);
    expect(errorOf('version: 2\n').message).toBe('bad.yaml: version: must be 1, got number 2 (line 1)');
    expect(errorOf('checks: []\n').message).toBe('bad.yaml: version: missing (required) (line 1)');
    expect(errorOf(check('severity: fatal\nnoSecretLeaves: x')).message).toMatch(/checks\[0\]\.severity: must be one of error, warning, info, got string "fatal"/);
    expect(errorOf(check('select: 5\nexpect: { count: { atMost: 1 } }')).message).toMatch(/checks\[0\]\.select: must be a selector string such as .*, or a selector object, got number 5/);
    expect(errorOf(check('select: http\nexpect: { response: { status: 700 } }')).message).toMatch(/response\.status: must be an HTTP status such as 503/);
    expect(errorOf('version: 1\nservices:\n  a: ["localhost"]\n').message).toMatch(/services\.a\[0\]: must be an address, "ip" or "ip:port".*got string "localhost"/);
    expect(errorOf(check('select: http\nexpect: {}')).message).toMatch(/checks\[0\]\.expect: must be a mapping with at least one of count, backoff/);
    expect(errorOf('version: 1\ndetectors:\n  error-status: { burst4xx: 0 }\n').message).toMatch(/detectors\.error-status\.burst4xx: must be a whole number ≥ 1, got number 0/);
    expect(errorOf('- version: 1\n').message).toMatch(/^bad\.yaml: top level: a spec is a mapping/);
  });

  it('a bad regular expression is named with its field', () => {
    expect(errorOf(check("select: http\nexpect:\n  request: { headers: { authorization: { matches: '([' } } }")).message)
      .toBe('bad.yaml: checks[0].expect.request.headers.authorization.matches: invalid regular expression /([/: Unterminated character class (line 6)');
    expect(errorOf(check("select: { path: '/([/' }\nexpect: { count: { atMost: 1 } }")).message).toMatch(/checks\[0\]\.select\.path: invalid regular expression \/\(\[\//);
  });

  it('a bad selector gives the character where it goes wrong', () => {
    const sel = (s: string) => errorOf(check(`select: '${s}'\nexpect: { count: { atMost: 1 } }`)).message;
    expect(sel('http[pth="/x"]')).toMatch(/^bad\.yaml: checks\[0\]\.select: bad selector 'http\[pth="\/x"\]' at character 6: unknown key "pth" \(keys: service, client, method, path/);
    expect(sel('htp[path="/x"]')).toContain(`at character 1: unknown protocol "htp" (expected ${PROTOCOL_NAMES.join(', ')} or *)`);
    expect(sel('http[path="/x"')).toMatch(/at character 15: missing "\]"/);
    expect(sel('http[path="/x]')).toMatch(/at character 11: unterminated double-quoted value/);
    expect(sel('http[status=abc]')).toMatch(/at character 13: "abc" is not a status test/);
    expect(sel('http[path>"/x"]')).toMatch(/at character 10: ">" compares only status and grpcStatus/);
    expect(sel('http:nth(0)')).toMatch(/at character 6: nth\(n\) counts from 1/);
    expect(sel('http[path="orders"]')).toMatch(/at character 11: path "orders" must start with "\/"/);
    expect(sel('http[path="/x"] extra')).toMatch(/at character 17: unexpected "e"/);
    expect(errorOf(check("order: [http, 'http[x=1]']")).message).toMatch(/checks\[0\]\.order\[1\]: bad selector 'http\[x=1\]' at character 6: unknown key "x"/);
  });

  it('what a schema cannot say: check kinds, names, bounds, schedules, services', () => {
    expect(errorOf(check('')).message).toMatch(/checks\[0\]: needs one of select \(with expect\), noSecretLeaves, order or cache/);
    expect(errorOf(check('select: http\nexpect: { count: { atMost: 1 } }\nnoSecretLeaves: x')).message).toMatch(/checks\[0\]: has select and noSecretLeaves/);
    expect(errorOf(check('select: http')).message).toMatch(/checks\[0\]\.select: needs expect/);
    expect(errorOf('version: 1\nchecks:\n  - { name: a, noSecretLeaves: x }\n  - { name: a, noSecretLeaves: y }\n').message).toMatch(/checks\[1\]\.name: "a" is also the name of checks\[0\]/);
    expect(errorOf(check('select: http\nexpect: { count: { atLeast: 3, atMost: 1 } }')).message).toMatch(/count\.atLeast: 3 is more than atMost 1/);
    expect(errorOf(check('select: http\nexpect: { count: { exactly: 3, atMost: 4 } }')).message).toMatch(/count\.exactly: cannot be combined with atLeast or atMost/);
    expect(errorOf(check('select: http\nexpect: { backoff: { tolerance: 0.1 } }')).message).toMatch(/expect\.backoff: needs schedule \(delays in ms\) or initialMs/);
    expect(errorOf(check('select: http\nexpect: { backoff: { schedule: [1], factor: 2 } }')).message).toMatch(/backoff\.factor: cannot be combined with schedule/);
    expect(errorOf(check('select: http\nexpect: { request: { headers: { x: { absent: true, equals: y } } } }')).message).toMatch(/request\.headers\.x: asks for the header to be both absent and there/);
    expect(errorOf('version: 1\nservices:\n  a: ["127.0.0.1"]\n  b: ["127.0.0.1"]\n').message).toMatch(/services\.b\[0\]: 127\.0\.0\.1 is also listed under a/);
  });

  it('body assertion errors (src/verify/spec/body.ts) carry the spec file and their line', () => {
    const e = errorOf(check("select: http\nexpect:\n  response:\n    body: { json: [ { path: '$.a', equals: 1, bogus: 2 } ] }"));
    expect(e.source).toBe('bad.yaml');
    expect(e.at).toBe('checks[0].expect.response.body.json[0].bogus');
    expect(e.message).toMatch(/\(line 7\)$/);
  });

  it('a spec file that cannot be read names it', async () => {
    await expect(loadSpecFile('/nonexistent/spec.yaml')).rejects.toThrow('/nonexistent/spec.yaml: file: no such file');
  });
});

describe('a good spec', () => {
  it('compiles selectors, bounds and settings; JSON works as well as YAML', () => {
    const spec = parseSpec(JSON.stringify({
      version: 1,
      services: { api: ['10.0.0.1:80'] },
      evidence: { max: 3 },
      detectors: { 'redundant-call': { errorCount: 5 }, cache: { enabled: false } },
      checks: [
        { name: 'a', severity: 'warning', select: { protocol: 'http', service: 'api', status: 503, pick: 'nth(2)' }, expect: { count: { atMost: 1 } } },
        { name: 'b', select: 'postgres[fingerprint="select *"]:last', expect: { backoff: { initialMs: 100, maxMs: 300 } } },
      ],
    }), 'spec.json', '/tmp');
    expect(spec.maxEvidence).toBe(3);
    expect(spec.detectors).toEqual({ 'redundant-call': { errorCount: 5 }, cache: { enabled: false } });
    expect(spec.checks[0]!.severity).toBe('warning');
    expect(spec.checks[0]!.select!.text).toBe('http[service="api" status="503"]:nth(2)');
    expect(spec.checks[0]!.select!.pick).toEqual({ kind: 'nth', n: 2 });
    expect(spec.checks[1]!.severity).toBe('error');
    const b = spec.checks[1]!.expect!.backoff!;
    expect([0, 1, 2, 3].map((i) => b.expectedMs(i))).toEqual([100, 200, 300, 300]);
    expect(b.tolerance).toBe(0.25);
  });
});

describe('the shipped schema', () => {
  const schema = JSON.parse(readFileSync('schema/tapwire-spec.schema.json', 'utf8'));
  const body = JSON.parse(readFileSync('schema/tapwire-spec-body.schema.json', 'utf8'));

  it('is a valid, strict draft 2020-12 schema that validates the example specs', () => {
    // allowUnionTypes: the body schema's inline `schema:` is an object or a boolean.
    const ajv = new Ajv2020.default({ strict: true, allowUnionTypes: true, allErrors: true });
    ajv.addSchema({ ...body, $id: new URL('tapwire-spec-body.schema.json', schema.$id).href });
    const validate = ajv.compile(schema);
    const examples = readdirSync('examples/specs').filter((f) => /\.ya?ml$/.test(f));
    expect(examples.length).toBeGreaterThan(0);
    for (const f of examples) {
      const text = readFileSync(join('examples/specs', f), 'utf8');
      expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../../schema/tapwire-spec.schema.json');
      expect(validate(parseYaml(text)), `${f}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it('describes every property, for editor completion', () => {
    const missing: string[] = [];
    const walk = (s: unknown, at: string): void => {
      if (typeof s !== 'object' || s === null) return;
      const o = s as Record<string, unknown>;
      for (const [k, v] of Object.entries((o.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        // A property that is a $ref shows its definition's description.
        const def = typeof v.$ref === 'string' ? schema.$defs[v.$ref.replace('#/$defs/', '')] : undefined;
        if (!v.description && !def?.description) missing.push(`${at}.${k}`);
        walk(v, `${at}.${k}`);
      }
      for (const key of ['items', 'additionalProperties']) walk(o[key], `${at}.${key}`);
      for (const [k, v] of Object.entries((o.$defs ?? {}) as Record<string, unknown>)) walk(v, `$defs.${k}`);
      for (const alt of [...((o.oneOf ?? []) as unknown[]), ...Object.values((o.patternProperties ?? {}) as object)]) walk(alt, `${at}|`);
    };
    walk(schema, '');
    expect(missing).toEqual([]);
    expect(schema.$id).toMatch(/^https:\/\//);
    expect(schema.$comment).toMatch(/yaml-language-server: \$schema=/);
  });

  it('knows every detector and exactly its thresholds (src/verify/config.ts)', () => {
    const detectors = schema.properties.detectors.properties as Record<string, { properties: Record<string, { type: string }> }>;
    expect(Object.keys(detectors).sort()).toEqual([...DETECTOR_KINDS].sort());
    for (const kind of DETECTOR_KINDS) {
      const defaults = DETECTOR_DEFAULTS[kind] as Record<string, unknown>;
      expect(Object.keys(detectors[kind]!.properties).sort(), kind).toEqual(['enabled', 'severity', ...Object.keys(defaults)].sort());
      for (const [k, v] of Object.entries(defaults)) {
        const type = detectors[kind]!.properties[k]!.type;
        expect(Array.isArray(v) ? type === 'array' : typeof v === 'number' ? type === 'number' || (type === 'integer' && Number.isInteger(v)) : type === typeof v, `${kind}.${k}`).toBe(true);
      }
    }
  });
});
