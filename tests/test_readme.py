"""The README's tour code runs as written and lands what the tour says: nesting, an error, a log, the trace id."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from explorer import open_store, queries

ROOT = Path(__file__).resolve().parent.parent


def test_instrument_your_own_app_block(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    step = readme[readme.index("**4. Instrument your own app**") :]
    code = re.search(r"```python\n(.*?)```", step, flags=re.S).group(1)
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True
    )
    trace_id = re.search(r"trace id: ([0-9a-f]{32})", run.stdout).group(1)
    with open_store(tmp_path / "telemetry") as store:
        tree = queries.trace_tree(store, trace_id)
        spans = tree.set_index("name")
        assert spans.loc["tool.search", "parent_span_id"] == spans.loc["plan", "span_id"]
        assert spans.loc["tool.fetch", "parent_span_id"] == spans.loc["plan", "span_id"]
        assert spans.loc["tool.fetch", "status_code"] == "ERROR"
        logs = queries.trace_logs(store, trace_id)
        assert "fetch failed; answering without it" in logs["body"].tolist()
