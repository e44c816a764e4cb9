// The Studio's entry: a hash router over five views; each view loads its data the first time it
// is shown and marks itself ready (html[data-ready-<view>]) once that data is drawn.
import * as digits from "./digits.js";
import * as map from "./map.js";
import * as models from "./models.js";
import * as recommend from "./recommend.js";
import * as status from "./status.js";
import { showError } from "./ui.js";

const VIEWS = { recommend, map, digits, models, status };
const TITLES = { recommend: "Recommend", map: "Item map", digits: "Digits", models: "Models", status: "Status" };

function current() {
  const name = location.hash.replace(/^#/, "");
  return name in VIEWS ? name : "recommend";
}

function route(focus) {
  const name = current();
  for (const key of Object.keys(VIEWS)) document.getElementById(`view-${key}`).hidden = key !== name;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${TITLES[name]} · DeepRec Studio`;
  if (focus) document.getElementById("main").focus({ preventScroll: true });
  VIEWS[name].show().catch((error) => showError(null, error));
}

window.addEventListener("hashchange", () => route(true));
route(false);
