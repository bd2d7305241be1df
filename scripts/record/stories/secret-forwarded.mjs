// secret-forwarded.pcap — a gateway forwards the user's credential to a service that should not get it.
//
//   gateway        127.0.0.24:8080   GET /profile (user token + API key) →
//                                      users-service GET /users/me with the gateway's OWN service token
//                                        and X-User: 7 (fine)
//                                      analytics POST /events with the user's Authorization header,
//                                        forwarded verbatim (BUG)
//                                    GET /health (no credentials, no downstream calls)
//   users-service  127.0.0.25:8081
//   analytics      127.0.0.26:8082
//
// Every token and key here is made up for this fixture.
import { serve, reply, call, keepAliveAgent, drive } from './service.mjs';
import { exchanges, expect, callTree } from './tshark.mjs';

const GATEWAY = { host: '127.0.0.24', port: 8080 };
const USERS = { host: '127.0.0.25', port: 8081 };
const ANALYTICS = { host: '127.0.0.26', port: 8082 };

// a JWT-shaped fake: {"alg":"HS256","typ":"JWT"}.{"sub":"7","name":"grace"}.fake-signature-for-tapwire
const USER_TOKEN = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3IiwibmFtZSI6ImdyYWNlIn0.ZmFrZS1zaWduYXR1cmUtZm9yLXRhcHdpcmU';
const API_KEY = 'tapwire-fake-api-key-5f0c9a2e7d41b836';
const SERVICE_TOKEN = 'gateway-service-token-a81d4c6e02f9b375';

async function gateway() {
  const users = keepAliveAgent();
  const analytics = keepAliveAgent();
  await serve('gateway', GATEWAY, async (req, res, url) => {
    if (url.pathname === '/health') return reply(res, 200, { status: 'ok' });
    if (url.pathname !== '/profile') return reply(res, 404, { error: 'not found' });
    if (req.headers.authorization !== `Bearer ${USER_TOKEN}` || req.headers['x-api-key'] !== API_KEY) {
      return reply(res, 401, { error: 'unauthorized' });
    }
    const user = await call(GATEWAY.host, USERS, 'GET', '/users/me', {
      agent: users, headers: { Authorization: `Bearer ${SERVICE_TOKEN}`, 'X-User': '7' },
    });
    // BUG: "pass the caller's auth along" — the user's bearer token goes to analytics verbatim
    await call(GATEWAY.host, ANALYTICS, 'POST', '/events', {
      agent: analytics,
      headers: { Authorization: req.headers.authorization },
      body: { event: 'profile.viewed', user: 7, source: 'gateway' },
    });
    reply(res, 200, user.json());
  }, { onClose: () => { users.destroy(); analytics.destroy(); } });
}

async function usersService() {
  await serve('users-service', USERS, (req, res, url) => {
    if (url.pathname !== '/users/me') return reply(res, 404, { error: 'not found' });
    if (req.headers.authorization !== `Bearer ${SERVICE_TOKEN}`) return reply(res, 401, { error: 'unauthorized' });
    reply(res, 200, { id: Number(req.headers['x-user']), name: 'grace', email: 'grace@example.com', plan: 'pro' });
  });
}

async function analyticsService() {
  await serve('analytics', ANALYTICS, (req, res, url) => {
    if (req.method !== 'POST' || url.pathname !== '/events') return reply(res, 404, { error: 'not found' });
    reply(res, 202, { accepted: true });
  });
}

export const services = {
  gateway: { ...GATEWAY, start: gateway },
  'users-service': { ...USERS, start: usersService },
  analytics: { ...ANALYTICS, start: analyticsService },
};

export const driver = () => drive(GATEWAY, async (send) => {
  const headers = { Authorization: `Bearer ${USER_TOKEN}`, 'X-Api-Key': API_KEY };
  for (let i = 0; i < 4; i++) await send('GET', '/profile', { headers });
  await send('GET', '/health');
});

export function check(file) {
  const http = exchanges(file);
  const by = (host) => http.filter((e) => e.dst === host.host);
  const user = `Bearer ${USER_TOKEN}`;
  const profile = by(GATEWAY).filter((e) => e.uri === '/profile');
  const health = by(GATEWAY).filter((e) => e.uri === '/health');
  expect(profile.length === 4 && profile.every((e) => e.headers.authorization === user && e.headers['x-api-key'] === API_KEY),
    '4 × /profile with the user token and the API key');
  expect(health.length === 1 && !health[0].headers.authorization && !health[0].headers['x-api-key'], '/health without credentials');
  expect(by(USERS).length === 4 && by(USERS).every((e) => e.headers.authorization === `Bearer ${SERVICE_TOKEN}`
    && e.headers['x-user'] === '7' && e.status === 200), '4 × users-service with the service token');
  expect(by(ANALYTICS).length === 4 && by(ANALYTICS).every((e) => e.headers.authorization === user && e.status === 202),
    '4 × analytics with the user token (the bug)');
  expect(http.every((e) => e.dst === ANALYTICS.host || e.status === 200), 'everything else 200');
  expect(http.every((e) => !e.headers['x-api-key'] || e.dst === GATEWAY.host), 'the API key is not forwarded');
  return [
    ...callTree(GATEWAY, http),
    `users-service: Authorization: Bearer ${SERVICE_TOKEN}, X-User: 7 on all 4 calls`,
    `analytics: Authorization: Bearer ${USER_TOKEN.slice(0, 12)}… (the user's token, byte for byte) on all 4 calls; X-Api-Key is not forwarded`,
  ];
}
