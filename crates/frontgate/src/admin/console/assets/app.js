// frontgate console. Hand-written, no build step, no third-party code. Every call goes to the
// documented admin API (/admin/v1/...) with the session cookie; state-changing calls carry the
// session's CSRF token in X-Frontgate-CSRF. The token lives only in this script's memory.
'use strict';

(() => {
  let csrf = null;
  const $ = (id) => document.getElementById(id);

  // Builds an element: el("p", { class: "note" }, "text", child, ...). Text is always text: no markup is ever parsed from a string.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v === null || v === undefined) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  class ApiError extends Error {
    constructor(status, doc) {
      super((doc && (doc.detail || doc.title)) || `HTTP ${status}`);
      this.status = status;
      this.doc = doc;
    }
  }

  // `background`: an automatic refresh, which must not keep the session from idling out.
  async function api(method, path, body, background) {
    const headers = { accept: 'application/json' };
    if (background) headers['x-frontgate-background'] = '1';
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && csrf) headers['x-frontgate-csrf'] = csrf;
    const r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
    const text = await r.text();
    let doc = null;
    try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
    if (r.status === 401 && path !== '/admin/v1/console/session') {
      showSignIn('Your console session has ended; sign in again.');
    }
    if (!r.ok) throw new ApiError(r.status, doc);
    return doc;
  }

  // ---- sign-in ---------------------------------------------------------------------------

  function showSignIn(message) {
    csrf = null;
    $('nav').hidden = true;
    $('signout').hidden = true;
    $('view').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = message || '';
    $('token').focus();
  }

  function signedIn(session) {
    csrf = session.csrf;
    $('signin').hidden = true;
    $('token').value = '';
    $('signin-error').textContent = '';
    $('nav').hidden = false;
    $('signout').hidden = false;
    $('view').hidden = false;
    if (!location.hash || location.hash === '#/') location.hash = '#/keys';
    else route();
  }

  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = $('token').value;
    if (!token) { $('signin-error').textContent = 'Enter the admin token.'; return; }
    try {
      signedIn(await api('POST', '/admin/v1/console/session', { token }));
    } catch (e) {
      $('token').value = '';
      $('signin-error').textContent = e.status === 429
        ? 'Too many wrong tokens from this address. Wait a few minutes and try again.'
        : e.status === 401 ? 'That is not the admin token.' : `Sign-in failed: ${e.message}`;
      $('token').focus();
    }
  });

  $('signout').addEventListener('click', async () => {
    try { await api('DELETE', '/admin/v1/console/session'); } catch { /* signed out anyway */ }
    location.hash = '';
    showSignIn('Signed out.');
  });

  // ---- views -------------------------------------------------------------------------------

  const views = { keys: keysView, sessions: sessionsView, traffic: trafficView, config: configView };
  let timer = null;

  function route() {
    if (!csrf) return;
    if (timer) { clearInterval(timer); timer = null; }
    const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || 'keys';
    const view = views[name] || keysView;
    for (const a of document.querySelectorAll('nav a')) {
      if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const root = $('view');
    root.replaceChildren();
    view(root);
  }
  window.addEventListener('hashchange', route);

  function fmtTime(t) {
    if (!t) return 'never';
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? String(t) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  function field(id, label, attrs) {
    return el('div', {}, el('label', { for: id }, label), el('input', { id, name: id, ...attrs }));
  }

  function copyButton(text, label) {
    const status = el('span', { class: 'ok', role: 'status' });
    const b = el('button', {
      type: 'button',
      class: 'secondary',
      onclick: async () => {
        try { await navigator.clipboard.writeText(text); status.textContent = 'Copied.'; }
        catch { status.textContent = 'Copy failed: select the key and copy it by hand.'; }
      },
    }, label || 'Copy');
    return [b, status];
  }

  function secretPanel(title, minted) {
    return el('div', { class: 'secret', role: 'region', 'aria-label': title, tabindex: '-1', id: 'secret' },
      el('h2', {}, title),
      el('p', {}, 'This is the only time the key is shown. Copy it now; frontgate keeps only a digest.'),
      el('code', { id: 'secret-key' }, minted.key),
      copyButton(minted.key, 'Copy key'),
      el('p', { class: 'note' }, `id ${minted.id}`));
  }

  // ---- keys ----------------------------------------------------------------------------------

  function keyStatus(k) {
    if (k.revoked_at) return 'revoked';
    if (k.expires_at && new Date(k.expires_at).getTime() <= Date.now()) return 'expired';
    if (k.replaced_by) return 'rotating';
    return 'active';
  }

  function keysView(root) {
    const out = el('div', { id: 'keys-out' });
    const error = el('p', { class: 'error', role: 'alert', id: 'keys-error' });
    let keys = [];

    const create = el('form', { class: 'inline', id: 'create-form', novalidate: true },
      field('key-name', 'Name', { required: true, maxlength: 200 }),
      field('key-subject', 'Owner (subject)', { maxlength: 200 }),
      field('key-scopes', 'Scopes (comma-separated)', { maxlength: 2000 }),
      field('key-expires', 'Expires in (e.g. 30d, empty: never)', { maxlength: 20 }),
      el('div', {}, el('button', { type: 'submit' }, 'Create key')));
    create.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      const name = $('key-name').value.trim();
      if (!name) { error.textContent = 'A key needs a name.'; $('key-name').focus(); return; }
      const spec = { name };
      const subject = $('key-subject').value.trim();
      if (subject) spec.subject = subject;
      const scopes = $('key-scopes').value.split(',').map((s) => s.trim()).filter(Boolean);
      if (scopes.length) spec.scopes = scopes;
      const exp = $('key-expires').value.trim();
      if (exp) spec.expires_in = exp;
      try {
        const minted = await api('POST', '/admin/v1/keys', spec);
        create.reset();
        out.replaceChildren(secretPanel(`New key “${minted.name}”`, minted));
        $('secret').focus();
        await load();
      } catch (e) { error.textContent = `Could not create the key: ${e.message}`; }
    });

    const search = field('f-search', 'Search (name, id, hint)', { type: 'search' });
    const owner = field('f-owner', 'Owner', { type: 'search' });
    const scope = field('f-scope', 'Scope', { type: 'search' });
    const status = el('div', {}, el('label', { for: 'f-status' }, 'Status'),
      el('select', { id: 'f-status' }, ['any', 'active', 'rotating', 'revoked', 'expired'].map((s) => el('option', { value: s }, s))));
    const used = el('div', {}, el('label', { for: 'f-used' }, 'Last used'),
      el('select', { id: 'f-used' },
        el('option', { value: 'any' }, 'any time'),
        el('option', { value: 'day' }, 'in the last 24 hours'),
        el('option', { value: 'stale' }, 'not in 30 days'),
        el('option', { value: 'never' }, 'never')));
    const filters = el('div', { class: 'filters', role: 'search' }, search, owner, scope, status, used);
    const tableWrap = el('div', { class: 'table-wrap', id: 'keys-table' });

    function matches(k) {
      const q = $('f-search').value.trim().toLowerCase();
      const o = $('f-owner').value.trim().toLowerCase();
      const sc = $('f-scope').value.trim();
      const st = $('f-status').value;
      const u = $('f-used').value;
      if (q && ![k.name, k.id, k.hint].some((x) => String(x || '').toLowerCase().includes(q))) return false;
      if (o && !String(k.subject || '').toLowerCase().includes(o)) return false;
      if (sc && !(k.scopes || []).includes(sc)) return false;
      if (st !== 'any' && keyStatus(k) !== st) return false;
      const last = k.last_used_at ? new Date(k.last_used_at).getTime() : null;
      if (u === 'never' && last !== null) return false;
      if (u === 'day' && (last === null || Date.now() - last > 86400e3)) return false;
      if (u === 'stale' && last !== null && Date.now() - last < 30 * 86400e3) return false;
      return true;
    }

    function draw() {
      const shown = keys.filter(matches);
      const rows = shown.map((k) => {
        const st = keyStatus(k);
        return el('tr', { 'data-id': k.id },
          el('td', {}, k.name),
          el('td', {}, el('code', {}, k.hint)),
          el('td', {}, k.subject),
          el('td', {}, (k.scopes || []).join(', ')),
          el('td', { class: `status-${st}` }, st),
          el('td', {}, fmtTime(k.last_used_at)),
          el('td', {},
            el('button', { type: 'button', class: 'secondary', 'aria-label': `Show ${k.name}`, onclick: () => showKey(k.id) }, 'Show'),
            st === 'active' ? el('button', { type: 'button', class: 'secondary', 'aria-label': `Rotate ${k.name}`, onclick: () => rotateKey(k) }, 'Rotate') : null,
            st !== 'revoked' ? el('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${k.name}`, onclick: () => revokeKey(k) }, 'Revoke') : null));
      });
      tableWrap.replaceChildren(el('table', {},
        el('caption', {}, `${shown.length} of ${keys.length} keys`),
        el('thead', {}, el('tr', {}, ['Name', 'Hint', 'Owner', 'Scopes', 'Status', 'Last used', 'Actions'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, rows)));
    }
    // Only on input (selects fire it too): a text field's change event comes at blur, and a
    // redraw then would replace the button being clicked under the pointer.
    filters.addEventListener('input', draw);

    async function load() {
      try {
        const all = [];
        let after = null;
        for (let page = 0; page < 10; page++) {
          const q = new URLSearchParams({ limit: '1000' });
          if (after) q.set('after', after);
          const r = await api('GET', `/admin/v1/keys?${q}`);
          all.push(...r.keys);
          if (!r.next_after) break;
          after = r.next_after;
        }
        keys = all;
        draw();
      } catch (e) { error.textContent = `Could not list keys: ${e.message}`; }
    }

    async function showKey(id) {
      try {
        const k = await api('GET', `/admin/v1/keys/${encodeURIComponent(id)}`);
        const rows = Object.entries(k).map(([name, v]) => [el('dt', {}, name),
          el('dd', {}, v === null ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v))]);
        const audit = await api('GET', `/admin/v1/audit?${new URLSearchParams({ target: id, limit: '20' })}`).catch(() => ({ events: [] }));
        const panel = el('div', { class: 'panel', tabindex: '-1', id: 'key-detail', role: 'region', 'aria-label': `Key ${k.name}` },
          el('h2', {}, `Key “${k.name}”`), el('dl', {}, rows),
          el('h2', {}, 'Audit events'),
          el('ul', {}, (audit.events || []).map((e) => el('li', {}, `${fmtTime(e.at_ms)} ${e.action} by ${e.actor}${e.detail && e.detail.reason ? ` (reason: ${e.detail.reason})` : ''}`))));
        out.replaceChildren(panel);
        panel.focus();
      } catch (e) { error.textContent = `Could not show the key: ${e.message}`; }
    }

    function revokeKey(k) {
      const form = el('form', { class: 'panel', id: 'revoke-form', 'aria-label': `Revoke ${k.name}` },
        el('h2', {}, `Revoke “${k.name}”`),
        el('p', {}, 'The key stops working at once, on every node.'),
        field('revoke-reason', 'Reason (kept in the audit log)', { required: true, maxlength: 200 }),
        el('button', { type: 'submit', class: 'danger' }, 'Revoke key'),
        el('button', { type: 'button', class: 'secondary', onclick: () => out.replaceChildren() }, 'Cancel'));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const reason = $('revoke-reason').value.trim();
        if (!reason) { error.textContent = 'Give a reason.'; $('revoke-reason').focus(); return; }
        try {
          await api('DELETE', `/admin/v1/keys/${encodeURIComponent(k.id)}?${new URLSearchParams({ reason })}`);
          out.replaceChildren(el('p', { class: 'ok', role: 'status', id: 'revoked' }, `Revoked “${k.name}”.`));
          await load();
        } catch (e) { error.textContent = `Could not revoke the key: ${e.message}`; }
      });
      out.replaceChildren(form);
      $('revoke-reason').focus();
    }

    function rotateKey(k) {
      const form = el('form', { class: 'panel', id: 'rotate-form', 'aria-label': `Rotate ${k.name}` },
        el('h2', {}, `Rotate “${k.name}”`),
        el('p', {}, 'A new key with the same owner and scopes is made; the old one keeps working for the grace period, then stops.'),
        field('rotate-grace', 'Grace period (e.g. 24h, 0s)', { value: '24h', maxlength: 20 }),
        el('button', { type: 'submit' }, 'Rotate key'),
        el('button', { type: 'button', class: 'secondary', onclick: () => out.replaceChildren() }, 'Cancel'));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        try {
          const minted = await api('POST', `/admin/v1/keys/${encodeURIComponent(k.id)}/rotate`, { grace: $('rotate-grace').value.trim() || '24h' });
          out.replaceChildren(secretPanel(`Rotated “${k.name}”: the new key`, minted));
          $('secret').focus();
          await load();
        } catch (e) { error.textContent = `Could not rotate the key: ${e.message}`; }
      });
      out.replaceChildren(form);
      $('rotate-grace').focus();
    }

    root.append(el('h1', {}, 'API keys'), error,
      el('h2', {}, 'Create a key'), create, out,
      el('h2', {}, 'Keys'), filters, tableWrap);
    load();
  }

  // ---- sessions ------------------------------------------------------------------------------

  function sessionsView(root) {
    const error = el('p', { class: 'error', role: 'alert', id: 'sessions-error' });
    const status = el('p', { class: 'ok', role: 'status', id: 'sessions-status' });
    const results = el('div', { id: 'sessions-out' });
    let subject = '';
    const form = el('form', { class: 'inline', id: 'sessions-form', role: 'search' },
      field('s-subject', 'Subject (the user\u2019s id at the identity provider)', { required: true, maxlength: 512 }),
      el('div', {}, el('button', { type: 'submit' }, 'Find sessions')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      subject = $('s-subject').value.trim();
      status.textContent = '';
      if (!subject) { error.textContent = 'Enter a subject.'; $('s-subject').focus(); return; }
      await load();
    });

    async function load() {
      error.textContent = '';
      try {
        const r = await api('GET', `/admin/v1/sessions?${new URLSearchParams({ subject })}`);
        const rows = r.sessions.map((s) => el('tr', { 'data-id': s.id },
          el('td', {}, el('code', {}, s.id.slice(0, 12))),
          el('td', {}, fmtTime(s.created_at)),
          el('td', {}, fmtTime(s.last_seen_at)),
          el('td', {}, fmtTime(s.idle_expires_at)),
          el('td', {}, fmtTime(s.absolute_expires_at)),
          el('td', {}, el('button', { type: 'button', class: 'danger', 'aria-label': `End session ${s.id.slice(0, 12)}`,
            onclick: () => end(`/admin/v1/sessions/${s.id}`, 'Ended the session.') }, 'End'))));
        results.replaceChildren(
          el('h2', {}, `Sessions of “${r.subject}”`),
          el('div', { class: 'table-wrap' }, el('table', {},
            el('caption', {}, `${r.sessions.length} live sessions`),
            el('thead', {}, el('tr', {}, ['Session', 'Created', 'Last refreshed', 'Idle until', 'Ends at', 'Actions'].map((h) => el('th', { scope: 'col' }, h)))),
            el('tbody', {}, rows))),
          r.sessions.length ? el('button', { type: 'button', class: 'danger', id: 'end-all',
            onclick: () => end(`/admin/v1/sessions?${new URLSearchParams({ subject })}`, null) }, `End all of ${r.subject}\u2019s sessions`) : null);
      } catch (e) { error.textContent = `Could not list sessions: ${e.message}`; }
    }

    async function end(path, message) {
      try {
        const r = await api('DELETE', path);
        status.textContent = message || `Ended ${r.ended} sessions.`;
        await load();
      } catch (e) { error.textContent = `Could not end: ${e.message}`; }
    }

    root.append(el('h1', {}, 'Browser sessions'),
      el('p', { class: 'note' }, 'Sessions live in the shared store: one ended here is refused on its next request, on every node.'),
      form, error, status, results);
  }

  // ---- traffic -------------------------------------------------------------------------------

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    for (const c of children.flat()) if (c) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }
  // Line colours: each at least 3:1 against the white background.
  const COLOURS = ['#0b57d0', '#a4161a', '#146c2e', '#7a4a00', '#6a1b9a', '#00607a'];

  // A line chart of `series` ([{ name, values }]) over `n` buckets; text alternative in `label`.
  function chart(id, label, series, n, unit) {
    const W = 640, H = 180, P = 34;
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    const x = (i) => P + (i * (W - P - 8)) / Math.max(1, n - 1);
    const y = (v) => H - 20 - (v * (H - 34)) / max;
    const lines = series.map((s, k) => svg('polyline', {
      fill: 'none', stroke: COLOURS[k % COLOURS.length], 'stroke-width': 2,
      points: s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
    }));
    const axis = [
      svg('line', { x1: P, y1: H - 20, x2: W - 8, y2: H - 20, stroke: '#4a4a55' }),
      svg('line', { x1: P, y1: 10, x2: P, y2: H - 20, stroke: '#4a4a55' }),
      svg('text', { x: 2, y: 16, fill: '#1b1b1f', 'font-size': 11 }, `${max.toFixed(max < 10 ? 1 : 0)}`),
      svg('text', { x: 2, y: H - 22, fill: '#1b1b1f', 'font-size': 11 }, '0'),
      svg('text', { x: P, y: H - 4, fill: '#1b1b1f', 'font-size': 11 }, '1 hour ago'),
      svg('text', { x: W - 40, y: H - 4, fill: '#1b1b1f', 'font-size': 11 }, 'now'),
    ];
    const figure = el('figure', { id },
      svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart' }, axis, lines),
      el('figcaption', {}, label,
        series.length > 1 || unit ? el('ul', { class: 'legend' }, series.map((s, k) => el('li', { 'data-colour': k % COLOURS.length }, `${s.name}: ${s.values.reduce((a, b) => a + b, 0)}${unit || ''}`))) : null));
    return figure;
  }

  function table(id, caption, heads, rows) {
    return el('div', { class: 'table-wrap', id }, el('table', {},
      el('caption', {}, caption),
      el('thead', {}, el('tr', {}, heads.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c)))))));
  }

  function trafficView(root) {
    const error = el('p', { class: 'error', role: 'alert', id: 'traffic-error' });
    const body = el('div', { id: 'traffic-out' });
    const updated = el('p', { class: 'note', id: 'traffic-updated' });
    async function load(background) {
      try {
        const [t, s] = await Promise.all([
          api('GET', '/admin/v1/traffic?limit=20', undefined, background),
          api('GET', '/admin/v1/stores', undefined, background)]);
        error.textContent = '';
        const n = t.buckets.length;
        const rps = t.buckets.map((b) => b.requests / t.bucket_seconds);
        const codes = {};
        for (const b of t.buckets) for (const [c, v] of Object.entries(b.refused)) codes[c] = (codes[c] || 0) + v;
        const top = Object.entries(codes).sort((a, b) => b[1] - a[1]).slice(0, COLOURS.length).map(([c]) => c);
        const refusedSeries = top.map((c) => ({ name: c, values: t.buckets.map((b) => b.refused[c] || 0) }));
        const total = t.buckets.reduce((a, b) => a + b.requests, 0);
        const refusedTotal = Object.values(codes).reduce((a, b) => a + b, 0);
        const stores = Object.entries(s.stores);
        body.replaceChildren(
          el('h2', {}, 'Requests per second'),
          chart('chart-rps', `Requests per second on this node over the last hour: ${total} requests, now ${rps[n - 1].toFixed(2)}/s.`, [{ name: 'requests/s', values: rps }], n),
          el('h2', {}, 'Refusals per problem code'),
          refusedSeries.length
            ? chart('chart-refusals', `Refusals per ten seconds by problem code over the last hour: ${refusedTotal} in all.`, refusedSeries, n)
            : el('p', {}, 'No refusals in the last hour.'),
          el('h2', {}, 'Recent refusals'),
          table('recent-refusals', `The last ${t.recent_refusals.length} refused requests, newest first`, ['Time', 'Code', 'Route', 'Client', 'Caller'],
            t.recent_refusals.map((r) => [fmtTime(r.at), el('code', {}, r.code), r.route, r.client, r.key_id ? `${r.subject} (key ${r.key_id})` : (r.subject || '\u2014')])),
          el('h2', {}, 'Refused most'),
          table('top-clients', 'Client addresses by refusals', ['Client', 'Refusals'], t.top_clients.map((c) => [c.client, String(c.refusals)])),
          table('top-routes', 'Routes by refusals', ['Route', 'Refusals'], t.top_routes.map((c) => [c.route, String(c.refusals)])),
          table('top-keys', 'API keys by refusals (keys that exist: revoked, expired, out of budget, or used from the wrong address or origin)', ['Key', 'Refusals'], t.top_keys.map((c) => [el('code', {}, c.key_id), String(c.refusals)])),
          table('top-subjects', 'Callers by refusals (keys\u2019 owners, tokens\u2019 and sessions\u2019 subjects)', ['Subject', 'Refusals'], t.top_subjects.map((c) => [c.subject, String(c.refusals)])),
          el('h2', {}, 'Proof of work'),
          t.pow_routes.length
            ? table('pow-routes', 'Each proof-of-work route\u2019s load and the level it asks for now', ['Route', 'Requests/s', 'Level', 'Cost', 'Counter'],
              t.pow_routes.map((p) => [p.route, p.rps.toFixed(2), `${p.level + 1} of ${p.levels}`, String(p.cost), String(p.counter)]))
            : el('p', {}, 'No route asks for proof of work.'),
          el('h2', {}, 'Stores as this node sees them'),
          stores.length
            ? table('stores', 'Store reachability', ['Store', 'Backend', 'State', 'Round trip'],
              stores.map(([k, v]) => [k, v.backend, v.reachable ? 'reachable' : 'UNREACHABLE', `${v.latency_ms.toFixed(1)} ms`]))
            : el('p', {}, 'This node uses no shared store.'));
        updated.textContent = `Updated ${new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')}; refreshes every 3 seconds.`;
      } catch (e) { error.textContent = `Could not load traffic: ${e.message}`; }
    }
    root.append(el('h1', {}, 'Traffic on this node'), updated, error, body);
    load(false);
    timer = setInterval(() => load(true), 3000);
  }

  // ---- config --------------------------------------------------------------------------------

  function configView(root) {
    const error = el('p', { class: 'error', role: 'alert', id: 'config-error' });
    const result = el('div', { id: 'reload-result', role: 'status' });
    const text = el('pre', { id: 'config-text', tabindex: '0', 'aria-label': 'The running config, secrets redacted' });
    function showOutcome(o) {
      if (!o) { result.replaceChildren(el('p', { class: 'note' }, 'No reload since this node started.')); return; }
      result.replaceChildren(el('p', { class: o.ok ? 'ok' : 'error' },
        `Last reload ${new Date(o.at * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')}: ${o.ok ? 'applied' : 'refused; the previous config keeps serving'}.`),
      o.error ? el('pre', { class: 'errors' }, o.error) : null);
    }
    async function load() {
      try {
        const c = await api('GET', '/admin/v1/config');
        text.textContent = c.config;
        showOutcome(c.last_reload);
      } catch (e) { error.textContent = `Could not load the config: ${e.message}`; }
    }
    const button = el('button', { type: 'button', id: 'reload', onclick: async () => {
      error.textContent = '';
      button.disabled = true;
      try { showOutcome(await api('POST', '/admin/v1/reload')); await load(); }
      catch (e) { error.textContent = `Could not reload: ${e.message}`; }
      finally { button.disabled = false; }
    } }, 'Reload the config file');
    root.append(el('h1', {}, 'Config'),
      el('p', { class: 'note' }, 'What this node runs, as loaded; secrets are shown as <redacted>. Reload re-reads the config file, as SIGHUP does.'),
      button, error, result, el('h2', {}, 'Running config'), text);
    load();
  }

  // ---- start ---------------------------------------------------------------------------------

  // OIDC sign-in ([admin.oidc]): its button shows only when it is configured.
  fetch('/console/oidc/config', { credentials: 'same-origin', cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : { enabled: false }))
    .then((c) => {
      if (!c.enabled) return;
      $('oidc-link').textContent = `Sign in with ${c.provider}`;
      $('oidc-signin').hidden = false;
    }, () => {});

  // A page load with a live session cookie picks the session up (and its CSRF token).
  api('GET', '/admin/v1/console/session').then(signedIn, () => showSignIn(''));
})();
