"""The Sessions and Graph pages and the trace view's chat panel in a real headless Chromium, on the recorded
GenAI fixtures (every convention imported into one store). Screenshots go to tests/artifacts/."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from explorer import open_store
from explorer.queries.messages import LLM_SPAN_SQL
from ingest.sources.importer import Importer
from tests import genai_fixtures
from tests.test_browser import ARTIFACTS, CHROMIUM, ERRORS, ROOT, _free_port, _open, browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def genai_server(tmp_path_factory: pytest.TempPathFactory):
    """`streamlit run explorer` on a store of every recorded GenAI set; yields (base URL, store root)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (make test installs it)")
    root = tmp_path_factory.mktemp("genai-browser")
    files = [f for name in genai_fixtures.sets() for f in genai_fixtures.payload_files(name)]
    Importer(root, progress=False, durable=False, log=io.StringIO()).import_paths(files)
    port = _free_port()
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
    env = {**os.environ, "LANGSWARM_TELEMETRY_DIR": str(root)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("streamlit did not answer /_stcore/health")
        yield base, root
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tool_round_trip(root: Path, name: str) -> tuple[str, str]:
    trace = next(t for t in genai_fixtures.manifest(name)["traces"] if t["label"] == "tool-round-trip")
    spans = open_store(root).sql(
        f"SELECT span_id FROM spans WHERE trace_id = $t AND {LLM_SPAN_SQL} ORDER BY start_time",
        {"t": trace["trace_id"]},
    )
    return trace["trace_id"], spans.span_id.iloc[-1]


class TestGenAIPages:
    @pytest.mark.parametrize(
        ("path", "ready"),
        [("sessions", '[data-testid="stDataFrame"]'), ("graph", '[data-testid="stPlotlyChart"] .main-svg')],
    )
    def test_page_renders_without_error(self, genai_server, browser, path: str, ready: str) -> None:  # noqa: F811
        """Sessions lists the sessions and draws the chat of the first one's turns; Graph draws the network."""
        base, _root = genai_server
        page = _open(browser, f"{base}/{path}", ready, f"page-{path}")
        try:
            errors = page.locator(ERRORS)
            assert errors.count() == 0, errors.first.inner_text()
            if path == "sessions":
                assert page.locator('[data-testid="stChatMessage"]').count() >= 2
            else:
                assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 3
        finally:
            page.close()

    @pytest.mark.parametrize(
        "name", ["otel-openai-v2-2.4b0-events", "openinference-0.1.66", "openllmetry-0.40.14"]
    )
    def test_chat_panel_of_a_tool_round_trip(self, genai_server, browser, name: str) -> None:  # noqa: F811
        """The deep link to the second LLM call shows five chat bubbles: system, user, the tool call, the
        tool result and the answer, with the tool's arguments and the tool output readable."""
        base, root = genai_server
        trace_id, span_id = _tool_round_trip(root, name)
        page = _open(
            browser,
            f"{base}/trace?trace_id={trace_id}&span_id={span_id}",
            '[data-testid="stChatMessage"]',
            f"chat-{name}",
        )
        try:
            assert page.locator(ERRORS).count() == 0
            bubbles = page.locator('[data-testid="stChatMessage"]')
            assert bubbles.count() == 5
            panel = page.locator(".st-key-chat_panel")
            panel.scroll_into_view_if_needed()
            # code blocks fill in after the bubbles: wait for the tool output to be there
            page.wait_for_function(
                "() => document.querySelector('.st-key-chat_panel').innerText.includes('overcast')",
                timeout=30_000,
            )
            panel.screenshot(path=str(ARTIFACTS / f"chat-panel-{name}.png"))
            text = panel.inner_text()
            assert '"city": "Paris"' in text and '"sky": "overcast"' in text and "Anything else?" in text
        finally:
            page.close()
