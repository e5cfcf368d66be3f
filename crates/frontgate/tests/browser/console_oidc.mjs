// Drives the admin console's OIDC sign-in ([admin.oidc], docs/console.md) in headless Chromium
// against the real oidc-provider fixture, for tests/it/console.rs:
//
//   node console_oidc.mjs
//
// 1. ALLOWED (an account whose `groups` claim holds the allowed value) clicks "Sign in with
//    <provider>", signs in at the IdP and lands in the console, signed in; the session's actor
//    names it; the callback URL is kept.
// 2. That callback URL, replayed in the same browser, is refused (single-use state).
// 3. REFUSED (an account without the value), in a fresh browser, is refused with a page saying
//    why, and gets no console session.
//
// Environment: ADMIN (the admin listener's origin, as [admin.oidc] origin says), IDP (the
// issuer), ALLOWED, REFUSED (account names), CHROMIUM.
// The last stdout line is JSON: the allowed session's cookie and CSRF token, for the Rust side.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const { ADMIN, IDP, ALLOWED, REFUSED } = process.env;
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let browser;
let page;
setTimeout(() => {
  process.stderr.write(`console OIDC scenario timed out at ${page?.url()}\n`);
  browser?.process()?.kill('SIGKILL');
  process.exit(3);
}, 120_000).unref();
const step = (what) => process.stderr.write(`step: ${what}\n`);
const out = {};

// The IdP's dev login form (any password works).
async function signInAtIdp(user) {
  await page.waitForURL((u) => u.href.startsWith(`${IDP}/interaction/`));
  const loginUrl = page.url();
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', 'any-password');
  await page.click('button[type=submit]');
  for (let i = 0; i < 400; i++) {
    const url = page.url();
    if (url.startsWith(ADMIN) || url.startsWith('chrome-error:')) return;
    if (url.startsWith(`${IDP}/interaction/`) && url !== loginUrl) {
      try {
        if ((await page.locator('input[name=login]').count()) === 0 && (await page.locator('button[type=submit]').count()) > 0) {
          await page.click('button[type=submit]');
          return;
        }
      } catch {
        // navigating: look again
      }
    }
    await page.waitForTimeout(25);
  }
  throw new Error(`sign-in did not finish; at ${page.url()}`);
}

// A fresh browser (no IdP session, no cookies) on the console's sign-in page; records the
// callback URLs it is sent to and the status they answered.
async function fresh() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  page = await context.newPage();
  const callbacks = [];
  page.on('response', (r) => {
    if (r.url().startsWith(`${ADMIN}/console/oidc/callback`)) callbacks.push({ url: r.url(), status: r.status() });
  });
  page.on('pageerror', (e) => process.stderr.write(`  page error: ${e}\n`));
  const csp = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) csp.push(m.text());
  });
  await page.goto(`${ADMIN}/console/`);
  await page.waitForSelector('#signin:not([hidden])');
  await page.waitForSelector('#oidc-signin:not([hidden])');
  return { context, callbacks, csp };
}

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
});
try {
  step('the sign-in page offers the identity provider');
  const a = await fresh();
  const label = await page.textContent('#oidc-link');
  assert.equal(label, `Sign in with ${new URL(IDP).host}`);
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const res = await axe.run(document, { resultTypes: ['violations'] });
    return res.violations.map((v) => ({ id: v.id, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  assert.deepEqual(violations, [], `axe violations: ${JSON.stringify(violations)}`);

  step(`${ALLOWED} signs in through the identity provider`);
  await page.click('#oidc-link');
  await signInAtIdp(ALLOWED);
  await page.waitForSelector('#keys-table table');
  assert.equal(new URL(page.url()).pathname, '/console/');
  assert.equal(a.callbacks.length, 1, JSON.stringify(a.callbacks));
  assert.equal(a.callbacks[0].status, 303);
  const cookies = await a.context.cookies(ADMIN);
  const session = cookies.find((c) => c.name === 'frontgate_console');
  assert.ok(session, 'a console session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.ok(!(await a.context.cookies()).some((c) => c.name === 'frontgate_console_login'), 'the login cookie is cleared');
  const me = await page.evaluate(async () => (await fetch('/admin/v1/console/session')).json());
  assert.equal(me.actor, `oidc:${ALLOWED}`);
  out.cookie = `frontgate_console=${session.value}`;
  out.csrf = me.csrf;
  out.actor = me.actor;
  assert.deepEqual(a.csp, [], 'no CSP violations');

  step('the same callback again is refused: its state was used');
  const replay = await page.goto(a.callbacks[0].url);
  assert.equal(replay.status(), 401);
  assert.match(await page.textContent('#oidc-error'), /unknown, expired or already used/);
  out.replayStatus = replay.status();
  await a.context.close();

  step(`${REFUSED} signs in at the identity provider but holds no allowed group`);
  const b = await fresh();
  await page.click('#oidc-link');
  await signInAtIdp(REFUSED);
  await page.waitForURL((u) => u.href.startsWith(`${ADMIN}/console/oidc/callback`));
  await page.waitForSelector('#oidc-error');
  assert.equal(b.callbacks.length, 1, JSON.stringify(b.callbacks));
  assert.equal(b.callbacks[0].status, 403);
  assert.match(await page.textContent('#oidc-error'), /does not hold an allowed value in the claim `groups`/);
  const after = await b.context.cookies(ADMIN);
  assert.ok(!after.some((c) => c.name === 'frontgate_console'), 'no console session');
  const keys = await page.evaluate(async () => (await fetch('/admin/v1/keys')).status);
  assert.equal(keys, 401);
  out.refusedStatus = b.callbacks[0].status;
  await b.context.close();

  process.stdout.write(`${JSON.stringify(out)}\n`);
} catch (e) {
  const text = await page?.evaluate(() => document.querySelector('main')?.innerText).catch(() => '');
  process.stderr.write(`--- the page at ${page?.url()}\n${text}\n`);
  throw e;
} finally {
  await browser.close();
}
