// The seed's own example, with the official client: connect, subscribe, receive pushes, request,
// join a dashboard, unsubscribe. Prints one JSON line describing what happened.
//   node seed_example.js URL websocket|polling
const { io } = require('socket.io-client');

const url = process.argv[2] || 'http://localhost:4000';
const transport = process.argv[3] || 'websocket';
const fail = (why) => { console.log(JSON.stringify({ error: String(why) })); process.exit(1); };
setTimeout(() => fail('timeout'), 20000);

const socket = io(url, { transports: [transport], reconnection: false });
const pushes = [];
const errors = [];
let resolvePush = null;
socket.on('analytics:liveMetrics', (metrics) => {
  pushes.push(metrics);
  if (resolvePush) resolvePush();
});
socket.on('analytics:error', (error) => errors.push(error));
const frames = []; // every server event, for tests/test_js_client.py to hold to asyncapi.yaml
socket.onAny((event, ...args) => frames.push([event, args[0]]));
socket.on('connect_error', (err) => fail(`connect_error: ${err.message}`));

const nextPush = () => new Promise((resolve) => { resolvePush = resolve; });
const ack = (event, ...args) => socket.timeout(10000).emitWithAck(event, ...args);

socket.on('connect', async () => {
  try {
    const result = { transport: socket.io.engine.transport.name, acks: {} };
    let pushed = nextPush();
    result.acks.subscribe = await ack('analytics:subscribeLiveMetrics');
    await pushed; // the immediate snapshot
    pushed = nextPush();
    await pushed; // a periodic push
    result.pushesWhileSubscribed = pushes.length;
    pushed = nextPush();
    result.acks.request = await ack('analytics:requestLiveMetrics');
    await pushed;
    result.acks.join = await ack('analytics:joinDashboard', 'js-dashboard');
    result.acks.badJoin = await ack('analytics:joinDashboard', 42);
    result.acks.unsubscribe = await ack('analytics:unsubscribeLiveMetrics');
    const afterUnsubscribe = pushes.length;
    await new Promise((r) => setTimeout(r, 1500));
    result.pushesAfterUnsubscribe = pushes.length - afterUnsubscribe;
    result.lastSnapshot = pushes[pushes.length - 1];
    result.errors = errors;
    result.frames = frames;
    socket.close();
    console.log(JSON.stringify(result));
    process.exit(0);
  } catch (e) {
    fail(e);
  }
});
