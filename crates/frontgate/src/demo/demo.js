// The demo page's client: calls the API through the gateway and shows the answer.
const out = document.getElementById("out");
async function show(res) {
  const text = await res.text();
  out.textContent = `${res.status} ${res.headers.get("content-type") || ""}\n\n${text}`;
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
