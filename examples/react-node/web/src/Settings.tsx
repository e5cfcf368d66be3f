import { useCallback, useEffect, useState } from 'react';
import { api, ApiError, describe, fieldErrors } from './api';
import { Field } from './Items';

// API keys for the user's own scripts, minted by frontgate (self-service keys,
// GET/POST/DELETE /.frontgate/keys). A key acts as its owner, only within its scopes, and
// only until it expires or is revoked here. The key itself is shown once.
interface Key {
  id: string;
  name: string;
  scopes: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

const SCOPES = [{ scope: 'items:read', label: 'Read my items (GET /api/export/items)' }];
const date = (s: string | null) => (s ? new Date(s).toLocaleString() : '—');

export function Settings() {
  const [keys, setKeys] = useState<Key[] | null>(null);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<string[]>(['items:read']);
  const [expiresIn, setExpiresIn] = useState('30d');
  const [fresh, setFresh] = useState<{ key: string; name: string } | null>(null);
  const [message, setMessage] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});

  const fail = (e: unknown) => {
    if (e instanceof ApiError) {
      setMessage(describe(e.problem));
      setErrors(fieldErrors(e.problem));
    } else setMessage('The network failed. Please try again.');
  };
  const reload = useCallback(async () => {
    try {
      setKeys((await api<{ keys: Key[] }>('/.frontgate/keys')).keys);
    } catch (e) {
      fail(e);
    }
  }, []);
  useEffect(() => {
    reload();
  }, [reload]);

  const mint = async (e: React.FormEvent) => {
    e.preventDefault();
    setMessage('');
    setErrors({});
    try {
      const created = await api<Key & { key: string }>('/.frontgate/keys', { method: 'POST', body: { name, scopes, expires_in: expiresIn } });
      setFresh({ key: created.key, name: created.name });
      setName('');
      await reload();
    } catch (err) {
      fail(err);
    }
  };
  const revoke = async (id: string) => {
    setMessage('');
    try {
      await api<void>(`/.frontgate/keys/${encodeURIComponent(id)}`, { method: 'DELETE' });
      setFresh(null);
      await reload();
    } catch (err) {
      fail(err);
    }
  };

  return (
    <section>
      <h1>API keys</h1>
      <p className="muted">Keys let your own scripts read your items. A key can do only what its scopes allow, and stops working the moment you revoke it.</p>
      {message && <p className="error" role="alert" data-testid="page-error">{message}</p>}
      {fresh && (
        <div className="card fresh" data-testid="new-key">
          <p><strong>{fresh.name}</strong>: copy this key now; it will not be shown again.</p>
          <code data-testid="new-key-value">{fresh.key}</code>
          <p className="muted">Try it: <code>curl -H "X-API-Key: {fresh.key}" {location.origin}/api/export/items</code></p>
          <button type="button" onClick={() => navigator.clipboard?.writeText(fresh.key)}>Copy</button>
        </div>
      )}
      <form className="card" onSubmit={mint} noValidate aria-label="New API key">
        <Field label="Name" name="key-name" error={errors.name}>
          <input id="key-name" name="name" value={name} placeholder="e.g. backup script" onChange={(e) => setName(e.target.value)} />
        </Field>
        <fieldset>
          <legend>Scopes</legend>
          {SCOPES.map((s) => (
            <label key={s.scope} className="check">
              <input type="checkbox" checked={scopes.includes(s.scope)} onChange={(e) => setScopes(e.target.checked ? [...scopes, s.scope] : scopes.filter((x) => x !== s.scope))} />
              {s.label}
            </label>
          ))}
          {errors.scopes && <div className="field-error" role="alert">{errors.scopes}</div>}
        </fieldset>
        <Field label="Expires in" name="key-expires" error={errors.expires_in}>
          <select id="key-expires" value={expiresIn} onChange={(e) => setExpiresIn(e.target.value)}>
            <option value="1d">1 day</option>
            <option value="7d">7 days</option>
            <option value="30d">30 days</option>
            <option value="90d">90 days</option>
          </select>
        </Field>
        <button type="submit">Create key</button>
      </form>
      {keys && keys.length > 0 && (
        <table className="keys">
          <thead>
            <tr><th>Name</th><th>Scopes</th><th>Created</th><th>Expires</th><th>Last used</th><th></th></tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.id} data-testid="key-row" data-key-id={k.id}>
                <td>{k.name}</td>
                <td>{k.scopes.join(' ')}</td>
                <td>{date(k.created_at)}</td>
                <td>{date(k.expires_at)}</td>
                <td>{date(k.last_used_at)}</td>
                <td>{k.revoked_at ? <span className="muted">revoked</span> : <button type="button" className="link danger" onClick={() => revoke(k.id)}>Revoke</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {keys && keys.length === 0 && <p className="muted">No keys yet.</p>}
    </section>
  );
}
