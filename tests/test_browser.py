"""The explorer in a real headless Chromium: `streamlit run explorer` on a fixture store, every page opened.

Starts the server itself on a free port and stops it; screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.storegen import shared_store

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
ERRORS = (
    '[data-testid="stException"], [data-testid="stAlertContentError"], [data-testid="stAlertContentWarning"], '
    '[role="dialog"]'  # e.g. Streamlit's "Page not found" modal
)
# Page url path -> what must be on it once rendered (a chart, or a table for the SQL page).
PAGES = {
    "overview": '[data-testid="stPlotlyChart"] .main-svg',
    "traces": '[data-testid="stPlotlyChart"] .main-svg',
    "trace": '[data-testid="stPlotlyChart"] .main-svg',
    "latency": '[data-testid="stPlotlyChart"] .main-svg',
    "profiles": '[data-testid="stPlotlyChart"] .main-svg',
    "alerts": '[data-testid="stPlotlyChart"] .main-svg',
    "logs": '[data-testid="stPlotlyChart"] .main-svg',
    "metrics": '[data-testid="stPlotlyChart"] .main-svg',
    "sql": '[data-testid="stDataFrame"]',
    "why-slow": '[data-testid="stDataFrame"]',
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _streamlit(store: Path):
    """`streamlit run explorer` on ``store`` on a free port; yields its base URL, stops it afterwards."""
    port = _free_port()
    env = {**os.environ, "LANGSWARM_TELEMETRY_DIR": str(store)}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "explorer",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                pytest.fail(f"streamlit exited with {process.returncode}:\n{output}")
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("streamlit did not answer /_stcore/health")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server():
    """The app on the fixture store: (base URL, store facts)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (make test installs it)")
    facts = shared_store()
    with _streamlit(facts.root) as base:
        yield base, facts


@pytest.fixture(scope="module")
def sample_server():
    """The app on the committed sample store (it has LLM calls of the demo's agents)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (make test installs it)")
    with _streamlit(ROOT / "sample_data") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _open(browser, url: str, ready: str, shot: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_selector(ready, timeout=60_000)
    # Streamlit shows a running indicator while the script runs; wait until the run has finished.
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    return page


class TestEveryPage:
    @pytest.mark.parametrize("path", list(PAGES))
    def test_page_renders_without_error(self, server, browser, path):
        """Each page renders its chart (or table) with no exception, error or warning box."""
        base, facts = server
        url = f"{base}/" + ("" if path == "overview" else path)  # the default page lives at /
        url += f"?trace_id={facts.checkout_trace_id}" if path == "trace" else ""
        url += "?why_operation=POST+%2Fcheckout" if path == "why-slow" else ""
        page = _open(browser, url, PAGES[path], f"page-{path}")
        try:
            errors = page.locator(ERRORS)
            assert errors.count() == 0, errors.first.inner_text()
            assert page.locator("h1").first.inner_text().strip() != ""
        finally:
            page.close()

    def test_trace_deep_link_draws_one_bar_per_span(self, server, browser):
        """?trace_id= opens the trace; the waterfall's bar traces hold every span of the big trace once."""
        base, facts = server
        page = _open(
            browser, f"{base}/trace?trace_id={facts.big_trace_id}", PAGES["trace"], "trace-2000-spans"
        )
        try:
            bars = page.evaluate(
                """() => {
                    const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
                    return plot._fullData.filter(t => t.type === 'bar').reduce((n, t) => n + t._length, 0);
                }"""
            )
            assert bars == 2000
            assert page.locator(ERRORS).count() == 0
        finally:
            page.close()


class TestWhySlowDeepLink:
    def test_the_url_sets_operation_and_selection(self, server, browser):
        """A why-slow URL with operation, condition and threshold opens on that selection."""
        base, _ = server
        url = f"{base}/why-slow?why_operation=POST+%2Fcheckout&why_condition=slower+than+%28ms%29&why_ms=50"
        page = _open(browser, url, '[data-testid="stDataFrame"]', "why-slow-deep-link")
        try:
            assert page.locator(ERRORS).count() == 0
            texts = " ".join(page.locator('[data-testid="stMarkdownContainer"]').all_inner_texts())
            assert "slower than 50.0 ms" in texts
        finally:
            page.close()


class TestLLMPage:
    def test_llm_page_on_the_sample_store(self, sample_server, browser):
        """The LLM calls page draws its tokens/cost chart and tables, with only the unknown-usage warning."""
        page = _open(browser, f"{sample_server}/llm", '[data-testid="stPlotlyChart"] .main-svg', "page-llm")
        try:
            assert page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count() == 0
            assert page.locator("h1").first.inner_text().strip() == "LLM calls"
            warnings = page.locator('[data-testid="stAlertContentWarning"]')
            assert warnings.count() == 1 and "unknown usage" in warnings.first.inner_text()
            assert page.locator('[data-testid="stDataFrame"]').count() >= 4
            assert page.locator('[data-testid="stMetricValue"]').first.inner_text().replace(",", "").isdigit()
        finally:
            page.close()

