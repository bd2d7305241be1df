import { describe, expect, it } from 'vitest';
import type { TlsFlow } from '../../../src/flows/record.js';
import { recordModule } from '../../../src/flows/index.js';
import { viewFlow } from '../../../src/mcp/bodies.js';
import { flowDetailText } from '../../../src/mcp/flow-text.js';
import { flowRow } from '../../../src/mcp/rows.js';
import { analyzeFile } from '../../../src/pipeline/analyze.js';

/** A recorded TLS connection as the front doors show it: the MCP row and text, the CLI table. */
describe('TLS records at the front doors', () => {
  it('tls13-curl: row, table and get_flow text name the SNI, version, cipher and handshake', async () => {
    const [r] = (await analyzeFile('pcaps/tls/tls13-curl.pcap')).records! as TlsFlow[];
    expect(r!.protocol).toBe('tls');
    const row = flowRow(r!);
    expect(row.call).toBe('TLS tls.test [h2,http/1.1]');
    expect(row.status).toBe('TLS 1.3 TLS_AES_256_GCM_SHA384');
    const t = recordModule(r!).table(r!);
    expect(t).toMatchObject({ method: 'TLS', status: '1.3', what: 'tls.test' });
    const text = flowDetailText(viewFlow(r!, 4096), true);
    expect(text).toContain('sni: tls.test');
    expect(text).toContain('cipher: TLS_AES_256_GCM_SHA384');
    expect(text).toMatch(/handshakeMs: [\d.]+/);
    expect(text).not.toContain('undefined');
  });

  it('filter variables: tls_sni and tls_ja4', async () => {
    const [r] = (await analyzeFile('pcaps/tls/tls12-curl.pcap')).records! as TlsFlow[];
    const vars = recordModule(r!).filterVariables;
    expect(vars.tls_sni!(r!)).toBe('tls.test');
    expect(vars.tls_ja4!(r!)).toMatch(/^t12d/);
  });
});
