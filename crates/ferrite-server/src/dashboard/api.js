// Talking to this node's API: /v1 and /metrics, with the same auth as any
// client. Without JWT_AUTH_KEY a loopback browser is answered as it is;
// with a key, the token the user pastes is kept in sessionStorage (gone
// when the tab closes, never in localStorage or a cookie) and sent as
// `Authorization: Bearer`.

const TOKEN_KEY = "ferrite.token";

/** The answer was 401: the page must ask for a token. */
export class AuthError extends Error {}

/** Any other failed request, with the server's own message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  const trimmed = value.trim().replace(/^Bearer\s+/i, "");
  if (trimmed) sessionStorage.setItem(TOKEN_KEY, trimmed);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

async function request(path, method = "GET", body = undefined) {
  const headers = {};
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    throw new ApiError(0, `the node does not answer (${e.message})`);
  }
  if (response.ok) return response;
  const message = await errorMessage(response);
  if (response.status === 401) throw new AuthError(message);
  throw new ApiError(response.status, message);
}

/** `{"error":{"message":...}}`, or the status when the body is not that. */
async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && typeof body.error.message === "string") return body.error.message;
  } catch (_) {
    // not JSON: the status says enough
  }
  return `${response.status} ${response.statusText}`;
}

export async function json(path) {
  return (await request(path)).json();
}

/** A change (`POST`, `PATCH`) with an optional JSON body; its JSON answer. */
export async function send(method, path, body) {
  return (await request(path, method, body)).json();
}

export async function text(path) {
  return (await request(path)).text();
}

/** A call's log or output: text, at most `limit` bytes of it shown. */
export async function blob(path, limit) {
  const response = await request(path);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const shown = bytes.subarray(0, limit);
  return {
    text: new TextDecoder("utf-8", { fatal: false }).decode(shown),
    total: bytes.length,
    truncated: bytes.length > limit,
  };
}

export const enc = encodeURIComponent;
