// Film metadata cache (filled from every list the server sends) and the film dialog: details,
// the user's stars, and similar films from a model's item embedding.
import { api } from "./api.js";
import { embeddingTypes, rate, state } from "./state.js";
import { $, h, showError, starRating, toast } from "./ui.js";

const films = new Map();

export function remember(items) {
  for (const item of items || []) {
    if (item && item.id !== undefined && item.title) films.set(item.id, item);
  }
}

export async function film(id) {
  if (!films.has(id)) films.set(id, await api(`/v1/items/${id}`));
  return films.get(id);
}

export function describeFilm(item) {
  const bits = [];
  if (item.year) bits.push(String(item.year));
  if (item.genres && item.genres.length) bits.push(item.genres.join(", "));
  return bits.join(" · ");
}

/** A button with the film's title that opens its dialog. */
export function filmLink(item) {
  return h("button", { type: "button", class: "link", onclick: () => openFilm(item.id) }, item.title);
}

/** Stars for a film that save the rating (and say so) when changed. */
export function filmStars(item) {
  const stars = starRating(item.title, state.ratings.get(item.id), async (value) => {
    try {
      await rate(item.id, value);
      toast(`Rated ${item.title}: ${value} of 5`);
    } catch (error) {
      stars.setValue(Math.round(state.ratings.get(item.id) || 0)); // show what is stored
      showError(null, error);
    }
  });
  return stars;
}

export async function openFilm(id) {
  const dialog = $("#film");
  const list = $("#film-similar");
  list.replaceChildren();
  $("#film-similar-note").textContent = "Loading similar films…";
  $("#film-rate").replaceChildren();
  if (!dialog.open) dialog.showModal();
  try {
    const item = await film(id);
    $("#film-title").textContent = item.title;
    $("#film-meta").textContent = describeFilm(item);
    $("#film-rate").replaceChildren(
      state.userId ? filmStars(item) : h("p", { class: "muted small" }, "Choose a user on the Recommend page to rate this film."),
    );
    const model = embeddingTypes()[0];
    if (!model) {
      $("#film-similar-note").textContent = "No loaded model has item embeddings.";
      return;
    }
    const body = await api(`/v1/items/${id}/similar`, { params: { k: 10, model } });
    remember(body.similar);
    $("#film-similar-note").textContent = `Nearest in the ${body.model} embedding (version ${body.model_version}).`;
    list.replaceChildren(...body.similar.map((s) => h("li", {}, filmLink(s), " ",
      h("span", { class: "film-meta" }, `${describeFilm(s)} · cosine ${s.score.toFixed(2)}`))));
  } catch (error) {
    showError($("#film-similar-note"), error);
  }
}
