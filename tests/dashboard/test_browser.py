"""The dashboard in a real browser (headless Chromium from Debian's packages + chromedriver,
driven by Selenium) against a real coordinator: pages load without console errors, the
leaderboard matches the SDK's, the design page draws its source and curves, a job's progress
updates live when the worker reports, admin actions are refused without an admin token.
Screenshots go to $GENESYS_TEST_ARTIFACTS/dashboard (default: pytest's temp dir)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from agent.procs import wait_for
from genesys.v1 import experiment_pb2

from .conftest import EXPERIMENT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="browser tests need Debian's chromium and chromium-driver "
           "(apt-get install -y chromium chromium-driver); the HTTP tests cover the pages without")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    root = os.environ.get("GENESYS_TEST_ARTIFACTS")
    folder = Path(root) / "dashboard" if root else tmp_path_factory.mktemp("dashboard-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def open_page(driver, url: str):
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete", 15, url)
    # app.js has run and the live stream is open
    wait_for(lambda: driver.execute_script(
        "return document.getElementById('live-state').textContent") == "live", 15, f"live events on {url}")


def text(driver, css: str) -> str:
    """The element's text read in one step (htmx may swap the element at any time)."""
    return driver.execute_script(
        "const el = document.querySelector(arguments[0]); return el ? el.innerText : null;", css)


def by_css(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def test_every_page_loads_without_console_errors(browser, ui, world, shots):
    pages = {"experiments": "/", "experiment": f"/e/{EXPERIMENT}",
             "leaderboard": f"/e/{EXPERIMENT}/leaderboard", "lineage": f"/e/{EXPERIMENT}/lineage",
             "jobs": f"/e/{EXPERIMENT}/jobs", "budget": f"/e/{EXPERIMENT}/budget",
             "design": f"/d/{world.child}"}
    browser.get_log("browser")
    for name, path in pages.items():
        open_page(browser, ui.url + path)
        if name in ("lineage", "leaderboard"):
            ready = f"#{name}[data-ready]"
            wait_for(lambda css=ready: by_css(browser, css), 15, f"the {name}'s data")
        browser.save_screenshot(str(shots / f"{name}.png"))
        assert console_errors(browser) == [], f"console errors on {path}"
    assert len(list(shots.glob("*.png"))) == len(pages)


def test_leaderboard_matches_the_sdk_and_sorts_and_filters(browser, ui, world):
    open_page(browser, f"{ui.url}/e/{EXPERIMENT}/leaderboard")
    wait_for(lambda: by_css(browser, "#leaderboard[data-ready]"), 15, "the leaderboard's rows")
    expected = [e.design_id for e in world.admin.leaderboard(EXPERIMENT, limit=1000)]
    def rows():
        return [r.get_attribute("data-id") for r in by_css(browser, "#leaderboard-table tbody tr[data-id]")]

    assert rows() == expected and len(expected) >= 3
    def fitness():
        return [float(td.get_attribute("data-v"))
                for td in by_css(browser, "#leaderboard-table tbody td:nth-child(3)")]

    by_css(browser, "#leaderboard-table th")[2].click()
    assert fitness() == sorted(fitness()) and fitness() != sorted(fitness(), reverse=True)
    by_css(browser, "#leaderboard-table th")[2].click()
    assert fitness() == sorted(fitness(), reverse=True)
    browser.execute_script("const s = document.getElementById('lb-quadrant');"
                           "s.value = arguments[0]; s.dispatchEvent(new Event('change'));",
                           by_css(browser, "#leaderboard-table tbody tr[data-id]")[0].get_attribute("data-quadrant"))
    shown = rows()
    assert 0 < len(shown) <= len(expected)
    assert by_css(browser, "#lb-count")[0].text == f"{len(shown)} of {len(expected)} designs"


def test_design_page_shows_highlighted_source_curves_and_trace(browser, ui, world):
    open_page(browser, f"{ui.url}/d/{world.child}")
    source = by_css(browser, "#design-source")[0]
    assert "class" in source.text and "hljs" in source.get_attribute("class")
    assert by_css(browser, "#design-source .hljs-keyword"), "source is not highlighted"
    assert by_css(browser, "#curve-micro canvas"), "training curves are not drawn"
    assert "0.4200" in by_css(browser, "#result-micro")[0].text  # cloze score
    assert len(by_css(browser, "#llm-calls tbody tr")) == 2
    assert by_css(browser, "#check-verdict")[0].text.startswith("valid")
    diff = by_css(browser, "details.diff")[0]
    diff.click()
    assert "+CONFIG" in diff.text.replace(" ", "")


def test_job_progress_updates_live_without_reload(browser, ui, world):
    open_page(browser, f"{ui.url}/e/{EXPERIMENT}/jobs")
    browser.get_log("browser")
    browser.execute_script("window.__same_page = true;")
    cell = f"#progress-{world.running.id}"
    assert by_css(browser, cell)
    world.worker.report_progress(world.running, 0.75, stage="train",
                                 metrics={"step": 77, "total_steps": 100, "loss": 2.5,
                                          "tokens_per_s": 4321})
    wait_for(lambda: "step 77/100" in (text(browser, cell) or ""), 15, "live progress")
    assert "4321 tok/s" in text(browser, cell)
    assert browser.execute_script("return window.__same_page === true")
    assert console_errors(browser) == []


def test_admin_action_is_refused_without_an_admin_token(browser, ui, world):
    from selenium.webdriver.support.ui import WebDriverWait

    def pause_with(token: str) -> str:
        open_page(browser, f"{ui.url}/e/{EXPERIMENT}")
        box = by_css(browser, "#admin-token")[0]
        box.clear()
        if token:
            box.send_keys(token)
        browser.execute_script("document.getElementById('admin-token').dispatchEvent(new Event('change'))")
        by_css(browser, 'button.admin[data-action="pause"]')[0].click()
        WebDriverWait(browser, 5).until(lambda d: d.switch_to.alert).accept()
        wait_for(lambda: text(browser, "#admin-result"), 10, "the action's answer")
        return text(browser, "#admin-result")

    assert "needs an admin token" in pause_with("")
    assert "role submitter" in pause_with(world.submitter_token)
    assert world.admin.get_experiment(EXPERIMENT).state == experiment_pb2.EXPERIMENT_STATE_ACTIVE
    try:
        assert "paused" in pause_with(world.admin.token)
        # the state badge follows through the live stream, no reload
        wait_for(lambda: text(browser, "#exp-state") == "paused", 10, "live state badge")
    finally:
        world.admin.update_experiment(EXPERIMENT, state="active")
        browser.execute_script("sessionStorage.clear()")


def test_bad_input_shows_a_clear_page(browser, ui, ui_down):
    open_page(browser, f"{ui.url}/d/no-such-design")
    assert "no design 'no-such-design'" in by_css(browser, "#error-message")[0].text
    open_page(browser, ui_down.url + "/")
    assert "does not answer" in by_css(browser, "#error-message")[0].text
    assert "Traceback" not in browser.page_source
