import { describe, expect, it } from 'vitest';
import { CASES } from './cases.js';
import { runScenario, scenarioSegments, shape, summary } from '../helpers/http.js';
import { runPcapFile } from '../helpers/pipeline.js';

describe('HTTP/1 spec cases', () => {
  for (const c of CASES) {
    it(c.name, () => {
      let run!: ReturnType<typeof runScenario>;
      expect(() => { run = runScenario(c); }).not.toThrow();
      const { records, violations, pipeline } = run;
      expect(records.map(summary)).toEqual(c.records);
      if (c.details) expect(records.slice(0, c.details.length)).toMatchObject(c.details);
      if (c.violationPattern) {
        const codes = Object.keys(violations);
        expect(codes.length).toBeGreaterThan(0);
        for (const code of codes) expect(code).toMatch(c.violationPattern);
      } else {
        expect(violations).toEqual(c.violations ?? {});
      }
      if (c.unknownConnections !== undefined) expect(pipeline.dispatcher.stats.unknown).toBe(c.unknownConnections);
      for (const r of records) {
        expect(r.protocol).toBe('http');
        expect(r.src).toEqual({ ip: '10.0.0.1', port: c.conv?.clientPort ?? 40000 });
        expect(r.dst).toEqual({ ip: '10.0.0.2', port: c.conv?.serverPort ?? 80 });
      }
    });
  }
});

describe('HTTP/1 spec cases through a pcap file', () => {
  it('readCapture + analyzeFile give the same records as packets fed to the pipeline', async () => {
    for (const c of CASES) {
      const direct = runScenario(c);
      const viaFile = await runPcapFile(scenarioSegments(c));
      expect(viaFile.records.map(shape), c.name).toEqual(direct.records.map(shape));
      expect(viaFile.records.map((r) => r.request?.frames ?? r.response?.frames), c.name).toEqual(direct.records.map((r) => r.request?.frames ?? r.response?.frames));
      expect(viaFile.violations, c.name).toEqual(direct.violations);
    }
  });
});
