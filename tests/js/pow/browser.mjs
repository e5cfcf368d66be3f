// The real browser side, in headless Chromium (Debian's `chromium`) driven by playwright-core:
//  1. the official `altcha` web component solves a frontgate challenge on a page frontgate
//     serves, the page posts its `altcha` field to /.frontgate/verify, and the protected POST
//     then succeeds;
//  2. /.frontgate/widget.js's frontgate.fetch() solves on a 403 and retries by itself;
//  3. widget.js's scrypt solver agrees with altcha-lib (frontgate verifies its answer);
//  4. a browser navigation to a protected GET page gets the interstitial, which solves and
//     reloads into the real page (the test upstream answers "ok");
//  5. a plain HTML form holding the official widget posts its `altcha` field straight to the
//     protected route, with no script of the page's own, and gets through.
// Run by crates/frontgate/tests/pow_js.rs:  node browser.mjs <base-url> <pow-secret>
import { createHmac } from 'node:crypto';
import { chromium } from 'playwright-core';
import { createChallenge } from 'altcha-lib';
import { deriveKey as scrypt } from 'altcha-lib/algorithms/scrypt';

const [base, secret] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const fail = (m) => { console.error('FAIL: ' + m); process.exitCode = 1; throw new Error(m); };
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
try {
  // 1. The official widget.
  {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(base + '/');
    await page.waitForFunction(() => document.getElementById('result').textContent !== '', null, { timeout: 60000 });
    const result = JSON.parse(await page.textContent('#result'));
    if (result.field !== 'present' || result.verify !== 200 || result.signup !== 200) fail('altcha widget flow: ' + JSON.stringify(result) + ' ' + errors.join(' | '));
    console.log(JSON.stringify({ case: 'altcha widget', ...result }));
    await ctx.close();
  }
  // 2. widget.js retries a refused fetch after solving.
  {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(base + '/widget.html');
    const direct = await page.evaluate(() => fetch('/api/signup', { method: 'POST', body: '{}' }).then((r) => r.status));
    if (direct !== 403) fail('unprotected POST was not refused: ' + direct);
    const status = await page.evaluate(() => window.frontgate.fetch('/api/signup', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) => r.status));
    if (status !== 200) fail('frontgate.fetch did not get through: ' + status);
    // Parallel calls share one solve (tab safety within a page) and all pass.
    const many = await page.evaluate(() => Promise.all([1, 2, 3].map(() => window.frontgate.fetch('/api/other', { method: 'POST', body: '{}' }).then((r) => r.status))));
    if (many.some((s) => s !== 200)) fail('parallel frontgate.fetch: ' + many);
    console.log(JSON.stringify({ case: 'widget.js fetch', status, parallel: many }));

    // 3. widget.js's scrypt against altcha-lib's, verified by frontgate.
    const data = (await (await fetch(base + '/.frontgate/challenge?route=%2Fapi%2Fsignup')).json()).parameters.data;
    const derive = (label) => createHmac('sha256', secret).update(label).digest('hex');
    const challenge = await createChallenge({
      algorithm: 'SCRYPT', cost: 1024, memoryCost: 8, counter: 3, data, expiresAt: Math.floor(Date.now() / 1000) + 120,
      deriveKey: scrypt, hmacSignatureSecret: derive('frontgate pow challenge v1'), hmacKeySignatureSecret: derive('frontgate pow key v1'),
    });
    const payload = await page.evaluate((c) => window.frontgate.solveChallenge(c), challenge);
    const r = await fetch(base + '/.frontgate/verify', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ altcha: payload }) });
    if (r.status !== 200) fail('frontgate refused widget.js\'s scrypt solution: ' + r.status + ' ' + await r.text());
    console.log(JSON.stringify({ case: 'widget.js scrypt', verify: r.status }));
    await ctx.close();
  }
  // 4. The interstitial page.
  {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const first = await page.goto(base + '/members');
    if (first.status() !== 403) fail('navigation was not challenged: ' + first.status());
    const title = await page.title();
    try {
      await page.waitForFunction(() => document.body && !document.title.startsWith('One moment') && document.body.innerText.trim() === 'ok', null, { timeout: 60000 });
    } catch (e) {
      fail('the interstitial did not lead to the page: ' + (await page.content()).slice(0, 2000));
    }
    console.log(JSON.stringify({ case: 'interstitial', title, reloaded: true }));
    await ctx.close();
  }
  // The sign-up form page, once its widget has solved the challenge and filled its field.
  const formWithSolvedWidget = async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(base + '/form.html');
    try {
      await page.waitForFunction(() => new FormData(document.getElementById('f')).get('altcha'), null, { timeout: 60000 });
    } catch (e) {
      fail('the widget did not fill its field: ' + (await page.content()).slice(0, 2000));
    }
    return { ctx, page };
  };
  const clearanceCookies = async (ctx, after) => {
    const cookies = (await ctx.cookies()).map((c) => c.name);
    if (!cookies.some((n) => n.startsWith('fg-clear-'))) fail('no clearance cookie after ' + after + ': ' + cookies);
    return cookies;
  };
  // 5. A plain form: the solution travels in the form body.
  {
    const { ctx, page } = await formWithSolvedWidget();
    const [response] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    const text = await response.text();
    if (response.status() !== 200) fail('the form post was refused: ' + response.status() + ' ' + text.slice(0, 500));
    const echoed = JSON.parse(text);
    if (!echoed.body.startsWith('name=Ada&altcha=')) fail('the backend did not get the form as posted: ' + text.slice(0, 500));
    const cookies = await clearanceCookies(ctx, 'the form post');
    console.log(JSON.stringify({ case: 'plain form', status: response.status(), cookies }));
    await ctx.close();
  }
  // 6. The same form sent by the page's script as `fetch(url, { body: new FormData(form) })`:
  //    the browser encodes it as multipart/form-data.
  {
    const { ctx, page } = await formWithSolvedWidget();
    const r = await page.evaluate(async () => {
      const res = await fetch('/echo/signup', { method: 'POST', body: new FormData(document.getElementById('f')) });
      return { status: res.status, text: await res.text() };
    });
    if (r.status !== 200) fail('the multipart post was refused: ' + r.status + ' ' + r.text.slice(0, 500));
    const echoed = JSON.parse(r.text);
    const type = String(echoed.headers['content-type']);
    if (!type.startsWith('multipart/form-data; boundary=')) fail('the backend did not get a multipart body: ' + type);
    if (!echoed.body.includes('name="altcha"') || !echoed.body.includes('name="name"')) fail('the backend did not get the form as posted: ' + r.text.slice(0, 500));
    const cookies = await clearanceCookies(ctx, 'the multipart post');
    console.log(JSON.stringify({ case: 'FormData (multipart)', status: r.status, cookies }));
    await ctx.close();
  }
  console.log('browser: all cases passed');
} finally {
  await browser.close();
}
