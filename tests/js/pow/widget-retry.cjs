// Loads frontgate's widget.js (path in argv[2]) with a stubbed fetch and clock, no browser,
// and checks its 503 `overloaded` handling: asked again after Retry-After, a bounded number of times.
const fs = require('fs');
const src = fs.readFileSync(process.argv[2], 'utf8');
const waits = [];
globalThis.setTimeout = (f, ms) => { waits.push(ms); f(); return 0; };
globalThis.window = {};
globalThis.document = { currentScript: null };
let answers = [], calls = 0;
globalThis.fetch = async () => { calls++; return answers.shift(); };
const resp = (status, headers) => ({ status, ok: status >= 200 && status < 300, headers: { get: (n) => (headers || {})[n.toLowerCase()] ?? null } });
new Function(src)();
(async () => {
  // Two 503s, then a refusal of another kind: asked three times, waiting Retry-After each time.
  answers = [resp(503, { 'retry-after': '2' }), resp(503, { 'retry-after': '1' }), resp(404)];
  let err = await window.frontgate.solve('/.frontgate/challenge?route=/x').catch((e) => e);
  if (calls !== 3 || !/HTTP 404/.test(err.message) || waits.join() !== '2000,1000') throw new Error(`calls ${calls}, waits ${waits}, ${err}`);
  // Always 503: a bounded number of retries, then the error.
  calls = 0; waits.length = 0;
  answers = Array.from({ length: 100 }, () => resp(503, { 'retry-after': '1' }));
  err = await window.frontgate.solve('/.frontgate/challenge?route=/x').catch((e) => e);
  if (calls !== 6 || !/HTTP 503/.test(err.message)) throw new Error(`calls ${calls}, ${err}`);
  // Other refusals are not retried.
  calls = 0; answers = [resp(429, { 'retry-after': '30' })];
  err = await window.frontgate.solve('/.frontgate/challenge?route=/x').catch((e) => e);
  if (calls !== 1 || !/HTTP 429/.test(err.message)) throw new Error(`calls ${calls}, ${err}`);
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });
