// Proof of work for the contact form, with altcha-lib (ALTCHA v2, the protocol frontgate
// speaks; docs/bot-defence.md). frontgate answers a protected POST without a clearance with
// 403 challenge_required and a `challenge` URL; we fetch that challenge, solve it in the page
// (WebCrypto PBKDF2) and send the solution once, in the X-Frontgate-Pow header. frontgate
// checks it (signed, unexpired, for this route, never used before) and sets a clearance cookie
// for the next few minutes.
import { solveChallenge } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/web/pbkdf2';

export async function solve(challengeUrl: string): Promise<string> {
  const res = await fetch(challengeUrl, { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`challenge: HTTP ${res.status}`);
  const challenge = await res.json();
  if (!String(challenge.parameters?.algorithm).startsWith('PBKDF2/')) {
    // The memory-hard level (SCRYPT) is only used while the route is under heavy load.
    throw new Error('The site is under heavy load; please try again in a minute.');
  }
  const solution = await solveChallenge({ challenge, deriveKey });
  if (!solution) throw new Error('The anti-bot check could not be solved.');
  const payload = { challenge: { parameters: challenge.parameters, signature: challenge.signature }, solution };
  return btoa(JSON.stringify(payload));
}
