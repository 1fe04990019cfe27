"""Trace trees: order a trace's spans depth-first with their depth, as a waterfall lists them."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd


def order_tree(spans: pd.DataFrame) -> pd.DataFrame:
    """Return ``spans`` (one trace) in depth-first order, children by start time, with ``depth``.

    Spans whose parent is missing from the trace (orphans, e.g. a lost parent from another
    service) become roots and get ``orphan=True``, so a broken trace still shows every span.
    """
    if spans.empty:
        return spans.assign(depth=pd.Series(dtype="int64"), orphan=pd.Series(dtype="bool"))
    frame = spans.sort_values(["start_time", "span_id"], kind="stable").reset_index(drop=True)
    span_ids = frame["span_id"].tolist()
    parents = frame["parent_span_id"].tolist()
    known = set(span_ids)
    children: dict[str | None, list[int]] = defaultdict(list)
    orphan = [False] * len(frame)
    for i, parent in enumerate(parents):
        if parent is None or parent != parent or parent == "":
            children[None].append(i)
        elif parent in known and parent != span_ids[i]:
            children[parent].append(i)
        else:
            orphan[i] = True
            children[None].append(i)
    order: list[int] = []
    depth = [0] * len(frame)
    seen = set()
    stack = [(i, 0) for i in reversed(children[None])]
    while stack:
        i, d = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        order.append(i)
        depth[i] = d
        stack.extend((c, d + 1) for c in reversed(children.get(span_ids[i], ())))
    # Spans caught in a parent cycle are unreachable from any root: list them as orphans at the end.
    for i in range(len(frame)):
        if i not in seen:
            orphan[i] = True
            order.append(i)
    result = frame.assign(depth=depth, orphan=orphan).iloc[order].reset_index(drop=True)
    return result
