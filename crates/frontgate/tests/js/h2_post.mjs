// POSTs a body over HTTP/2 with Node's own client (node:http2), for tests/it/refusals.rs.
//
//   node h2_post.mjs ORIGIN PATH BODY_BYTES TIMES [NAME:VALUE ...]
//
// Each try opens its own session (a fresh connection, as a script client does), sends the
// body whole with the given header fields, reads the response to its end and waits for the
// stream to close. Prints one JSON
// line: a list of { status, contentType, body, error, rstCode } per try. The certificate is not checked
// (the gateway's is self-signed); everything stays on loopback.

import http2 from 'node:http2';

const [origin, path, bytes, times, ...fields] = process.argv.slice(2);
const body = Buffer.alloc(Number(bytes), 'a');
const headers = { ':method': 'POST', ':path': path, 'content-type': 'application/octet-stream', 'content-length': String(body.length) };
for (const f of fields) {
  const at = f.indexOf(':');
  headers[f.slice(0, at).toLowerCase()] = f.slice(at + 1);
}

function once() {
  return new Promise((resolve) => {
    const out = { status: null, contentType: null, body: '', error: null, rstCode: null };
    const session = http2.connect(origin, { rejectUnauthorized: false });
    session.on('error', (e) => { out.error ??= `session: ${e.code || e.message}`; });
    const req = session.request(headers);
    req.setEncoding('utf8');
    req.on('response', (h) => { out.status = h[':status']; out.contentType = h['content-type'] ?? null; });
    req.on('data', (d) => { out.body += d; });
    req.on('error', (e) => { out.error ??= `stream: ${e.code || e.message}`; });
    // A request is over when its stream closes (both directions). A stream reset while the
    // body is still being written never closes here: response read, upload stuck (Node 20).
    const stuck = setTimeout(() => {
      out.error ??= 'the stream did not close';
      session.destroy();
      resolve(out);
    }, 10_000);
    req.on('close', () => {
      clearTimeout(stuck);
      out.rstCode = req.rstCode ?? null;
      session.close();
      resolve(out);
    });
    req.end(body);
  });
}

// Never hang a test run.
setTimeout(() => { process.stderr.write('timed out\n'); process.exit(3); }, 110_000).unref();

const results = [];
for (let i = 0; i < Number(times); i++) results.push(await once());
process.stdout.write(`${JSON.stringify(results)}\n`);
