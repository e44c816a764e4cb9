// Recommend: choose a user, search the catalogue, rate with stars, and see every loaded model's
// recommendations side by side, refreshed as soon as a rating is saved.
import { api } from "./api.js";
import { describeFilm, film, filmLink, filmStars, remember } from "./films.js";
import { createUser, loadModels, onChange, recommenderTypes, restoreUser, setUser, state } from "./state.js";
import { $, debounce, h, markReady, showError, toast } from "./ui.js";

const PAGE = 10;
const MAX_LISTED_RATINGS = 30;
let offset = 0;
let total = 0;
let searchSeq = 0;
let recsSeq = 0;
let started = false;

export async function show() {
  if (started) return;
  started = true;
  $("#user-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = Number($("#user-id").value);
    try { await setUser(id); } catch (error) { showError($("#user-summary"), error); }
  });
  $("#new-user").addEventListener("click", async () => {
    try {
      const user = await createUser();
      toast(`New user ${user.id} created`);
    } catch (error) { showError($("#user-summary"), error); }
  });
  // Typing searches 200 ms after the last key; any other search action takes over from a typed
  // search still waiting (it reads the title as it is now), so that search cannot come in
  // later and reset the page the user has since moved to. A page button pressed while a typed
  // search waits shows the first page of the new title.
  const research = debounce(() => { offset = 0; search(); }, 200);
  const firstPage = () => { research.cancel(); offset = 0; search(); };
  const page = (step) => { offset = research.cancel() ? 0 : Math.max(0, offset + step); search(); };
  $("#search-q").addEventListener("input", research);
  $("#search-genre").addEventListener("change", firstPage);
  $("#search-form").addEventListener("submit", (event) => { event.preventDefault(); firstPage(); });
  $("#search-prev").addEventListener("click", () => page(-PAGE));
  $("#search-next").addEventListener("click", () => page(PAGE));
  // The catalogue page does not wait for the user or the models: all three requests at once.
  const searched = search();
  await Promise.all([loadModels(), restoreUser()]);
  renderUser();
  await Promise.all([searched, renderRatings(), recommend()]);
  markReady("recommend");
  onChange((what, detail) => {
    renderUser();
    recommend();
    // Re-render lists only when their rows change: a re-render would take the keyboard focus
    // away from the stars being changed.
    if (what === "user") { search(); renderRatings(); }
    else if (detail && detail.added) renderRatings();
  });
}

function renderUser() {
  const summary = $("#user-summary");
  if (!state.userId) {
    summary.textContent = "No user chosen yet: pick an id or create a new user.";
    return;
  }
  $("#user-id").value = String(state.userId);
  const n = state.ratings.size;
  summary.replaceChildren("Rating as ", h("strong", { id: "current-user" }, `user ${state.userId}`),
    ` (${n} rating${n === 1 ? "" : "s"}).`);
}

async function search() {
  const seq = ++searchSeq;
  const params = { q: $("#search-q").value.trim(), genre: $("#search-genre").value, limit: PAGE, offset };
  try {
    const page = await api("/v1/items", { params });
    await restoreUser(); // the rows' stars show the user's ratings (fetched at the same time)
    if (seq !== searchSeq) return; // a newer search answered first
    remember(page.items);
    total = page.total;
    fillGenres(page.genres);
    const list = $("#search-results");
    list.replaceChildren(...page.items.map((item) => h("li", { dataset: { item: item.id } },
      h("span", {}, filmLink(item), h("br"), h("span", { class: "film-meta" }, describeFilm(item))),
      state.userId ? filmStars(item) : null)));
    const last = Math.min(total, offset + page.items.length);
    $("#search-count").textContent = total
      ? `${offset + 1}–${last} of ${total} film${total === 1 ? "" : "s"}`
      : "No film matches.";
    $("#search-prev").disabled = offset === 0;
    $("#search-next").disabled = last >= total;
  } catch (error) {
    showError($("#search-count"), error);
  }
}

function fillGenres(genres) {
  const select = $("#search-genre");
  if (select.options.length > 1 || !genres) return;
  select.append(...genres.map((g) => h("option", { value: g }, g)));
}

async function renderRatings() {
  const list = $("#my-ratings");
  const entries = [...state.ratings.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  $("#ratings-empty").hidden = entries.length > 0;
  const shown = entries.slice(0, MAX_LISTED_RATINGS);
  try {
    const items = await Promise.all(shown.map(([id]) => film(id)));
    list.replaceChildren(...items.map((item) => h("li", { dataset: { item: item.id } },
      filmLink(item), filmStars(item))));
    if (entries.length > shown.length) {
      list.append(h("li", { class: "muted" }, `…and ${entries.length - shown.length} more`));
    }
  } catch (error) {
    showError(list, error);
  }
}

async function recommend() {
  const seq = ++recsSeq;
  const box = $("#recs");
  if (!state.userId) {
    box.replaceChildren(h("p", { class: "muted" }, "Choose or create a user to see recommendations."));
    return;
  }
  const models = recommenderTypes();
  if (!models.length) {
    box.replaceChildren(h("p", { class: "muted" }, "No recommender is loaded on this worker."));
    return;
  }
  const answers = await Promise.all(models.map((model) =>
    api(`/v1/users/${state.userId}/recommendations`, { params: { k: 10, model } })
      .then((body) => ({ model, body }), (error) => ({ model, error }))));
  if (seq !== recsSeq) return;
  box.replaceChildren(...answers.map(({ model, body, error }) => {
    const section = h("section", { dataset: { model } }, h("h3", {}, model));
    if (error) {
      section.append(h("p", { class: "err" }, error.message));
      return section;
    }
    remember(body.items);
    section.append(
      h("p", { class: "small muted" },
        body.model_version ? h("span", { class: "chip" }, `version ${body.model_version}`) : null,
        h("span", { class: body.strategy === "model" ? "chip ok" : "chip" },
          body.strategy === "model" ? "personal" : `${body.model} (no usable ratings yet)`)),
      h("ol", {}, ...body.items.map((item) => h("li", { dataset: { item: item.id } },
        filmLink(item), " ", h("span", { class: "film-meta" }, `${item.score.toFixed(3)}`)))),
    );
    return section;
  }));
}
