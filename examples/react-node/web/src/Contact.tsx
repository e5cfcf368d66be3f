import { useState } from 'react';
import { ApiError, describe, fieldErrors, toProblem } from './api';
import { Field } from './Items';
import { solve } from './pow';

type Form = { name: string; email: string; message: string };

// The public contact form. No sign-in, so frontgate prices it instead: a proof of work per
// client (solved here, in the page) and a rate limit per address.
export function Contact() {
  const [form, setForm] = useState<Form>({ name: '', email: '', message: '' });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [status, setStatus] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const post = (pow?: string) =>
    fetch('/api/contact', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...(pow ? { 'X-Frontgate-Pow': pow } : {}) },
      body: JSON.stringify(form),
    });

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setError('');
    setStatus('Sending…');
    try {
      let res = await post();
      if (res.status === 403) {
        const problem = await toProblem(res);
        if (problem.code !== 'challenge_required' || !problem.challenge) throw new ApiError(problem);
        setStatus('Solving a small puzzle that keeps bots out…');
        res = await post(await solve(problem.challenge));
      }
      if (!res.ok) throw new ApiError(await toProblem(res));
      const { id } = await res.json();
      setStatus(`Thank you! Your message was received (reference ${id.slice(0, 8)}).`);
      setForm({ name: '', email: '', message: '' });
    } catch (err) {
      setStatus('');
      if (err instanceof ApiError) {
        setError(describe(err.problem));
        setErrors(fieldErrors(err.problem));
      } else {
        setError(err instanceof Error ? err.message : 'The network failed. Please try again.');
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <h1>Contact us</h1>
      <form className="card" onSubmit={submit} noValidate aria-label="Contact">
        <Field label="Name" name="name" error={errors.name}>
          <input id="name" name="name" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} aria-invalid={!!errors.name} />
        </Field>
        <Field label="Email" name="email" error={errors.email}>
          <input id="email" name="email" type="email" value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} aria-invalid={!!errors.email} />
        </Field>
        <Field label="Message" name="message" error={errors.message}>
          <textarea id="message" name="message" rows={4} value={form.message} onChange={(e) => setForm({ ...form, message: e.target.value })} aria-invalid={!!errors.message} />
        </Field>
        <button type="submit" disabled={busy}>Send</button>
        <p className="muted" role="status" data-testid="contact-status">{status}</p>
        {error && <p className="error" role="alert" data-testid="contact-error">{error}</p>}
      </form>
    </section>
  );
}
