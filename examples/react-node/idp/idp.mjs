// The example's identity provider: the real, OpenID-certified `oidc-provider` on loopback, with
// one demo client (frontgate) and two demo users. It stands in for your real IdP (Auth0, Okta,
// Keycloak, Entra ID, Google ...) on a laptop; see docs/tutorial.md. Everything lives in memory.
//
//   node idp/idp.mjs
//
// Demo users (user name / password):  demo / demo-password   and   alice / alice-password
//
// Environment (all optional):
//   IDP_PORT            port on 127.0.0.1 (default 9400; 0 picks a free one)
//   APP_ORIGIN          frontgate's public origin (default https://localhost:8443): the client's
//                       redirect, post-logout and back-channel logout URIs are made from it
//   OIDC_CLIENT_ID      default "frontgate-demo"
//   OIDC_CLIENT_SECRET  must equal the one in frontgate's environment (run.sh makes one)
//   NODE_EXTRA_CA_CERTS the certificate frontgate serves, so back-channel logout calls trust it
//
// The first line on stdout is the issuer URL; logs go to stderr.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID, timingSafeEqual, createHash } from 'node:crypto';

for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
  console[level] = (...args) => process.stderr.write(`${args.join(' ')}\n`);
}
const { default: Provider } = await import('oidc-provider');

// The demo users. A real IdP has its own user store, MFA, password reset and so on.
const USERS = {
  demo: { password: 'demo-password', name: 'Demo User', email: 'demo@example.test' },
  alice: { password: 'alice-password', name: 'Alice Example', email: 'alice@example.test' },
};

const port = Number(process.env.IDP_PORT ?? 9400);
const appOrigin = (process.env.APP_ORIGIN || 'https://localhost:8443').replace(/\/$/, '');
const clientId = process.env.OIDC_CLIENT_ID || 'frontgate-demo';
const clientSecret = process.env.OIDC_CLIENT_SECRET;
if (!clientSecret) {
  console.error('OIDC_CLIENT_SECRET is not set (run.sh sets it; it must equal frontgate\'s)');
  process.exit(2);
}

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwks = { keys: [{ ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: randomUUID() }] };

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [`${appOrigin}/.frontgate/callback`],
    post_logout_redirect_uris: [`${appOrigin}/`],
    backchannel_logout_uri: `${appOrigin}/.frontgate/backchannel-logout`,
    backchannel_logout_session_required: true,
    id_token_signed_response_alg: 'ES256',
  }],
  jwks,
  async findAccount(ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: user.name, email: user.email, email_verified: true };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    revocation: { enabled: true },
  },
  ttl: { AccessToken: 300, IdToken: 300, RefreshToken: 86400, Session: 86400, Grant: 86400, Interaction: 600 },
  // Back-channel logout calls go to frontgate on loopback, which oidc-provider's SSRF guard
  // refuses; lift the guard for loopback targets only.
  fetch: (url, options) => {
    if (['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname)) delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  cookies: { keys: [randomUUID()] },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('backchannel.error', (client, err) => console.error('backchannel.error', err));
provider.on('backchannel.success', (ctx, client, accountId, sid) => console.error(`backchannel.success ${accountId} ${client.clientId} ${sid}`));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>${escape(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#eef1f5;margin:0}main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit}button{margin-top:1.2rem;padding:.5rem 1.2rem;font:inherit;background:#2f5fd0;color:#fff;border:0;border-radius:4px}
.err{color:#a40000}.hint{color:#555;font-size:.9rem}</style></head><body><main>${body}</main></body></html>`;

function loginForm(uid, error = '') {
  return page('Sign in: Demo IdP', `<h1>Demo IdP</h1><p class="hint">The identity provider of the frontgate example.
Demo user: <b>demo</b> / <b>demo-password</b></p>
${error ? `<p class="err" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="login">User name</label><input id="login" name="login" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`);
}

const sameSecret = (a, b) => timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

// Login and consent: the parts of an IdP that oidc-provider leaves to its host.
async function interaction(req, res, url) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (prompt.name === 'login') {
    if (req.method === 'POST' && url.pathname === `/interaction/${uid}/login`) {
      const form = await readForm(req);
      const id = form.get('login') || '';
      const user = Object.hasOwn(USERS, id) ? USERS[id] : null;
      if (!user || !sameSecret(form.get('password') || '', user.password)) {
        res.writeHead(401, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(loginForm(uid, 'Unknown user name or wrong password.'));
      }
      return provider.interactionFinished(req, res, { login: { accountId: id } }, { mergeWithLastSubmission: false });
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return res.end(loginForm(uid));
  }
  // Consent: the app is first-party, so what it asks for is granted without a question.
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname.startsWith('/interaction/')) {
    try {
      await interaction(req, res, url);
    } catch (err) {
      console.error('interaction error', err);
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page('Sign-in failed', '<h1>Sign-in failed</h1><p>This sign-in has expired. Go back to the app and sign in again.</p>'));
    }
    return;
  }
  callback(req, res);
});
process.stdout.write(`${issuer}\n`);
console.error(`demo IdP at ${issuer} for ${appOrigin}; users: ${Object.keys(USERS).join(', ')}`);

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
