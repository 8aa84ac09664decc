// k6 load script: drives Alice's router over gRPC using server reflection, as a non-Python client would.
//
// Closed loop: VUS virtual users each send one request, wait for the reply, send the next, for DURATION.
// Requests come from a traffic file (spec/intents.md, "Traffic file") in file order across the VUs.
// Run by `alice bench --k6` (alice/bench/k6compare.py), or by hand:
//   TARGET=127.0.0.1:50051 DATA=data/traffic/standard.jsonl VUS=4 DURATION=30s \
//   NOW=2026-03-10T08:00:00Z SUMMARY=/tmp/k6-summary.json k6 run benchmarks/k6/router.js
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import { SharedArray } from 'k6/data';

const VUS = Number(__ENV.VUS || 4);

const items = new SharedArray('traffic', function () {
  const parsed = [];
  for (const line of open(__ENV.DATA).split('\n')) {
    if (!line.trim()) continue;
    try {
      const item = JSON.parse(line);
      // Malformed lines are skipped, as alice bench does.
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
};

// Optional {user: bearer token} map, for a router with authentication on (alice bench --k6 writes it).
const tokens = __ENV.TOKENS ? JSON.parse(open(__ENV.TOKENS)) : {};

const client = new grpc.Client();
let connected = false;

export default function () {
  if (!connected) {
    // Reflection: no .proto files on the k6 side.
    client.connect(__ENV.TARGET, { plaintext: true, reflect: true });
    connected = true;
  }
  const item = items[(__ITER * VUS + (__VU - 1)) % items.length];
  const request = {
    text: item.text,
    user_id: item.user || 'u1',
    session_id: item.session || '',
    time_zone: __ENV.TZ_NAME || 'Europe/Stockholm',
  };
  if (__ENV.NOW) request.reference_time = __ENV.NOW;
  const params = { timeout: __ENV.DEADLINE || '5s', metadata: {} };
  const token = tokens[request.user_id];
  if (token) params.metadata.authorization = `Bearer ${token}`;
  const reply = client.invoke('alice.router.v1.RouterService/Ask', request, params);
  check(reply, {
    'status OK': (r) => r && r.status === grpc.StatusOK,
    'has answer': (r) => r && r.message && typeof r.message.answer === 'string' && r.message.answer.length > 0,
  });
}

export function handleSummary(data) {
  const out = {};
  out[__ENV.SUMMARY || 'k6-summary.json'] = JSON.stringify(data);
  const d = data.metrics.grpc_req_duration;
  out.stdout = d
    ? `k6 grpc_req_duration p50 ${d.values['p(50)'].toFixed(1)} ms, p95 ${d.values['p(95)'].toFixed(1)} ms, ` +
      `p99 ${d.values['p(99)'].toFixed(1)} ms\n`
    : 'k6: no grpc_req_duration samples\n';
  return out;
}
