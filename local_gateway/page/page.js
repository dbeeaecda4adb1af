// The page at http://localhost:4000/: a plain Socket.IO client of the API, no framework.
// Everything that comes from the wire is written with textContent (never innerHTML): dashboard ids and
// update data are user input.
'use strict';

(() => {
  // The contract's names (shared/contract.py); tests/test_page.py checks they match.
  const SUBSCRIBE = 'analytics:subscribeLiveMetrics';
  const UNSUBSCRIBE = 'analytics:unsubscribeLiveMetrics';
  const JOIN = 'analytics:joinDashboard';
  const LEAVE = 'analytics:leaveDashboard';
  const LIVE_METRICS = 'analytics:liveMetrics';
  const DASHBOARD_UPDATE = 'analytics:dashboardUpdate';
  const ERROR = 'analytics:error';
  const PERCENTS = new Set(['CPU Usage', 'Memory Usage']); // integer percents, charted 0 to 100
  const CHART_WINDOW_MS = 5 * 60 * 1000; // the charts show the last five minutes
  const LOG_LENGTH = 50;
  const ACK_TIMEOUT_MS = 10000;

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  };
  const SVG = 'http://www.w3.org/2000/svg';

  const token = new URLSearchParams(location.search).get('token'); // when the gateway has auth on
  const socket = io({ auth: token ? { token } : {} });

  let wantLive = true; // the page is live when it opens; the toggle stops and starts the pushes
  const joined = new Set();
  const series = new Map(); // metric name -> [{t, value}]
  const cards = new Map(); // metric name -> {item, value, line}

  function prepend(list, node) {
    list.prepend(node);
    while (list.children.length > LOG_LENGTH) list.lastElementChild.remove();
  }

  function showError(event, message) {
    const item = el('li');
    item.append(el('time', '', new Date().toLocaleTimeString()), ' ', el('strong', 'event', event), ': ',
      el('span', 'message', message));
    prepend($('errors'), item);
  }

  async function call(event, ...args) {
    try {
      return await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, ...args);
    } catch (error) {
      showError(event, `no answer: ${error.message}`);
      return { ok: false, error: 'no answer' };
    }
  }

  // -- connection ----------------------------------------------------------------------------------
  function showTransport() {
    $('transport').textContent = socket.connected ? socket.io.engine.transport.name : 'none';
  }

  let connects = 0;
  socket.on('connect', async () => {
    connects += 1;
    $('state').textContent = 'connected';
    $('state').className = 'state connected';
    $('subscribe').disabled = false;
    $('drop').disabled = false;
    showTransport();
    socket.io.engine.once('upgrade', showTransport);
    // A recovered session keeps its subscription and dashboards, and the updates missed meanwhile arrive on
    // their own: nothing to do. A new session knows nothing of this page: subscribe and join again.
    const session = $('session');
    session.textContent = connects === 1 ? '' : socket.recovered ? 'session recovered' : 'new session';
    session.dataset.recovered = String(socket.recovered);
    if (socket.recovered) return;
    if (wantLive) await call(SUBSCRIBE);
    for (const id of joined) await call(JOIN, id);
  });
  socket.on('disconnect', (reason) => {
    $('state').textContent = `disconnected (${reason})`;
    $('state').className = 'state disconnected';
    $('drop').disabled = true;
    showTransport();
  });
  // What a network drop (or API Gateway's 2-hour cut) does: the client reconnects by itself and recovers.
  $('drop').addEventListener('click', () => socket.io.engine.close());
  socket.on('connect_error', (error) => {
    $('state').textContent = `cannot connect: ${error.message}`;
    $('state').className = 'state disconnected';
  });

  // -- live metrics ----------------------------------------------------------------------------------
  function card(name) {
    if (!cards.has(name)) {
      const item = el('li');
      item.dataset.metric = name;
      const svg = document.createElementNS(SVG, 'svg');
      svg.setAttribute('viewBox', '0 0 100 40');
      svg.setAttribute('preserveAspectRatio', 'none');
      svg.setAttribute('aria-hidden', 'true');
      const line = document.createElementNS(SVG, 'polyline');
      svg.append(line);
      const value = el('div', 'value', '');
      item.append(el('div', 'name', name), value, svg);
      $('metrics').append(item);
      cards.set(name, { item, value, line });
    }
    return cards.get(name);
  }

  function draw(name, now) {
    const points = series.get(name).filter((p) => p.t >= now - CHART_WINDOW_MS);
    series.set(name, points);
    const values = points.map((p) => p.value);
    const [low, high] = PERCENTS.has(name) ? [0, 100] : [Math.min(0, ...values), Math.max(1, ...values)];
    const { item, line } = card(name);
    const start = points.length ? points[0].t : now; // the x axis grows to the window, then slides
    const span = Math.max(1, now - start);
    line.setAttribute('points', points
      .map((p) => `${(100 * (p.t - start) / span).toFixed(2)},${(38 - 36 * (p.value - low) / (high - low)).toFixed(2)}`)
      .join(' '));
    item.dataset.points = String(points.length);
  }

  // A snapshot holds every metric there is now, in the order to show: the counts, CPU and memory when the server
  // has a source for them, then the metrics services report. A card whose metric left (a reported one gone
  // stale) goes too.
  socket.on(LIVE_METRICS, (metrics) => {
    if (!Array.isArray(metrics)) return;
    const now = Date.now();
    const shown = new Set();
    for (const metric of metrics) {
      const name = String(metric.name);
      const value = Number(metric.value);
      shown.add(name);
      if (!series.has(name)) series.set(name, []);
      series.get(name).push({ t: now, value: Number.isFinite(value) ? value : 0 });
      const { item, value: text } = card(name);
      text.textContent = String(metric.value) + (PERCENTS.has(name) ? ' %' : '');
      $('metrics').append(item); // in the snapshot's order
      draw(name, now);
    }
    for (const [name, { item }] of cards) {
      if (shown.has(name)) continue;
      item.remove();
      cards.delete(name);
      series.delete(name);
    }
    const stamp = metrics.length ? String(metrics[0].timestamp) : '';
    $('metrics-time').textContent = stamp;
    $('metrics-time').dateTime = stamp;
  });

  $('subscribe').addEventListener('click', async () => {
    const subscribe = !wantLive;
    const answer = await call(subscribe ? SUBSCRIBE : UNSUBSCRIBE);
    if (answer && answer.ok) {
      wantLive = subscribe;
      $('subscribe').textContent = wantLive ? 'Unsubscribe' : 'Subscribe to live metrics';
      $('subscribe').setAttribute('aria-pressed', String(wantLive));
    }
  });

  // -- dashboards ----------------------------------------------------------------------------------
  function showJoined() {
    const list = $('joined');
    list.replaceChildren();
    for (const id of joined) {
      const leave = el('button', '', 'leave');
      leave.type = 'button';
      leave.addEventListener('click', async () => {
        const answer = await call(LEAVE, id);
        if (answer && answer.ok) {
          joined.delete(id);
          showJoined();
        }
      });
      const item = el('li', '', id + ' ');
      item.dataset.dashboard = id;
      item.append(leave);
      list.append(item);
    }
  }

  $('join-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const id = $('join-id').value;
    const answer = await call(JOIN, id); // the server checks the id; a refusal arrives as analytics:error
    if (answer && answer.ok) {
      joined.add(id);
      showJoined();
    }
  });

  socket.on(DASHBOARD_UPDATE, (update) => {
    const item = el('li');
    item.append(el('time', '', String(update && update.timestamp)), ' ',
      el('strong', 'dashboard', String(update && update.dashboardId)), ' ',
      el('span', 'data', JSON.stringify(update && update.data)));
    prepend($('updates'), item);
  });

  $('publish-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = $('publish-result');
    const id = $('publish-id').value;
    const body = $('publish-data').value;
    try {
      JSON.parse(body);
    } catch (error) {
      result.textContent = `not JSON: ${error.message}`;
      return;
    }
    try {
      const response = await fetch(`/dashboards/${encodeURIComponent(id)}/updates`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body,
      });
      result.textContent = `${response.status} ${await response.text()}`;
    } catch (error) {
      result.textContent = `failed: ${error.message}`;
    }
  });

  // -- errors --------------------------------------------------------------------------------------
  socket.on(ERROR, (error) => showError(String(error && error.event), String(error && error.message)));
})();
