// Drives the admin console (docs/console.md) in headless Chromium (the Debian package), for
// tests/it/console.rs: sign-in and its cookie, keys (create, use through the gateway with curl,
// revoke, see the gateway refuse it; rotate with a grace period), the refusal in the traffic
// view, ending a browser session, the config view and reload, CSRF, keyboard-only sign-in, a
// phone-sized screen, sign-out, and the sign-in rate limit; axe-core on every view.
//
//   node console.mjs
//
// Environment: ADMIN (the admin listener's origin), TOKEN (the admin token), FG (the gateway's
// origin), KEYED (a path on an api_key route with scope items:read), SESSION (a browser
// session's Cookie header value for FG), SESSION_PATH (a path on a session route), SUBJECT
// (that session's subject), CONFIG_PATH (the gateway's config file, for the reload step),
// SHOTS (a directory for screenshots), CHROMIUM.
// Exit code 0 means every assertion held; the last stdout line is a JSON summary.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const { ADMIN, TOKEN, FG, KEYED, SESSION, SESSION_PATH, SUBJECT, SHOTS, CONFIG_PATH } = process.env;
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let browser;
let page;
setTimeout(() => {
  process.stderr.write(`console scenario timed out at ${page?.url()}\n`);
  browser?.process()?.kill('SIGKILL');
  process.exit(3);
}, 150_000).unref();
const step = (what) => process.stderr.write(`step: ${what}\n`);
mkdirSync(SHOTS, { recursive: true });
const out = { axe: {} };

// curl against the gateway (its certificate, if any, is self-signed): the status code.
function curl(path, headers) {
  const args = ['-s', '-k', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10'];
  for (const h of headers) args.push('-H', h);
  args.push(`${FG}${path}`);
  return Number(execFileSync('curl', args, { encoding: 'utf8' }));
}

// axe-core on the page as it is now: no violations at all (WCAG 2.x A and AA rules and best
// practices; colour contrast included).
async function axe(name) {
  // Evaluated through the DevTools protocol: the console's CSP (rightly) refuses inline scripts.
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const r = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const res = await axe.run(document, { resultTypes: ['violations'] });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  out.axe[name] = r.length;
  assert.deepEqual(r, [], `axe violations on ${name}: ${JSON.stringify(r, null, 1)}`);
}

async function shot(name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ADMIN });
  page = await context.newPage();
  page.on('response', (r) => {
    if (r.url().includes('/admin/v1/')) process.stderr.write(`  ${r.request().method()} ${r.url().replace(ADMIN, '')} -> ${r.status()}\n`);
  });
  page.on('pageerror', (e) => process.stderr.write(`  page error: ${e}\n`));
  const cspViolations = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
  });

  step('the page and its headers');
  const resp = await page.goto(`${ADMIN}/console/`);
  const h = resp.headers();
  assert.match(h['content-security-policy'], /default-src 'self'/);
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.doesNotMatch(h['content-security-policy'], /unsafe/);
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.equal(h['x-frame-options'], 'DENY');
  await page.waitForSelector('#signin:not([hidden])');
  await axe('sign-in');
  await shot('sign-in');

  step('a wrong token is refused');
  await page.fill('#token', 'not-the-token');
  await page.click('#signin-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#signin-error').textContent.includes('not the admin token'));
  assert.equal(await page.inputValue('#token'), '', 'the field is cleared');

  step('sign in');
  await page.fill('#token', TOKEN);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#keys-table table');
  const cookies = await context.cookies(ADMIN);
  const session = cookies.find((c) => c.name === 'frontgate_console');
  assert.ok(session, 'a console session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.equal(stored, '{}{}', 'nothing in web storage, and the cookie is not readable by scripts');
  await axe('keys');

  step('create a key, copy it, use it through the gateway with curl');
  await page.fill('#key-name', 'console-test');
  await page.fill('#key-subject', 'svc-console');
  await page.fill('#key-scopes', 'items:read');
  await page.click('#create-form button[type=submit]');
  await page.waitForSelector('#secret-key');
  const key = (await page.textContent('#secret-key')).trim();
  assert.match(key, /\S{20,}/);
  await page.click('#secret button:has-text("Copy key")');
  await page.waitForFunction(() => document.querySelector('#secret [role=status]').textContent === 'Copied.');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
  await axe('key-created');
  await shot('keys-created');
  assert.equal(curl(KEYED, [`Authorization: Bearer ${key}`]), 200, 'the new key works');
  await page.waitForSelector('#keys-table tr[data-id] >> text=console-test');

  step('rotate a second key with a grace period: old and new both work');
  await page.fill('#key-name', 'console-rotated');
  await page.fill('#key-subject', 'svc-console');
  await page.fill('#key-scopes', 'items:read');
  await page.click('#create-form button[type=submit]');
  await page.waitForSelector('#secret-key');
  const old = (await page.textContent('#secret-key')).trim();
  await page.waitForSelector('#keys-table button[aria-label="Rotate console-rotated"]');
  await page.click('#keys-table button[aria-label="Rotate console-rotated"]');
  await page.fill('#rotate-grace', '1h');
  await page.click('#rotate-form button[type=submit]');
  await page.waitForSelector('#secret h2:has-text("the new key")');
  const rotated = (await page.textContent('#secret-key')).trim();
  assert.notEqual(rotated, old);
  assert.equal(curl(KEYED, [`Authorization: Bearer ${rotated}`]), 200, 'the new key works');
  assert.equal(curl(KEYED, [`Authorization: Bearer ${old}`]), 200, 'the old key works in its grace period');
  await page.waitForSelector('#keys-table tr[data-id] td.status-rotating');

  step('filters');
  await page.fill('#f-owner', 'nobody-has-this');
  await page.waitForSelector('#keys-table caption:has-text("0 of")');
  await page.fill('#f-owner', 'svc-console');
  await page.selectOption('#f-status', 'active');
  await page.waitForSelector('#keys-table tr[data-id] >> text=console-test');

  step('show, then revoke with a reason; the gateway refuses the key');
  await page.click('#keys-table button[aria-label="Show console-test"]');
  await page.waitForSelector('#key-detail >> text=api_key.create');
  await page.click('#keys-table button[aria-label="Revoke console-test"]');
  await page.fill('#revoke-reason', 'console test: leaked');
  await page.click('#revoke-form button[type=submit]');
  await page.waitForSelector('#revoked');
  const revokedStatus = curl(KEYED, [`Authorization: Bearer ${key}`]);
  assert.equal(revokedStatus, 401, 'the revoked key is refused');
  out.revokedStatus = revokedStatus;

  step('the refusal appears in the traffic view within a few seconds');
  await page.click('nav a[data-view=traffic]');
  const started = Date.now();
  await page.waitForSelector('#recent-refusals td:has-text("api_key_revoked")', { timeout: 15_000 });
  out.trafficSeconds = (Date.now() - started) / 1000;
  // The revoked key exists, so its refusal names it and its owner.
  await page.waitForSelector('#top-keys td');
  await page.waitForSelector('#top-subjects td:has-text("svc-console")');
  await page.waitForSelector('#chart-refusals');
  await page.waitForSelector('#pow-routes td:has-text("POST /signup")');
  assert.equal(await page.textContent('#pow-routes tbody tr td:nth-child(3)'), '1 of 2', 'a quiet route is at the first level');
  await axe('traffic');
  await shot('traffic');

  step('end the browser session; the gateway refuses it on its next request');
  assert.equal(curl(SESSION_PATH, [`Cookie: ${SESSION}`, 'Accept: application/json']), 200, 'the session works before');
  await page.click('nav a[data-view=sessions]');
  await page.fill('#s-subject', SUBJECT);
  await page.click('#sessions-form button[type=submit]');
  await page.waitForSelector('#sessions-out tr[data-id]');
  await axe('sessions');
  await shot('sessions');
  await page.click('#end-all');
  await page.waitForFunction(() => /Ended [1-9]\d* sessions/.test(document.querySelector('#sessions-status').textContent));
  const ended = curl(SESSION_PATH, [`Cookie: ${SESSION}`, 'Accept: application/json']);
  assert.equal(ended, 401, 'the ended session is refused');

  step('CSRF: a state-changing call without the header is refused, the same with it passes');
  const csrf = await page.evaluate(async () => {
    const post = (headers) => fetch('/admin/v1/keys', {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ name: 'csrf-probe' }),
    });
    const without = await post({});
    const wrong = await post({ 'x-frontgate-csrf': 'wrong' });
    const s = await (await fetch('/admin/v1/console/session')).json();
    const right = await post({ 'x-frontgate-csrf': s.csrf });
    return { without: without.status, wrong: wrong.status, code: (await wrong.json()).code, right: right.status };
  });
  assert.deepEqual(csrf, { without: 403, wrong: 403, code: 'csrf_failed', right: 201 });

  step('config: redacted, reload applied, a broken file refused with its errors');
  await page.click('nav a[data-view=config]');
  await page.waitForSelector('#config-text:has-text("redacted")');
  const configText = await page.textContent('#config-text');
  assert.ok(!configText.includes(TOKEN), 'the admin token is not shown');
  await axe('config');
  await page.click('#reload');
  await page.waitForSelector('#reload-result .ok:has-text("applied")');
  const good = readFileSync(CONFIG_PATH, 'utf8');
  writeFileSync(CONFIG_PATH, `${good}\n[[routes]]\nmatch = "/nowhere"\nno_such_key = 1\n`);
  try {
    await page.click('#reload');
    await page.waitForSelector('#reload-result .error:has-text("refused")');
    assert.match(await page.textContent('#reload-result pre'), /no_such_key/);
  } finally {
    writeFileSync(CONFIG_PATH, good);
  }
  await shot('config');
  assert.equal(curl(KEYED, [`Authorization: Bearer ${rotated}`]), 200, 'the running config still serves');

  step('a phone-sized screen');
  await page.setViewportSize({ width: 375, height: 740 });
  await page.click('nav a[data-view=keys]');
  await page.waitForSelector('#keys-table table');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);
  await axe('keys-phone');
  await shot('keys-phone');
  await page.setViewportSize({ width: 1100, height: 800 });

  step('sign out; the cookie no longer works');
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])');
  const after = await page.evaluate(async () => (await fetch('/admin/v1/keys')).status);
  assert.equal(after, 401);

  step('keyboard only: sign in with Tab, typing and Enter');
  await page.goto(`${ADMIN}/console/`);
  await page.waitForSelector('#signin:not([hidden])');
  for (let i = 0; i < 10 && !(await page.evaluate(() => document.activeElement?.id === 'token')); i++) {
    await page.keyboard.press('Tab');
  }
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'token', 'Tab reaches the token field');
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#keys-table table');
  // The nav is reachable and works from the keyboard.
  await page.focus('nav a[data-view=traffic]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#traffic-out h2');
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])');

  step('wrong tokens from one address are rate limited, then even the right one waits');
  const statuses = await page.evaluate(async (token) => {
    const s = [];
    const signIn = (t) => fetch('/admin/v1/console/session', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t }),
    });
    for (let i = 0; i < 6; i++) s.push((await signIn(`wrong-${i}`)).status);
    const right = await signIn(token);
    s.push(right.status, right.headers.get('retry-after'));
    return s;
  }, TOKEN);
  // One wrong sign-in happened above, through the form.
  assert.deepEqual(statuses.slice(0, 4), [401, 401, 401, 401]);
  assert.deepEqual(statuses.slice(4, 7), [429, 429, 429]);
  assert.ok(Number(statuses[7]) > 0, `Retry-After: ${statuses[7]}`);
  await page.fill('#token', TOKEN);
  await page.click('#signin-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#signin-error').textContent.includes('Too many wrong tokens'));
  await shot('rate-limited');

  assert.deepEqual(cspViolations, [], 'no CSP violations');
  process.stdout.write(`${JSON.stringify(out)}\n`);
} catch (e) {
  // What the page showed, to explain the failure.
  const text = await page?.evaluate(() => document.querySelector('main')?.innerText).catch(() => '');
  process.stderr.write(`--- the page at ${page?.url()}\n${text}\n`);
  throw e;
} finally {
  await browser.close();
}
