// The HTTP API of forgelab serve. A token given after the address
// (#token=...) is kept for this tab and sent with every change.

const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) {
  sessionStorage.setItem("forgelab-token", hash.get("token"));
  history.replaceState(null, "", location.pathname + location.search);
}

export async function get(path) {
  const r = await fetch(`api/v1/${path}`);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// post sends a change; the server logs it with source "ui".
export async function post(path, body) {
  const headers = { "Content-Type": "application/json", "X-Forgelab-Source": "ui" };
  const token = sessionStorage.getItem("forgelab-token");
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(`api/v1/${path}`, { method: "POST", headers, body: JSON.stringify(body || {}) });
  const answer = await r.json();
  if (!r.ok) throw new Error(answer.error || r.statusText);
  return answer;
}

export const enc = encodeURIComponent;
