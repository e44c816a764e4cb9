// What the views share: the current user (kept in localStorage: a user id is no secret), their
// ratings, and the models this worker serves (from /readyz). Views subscribe to changes.
import { api } from "./api.js";

const USER_KEY = "deeprec.userId";
// Families that serve images, not users: never asked for recommendations.
export const IMAGE_MODELS = new Set(["autoencoder-images", "rbm-images", "dbn", "gan"]);
// Families whose items have embeddings (similar films, the map), best first.
export const EMBEDDING_MODELS = ["autoencoder", "rbm", "content"];

const listeners = new Set();
export const state = {
  userId: Number(localStorage.getItem(USER_KEY)) || null,
  ratings: new Map(), // item id -> rating
  models: {},         // model type -> version (this worker)
};

export function onChange(fn) { listeners.add(fn); }
function emit(what, detail) { for (const fn of listeners) fn(what, detail); }

let readiness = null;
export async function loadModels(force = false) {
  if (!readiness || force) {
    readiness = api("/readyz", { okStatuses: [503] }).then((body) => {
      state.models = body.models || {};
      return body;
    }).catch((error) => { readiness = null; throw error; });
  }
  return readiness;
}

export function recommenderTypes() {
  return Object.keys(state.models).filter((t) => !IMAGE_MODELS.has(t)).sort(byPreference);
}

export function embeddingTypes() {
  return EMBEDDING_MODELS.filter((t) => t in state.models);
}

function byPreference(a, b) {
  const order = ["rbm", "autoencoder", "ease", "autorec", "content", "popularity"];
  const ia = order.includes(a) ? order.indexOf(a) : order.length;
  const ib = order.includes(b) ? order.indexOf(b) : order.length;
  return ia - ib || a.localeCompare(b);
}

export async function setUser(userId) {
  const ratings = await api(`/v1/users/${userId}/ratings`);
  state.userId = userId;
  state.ratings = new Map(ratings.map((r) => [r.item_id, r.rating]));
  localStorage.setItem(USER_KEY, String(userId));
  emit("user");
}

export async function createUser() {
  const user = await api("/v1/users", { method: "POST", body: {} });
  await setUser(user.id);
  return user;
}

export async function rate(itemId, rating) {
  if (!state.userId) throw new Error("choose or create a user first");
  await api(`/v1/users/${state.userId}/ratings`, {
    method: "POST",
    body: { item_id: itemId, rating },
  });
  const added = !state.ratings.has(itemId);
  state.ratings.set(itemId, rating);
  emit("ratings", { itemId, added });
}

let restoring = null;
/** Restore the user remembered from a previous visit (once per page, whichever view asks first);
 * forget it if it no longer exists. */
export function restoreUser() {
  if (!restoring) {
    restoring = state.userId
      ? setUser(state.userId).catch(() => {
          state.userId = null;
          localStorage.removeItem(USER_KEY);
        })
      : Promise.resolve();
  }
  return restoring;
}
