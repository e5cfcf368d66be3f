import { useCallback, useEffect, useState } from 'react';
import { api, ApiError, describe, fieldErrors } from './api';

interface Item {
  id: string;
  title: string;
  note: string;
  done: boolean;
  created_at: string;
  updated_at: string;
}
type Draft = { title: string; note: string };

// What the user is typing survives a sign-in round trip (the session may end mid-sentence):
// it is kept in this tab's sessionStorage until it is saved. It is the user's text, not a
// credential; there is nothing secret in the browser to keep.
const DRAFT_KEY = 'items:new-item-draft';
const loadDraft = (): Draft => {
  try {
    return { title: '', note: '', ...JSON.parse(sessionStorage.getItem(DRAFT_KEY) ?? '{}') };
  } catch {
    return { title: '', note: '' };
  }
};

export function Items() {
  const [items, setItems] = useState<Item[] | null>(null);
  const [message, setMessage] = useState('');
  const [draft, setDraft] = useState<Draft>(loadDraft);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [live, setLive] = useState(false);

  const fail = (e: unknown, setFields?: (f: Record<string, string>) => void) => {
    if (e instanceof ApiError) {
      setMessage(describe(e.problem));
      setFields?.(fieldErrors(e.problem));
    } else {
      setMessage('The network failed. Please try again.');
    }
  };

  const reload = useCallback(async () => {
    try {
      const res = await api<{ items: Item[] }>('/api/items');
      setItems(res.items);
    } catch (e) {
      fail(e);
    }
  }, []);

  useEffect(() => {
    reload();
    // Live updates from other tabs: a WebSocket to the same origin. frontgate lets only this
    // origin open it with the session cookie.
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/live`);
    ws.onopen = () => setLive(true);
    ws.onclose = () => setLive(false);
    ws.onmessage = (ev) => {
      if (JSON.parse(ev.data).type !== 'hello') reload();
    };
    return () => ws.close();
  }, [reload]);

  const edit = (d: Draft) => {
    setDraft(d);
    sessionStorage.setItem(DRAFT_KEY, JSON.stringify(d));
  };

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setMessage('');
    setErrors({});
    try {
      await api<Item>('/api/items', { method: 'POST', body: { title: draft.title, note: draft.note, done: false } });
      sessionStorage.removeItem(DRAFT_KEY);
      setDraft({ title: '', note: '' });
      await reload();
    } catch (err) {
      fail(err, setErrors);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <h1>My items {live && <span className="pill" title="Live updates over a WebSocket">live</span>}</h1>
      {message && <p className="error" role="alert" data-testid="page-error">{message}</p>}
      <form className="card" onSubmit={create} noValidate aria-label="New item">
        <Field label="Title" name="title" error={errors.title}>
          <input id="title" name="title" value={draft.title} onChange={(e) => edit({ ...draft, title: e.target.value })} aria-invalid={!!errors.title} aria-describedby="title-error" />
        </Field>
        <Field label="Note" name="note" error={errors.note}>
          <textarea id="note" name="note" rows={2} value={draft.note} onChange={(e) => edit({ ...draft, note: e.target.value })} aria-invalid={!!errors.note} aria-describedby="note-error" />
        </Field>
        <button type="submit" disabled={busy}>Add item</button>
      </form>
      {items === null ? (
        <p className="muted">Loading…</p>
      ) : items.length === 0 ? (
        <p className="muted" data-testid="empty">No items yet.</p>
      ) : (
        <ul className="items">
          {items.map((item) => (
            <Row key={item.id} item={item} reload={reload} fail={fail} />
          ))}
        </ul>
      )}
    </section>
  );
}

function Row(props: { item: Item; reload: () => Promise<void>; fail: (e: unknown, f?: (x: Record<string, string>) => void) => void }) {
  const { item, reload, fail } = props;
  const [editing, setEditing] = useState<Draft | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});

  const save = async (changes: Partial<Item>) => {
    setErrors({});
    try {
      const next = { title: item.title, note: item.note, done: item.done, ...changes };
      await api<Item>(`/api/items/${item.id}`, { method: 'PUT', body: next });
      setEditing(null);
      await reload();
    } catch (e) {
      fail(e, setErrors);
    }
  };
  const remove = async () => {
    try {
      await api<void>(`/api/items/${item.id}`, { method: 'DELETE' });
      await reload();
    } catch (e) {
      fail(e);
    }
  };

  if (editing) {
    return (
      <li className="card">
        <form onSubmit={(e) => { e.preventDefault(); save(editing); }} noValidate aria-label={`Edit ${item.title}`}>
          <Field label="Title" name={`title-${item.id}`} error={errors.title}>
            <input id={`title-${item.id}`} name="title" value={editing.title} onChange={(e) => setEditing({ ...editing, title: e.target.value })} aria-invalid={!!errors.title} />
          </Field>
          <Field label="Note" name={`note-${item.id}`} error={errors.note}>
            <textarea id={`note-${item.id}`} name="note" rows={2} value={editing.note} onChange={(e) => setEditing({ ...editing, note: e.target.value })} />
          </Field>
          <button type="submit">Save</button>{' '}
          <button type="button" className="link" onClick={() => setEditing(null)}>Cancel</button>
        </form>
      </li>
    );
  }
  return (
    <li className="card item" data-testid="item">
      <input type="checkbox" checked={item.done} onChange={(e) => save({ done: e.target.checked })} aria-label={`Done: ${item.title}`} />
      <div className="grow">
        <div className={item.done ? 'title done' : 'title'}>{item.title}</div>
        {item.note && <div className="muted">{item.note}</div>}
      </div>
      <button type="button" className="link" onClick={() => setEditing({ title: item.title, note: item.note })}>Edit</button>
      <button type="button" className="link danger" onClick={remove}>Delete</button>
    </li>
  );
}

export function Field(props: { label: string; name: string; error?: string; children: React.ReactNode }) {
  return (
    <div className="field">
      <label htmlFor={props.name}>{props.label}</label>
      {props.children}
      {props.error && <div className="field-error" id={`${props.name}-error`} role="alert">{props.error}</div>}
    </div>
  );
}
