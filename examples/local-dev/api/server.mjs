// A tiny API for the local-development example (docs/local-dev.md): plain Node, no framework.
// frontgate forwards the routes it declares (frontgate.toml) to it on 127.0.0.1:3000.
import { createServer } from 'node:http';

const port = Number(process.env.PORT || 3000);

createServer((req, res) => {
  const json = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && req.url === '/api/hello') {
    return json(200, { message: 'Hello from the API' });
  }
  if (req.method === 'POST' && req.url === '/api/echo') {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => json(200, { received: body }));
    return;
  }
  json(404, { error: 'not found' });
}).listen(port, '127.0.0.1', () => console.log(`API on http://127.0.0.1:${port}`));
