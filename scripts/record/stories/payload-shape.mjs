// payload-shape.pcap — responses of one endpoint whose shape drifts.
//
//   users-api  127.0.0.32:8080   GET /users/1 … /users/10, called by the driver directly
//
// Normal answer: Content-Type application/json, {"id":N,"name":…,"created":"2026-11-21T10:00:00Z","age":NN}.
// Deviations (the bugs): user 4 has "id":"4" (a string); user 7 has created as epoch seconds (a number);
// user 9 has created "21/11/2026"; user 10 answers 200 with Content-Type application/json and an
// HTML body.
import { serve, reply, drive } from './service.mjs';
import { exchanges, expect } from './tshark.mjs';

const USERS_API = { host: '127.0.0.32', port: 8080 };
const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy'];
const CREATED = '2026-11-21T10:00:00Z';
const HTML_ERROR = '<html><body>Internal error</body></html>';

function user(n) {
  const u = { id: n, name: NAMES[n - 1], created: CREATED, age: 21 + ((n * 7) % 40) };
  if (n === 4) u.id = String(n);
  if (n === 7) u.created = Date.parse(CREATED) / 1000;
  if (n === 9) u.created = '21/11/2026';
  return u;
}

async function usersApi() {
  await serve('users-api', USERS_API, (req, res, url) => {
    const n = Number(/^\/users\/(\d+)$/.exec(url.pathname)?.[1]);
    if (!(n >= 1 && n <= NAMES.length)) return reply(res, 404, { error: 'not found' });
    reply(res, 200, n === 10 ? HTML_ERROR : user(n));
  });
}

export const services = { 'users-api': { ...USERS_API, start: usersApi } };

export const driver = () => drive(USERS_API, async (send) => {
  for (let n = 1; n <= 10; n++) await send('GET', `/users/${n}`);
});

export function check(file) {
  const http = exchanges(file);
  expect(http.map((e) => e.uri).join() === NAMES.map((_, i) => `/users/${i + 1}`).join(), 'GET /users/1 … /users/10');
  expect(http.every((e) => e.status === 200 && e.responseHeaders['content-type'] === 'application/json'), 'all 200 application/json');
  expect(http.every((e, i) => e.body === (i === 9 ? HTML_ERROR : JSON.stringify(user(i + 1)))), 'the bodies');
  return http.map((e) => `frame ${e.frame} GET ${e.uri} → ${e.status} ${e.responseHeaders['content-type']}: ${e.body}`);
}
