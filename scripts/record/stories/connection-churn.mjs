// connection-churn.pcap — a new TCP connection per call, next to a pooled one, and a reset.
//
//   gateway  127.0.0.33:8080   GET /quote (the driver: 10 calls on one keep-alive connection) →
//                                pricing GET /price on a NEW connection each time (agent: false,
//                                  Connection: close) (BUG)
//                                rates GET /rate through a keep-alive agent (maxSockets 1): one
//                                  connection for all calls (fine)
//   pricing  127.0.0.34:8081   resets the connection instead of answering its 5th call; gateway
//                              retries that call once after 100 ms, and the retry succeeds
//   rates    127.0.0.35:8082
import { serve, reply, call, keepAliveAgent, drive, wait } from './service.mjs';
import { exchanges, expect, callTree } from './tshark.mjs';

const GATEWAY = { host: '127.0.0.33', port: 8080 };
const PRICING = { host: '127.0.0.34', port: 8081 };
const RATES = { host: '127.0.0.35', port: 8082 };
const RESET_CALL = 5;
const RETRY_DELAY_MS = 100;

async function gateway() {
  const rates = keepAliveAgent();
  // BUG: agent false: no pooling, every price lookup opens (and closes) its own connection
  const price = () => call(GATEWAY.host, PRICING, 'GET', '/price', { agent: false });
  await serve('gateway', GATEWAY, async (req, res, url) => {
    if (url.pathname !== '/quote') return reply(res, 404, { error: 'not found' });
    let p;
    try {
      p = await price();
    } catch (e) {
      if (e.code !== 'ECONNRESET') throw e;
      await wait(RETRY_DELAY_MS);
      p = await price();
    }
    const r = await call(GATEWAY.host, RATES, 'GET', '/rate', { agent: rates });
    reply(res, 200, { price: p.json().amount, rate: r.json().rate, total: (p.json().amount * r.json().rate).toFixed(2) });
  }, { onClose: () => rates.destroy() });
}

async function pricing() {
  let calls = 0;
  await serve('pricing', PRICING, (req, res) => {
    if (++calls === RESET_CALL) return req.socket.resetAndDestroy();
    reply(res, 200, { amount: 100 + calls });
  });
}

async function ratesService() {
  await serve('rates', RATES, (req, res) => reply(res, 200, { currency: 'EUR', rate: 0.92 }));
}

export const services = {
  gateway: { ...GATEWAY, start: gateway },
  pricing: { ...PRICING, start: pricing },
  rates: { ...RATES, start: ratesService },
};

export const driver = () => drive(GATEWAY, async (send) => {
  for (let i = 0; i < 10; i++) await send('GET', '/quote');
});

export function check(file) {
  const http = exchanges(file);
  const by = (s) => http.filter((e) => e.dst === s.host);
  const streams = (list) => new Set(list.map((e) => e.stream)).size;
  const price = by(PRICING);
  const reset = price.filter((e) => e.status === undefined);
  expect(by(GATEWAY).length === 10 && by(GATEWAY).every((e) => e.status === 200) && streams(by(GATEWAY)) === 1,
    '10 × /quote, one connection, all 200');
  expect(price.length === 11 && streams(price) === 11 && price.every((e) => e.headers.connection === 'close'),
    '11 pricing calls, each on its own connection with Connection: close');
  expect(reset.length === 1 && reset[0] === price[RESET_CALL - 1] && price[RESET_CALL].status === 200
    && price[RESET_CALL].time - reset[0].time >= RETRY_DELAY_MS / 1000, 'the 5th call reset, retried 100 ms later');
  expect(by(RATES).length === 10 && streams(by(RATES)) === 1 && by(RATES).every((e) => e.status === 200), '10 rate calls, one connection');
  return [
    ...callTree(GATEWAY, http),
    `pricing: ${price.length} × GET /price on ${streams(price)} connections (tcp.stream ${price.map((e) => e.stream).join(', ')}); `
      + `frame ${reset[0].frame} has no response (RST), retried ${Math.round((price[RESET_CALL].time - reset[0].time) * 1000)} ms later in frame ${price[RESET_CALL].frame}`,
    `rates: ${by(RATES).length} × GET /rate on ${streams(by(RATES))} connection (tcp.stream ${by(RATES)[0].stream})`,
  ];
}
