"""Flattening the reader's nested lists (resource > scope > span) into row-aligned arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _flatten(lists: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Items of a list column and, for each item, the index of the row it came from."""
    parents = pc.list_parent_indices(lists).to_numpy()
    return pc.list_flatten(lists), np.asarray(parents, dtype=np.int64)


def _levels(
    resources: pa.Array, scope_key: str, items_key: str
) -> tuple[pa.Array, pa.Array, pa.Array, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Resource, scope and item structs with item -> line, item -> resource, item -> scope indices.

    Also the lines with a resource or scope entry whose list came out NULL: absent, or of the wrong
    JSON type (which the reader cannot tell apart). Such entries are pointless when valid, so those
    lines simply take the exact path, which says which it was.
    """
    res_items, line_of_res = _flatten(resources)
    scope_lists = pc.struct_field(res_items, scope_key)
    scopes, res_of_scope = _flatten(scope_lists)
    item_lists = pc.struct_field(scopes, items_key)
    items, scope_of_item = _flatten(item_lists)
    res_of_item = res_of_scope[scope_of_item]
    odd_res = np.asarray(pc.is_null(scope_lists).to_numpy(zero_copy_only=False), dtype=bool)
    odd_scope = np.asarray(pc.is_null(item_lists).to_numpy(zero_copy_only=False), dtype=bool)
    odd_lines = np.concatenate([line_of_res[odd_res], line_of_res[res_of_scope[odd_scope]]])
    return res_items, scopes, items, line_of_res[res_of_item], res_of_item, scope_of_item, odd_lines


def _field(array: pa.Array, name: str) -> pa.Array:
    return pc.struct_field(array, name)


def _empty_null(array: pa.Array) -> pa.Array:
    """Empty strings (OTLP's default) as NULL."""
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
