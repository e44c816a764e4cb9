// What the views share: the current user (kept in localStorage: a user id is no secret), their
// ratings, and the models this worker serves (from /readyz). Views subscribe to changes.
import { api } from "./api.js";

const USER_KEY = "deeprec.userId";
// The model families the service knows (GET /v1/models, from ml/registry.py): what each can
// answer and where it ranks. Nothing here names a family.
export const families = new Map(); // model type -> {capabilities, recommend_rank, ...}

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
    readiness = Promise.all([
      api("/readyz", { okStatuses: [503] }),
      families.size ? null : api("/v1/models"),
    ]).then(([body, table]) => {
      for (const family of table ? table.items : []) families.set(family.name, family);
      state.models = body.models || {};
      return body;
    }).catch((error) => { readiness = null; throw error; });
  }
  return readiness;
}

const can = (type, capability) => (families.get(type)?.capabilities || []).includes(capability);
// Ranked families first, by rank; the others after them, by name.
const byRank = (key) => (a, b) => {
  const ra = families.get(a)?.[key] ?? Infinity;
  const rb = families.get(b)?.[key] ?? Infinity;
  return (ra === rb ? 0 : ra < rb ? -1 : 1) || a.localeCompare(b);
};

/** Loaded models that recommend, in the service's default order. */
export function recommenderTypes() {
  return Object.keys(state.models).filter((t) => can(t, "recommend")).sort(byRank("recommend_rank"));
}

/** Loaded models whose items have neighbours to show (similar films, the map), best first. */
export function embeddingTypes() {
  return Object.keys(state.models)
    .filter((t) => families.get(t)?.similar_rank != null)
    .sort(byRank("similar_rank"));
}

/** [route word, model type, label] of every family that reconstructs images, loaded or not. */
export function reconstructors() {
  return [...families.values()].filter((f) => f.image_model).map((f) => [f.image_model, f.name, f.label]);
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
