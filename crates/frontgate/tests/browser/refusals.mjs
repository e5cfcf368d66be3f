// Headless Chromium (the Debian package) POSTs bodies to routes frontgate refuses, for
// tests/it/refusals.rs: the page reads each refusal's status and problem document.
//
//   node refusals.mjs
//
// Environment: FG (frontgate's https origin), CASES (JSON list of { path, status, code }),
// BODY (bytes per body), TRIES, HTTP1 ("1": Chromium without HTTP/2), CHROMIUM (the binary).
// Exit code 0 means every try got its status and problem document over the expected protocol.

import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const { FG, CASES, BODY, TRIES, HTTP1 } = process.env;
let browser;
setTimeout(() => {
  process.stderr.write('timed out\n');
  browser?.process()?.kill('SIGKILL');
  process.exit(3);
}, 90_000).unref();

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', ...(HTTP1 === '1' ? ['--disable-http2'] : [])],
});
try {
  // The gateway's certificate is self-signed.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  // A page of the gateway's own origin (its 404 document), so the fetches are same-origin.
  await page.goto(`${FG}/nowhere`);
  const results = await page.evaluate(async ({ cases, bytes, tries }) => {
    const out = [];
    for (const c of cases) {
      for (let i = 0; i < tries; i++) {
        try {
          const r = await fetch(c.path, {
            method: 'POST',
            body: new Uint8Array(bytes),
            headers: { 'content-type': 'application/octet-stream' },
            cache: 'no-store',
          });
          out.push({ path: c.path, status: r.status, contentType: r.headers.get('content-type'), body: await r.text() });
        } catch (e) {
          out.push({ path: c.path, error: String(e) });
        }
      }
    }
    const protocols = [...new Set(performance.getEntriesByType('resource').map((e) => e.nextHopProtocol))];
    return { out, protocols };
  }, { cases: JSON.parse(CASES), bytes: Number(BODY), tries: Number(TRIES) });
  const cases = Object.fromEntries(JSON.parse(CASES).map((c) => [c.path, c]));
  for (const r of results.out) {
    const c = cases[r.path];
    assert.equal(r.error, undefined, `${r.path}: ${r.error}`);
    assert.equal(r.status, c.status, `${r.path}: ${r.status} ${r.body}`);
    assert.equal(r.contentType, 'application/problem+json', `${r.path}: ${r.contentType}`);
    const doc = JSON.parse(r.body);
    assert.equal(doc.code, c.code, `${r.path}: ${r.body}`);
  }
  const want = HTTP1 === '1' ? 'http/1.1' : 'h2';
  assert.deepEqual(results.protocols, [want], `protocols used: ${results.protocols}`);
  process.stdout.write(`${JSON.stringify({ tries: results.out.length, protocols: results.protocols })}\n`);
} finally {
  await browser.close();
}
