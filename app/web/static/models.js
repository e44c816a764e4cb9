// Models (admin): the token is asked for and kept in sessionStorage (this tab only); versions with
// their metrics, activate / roll back, retrain with live progress, and the job history.
import { api, ApiError } from "./api.js";
import { loadModels } from "./state.js";
import { $, fmt, h, markReady, seconds, showError, toast } from "./ui.js";

const TOKEN_KEY = "deeprec.adminToken";
const KEY_METRICS = ["ndcg@10_all", "precision@10_all", "recall@10_all", "rmse", "test_rmse",
  "test_reconstruction_mse", "mse", "d_prob_test_real", "train_seconds"];
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
let started = false;
let polling = 0;
let versions = [];

const token = () => sessionStorage.getItem(TOKEN_KEY);

export async function show() {
  if (!started) {
    started = true;
    $("#token-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("#token").value);
      $("#token").value = "";
      await unlock();
    });
    $("#token-forget").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); lock(); });
    $("#retrain-form").addEventListener("submit", (event) => { event.preventDefault(); retrain(); });
  }
  if (token()) await unlock();
  else lock();
  markReady("models");
}

function lock(message) {
  clearInterval(polling);
  $("#admin").hidden = true;
  $("#token-form").hidden = false;
  if (message) toast(message, { error: true });
}

async function admin(path, options = {}) {
  try {
    return await api(path, { ...options, token: token() });
  } catch (error) {
    if (error instanceof ApiError && [401, 403].includes(error.status)) {
      sessionStorage.removeItem(TOKEN_KEY);
      lock(`The token was refused (${error.message}).`);
    }
    throw error;
  }
}

async function unlock() {
  try {
    await Promise.all([refreshVersions(), refreshJobs()]);
  } catch (error) {
    if (!(error instanceof ApiError && [401, 403].includes(error.status))) showError(null, error);
    return;
  }
  $("#token-form").hidden = true;
  $("#admin").hidden = false;
  const running = (await admin("/v1/admin/jobs", { params: { limit: 5 } }))
    .find((job) => !FINISHED.has(job.status));
  if (running) { renderJob(running); follow(running.id); }
}

async function refreshVersions() {
  versions = await admin("/v1/admin/models");
  const types = [...new Set([...versions.map((v) => v.model_type), ...Object.keys((await loadModels()).models || {})])].sort();
  const select = $("#retrain-model");
  const chosen = select.value;
  select.replaceChildren(...types.map((t) => h("option", { value: t }, t)));
  if (chosen && types.includes(chosen)) select.value = chosen;
  const rows = versions.map((v) => {
    const active = versions.find((o) => o.model_type === v.model_type && o.is_active);
    const older = active && new Date(v.created_at) < new Date(active.created_at);
    const figures = KEY_METRICS.filter((k) => typeof v.metrics[k] === "number").slice(0, 3)
      .map((k) => `${k} ${fmt(v.metrics[k])}`).join(" · ");
    return h("tr", { dataset: { version: v.version, model: v.model_type } },
      h("td", {}, v.model_type),
      h("td", {}, v.version),
      h("td", {}, new Date(v.created_at).toLocaleString()),
      h("td", { class: "num" }, figures || "–"),
      h("td", {}, v.is_active ? h("span", { class: "chip ok" }, v.serving ? "active, serving" : "active") :
        h("button", { type: "button", onclick: () => activate(v) }, older ? "Roll back to this" : "Activate")));
  });
  $("#versions").replaceChildren(table(["Model", "Version", "Created", "Key figures", "State"], rows));
}

async function refreshJobs() {
  const jobs = await admin("/v1/admin/jobs", { params: { limit: 20 } });
  const rows = jobs.map((job) => h("tr", { dataset: { job: job.id, status: job.status } },
    h("td", { class: "num" }, String(job.id)),
    h("td", {}, job.model_type),
    h("td", {}, h("span", { class: job.status === "succeeded" ? "chip ok" : job.status === "failed" ? "chip bad" : "chip" }, job.status)),
    h("td", {}, new Date(job.created_at).toLocaleString()),
    h("td", { class: "num" }, job.started_at && job.finished_at
      ? seconds((new Date(job.finished_at) - new Date(job.started_at)) / 1000) : "–"),
    h("td", { class: job.error ? "err" : "" }, job.error || (job.model_version_id ? `version #${job.model_version_id}` : "–"))));
  $("#jobs").replaceChildren(table(["Job", "Model", "Status", "Created", "Took", "Result or reason"], rows));
}

function table(headings, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, ...headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...rows));
}

async function activate(version) {
  try {
    await admin(`/v1/admin/models/${version.id}/activate`, { method: "POST" });
    toast(`${version.model_type} ${version.version} is active`);
    await loadModels(true);
    await refreshVersions();
  } catch (error) {
    showError(null, error);
  }
}

async function retrain() {
  const body = { model: $("#retrain-model").value };
  const epochs = $("#retrain-epochs").value;
  if (epochs) body.epochs = Number(epochs);
  const params = $("#retrain-params").value.trim();
  if (params) {
    try {
      body.params = JSON.parse(params);
    } catch (error) {
      showError($("#job-live"), new Error(`Params must be JSON: ${error.message}`));
      return;
    }
  }
  try {
    const job = await admin("/v1/admin/retrain", { method: "POST", body });
    renderJob(job);
    follow(job.id);
    await refreshJobs();
  } catch (error) {
    showError($("#job-live"), error);
  }
}

function follow(jobId) {
  clearInterval(polling);
  const tick = async () => {
    let job;
    try {
      job = await admin(`/v1/admin/jobs/${jobId}`);
    } catch (error) {
      clearInterval(polling);
      showError($("#job-live"), error);
      return;
    }
    renderJob(job);
    if (FINISHED.has(job.status)) {
      clearInterval(polling);
      await loadModels(true);
      await Promise.all([refreshVersions(), refreshJobs()]);
    }
  };
  polling = setInterval(tick, 1000);
}

function renderJob(job) {
  const live = $("#job-live");
  const p = job.progress || null;
  const began = job.started_at ? new Date(job.started_at) : null;
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  const elapsed = p && typeof p.elapsed_s === "number" ? p.elapsed_s : began ? (end - began) / 1000 : null;
  const parts = [h("p", {},
    h("strong", {}, `Job ${job.id}: ${job.model_type} `),
    h("span", { id: "job-status", class: job.status === "succeeded" ? "chip ok" : job.status === "failed" ? "chip bad" : "chip", dataset: { status: job.status } }, job.status))];
  if (p && p.epochs) {
    parts.push(h("p", {}, h("label", { for: "job-progress" }, `Epoch ${p.epoch ?? 0} of ${p.epochs}`), " ",
      h("progress", { id: "job-progress", max: p.epochs, value: p.epoch ?? 0 })));
  }
  const facts = [];
  if (p && p.figure !== undefined && p.value !== undefined && p.value !== null) facts.push(`${p.figure} ${fmt(p.value, 4)}`);
  if (elapsed !== null) facts.push(`elapsed ${seconds(elapsed)}`);
  if (p && typeof p.eta_s === "number" && !FINISHED.has(job.status)) facts.push(`about ${seconds(p.eta_s)} left`);
  if (facts.length) parts.push(h("p", { id: "job-facts" }, facts.join(" · ")));
  if (job.error) parts.push(h("p", { class: "err" }, job.error));
  if (job.status === "succeeded") parts.push(h("p", {}, `Registered as version #${job.model_version_id} and active.`));
  live.replaceChildren(...parts);
}
