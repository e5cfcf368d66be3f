// The demo page's client: calls the API through the gateway and shows the answer.
const out = document.getElementById("out");
async function show(res, where = out, note = "") {
  const text = await res.text();
  where.textContent = `${res.status} ${res.headers.get("content-type") || ""}${note}\n\n${text}`;
}
for (const b of document.querySelectorAll("button[data-path]")) {
  b.addEventListener("click", async () => show(await fetch(b.dataset.path, { headers: { accept: "application/json" } })));
}
document.getElementById("create").addEventListener("click", async () => {
  show(await fetch("/api/items", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ name: `made at ${new Date().toISOString()}` }),
  }));
});

// Proof of work: widget.js's frontgate.fetch solves the challenge on a 403 and retries once.
const powOut = document.getElementById("pow-out");
const feedback = () => ({
  method: "POST",
  headers: { "content-type": "application/json", accept: "application/json" },
  body: JSON.stringify({ message: document.getElementById("message").value }),
});
document.getElementById("plain-feedback").addEventListener("click", async () => show(await fetch("/api/feedback", feedback()), powOut));
document.getElementById("feedback").addEventListener("click", async () => {
  powOut.textContent = "Solving the challenge…";
  const started = performance.now();
  try {
    const res = await window.frontgate.fetch("/api/feedback", feedback());
    await show(res, powOut, `  (${Math.round(performance.now() - started)} ms, solving included)`);
  } catch (e) {
    powOut.textContent = `Could not solve the challenge: ${e}`;
  }
});
