"""OTLP JSON objects to protobuf requests: hex ids, bare-list AnyValues, strict integers, nesting limits."""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.common.v1 import common_pb2

from ingest.sources.otlp.model import (
    _HEX,
    _INT_FIELDS,
    MAX_JSON_DEPTH,
    SIGNAL_OF_KEY,
    SIGNALS,
    Decoded,
    InputError,
    cap_quoted,
    quote,
    strict_int,
)
from ingest.sources.otlp.protobuf import DECODERS
from ingest.sources.otlp.values import any_value_text


def request_from_json(obj: Any, signal: str | None = None) -> tuple[str, Any]:
    """An OTLP JSON object as a protobuf request, following the OTLP JSON rules (hex ids).

    ``signal`` defaults to the one named by the object's top-level key. Raises :class:`InputError`
    with the JSON path of the first problem.
    """
    if not isinstance(obj, dict):
        msg = f"expected a JSON object with resourceSpans, resourceMetrics or resourceLogs, got {_json_kind(obj)}"
        raise InputError(msg)
    if signal is None:
        present = [key for key in SIGNAL_OF_KEY if key in obj]
        if not present:
            keys = ", ".join(list(obj)[:5]) or "none"
            msg = f"no resourceSpans, resourceMetrics or resourceLogs key (keys: {keys})"
            raise InputError(msg)
        if len(present) > 1:
            msg = f"one object holds several signals ({', '.join(present)}); OTLP sends one per request"
            raise InputError(msg)
        signal = SIGNAL_OF_KEY[present[0]]
    key = SIGNALS[signal][1]
    try:
        fixed = _fix_json(obj, key)
        request = json_format.ParseDict(
            fixed, SIGNALS[signal][2](), ignore_unknown_fields=True, max_recursion_depth=MAX_JSON_DEPTH
        )
    except json_format.ParseError as exc:
        if "Message too deep" in str(exc):
            msg = f"{key} is nested too deeply (OTLP JSON values may nest at most {MAX_JSON_DEPTH} levels)"
            raise InputError(msg) from None
        raise InputError(cap_quoted(str(exc))) from None
    except RecursionError:
        msg = f"{key} is nested too deeply to decode (OTLP JSON values may nest at most {MAX_JSON_DEPTH} levels)"
        raise InputError(msg) from None
    except (SystemError, UnicodeError) as exc:
        # A lone UTF-16 surrogate (JSON "\ud800", or its bytes that Python's JSON reader lets through)
        # in a key or string: protobuf cannot hold it, and upb reports it as a SystemError.
        if not _has_lone_surrogate(obj):
            raise
        msg = "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair), which is not valid Unicode"
        raise InputError(msg) from exc
    return signal, request


def _has_lone_surrogate(obj: Any) -> bool:
    """Whether any key or string in a parsed JSON value cannot be encoded as UTF-8."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _hex_to_b64(value: Any, path: str, width: int, *, optional: bool) -> str:
    if value is None or value == "":
        if optional:
            return ""
        msg = f"{path} is missing (a span needs a {width * 2}-hex-digit id)"
        raise InputError(msg)
    if not isinstance(value, str) or len(value) != width * 2 or not _HEX.fullmatch(value):
        hint = (
            " (looks like base64; OTLP JSON ids are hex)"
            if isinstance(value, str) and len(value) in (12, 24)
            else ""
        )
        msg = f"{path} {quote(value)} is not {width * 2} hex digits{hint}"
        raise InputError(msg)
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _fix_values(key_values: Any, path: str) -> Any:
    """Wrap bare-list ``arrayValue``/``kvlistValue`` into ``{"values": [...]}``, recursively."""
    if not isinstance(key_values, list):
        return key_values
    out = []
    for i, kv in enumerate(key_values):
        if isinstance(kv, dict) and isinstance(kv.get("value"), dict):
            kv = dict(kv)
            kv["value"] = _fix_any(kv["value"], f"{path}[{i}].value")
        out.append(kv)
    return out


def _fix_any(value: dict, path: str) -> dict:
    if "intValue" in value:
        strict_int(value["intValue"], f"{path}.intValue")
    if "arrayValue" in value:
        inner = value["arrayValue"]
        items = (
            inner
            if isinstance(inner, list)
            else inner.get("values", [])
            if isinstance(inner, dict)
            else inner
        )
        if isinstance(items, list):
            return {
                "arrayValue": {
                    "values": [
                        _fix_any(v, f"{path}.arrayValue[{j}]") if isinstance(v, dict) else v
                        for j, v in enumerate(items)
                    ]
                }
            }
    if "kvlistValue" in value:
        inner = value["kvlistValue"]
        items = (
            inner
            if isinstance(inner, list)
            else inner.get("values", [])
            if isinstance(inner, dict)
            else inner
        )
        if isinstance(items, list):
            return {"kvlistValue": {"values": _fix_values(items, path)}}
    return value


def _fix_attributes(obj: dict, path: str) -> None:
    if "attributes" in obj:
        obj["attributes"] = _fix_values(obj["attributes"], f"{path}.attributes")


def _fix_json(obj: dict, key: str) -> dict:
    """A shallow-copied request with hex ids as base64 and AnyValue shapes normalised."""
    out = dict(obj)
    resources = obj.get(key)
    if not isinstance(resources, list):
        if resources is None:
            return out
        msg = f"{key} must be an array, got {_json_kind(resources)}"
        raise InputError(msg)
    fixed_resources = []
    scope_key, items_key = {
        "resourceSpans": ("scopeSpans", "spans"),
        "resourceLogs": ("scopeLogs", "logRecords"),
        "resourceMetrics": ("scopeMetrics", "metrics"),
    }[key]
    for r, resource in enumerate(resources):
        if not isinstance(resource, dict):
            msg = f"{key}[{r}] must be an object, got {_json_kind(resource)}"
            raise InputError(msg)
        resource = dict(resource)
        if isinstance(resource.get("resource"), dict):
            resource["resource"] = dict(resource["resource"])
            _fix_attributes(resource["resource"], f"{key}[{r}].resource")
        scopes = resource.get(scope_key)
        if isinstance(scopes, list):
            fixed_scopes = []
            for s, scope in enumerate(scopes):
                if not isinstance(scope, dict):
                    msg = f"{key}[{r}].{scope_key}[{s}] must be an object, got {_json_kind(scope)}"
                    raise InputError(msg)
                scope = dict(scope)
                if isinstance(scope.get("scope"), dict):
                    scope["scope"] = dict(scope["scope"])
                    _fix_attributes(scope["scope"], f"{key}[{r}].{scope_key}[{s}].scope")
                items = scope.get(items_key)
                if isinstance(items, list):
                    base = f"{key}[{r}].{scope_key}[{s}].{items_key}"
                    scope[items_key] = [_fix_item(key, item, f"{base}[{i}]") for i, item in enumerate(items)]
                fixed_scopes.append(scope)
            resource[scope_key] = fixed_scopes
        fixed_resources.append(resource)
    out[key] = fixed_resources
    return out


def _strict_ints(obj: dict, path: str) -> None:
    for name in _INT_FIELDS:
        if name in obj:
            strict_int(obj[name], f"{path}.{name}")
    if isinstance(obj.get("bucketCounts"), list):
        for b, count in enumerate(obj["bucketCounts"]):
            strict_int(count, f"{path}.bucketCounts[{b}]")


def _fix_item(key: str, item: Any, path: str) -> Any:
    if not isinstance(item, dict):
        msg = f"{path} must be an object, got {_json_kind(item)}"
        raise InputError(msg)
    item = dict(item)
    _strict_ints(item, path)
    if key == "resourceSpans":
        item["traceId"] = _hex_to_b64(item.get("traceId"), f"{path}.traceId", 16, optional=False)
        item["spanId"] = _hex_to_b64(item.get("spanId"), f"{path}.spanId", 8, optional=False)
        item["parentSpanId"] = _hex_to_b64(item.get("parentSpanId"), f"{path}.parentSpanId", 8, optional=True)
        _fix_attributes(item, path)
        for name in ("events", "links"):
            if isinstance(item.get(name), list):
                fixed = []
                for j, sub in enumerate(item[name]):
                    if isinstance(sub, dict):
                        sub = dict(sub)
                        sub_path = f"{path}.{name}[{j}]"
                        _strict_ints(sub, sub_path)
                        if name == "links":
                            sub["traceId"] = _hex_to_b64(
                                sub.get("traceId"), f"{sub_path}.traceId", 16, optional=False
                            )
                            sub["spanId"] = _hex_to_b64(
                                sub.get("spanId"), f"{sub_path}.spanId", 8, optional=False
                            )
                        _fix_attributes(sub, sub_path)
                    fixed.append(sub)
                item[name] = fixed
    elif key == "resourceLogs":
        item["traceId"] = _hex_to_b64(item.get("traceId"), f"{path}.traceId", 16, optional=True)
        item["spanId"] = _hex_to_b64(item.get("spanId"), f"{path}.spanId", 8, optional=True)
        _fix_attributes(item, path)
        if isinstance(item.get("body"), dict):
            item["body"] = _fix_any(item["body"], f"{path}.body")
    else:
        for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
            data = item.get(kind)
            if isinstance(data, dict) and isinstance(data.get("dataPoints"), list):
                data = dict(data)
                points = []
                for p, point in enumerate(data["dataPoints"]):
                    if isinstance(point, dict):
                        point = dict(point)
                        p_path = f"{path}.{kind}.dataPoints[{p}]"
                        _strict_ints(point, p_path)
                        _fix_attributes(point, p_path)
                        if isinstance(point.get("exemplars"), list):
                            point["exemplars"] = [
                                _fix_exemplar(e, f"{p_path}.exemplars[{x}]")
                                for x, e in enumerate(point["exemplars"])
                            ]
                    points.append(point)
                data["dataPoints"] = points
                item[kind] = data
    return item


def _fix_exemplar(exemplar: Any, path: str) -> Any:
    if not isinstance(exemplar, dict):
        return exemplar
    exemplar = dict(exemplar)
    _strict_ints(exemplar, path)
    exemplar["traceId"] = _hex_to_b64(exemplar.get("traceId"), f"{path}.traceId", 16, optional=True)
    exemplar["spanId"] = _hex_to_b64(exemplar.get("spanId"), f"{path}.spanId", 8, optional=True)
    if "filteredAttributes" in exemplar:
        exemplar["filteredAttributes"] = _fix_values(
            exemplar["filteredAttributes"], f"{path}.filteredAttributes"
        )
    return exemplar


def decode_json_object(obj: Any, signal: str | None = None) -> Decoded:
    """Decode one OTLP JSON object (already parsed) into store rows."""
    signal, request = request_from_json(obj, signal)
    return DECODERS[signal](request)


def json_any_value_text(value: Any) -> str | None:
    """The store text of one OTLP JSON ``AnyValue`` object, read by protobuf's JSON rules as the exact path is.

    The fast path's decoder for the AnyValues it does not cut itself (arrays, kvlists, escapes, bytes,
    odd types): going through protobuf keeps the two paths from disagreeing on what a value means.
    Raises :class:`InputError` for what protobuf refuses (``{"boolValue": "yes"}``, an int past int64).
    """
    if type(value) is dict and len(value) == 1 and type(value.get("stringValue")) is str:
        text = value["stringValue"]  # the common case (a string with escapes), without protobuf
        if text.isascii() or not _has_lone_surrogate(text):
            return text
    if not isinstance(value, dict):
        msg = f"an AnyValue must be an object like {{'stringValue': ...}}, got {_json_kind(value)}"
        raise InputError(msg)
    message = common_pb2.AnyValue()
    try:
        json_format.ParseDict(
            _fix_any(value, ""), message, ignore_unknown_fields=True, max_recursion_depth=MAX_JSON_DEPTH
        )
    except json_format.ParseError as exc:
        raise InputError(cap_quoted(str(exc))) from None
    except RecursionError:
        msg = f"an AnyValue is nested too deeply (OTLP JSON values may nest at most {MAX_JSON_DEPTH} levels)"
        raise InputError(msg) from None
    except (SystemError, UnicodeError) as exc:  # a lone surrogate (see request_from_json)
        msg = "an AnyValue string holds a lone UTF-16 surrogate, which is not valid Unicode"
        raise InputError(msg) from exc
    return any_value_text(message)
