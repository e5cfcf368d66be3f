// Drives headless Chromium (the Debian package) through frontgate in front of a Vite dev
// server, for tests/it/dev_server.rs:
//
//   node dev_server.mjs
//
// Environment: FG (frontgate's origin), OTHER (another origin: Vite itself, for a cross-origin
// call), SRC (the served copy of src/greeting.js, edited here to trigger HMR),
// CHROMIUM (default /usr/bin/chromium).
// Every browser-side fact is asserted here (node:assert); exit code 0 means all held. One JSON
// line on stdout reports what was seen.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const { FG, OTHER, SRC } = process.env;

// Never hang a test run: kill Chromium (its processes share our stdout) and fail after 90 s.
let browser;
setTimeout(() => {
  process.stderr.write('dev_server.mjs timed out\n');
  browser?.process()?.kill('SIGKILL');
  process.exit(3);
}, 90_000).unref();
const step = (what) => process.stderr.write(`step: ${what}\n`);

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
});
const page = await (await browser.newContext()).newPage();
const out = { sockets: [], console: [] };
page.on('websocket', (ws) => out.sockets.push(ws.url()));
page.on('console', (m) => out.console.push(m.text()));
const connected = new Promise((resolve) => {
  page.on('console', (m) => m.text().includes('[vite] connected.') && resolve());
});

try {
  step('page loads through frontgate');
  await page.goto(`${FG}/`);
  await page.waitForFunction(() => document.querySelector('#greeting')?.textContent === 'Hello from Vite');

  step('the HMR WebSocket connects through frontgate');
  await connected;
  const hmr = out.sockets.find((u) => new URL(u).host === new URL(FG).host);
  assert.ok(hmr, `no WebSocket to frontgate's origin: ${JSON.stringify(out.sockets)}`);
  assert.ok(out.sockets.every((u) => new URL(u).host === new URL(FG).host), `a socket bypassed frontgate: ${out.sockets}`);

  step('the page called the API through frontgate');
  await page.waitForFunction(() => document.querySelector('#api')?.textContent === 'Hello from the API');

  step('editing a source file updates the page without a reload (HMR)');
  await page.evaluate(() => { window.notReloaded = true; });
  writeFileSync(SRC, readFileSync(SRC, 'utf8').replace('Hello from Vite', 'Hello again'));
  await page.waitForFunction(() => document.querySelector('#greeting')?.textContent === 'Hello again');
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page reloaded instead of hot-updating');

  step('a same-origin POST to a declared route passes the checks');
  const echo = await page.evaluate(async () => {
    const r = await fetch('/api/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    return { status: r.status, body: await r.text() };
  });
  assert.equal(echo.status, 200, JSON.stringify(echo));

  step('an undeclared API path is refused, also for a navigation (not the app HTML)');
  const undeclared = await page.evaluate(async () => {
    const r = await fetch('/api/secret');
    return { status: r.status, type: r.headers.get('content-type') };
  });
  assert.deepEqual(undeclared, { status: 404, type: 'application/problem+json' });
  const nav = await page.request.get(`${FG}/api/secret`, { headers: { accept: 'text/html' } });
  assert.equal(nav.status(), 404);

  step('Chromium keeps a __Host- Secure cookie on plain http://localhost (as the session cookie is)');
  const kept = await page.evaluate(() => {
    document.cookie = '__Host-devcheck=1; Secure; Path=/; SameSite=Lax';
    return document.cookie.includes('__Host-devcheck=1');
  });
  assert.equal(kept, true, 'Chromium dropped a __Host- Secure cookie on http://localhost');

  step('a cross-origin POST from another origin is refused by frontgate');
  await page.goto(`${OTHER}/`);
  const refused = page.waitForResponse((r) => r.url() === `${FG}/api/echo`);
  await page.evaluate((fg) => fetch(`${fg}/api/echo`, { method: 'POST', mode: 'no-cors', body: 'x' }).catch(() => {}), FG);
  out.crossOriginStatus = (await refused).status();
  assert.equal(out.crossOriginStatus, 403);

  const violations = out.console.filter((t) => t.includes('Content Security Policy'));
  assert.deepEqual(violations, [], 'CSP violations under the dev csp');
} finally {
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await browser.close();
}
