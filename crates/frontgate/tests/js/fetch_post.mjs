// POSTs a body with Node's global fetch (undici; HTTP/1.1, as Node 20's fetch has no HTTP/2),
// for tests/it/refusals.rs.
//
//   NODE_EXTRA_CA_CERTS=cert.pem node fetch_post.mjs ORIGIN PATH BODY_BYTES TIMES [NAME:VALUE ...]
//
// Each try sends the body whole with the given header fields and reads the response to its
// end. The certificate is checked against the one in NODE_EXTRA_CA_CERTS (the gateway's
// self-signed one). Prints one JSON line: a list of { status, contentType, body, error } per try.

const [origin, path, bytes, times, ...fields] = process.argv.slice(2);
const body = Buffer.alloc(Number(bytes), 'a');
const headers = { 'content-type': 'application/octet-stream' };
for (const f of fields) {
  const at = f.indexOf(':');
  headers[f.slice(0, at).toLowerCase()] = f.slice(at + 1);
}

async function once() {
  const out = { status: null, contentType: null, body: '', error: null };
  try {
    const r = await fetch(`${origin}${path}`, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
    out.status = r.status;
    out.contentType = r.headers.get('content-type');
    out.body = await r.text();
  } catch (e) {
    out.error = `${e.name}: ${e.message}${e.cause ? ` (${e.cause.code || e.cause.message})` : ''}`;
  }
  return out;
}

// Never hang a test run.
setTimeout(() => { process.stderr.write('timed out\n'); process.exit(3); }, 110_000).unref();

const results = [];
for (let i = 0; i < Number(times); i++) results.push(await once());
process.stdout.write(`${JSON.stringify(results)}\n`);
