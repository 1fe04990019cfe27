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

from tests.storegen import WIDE_TRACE_SPANS, build_wide_trace_store, shared_store

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from browser import click_row, open_trace, serve  # noqa: E402  (bench/browser.py: the same steps it times)

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
    "trace": '[data-testid="waterfall-canvas"][data-drawn]',  # the canvas waterfall (explorer/components)
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
    with _served(command, port, cwd=ROOT, env=env) as base:
        yield base


@contextlib.contextmanager
def _served(command: list[str], port: int, *, cwd: Path, env: dict[str, str]):
    """Run ``command`` (a Streamlit server on ``port``); yield its base URL once healthy, stop it after."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
        url = f"{base}/{path}"  # /overview too (/ switches to it)
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
        """?trace_id= opens the trace; the canvas waterfall holds every span of the big trace, draws only the
        rows in view, and scrolling draws the next ones."""
        base, facts = server
        page = _open(
            browser, f"{base}/trace?trace_id={facts.big_trace_id}", PAGES["trace"], "trace-2000-spans"
        )
        try:
            view = "window.__langswarmWaterfall"
            assert page.evaluate(f"() => [{view}.data.rows, {view}.data.span_id.length]") == [2000, 2000]
            assert page.evaluate(f"() => {view}.canvas.dataset.firstRow") == "0"
            page.evaluate(f"() => {view}.rowPoint(1500)")  # scrolls row 1500 into view
            page.wait_for_function(f"() => Number({view}.canvas.dataset.firstRow) > 1400", timeout=10_000)
            assert page.locator(ERRORS).count() == 0
        finally:
            page.close()


class TestTraceNavigation:
    """The waterfall is the navigator: one selection shared by chart, table, dropdown and URL."""

    def test_clicking_a_row_selects_its_span(self, server, browser):
        base, facts = server
        page = _open(
            browser, f"{base}/trace?trace_id={facts.checkout_trace_id}", PAGES["trace"], "trace-before-click"
        )
        try:
            charge = facts.checkout_span_ids["payment.charge"]
            span_id, _ = click_row(page, 3)  # rows: root, cart.load, db.query, payment.charge
            assert span_id == charge
            # The detail follows: only payment.charge recorded this exception.
            page.get_by_role("tab", name="Exception").click()
            page.get_by_text("insufficient funds").first.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "trace-after-click.png"), full_page=True)
            # The selected row's band moved to row 3, in the browser and in what Python sent back.
            assert page.evaluate("() => window.__langswarmWaterfall.canvas.dataset.selected") == charge
            assert page.evaluate("() => window.__langswarmWaterfall.data.selected") == 3
            assert page.locator(ERRORS).count() == 0
        finally:
            page.close()

    def test_span_id_deep_link_ticks_the_table_row(self, server, browser):
        base, facts = server
        charge = facts.checkout_span_ids["payment.charge"]
        page = _open(
            browser,
            f"{base}/trace?trace_id={facts.checkout_trace_id}&span_id={charge}",
            PAGES["trace"],
            "trace-deep-link",
        )
        try:
            assert f"span_id={charge}" in page.url
            assert page.evaluate("() => window.__langswarmWaterfall.data.selected") == 3
            page.get_by_role("tab", name="Exception").click()
            page.get_by_text("insufficient funds").first.wait_for(timeout=30_000)
        finally:
            page.close()

    def test_ten_thousand_span_trace_written_after_start(self, browser, tmp_path):
        """Run-then-look and the wide trace: a 10,000-span trace written after the app started is there
        on a fresh page load (no "Reload store"), drawn and clickable. Its time goes to tests/artifacts/;
        the figure for the target is measured by bench/browser.py (docs/benchmarks.md)."""
        root = tmp_path / "store"
        first = build_wide_trace_store(root, spans=10, seed=1)
        process, base = serve(root)
        try:
            page, _ = open_trace(browser, base, first, 10)
            page.close()
            trace_id = build_wide_trace_store(root, spans=WIDE_TRACE_SPANS)
            page, seconds = open_trace(browser, base, trace_id, WIDE_TRACE_SPANS)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "trace-10000-spans.png"))
            (ARTIFACTS / "trace-10000-spans.txt").write_text(f"drawn and settled in {seconds:.2f} s\n")
            assert page.evaluate("() => window.__langswarmWaterfall.data.rows") == WIDE_TRACE_SPANS
            # One canvas, no element per span: the page stays as light as a 4-span trace's.
            assert page.locator(".js-plotly-plot").count() == 0
            ids = page.evaluate("() => window.__langswarmWaterfall.data.span_id")
            for row in (5, 9000):  # row 9000 is scrolled into view first
                span_id, _ = click_row(page, row)
                assert span_id == ids[row]
            assert page.evaluate("() => window.__langswarmWaterfall.data.selected") == 9000
            assert page.locator(ERRORS).count() == 0
            page.close()
        finally:
            process.terminate()
            process.wait(timeout=30)


class TestAppFromAnyDirectory:
    def test_python_m_explorer_app_outside_the_repository(self, browser, tmp_path):
        """`python -m explorer app --store DIR` started in another directory serves the installed app on
        that store (`streamlit run explorer` works only inside this repository)."""
        facts = shared_store()
        port = _free_port()
        command = [sys.executable, "-m", "explorer", "app", "--headless", "--port", str(port)]
        env = {k: v for k, v in os.environ.items() if k != "LANGSWARM_TELEMETRY_DIR"}
        with _served([*command, "--store", str(facts.root)], port, cwd=tmp_path, env=env) as base:
            page, _ = open_trace(browser, base, facts.checkout_trace_id, facts.checkout_spans)
            assert page.locator(ERRORS).count() == 0
            page.close()


class TestTracesScatter:
    def test_clicking_a_scatter_point_opens_its_trace_in_the_same_tab(self, server, browser):
        base, facts = server
        page = _open(
            browser, f"{base}/traces?service=payment&status=error", PAGES["traces"], "traces-scatter"
        )
        try:
            x, y, trace_id = page.evaluate(
                """() => {
                    const plot = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
                        .find(p => p._fullData.some(t => t.name === 'has errors'));
                    const curve = plot._fullData.findIndex(t => t.name === 'has errors');
                    const point = plot.calcdata[curve][0], size = plot._fullLayout._size;
                    const box = plot.getBoundingClientRect();
                    return [box.left + size.l + plot._fullLayout.xaxis.c2p(point.x),
                            box.top + size.t + plot._fullLayout.yaxis.c2p(point.y),
                            plot._fullData[curve].customdata[0][0]];
                }"""
            )
            assert trace_id in facts.error_trace_ids
            page.mouse.move(x, y)
            page.mouse.click(x, y)
            page.wait_for_url(f"**/trace?trace_id={trace_id}*", timeout=60_000)
            page.wait_for_selector(PAGES["trace"], timeout=60_000)
            page.wait_for_function(
                "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
            )
            assert page.locator(ERRORS).count() == 0
            page.get_by_text("Back to the search").click()
            page.wait_for_url("**/traces?*", timeout=60_000)
            assert "service=payment" in page.url and "status=error" in page.url
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
            assert (
                page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count() == 0
            )
            assert page.locator("h1").first.inner_text().strip() == "LLM calls"
            warnings = page.locator('[data-testid="stAlertContentWarning"]')
            assert warnings.count() == 1 and "unknown usage" in warnings.first.inner_text()
            assert page.locator('[data-testid="stDataFrame"]').count() >= 4
            assert page.locator('[data-testid="stMetricValue"]').first.inner_text().replace(",", "").isdigit()
        finally:
            page.close()
