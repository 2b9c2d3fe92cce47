// The shopper's side of the public API (docs/internal-api.md), in both modes: a 202 is
// followed by polling its status URL with a short backoff until a final state, so callers
// see the same outcomes whether the suite runs sync or async.

import http from 'k6/http';
import { sleep } from 'k6';

const JSON_HEADERS = { 'Content-Type': 'application/json' };

// 409 (sold out, limit reached, expired) and 402 (declined) are business answers, not
// failures: `http_req_failed` counts only the rest.
export const EXPECTED = http.expectedStatuses({ min: 200, max: 299 }, 402, 409);

export class Unauthorized extends Error {}

// A login that did not answer 200 with a token.
export class LoginFailed extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// `n` random hex digits, not all zero (W3C trace context forbids an all-zero id).
function randomHex(n) {
  for (;;) {
    let out = '';
    while (out.length < n) {
      out += Math.floor(Math.random() * 0x100000000)
        .toString(16)
        .padStart(8, '0');
    }
    out = out.slice(0, n);
    if (/[^0]/.test(out)) return out;
  }
}

// The journey's trace (docs/tracing.md): `{ id, flags }` while an iteration is traced, null
// otherwise (ratio 0, and setup()'s logins).
let trace = null;

// Start the iteration's trace: a random trace id, sampled with probability `ratio` (the flags
// every request of the iteration carries, so the services record all of it or none). Ratio 0:
// no trace, no header.
export function startTrace(ratio) {
  trace = ratio > 0 ? { id: randomHex(32), flags: Math.random() < ratio ? '01' : '00' } : null;
}

// Every request is tagged `held:no` but a status poll that asked to be held until the status
// changes (`held:yes`): its time is the wait for the outcome, which `checkout_duration`
// measures, so the per-request latency leaves it out (`http_req_duration{phase:journey,held:no}`).
// In a traced iteration each request carries a `traceparent` with the trace's id and a fresh
// parent span id: k6's own client span, which nothing exports.
function params(token, name, extra) {
  const headers = { ...JSON_HEADERS };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (trace !== null) headers.traceparent = `00-${trace.id}-${randomHex(16)}-${trace.flags}`;
  return { headers, tags: { name, held: 'no' }, responseCallback: EXPECTED, ...(extra || {}) };
}

// A POST that changes something carries an Idempotency-Key of its own, as a careful client's
// does: nginx may then pass it to another replica when the first one died under it, and the
// suite applies it once.
function keyed(token, name) {
  const p = params(token, name);
  p.headers = { ...p.headers, 'Idempotency-Key': crypto.randomUUID() };
  return p;
}

function json(res) {
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

// 401 means the token is gone (expired, or the suite restarted with a new secret): the
// caller logs in again and retries the step.
function guard(res) {
  if (res.status === 401) throw new Unauthorized(`401 from ${res.request.method} ${res.url}`);
  return res;
}

// Times a login answered 429 (the gateway's queue of password checks was full) is tried
// again after its Retry-After, as a patient client would.
const LOGIN_TRIES = 4;

export function login(baseUrl, username, password) {
  let res;
  for (let attempt = 1; attempt <= LOGIN_TRIES; attempt++) {
    res = http.post(
      `${baseUrl}/api/auth/login`,
      JSON.stringify({ username, password }),
      params(null, 'POST /api/auth/login'),
    );
    if (res.status !== 429 || attempt === LOGIN_TRIES) break;
    sleep(Math.min(Number(res.headers['Retry-After']) || 1, 5));
  }
  const body = json(res);
  if (res.status !== 200 || !body || !body.token) {
    throw new LoginFailed(`login ${username}: ${res.status} ${res.body}`, res.status);
  }
  return body.token;
}

// The request of a login, for http.batch in setup().
export function loginRequest(baseUrl, username, password) {
  return {
    method: 'POST',
    url: `${baseUrl}/api/auth/login`,
    body: JSON.stringify({ username, password }),
    params: params(null, 'POST /api/auth/login'),
  };
}

export function listProducts(baseUrl, token) {
  const res = guard(http.get(`${baseUrl}/api/products`, params(token, 'GET /api/products')));
  if (res.status !== 200) throw new Error(`GET /api/products: ${res.status} ${res.body}`);
  return json(res).map((p) => p.id);
}

export function createCart(baseUrl, token) {
  return guard(http.post(`${baseUrl}/api/carts`, '{}', keyed(token, 'POST /api/carts')));
}

export function getProduct(baseUrl, token, id) {
  return guard(
    http.get(
      `${baseUrl}/api/products/${id}`,
      params(token, 'GET /api/products/{id}', { responseType: 'none' }),
    ),
  );
}

export function addItem(baseUrl, token, cartId, productId) {
  return guard(
    http.post(
      `${baseUrl}/api/carts/${cartId}/items`,
      JSON.stringify({ product_id: productId, quantity: 1 }),
      keyed(token, 'POST /api/carts/{id}/items'),
    ),
  );
}

export function reserve(baseUrl, token, cartId) {
  return guard(
    http.post(
      `${baseUrl}/api/reservations`,
      JSON.stringify({ cart_id: cartId }),
      keyed(token, 'POST /api/reservations'),
    ),
  );
}

export function pay(baseUrl, token, reservationId) {
  return guard(
    http.post(
      `${baseUrl}/api/payments`,
      JSON.stringify({ reservation_id: reservationId }),
      params(token, 'POST /api/payments'),
    ),
  );
}

// Where a 202 says to look: its `Location` (absolute or a path), else `fallback`.
export function statusUrl(baseUrl, res, fallback) {
  const location = res.headers.Location || res.headers.location;
  if (!location) return `${baseUrl}${fallback}`;
  return location.startsWith('http') ? location : `${baseUrl}${location}`;
}

// GET `url` until its `status` leaves PENDING, for at most `timeoutMs`. With `waitS` > 0 each
// poll asks the service to hold it until the status changes (`Prefer: wait=N`, RFC 7240); a
// service that applied the wait (`Preference-Applied`) is asked again at once. Otherwise, and
// with `waitS` 0, polls are 10 ms apart, doubling up to 200 ms. Returns { body } on a final
// state, { error } otherwise.
export function pollUntilFinal(url, token, name, timeoutMs, waitS) {
  const deadline = Date.now() + timeoutMs;
  let pause = 0.01;
  for (;;) {
    // Each poll is a request of its own: its own params (and parent span id).
    const p = params(token, name);
    const poll =
      waitS > 0
        ? { ...p, headers: { ...p.headers, Prefer: `wait=${waitS}` }, tags: { name, held: 'yes' } }
        : p;
    const res = guard(http.get(url, poll));
    const body = json(res);
    if (res.status !== 200 || !body) return { error: `poll ${res.status}`, status: res.status };
    if (body.status !== 'PENDING') return { body };
    if (Date.now() >= deadline) return { error: 'poll timeout', status: 0 };
    if (waitS > 0 && res.headers['Preference-Applied']) continue;
    sleep(pause);
    pause = Math.min(pause * 2, 0.2);
  }
}

export { json };
