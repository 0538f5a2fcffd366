// Realistic demo traffic for a running Taskwatch: several users creating, listing, reading, updating and
// completing tasks, with recurring tasks and reminders falling due within a minute or two, so every dashboard
// (API RED, event pipeline, reminders and notifications, SLOs) has data within minutes. Not a benchmark: the
// arrival rate is modest and constant, and think time is built into the mix (see bench/k6/tasks.js for that).
//
//   k6 run bench/k6/demo.js                                    # against `cargo xtask up` on 127.0.0.1:8080
//   DEMO_RATE=10 DEMO_DURATION=30m k6 run bench/k6/demo.js     # busier, longer
//
// Environment (all optional except a way to authenticate):
//   DEMO_BASE_URL      backend URL                                       http://127.0.0.1:8080
//   DEMO_TOKENS        comma-separated bearer tokens, one per user (e.g. from `backend token --sub alice`)
//   AUTH_JWT_SECRET    or: the backend's HS256 secret; tokens for DEMO_USERS users are minted here
//                      (AUTH_JWT_ISSUER / AUTH_JWT_AUDIENCE are honoured like the backend does)
//   DEMO_USERS         users to mint tokens for                          5
//   DEMO_RATE          user actions per second (constant arrival rate)   5
//   DEMO_DURATION      how long to run (k6 duration: 90s, 10m, 2h)        10m
//   DEMO_EMAIL_DOMAIN  users' e-mail addresses are demo-N@<domain>      example.com
//   DEMO_WEBHOOK_URL   saved as every user's webhook too (the backend must accept the target); unset: e-mail only
//
// Thresholds fail the run (k6 exits 99) when the API answers more than 5% of requests with an unexpected
// status, or a check fails more often than that — unless a demo fault is on, which is the point of a fault:
// set DEMO_EXPECT_FAULTS=true to keep going while one is.

import http from 'k6/http';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import exec from 'k6/execution';
import { check, fail } from 'k6';

const baseUrl = (__ENV.DEMO_BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const rate = positiveNumber('DEMO_RATE', 5);
const duration = __ENV.DEMO_DURATION || '10m';
const userCount = positiveNumber('DEMO_USERS', 5);
const emailDomain = __ENV.DEMO_EMAIL_DOMAIN || 'example.com';
const webhookUrl = __ENV.DEMO_WEBHOOK_URL || null;
const expectFaults = __ENV.DEMO_EXPECT_FAULTS === 'true';

// What a user does, and how often (shares sum to 1). Reads dominate, as with any task list client; every
// write kind appears so each route, each event type and both consumers see traffic.
const ACTIONS = [
  ['list', 0.26],
  ['get', 0.18],
  ['create', 0.18],
  ['createWithReminder', 0.1],
  ['createRecurring', 0.05],
  ['update', 0.1],
  ['complete', 0.08],
  ['reopen', 0.02],
  ['delete', 0.02],
  ['settings', 0.01],
];
const PRIORITIES = ['low', 'medium', 'high', 'urgent'];
const LABELS = ['home', 'work', 'errand', 'health', 'finance'];
const ZONES = ['Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'UTC'];
// Each user's tasks this VU remembers (newest last), to read, update and complete; bounded.
const REMEMBERED = 50;

export const options = {
  scenarios: {
    demo: {
      executor: 'constant-arrival-rate',
      rate,
      timeUnit: '1s',
      duration,
      preAllocatedVUs: Math.max(2, Math.ceil(rate)),
      maxVUs: Math.max(10, Math.ceil(rate * 4)),
    },
  },
  thresholds: expectFaults
    ? {}
    : { http_req_failed: ['rate<0.05'], checks: ['rate>0.95'] },
  setupTimeout: '60s',
};

// 404 (deleted meanwhile), 409 (already completed) and 412 (stale ETag) are normal outcomes of several clients
// sharing tasks; 401, 422, 429 and every 5xx count as failed requests.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }, 404, 409, 412));

// ---- setup: one token and one settings row per user -----------------------------------------------------

export function setup() {
  const tokens = userTokens();
  tokens.forEach((token, index) => saveSettings(token, index));
  return { tokens };
}

function userTokens() {
  if (__ENV.DEMO_TOKENS) {
    return __ENV.DEMO_TOKENS.split(',').map((token) => token.trim()).filter((token) => token !== '');
  }
  const secret = __ENV.AUTH_JWT_SECRET;
  if (!secret) {
    fail('set DEMO_TOKENS (e.g. `backend token --sub alice`) or AUTH_JWT_SECRET to mint tokens');
  }
  return Array.from({ length: userCount }, (_, index) => mintToken(secret, `demo-${index + 1}`));
}

// An HS256 JWT as the backend's `token` command makes it: sub, iat, exp (+ iss/aud when configured).
function mintToken(secret, subject) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: subject, iat: now, exp: now + 24 * 3600 };
  if (__ENV.AUTH_JWT_ISSUER) claims.iss = __ENV.AUTH_JWT_ISSUER;
  if (__ENV.AUTH_JWT_AUDIENCE) claims.aud = __ENV.AUTH_JWT_AUDIENCE;
  const part = (value) => encoding.b64encode(JSON.stringify(value), 'rawurl');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  const signature = encoding.b64encode(crypto.hmac('sha256', secret, unsigned, 'binary'), 'rawurl');
  return `${unsigned}.${signature}`;
}

function saveSettings(token, index) {
  const body = { email: `demo-${index + 1}@${emailDomain}`, webhook_url: webhookUrl };
  const response = http.put(`${baseUrl}/v1/me/notification-settings`, JSON.stringify(body), {
    headers: headers(token),
    tags: { action: 'settings' },
  });
  if (response.status !== 200 && !expectFaults) {
    fail(`saving notification settings answered ${response.status}: ${response.body}`);
  }
}

// ---- one iteration: one user action ------------------------------------------------------------------------

const remembered = {}; // user index → task ids created by this VU

export default function (data) {
  const user = exec.scenario.iterationInTest % data.tokens.length;
  const token = data.tokens[user];
  const action = pick(ACTIONS);
  const known = remembered[user] || (remembered[user] = []);
  // Actions on an existing task fall back to creating one until this VU knows some.
  const needsTask = ['get', 'update', 'complete', 'reopen', 'delete'].includes(action);
  const effective = needsTask && known.length === 0 ? 'create' : action;
  ACTIONS_BY_NAME[effective](token, known, user);
}

const ACTIONS_BY_NAME = {
  list(token) {
    const filters = [
      'status=open',
      `priority=${sample(PRIORITIES)}`,
      `label=${sample(LABELS)}`,
      'status=completed',
      `due_from=${isoIn(-3600)}&due_to=${isoIn(7 * 86400)}`,
    ];
    let url = `${baseUrl}/v1/tasks?limit=${sample([10, 20, 50])}&${sample(filters)}`;
    const first = http.get(url, { headers: headers(token), tags: { action: 'list' } });
    expectStatus(first, 200, 'list');
    // Now and then a client pages on.
    const next = json(first)?.next_cursor;
    if (next && Math.random() < 0.3) {
      url = `${baseUrl}/v1/tasks?limit=20&cursor=${encodeURIComponent(next)}`;
      expectStatus(http.get(url, { headers: headers(token), tags: { action: 'list' } }), 200, 'list page');
    }
  },

  get(token, known) {
    const id = sample(known);
    const response = http.get(`${baseUrl}/v1/tasks/${id}`, { headers: headers(token), tags: { action: 'get' } });
    // 404 is fine: the task may have been deleted by another iteration.
    expectStatus(response, [200, 404], 'get');
  },

  create(token, known) {
    createTask(token, known, {
      title: `${sample(['Buy', 'Call', 'Write', 'Review', 'Plan'])} ${sample(['milk', 'Bob', 'report', 'budget', 'trip'])}`,
      priority: sample(PRIORITIES),
      labels: [sample(LABELS)],
      due_at: isoIn(randomInt(3600, 14 * 86400)),
      time_zone: sample(ZONES),
    }, 'create');
  },

  // Reminders due within one to two minutes: the reminder and notification services fire and deliver them
  // while the demo runs.
  createWithReminder(token, known) {
    const dueIn = randomInt(120, 240);
    createTask(token, known, {
      title: `Reminder demo ${randomInt(1, 9999)}`,
      priority: 'high',
      labels: ['reminder'],
      due_at: isoIn(dueIn),
      time_zone: sample(ZONES),
      reminders: Math.random() < 0.5
        ? [{ kind: 'at', at: isoIn(randomInt(60, 120)) }]
        : [{ kind: 'before_due', minutes: Math.floor(dueIn / 60) - 1 }],
    }, 'createWithReminder');
  },

  // Recurring tasks: completing one (below) makes recurring-task create the next occurrence.
  createRecurring(token, known) {
    createTask(token, known, {
      title: `Recurring ${sample(['stand-up', 'water plants', 'backup', 'review'])}`,
      priority: sample(PRIORITIES),
      labels: ['recurring'],
      due_at: isoIn(randomInt(120, 3600)),
      time_zone: sample(ZONES),
      recurrence: { rrule: sample(['FREQ=DAILY', 'FREQ=WEEKLY;BYDAY=MO,WE,FR', 'FREQ=DAILY;INTERVAL=2;COUNT=5']), anchor: sample(['due', 'completion']) },
      reminders: [{ kind: 'before_due', minutes: 1 }],
    }, 'createRecurring');
  },

  // Read for the ETag, then a conditional merge patch, as a well-behaved client does.
  update(token, known) {
    const id = sample(known);
    const current = http.get(`${baseUrl}/v1/tasks/${id}`, { headers: headers(token), tags: { action: 'update' } });
    if (current.status === 404) return forget(known, id);
    if (!expectStatus(current, 200, 'update read')) return;
    const patch = Math.random() < 0.5 ? { priority: sample(PRIORITIES) } : { labels: [sample(LABELS), 'edited'] };
    const response = http.patch(`${baseUrl}/v1/tasks/${id}`, JSON.stringify(patch), {
      headers: { ...headers(token), 'Content-Type': 'application/merge-patch+json', 'If-Match': current.headers.Etag },
      tags: { action: 'update' },
    });
    // 412: someone else changed it in between — a normal outcome of optimistic concurrency.
    expectStatus(response, [200, 404, 412], 'update');
  },

  complete(token, known) {
    const id = sample(known);
    const response = http.post(`${baseUrl}/v1/tasks/${id}/complete`, null, {
      headers: { ...headers(token), 'Idempotency-Key': uuid() },
      tags: { action: 'complete' },
    });
    // 409: already completed (by an earlier iteration); 404: deleted.
    expectStatus(response, [200, 404, 409], 'complete');
    if (response.status !== 200 || Math.random() < 0.5) forget(known, id);
  },

  reopen(token, known) {
    const id = sample(known);
    const response = http.post(`${baseUrl}/v1/tasks/${id}/reopen`, null, { headers: headers(token), tags: { action: 'reopen' } });
    expectStatus(response, [200, 404, 409], 'reopen');
  },

  delete(token, known) {
    const id = sample(known);
    const response = http.del(`${baseUrl}/v1/tasks/${id}`, null, { headers: headers(token), tags: { action: 'delete' } });
    expectStatus(response, [204, 404], 'delete');
    forget(known, id);
  },

  settings(token, _known, user) {
    const read = http.get(`${baseUrl}/v1/me/notification-settings`, { headers: headers(token), tags: { action: 'settings' } });
    expectStatus(read, 200, 'settings read');
    saveSettings(token, user);
  },
};

function createTask(token, known, body, action) {
  const response = http.post(`${baseUrl}/v1/tasks`, JSON.stringify(body), {
    headers: { ...headers(token), 'Idempotency-Key': uuid() },
    tags: { action },
  });
  if (expectStatus(response, 201, action)) {
    const id = json(response)?.id;
    if (id) {
      known.push(id);
      if (known.length > REMEMBERED) known.shift();
    }
  }
}

// ---- helpers -------------------------------------------------------------------------------------------

function headers(token) {
  return { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
}

// Marks expected statuses as successes for k6's http_req_failed too, and records a named check.
function expectStatus(response, expected, name) {
  const allowed = Array.isArray(expected) ? expected : [expected];
  return check(response, { [`${name} → ${allowed.join('/')}`]: (r) => allowed.includes(r.status) });
}

function json(response) {
  try {
    return response.json();
  } catch (_) {
    return null;
  }
}

function forget(known, id) {
  const index = known.indexOf(id);
  if (index >= 0) known.splice(index, 1);
}

function pick(weighted) {
  let roll = Math.random();
  for (const [name, share] of weighted) {
    roll -= share;
    if (roll < 0) return name;
  }
  return weighted[0][0];
}

function sample(items) {
  return items[Math.floor(Math.random() * items.length)];
}

function randomInt(min, max) {
  return min + Math.floor(Math.random() * (max - min + 1));
}

function isoIn(seconds) {
  return new Date(Date.now() + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function uuid() {
  return hex(new Uint8Array(crypto.randomBytes(16)));
}

function hex(bytes) {
  const digits = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${digits.slice(0, 8)}-${digits.slice(8, 12)}-4${digits.slice(13, 16)}-a${digits.slice(17, 20)}-${digits.slice(20, 32)}`;
}

function positiveNumber(name, fallback) {
  const value = Number(__ENV[name] || fallback);
  if (!(value > 0)) fail(`${name} must be a positive number, got ${__ENV[name]}`);
  return value;
}
