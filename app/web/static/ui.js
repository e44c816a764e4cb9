// Small DOM helpers shared by the views: element building, the toast, star ratings, pixel images,
// and the "page is drawn" mark the browser tests and the load-time figure read.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

let toastTimer = 0;
export function toast(message, { error = false } = {}) {
  const el = $("#toast");
  el.textContent = message;
  el.classList.toggle("err", error);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, error ? 6000 : 2500);
}

export function showError(where, error) {
  const message = error && error.message ? error.message : String(error);
  if (where) where.replaceChildren(h("span", { class: "err" }, message));
  else toast(message, { error: true });
}

/** Milliseconds since navigation start at which each view first drew its data. */
export const timings = (window.studioTimings = window.studioTimings || {});
export function markReady(view) {
  if (timings[view] === undefined) timings[view] = Math.round(performance.now());
  document.documentElement.setAttribute(`data-ready-${view}`, String(timings[view]));
}

let starGroups = 0;
/** Five radio buttons (arrow keys move, the change saves), labelled for screen readers. */
export function starRating(title, value, onRate) {
  const name = `stars-${++starGroups}`;
  const group = h("fieldset", { class: "stars" }, h("legend", {}, `Your rating of ${title}`));
  const labels = [];
  const paint = (v) => labels.forEach((label, i) => label.classList.toggle("on", i < v));
  for (let n = 1; n <= 5; n++) {
    const id = `${name}-${n}`;
    const input = h("input", { type: "radio", name, id, value: n, checked: Math.round(value || 0) === n });
    const label = h("label", { for: id, title: `${n} star${n > 1 ? "s" : ""}` },
      h("span", { "aria-hidden": "true" }, "★"),
      h("span", { class: "visually-hidden" }, `${n} star${n > 1 ? "s" : ""}`));
    input.addEventListener("change", () => { group.setValue(n); onRate(n); });
    label.addEventListener("mouseenter", () => paint(n));
    label.addEventListener("mouseleave", () => paint(Number(group.dataset.value || 0)));
    labels.push(label);
    group.append(input, label);
  }
  group.dataset.value = String(Math.round(value || 0));
  paint(Math.round(value || 0));
  group.setValue = (v) => {
    group.dataset.value = String(v);
    group.querySelectorAll("input").forEach((input) => { input.checked = Number(input.value) === v; });
    paint(v);
  };
  return group;
}

/** An 8x8 (side x side) image in [0, 1], ink dark on white, drawn pixel-exact on a canvas. */
export function pixelCanvas(pixels, side, label) {
  const canvas = h("canvas", { class: "px", width: side, height: side, role: "img", "aria-label": label || "digit image" });
  paintPixels(canvas, pixels, side);
  return canvas;
}

export function paintPixels(canvas, pixels, side) {
  canvas.width = side;
  canvas.height = side;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(side, side);
  for (let i = 0; i < side * side; i++) {
    const v = Math.round(255 * (1 - Math.min(1, Math.max(0, pixels[i] || 0))));
    image.data[4 * i] = v;
    image.data[4 * i + 1] = v;
    image.data[4 * i + 2] = v;
    image.data[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

// `fn` once `ms` after the last call. `.cancel()` drops a pending call and says whether there
// was one, so an action the user took since (another page, another filter) is not undone by it.
export function debounce(fn, ms) {
  let timer = 0;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => { timer = 0; fn(...args); }, ms);
  };
  debounced.cancel = () => {
    const pending = timer !== 0;
    clearTimeout(timer);
    timer = 0;
    return pending;
  };
  return debounced;
}

export function fmt(value, digits = 3) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value ?? "–");
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(digits);
}

export function seconds(s) {
  if (s === undefined || s === null || !Number.isFinite(s)) return "–";
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}
