// The one way the Studio talks to the server: JSON in and out, errors as ApiError with the
// server's {"detail": ...} made readable. Paths are relative, so the page works under any prefix.

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(detail) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

function describe(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).slice(1).join(".") || "body"}: ${e.msg}`).join("; ");
  }
  return detail ? JSON.stringify(detail) : "";
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** fetch + JSON; `token` sends the admin bearer token; `okStatuses` also accepts e.g. 503. */
export async function api(path, { method = "GET", body, token, params, okStatuses = [], signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path.replace(/^\//, "") + query(params), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const type = response.headers.get("content-type") || "";
  const payload = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok && !okStatuses.includes(response.status)) {
    throw new ApiError(response.status, payload && payload.detail !== undefined ? payload.detail : payload);
  }
  return payload;
}

export async function text(path) {
  const response = await fetch(path.replace(/^\//, ""));
  if (!response.ok) throw new ApiError(response.status, await response.text());
  return response.text();
}
