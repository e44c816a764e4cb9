// Map: the 2-D item embedding as a canvas scatter. All points are drawn ONCE to an offscreen
// canvas; hovering only copies it back and rings one point, found through a grid of buckets, so
// thousands of films stay smooth. Colour = the film's first genre; the user's films are ringed.
import { api } from "./api.js";
import { openFilm, remember } from "./films.js";
import { embeddingTypes, loadModels, onChange, restoreUser, state } from "./state.js";
import { $, h, markReady, showError } from "./ui.js";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
  "#17becf", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d",
  "#31a354", "#756bb1", "#636363", "#a55194"];
const RADIUS = 3;
const CELL = 12; // px per hit-test bucket
const PAD = 14;

let points = [];        // {id, title, genres, x, y} in canvas px
let offscreen = null;
let grid = new Map();
let hover = null;
let colours = new Map();
let groups = [];
let started = false;
let loadSeq = 0;

export async function show() {
  if (started) return;
  started = true;
  const canvas = $("#map-canvas");
  canvas.addEventListener("pointermove", (event) => pick(event, false));
  canvas.addEventListener("pointerleave", () => { hover = null; blit(); $("#map-tip").hidden = true; });
  canvas.addEventListener("click", (event) => pick(event, true));
  canvas.addEventListener("keydown", step);
  $("#map-form").addEventListener("change", () => load());
  // A hidden view has no size: redraw only when the canvas is on screen.
  new ResizeObserver(() => { if (points.length && canvas.clientWidth) { layout(); render(); } }).observe(canvas);
  onChange(() => { if (points.length && canvas.clientWidth) render(); });
  await Promise.all([loadModels(), restoreUser()]);
  const select = $("#map-model");
  const types = embeddingTypes();
  select.replaceChildren(...types.map((t) => h("option", { value: t }, t)));
  if (!types.length) {
    $("#map-summary").textContent = "No loaded model has item embeddings.";
    markReady("map");
    return;
  }
  await load();
  markReady("map");
}

let raw = null;

async function load() {
  const seq = ++loadSeq;
  const model = $("#map-model").value;
  const method = new FormData($("#map-form")).get("method") || "pca";
  $("#map-summary").textContent = `Reducing the ${model} embedding by ${method === "pca" ? "PCA" : "an autoencoder"}…`;
  try {
    const body = await api("/v1/embeddings/items", { params: { model, method, dims: 2 } });
    if (seq !== loadSeq) return;
    raw = body;
    remember(body.points.map((p) => ({ id: p.id, title: p.title, genres: p.genres })));
    groups = mainGenres(body.points);
    colours = genreColours(groups);
    layout();
    render();
    legend();
  } catch (error) {
    showError($("#map-summary"), error);
  }
}

/** Each film's most specific genre, the rarest of its genres over the catalogue (as the
 * server's PNG map does); colours go to the groups by size. */
function mainGenres(rows) {
  const counts = new Map();
  for (const p of rows) for (const g of p.genres || []) counts.set(g, (counts.get(g) || 0) + 1);
  const rarest = (gs) => gs.reduce((best, g) =>
    (counts.get(g) < counts.get(best) || (counts.get(g) === counts.get(best) && g < best) ? g : best));
  return rows.map((p) => (p.genres && p.genres.length ? rarest(p.genres) : "unknown"));
}

function genreColours(groups) {
  const counts = new Map();
  for (const g of groups) counts.set(g, (counts.get(g) || 0) + 1);
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([g]) => g);
  return new Map(ranked.map((g, i) => [g, PALETTE[i % PALETTE.length]]));
}

function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

function layout() {
  const canvas = $("#map-canvas");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const [x0, x1] = extent(raw.points.map((p) => p.coords[0]));
  const [y0, y1] = extent(raw.points.map((p) => p.coords[1]));
  const sx = (width - 2 * PAD) / (x1 - x0 || 1);
  const sy = (height - 2 * PAD) / (y1 - y0 || 1);
  points = raw.points.map((p, i) => ({
    id: p.id,
    group: groups[i],
    title: p.title || `item ${p.id}`,
    genres: p.genres || [],
    x: PAD + (p.coords[0] - x0) * sx,
    y: height - PAD - (p.coords[1] - y0) * sy,
  }));
  grid = new Map();
  points.forEach((p, i) => {
    const key = `${Math.floor(p.x / CELL)},${Math.floor(p.y / CELL)}`;
    if (!grid.has(key)) grid.set(key, []);
    grid.get(key).push(i);
  });
}

function render() {
  const canvas = $("#map-canvas");
  const ratio = window.devicePixelRatio || 1;
  offscreen = offscreen || document.createElement("canvas");
  offscreen.width = canvas.width;
  offscreen.height = canvas.height;
  const ctx = offscreen.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.clientWidth, canvas.clientHeight);
  ctx.globalAlpha = 0.8;
  let drawn = 0;
  for (const p of points) {
    ctx.fillStyle = colours.get(p.group) || "#636363";
    ctx.beginPath();
    ctx.arc(p.x, p.y, RADIUS, 0, 2 * Math.PI);
    ctx.fill();
    drawn++;
  }
  ctx.globalAlpha = 1;
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#111827";
  let rated = 0;
  for (const p of points) {
    if (!state.ratings.has(p.id)) continue;
    ctx.beginPath();
    ctx.arc(p.x, p.y, RADIUS + 3, 0, 2 * Math.PI);
    ctx.stroke();
    rated++;
  }
  canvas.dataset.points = String(drawn);
  canvas.dataset.rated = String(rated);
  const who = state.userId ? `; user ${state.userId}'s ${rated} rated film${rated === 1 ? "" : "s"} ringed in black` : "";
  $("#map-summary").textContent =
    `${drawn} films, ${raw.model} version ${raw.model_version}, ${raw.method === "pca" ? "PCA" : "autoencoder"} to 2-D${who}. Hover for a title, click to open the film.`;
  canvas.setAttribute("aria-label", `Scatter plot of ${drawn} films coloured by genre`);
  blit();
}

function blit() {
  const canvas = $("#map-canvas");
  if (!offscreen) return;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.drawImage(offscreen, 0, 0);
  if (hover) {
    const ratio = window.devicePixelRatio || 1;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.lineWidth = 3;
    ctx.strokeStyle = "#f59e0b";
    ctx.beginPath();
    ctx.arc(hover.x, hover.y, RADIUS + 5, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

/** Keyboard: arrow keys walk the films from left to right (up/down by ten), Enter opens one. */
function step(event) {
  if (!points.length) return;
  const order = byX();
  const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowUp: 10, ArrowDown: -10 };
  if (event.key === "Enter" && hover) {
    event.preventDefault();
    openFilm(hover.id);
    return;
  }
  if (!(event.key in moves)) return;
  event.preventDefault();
  const at = hover ? order.indexOf(hover) : -1;
  const next = order[Math.min(order.length - 1, Math.max(0, at + moves[event.key]))];
  show1(next);
}

let sortedByX = null;
function byX() {
  if (!sortedByX || sortedByX.length !== points.length || !points.includes(sortedByX[0])) {
    sortedByX = [...points].sort((a, b) => a.x - b.x);
  }
  return sortedByX;
}

function show1(found) {
  const canvas = $("#map-canvas");
  const rect = canvas.getBoundingClientRect();
  hover = found;
  blit();
  const tip = $("#map-tip");
  if (!found) { tip.hidden = true; canvas.style.cursor = "crosshair"; return; }
  canvas.style.cursor = "pointer";
  tip.textContent = `${found.title}${found.genres.length ? ` — ${found.genres.join(", ")}` : ""}`;
  tip.hidden = false;
  tip.style.left = `${Math.max(0, Math.min(found.x + 10, rect.width - 200))}px`;
  tip.style.top = `${Math.max(0, found.y - 34)}px`;
}

function nearest(x, y) {
  const cx = Math.floor(x / CELL);
  const cy = Math.floor(y / CELL);
  let best = null;
  let bestD = (RADIUS + 5) ** 2;
  for (let dx = -1; dx <= 1; dx++) {
    for (let dy = -1; dy <= 1; dy++) {
      for (const i of grid.get(`${cx + dx},${cy + dy}`) || []) {
        const p = points[i];
        const d = (p.x - x) ** 2 + (p.y - y) ** 2;
        if (d <= bestD) { bestD = d; best = p; }
      }
    }
  }
  return best;
}

function pick(event, open) {
  const canvas = $("#map-canvas");
  const rect = canvas.getBoundingClientRect();
  const x = event.clientX - rect.left;
  const y = event.clientY - rect.top;
  const found = nearest(x, y);
  if (open) {
    if (found) openFilm(found.id);
    return;
  }
  if (found !== hover) show1(found);
}

function legend() {
  $("#map-legend").replaceChildren(...[...colours.entries()].map(([genre, colour]) =>
    h("li", {}, h("span", { style: `background:${colour}` }), genre)));
}
