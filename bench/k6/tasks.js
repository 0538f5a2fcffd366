// Load scenarios for the Taskwatch backend's task API, run by `cargo xtask bench` (xtask/src/bench).
//
// One scenario per run, chosen by BENCH_SCENARIO:
//   create, get, list, complete  closed loop: BENCH_VUS virtual users, each sending its next request as soon as
//                                the previous one answered, for BENCH_DURATION; the throughput they reach is the
//                                ceiling of that endpoint on this machine.
//   mixed                        open loop: BENCH_RATE requests/s arrive whatever the latency (constant arrival
//                                rate), mixed like a read-heavy client; its p99 is the latency target's figure.
//   warmup                       a few seconds of everything, unreported: connection pools and caches fill.
//
// Each virtual user acts as one of the users in BENCH_TOKENS (comma-separated bearer tokens), so no
// listing grows without bound and every query is scoped to a realistic per-user data set.
// handleSummary writes the figures xtask reads to BENCH_SUMMARY_PATH (JSON, see `summarise`).

import http from 'k6/http';
import exec from 'k6/execution';
import { check, fail, sleep } from 'k6';
import { Gauge } from 'k6/metrics';

const ENDPOINTS = ['create', 'get', 'list', 'complete'];
// Mixed-load shares (they sum to 1): mostly reads, as a task list client does.
const MIX = [
  ['get', 0.45],
  ['list', 0.25],
  ['create', 0.2],
  ['complete', 0.1],
];
// How many of each user's tasks `get` picks from, and the page size the setup walks listings with.
const PAGE_LIMIT = 100;

const scenario = required('BENCH_SCENARIO');
const baseUrl = required('BENCH_BASE_URL');
const tokens = required('BENCH_TOKENS').split(',');
const vus = Number(__ENV.BENCH_VUS || 16);
const duration = __ENV.BENCH_DURATION || '20s';
const rate = Number(__ENV.BENCH_RATE || 1000);
const summaryPath = required('BENCH_SUMMARY_PATH');

// Wall-clock milliseconds at the start and end of every measured request: its min and max bound the window
// the scenario was really busy in, which is what throughput is divided by (setup and the ramp-down excluded).
const activeWindow = new Gauge('bench_active_window_ms');

export const options = {
  scenarios: { [scenario]: executorFor(scenario) },
  // Submetrics only reach handleSummary when a threshold names them; these always hold.
  thresholds: Object.fromEntries(
    ENDPOINTS.flatMap((endpoint) => [
      [`http_req_duration{endpoint:${endpoint}}`, ['max>=0']],
      [`http_req_failed{endpoint:${endpoint}}`, ['rate>=0']],
    ]).concat([
      ['http_req_duration{measured:yes}', ['max>=0']],
      ['http_req_failed{measured:yes}', ['rate>=0']],
    ]),
  ),
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max', 'count'],
  setupTimeout: '120s',
};

function executorFor(name) {
  switch (name) {
    case 'create':
    case 'get':
    case 'list':
    case 'complete':
      return { executor: 'constant-vus', vus, duration, gracefulStop: '5s', exec: name };
    case 'mixed':
      return {
        executor: 'constant-arrival-rate',
        rate,
        timeUnit: '1s',
        duration,
        // Enough users, allocated up front, for the rate at up to 100 ms per request: allocating more during
        // the run is slow enough to delay arrivals. More are added if latency grows beyond that.
        preAllocatedVUs: Math.max(32, Math.ceil(rate / 10)),
        maxVUs: Math.max(128, Math.ceil(rate / 2)),
        gracefulStop: '5s',
        exec: 'mixed',
      };
    case 'warmup':
      return { executor: 'constant-vus', vus: Math.min(vus, 8), duration, gracefulStop: '5s', exec: 'mixed' };
    default:
      throw new Error(`unknown BENCH_SCENARIO ${name}`);
  }
}

// ---- setup: the ids each scenario works on, fetched through the API itself -------------------------------

export function setup() {
  switch (scenario) {
    case 'get':
    case 'mixed':
    case 'warmup':
      // One page per user is plenty to read from; `mixed` also completes tasks, but only ones it created.
      return { tasks: tokens.map((token) => listIds(token, 'open', 1)) };
    case 'complete':
      // Every open task: each complete needs a task that is still open.
      return { tasks: tokens.map((token) => listIds(token, 'open', Infinity)) };
    default:
      return { tasks: [] };
  }
}

function listIds(token, status, maxPages) {
  const ids = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page++) {
    const query = `status=${status}&limit=${PAGE_LIMIT}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
    const response = http.get(`${baseUrl}/v1/tasks?${query}`, {
      headers: authorised(token),
      tags: { endpoint: 'setup', name: 'setup GET /v1/tasks' },
    });
    if (response.status !== 200) {
      fail(`setup: listing tasks answered ${response.status}: ${response.body}`);
    }
    const body = response.json();
    body.items.forEach((task) => ids.push(task.id));
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return ids;
}

// ---- the requests ---------------------------------------------------------------------------------------

function userIndex() {
  return (exec.vu.idInTest - 1) % tokens.length;
}

function authorised(token, extra) {
  return Object.assign({ Authorization: `Bearer ${token}` }, extra || {});
}

function measured(endpoint, name) {
  return { endpoint, name, measured: 'yes' };
}

function timed(send) {
  activeWindow.add(Date.now());
  const response = send();
  activeWindow.add(Date.now());
  return response;
}

function createTask(token) {
  const iteration = exec.scenario.iterationInTest;
  const body = JSON.stringify({
    title: `Benchmark task ${exec.vu.idInTest}-${iteration}`,
    description: 'Created by the k6 load test of cargo xtask bench.',
    priority: ['low', 'medium', 'high', 'urgent'][iteration % 4],
    labels: ['bench', `vu-${exec.vu.idInTest % 8}`],
    due_at: new Date(Date.now() + ((iteration % 720) + 1) * 3600 * 1000).toISOString(),
    time_zone: 'Europe/Berlin',
    reminders: [{ kind: 'before_due', minutes: 15 }],
  });
  const response = timed(() =>
    http.post(`${baseUrl}/v1/tasks`, body, {
      headers: authorised(token, { 'Content-Type': 'application/json' }),
      tags: measured('create', 'POST /v1/tasks'),
    }),
  );
  check(response, { 'create: 201': (r) => r.status === 201 });
  return response.status === 201 ? response.json('id') : null;
}

function getTask(token, id) {
  const response = timed(() =>
    http.get(`${baseUrl}/v1/tasks/${id}`, {
      headers: authorised(token),
      tags: measured('get', 'GET /v1/tasks/{id}'),
    }),
  );
  check(response, { 'get: 200': (r) => r.status === 200 });
}

function listTasks(token) {
  // The first page of open tasks at the default page size: what a client opening its task list asks for.
  const response = timed(() =>
    http.get(`${baseUrl}/v1/tasks?status=open`, {
      headers: authorised(token),
      tags: measured('list', 'GET /v1/tasks'),
    }),
  );
  check(response, { 'list: 200': (r) => r.status === 200 });
}

function completeTask(token, id) {
  const response = timed(() =>
    http.post(`${baseUrl}/v1/tasks/${id}/complete`, null, {
      headers: authorised(token),
      tags: measured('complete', 'POST /v1/tasks/{id}/complete'),
    }),
  );
  check(response, { 'complete: 200': (r) => r.status === 200 });
}

function pick(ids) {
  return ids[Math.floor(Math.random() * ids.length)];
}

// ---- scenario entry points ------------------------------------------------------------------------------

export function create() {
  createTask(tokens[userIndex()]);
}

export function get(data) {
  const user = userIndex();
  const ids = data.tasks[user];
  if (ids.length === 0) fail(`user ${user} has no tasks to read; run the create scenario first`);
  getTask(tokens[user], pick(ids));
}

export function list() {
  listTasks(tokens[userIndex()]);
}

// Each user completes its own open tasks, one after another. Several virtual users may act as the same user,
// so they share that user's list by striding through it. A user whose tasks are all completed idles (without
// measuring) until the scenario ends.
export function complete(data) {
  const user = userIndex();
  const ids = data.tasks[user];
  const sharing = Math.ceil(vus / tokens.length);
  const lane = Math.floor((exec.vu.idInTest - 1) / tokens.length);
  const index = exec.vu.iterationInScenario * sharing + lane;
  if (index >= ids.length) {
    sleep(1);
    return;
  }
  completeTask(tokens[user], ids[index]);
}

// Tasks this virtual user created in the mixed run and has not completed yet.
const createdHere = [];

export function mixed(data) {
  const user = userIndex();
  const token = tokens[user];
  let action = choose(Math.random());
  if (action === 'complete' && createdHere.length === 0) action = 'create';
  const known = data.tasks[user].length > 0 ? data.tasks[user] : createdHere;
  if (action === 'get' && known.length === 0) action = 'create';
  switch (action) {
    case 'create': {
      const id = createTask(token);
      if (id) createdHere.push(id);
      break;
    }
    case 'get':
      getTask(token, pick(known));
      break;
    case 'list':
      listTasks(token);
      break;
    case 'complete':
      completeTask(token, createdHere.pop());
      break;
  }
}

function choose(roll) {
  let cumulative = 0;
  for (const [action, share] of MIX) {
    cumulative += share;
    if (roll < cumulative) return action;
  }
  return MIX[MIX.length - 1][0];
}

// ---- the summary xtask reads ----------------------------------------------------------------------------

export function handleSummary(data) {
  const summary = summarise(data);
  const line = Object.entries(summary.endpoints)
    .map(([name, e]) => `${name}: ${e.requests} req, p50 ${e.p50_ms.toFixed(2)} ms, p99 ${e.p99_ms.toFixed(2)} ms`)
    .join('; ');
  return {
    [summaryPath]: JSON.stringify(summary, null, 2),
    stdout: `k6 ${scenario}: ${line || 'no measured requests'}\n`,
  };
}

function summarise(data) {
  const metric = (name) => (data.metrics[name] ? data.metrics[name].values : null);
  const endpoints = {};
  for (const endpoint of ENDPOINTS) {
    const stats = figures(metric(`http_req_duration{endpoint:${endpoint}}`), metric(`http_req_failed{endpoint:${endpoint}}`));
    if (stats) endpoints[endpoint] = stats;
  }
  const window = metric('bench_active_window_ms');
  const dropped = metric('dropped_iterations');
  return {
    scenario,
    endpoints,
    all: figures(metric('http_req_duration{measured:yes}'), metric('http_req_failed{measured:yes}')),
    // Every request, setup included: with telemetry on, each one is a server span the receiver should get.
    total_requests: metric('http_reqs') ? metric('http_reqs').count : 0,
    active_window_ms: window ? window.max - window.min : 0,
    dropped_iterations: dropped ? dropped.count : 0,
    max_vus: metric('vus_max') ? metric('vus_max').max : 0,
  };
}

function figures(duration, failed) {
  if (!duration || duration.count === 0) return null;
  return {
    requests: duration.count,
    failed: failed ? failed.passes : 0,
    avg_ms: duration.avg,
    p50_ms: duration.med,
    p90_ms: duration['p(90)'],
    p99_ms: duration['p(99)'],
    max_ms: duration.max,
  };
}

function required(name) {
  const value = __ENV[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
}
