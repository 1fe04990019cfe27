"""The trace view in a real headless Chromium: a 10,000-span trace against a 4-span trace, same run.

    .venv/bin/python bench/browser.py [--runs 5] [--spans 10000]

Starts ``streamlit run explorer`` on a temporary store holding one wide trace (tests/storegen.py's
``build_wide_trace_store``) plus the fixture store's traces, drives /usr/bin/chromium with Playwright and
prints medians of:

- cold: a fresh tab opens ``/trace?trace_id=…`` until the waterfall is drawn (plotly has laid out every
  span) and Streamlit's run has finished (the page is interactive);
- click: clicking a waterfall row until the span detail shows that span and the URL carries its
  ``&span_id=`` (in-app navigation: one Streamlit rerun and redraw).

The baseline, measured in the same run in the same browser, is the same two actions on the fixture
store's 4-span checkout trace: what the app costs before the span count matters. ``--before REV``
also opens the wide trace in the app as it was at git revision REV (checked out into a temporary
worktree, served the same way) for a before/after figure. Target (issue 18): the 10,000-span trace
interactive in under 2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.storegen import build_store, build_wide_trace_store  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
SETTLED = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
# The waterfall component (explorer/components/waterfall.js) registers itself as window.__langswarmWaterfall
# and marks its canvas once drawn with the trace's row count.
DRAWN = """(n) => {
    const view = window.__langswarmWaterfall;
    return !!view && view.canvas.isConnected && view.canvas.dataset.rows === String(n)
        && Number(view.canvas.dataset.drawn) > 0;
}"""
# The plotly waterfall of revisions before the canvas component (WebGL line traces, one point per span).
PLOTLY_DRAWN = """(n) => {
    const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    if (!plot || !plot._fullData) return false;
    const spans = plot._fullData.find(t => t.name === 'spans');
    return !!spans && spans._length === n && !!plot.querySelector('.gl-canvas-focus, canvas');
}"""


# The app before issue 18 drew SVG bars (go.Bar): drawn once every bar trace holds its spans.
BARS_DRAWN = """(n) => {
    const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    if (!plot || !plot._fullData) return false;
    return plot._fullData.filter(t => t.type === 'bar').reduce((k, t) => k + t._length, 0) === n
        && !!plot.querySelector('.bars');
}"""


#: Either earlier waterfall: plotly WebGL lines or SVG bars.
BEFORE_DRAWN = f"(n) => ({PLOTLY_DRAWN})(n) || ({BARS_DRAWN})(n)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(store: Path, root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """``streamlit run explorer`` (of the checkout at ``root``) on ``store``; returns the process and its
    base URL once healthy."""
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
    env = {**os.environ, "LANGSWARM_TELEMETRY_DIR": str(store)}
    process = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1):
                return process, base
        except OSError:
            time.sleep(0.1)
    process.terminate()
    msg = "streamlit did not answer /_stcore/health within 60 s"
    raise RuntimeError(msg)


def open_trace(browser, base: str, trace_id: str, spans: int, *, drawn: str = DRAWN):
    """A fresh tab on the trace view of ``trace_id``; returns (page, seconds until drawn and settled)."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    began = time.perf_counter()
    page.goto(f"{base}/trace?trace_id={trace_id}")
    page.wait_for_function(drawn, arg=spans, timeout=180_000, polling=20)
    page.wait_for_function(SETTLED, timeout=120_000, polling=20)
    return page, time.perf_counter() - began


def row_point(page, row: int) -> tuple[float, float]:
    """Page coordinates of the middle of waterfall row ``row`` (scrolled into view first)."""
    return page.evaluate("(row) => window.__langswarmWaterfall.rowPoint(row)", row)


def click_row(page, row: int) -> tuple[str, float]:
    """Click waterfall row ``row``; returns (the URL's span_id, seconds until the rerun settled)."""
    before = page.url
    x, y = row_point(page, row)
    began = time.perf_counter()
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_function(
        "(before) => window.location.href !== before", arg=before, timeout=60_000, polling=20
    )
    page.wait_for_function(SETTLED, timeout=120_000, polling=20)
    elapsed = time.perf_counter() - began
    return page.url.split("span_id=")[-1], elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--before", help="also time the wide trace in the app at this git revision")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        print(f"{CHROMIUM} is missing: run `make chromium`", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="langswarm-bench-browser-"))
    try:
        facts = build_store(workdir / "store")
        wide = build_wide_trace_store(workdir / "store", spans=args.spans)
        process, base = serve(workdir / "store")
        results: dict[str, dict[str, list[float]]] = {"baseline": {}, "wide": {}, "before": {}}
        before = None
        if args.before:
            checkout = workdir / "before"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(checkout), args.before],
                check=True,
                capture_output=True,
            )
            before = serve(workdir / "store", checkout)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                cases = {
                    "baseline": (facts.checkout_trace_id, facts.checkout_spans),
                    "wide": (wide, args.spans),
                }
                page, _ = open_trace(browser, base, wide, args.spans)  # warm-up: imports, caches
                page.close()
                for _ in range(args.runs):
                    for name, (trace_id, spans) in cases.items():
                        page, cold = open_trace(browser, base, trace_id, spans)
                        _, click = click_row(page, min(2, spans - 1))
                        results[name].setdefault("cold", []).append(cold)
                        results[name].setdefault("click", []).append(click)
                        page.close()
                    if before is not None:
                        page, cold = open_trace(browser, before[1], wide, args.spans, drawn=BEFORE_DRAWN)
                        results["before"].setdefault("cold", []).append(cold)
                        page.close()
                browser.close()
        finally:
            for proc in (process, *([before[0]] if before else [])):
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        if args.before:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(workdir / "before")])
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"trace view in headless Chromium, median of {args.runs} runs (1280×720)")
    print(f"{'measurement':<40}{'4-span baseline':>18}{f'{args.spans:,}-span trace':>20}{'ratio':>8}")
    for what, label in (
        ("cold", "open in a new tab until interactive"),
        ("click", "click a row until detail+URL"),
    ):
        base_s = statistics.median(results["baseline"][what])
        wide_s = statistics.median(results["wide"][what])
        print(f"{label:<40}{base_s:>16.2f} s{wide_s:>18.2f} s{wide_s / base_s:>7.2f}×")
    if results["before"]:
        was = statistics.median(results["before"]["cold"])
        base_s = statistics.median(results["baseline"]["cold"])
        print(f"{'same, the app at ' + args.before:<40}{'':>18}{was:>18.2f} s{was / base_s:>7.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
