// cache.pcap — a cacheable response fetched again on every request, next to one that says nothing.
//
//   web             127.0.0.30:8080   GET /home → config-service GET /config and GET /prices
//   config-service  127.0.0.31:8081   /config: Cache-Control: max-age=300, an ETag, the same body every
//                                     time; /prices: no Cache-Control header at all
//
// BUG: web has no HTTP cache, so it fetches /config (fresh for 300 s) on each of the 8 page views,
// unconditionally (no If-None-Match).
import { serve, reply, call, keepAliveAgent, drive } from './service.mjs';
import { exchanges, expect, tally, callTree } from './tshark.mjs';

const WEB = { host: '127.0.0.30', port: 8080 };
const CONFIG = { host: '127.0.0.31', port: 8081 };

const CONFIG_BODY = { theme: 'light', currency: 'EUR', features: { search: true, recommendations: false }, version: 42 };
const CONFIG_ETAG = '"cfg-v42-7d3f19"';
const PRICES_BODY = { 'SKU-1001': '5.75', 'SKU-1002': '7.00', 'SKU-1003': '8.25' };

async function web() {
  const agent = keepAliveAgent();
  await serve('web', WEB, async (req, res, url) => {
    if (url.pathname !== '/home') return reply(res, 404, { error: 'not found' });
    const config = (await call(WEB.host, CONFIG, 'GET', '/config', { agent })).json();
    const prices = (await call(WEB.host, CONFIG, 'GET', '/prices', { agent })).json();
    const list = Object.entries(prices).map(([sku, p]) => `<li>${sku}: ${p} ${config.currency}</li>`).join('');
    reply(res, 200, `<html><body class="${config.theme}"><ul>${list}</ul></body></html>`, { 'Content-Type': 'text/html; charset=utf-8' });
  }, { onClose: () => agent.destroy() });
}

async function configService() {
  await serve('config-service', CONFIG, (req, res, url) => {
    if (url.pathname === '/config') return reply(res, 200, CONFIG_BODY, { 'Cache-Control': 'max-age=300', ETag: CONFIG_ETAG });
    if (url.pathname === '/prices') return reply(res, 200, PRICES_BODY);
    reply(res, 404, { error: 'not found' });
  });
}

export const services = {
  web: { ...WEB, start: web },
  'config-service': { ...CONFIG, start: configService },
};

export const driver = () => drive(WEB, async (send) => {
  for (let i = 0; i < 8; i++) await send('GET', '/home', { headers: { Accept: 'text/html' } });
});

export function check(file) {
  const http = exchanges(file);
  const config = http.filter((e) => e.uri === '/config');
  const prices = http.filter((e) => e.uri === '/prices');
  expect(http.length === 24 && http.every((e) => e.status === 200), '8 × /home + 16 calls, all 200');
  expect(config.length === 8 && config.every((e) => e.responseHeaders['cache-control'] === 'max-age=300'
    && e.responseHeaders.etag === CONFIG_ETAG && e.body === config[0].body && !e.headers['if-none-match']),
  '8 × /config: max-age=300, one ETag, one body, unconditional');
  expect(prices.length === 8 && prices.every((e) => !e.responseHeaders['cache-control']), '8 × /prices without Cache-Control');
  expect(new Set(http.filter((e) => e.src === WEB.host).map((e) => e.stream)).size === 1, 'web → config-service on one connection');
  return [
    ...callTree(WEB, http),
    `/config responses: ${tally(config.map((e) => `Cache-Control: ${e.responseHeaders['cache-control']}, ETag: ${e.responseHeaders.etag}, body ${e.body}`))}`,
    `/prices responses: ${tally(prices.map((e) => `no Cache-Control, body ${e.body}`))}`,
    'no request carries If-None-Match; all web → config-service calls share one connection',
  ];
}
