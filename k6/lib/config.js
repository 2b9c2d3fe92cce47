// Settings of a k6 run, from the environment (`k6 run -e NAME=value` or the process env).
// The harness (`flashsale compare`) sets every one of them; the defaults suit a hand run
// against `flashsale up` on 127.0.0.1:8080.

function str(name, fallback) {
  const v = __ENV[name];
  return v === undefined || v === '' ? fallback : v;
}

function int(name, fallback) {
  const v = str(name, undefined);
  if (v === undefined) return fallback;
  const n = parseInt(v, 10);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a whole number, got ${v}`);
  return n;
}

function num(name, fallback) {
  const v = str(name, undefined);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number, got ${v}`);
  return n;
}

function bool(name, fallback) {
  const v = str(name, undefined);
  if (v === undefined) return fallback;
  return ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());
}

export const SCENARIOS = ['flash', 'sustained'];

export const config = {
  baseUrl: str('BASE_URL', 'http://127.0.0.1:8080').replace(/\/+$/, ''),
  vus: int('VUS', 10),
  duration: str('DURATION', '30s'),
  // Seconds a shopper pauses at the end of each journey (0: none, as in the study).
  thinkTime: num('THINK_TIME', 0),
  // Journeys started per second, whatever the answers' speed (an open model: k6's
  // constant-arrival-rate, with at most VUS journeys under way); 0: a closed loop of VUS
  // virtual users, each starting its next journey when the last one ended (constant-vus).
  arrivalRate: int('ARRIVAL_RATE', 0),
  // The study's exact journey: log in again at the start of every iteration.
  loginEveryIteration: bool('LOGIN_EVERY_ITERATION', false),
  // Seeded users user1..userN; VU k shops as user((k - 1) mod N + 1).
  users: int('USERS', 1000),
  password: str('PASSWORD', 'flashsale'),
  // Comma-separated product ids to buy, round-robin; empty: every product of the catalog.
  products: str('PRODUCTS', '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
  scenario: str('SCENARIO', 'sustained'),
  // How long one status URL is polled before the journey counts as failed.
  pollTimeoutMs: int('POLL_TIMEOUT_MS', 30000),
  // Seconds each status poll asks the service to hold it until the status changes
  // (`Prefer: wait=N`); 0: short polls with a backoff.
  pollWaitS: int('POLL_WAIT_S', 5),
  // Logins sent at once by setup().
  loginBatch: int('LOGIN_BATCH', 20),
  // Pass/fail criteria (unset or empty: none, as in `flashsale compare`, whose runs are
  // judged by the report): the share of the journey's requests that may fail (0.01 = 1 %),
  // and the P95 in ms a confirmed checkout may take, end to end. A run over either makes k6
  // exit with status 99.
  maxFailureRate: num('THRESHOLD_FAILURE_RATE', undefined),
  maxCheckoutP95Ms: num('THRESHOLD_CHECKOUT_P95_MS', undefined),
  // Share of journeys traced, 0 to 1 (docs/tracing.md): each iteration starts a trace and
  // sends its `traceparent` on every request, sampled with this probability; 0: no header.
  traceSampleRatio: num('TRACE_SAMPLE_RATIO', 0),
};

if (!SCENARIOS.includes(config.scenario)) {
  throw new Error(`SCENARIO must be one of ${SCENARIOS.join(', ')}, got ${config.scenario}`);
}
if (config.vus < 1) throw new Error('VUS must be at least 1');
if (config.users < 1) throw new Error('USERS must be at least 1');
if (config.pollWaitS < 0) throw new Error('POLL_WAIT_S must be 0 or more');
if (config.traceSampleRatio > 1) {
  throw new Error(`TRACE_SAMPLE_RATIO must be between 0 and 1, got ${config.traceSampleRatio}`);
}
