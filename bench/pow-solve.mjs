// Solve time of each default proof-of-work level in headless Chromium (Debian's `chromium`,
// driven by playwright-core from tests/js/pow), with frontgate's /.frontgate/widget.js solver
// (one Web Worker per core, WebCrypto PBKDF2, plain-JS scrypt).
// The official widget's PBKDF2 worker also uses WebCrypto, so its figures match these.
//   (cd tests/js/pow && npm ci) && node bench/pow-solve.mjs [runs]
// Prints, per level: the median solve time and the time per attempt (one key derivation on
// one worker), which is the figure to scale: a challenge at counter C takes about
// C / workers attempts. Not a test: nothing is asserted.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const js = join(root, 'tests/js/pow');
const require = createRequire(join(js, 'package.json'));
const { chromium } = require('playwright-core');
const runs = Number(process.argv[2] || 5);

const widget = readFileSync(join(root, 'crates/frontgate/src/checks/pow/widget.js'));
const page = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>pow bench</title><script src="/widget.js"></script></head><body></body></html>';
const server = http.createServer((req, res) => {
  if (req.url === '/widget.js') { res.writeHead(200, { 'content-type': 'text/javascript' }); res.end(widget); return; }
  res.writeHead(200, { 'content-type': 'text/html' }); res.end(page);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

// The default ladder (crates/frontgate/src/config/pow.rs d_levels).
const levels = [
  { level: 0, algorithm: 'PBKDF2/SHA-256', cost: 5000, counter: 100 },
  { level: 1, algorithm: 'PBKDF2/SHA-256', cost: 20000, counter: 100 },
  { level: 2, algorithm: 'PBKDF2/SHA-256', cost: 100000, counter: 100 },
  { level: 3, algorithm: 'SCRYPT', cost: 16384, memoryCost: 8, counter: 20 },
];
const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('');

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  const p = await browser.newPage();
  await p.goto(base + '/');
  const cores = await p.evaluate(() => navigator.hardwareConcurrency);
  const workers = await p.evaluate(() => Math.max(1, Math.min(8, navigator.hardwareConcurrency || 2)));
  console.log(`headless Chromium, navigator.hardwareConcurrency = ${cores}, ${runs} runs per level`);
  console.log('level  algorithm         cost    counter  median solve   per attempt (1 worker)');
  for (const l of levels) {
    const w = l.algorithm === 'SCRYPT' ? Math.min(workers, 4) : workers;
    const times = [], perAttempt = [];
    for (let i = 0; i < runs; i++) {
      // A challenge whose answer is the expected counter (3/4 of the level's `counter`), with
      // a prefix long enough (16 bytes) that nothing else matches: measures the real search.
      const counter = Math.round(l.counter * 0.75);
      const params = { algorithm: l.algorithm, cost: l.cost, keyLength: 32, nonce: hex(16), salt: hex(16), keyPrefix: '', memoryCost: l.memoryCost };
      // Derive the key at `counter` in the page (the solver's own code) to set the prefix.
      const key = await p.evaluate(async ({ params, counter }) => {
        const bytes = (h) => Uint8Array.from(h.match(/../g).map((x) => parseInt(x, 16)));
        const nonce = bytes(params.nonce);
        const pw = new Uint8Array(nonce.length + 4);
        pw.set(nonce);
        new DataView(pw.buffer).setUint32(nonce.length, counter);
        const t0 = performance.now();
        const k = await window.frontgate.deriveKey(params, bytes(params.salt), pw);
        return { hex: Array.from(k, (b) => b.toString(16).padStart(2, '0')).join(''), ms: performance.now() - t0 };
      }, { params, counter });
      perAttempt.push(key.ms);
      const challenge = { parameters: { ...params, keyPrefix: key.hex.slice(0, 32) }, signature: 'bench' };
      const ms = await p.evaluate(async (c) => { const t = performance.now(); await window.frontgate.solveChallenge(c); return performance.now() - t; }, challenge);
      times.push(ms);
    }
    const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
    console.log(`${String(l.level).padEnd(6)} ${l.algorithm.padEnd(17)} ${String(l.cost).padEnd(7)} ${String(Math.round(l.counter * 0.75)).padEnd(8)} ${(med(times) / 1000).toFixed(2).padStart(9)} s   ${med(perAttempt).toFixed(1).padStart(9)} ms   (${w} workers)`);
  }
} finally {
  await browser.close();
  server.close();
}
