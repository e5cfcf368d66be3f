// Drives headless Chromium (the Debian package) through frontgate's OIDC login against the real
// oidc-provider fixture, for tests/it/sessions.rs. One scenario per run:
//
//   node sessions.mjs SCENARIO
//
// Environment: FG (frontgate's origin, e.g. http://127.0.0.1:PORT), IDP (the issuer),
// ATTACKER (another loopback origin serving attack.html), STATE (a storage-state file),
// CHROMIUM (the browser binary, default /usr/bin/chromium), FG_USER (who logs in, scenario
// login-save; default dave).
// Browser-side facts are asserted here (node:assert); facts the Rust side needs (cookie values)
// are printed as one JSON line on stdout. Exit code 0 means every assertion held.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

const { FG, IDP, ATTACKER, STATE } = process.env;
const scenario = process.argv[2];
const SESSION_COOKIE = '__Host-frontgate';
const LOGIN_COOKIE_PREFIX = '__Host-frontgate-login-';

// Never hang a test run: a scenario that has not finished in 90 s fails. Chromium is killed
// first: its processes inherit this script's stdout, and the test reads that to its end.
let browser;
let page;
setTimeout(() => {
  process.stderr.write(`scenario ${scenario} timed out at ${page?.url()}\n`);
  browser?.process()?.kill('SIGKILL');
  process.exit(3);
}, 90_000).unref();
const step = (what) => process.stderr.write(`step: ${what}\n`);

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
});
const context = await browser.newContext(STATE && existsSync(STATE) ? { storageState: STATE } : {});
page = await context.newPage();
const out = {};

async function sessionCookie() {
  const cookies = await context.cookies(FG);
  return cookies.find((c) => c.name === SESSION_COOKIE);
}

// The IdP's dev login form (any login works), then its consent form when asked (offline_access).
async function signInAtIdp(user, p = page) {
  await p.waitForURL((u) => u.href.startsWith(`${IDP}/interaction/`));
  const loginUrl = p.url();
  await p.fill('input[name=login]', user);
  await p.fill('input[name=password]', 'any-password');
  await p.click('button[type=submit]');
  for (let i = 0; i < 400; i++) {
    const url = p.url();
    if (url.startsWith(FG) || url.startsWith('chrome-error:')) return;
    if (url.startsWith(`${IDP}/interaction/`) && url !== loginUrl) {
      try {
        if ((await p.locator('input[name=login]').count()) === 0 && (await p.locator('button[type=submit]').count()) > 0) {
          await p.click('button[type=submit]');
          return;
        }
      } catch {
        // navigating: look again
      }
    }
    await p.waitForTimeout(25);
  }
  throw new Error(`sign-in did not finish; at ${p.url()}`);
}

// The started logins this browser holds (one cookie each).
async function loginCookies() {
  return (await context.cookies(FG)).filter((c) => c.name.startsWith(LOGIN_COOKIE_PREFIX));
}

// Starts a login at `path`, signs in, answers the IdP's consent form by hand and follows its
// redirects up to, not into, frontgate's callback: the callback URL with an unredeemed code.
async function captureCallback(user, path) {
  await page.goto(`${FG}${path}`);
  await page.waitForURL((u) => u.href.startsWith(`${IDP}/interaction/`));
  const loginUrl = page.url();
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', 'any-password');
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.href.startsWith(`${IDP}/interaction/`) && u.href !== loginUrl);
  await page.waitForSelector('form button[type=submit]');
  const action = await page.locator('form').first().getAttribute('action');
  const fields = await page.evaluate(() => Object.fromEntries(new FormData(document.forms[0])));
  let resp = await page.request.post(new URL(action, IDP).href, { form: fields, maxRedirects: 0 });
  for (let i = 0; i < 5; i++) {
    const location = resp.headers().location;
    assert.ok(location, `redirect expected, got ${resp.status()}`);
    const next = new URL(location, IDP).href;
    if (next.startsWith(`${FG}/.frontgate/callback`)) return next;
    resp = await page.request.get(next, { maxRedirects: 0 });
  }
  throw new Error('no callback URL');
}

// Navigates to a protected page without a session: frontgate redirects to its login, which
// redirects to the IdP; after sign-in the browser lands back on `path`.
async function login(user, path) {
  const authorizeUrls = [];
  page.on('request', (r) => {
    if (r.url().startsWith(`${IDP}/auth`)) authorizeUrls.push(r.url());
  });
  await page.goto(`${FG}${path}`);
  await signInAtIdp(user);
  await page.waitForURL(`${FG}${path}`);
  return authorizeUrls;
}

// fetch() from a page on frontgate's origin.
async function fetchJson(path, init = {}) {
  return page.evaluate(async ({ path, init }) => {
    const r = await fetch(path, { credentials: 'same-origin', redirect: 'manual', ...init });
    const text = await r.text();
    let body = null;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: r.status, type: r.type, contentType: r.headers.get('content-type'), body };
  }, { path, init });
}

try {
  if (scenario === 'login') {
    // Session fixation: a cookie planted before login is not the session after it.
    await page.goto(`${FG}/.frontgate/problems/unauthenticated`);
    await page.evaluate((v) => { document.cookie = `__Host-frontgate=${v}; Path=/; Secure; SameSite=Lax`; }, 'A'.repeat(43));
    assert.equal((await sessionCookie())?.value, 'A'.repeat(43), 'planted cookie');
    const authorize = await login('alice', '/echo/home?tab=1');
    const u = new URL(authorize[0]);
    assert.equal(u.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(u.searchParams.get('code_challenge')?.length >= 43);
    assert.ok(u.searchParams.get('state')?.length >= 43);
    assert.ok(u.searchParams.get('nonce')?.length >= 43);
    assert.equal(u.searchParams.get('response_type'), 'code');
    const cookie = await sessionCookie();
    assert.ok(cookie, 'session cookie set');
    assert.notEqual(cookie.value, 'A'.repeat(43), 'fresh session id at login');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/');
    // The page we landed on is the upstream's echo of the navigation.
    const echo = JSON.parse(await page.locator('body').innerText());
    assert.equal(echo.headers['x-frontgate-subject'][0], 'alice');
    assert.match(echo.headers.authorization[0], /^Bearer .+/);
    assert.ok(!JSON.stringify(echo.headers.cookie || []).includes(SESSION_COOKIE), 'session cookie not forwarded');
    // The SPA: who am I, an API call, a write with the CSRF header.
    const who = await fetchJson('/.frontgate/session');
    assert.equal(who.status, 200);
    assert.equal(who.body.claims.sub, 'alice');
    assert.equal(who.body.claims.email, 'alice@example.test');
    assert.ok(who.body.expires_at > Date.now() / 1000);
    assert.equal(who.body.access_token, undefined, 'no token reaches the browser');
    const api = await fetchJson('/echo/items', { headers: { Accept: 'application/json' } });
    assert.equal(api.status, 200);
    const write = await fetchJson('/echo/items', { method: 'POST', headers: { 'X-Frontgate-CSRF': '1', 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(write.status, 200, JSON.stringify(write));
    const noHeader = await fetchJson('/echo/items', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(noHeader.status, 403);
    assert.equal(noHeader.body.code, 'csrf_failed');
    out.cookie = cookie.value;
    out.access_token = echo.headers.authorization[0].slice('Bearer '.length);
    // Logout: the session ends here, and the browser is sent to the IdP's end-session endpoint.
    const logout = await fetchJson('/.frontgate/logout', { method: 'POST', headers: { Accept: 'application/json' } });
    assert.equal(logout.status, 200);
    assert.ok(logout.body.logout_url.startsWith(`${IDP}/`), logout.body.logout_url);
    assert.ok(logout.body.logout_url.includes('id_token_hint='));
    const after = await fetchJson('/echo/items', { headers: { Accept: 'application/json' } });
    assert.equal(after.status, 401);
    assert.equal(after.body.code, 'unauthenticated');
  } else if (scenario === 'attacks') {
    // Sign in, then answer the IdP's consent form by hand and follow its redirects up to, not
    // into, frontgate's callback: an unredeemed code, as an attacker who intercepted it has.
    step('navigate');
    const callback = await captureCallback('mallory', '/echo/home');
    step(`callback captured: ${callback}`);
    const cb = new URL(callback);
    assert.ok(cb.searchParams.get('code'));
    const tampered = new URL(cb);
    tampered.searchParams.set('state', 'B'.repeat(43));
    let r = await page.goto(tampered.href);
    assert.equal(r.status(), 401);
    assert.equal((await r.json()).code, 'unauthenticated');
    step('state mismatch refused');
    // Missing PKCE: the code alone, redeemed without the verifier only frontgate holds.
    const token = await fetch(`${IDP}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('frontgate:frontgate-test-secret-0123456789abcdef').toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: cb.searchParams.get('code'), redirect_uri: `${FG}/.frontgate/callback` }),
    });
    assert.equal(token.status, 400);
    assert.equal((await token.json()).error, 'invalid_grant');
    step('code without verifier refused');
    assert.equal(await sessionCookie(), undefined, 'no session from the tampered callback');
    // The genuine callback still works (the code was useless without the verifier) ...
    r = await page.goto(callback);
    assert.equal(r.status(), 200);
    assert.equal(page.url(), `${FG}/echo/home`);
    const first = await sessionCookie();
    assert.ok(first, 'logged in by the genuine callback');
    // ... once. Code replay: the same callback again finds its state taken.
    r = await page.goto(callback);
    assert.equal(r.status(), 401);
    assert.match((await r.json()).detail, /already used|unknown/);
    assert.equal((await sessionCookie()).value, first.value, 'the replay neither replaced nor ended the session');
    assert.deepEqual(await loginCookies(), [], 'the login cookie was cleared');
    // Open redirect via return_to.
    for (const target of ['//evil.example', '/\\evil.example', 'https://evil.example/', '/%2F%2Fevil.example', '/%5Cevil.example', 'javascript:alert(1)']) {
      r = await page.goto(`${FG}/.frontgate/login?return_to=${encodeURIComponent(target)}`);
      assert.equal(r.status(), 400, target);
      assert.equal(page.url().startsWith(FG), true, target);
    }
  } else if (scenario === 'csrf') {
    await login('bob', '/echo/home');
    // A page on another loopback origin (same site: the Lax cookie goes along) posts to the API.
    await page.goto(`${ATTACKER}/attack.html`);
    const results = await page.evaluate(async (fg) => {
      const send = async (init) => {
        try {
          const r = await fetch(`${fg}/echo/transfer`, { method: 'POST', credentials: 'include', ...init });
          return { status: r.status, body: await r.json().catch(() => null) };
        } catch (e) {
          return { error: String(e) };
        }
      };
      return {
        simple: await send({ headers: { 'Content-Type': 'text/plain' }, body: 'amount=1000' }),
        withHeader: await send({ headers: { 'Content-Type': 'application/json', 'X-Frontgate-CSRF': '1' }, body: '{}' }),
      };
    }, FG);
    out.csrf = results;
    for (const r of [results.simple, results.withHeader]) {
      assert.equal(r.status, 403, JSON.stringify(r));
      assert.equal(r.body.code, 'csrf_failed');
    }
    // A plain HTML form post from the attacker's page (a top-level navigation).
    await page.setContent(`<form method="POST" action="${FG}/echo/transfer"><input name="amount" value="1"></form>`);
    const [resp] = await Promise.all([page.waitForNavigation(), page.evaluate(() => document.forms[0].submit())]);
    assert.equal(resp.status(), 403);
    assert.equal((await resp.json()).code, 'csrf_failed');
  } else if (scenario === 'anonymous') {
    // An API call without a session gets the 401 problem, never a redirect. (Made from a
    // same-origin page under the gateway's default CSP; the problem pages' own CSP allows
    // nothing but their style, so a fetch from there would be refused by the browser.)
    await page.goto(`${FG}/.frontgate/health`);
    const api = await fetchJson('/echo/items', { headers: { Accept: 'application/json' } });
    assert.equal(api.status, 401);
    assert.equal(api.contentType, 'application/problem+json');
    assert.equal(api.body.code, 'unauthenticated');
    const who = await fetchJson('/.frontgate/session');
    assert.equal(who.status, 401);
    // A navigation is sent to the login, which sends it on to the IdP.
    await page.goto(`${FG}/echo/page`);
    assert.ok(page.url().startsWith(`${IDP}/interaction/`), page.url());
  } else if (scenario === 'two-tabs') {
    // Two tabs of one browser each start a login before either finishes: both complete, each
    // back on its own page (each login has its own cookie).
    const second = await context.newPage();
    await page.goto(`${FG}/echo/one`);
    await page.waitForURL((u) => u.href.startsWith(`${IDP}/interaction/`));
    await second.goto(`${FG}/echo/two`);
    await second.waitForURL((u) => u.href.startsWith(`${IDP}/interaction/`));
    assert.equal((await loginCookies()).length, 2, 'one login cookie per started login');
    step('both logins started');
    await signInAtIdp('erin', page);
    await page.waitForURL(`${FG}/echo/one`);
    step('first tab logged in');
    await signInAtIdp('erin', second);
    await second.waitForURL(`${FG}/echo/two`);
    step('second tab logged in');
    for (const [p, path] of [[page, '/echo/one'], [second, '/echo/two']]) {
      const r = await p.reload();
      assert.equal(r.status(), 200, path);
      const echo = JSON.parse(await p.locator('body').innerText());
      assert.equal(echo.headers['x-frontgate-subject'][0], 'erin', path);
    }
    assert.deepEqual(await loginCookies(), [], 'both login cookies were cleared');
    assert.ok(await sessionCookie(), 'logged in');
  } else if (scenario === 'capture-callback') {
    // A login started here, stopped before the callback: the callback URL and the login
    // cookies, for the Rust side to deliver (to another node).
    out.callback = await captureCallback(process.env.FG_USER || 'frank', '/echo/home');
    out.cookies = (await loginCookies()).map((c) => `${c.name}=${c.value}`);
  } else if (scenario === 'login-save') {
    // Log in and keep the browser's state (the IdP session) for a later run.
    await login(process.argv[3] || process.env.FG_USER || 'dave', '/echo/home');
    out.cookie = (await sessionCookie()).value;
    await context.storageState({ path: STATE });
  } else if (scenario === 'idp-logout') {
    // End the IdP session at the IdP itself: it then calls the back-channel logout URI.
    await page.goto(`${IDP}/session/end`);
    await page.click('button[autofocus], button[type=submit]');
    await page.waitForLoadState('load');
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await browser.close();
}
