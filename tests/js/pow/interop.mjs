// Interop between frontgate's ALTCHA v2 proof of work and the reference library altcha-lib,
// in both directions. Run by crates/frontgate/tests/pow_js.rs against a running gateway:
//   node interop.mjs <base-url> <pow-secret> <protected-path>
// Prints one JSON line per case and exits non-zero on the first disagreement.
import { createHmac } from 'node:crypto';
import { createChallenge, solveChallenge, verifySolution, randomInt } from 'altcha-lib';
import { deriveKey as pbkdf2 } from 'altcha-lib/algorithms/pbkdf2';
import { deriveKey as scrypt } from 'altcha-lib/algorithms/scrypt';

const [base, secret, path] = process.argv.slice(2);
// frontgate derives its signing keys from [pow] secret (see checks/pow/protocol.rs).
const derive = (label) => createHmac('sha256', secret).update(label).digest('hex');
const hmacSignatureSecret = derive('frontgate pow challenge v1');
const hmacKeySignatureSecret = derive('frontgate pow key v1');
const deriveKeyFor = (alg) => (alg === 'SCRYPT' ? scrypt : pbkdf2);

function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exit(1);
}
const payloadOf = (challenge, solution) =>
  Buffer.from(JSON.stringify({ challenge: { parameters: challenge.parameters, signature: challenge.signature }, solution })).toString('base64');

async function submit(payload) {
  const r = await fetch(base + '/.frontgate/verify', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ altcha: payload }),
  });
  return { status: r.status, body: await r.json() };
}

// 1. frontgate issues, altcha-lib solves and verifies (same signatures), frontgate accepts.
const r = await fetch(base + '/.frontgate/challenge?route=' + encodeURIComponent(path));
if (r.status !== 200) fail('challenge: HTTP ' + r.status);
const issued = await r.json();
const alg = issued.parameters.algorithm;
const solution = await solveChallenge({ challenge: issued, deriveKey: deriveKeyFor(alg) });
if (!solution) fail('altcha-lib could not solve a frontgate challenge');
const local = await verifySolution({ challenge: issued, solution, deriveKey: deriveKeyFor(alg), hmacSignatureSecret, hmacKeySignatureSecret });
if (!local.verified) fail('altcha-lib does not verify a frontgate challenge: ' + JSON.stringify(local));
const tampered = await verifySolution({ challenge: { ...issued, parameters: { ...issued.parameters, cost: 1 } }, solution, deriveKey: pbkdf2, hmacSignatureSecret, hmacKeySignatureSecret });
if (tampered.verified || !tampered.invalidSignature) fail('altcha-lib accepted a tampered frontgate challenge');
let res = await submit(payloadOf(issued, solution));
if (res.status !== 200 || !res.body.clearance) fail('frontgate refused altcha-lib\'s solution: ' + JSON.stringify(res));
console.log(JSON.stringify({ case: 'frontgate-issued, altcha-lib-solved', mode: issued.parameters.keySignature ? 'deterministic' : 'probabilistic', ok: true }));

// 2. altcha-lib issues (with frontgate's keys and scope), frontgate verifies.
const data = issued.parameters.data; // { route, site, level }
const expiresAt = Math.floor(Date.now() / 1000) + 120;
const cases = [
  { name: 'deterministic PBKDF2', opts: { algorithm: 'PBKDF2/SHA-256', cost: 50, counter: randomInt(30, 10), deriveKey: pbkdf2, hmacKeySignatureSecret } },
  { name: 'probabilistic PBKDF2', opts: { algorithm: 'PBKDF2/SHA-256', cost: 50, keyPrefix: '0', deriveKey: pbkdf2 } },
  { name: 'deterministic SCRYPT', opts: { algorithm: 'SCRYPT', cost: 1024, memoryCost: 1, counter: randomInt(4, 1), deriveKey: scrypt, hmacKeySignatureSecret } },
  { name: 'probabilistic SCRYPT (re-derived by frontgate)', opts: { algorithm: 'SCRYPT', cost: 1024, memoryCost: 1, keyPrefix: '0', deriveKey: scrypt } },
];
for (const c of cases) {
  const challenge = await createChallenge({ ...c.opts, data, expiresAt, hmacSignatureSecret });
  const s = await solveChallenge({ challenge, deriveKey: c.opts.deriveKey });
  if (!s) fail(c.name + ': altcha-lib could not solve its own challenge');
  res = await submit(payloadOf(challenge, s));
  if (res.status !== 200) fail(c.name + ': frontgate refused an altcha-lib challenge: ' + JSON.stringify(res));
  // Single use across libraries too.
  const again = await submit(payloadOf(challenge, s));
  if (again.status !== 403) fail(c.name + ': replay accepted');
  console.log(JSON.stringify({ case: 'altcha-lib-issued, frontgate-verified', variant: c.name, ok: true }));
}

// 3. What frontgate must refuse although altcha-lib's own verifier (without our policy) would accept.
// A challenge without an expiry.
{
  const challenge = await createChallenge({ algorithm: 'PBKDF2/SHA-256', cost: 10, counter: 3, data, deriveKey: pbkdf2, hmacSignatureSecret, hmacKeySignatureSecret });
  const s = await solveChallenge({ challenge, deriveKey: pbkdf2 });
  res = await submit(payloadOf(challenge, s));
  if (res.status !== 403) fail('frontgate accepted a challenge without expiry: ' + JSON.stringify(res));
}
// Iterated SHA-512 (never offered: implementations disagree).
{
  const { deriveKey: sha } = await import('altcha-lib/algorithms/sha');
  const challenge = await createChallenge({ algorithm: 'SHA-512', cost: 1, keyPrefix: '0', keyLength: 64, data, expiresAt, deriveKey: sha, hmacSignatureSecret });
  const s = await solveChallenge({ challenge, deriveKey: sha });
  res = await submit(payloadOf(challenge, s));
  if (res.status !== 403) fail('frontgate accepted iterated SHA-512: ' + JSON.stringify(res));
}
// Another route inside the signed data.
{
  const challenge = await createChallenge({ algorithm: 'PBKDF2/SHA-256', cost: 10, counter: 3, data: { ...data, site: 'https://evil.example' }, expiresAt, deriveKey: pbkdf2, hmacSignatureSecret, hmacKeySignatureSecret });
  const s = await solveChallenge({ challenge, deriveKey: pbkdf2 });
  res = await submit(payloadOf(challenge, s));
  if (res.status !== 403) fail('frontgate accepted another site\'s challenge: ' + JSON.stringify(res));
}
console.log(JSON.stringify({ case: 'refusals', ok: true }));
console.log('interop: all cases passed');
