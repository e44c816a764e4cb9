// Status: liveness, readiness, the models this worker serves, and a few Prometheus figures.
import { api, text } from "./api.js";
import { $, fmt, h, markReady, showError } from "./ui.js";

let started = false;

export async function show() {
  if (!started) {
    started = true;
    $("#status-refresh").addEventListener("click", refresh);
  }
  await refresh();
  markReady("status");
}

async function refresh() {
  const [health, ready, metrics] = await Promise.all([
    api("/healthz").catch((e) => ({ status: `down: ${e.message}` })),
    api("/readyz", { okStatuses: [503] }).catch((e) => ({ ready: false, database: e.message, models: {}, missing: [], errors: {} })),
    text("/metrics").catch((e) => { showError($("#figures"), e); return ""; }),
  ]);
  const facts = [
    ["Liveness", health.status === "ok" ? h("span", { class: "chip ok" }, "ok") : health.status],
    ["Readiness", ready.ready ? h("span", { class: "chip ok", id: "ready" }, "ready") : h("span", { class: "chip bad", id: "ready" }, "not ready")],
    ["Database", ready.database],
    ["Missing models", ready.missing && ready.missing.length ? ready.missing.join(", ") : "none"],
  ];
  for (const [type, reason] of Object.entries(ready.errors || {})) facts.push([`${type} failed`, reason]);
  $("#health").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const samples = parse(metrics);
  const loadedAt = new Map(samples.filter((s) => s.name === "deeprec_model_loaded_timestamp_seconds")
    .map((s) => [s.labels.model_type, s.value]));
  const served = Object.entries(ready.models || {}).sort();
  $("#served").replaceChildren(served.length ? h("table", {},
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Model"), h("th", { scope: "col" }, "Version"), h("th", { scope: "col" }, "Loaded"))),
    h("tbody", {}, ...served.map(([type, version]) => h("tr", { dataset: { model: type } },
      h("td", {}, type), h("td", {}, version),
      h("td", {}, loadedAt.has(type) ? new Date(1000 * loadedAt.get(type)).toLocaleString() : "–")))))
    : h("p", { class: "muted" }, "No model is loaded."));
  $("#figures").replaceChildren(figures(samples));
}

/** Prometheus text format -> [{name, labels, value}] (comments skipped). */
export function parse(body) {
  const out = [];
  for (const line of body.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    out.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return out;
}

function sum(samples, name, keep = () => true) {
  return samples.filter((s) => s.name === name && keep(s.labels)).reduce((a, s) => a + s.value, 0);
}

function figures(samples) {
  const requests = sum(samples, "deeprec_http_requests_total");
  const errors5xx = sum(samples, "deeprec_http_requests_total", (l) => (l.status || "").startsWith("5"));
  const latencySum = sum(samples, "deeprec_http_request_duration_seconds_sum");
  const latencyCount = sum(samples, "deeprec_http_request_duration_seconds_count");
  const rows = [
    ["HTTP requests", fmt(requests)],
    ["Server errors (5xx)", `${fmt(errors5xx)}${requests ? ` (${((100 * errors5xx) / requests).toFixed(2)}%)` : ""}`],
    ["Mean request latency", latencyCount ? `${((1000 * latencySum) / latencyCount).toFixed(1)} ms` : "–"],
    ["p95 request latency (≤)", quantile(samples, "deeprec_http_request_duration_seconds_bucket", 0.95)],
  ];
  const inference = new Map();
  for (const s of samples) {
    if (!s.name.startsWith("deeprec_inference_duration_seconds_")) continue;
    const key = `${s.labels.model_type} ${s.labels.operation}`;
    const entry = inference.get(key) || { sum: 0, count: 0 };
    if (s.name.endsWith("_sum")) entry.sum += s.value;
    if (s.name.endsWith("_count")) entry.count += s.value;
    inference.set(key, entry);
  }
  for (const [key, e] of [...inference.entries()].sort()) {
    if (e.count) rows.push([`Inference: ${key}`, `${fmt(e.count)} calls, mean ${((1000 * e.sum) / e.count).toFixed(1)} ms`]);
  }
  for (const s of samples.filter((x) => x.name === "deeprec_retrain_jobs_total")) {
    rows.push([`Retrain jobs: ${s.labels.model_type} ${s.labels.status}`, fmt(s.value)]);
  }
  return h("table", {}, h("tbody", {}, ...rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { class: "num" }, v)))));
}

/** The smallest histogram bucket bound holding quantile q of all requests (an upper bound). */
function quantile(samples, name, q) {
  const buckets = new Map();
  for (const s of samples) {
    if (s.name !== name) continue;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) || 0) + s.value);
  }
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) || 0;
  if (!total) return "–";
  const bound = bounds.find((b) => buckets.get(b) >= q * total);
  return bound === Infinity ? "> largest bucket" : `${(1000 * bound).toFixed(1)} ms`;
}
