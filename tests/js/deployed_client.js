// The official socket.io-client against the deployed API's own endpoint (the gateway's /{stage}), connecting
// exactly as a dashboard connects to API Gateway. Prints one JSON line describing what happened.
//   node deployed_client.js ORIGIN STAGE seed|heartbeat|reconnect [seconds]
const { io } = require('socket.io-client');

const [origin, stage, scenario, seconds] = process.argv.slice(2);
const fail = (why) => { console.log(JSON.stringify({ error: String(why) })); process.exit(1); };
setTimeout(() => fail('timeout'), 60000);

const started = Date.now();
// The production client's options, verbatim: only the origin differs (wss://{api}.execute-api.{region}.amazonaws.com).
const socket = io(origin, {
  path: `/${stage}`,
  addTrailingSlash: false,
  transports: ['websocket'],
  reconnection: scenario === 'reconnect',
  reconnectionDelay: 200,
  reconnectionDelayMax: 500,
});
const received = { 'analytics:liveMetrics': [], 'analytics:error': [], 'analytics:dashboardUpdate': [] };
const waiters = [];
const frames = []; // every server event, for the test to hold to asyncapi.yaml
socket.onAny((event, ...args) => frames.push([event, args[0]]));
for (const name of Object.keys(received)) {
  socket.on(name, (payload) => {
    received[name].push(payload);
    waiters.filter((w) => w.name === name).forEach((w) => w.check());
  });
}
const next = (name, count = 1) => new Promise((resolve, reject) => {
  const target = received[name].length + count;
  const waiter = { name, check: () => { if (received[name].length >= target) { clearTimeout(timer); resolve(received[name].at(-1)); } } };
  const timer = setTimeout(() => reject(new Error(`no ${name} within 10 s`)), 10000);
  waiters.push(waiter);
});
const ack = (event, ...args) => socket.timeout(10000).emitWithAck(event, ...args);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
socket.on('connect_error', (err) => { if (scenario !== 'reconnect') fail(`connect_error: ${err.message}`); });

async function seed() {
  const result = { connectMs: Date.now() - started, transport: socket.io.engine.transport.name, acks: {} };
  let pushed = next('analytics:liveMetrics');
  result.acks.subscribe = await ack('analytics:subscribeLiveMetrics');
  await pushed; // the immediate snapshot
  await next('analytics:liveMetrics'); // a periodic push
  pushed = next('analytics:liveMetrics');
  result.acks.request = await ack('analytics:requestLiveMetrics');
  await pushed;
  pushed = next('analytics:liveMetrics');
  socket.emit('analytics:requestLiveMetrics'); // without an ack
  await pushed;
  result.acks.join = await ack('analytics:joinDashboard', 'js-dashboard');
  socket.emit('analytics:joinDashboard', 'js-other'); // without an ack
  const update = next('analytics:dashboardUpdate');
  const published = await fetch(`${origin.replace(/^ws/, 'http')}/dashboards/js-dashboard/updates`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ revenue: 42 }),
  });
  result.publishStatus = published.status;
  result.update = await update;
  let refused = next('analytics:error');
  result.acks.badJoin = await ack('analytics:joinDashboard', 42);
  await refused;
  refused = next('analytics:error');
  result.acks.xssJoin = await ack('analytics:joinDashboard', '<img src=x onerror=alert(1)>');
  await refused;
  refused = next('analytics:error');
  result.acks.unknown = await ack('analytics:noSuchEvent', 1);
  await refused;
  refused = next('analytics:error');
  socket.emit('analytics:leaveDashboard'); // no argument, no ack: the error still arrives
  await refused;
  result.acks.emptyJoin = await ack('analytics:joinDashboard', '');
  result.acks.longJoin = await ack('analytics:joinDashboard', 'x'.repeat(129));
  result.acks.objectJoin = await ack('analytics:joinDashboard', { dashboardId: 'sales' });
  const rooms = [];
  for (let i = 0; i < 18; i += 1) rooms.push(await ack('analytics:joinDashboard', `room-${i}`)); // 20 with js-dashboard and js-other
  result.roomsJoined = rooms.filter((a) => a.ok).length;
  result.acks.tooManyRooms = await ack('analytics:joinDashboard', 'room-20');
  for (let i = 0; i < 18; i += 1) await ack('analytics:leaveDashboard', `room-${i}`);
  result.acks.leave = await ack('analytics:leaveDashboard', 'js-dashboard');
  result.acks.leaveOther = await ack('analytics:leaveDashboard', 'js-other');
  result.acks.unsubscribe = await ack('analytics:unsubscribeLiveMetrics');
  let afterUnsubscribe = received['analytics:liveMetrics'].length;
  await sleep(1500);
  result.pushesAfterUnsubscribe = received['analytics:liveMetrics'].length - afterUnsubscribe;
  // Subscribe and unsubscribe without acks: the snapshot arrives, then the pushes stop.
  pushed = next('analytics:liveMetrics');
  socket.emit('analytics:subscribeLiveMetrics');
  await pushed;
  socket.emit('analytics:unsubscribeLiveMetrics');
  result.acks.afterUnacked = await ack('analytics:requestLiveMetrics'); // in order: after the unsubscribe
  afterUnsubscribe = received['analytics:liveMetrics'].length;
  await sleep(1500);
  result.pushesAfterUnackedUnsubscribe = received['analytics:liveMetrics'].length - afterUnsubscribe;
  result.lastSnapshot = received['analytics:liveMetrics'].at(-1);
  result.errors = received['analytics:error'];
  result.connected = socket.connected;
  return result;
}

async function heartbeat() {
  const pings = [];
  const disconnects = [];
  socket.io.engine.on('ping', () => pings.push(Date.now() - started));
  socket.on('disconnect', (reason) => disconnects.push(reason));
  await sleep(Number(seconds) * 1000);
  const answer = await ack('analytics:requestLiveMetrics');
  return { pings, disconnects: [...disconnects], connected: socket.connected, ack: answer };
}

async function reconnect() {
  // What a production dashboard does: (re)subscribe and rejoin on every connect.
  const connects = [];
  const disconnects = [];
  socket.on('disconnect', (reason) => disconnects.push(reason));
  const onConnect = async () => {
    connects.push(Date.now() - started);
    await ack('analytics:subscribeLiveMetrics');
    console.log(JSON.stringify({ event: 'subscribed', connects: connects.length }));
  };
  socket.on('connect', onConnect);
  await onConnect();
  while (connects.length < 2) await sleep(50); // the test restarts the gateway meanwhile
  const pushes = received['analytics:liveMetrics'].length;
  await next('analytics:liveMetrics');
  return { connects: connects.length, disconnects: [...disconnects], pushesAfter: received['analytics:liveMetrics'].length - pushes };
}

const scenarios = { seed, heartbeat, reconnect };
socket.once('connect', async () => {
  try {
    const result = await scenarios[scenario]();
    socket.close();
    result.frames = frames;
    console.log(JSON.stringify(result));
    process.exit(0);
  } catch (e) {
    fail(e);
  }
});
