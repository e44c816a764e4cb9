"""DeepRec Studio in a real browser: Playwright drives Debian's Chromium against a real uvicorn
serving real ML-100K from a SQLite file, with small models of every family trained here.

Skipped (with the reason) where Chromium or Playwright is missing; CI installs Chromium with
apt-get (`.ci/run`). Never `playwright install`: the browser is the system's.

``DEEPREC_SCREENSHOTS=1`` also saves a screenshot of each page to ``docs/studio_*.png`` and the
page-load figures to ``docs/studio_load.json`` (tracked files: CI leaves them alone); it trains
the image models for minutes instead of seconds, so the pictures show legible digits.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
from collections.abc import Iterator
from typing import Any

import pytest

from app.crud import (
    bulk_load,
    create_training_job,
    mark_failed,
    mark_running,
)
from app.crud.training_jobs import record_progress
from app.db import migrate
from app.db.session import create_db_engine, create_session_factory
from ml.data.schema import RatingsDataset
from tests.e2e.studio_models import train_studio_models
from tests.factories import activate_checkpoints
from tests.live_server import ROOT, running_server, server_env

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if shutil.which("chromium") is None:
    pytest.skip(
        "Chromium is not installed (apt-get install -y --no-install-recommends chromium "
        "fonts-liberation)",
        allow_module_level=True,
    )

Page = playwright_api.Page
expect = playwright_api.expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "studio-admin-token"
DOCS = ROOT / "docs"
SCREENSHOTS = os.environ.get("DEEPREC_SCREENSHOTS") == "1"
VIEWS = ("recommend", "map", "digits", "models", "status")
# The Models page with its token in the tab, as after "Unlock" (about:blank has no storage).
UNLOCKED = (
    f"if (location.protocol === 'http:') sessionStorage.setItem('deeprec.adminToken', '{TOKEN}')"
)
# What a new user rates 5 stars: five family classics.
FAMILY = ("Toy Story", "Lion King", "Aladdin", "Snow White", "Fantasia")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium, not a browser downloaded by Playwright."""
    return {
        **browser_type_launch_args,
        "executable_path": shutil.which("chromium"),
        "args": ["--no-sandbox", "--disable-dev-shm-usage"],
    }


@pytest.fixture(scope="module")
def studio_server(
    tmp_path_factory: pytest.TempPathFactory, ml100k: RatingsDataset
) -> Iterator[tuple[str, str]]:
    """A real server over ML-100K with small versions of every model family active: its base
    URL and its database URL."""
    root = tmp_path_factory.mktemp("studio")
    url = f"sqlite:///{root / 'deeprec.db'}"
    migrate.upgrade(url)
    checkpoints = train_studio_models(ml100k, root / "checkpoints", showcase=SCREENSHOTS)
    engine = create_db_engine(url)
    with create_session_factory(engine)() as session:
        bulk_load(session=session, dataset=ml100k)
        activate_checkpoints(session, checkpoints, "studio1")
    engine.dispose()
    env = server_env(url, root, admin_token=TOKEN, required_models=",".join(sorted(checkpoints)))
    with running_server(env, root) as live:
        yield live.url, url


@pytest.fixture(scope="module")
def studio_url(studio_server: tuple[str, str]) -> str:
    return studio_server[0]


@pytest.fixture
def studio(page: Page, studio_url: str) -> Iterator[Page]:
    """A page on the Studio that fails the test on any console error or uncaught exception."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(30_000)
    page.studio_url = studio_url  # type: ignore[attr-defined]
    yield page
    assert errors == [], errors


def open_view(page: Page, view: str) -> int:
    """Load the Studio on ``view``; the ms from navigation start until its data was drawn."""
    page.goto("about:blank")  # a new document: going from one #view to another would not load
    page.goto(f"{page.studio_url}/#{view}")  # type: ignore[attr-defined]
    page.wait_for_selector(f"html[data-ready-{view}]", state="attached")
    return int(page.evaluate(f"window.studioTimings['{view}']"))


def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(DOCS / f"studio_{name}.png"), full_page=True)


def rec_titles(page: Page, model: str) -> list[str]:
    return page.locator(f'#recs section[data-model="{model}"] li').all_inner_texts()


def test_a_new_user_searches_rates_five_films_and_the_lists_change(studio: Page) -> None:
    open_view(studio, "recommend")
    studio.get_by_role("button", name="New user").click()
    expect(studio.locator("#current-user")).to_contain_text("user")
    for model in ("ease", "autoencoder", "rbm"):
        expect(studio.locator(f'#recs section[data-model="{model}"] li')).to_have_count(10)
    models = studio.locator("#recs section").evaluate_all("s => s.map(x => x.dataset.model)")
    before = {m: rec_titles(studio, m) for m in models}
    search = studio.get_by_label("Title", exact=True)
    for title in FAMILY:
        search.fill(title.lower())
        row = studio.locator("#search-results li").filter(has_text=title).first
        expect(row).to_be_visible()
        row.locator("label[title='5 stars']").click()
        expect(studio.locator("#my-ratings li").filter(has_text=title)).to_have_count(1)
    expect(studio.locator("#user-summary")).to_contain_text("(5 ratings)")
    for model in models:
        section = studio.locator(f'#recs section[data-model="{model}"]')
        expect(section.locator(".chip.ok")).to_have_text("personal")
        after = rec_titles(studio, model)
        assert after != before[model], model
        assert not any(t in " ".join(after) for t in ("Toy Story", "Fantasia")), after
    # The keyboard changes a rating too: arrow keys move within the star group.
    first = studio.locator("#my-ratings li").first.locator("input[type=radio]:checked")
    first.focus()
    studio.keyboard.press("ArrowLeft")
    expect(studio.locator("#my-ratings li").first.locator("input:checked")).to_have_value("4")
    # A film's page lists its similar films.
    studio.locator("#recs section[data-model='ease'] li button").first.click()
    expect(studio.locator("#film-similar li")).to_have_count(10)
    expect(studio.locator("#film-similar-note")).to_contain_text("version studio1")
    screenshot(studio, "film")
    studio.keyboard.press("Escape")
    studio.get_by_label("Title", exact=True).fill("")
    studio.get_by_label("Genre", exact=True).select_option("Film-Noir")
    expect(studio.locator("#search-count")).to_have_text("1–10 of 24 films")
    studio.get_by_role("button", name="Next").click()
    expect(studio.locator("#search-count")).to_have_text("11–20 of 24 films")
    # The search typed by clearing the title (debounced 200 ms) was taken over by the genre's:
    # it does not come in later and send the list back to the first page.
    studio.wait_for_timeout(400)
    expect(studio.locator("#search-count")).to_have_text("11–20 of 24 films")
    studio.get_by_role("button", name="Previous").click()
    expect(studio.locator("#search-count")).to_have_text("1–10 of 24 films")
    screenshot(studio, "recommend")


def test_the_map_draws_one_point_per_item(studio: Page) -> None:
    # As user 1 of ML-100K, chosen earlier on the Recommend page: their 272 films are ringed.
    studio.add_init_script(
        "if (location.protocol === 'http:') localStorage.setItem('deeprec.userId', '1')"
    )
    open_view(studio, "map")
    canvas = studio.locator("#map-canvas")
    expect(canvas).to_have_attribute("data-points", "1682")
    expect(canvas).to_have_attribute("data-rated", "272")
    expect(studio.locator("#map-summary")).to_contain_text("user 1's 272 rated films")
    box = canvas.bounding_box()
    assert box is not None
    # Hovering finds the nearest film through the grid: sweep until the tooltip shows a title.
    spots = [(fx / 20, fy / 10) for fy in range(1, 10) for fx in range(1, 20)]
    for fx, fy in spots:
        studio.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        if studio.locator("#map-tip").is_visible():
            break
    expect(studio.locator("#map-tip")).to_be_visible()
    title = studio.locator("#map-tip").inner_text().split(" — ")[0]
    studio.mouse.down()
    studio.mouse.up()
    expect(studio.locator("#film")).to_be_visible()
    expect(studio.locator("#film-title")).to_have_text(title)
    studio.keyboard.press("Escape")
    screenshot(studio, "map")
    # The keyboard walks the films too: arrow keys move from film to film, Enter opens one.
    canvas.focus()
    studio.keyboard.press("ArrowLeft")
    expect(studio.locator("#map-tip")).to_be_visible()
    title = studio.locator("#map-tip").inner_text().split(" — ")[0]
    studio.keyboard.press("Enter")
    expect(studio.locator("#film-title")).to_have_text(title)
    studio.keyboard.press("Escape")
    studio.get_by_label("Autoencoder", exact=True).check()
    expect(studio.locator("#map-summary")).to_contain_text("autoencoder to 2-D", timeout=90_000)
    expect(canvas).to_have_attribute("data-points", "1682")


def draw_a_one(page: Page) -> None:
    pad = page.locator("#pad")
    box = pad.bounding_box()
    assert box is not None
    x = box["x"] + box["width"] / 2
    page.mouse.move(x - 20, box["y"] + 0.25 * box["height"])
    page.mouse.down()
    page.mouse.move(x, box["y"] + 0.15 * box["height"], steps=4)
    page.mouse.move(x, box["y"] + 0.85 * box["height"], steps=12)
    page.mouse.up()


def test_a_drawn_digit_gets_three_reconstructions_and_a_probability(studio: Page) -> None:
    open_view(studio, "digits")
    draw_a_one(studio)
    expect(studio.locator("#recons figure[data-done='1']")).to_have_count(3)
    probability = studio.locator("#disc-p").inner_text()
    assert re.fullmatch(r"\d{1,3}\.\d%", probability), probability
    inked = studio.evaluate(
        "Array.from(document.querySelector('#recons figure[data-model=dbn] canvas')"
        ".getContext('2d').getImageData(0, 0, 8, 8).data).some(v => v < 250)"
    )
    assert inked
    studio.get_by_label("Noise").fill("0.3")
    expect(studio.locator("#noise-out")).to_have_text("30%")
    studio.get_by_label("Digit", exact=True).select_option("7")
    studio.get_by_label("How many").fill("12")
    studio.get_by_role("button", name="Generate").click()
    expect(studio.locator("#gan-grid")).to_have_attribute("data-label", "7")
    expect(studio.locator("#gan-grid canvas")).to_have_count(12)
    expect(studio.locator("#lerp-strip canvas")).to_have_count(10)
    screenshot(studio, "digits")


def test_a_retrain_started_from_the_page_shows_progress_and_ends_active(studio: Page) -> None:
    open_view(studio, "models")
    studio.get_by_label("Admin token").fill(TOKEN)
    studio.get_by_role("button", name="Unlock").click()
    expect(studio.locator("#versions tr[data-model='ease']")).to_have_count(1)
    expect(studio.get_by_label("Admin token")).to_be_hidden()
    # EASE retrains in seconds even on a busy machine; a neural model would also show its epochs.
    studio.locator("#retrain-model").select_option("ease")
    studio.get_by_label("Params (JSON)").fill('{"l2": 500}')
    studio.get_by_role("button", name="Start").click()
    expect(studio.locator("#job-status")).to_have_attribute(
        "data-status", re.compile("queued|running")
    )
    expect(studio.locator("#job-facts")).to_contain_text("elapsed", timeout=60_000)
    expect(studio.locator("#job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=180_000
    )
    rows = studio.locator("#versions tr[data-model='ease']")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="active, serving")).to_have_count(1)
    expect(rows.filter(has_text="studio1").get_by_role("button")).to_have_text("Roll back to this")
    expect(studio.locator("#jobs tr[data-status='succeeded']")).to_have_count(1)
    screenshot(studio, "models")
    # The token stays with the tab only.
    assert studio.evaluate("sessionStorage.getItem('deeprec.adminToken')") == TOKEN
    assert studio.evaluate("localStorage.getItem('deeprec.adminToken')") is None


def test_a_jobs_progress_and_failure_reason_show_as_they_are_recorded(
    studio: Page, studio_server: tuple[str, str]
) -> None:
    """The page shows what a trainer reports (epoch of n, figure, elapsed, estimate) while the
    job runs, then the reason it failed: the rows are written here as a worker would."""
    engine = create_db_engine(studio_server[1])
    sessions = create_session_factory(engine)
    with sessions() as session:
        job = create_training_job(session=session, model_type="rbm", params={})
        mark_running(session=session, job_id=job.id)
        progress = {"epoch": 3, "epochs": 10, "figure": "val_rmse", "value": 0.9312}
        record_progress(
            session=session, job_id=job.id, progress={**progress, "elapsed_s": 12.5, "eta_s": 29.1}
        )
    studio.add_init_script(UNLOCKED)
    open_view(studio, "models")
    live = studio.locator("#job-live")
    expect(live).to_contain_text(f"Job {job.id}: rbm")
    expect(live.get_by_label("Epoch 3 of 10")).to_have_attribute("value", "3")
    expect(studio.locator("#job-facts")).to_have_text(
        "val_rmse 0.9312 · elapsed 12.5 s · about 29.1 s left"
    )
    with sessions() as session:
        mark_failed(session=session, job_id=job.id, error="error: the worker ran out of memory")
    engine.dispose()
    expect(studio.locator("#job-status")).to_have_attribute("data-status", "failed")
    expect(live).to_contain_text("error: the worker ran out of memory")
    expect(studio.locator(f"#jobs tr[data-job='{job.id}']")).to_contain_text("out of memory")


def test_status_and_page_load_times(studio: Page) -> None:
    open_view(studio, "status")
    expect(studio.locator("#ready")).to_have_text("ready")
    expect(studio.locator("#served tr[data-model='gan']")).to_have_count(1)
    expect(studio.locator("#figures")).to_contain_text("HTTP requests")
    screenshot(studio, "status")
    studio.add_init_script(UNLOCKED)
    timings = {}
    for view in VIEWS:
        open_view(studio, view)  # warm: the server's first answers (caches, lazy imports)
        timings[view] = statistics.median(open_view(studio, view) for _ in range(3))
    if SCREENSHOTS:
        (DOCS / "studio_load.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(f"\nStudio page load, ms from navigation start to data drawn (median of 3): {timings}")
    assert all(ms < 1000 for ms in timings.values()), timings


def test_every_page_fits_a_375_px_wide_screen(studio: Page) -> None:
    studio.set_viewport_size({"width": 375, "height": 812})
    studio.add_init_script(UNLOCKED)
    for view in VIEWS:
        open_view(studio, view)
        overflow = studio.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, (view, overflow)
        if view == "recommend":
            screenshot(studio, "mobile")
