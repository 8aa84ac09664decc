// k6 load script: drives Alice's router over gRPC using server reflection, as a non-Python client would.
//
// Closed loop: VUS virtual users each send one request, wait for the reply, send the next, for DURATION.
// The requests are taken in order from one sequence shared by all VUs (k6's iterationInTest), as alice bench's
// closed-loop workers take theirs: the same requests in the same order. The sequence is REQUESTS (a JSON array
// of {text, user, session}, written by `alice bench --k6` from the items it parsed) or DATA (a traffic file,
// spec/intents.md "Traffic file"; malformed lines skipped).
// Every sample of a request carries its sequence number as metadata (seq); with `--out csv=FILE` the
// per-request rows (client latency, status, route, cache tier, the router's own total_ms) let
// alice/bench/k6compare.py summarize k6's requests exactly as alice bench summarizes its own. CHECKS=0 leaves
// out k6's checks (alice bench reads the status from those rows; each check costs k6 CPU on the shared cores).
// Run by `alice bench --k6` (alice/bench/k6compare.py), or by hand:
//   TARGET=127.0.0.1:50051 DATA=$PWD/data/traffic/standard.jsonl VUS=4 DURATION=30s \
//   NOW=2026-03-10T08:00:00Z SUMMARY=/tmp/k6-summary.json k6 run benchmarks/k6/router.js
import grpc from 'k6/net/grpc';
import exec from 'k6/execution';
import { check } from 'k6';
import { SharedArray } from 'k6/data';
import { Trend } from 'k6/metrics';

const VUS = Number(__ENV.VUS || 4);
const METHOD = 'alice.router.v1.RouterService/Ask';

const items = new SharedArray('traffic', function () {
  if (__ENV.REQUESTS) return JSON.parse(open(__ENV.REQUESTS));
  const parsed = [];
  for (const line of open(__ENV.DATA).split('\n')) {
    if (!line.trim()) continue;
    try {
      const item = JSON.parse(line);
      if (item && typeof item.text === 'string') parsed.push(item);
    } catch (e) {
      continue;
    }
  }
  return parsed;
});

export const options = {
  scenarios: {
    closed: { executor: 'constant-vus', vus: VUS, duration: __ENV.DURATION || '30s' },
  },
  summaryTrendStats: ['avg', 'min', 'p(50)', 'p(95)', 'p(99)', 'max'],
  // Only the Ask calls: k6 also times its reflection calls (one per VU) under grpc_req_duration.
  thresholds: { [`grpc_req_duration{name:/${METHOD}}`]: [] },
};

// What the router says about each reply (its own total_ms as the value), tagged for the CSV rows.
const replies = new Trend('alice_reply_server_ms');

// Optional {user: bearer token} map, for a router with authentication on (alice bench --k6 writes it).
const tokens = __ENV.TOKENS ? JSON.parse(open(__ENV.TOKENS)) : {};

const client = new grpc.Client();
let connected = false;

export default function () {
  if (!connected) {
    // Reflection: no .proto files on the k6 side. One connection per VU, made before its first timed request.
    client.connect(__ENV.TARGET, { plaintext: true, reflect: true });
    connected = true;
  }
  const seq = exec.scenario.iterationInTest;
  const item = items[seq % items.length];
  const request = {
    text: item.text,
    user_id: item.user || 'u1',
    session_id: item.session || '',
    time_zone: __ENV.TZ_NAME || 'Europe/Stockholm',
  };
  if (__ENV.NOW) request.reference_time = __ENV.NOW;
  // Metadata, not a tag: a tag value per request would make k6 register a new time series for each.
  exec.vu.metrics.metadata.seq = String(seq);
  const params = { timeout: __ENV.DEADLINE || '5s', metadata: {} };
  const token = tokens[request.user_id];
  if (token) params.metadata.authorization = `Bearer ${token}`;
  const reply = client.invoke(METHOD, request, params);
  const message = (reply && reply.message) || {};
  replies.add(message.latency ? message.latency.totalMs || 0 : 0,
    { route: message.route || '', tier: message.cacheTier || '' });
  if (__ENV.CHECKS !== '0') check(reply, {
    'status OK': (r) => r && r.status === grpc.StatusOK,
    'has answer': (r) => r && r.message && typeof r.message.answer === 'string' && r.message.answer.length > 0,
  });
}

export function handleSummary(data) {
  const out = {};
  out[__ENV.SUMMARY || 'k6-summary.json'] = JSON.stringify(data);
  const d = data.metrics[`grpc_req_duration{name:/${METHOD}}`] || data.metrics.grpc_req_duration;
  out.stdout = d
    ? `k6 grpc_req_duration p50 ${d.values['p(50)'].toFixed(1)} ms, p95 ${d.values['p(95)'].toFixed(1)} ms, ` +
      `p99 ${d.values['p(99)'].toFixed(1)} ms\n`
    : 'k6: no grpc_req_duration samples\n';
  return out;
}
