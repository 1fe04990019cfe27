"""The trace view's waterfall: a canvas drawn in the browser from :func:`explorer.figures.waterfall_data`.

Why not ``st.plotly_chart``: measured in headless Chromium on this machine, a fresh tab spends ~0.9 s
loading plotly before its first bar, so no plotly waterfall can open a trace in under 2 s; the canvas
(``waterfall.js``, a few kB) draws only the rows in view and opens a 10,000-span trace about as fast as a
4-span one (docs/benchmarks.md, "The trace view in the browser").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

_JS = (Path(__file__).resolve().parent / "waterfall.js").read_text(encoding="utf-8")
_COMPONENT = st.components.v2.component("langswarm_waterfall", js=_JS)


def waterfall(data: dict[str, Any], *, key: str, on_pick: Callable[[], None]) -> Any:
    """Mount the waterfall with ``data``; a click on a row sets ``st.session_state[key].picked`` to its
    span id and calls ``on_pick``."""
    return _COMPONENT(key=key, data=data, on_picked_change=on_pick, height="content")
