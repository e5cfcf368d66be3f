// Loads the gateway's own HTML pages in headless Chromium (the Debian package) and checks that
// they render as designed under the gateway's CSP: no CSP violation, the page's style applied,
// no raw Markdown backticks; saves a screenshot of each. For tests/it/frontend.rs.
//
//   node pages.mjs URL...
//
// Environment: OUT (a directory for the screenshots), CHROMIUM (default /usr/bin/chromium).
// Prints one JSON line: [{ url, violations, maxWidth, fontFamily, backticks, screenshot }].

import { chromium } from 'playwright-core';

const urls = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
let browser;
setTimeout(() => {
  browser?.process()?.kill('SIGKILL');
  process.stderr.write('pages.mjs timed out\n');
  process.exit(3);
}, 60_000).unref();
browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', ...flags],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 900, height: 700 } });
const results = [];
for (const [i, url] of urls.entries()) {
  const page = await context.newPage();
  const violations = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`Content Security Policy violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const response = await page.goto(url, { waitUntil: 'load' });
  const facts = await page.evaluate(() => {
    const body = getComputedStyle(document.body);
    return { maxWidth: body.maxWidth, fontFamily: body.fontFamily, backticks: document.body.innerText.includes('`') };
  });
  const screenshot = `${process.env.OUT}/page-${i}.png`;
  await page.screenshot({ path: screenshot, fullPage: true });
  results.push({ url, status: response.status(), violations, ...facts, screenshot });
  await page.close();
}
await browser.close();
console.log(JSON.stringify(results));
