// Digits: a drawing pad (pointer events: mouse, pen and touch) downsampled to the models' 8x8
// grid, reconstructions by the autoencoder, the RBM and the DBN (with optional noise), the GAN
// discriminator's verdict, GAN samples by seed and label, and a seed-to-seed interpolation strip.
import { api, query } from "./api.js";
import { loadModels, reconstructors, state } from "./state.js";
import { $, debounce, h, markReady, paintPixels, pixelCanvas, showError } from "./ui.js";

const SIDE = 8;
let started = false;
let drawing = false;
let inked = false;
let seq = 0;

export async function show() {
  if (started) return;
  started = true;
  setupPad();
  $("#noise").addEventListener("input", () => {
    $("#noise-out").textContent = `${Math.round(Number($("#noise").value) * 100)}%`;
    judge();
  });
  const labels = $("#gan-label");
  for (let d = 0; d <= 9; d++) labels.append(h("option", { value: d }, String(d)));
  $("#gan-form").addEventListener("submit", (event) => { event.preventDefault(); sample(); });
  $("#gan-reseed").addEventListener("click", () => {
    $("#gan-seed").value = String(Math.floor(Math.random() * 1e6));
    sample();
  });
  $("#lerp-form").addEventListener("submit", (event) => { event.preventDefault(); interpolate(); });
  await loadModels();
  const figures = $("#recons");
  for (const [key, type, name] of reconstructors()) {
    figures.append(h("figure", { dataset: { model: key } },
      pixelCanvas(new Array(SIDE * SIDE).fill(0), SIDE, `${name} reconstruction`),
      h("figcaption", {}, `${name}${type in state.models ? "" : " (not loaded)"}`)));
  }
  if ("gan" in state.models) {
    await Promise.all([sample(), interpolate()]);
  } else {
    $("#gan-grid").replaceChildren(h("p", { class: "muted" }, "No GAN is loaded on this worker."));
  }
  markReady("digits");
}

function setupPad() {
  const pad = $("#pad");
  const ctx = pad.getContext("2d");
  clearPad();
  const at = (event) => {
    const rect = pad.getBoundingClientRect();
    return [(event.clientX - rect.left) * (pad.width / rect.width), (event.clientY - rect.top) * (pad.height / rect.height)];
  };
  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    const [x, y] = at(event);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 0.1, y);
    ctx.stroke();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const [x, y] = at(event);
    ctx.lineTo(x, y);
    ctx.stroke();
    inked = true;
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    inked = true;
    judge();
  };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  $("#pad-clear").addEventListener("click", () => { clearPad(); inked = false; });
}

function clearPad() {
  const pad = $("#pad");
  const ctx = pad.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#000000";
  ctx.lineWidth = 24;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
}

/** The drawing as the digits data set stores one: the ink's bounding box scaled into a 32x32
 * frame (aspect kept, centred), then each 4x4 block's ink fraction: 8x8 values in [0, 1]. */
export function downsample(pad) {
  const { width, height } = pad;
  const data = pad.getContext("2d").getImageData(0, 0, width, height).data;
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[4 * (y * width + x)] < 128) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return new Array(SIDE * SIDE).fill(0);
  const size = Math.max(x1 - x0 + 1, y1 - y0 + 1);
  const frame = document.createElement("canvas");
  frame.width = 32;
  frame.height = 32;
  const fctx = frame.getContext("2d");
  fctx.fillStyle = "#ffffff";
  fctx.fillRect(0, 0, 32, 32);
  const scale = 32 / size;
  const w = (x1 - x0 + 1) * scale;
  const hgt = (y1 - y0 + 1) * scale;
  fctx.drawImage(pad, x0, y0, x1 - x0 + 1, y1 - y0 + 1, (32 - w) / 2, (32 - hgt) / 2, w, hgt);
  const small = fctx.getImageData(0, 0, 32, 32).data;
  const pixels = [];
  for (let by = 0; by < SIDE; by++) {
    for (let bx = 0; bx < SIDE; bx++) {
      let ink = 0;
      for (let y = 0; y < 4; y++) {
        for (let x = 0; x < 4; x++) ink += 1 - small[4 * ((4 * by + y) * 32 + 4 * bx + x)] / 255;
      }
      pixels.push(Math.round((ink / 16) * 1000) / 1000);
    }
  }
  return pixels;
}

const judge = debounce(async () => {
  if (!inked) return;
  const mine = ++seq;
  const pixels = downsample($("#pad"));
  const noise = Number($("#noise").value);
  paintPixels($("#recon-input"), pixels, SIDE);
  const tasks = reconstructors().filter(([, type]) => type in state.models).map(async ([key]) => {
    const figure = $(`#recons figure[data-model="${key}"]`);
    try {
      const body = await api(`/v1/images/reconstruct${query({ model: key, noise, seed: 0 })}`, {
        method: "POST",
        body: { images: [pixels] },
      });
      if (mine !== seq) return;
      paintPixels(figure.querySelector("canvas"), body.reconstructions[0], body.side);
      if (noise > 0) paintPixels($("#recon-input"), body.inputs[0], body.side);
      figure.querySelector("figcaption").textContent =
        `${body.model} ${body.model_version} · MSE ${body.mse.toFixed(3)}`;
      figure.dataset.done = "1";
    } catch (error) {
      showError(figure.querySelector("figcaption"), error);
    }
  });
  if ("gan" in state.models) {
    tasks.push(api("/v1/gan/discriminate", { method: "POST", body: { images: [pixels] } })
      .then((body) => {
        if (mine !== seq) return;
        const p = body.probabilities[0];
        $("#disc").replaceChildren("GAN discriminator: ",
          h("meter", { min: 0, max: 1, value: p, "aria-label": "probability real" }), " ",
          h("strong", { id: "disc-p" }, `${(100 * p).toFixed(1)}%`), " likely a real digit");
      }, (error) => showError($("#disc"), error)));
  }
  await Promise.all(tasks);
}, 120);

async function sample() {
  const grid = $("#gan-grid");
  const params = { n: $("#gan-n").value, seed: $("#gan-seed").value, label: $("#gan-label").value };
  try {
    const body = await api("/v1/gan/samples", { params });
    grid.replaceChildren(...body.images.map((img, i) =>
      pixelCanvas(img, body.side, `generated digit ${body.labels ? body.labels[i] : i + 1}`)));
    grid.dataset.label = body.label === null ? "" : String(body.label);
    // An unconditional GAN takes no label: say so instead of letting the choice fail.
    $("#gan-label").disabled = body.labels === null;
    grid.dataset.seed = String(body.seed);
  } catch (error) {
    showError(grid, error);
  }
}

async function interpolate() {
  const strip = $("#lerp-strip");
  const params = {
    seed_a: $("#lerp-a").value,
    seed_b: $("#lerp-b").value,
    steps: $("#lerp-steps").value,
    label: $("#gan-label").value,
  };
  try {
    const body = await api("/v1/gan/interpolate", { params });
    strip.replaceChildren(...body.images.map((img, i) =>
      pixelCanvas(img, body.side, `step ${i + 1} of ${body.images.length}`)));
  } catch (error) {
    showError(strip, error);
  }
}
