// `frontgate demo`'s page in headless Chromium: "Send without solving" is refused with
// 403 challenge_required, and "Send feedback" solves the proof of work with widget.js under the
// demo's own CSP and gets the upstream's 201. Fails on any page error or console error.
// Run by crates/frontgate/tests/pow_js.rs:  node demo.mjs <https-base-url>
import { chromium } from 'playwright-core';

const [base] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const fail = (m) => { console.error('FAIL: ' + m); process.exitCode = 1; throw new Error(m); };
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
try {
  // The demo's certificate is self-signed, made on first start.
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // A refused request logs "Failed to load resource": those are checked by URL below, where
  // a 403 from /api/feedback is expected (the first try of each protected POST).
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
  page.on('response', (r) => {
    if (r.status() >= 400 && !(r.status() === 403 && r.url().endsWith('/api/feedback'))) errors.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(base + '/');
  const out = () => page.textContent('#pow-out');

  await page.click('#plain-feedback');
  await page.waitForFunction(() => document.getElementById('pow-out').textContent.includes('challenge_required'), null, { timeout: 10000 })
    .catch(async () => fail('unsolved feedback was not refused: ' + await out()));
  if (!(await out()).startsWith('403 application/problem+json')) fail('unsolved feedback: ' + await out());

  await page.click('#feedback');
  await page.waitForFunction(() => /^\d{3} /.test(document.getElementById('pow-out').textContent), null, { timeout: 60000 })
    .catch(async () => fail('no answer after solving: ' + await out() + ' ' + errors.join(' | ')));
  const answer = await out();
  if (!answer.startsWith('201 ') || !answer.includes('"thanks":"feedback received"')) fail('feedback after solving: ' + answer + ' ' + errors.join(' | '));
  if (errors.length) fail('page errors: ' + errors.join(' | '));
  console.log(JSON.stringify({ case: 'demo feedback', answer: answer.split('\n')[0] }));
  console.log('demo: all cases passed');
} finally {
  await browser.close();
}
