// The example's backend: a plain Express API with NO security code. No authentication, no
// sessions, no CSRF tokens, no CAPTCHA, no CORS, no input validation, no rate limits: frontgate
// does all of that in front of it (frontgate.toml, openapi.yaml), and tells it who the caller is
// in the X-Frontgate-Subject header.
//
// It may trust that header only because it listens on loopback (127.0.0.1), so frontgate on
// the same machine is the only way in. A backend on another host needs more: see
// "The backend on another host" in docs/tutorial.md.
//
//   node api/server.mjs
//
// Environment: API_PORT (default 3000; 0 picks a free one), API_LOG (a file: one JSON line per
// request that reached this process, for the test suite to read; unset: no log).
// The first line on stdout is the API's URL.

import { appendFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import express from 'express';
import { WebSocketServer } from 'ws';

const port = Number(process.env.API_PORT ?? 3000);
const logFile = process.env.API_LOG;
const record = (entry) => {
  if (logFile) appendFileSync(logFile, `${JSON.stringify({ ...entry, at: Date.now() })}\n`);
};

// Items per user, in memory: a real app has a database here.
const itemsBySubject = new Map();
const itemsOf = (subject) => {
  if (!itemsBySubject.has(subject)) itemsBySubject.set(subject, new Map());
  return itemsBySubject.get(subject);
};
// The caller, as frontgate established it (session or API key).
const subjectOf = (req) => req.get('x-frontgate-subject');

const app = express();
app.disable('x-powered-by');
app.use((req, res, next) => {
  record({ method: req.method, path: req.originalUrl, subject: subjectOf(req) ?? null, key_id: req.get('x-frontgate-key-id') ?? null });
  next();
});
// Parsing, not validation: frontgate already checked the body against openapi.yaml.
app.use(express.json());

// `owner` and `internal_ref` are not in openapi.yaml: frontgate strips them from responses, so
// a field added here by mistake does not leak to the browser.
const view = (subject, item) => ({ ...item, owner: subject, internal_ref: `db-row-${item.id}` });

app.get('/api/items', (req, res) => {
  const subject = subjectOf(req);
  res.json({ items: [...itemsOf(subject).values()].map((i) => view(subject, i)) });
});

app.post('/api/items', (req, res) => {
  const subject = subjectOf(req);
  const now = new Date().toISOString();
  const item = { id: randomUUID(), title: req.body.title, note: req.body.note ?? '', done: req.body.done ?? false, created_at: now, updated_at: now };
  itemsOf(subject).set(item.id, item);
  live(subject, { type: 'created', id: item.id });
  res.status(201).json(view(subject, item));
});

app.put('/api/items/:id', (req, res) => {
  const subject = subjectOf(req);
  const item = itemsOf(subject).get(req.params.id);
  if (!item) return res.status(404).json({ error: 'no such item' });
  Object.assign(item, { title: req.body.title, note: req.body.note ?? '', done: req.body.done ?? false, updated_at: new Date().toISOString() });
  live(subject, { type: 'updated', id: item.id });
  res.json(view(subject, item));
});

app.delete('/api/items/:id', (req, res) => {
  const subject = subjectOf(req);
  if (!itemsOf(subject).delete(req.params.id)) return res.status(404).json({ error: 'no such item' });
  live(subject, { type: 'deleted', id: req.params.id });
  res.status(204).end();
});

// For scripts with an API key (scope items:read): the key's owner's items.
app.get('/api/export/items', (req, res) => {
  const subject = subjectOf(req);
  res.json({ items: [...itemsOf(subject).values()].map((i) => view(subject, i)) });
});

// The public contact form (frontgate asks for a proof of work and rate-limits it).
const messages = [];
app.post('/api/contact', (req, res) => {
  const message = { id: randomUUID(), received_at: new Date().toISOString() };
  messages.push({ ...message, ...req.body });
  res.status(201).json(message);
});

const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${server.address().port}\n`);
});

// Live updates: a WebSocket per signed-in tab, told when that user's items change.
const sockets = new Map();
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const subject = req.headers['x-frontgate-subject'];
  record({ method: 'GET', path: req.url, subject: subject ?? null, key_id: null, websocket: true });
  if (req.url !== '/api/live') return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (!sockets.has(subject)) sockets.set(subject, new Set());
    sockets.get(subject).add(ws);
    ws.on('close', () => sockets.get(subject)?.delete(ws));
    ws.send(JSON.stringify({ type: 'hello' }));
  });
});
function live(subject, event) {
  for (const ws of sockets.get(subject) ?? []) ws.send(JSON.stringify(event));
}

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
