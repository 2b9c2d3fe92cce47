// The flash-sale shopper's journey, for `flashsale compare` (and by hand: see k6/README.md).
//
// Each virtual user shops as one seeded user, logged in once before the sale opens (setup)
// and again on a 401. Every iteration: create a cart, fetch the product, add it, reserve,
// pay. In async mode the reserve and pay answers are 202s, and the journey polls their
// status URLs until a final state, so `checkout_duration` is the time a shopper waits from
// the first request to the final answer, polling included.
//
// With TRACE_SAMPLE_RATIO above 0 every iteration is one trace (docs/tracing.md): all its
// requests carry a `traceparent` with the same trace id and sampled flag.
//
// Business rejections (409 sold out / limit reached / expired, 402 declined) are expected
// statuses; `http_req_failed` counts only the rest. Every journey ends in exactly one of the
// `checkout_*` counters.

import { sleep } from 'k6';
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';
import { config } from './lib/config.js';
import * as shop from './lib/shop.js';

http.setResponseCallback(shop.EXPECTED);

const checkoutDuration = new Trend('checkout_duration', true);
const outcomes = {
  confirmed: new Counter('checkout_confirmed'),
  sold_out: new Counter('checkout_sold_out'),
  limit_reached: new Counter('checkout_limit_reached'),
  declined: new Counter('checkout_declined'),
  expired: new Counter('checkout_expired'),
  failed: new Counter('checkout_failed'),
};

// A closed loop (each virtual user starts its next journey when the last one ended), or an
// open model (journeys start at a fixed rate; k6 counts those it could not start, because all
// VUS virtual users were still busy, in `dropped_iterations`).
const load =
  config.arrivalRate > 0
    ? {
        executor: 'constant-arrival-rate',
        rate: config.arrivalRate,
        timeUnit: '1s',
        preAllocatedVUs: config.vus,
        maxVUs: config.vus,
      }
    : { executor: 'constant-vus', vus: config.vus };

export const options = {
  scenarios: {
    [config.scenario]: {
      ...load,
      duration: config.duration,
      // A journey under way when the time is up may finish (and be counted) for 30 s more.
      gracefulStop: '30s',
      // Everything measured carries phase=journey; setup()'s logins do not.
      tags: { phase: 'journey' },
    },
  },
  setupTimeout: '600s',
  batch: config.loginBatch,
  batchPerHost: config.loginBatch,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  // No url tag (one per id) and no TLS tags: smaller time series, same information.
  systemTags: ['status', 'method', 'name', 'scenario', 'expected_response', 'error_code'],
  // The thresholds that always pass make k6 put these sub-metrics in the summary; the
  // configured ones (THRESHOLD_*) can fail the run.
  thresholds: {
    'http_req_duration{phase:journey}': ['max>=0'],
    'http_req_duration{phase:journey,held:no}': ['max>=0'],
    'http_reqs{phase:journey}': ['count>=0'],
    'http_req_failed{phase:journey}': ['rate>=0', ...limit('rate<', config.maxFailureRate)],
    'checkout_duration{outcome:confirmed}': ['max>=0', ...limit('p(95)<', config.maxCheckoutP95Ms)],
  },
};

// A threshold `<stat><op><value>` when the value is set, else none.
function limit(expression, value) {
  return value === undefined ? [] : [`${expression}${value}`];
}

function username(vu) {
  return `user${((vu - 1) % config.users) + 1}`;
}

// Before the sale opens: every shopper is logged in, and the products are known.
export function setup() {
  const shoppers = Math.min(config.vus, config.users);
  const tokens = [];
  if (!config.loginEveryIteration) {
    for (let first = 1; first <= shoppers; first += config.loginBatch) {
      const batch = [];
      for (let vu = first; vu < first + config.loginBatch && vu <= shoppers; vu++) {
        batch.push(shop.loginRequest(config.baseUrl, username(vu), config.password));
      }
      for (const res of http.batch(batch)) {
        const body = shop.json(res);
        if (res.status !== 200 || !body || !body.token) {
          throw new Error(`setup login: ${res.status} ${res.body}`);
        }
        tokens.push(body.token);
      }
    }
  }
  let products = config.products;
  if (products.length === 0) {
    const token = tokens[0] || shop.login(config.baseUrl, username(1), config.password);
    products = shop.listProducts(config.baseUrl, token);
  }
  if (products.length === 0) throw new Error('no products to buy');
  return { tokens, products };
}

let token = null;

function freshToken() {
  token = shop.login(config.baseUrl, username(__VU), config.password);
  return token;
}

// One journey for one unit of `product`: the outcome, and where a failure happened.
function checkout(product) {
  const base = config.baseUrl;
  let res = shop.createCart(base, token);
  const cart = shop.json(res);
  if (res.status !== 201 || !cart) return { outcome: 'failed', step: 'cart', status: res.status };

  res = shop.getProduct(base, token, product);
  if (res.status !== 200) return { outcome: 'failed', step: 'product', status: res.status };

  res = shop.addItem(base, token, cart.id, product);
  if (res.status !== 200) return { outcome: 'failed', step: 'add_item', status: res.status };

  res = shop.reserve(base, token, cart.id);
  let reservation = shop.json(res);
  if (res.status === 409) {
    const code = reservation && reservation.code;
    if (code === 'sold_out' || code === 'limit_reached') return { outcome: code };
    return { outcome: 'failed', step: 'reserve', status: res.status };
  }
  if (res.status === 202 && reservation && reservation.id) {
    const url = shop.statusUrl(base, res, `/api/reservations/${reservation.id}`);
    const polled = shop.pollUntilFinal(url, token, 'GET /api/reservations/{id}', config.pollTimeoutMs, config.pollWaitS);
    if (polled.error) return { outcome: 'failed', step: 'reserve_poll', status: polled.status };
    reservation = polled.body;
    switch (reservation.status) {
      case 'RESERVED':
        break;
      case 'SOLD_OUT':
        return { outcome: 'sold_out' };
      case 'LIMIT_REACHED':
        return { outcome: 'limit_reached' };
      case 'EXPIRED':
        return { outcome: 'expired' };
      default:
        return { outcome: 'failed', step: 'reserve_poll', status: 200 };
    }
  } else if (res.status !== 201 || !reservation || !reservation.id) {
    return { outcome: 'failed', step: 'reserve', status: res.status };
  }

  res = shop.pay(base, token, reservation.id);
  const payment = shop.json(res);
  if (res.status === 200) return { outcome: 'confirmed' };
  if (res.status === 402) return { outcome: 'declined' };
  if (res.status === 409 && payment && payment.code === 'reservation_expired') {
    return { outcome: 'expired' };
  }
  if (res.status === 202 && payment && payment.order_id) {
    const url = shop.statusUrl(base, res, `/api/orders/${payment.order_id}`);
    const polled = shop.pollUntilFinal(url, token, 'GET /api/orders/{id}', config.pollTimeoutMs, config.pollWaitS);
    if (polled.error) return { outcome: 'failed', step: 'pay_poll', status: polled.status };
    switch (polled.body.status) {
      case 'CONFIRMED':
        return { outcome: 'confirmed' };
      case 'DECLINED':
        return { outcome: 'declined' };
      case 'CANCELLED':
        return { outcome: 'expired' };
      default:
        return { outcome: 'failed', step: 'pay_poll', status: 200 };
    }
  }
  return { outcome: 'failed', step: 'pay', status: res.status };
}

// A journey's outcome when it ended in an exception: a failed login, or a 401 again after
// logging in anew. Anything else is a bug of this script and stops the iteration loudly.
function failure(e) {
  if (e instanceof shop.LoginFailed) return { outcome: 'failed', step: 'login', status: e.status };
  if (e instanceof shop.Unauthorized) return { outcome: 'failed', step: 'auth', status: 401 };
  throw e;
}

export default function (data) {
  const product = data.products[(__VU - 1 + __ITER) % data.products.length];
  shop.startTrace(config.traceSampleRatio);
  const started = Date.now();

  let result;
  try {
    if (config.loginEveryIteration) {
      freshToken();
    } else if (token === null) {
      token = data.tokens[(__VU - 1) % data.tokens.length];
    }
    result = checkout(product);
  } catch (e) {
    if (!(e instanceof shop.Unauthorized)) {
      result = failure(e);
    } else {
      // The token expired: log in again and start the journey over, once.
      try {
        freshToken();
        result = checkout(product);
      } catch (again) {
        result = failure(again);
      }
    }
  }

  checkoutDuration.add(Date.now() - started, { outcome: result.outcome });
  const tags = result.outcome === 'failed' ? { step: result.step, status: String(result.status) } : {};
  outcomes[result.outcome].add(1, tags);

  if (config.thinkTime > 0) sleep(config.thinkTime);
}
