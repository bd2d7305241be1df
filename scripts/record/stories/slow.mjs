// slow.pcap — two outliers among fast calls, and an endpoint that is slow every time.
//
//   search-api     127.0.0.22:8080   GET /search?q=TERM → index-service GET /index?q=TERM
//                                    GET /report        ~400 ms of its own work, no downstream call
//   index-service  127.0.0.23:8081   answers in 10-30 ms (seeded jitter), except its 10th and 20th
//                                    calls, which take ~1200 ms
import { serve, reply, call, keepAliveAgent, drive, wait, prngBytes } from './service.mjs';
import { exchanges, expect, tally, callTree } from './tshark.mjs';

const SEARCH_API = { host: '127.0.0.22', port: 8080 };
const INDEX = { host: '127.0.0.23', port: 8081 };

const TERMS = ['apple', 'banana', 'cherry', 'date', 'elderberry', 'fig', 'grape', 'honeydew', 'kiwi', 'lemon',
  'mango', 'nectarine', 'orange', 'papaya', 'quince', 'raspberry', 'strawberry', 'tangerine', 'ugli', 'vanilla',
  'watermelon', 'xigua', 'yuzu', 'zucchini', 'apricot', 'blueberry', 'coconut', 'durian', 'guava', 'lime'];
const SLOW_CALLS = [10, 20];
const SLOW_MS = 1200;
const REPORT_MS = 400;
const JITTER = prngBytes(TERMS.length, 0x51a7e);
/** Delay of index-service's n-th call (1-based). */
const indexDelay = (n) => (SLOW_CALLS.includes(n) ? SLOW_MS : 10 + (JITTER[(n - 1) % JITTER.length] % 21));

async function searchApi() {
  const agent = keepAliveAgent();
  await serve('search-api', SEARCH_API, async (req, res, url) => {
    if (url.pathname === '/search') {
      const q = url.searchParams.get('q');
      const index = await call(SEARCH_API.host, INDEX, 'GET', `/index?q=${encodeURIComponent(q)}`, { agent });
      return reply(res, 200, { q, results: index.json().hits });
    }
    if (url.pathname === '/report') {
      await wait(REPORT_MS); // building the report (no downstream call)
      return reply(res, 200, { report: 'daily', searches: TERMS.length });
    }
    reply(res, 404, { error: 'not found' });
  }, { onClose: () => agent.destroy() });
}

async function indexService() {
  let calls = 0;
  await serve('index-service', INDEX, async (req, res, url) => {
    if (url.pathname !== '/index') return reply(res, 404, { error: 'not found' });
    const q = url.searchParams.get('q');
    await wait(indexDelay(++calls));
    reply(res, 200, { q, hits: [`doc-${q}-1`, `doc-${q}-2`] });
  });
}

export const services = {
  'search-api': { ...SEARCH_API, start: searchApi },
  'index-service': { ...INDEX, start: indexService },
};

export const driver = () => drive(SEARCH_API, async (send) => {
  for (const term of TERMS) await send('GET', `/search?q=${term}`);
  for (let i = 0; i < 3; i++) await send('GET', '/report');
});

export function check(file) {
  const http = exchanges(file);
  const index = http.filter((e) => e.dst === INDEX.host);
  const ms = (e) => Math.round((e.end - e.time) * 1000);
  const slow = index.filter((e) => ms(e) >= 1000);
  const reports = http.filter((e) => e.uri === '/report');
  expect(http.length === 30 + 3 + 30 && http.every((e) => e.status === 200), '33 inbound + 30 index calls, all 200');
  expect(slow.map((e) => e.uri).join() === `/index?q=${TERMS[9]},/index?q=${TERMS[19]}`, 'the 10th and 20th index calls are the slow ones');
  expect(index.filter((e) => !slow.includes(e)).every((e) => ms(e) < 300), 'the other 28 index calls are fast');
  expect(reports.every((e) => ms(e) >= 390 && ms(e) < 900), '/report takes ~400 ms');
  return [
    `driver → search-api: ${tally(http.filter((e) => e.dst === SEARCH_API.host).map((e) => `${e.method} ${e.uri.replace(/=.*/, '=…')}`))}`,
    `index-service: 30 × GET /index?q=…, ${slow.length} slow: ${slow.map((e) => `frame ${e.frame} ${e.uri} ${ms(e)} ms`).join(', ')}; `
      + `the other 28 took ${Math.min(...index.filter((e) => !slow.includes(e)).map(ms))}-${Math.max(...index.filter((e) => !slow.includes(e)).map(ms))} ms`,
    ...callTree(SEARCH_API, http).filter((l) => l.includes('/report') || / [0-9]{4} ms/.test(l)),
  ];
}
