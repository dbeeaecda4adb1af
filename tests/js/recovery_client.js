// The stock socket.io-client through drops, as a dashboard on a wall screen lives: connection state recovery
// with no client code (no option, no rejoin). Prints one JSON line describing what happened.
//   node recovery_client.js ORIGIN local|polling|prod SCENARIO [awayMs]
// SCENARIO: drop (an update received before the drop), fresh (none received), drops3 (three drops in a row),
// leave (socket.disconnect() then connect()), cut (the server ends the connection: API Gateway's lifetime cut),
// restart (the test restarts the gateway once this prints {"event": "ready"}). awayMs: how long the client
// waits before it reconnects.
const { io } = require('socket.io-client');

const [origin, endpoint, scenario, awayArg] = process.argv.slice(2);
const away = Number(awayArg || 0);
const fail = (why) => { console.log(JSON.stringify({ error: String(why), stack: why && why.stack })); process.exit(1); };
setTimeout(() => fail('timeout'), 60000);

const options = {
  // The production client's options, verbatim: only the origin differs.
  prod: { path: '/prod', addTrailingSlash: false, transports: ['websocket'] },
  polling: { transports: ['polling'] },
  local: {}, // polling first, then the upgrade to WebSocket
}[endpoint];
const socket = io(origin, { ...options, reconnectionDelay: away || 200, reconnectionDelayMax: away || 500, randomizationFactor: 0 });
const http = origin.replace(/^ws/, 'http');
const id = `rec-${process.pid}-${Date.now()}`;
const dashboards = [`${id}-a`, `${id}-b`];
const updates = []; // [dashboardId, n] in arrival order
const connects = []; // socket.recovered at each connect
const frames = []; // every server event with all its arguments, for the test to hold to asyncapi.yaml
socket.onAny((event, ...args) => frames.push([event, ...args]));
let metricsSinceConnect = 0;
socket.on('analytics:dashboardUpdate', (update) => updates.push([update.dashboardId, update.data.n]));
socket.on('analytics:liveMetrics', () => { metricsSinceConnect += 1; });
socket.on('connect', () => { connects.push(socket.recovered); metricsSinceConnect = 0; });
socket.on('connect_error', (err) => { if (scenario !== 'restart') fail(`connect_error: ${err.message}`); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (check, what, ms = 10000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms (updates: ${JSON.stringify(updates)})`);
    await sleep(20);
  }
};
const ack = (event, ...args) => socket.timeout(10000).emitWithAck(event, ...args);
const publish = async (dashboard, n) => {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const answer = await fetch(`${http}/dashboards/${dashboard}/updates`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n }),
      });
      if (answer.status !== 202) throw new Error(`publish answered ${answer.status}`);
      return;
    } catch (e) {
      if (scenario !== 'restart' || attempt > 200) throw e; // the gateway is restarting: try again
      await sleep(50);
    }
  }
};
const drop = async () => {
  const dropped = new Promise((resolve) => socket.once('disconnect', resolve));
  socket.io.engine.close(); // the transport drops, as a network does; the client reconnects by itself
  return dropped;
};

async function run() {
  await until(() => connects.length === 1, 'connect');
  for (const dashboard of dashboards) await ack('analytics:joinDashboard', dashboard);
  await ack('analytics:subscribeLiveMetrics');
  let n = 0;
  if (scenario !== 'fresh') {
    await publish(dashboards[0], (n += 1));
    await until(() => updates.length === 1, 'first update');
  }
  const drops = scenario === 'drops3' ? 3 : 1;
  for (let i = 0; i < drops; i += 1) {
    const connected = connects.length;
    if (scenario === 'leave') {
      // On purpose: the session ends. The Manager closes its transport once the DISCONNECT is written; a connect()
      // before that would reuse the closing transport (socket.io-client's own behaviour), so wait for the close.
      const closed = new Promise((resolve) => socket.io.engine.once('close', resolve));
      socket.disconnect();
      await closed;
    } else if (scenario === 'cut' || scenario === 'restart') {
      if (scenario === 'restart') console.log(JSON.stringify({ event: 'ready' }));
      if (socket.connected) await new Promise((resolve) => socket.once('disconnect', resolve));
    } else {
      await drop();
    }
    // Published while the client is away, to both dashboards.
    await publish(dashboards[0], (n += 1));
    await publish(dashboards[1], (n += 1));
    await publish(dashboards[0], (n += 1));
    if (scenario === 'leave') socket.connect();
    await until(() => connects.length > connected, 'reconnection', 10000 + away);
  }
  await sleep(300); // what a recovery replays has arrived by now
  // Live again, on both dashboards (a client that was not recovered is in neither).
  await publish(dashboards[0], (n += 1));
  await publish(dashboards[1], (n += 1));
  if (connects.at(-1)) {
    await until(() => updates.some(([, v]) => v === n), 'the live update');
    await until(() => metricsSinceConnect > 0, 'liveMetrics after the reconnection');
  } else {
    await sleep(1000);
  }
  return { connects, updates, published: n, dashboards, metricsSinceConnect, frames, pid: socket._pid };
}

run().then((result) => {
  socket.close();
  console.log(JSON.stringify(result));
  process.exit(0);
}).catch(fail);
