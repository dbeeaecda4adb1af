// Connection state recovery under load: N stock socket.io clients in one dashboard, each with an update seen.
// Then, for each round, every client's transport drops (or the bench restarts the gateway), the bench publishes
// the missed updates, and on "go" (a line on stdin) every client reconnects at once. Per client: the time from
// its reconnection to the last missed update delivered. Prints "ready" lines and one JSON line per round.
//   node recovery.js URL clients missed rounds drop|restart
const { io } = require('socket.io-client');
const readline = require('node:readline');

const [url, clientsArg, missedArg, roundsArg, mode] = process.argv.slice(2);
const N = Number(clientsArg);
const missed = Number(missedArg);
const rounds = Number(roundsArg);
const now = () => performance.timeOrigin + performance.now();
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : null; };
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(2); }, 900000);

const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
lines.on('line', (line) => { const next = waiting.shift(); if (next) next(line); });
const nextLine = () => new Promise((resolve) => waiting.push(resolve));

async function main() {
  const clients = await Promise.all(Array.from({ length: N }, () => new Promise((resolve, reject) => {
    const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 30000 });
    const client = { socket, updates: 0, recovered: [] };
    socket.on('analytics:dashboardUpdate', () => { client.updates += 1; if (client.waiter) client.waiter(); });
    socket.on('connect', () => client.recovered.push(socket.recovered));
    socket.once('connect', () => resolve(client));
    socket.once('connect_error', reject);
  })));
  await Promise.all(clients.map((c) => c.socket.timeout(300000).emitWithAck('analytics:joinDashboard', 'bench-recovery')));
  console.log(JSON.stringify({ event: 'ready' })); // the bench publishes one update everyone sees
  await nextLine();
  await Promise.all(clients.map((c) => until(c, 1)));
  for (let round = 0; round < rounds; round += 1) {
    const gone = clients.map((c) => new Promise((resolve) => c.socket.once('disconnect', resolve)));
    if (mode === 'drop') for (const c of clients) c.socket.io.engine.close();
    console.log(JSON.stringify({ event: 'away' })); // the bench restarts the gateway (restart), then publishes
    await Promise.all(gone);
    await nextLine();
    const start = now();
    const connected = clients.map((c) => new Promise((resolve) => c.socket.once('connect', resolve)));
    const times = await Promise.all(clients.map(async (c, i) => {
      const target = c.updates + missed;
      c.socket.connect();
      await connected[i];
      if (!c.socket.recovered) return null; // a new session: nothing is replayed to it
      await until(c, target);
      return now() - start;
    }));
    const recovered = times.filter((t) => t !== null);
    console.log(JSON.stringify({ round, p50: pct(recovered, 0.5), p95: pct(recovered, 0.95), max: Math.max(...recovered), recovered: recovered.length }));
  }
  for (const c of clients) c.socket.close();
  process.exit(0);
}

function until(client, count) {
  return new Promise((resolve) => {
    const check = () => { if (client.updates >= count) { client.waiter = null; resolve(); } };
    client.waiter = check;
    check();
  });
}

main().catch((error) => { console.log(JSON.stringify({ error: String(error) })); process.exit(1); });
