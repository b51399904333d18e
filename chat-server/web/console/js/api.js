// The HTTP API client: the session's token on every request, JSON in and out, errors as
// ApiError with the server's code and field. A 401 on a signed-in session means the
// token expired or was revoked: the session ends and the console shows the login.

const KEY = 'console.session';

/** The signed-in session ({token, agent}) kept in sessionStorage: gone with the tab. */
export const session = {
  get() {
    try { return JSON.parse(sessionStorage.getItem(KEY)); } catch { return null; }
  },
  set(value) { sessionStorage.setItem(KEY, JSON.stringify(value)); },
  clear() { sessionStorage.removeItem(KEY); },
};

let onUnauthorized = () => {};
/** What to do when the server no longer accepts the session (set by main.js). */
export function whenUnauthorized(fn) { onUnauthorized = fn; }

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
    this.field = e.field;
  }
}

/** One request. `body` is JSON, or FormData for uploads; `raw` answers the Response. */
export async function api(method, path, body, { raw = false } = {}) {
  const s = session.get();
  const headers = {};
  if (s) headers.authorization = `Bearer ${s.token}`;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const resp = await fetch(path, { method, headers, body: payload });
  if (resp.status === 401 && s) {
    onUnauthorized();
    throw new ApiError(401, await resp.json().catch(() => null));
  }
  if (!resp.ok) throw new ApiError(resp.status, await resp.json().catch(() => null));
  if (raw) return resp;
  return resp.status === 204 ? null : resp.json();
}

/** `?a=1&b=2` from an object, skipping empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A file of a conversation as an object URL (files need the token, so no plain links). */
export async function fileUrl(conversationId, key) {
  const resp = await api('GET', `/v1/conversations/${conversationId}/files/${key}`, undefined, { raw: true });
  return URL.createObjectURL(await resp.blob());
}
