// The test page's glue: once the official altcha widget has solved frontgate's challenge, post
// its `altcha` form field to /.frontgate/verify (which sets the clearance cookie), then make the
// protected POST. The result lands in #result for the test to read.
const widget = document.querySelector('altcha-widget');
const out = document.getElementById('result');
let done = false;
widget.addEventListener('statechange', async (ev) => {
  if (ev.detail.state === 'error') out.textContent = JSON.stringify({ error: 'widget error' });
  if (ev.detail.state !== 'verified' || done) return;
  done = true;
  const form = new FormData(document.getElementById('f'));
  const verify = await fetch('/.frontgate/verify', { method: 'POST', body: new URLSearchParams(form) });
  const signup = await fetch('/api/signup', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: form.get('name') }) });
  out.textContent = JSON.stringify({ field: form.get('altcha') ? 'present' : 'missing', verify: verify.status, signup: signup.status });
});
