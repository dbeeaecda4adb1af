// The page at / in a real browser: Debian's chromium, headless, driven by playwright-core (which downloads no
// browser). Run by tests/test_page.py: node page_check.js <gateway url> <chromium> [screenshot.png]
// Prints one JSON line with what it saw; the test asserts on it.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const [url, executablePath, screenshot] = process.argv.slice(2);
const XSS_ID = '<img src=x onerror=alert(1)>';
const TIMEOUT = 15000;

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'page-check-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1000, height: 760 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const result = { dialogs: [], consoleErrors: [], pageErrors: [], requests: [] };
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(TIMEOUT);
    page.on('dialog', async (dialog) => { result.dialogs.push(dialog.message()); await dialog.dismiss(); });
    page.on('console', (message) => { if (message.type() === 'error') result.consoleErrors.push(message.text()); });
    page.on('pageerror', (error) => result.pageErrors.push(String(error)));
    page.on('request', (request) => result.requests.push(new URL(request.url()).host));

    await page.goto(url);
    await page.locator('#state.connected').waitFor();
    result.transport = await page.locator('#transport').textContent();

    // Live when it opens: subscribed on connect; a push changes the timestamp and the charts grow.
    await page.locator('#subscribe[aria-pressed="true"]').waitFor();
    // A metric a service reports (POST /metrics, as an EventBridge MetricReport): a card after the built-in ones.
    result.reportStatus = await page.evaluate(async () => (await fetch('/metrics', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": "Orders per minute", "value": 42}',
    })).status);
    await page.locator('#metrics li[data-metric="Orders per minute"]').waitFor();
    // At least one point: at a push every 0.5 s a busy machine may see the second before it looks.
    await page.waitForFunction(() => Number(document.querySelector('#metrics li')?.dataset.points) >= 1);
    const first = await page.locator('#metrics-time').textContent();
    await page.waitForFunction((before) => document.getElementById('metrics-time').textContent !== before, first);
    result.timestamps = [first, await page.locator('#metrics-time').textContent()];
    result.metrics = await page.$$eval('#metrics li', (items) => items.map((item) => ({
      name: item.dataset.metric,
      value: item.querySelector('.value').textContent,
      points: Number(item.dataset.points),
      polyline: item.querySelector('polyline').getAttribute('points'),
    })));
    result.upgradedTransport = await page.locator('#transport').textContent();

    // Join a dashboard, publish with the form, see it arrive.
    await page.fill('#join-id', 'browser-test');
    await page.click('#join-form button');
    await page.locator('#joined li[data-dashboard="browser-test"]').waitFor();
    await page.fill('#publish-id', 'browser-test');
    await page.fill('#publish-data', '{"revenue": 1200, "note": "<b>bold?</b>"}');
    await page.click('#publish-form button');
    await page.locator('#updates li').first().waitFor();
    await page.waitForFunction(() => document.getElementById('publish-result').textContent !== '');
    result.publishResult = await page.locator('#publish-result').textContent();
    result.update = await page.$eval('#updates li', (item) => ({
      dashboard: item.querySelector('.dashboard').textContent,
      data: item.querySelector('.data').textContent,
      elements: item.querySelectorAll('b').length,
    }));

    // Drop the connection: the client reconnects by itself and recovers its session; an update published while
    // it was away arrives once, and the page joins nothing again.
    const updatesBefore = await page.$$eval('#updates li', (items) => items.length);
    await page.click('#drop');
    await page.locator('#state.disconnected').waitFor();
    result.awayPublish = await page.evaluate(async () => (await fetch('/dashboards/browser-test/updates', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"away": true}',
    })).status);
    await page.locator('#session[data-recovered="true"]').waitFor();
    await page.waitForFunction((n) => document.querySelectorAll('#updates li').length > n, updatesBefore);
    await page.waitForTimeout(500); // a duplicate, had there been one, would have arrived by now
    result.recovery = {
      session: await page.locator('#session').textContent(),
      updatesAdded: (await page.$$eval('#updates li', (items) => items.length)) - updatesBefore,
      latest: await page.$eval('#updates li .data', (node) => node.textContent),
      state: await page.locator('#state').textContent(),
    };

    // The picture the README shows, taken here, before anything hostile is typed: live, a dashboard joined, an update
    // published while the connection was dropped, the session recovered.
    if (screenshot) {
      await page.waitForTimeout(3000); // the charts grow a few points
      await page.screenshot({ path: screenshot, fullPage: true });
    }

    // A hostile id: refused by the server, shown as text, injecting nothing.
    await page.fill('#join-id', XSS_ID);
    await page.click('#join-form button');
    await page.locator('#errors li').first().waitFor();
    result.error = await page.$eval('#errors li', (item) => ({
      event: item.querySelector('.event').textContent,
      message: item.querySelector('.message').textContent,
    }));
    await page.fill('#publish-id', XSS_ID);
    await page.click('#publish-form button');
    await page.waitForFunction(() => !document.getElementById('publish-result').textContent.startsWith('202'));
    result.xssPublishResult = await page.locator('#publish-result').textContent();
    await page.waitForTimeout(500); // an onerror handler, had an <img> been made, would have fired by now
    result.joined = await page.$$eval('#joined li', (items) => items.map((item) => item.dataset.dashboard));
    result.images = await page.$$eval('img', (images) => images.length);
    result.injected = await page.$$eval('#errors *, #updates *, #joined *', (nodes) =>
      nodes.map((node) => node.tagName.toLowerCase()).filter((tag) => !['li', 'time', 'strong', 'span', 'button'].includes(tag)));

    // Unsubscribe: the toggle goes back.
    await page.click('#subscribe');
    await page.locator('#subscribe[aria-pressed="false"]').waitFor();
    result.unsubscribed = true;

  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(result));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
