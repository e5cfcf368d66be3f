// Drives headless Chromium (the Debian package) through the React + Node example
// (examples/react-node) behind frontgate, for tests/it/react_node.rs. One scenario per run:
//
//   node react_node.mjs tour|expiry
//
// Environment: FG (frontgate's public origin, https://127.0.0.1:PORT), IDP (the example IdP's
// issuer), API_LOG (the Express backend's request log: one JSON line per request it received),
// TLS_DIR (frontgate's data_dir/tls: the attacker page is served over HTTPS with the same
// self-signed certificate, so it is same-site with the app and the Lax cookie goes along),
// SHOTS (a directory for the screenshots), CHROMIUM (default /usr/bin/chromium).
// Assertions are made here (node:assert); exit code 0 means every one held.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { FG, IDP, API_LOG, TLS_DIR, SHOTS } = process.env;
const scenario = process.argv[2];
const SESSION_COOKIE = '__Host-frontgate';
const USER = 'demo';
const PASSWORD = 'demo-password';

let browser;
let page;
setTimeout(() => {
  process.stderr.write(`scenario ${scenario} timed out at ${page?.url()}\n`);
  browser?.process()?.kill('SIGKILL');
  process.exit(3);
}, 150_000).unref();
const t0 = Date.now();
const step = (what) => process.stderr.write(`step ${((Date.now() - t0) / 1000).toFixed(1)}s: ${what}\n`);

mkdirSync(SHOTS, { recursive: true });
const shot = async (name, p = page) => {
  await p.screenshot({ path: join(SHOTS, `${name}.png`) });
  step(`screenshot ${name}`);
};

// What reached the backend so far.
const backendLog = () =>
  (existsSync(API_LOG) ? readFileSync(API_LOG, 'utf8') : '')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
const backendCount = (pred) => backendLog().filter(pred).length;

// curl, as someone replaying a request copied from the network tab. -k: the self-signed cert.
function curl(method, path, { headers = {}, body } = {}) {
  const args = ['-sk', '-o', '-', '-w', '\n%{http_code}', '-X', method, `${FG}${path}`];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (body !== undefined) args.push('--data-binary', body);
  const out = execFileSync('curl', args, { encoding: 'utf8' });
  const nl = out.lastIndexOf('\n');
  const text = out.slice(0, nl);
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: Number(out.slice(nl + 1)), body: json, text };
}

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
});
// The certificate is frontgate's self-signed one (as in the example): accepted for this test.
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1000, height: 700 } });
page = await context.newPage();
page.on('console', (m) => m.type() === 'error' && process.stderr.write(`console: ${m.text()}\n`));

const sessionCookie = async () => (await context.cookies(FG)).find((c) => c.name === SESSION_COOKIE);

// At the IdP's login form: the demo user's credentials. Then back at the app.
async function signInAtIdp(user = USER, password = PASSWORD, shotName) {
  await page.waitForURL((u) => u.href.startsWith(`${IDP}/interaction/`));
  await page.waitForSelector('input[name=login]');
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', password);
  if (shotName) await shot(shotName);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.href.startsWith(FG));
}

async function signIn(shotName) {
  await page.goto(`${FG}/`);
  await page.getByRole('link', { name: 'Sign in' }).first().click();
  await signInAtIdp(USER, PASSWORD, shotName);
  await page.getByTestId('user').waitFor();
}

async function addItem(title, note = '') {
  await page.fill('#title', title);
  await page.fill('#note', note);
  await page.getByRole('button', { name: 'Add item' }).click();
  await page.getByTestId('item').filter({ hasText: title }).waitFor();
}

try {
  if (scenario === 'tour') {
    // 1. Signed out: the app shows its welcome page; the API answers 401 problems.
    await page.goto(`${FG}/`);
    await page.getByRole('heading', { name: 'Welcome' }).waitFor();
    await shot('01-welcome');

    // 2. Sign in through the IdP (authorization code + PKCE, done by frontgate).
    await page.getByRole('link', { name: 'Sign in' }).first().click();
    await signInAtIdp(USER, PASSWORD, '02-idp-login');
    await page.getByTestId('user').waitFor();
    assert.equal(await page.getByTestId('user').innerText(), 'Demo User');
    await page.getByTestId('empty').waitFor();
    step('signed in');

    // 3. The session cookie: __Host-, Secure, HttpOnly, SameSite=Lax, Path=/, host-only.
    const cookie = await sessionCookie();
    assert.ok(cookie, 'session cookie set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/');
    assert.ok(!cookie.domain.startsWith('.'), `host-only cookie, got domain ${cookie.domain}`);
    // Nothing for page JavaScript to steal: not the cookie, not a token, in no storage.
    const visible = await page.evaluate(async () => {
      const session = await (await fetch('/.frontgate/session')).text();
      return {
        cookie: document.cookie,
        local: JSON.stringify({ ...localStorage }),
        session: JSON.stringify({ ...sessionStorage }),
        whoami: session,
      };
    });
    assert.ok(!visible.cookie.includes(SESSION_COOKIE), `document.cookie: ${visible.cookie}`);
    for (const [where, text] of Object.entries(visible)) {
      assert.ok(!text.includes(cookie.value), `session id visible in ${where}`);
      assert.ok(!/eyJ[\w-]+\.eyJ/.test(text), `a JWT visible in ${where}: ${text}`);
      assert.ok(!/access_token|refresh_token|id_token/.test(text), `a token visible in ${where}: ${text}`);
    }
    step('cookie flags and no token in the page');

    // 4. Items: add, edit, mark done, delete; the backend gets the user from frontgate.
    await addItem('Buy milk', 'Two litres');
    await addItem('Call the bank');
    await addItem('Water the plants');
    await shot('03-items');
    const posts = backendLog().filter((e) => e.method === 'POST' && e.path === '/api/items');
    assert.equal(posts.length, 3);
    assert.ok(posts.every((e) => e.subject === USER), JSON.stringify(posts));
    // Response stripping: what the contract does not declare never reaches the browser.
    const listed = await page.evaluate(async () => (await fetch('/api/items')).json());
    assert.equal(listed.items.length, 3);
    for (const item of listed.items) {
      assert.equal(item.owner, undefined, 'undeclared `owner` stripped');
      assert.equal(item.internal_ref, undefined, 'undeclared `internal_ref` stripped');
    }
    const milk = page.getByTestId('item').filter({ hasText: 'Buy milk' });
    await milk.getByRole('button', { name: 'Edit' }).click();
    await page.locator('form[aria-label^="Edit"] input[name=title]').fill('Buy oat milk');
    await page.locator('form[aria-label^="Edit"]').getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('item').filter({ hasText: 'Buy oat milk' }).waitFor();
    await page.getByRole('checkbox', { name: 'Done: Buy oat milk' }).click();
    await page.locator('.title.done', { hasText: 'Buy oat milk' }).waitFor();
    const bank = page.getByTestId('item').filter({ hasText: 'Call the bank' });
    await bank.getByRole('button', { name: 'Delete' }).click();
    await bank.waitFor({ state: 'detached' });
    assert.equal(await page.getByTestId('item').count(), 2);
    assert.equal(backendCount((e) => e.method === 'PUT'), 2);
    assert.equal(backendCount((e) => e.method === 'DELETE'), 1);
    await shot('04-items-edited');
    step('items added, edited, deleted');

    // 5. Invalid input: frontgate refuses it (validation_failed) and the message sits beside
    // the field. The backend never sees the request.
    const before = backendCount((e) => e.method === 'POST');
    await page.fill('#title', '   ');
    await page.fill('#note', 'x'.repeat(501));
    await page.getByRole('button', { name: 'Add item' }).click();
    await page.locator('#title-error').waitFor();
    assert.equal(await page.locator('#title').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#title-error').innerText(), 'This field cannot be empty.');
    assert.equal(await page.locator('#note-error').innerText(), 'This is too long.');
    assert.match(await page.getByTestId('page-error').innerText(), /check the highlighted fields/);
    await shot('05-validation');
    assert.equal(backendCount((e) => e.method === 'POST'), before, 'an invalid item reached the backend');
    await page.fill('#title', '');
    await page.fill('#note', '');
    step('invalid input refused beside the fields');

    // 6. Another site (same site, another origin: the Lax cookie goes along) forges a fetch
    // with credentials, a form POST and a WebSocket. All refused; nothing reaches the backend.
    const tls = { cert: readFileSync(join(TLS_DIR, 'self-signed.crt')), key: readFileSync(join(TLS_DIR, 'self-signed.key')) };
    const evil = createServer(tls, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>Win a prize</title><h1>Totally unrelated site</h1><pre id="out"></pre>');
    });
    await new Promise((r) => evil.listen(0, '127.0.0.1', r));
    const ATTACKER = `https://127.0.0.1:${evil.address().port}`;
    const attacker = await context.newPage();
    await attacker.goto(`${ATTACKER}/`);
    const backendBefore = backendLog().length;
    const forged = await attacker.evaluate(async (fg) => {
      const out = {};
      try {
        const r = await fetch(`${fg}/api/items`, { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json', 'X-Frontgate-CSRF': '1' }, body: '{"title":"forged by fetch"}' });
        out.fetch = { status: r.status, body: await r.text() };
      } catch (e) {
        out.fetch = { error: String(e) };
      }
      try {
        await fetch(`${fg}/api/items`, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: '{"title":"forged simple"}' });
        out.simple = 'sent (opaque)';
      } catch (e) {
        out.simple = String(e);
      }
      out.ws = await new Promise((resolve) => {
        const ws = new WebSocket(`${fg.replace('https', 'wss')}/api/live`);
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('error');
        setTimeout(() => resolve('timeout'), 5000);
      });
      document.getElementById('out').textContent = `What this page's script got from the app's API:\n${JSON.stringify(out, null, 2)}`;
      return out;
    }, FG);
    step(`forged: ${JSON.stringify(forged)}`);
    // The CORS-protected read fails in the browser (no CORS for that origin: the preflight is
    // refused, so the POST is never sent); the WebSocket never opens.
    assert.ok(forged.fetch.error || forged.fetch.status === 403, JSON.stringify(forged.fetch));
    assert.equal(forged.ws, 'error');
    await shot('06-forged-requests', attacker);
    // A plain HTML form posting to the API (a top-level navigation carries the Lax cookie).
    await attacker.setContent(`<form method="POST" action="${FG}/api/items" enctype="text/plain"><input name='{"title":"forged form","x":"' value='"}'></form>`);
    const [formResp] = await Promise.all([attacker.waitForNavigation(), attacker.evaluate(() => document.forms[0].submit())]);
    assert.equal(formResp.status(), 403, `form POST: ${formResp.status()}`);
    assert.match((await formResp.json()).code, /^(origin_denied|csrf_failed)$/);
    const reached = backendLog().slice(backendBefore);
    assert.deepEqual(reached, [], `forged requests reached the backend: ${JSON.stringify(reached)}`);
    await attacker.close();
    evil.close();
    step('forged fetch, form POST and WebSocket refused');

    // 7. A request copied from the network tab, replayed with curl.
    const copied = { 'Content-Type': 'application/json', Accept: 'application/json' };
    let r = curl('POST', '/api/items', { headers: { ...copied, 'X-Frontgate-CSRF': '1' }, body: '{"title":"replayed"}' });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.body.code, 'unauthenticated');
    r = curl('POST', '/api/items', { headers: { ...copied, Cookie: `${SESSION_COOKIE}=${cookie.value}` }, body: '{"title":"replayed"}' });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.body.code, 'csrf_failed');
    assert.equal(backendCount((e) => e.method === 'POST' && e.path === '/api/items'), 3, 'a replayed POST reached the backend');
    // Undeclared API paths do not exist: a 404 problem, to curl and to the browser alike.
    r = curl('GET', '/api/admin/users', { headers: { Cookie: `${SESSION_COOKIE}=${cookie.value}` } });
    assert.equal(r.status, 404);
    assert.equal(r.body.code, 'route_not_found');
    const nav = await page.goto(`${FG}/api/admin/users`);
    assert.equal(nav.status(), 404);
    assert.equal(nav.headers()['content-type'], 'application/problem+json');
    await page.goto(`${FG}/`);
    await page.getByTestId('user').waitFor();
    assert.equal(backendCount((e) => e.path.startsWith('/api/admin')), 0);
    step('curl replays refused; undeclared path is a 404 problem');

    // 8. The contact form: proof of work solved in the page, sent once in X-Frontgate-Pow.
    await page.getByRole('link', { name: 'Contact' }).click();
    const solutions = [];
    page.on('request', (req) => {
      const pow = req.headers()['x-frontgate-pow'];
      if (pow) solutions.push({ pow, body: req.postData() });
    });
    await page.fill('#name', 'Ada');
    await page.fill('#email', 'ada@example.test');
    await page.fill('#message', 'Hello! Is there a team plan?');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('contact-status').filter({ hasText: 'Thank you' }).waitFor();
    await shot('07-contact-sent');
    assert.equal(solutions.length, 1);
    assert.equal(backendCount((e) => e.path === '/api/contact'), 1);
    // The same solution replayed (without the clearance cookie the first answer set): refused.
    r = curl('POST', '/api/contact', { headers: { 'Content-Type': 'application/json', 'X-Frontgate-Pow': solutions[0].pow }, body: solutions[0].body });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.body.code, 'challenge_failed');
    assert.equal(backendCount((e) => e.path === '/api/contact'), 1, 'the replayed solution reached the backend');
    step('proof of work solved in the page; replay refused');

    // 9. The rate limit on the contact form: the friendly message, with the wait.
    let limited = '';
    for (let i = 0; i < 12 && !limited; i++) {
      await page.fill('#name', 'Ada');
      await page.fill('#email', 'ada@example.test');
      await page.fill('#message', `Hello again (${i})`);
      await page.getByRole('button', { name: 'Send' }).click();
      await page.waitForFunction(() => !document.querySelector('form[aria-label=Contact] button[type=submit]').disabled);
      const err = page.getByTestId('contact-error');
      if (await err.count()) limited = await err.innerText();
    }
    assert.match(limited, /^Too many attempts\. Please wait \d+ seconds? and try again\.$/, limited);
    await shot('08-rate-limited');
    step(`rate limited: ${limited}`);

    // 10. API keys: mint one in the UI, use it from curl, revoke it in the UI.
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('heading', { name: 'API keys' }).waitFor();
    await page.fill('#key-name', 'backup script');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = await page.getByTestId('new-key-value').innerText();
    assert.match(key, /^fgk_[A-Za-z0-9]{36}$/);
    await page.getByTestId('key-row').filter({ hasText: 'backup script' }).waitFor();
    await shot('09-api-key-minted');
    r = curl('GET', '/api/export/items', { headers: { 'X-API-Key': key } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.items.map((i) => i.title).sort(), ['Buy oat milk', 'Water the plants']);
    assert.equal(r.body.items[0].owner, undefined);
    const exported = backendLog().filter((e) => e.path === '/api/export/items');
    assert.equal(exported.length, 1);
    assert.equal(exported[0].subject, USER, 'the key acts as its owner');
    assert.ok(exported[0].key_id, 'the backend is told which key');
    // The key is scoped: the session-only routes do not take it.
    r = curl('GET', '/api/items', { headers: { 'X-API-Key': key, Accept: 'application/json' } });
    assert.equal(r.status, 401, r.text);
    const row = page.getByTestId('key-row').filter({ hasText: 'backup script' });
    // Timed from the moment the revoke's answer reaches the page to curl's refusal.
    const [revoked] = await Promise.all([
      page.waitForResponse((res) => res.request().method() === 'DELETE' && res.url().includes('/.frontgate/keys/')),
      row.getByRole('button', { name: 'Revoke' }).click(),
    ]);
    assert.equal(revoked.status(), 204);
    const revokedAt = Date.now();
    r = curl('GET', '/api/export/items', { headers: { 'X-API-Key': key } });
    const took = Date.now() - revokedAt;
    await row.getByText('revoked').waitFor();
    assert.equal(r.status, 401, r.text);
    assert.equal(r.body.code, 'api_key_revoked');
    assert.ok(took < 1000, `refused ${took} ms after the revoke`);
    await shot('10-api-key-revoked');
    assert.equal(backendCount((e) => e.path === '/api/export/items'), 1);
    step(`key revoked; refused after ${took} ms`);

    // 11. Sign out: the session ends here and at the IdP; the old cookie is worth nothing.
    await page.getByRole('link', { name: 'My items' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.href.startsWith(IDP));
    await page.locator('button[autofocus], button[type=submit]').first().click();
    await page.waitForURL(`${FG}/`);
    await page.getByRole('heading', { name: 'Welcome' }).waitFor();
    await shot('11-signed-out');
    r = curl('GET', '/api/items', { headers: { Cookie: `${SESSION_COOKIE}=${cookie.value}`, Accept: 'application/json' } });
    assert.equal(r.status, 401, r.text);
    step('signed out');

    // 12. Back-channel logout: signed in again, the user signs out at the IdP itself (another
    // tab); the IdP tells frontgate, and the app's next request finds the session gone.
    await signIn();
    const second = await sessionCookie();
    assert.notEqual(second.value, cookie.value);
    const idpTab = await context.newPage();
    await idpTab.goto(`${IDP}/session/end`);
    await idpTab.locator('button[autofocus], button[type=submit]').first().click();
    await idpTab.waitForLoadState('load');
    await idpTab.close();
    // The app tab was left open; its next request is refused and it offers to sign in.
    await page.fill('#title', 'After the IdP logout');
    await page.getByRole('button', { name: 'Add item' }).click();
    await page.getByTestId('session-ended').waitFor();
    await shot('12-idp-logout');
    // Not covered: the live-updates WebSocket opened before the logout stays open (frontgate
    // checks the session at the handshake only; docs/guarantees.md says so).
    assert.equal(await page.locator('.pill', { hasText: 'live' }).count(), 1);
    r = curl('GET', '/api/items', { headers: { Cookie: `${SESSION_COOKIE}=${second.value}`, Accept: 'application/json' } });
    assert.equal(r.status, 401, r.text);
    assert.equal(backendCount((e) => e.method === 'POST' && e.path === '/api/items'), 3);
    step('back-channel logout ended the session');
  } else if (scenario === 'expiry') {
    // The session expires while the user types (short session_idle); the app keeps the draft,
    // sends them through sign-in, and the draft is still there afterwards.
    await signIn();
    await addItem('First');
    await page.fill('#title', 'Half-typed thought');
    await page.fill('#note', 'that must not be lost');
    const idle = Number(process.env.IDLE_SECONDS || 5);
    await page.waitForTimeout((idle + 1.5) * 1000);
    await page.getByRole('button', { name: 'Add item' }).click();
    await page.getByTestId('session-ended').waitFor();
    assert.match(await page.getByTestId('page-error').innerText(), /session has ended/);
    await shot('13-session-expired');
    assert.equal(backendCount((e) => e.method === 'POST' && e.path === '/api/items'), 1);
    // Sign in again: the IdP still knows the user (no password asked), frontgate makes a new
    // session, and the browser comes back to the same page with the draft in place.
    await page.getByTestId('session-ended').getByRole('link', { name: 'Sign in again' }).click();
    await page.waitForURL((u) => u.href.startsWith(FG) && !u.pathname.startsWith('/.frontgate'));
    await page.getByTestId('user').waitFor();
    assert.equal(await page.inputValue('#title'), 'Half-typed thought');
    assert.equal(await page.inputValue('#note'), 'that must not be lost');
    await shot('14-draft-kept');
    await page.getByRole('button', { name: 'Add item' }).click();
    await page.getByTestId('item').filter({ hasText: 'Half-typed thought' }).waitFor();
    assert.equal(await page.inputValue('#title'), '');
    assert.equal(backendCount((e) => e.method === 'POST' && e.path === '/api/items'), 2);
    step('expired session recovered without losing the draft');
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  process.stdout.write(`${JSON.stringify({ ok: true, scenario, seconds: (Date.now() - t0) / 1000 })}\n`);
} catch (e) {
  if (page) await page.screenshot({ path: join(SHOTS, `failed-${scenario}.png`) }).catch(() => {});
  throw e;
} finally {
  await browser.close();
}
