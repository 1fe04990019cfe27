"""Trace trees: order a trace's spans depth-first with their depth, as a waterfall lists them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pandas as pd


def order_tree(spans: pd.DataFrame) -> pd.DataFrame:
    """Return ``spans`` (one trace) in depth-first order, children by start time, with ``depth``.

    Spans whose parent is missing from the trace (orphans, e.g. a lost parent from another
    service) become roots and get ``orphan=True``, so a broken trace still shows every span.
    """
    if spans.empty:
        return spans.assign(depth=pd.Series(dtype="int64"), orphan=pd.Series(dtype="bool"))
    by = "start_time_unix_nano" if "start_time_unix_nano" in spans else "start_time"  # nanosecond exact
    order, depth, orphan = tree_order(
        spans[by].tolist(), spans["span_id"].tolist(), spans["parent_span_id"].tolist()
    )
    # One take and two columns: a trace lookup is a few rows, where each pandas call costs more than the work.
    result = spans.take(order).reset_index(drop=True)
    result["depth"] = depth
    result["orphan"] = orphan
    return result


def tree_order(
    starts: list[Any], span_ids: list[Any], parents: list[Any]
) -> tuple[list[int], list[int], list[bool]]:
    """The depth-first order of one trace's spans (positions into the lists), children by (start, span id),
    and each listed span's depth and orphan flag, in that order."""
    positions = list(range(len(span_ids)))
    if any(_missing(v) for v in starts) or any(_missing(v) for v in span_ids):
        # Missing values sort last, as pandas sorts them (a comparison with None or NaN would raise or lie).
        positions.sort(key=lambda i: (_missing(span_ids[i]), "" if _missing(span_ids[i]) else span_ids[i]))
        positions.sort(key=lambda i: (_missing(starts[i]), 0 if _missing(starts[i]) else starts[i]))
    else:
        positions.sort(key=lambda i: (starts[i], span_ids[i]))
    known = set(span_ids)
    children: dict[Any, list[int]] = defaultdict(list)
    orphan = [False] * len(positions)
    for i in positions:
        parent = parents[i]
        if parent is None or parent != parent or parent == "":
            children[None].append(i)
        elif parent in known and parent != span_ids[i]:
            children[parent].append(i)
        else:
            orphan[i] = True
            children[None].append(i)
    order: list[int] = []
    depth = [0] * len(positions)
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
    for i in positions:
        if i not in seen:
            orphan[i] = True
            order.append(i)
    return order, [depth[i] for i in order], [orphan[i] for i in order]


def _missing(value: Any) -> bool:
    """Whether ``value`` is None, NaN, NaT or pd.NA."""
    return value is None or value is pd.NA or value is pd.NaT or value != value


def critical_path(tree: pd.DataFrame) -> set[str]:
    """Span ids on the critical path: from the root, the last-finishing child, then the child that finished
    before it started, and so on (Jaeger's definition). Iterative, so deep traces do not recurse."""
    if tree.empty:
        return set()
    ids = tree["span_id"].tolist()
    parents = tree["parent_span_id"].tolist()
    start = _nanos(tree, "start")
    end = _nanos(tree, "end")
    known = set(ids)
    children: dict[str, list[int]] = defaultdict(list)
    roots = []
    for i, parent in enumerate(parents):
        if isinstance(parent, str) and parent in known and parent != ids[i]:
            children[parent].append(i)
        else:
            roots.append(i)
    for kids in children.values():
        kids.sort(key=lambda k: end[k], reverse=True)
    # Every span in a parent cycle has a parent: with no root at all, the longest span starts the path.
    root = max(roots or range(len(ids)), key=lambda i: (end[i] - start[i], -i))
    path: set[str] = set()
    stack = [(root, end[root])]
    while stack:
        i, until = stack.pop()
        if ids[i] in path:
            continue
        path.add(ids[i])
        cursor = min(end[i], until)
        for k in children.get(ids[i], ()):
            if cursor <= start[i]:
                break
            if start[k] >= cursor:
                continue  # runs after the chosen later sibling started: it overlaps, it does not block
            stack.append((k, cursor))
            cursor = start[k]
    return path


def _nanos(tree: pd.DataFrame, which: str) -> list[int]:
    """Span start or end times as integers: ``start_ns``/``end_ns`` (trace_tree's), else the exact
    ``*_time_unix_nano`` columns, else the timestamps (only compared with each other here)."""
    for column in (f"{which}_ns", f"{which}_time_unix_nano"):
        if column in tree:
            return tree[column].astype("int64").tolist()
    return tree[f"{which}_time"].astype("int64").tolist()


def collapse_subtrees(tree: pd.DataFrame, collapsed: Iterable[str]) -> pd.DataFrame:
    """Hide the descendants of the ``collapsed`` span ids; ``hidden`` counts what each row hides."""
    collapsed = set(collapsed)
    if not collapsed or tree.empty:
        return tree.assign(hidden=0)
    keep, hidden = [], [0] * len(tree)
    depth = tree["depth"].tolist()
    ids = tree["span_id"].tolist()
    hiding_until: int | None = None
    owner = -1
    for i in range(len(tree)):
        if hiding_until is not None and depth[i] > hiding_until:
            hidden[owner] += 1
            continue
        hiding_until = None
        keep.append(i)
        if ids[i] in collapsed:
            hiding_until, owner = depth[i], i
    result = tree.assign(hidden=hidden).iloc[keep].reset_index(drop=True)
    return result
