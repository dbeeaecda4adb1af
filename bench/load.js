// The project's load client (adapted from the reference peer's load.js): N socket.io clients against a server that speaks the Analytics WebSocket API.
// Prints one JSON line: connect time, request/response latency, and push fan-out latency.
//   node load.js URL [clients] [requestsPerClient] [pushesToWait]
const { io } = require('socket.io-client');

const url = process.argv[2] || 'http://localhost:4000';
const N = Number(process.argv[3] || 200);
const R = Number(process.argv[4] || 20);
const P = Number(process.argv[5] || 3);
const timeoutMs = Number(process.env.LOAD_TIMEOUT_MS || 120000);

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : null; };
const now = () => performance.timeOrigin + performance.now();

async function main() {
  const killer = setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(2); }, timeoutMs);
  const t0 = now();
  const sockets = await Promise.all(Array.from({ length: N }, () => new Promise((resolve, reject) => {
    const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 30000 });
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  })));
  const connectMs = now() - t0;
  process.stderr.write('connected\n'); // the bench samples the server's memory here

  // request/response: each client asks R times, one at a time.
  const rtts = [];
  const t1 = now();
  await Promise.all(sockets.map(async (s) => {
    for (let i = 0; i < R; i++) {
      const start = now();
      await new Promise((resolve) => s.once('analytics:liveMetrics', resolve) && s.emit('analytics:requestLiveMetrics'));
      rtts.push(now() - start);
    }
  }));
  const reqWall = (now() - t1) / 1000;

  // fan-out: everyone subscribes; for each of P periodic pushes, delay = receive time - payload timestamp.
  // Only snapshots stamped after every client has subscribed count, and the first complete one is
  // dropped, so neither the immediate snapshot on subscribe nor a cached one skews the figure.
  const ticks = new Map();
  let done;
  const finished = new Promise((r) => { done = r; });
  let subscribedAt = Infinity;
  if (P === 0) done(); // warm-up runs skip the fan-out phase
  for (const s of sockets) {
    s.on('analytics:liveMetrics', (data) => {
      const ts = Array.isArray(data) && data[0] && data[0].timestamp;
      if (!ts || Date.parse(ts) < subscribedAt) return;
      const list = ticks.get(ts) || [];
      list.push(now() - Date.parse(ts));
      ticks.set(ts, list);
      const full = [...ticks.values()].filter((l) => l.length >= N).length;
      if (full >= P + 1) done();
    });
  }
  await Promise.all(sockets.map((s) => new Promise((resolve) => {
    s.emit('analytics:subscribeLiveMetrics');
    setImmediate(resolve);
  })));
  subscribedAt = Date.now() + 1;
  await finished;
  const complete = P === 0 ? [] : [...ticks.values()].filter((l) => l.length >= N).slice(1, P + 1);
  const lastDelivery = complete.map((l) => Math.max(...l));
  const medianDelivery = complete.map((l) => pct(l, 0.5));
  clearTimeout(killer);
  console.log(JSON.stringify({
    url, clients: N, connect_ms: Math.round(connectMs),
    rtt_p50_ms: +pct(rtts, 0.5).toFixed(2), rtt_p99_ms: +pct(rtts, 0.99).toFixed(2),
    req_per_s: Math.round((N * R) / reqWall),
    push_last_ms: lastDelivery.map((x) => Math.round(x)), push_median_ms: medianDelivery.map((x) => Math.round(x)),
  }));
  sockets.forEach((s) => s.close());
  process.exit(0);
}
main().catch((e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
