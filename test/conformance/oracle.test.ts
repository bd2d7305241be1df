/** The oracle reader on small hand-written files: runs without the shared captures. */
import { describe, expect, it } from 'vitest';
import { parseEndpoint, parseOracle, unescapeValue } from './oracle.js';
import { connKey, normIp, oracleTransactions } from './http1-compare.js';

const T = '\t';
const row = (...cols: string[]) => cols.join(T);

const SAMPLE = [
  '# oracle: TShark 4.0.17',
  '# tshark_stderr: tshark: damaged\\n(pcap: bad)',
  row('tcp_stream', '1', '0', '192.168.1.104:1673', '63.245.209.11:80', '10', '20', 'aa', 'bb'),
  row('tcp_stream', '12', '1', '[::1]:55717', '[::1]:8000', '0', '0', 'cc', 'dd'),
  row('http_resp', '3', '0', 'HTTP/1.1', '100', 'Continue', '', '', '', '', '', ''),
  row('http_req', '4', '0', 'POST', '/a\\tb\\\\c', 'HTTP/1.1', 'h', '5', '', '', '', '5', '6'),
  row('http_resp', '6', '0', 'HTTP/1.1', '200', 'OK', '', 'chunked', 'gzip', 'text/html', '42', '4'),
  row('http_resp', '7', '0', 'HTTP/1.0', '400', 'Bad Request', '925', '', '', 'text/html', '925', ''),
  row('dns', '9', 'u0', 'udp', '1', '0', '0', '0', 'x', '1', '0', ''),
  '',
].join('\n');

describe('oracle reader', () => {
  it('parses header, typed rows and other kinds', () => {
    const o = parseOracle(SAMPLE, 'sample.tsv');
    expect(o.header[0]).toBe('oracle: TShark 4.0.17');
    expect(o.tsharkStderr).toBe('tshark: damaged\n(pcap: bad)');
    expect(o.tcpStreams).toHaveLength(2);
    expect(o.tcpStreams[0]).toMatchObject({ frame: 1, stream: 0, node0: { ip: '192.168.1.104', port: 1673 }, node1Bytes: 20, node1Sha256: 'bb' });
    expect(o.tcpStreams[1]!.node0).toEqual({ ip: '::1', port: 55717 });
    expect(o.httpReqs[0]).toMatchObject({ method: 'POST', uri: '/a\tb\\c', contentLength: '5', bodyLen: 5, responseIn: 6 });
    expect(o.httpResps.map((r) => [r.code, r.bodyLen, r.requestIn])).toEqual([[100, undefined, undefined], [200, 42, 4], [400, 925, undefined]]);
    expect(o.rows.find((r) => r.kind === 'dns')).toMatchObject({ udpStream: 'u0', stream: -1 });
  });

  it('refuses rows with the wrong number of columns, naming file and line', () => {
    expect(() => parseOracle(row('http_req', '4', '0', 'GET', '/'), 'x.tsv')).toThrow(/x\.tsv:1: http_req row has 2 columns/);
  });

  it('unescapes only the four escapes', () => {
    expect(unescapeValue('a\\tb\\nc\\rd\\\\e\\x')).toBe('a\tb\nc\rd\\e\\x');
  });

  it('reads the endpoint forms tshark writes, including ":0" for a stream without addresses', () => {
    expect(parseEndpoint('10.0.0.1:80')).toEqual({ ip: '10.0.0.1', port: 80 });
    expect(parseEndpoint('[2001:db8::1]:443')).toEqual({ ip: '2001:db8::1', port: 443 });
    expect(parseEndpoint(':0')).toEqual({ ip: '', port: 0 });
    expect(() => parseEndpoint('nonsense')).toThrow();
  });

  it('builds transactions: pairs through response_in, folds interim 1xx, keeps response-only ones', () => {
    const { txs, interim } = oracleTransactions(parseOracle(SAMPLE));
    expect(txs.map((t) => [t.method, t.status, t.respBody])).toEqual([['POST', 200, 42], [undefined, 400, 925]]);
    expect([...interim.values()]).toEqual([1]);
  });

  it('spells one address one way', () => {
    expect(normIp('::1')).toBe(normIp('0:0:0:0:0:0:0:1'));
    expect(connKey({ ip: '::1', port: 1 }, { ip: '::1', port: 2 })).toBe(connKey({ ip: '0::1', port: 2 }, { ip: '::0:1', port: 1 }));
  });
});
