"""The one place that validates and resolves an ObservabilityProvider configuration.

The guide's nested dict (``logging``, ``tracing``, ``metrics``, ``integrations``, ``performance``)
plus ``store`` and ``resource``. Each setting resolves argument → environment variable → default;
defaults suit local development (everything on, console text logs, the local Parquet store). An
unknown key or a bad value raises :class:`~ingest.errors.ConfigurationError` naming the key path,
what is allowed and, for a typo, the closest valid key. Every key is documented in
docs/configuration.md (a test fails if one is not).
"""

from __future__ import annotations

import copy
import difflib
import itertools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ingest.errors import ConfigurationError

EXPORTERS = ("parquet", "otlp", "console", "none")
LOG_OUTPUTS = ("console", "file", "both", "none")
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
SPAN_PROCESSORS = ("batch", "simple")
COMPRESSIONS = ("none", "gzip", "deflate")
#: OTLP request settings every signal shares; ``logging``/``metrics`` inherit ``tracing``'s when unset.
OTLP_SHARED_KEYS = ("headers", "compression", "export_timeout_millis")
CONSOLE_STREAMS = ("stderr", "stdout")

_SIZE_UNITS = {"": 1, "B": 1, "KB": 1024, "K": 1024, "MB": 1024**2, "M": 1024**2, "GB": 1024**3, "G": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(value: Any, where: str = "size") -> int:
    """Bytes from an int or a string like ``"100MB"``, ``"512 KB"``, ``"1G"`` (binary units)."""
    if isinstance(value, bool):
        raise _bad(where, value, "a byte count or a size like '100MB'")
    if isinstance(value, int):
        if value <= 0:
            raise _bad(where, value, "a positive byte count")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match and match.group(2).upper() in _SIZE_UNITS:
            size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])
            if size > 0:
                return size
    raise _bad(
        where, value, f"a positive size like '100MB' (units: {', '.join(u for u in _SIZE_UNITS if u)})"
    )


def _bad(where: str, value: Any, allowed: str) -> ConfigurationError:
    return ConfigurationError(f"config key {where!r} = {value!r} is not valid; expected {allowed}")


# Validators: (value, key path) -> normalised value, raising ConfigurationError.
Validator = Callable[[Any, str], Any]


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise _bad(where, value, "true or false")


def _choice(choices: tuple[str, ...], *, upper: bool = False) -> Validator:
    def check(value: Any, where: str) -> str:
        if isinstance(value, str):
            norm = value.strip().upper() if upper else value.strip().lower()
            norm = _LEVEL_ALIASES.get(norm, norm) if upper else norm
            if norm in choices:
                return norm
            close = difflib.get_close_matches(norm, choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        else:
            hint = ""
        raise ConfigurationError(
            f"config key {where!r} = {value!r} is not allowed; allowed: {', '.join(map(repr, choices))}{hint}"
        )

    return check


def _exporters(value: Any, where: str) -> tuple[str, ...]:
    """One exporter name or a list of them; ``none`` alone turns the signal's export off."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise _bad(where, value, f"one of {', '.join(map(repr, EXPORTERS))} or a list of them")
    check = _choice(EXPORTERS)
    names = tuple(dict.fromkeys(check(item, where) for item in items))
    if "none" in names and len(names) > 1:
        raise _bad(where, value, "'none' alone, or a list of exporters without 'none'")
    return () if names == ("none",) else names


def _number(
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    exclusive_min: bool = False,
) -> Validator:
    def check(value: Any, where: str) -> Any:
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value != value:
            raise _bad(where, value, "an integer" if integer else "a number")
        low_ok = minimum is None or (value > minimum if exclusive_min else value >= minimum)
        if not low_ok or (maximum is not None and value > maximum):
            lo = "" if minimum is None else (f"> {minimum}" if exclusive_min else f">= {minimum}")
            hi = "" if maximum is None else f"<= {maximum}"
            raise _bad(
                where,
                value,
                f"a {'whole ' if integer else ''}number {' and '.join(p for p in (lo, hi) if p)}",
            )
        return value if integer else float(value)

    return check


def _optional(inner: Validator) -> Validator:
    def check(value: Any, where: str) -> Any:
        return None if value is None else inner(value, where)

    return check


def _string(value: Any, where: str) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise _bad(where, value, "a non-empty string")


def _url(value: Any, where: str) -> str:
    if isinstance(value, str) and re.match(r"^https?://[^\s/]+", value):
        return value
    raise _bad(where, value, "an http:// or https:// URL, e.g. 'http://localhost:4318'")


def _path_prefix(value: Any, where: str) -> str:
    if isinstance(value, str) and value.startswith("/") and " " not in value:
        return value
    raise _bad(where, value, "a URL path starting with '/', e.g. '/metrics'")


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise _bad(where, value, "a list of strings")
    for item in value:
        if not isinstance(item, str):
            raise _bad(f"{where}[{item!r}]", item, "a string")
    return tuple(value)


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _bad(where, value, "a mapping of names to values")
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or isinstance(item, (Mapping, list, tuple)):
            raise _bad(f"{where}.{key}", item, "a string, number or boolean value under a string key")
        out[key] = (
            item if isinstance(item, str) else str(item).lower() if isinstance(item, bool) else str(item)
        )
    return out


def _attributes(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(where, value, "a mapping of attribute names to values")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, (str, bool, int, float)):
            raise _bad(f"{where}.{key}", item, "a string, number or boolean under a string key")
    return dict(value)


def _buckets(value: Any, where: str) -> dict[str, tuple[float, ...]]:
    if not isinstance(value, Mapping):
        raise _bad(where, value, "a mapping of metric name (or name fragment) to a list of bucket bounds")
    return {name: bucket_bounds(bounds, f"{where}.{name}") for name, bounds in value.items()}


def bucket_bounds(bounds: Any, where: str) -> tuple[float, ...]:
    """Validated histogram bucket upper bounds: a non-empty, strictly increasing list of numbers."""
    if isinstance(bounds, (str, bytes)) or not isinstance(bounds, (list, tuple)) or not bounds:
        raise _bad(where, bounds, "a non-empty list of increasing numbers")
    out = []
    for b in bounds:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or b != b:
            raise _bad(where, bounds, "a list of numbers")
        out.append(float(b))
    if any(b >= c for b, c in itertools.pairwise(out)):
        raise _bad(where, bounds, "bucket bounds in strictly increasing order")
    return tuple(out)


def _rotation(value: Any, where: str) -> dict[str, int]:
    return _section(value, where, _ROTATION)


def _size(value: Any, where: str) -> int:
    return parse_size(value, where)


@dataclass(frozen=True)
class Key:
    """One configuration key: its validator, default and optional environment variable(s)."""

    check: Validator
    default: Any
    env: tuple[str, ...] = ()
    env_parse: Callable[[str], Any] | None = None


def _env_float(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _env_int(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def _env_bool(text: str) -> Any:
    low = text.strip().lower()
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(low, text)


_ROTATION: dict[str, Key] = {
    "max_size": Key(_size, 100 * 1024**2),
    "backup_count": Key(_number(minimum=0, integer=True), 5),
}

SCHEMA: dict[str, dict[str, Key]] = {
    "logging": {
        "level": Key(_choice(LOG_LEVELS, upper=True), "INFO", ("LANGSWARM_LOG_LEVEL",)),
        "output": Key(_choice(LOG_OUTPUTS), "console", ("LANGSWARM_LOG_OUTPUT",)),
        "file_path": Key(_optional(_string), None, ("LANGSWARM_LOG_FILE",)),
        "format": Key(_choice(LOG_FORMATS), "text", ("LANGSWARM_LOG_FORMAT",)),
        "console_stream": Key(_choice(CONSOLE_STREAMS), "stderr"),
        "rotation": Key(_rotation, None),
        "correlation": Key(_bool, True),
        "exclude_components": Key(_string_list, ()),
        "include_kubernetes_metadata": Key(_bool, False),
        "exporter": Key(_exporters, "parquet"),
        "endpoint": Key(
            _optional(_url), None, ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        ),
        "headers": Key(_optional(_string_map), None),
        "compression": Key(_optional(_choice(COMPRESSIONS)), None),
        "export_timeout_millis": Key(_optional(_number(minimum=1, integer=True)), None),
        "capture_stdlib": Key(_bool, False),
        "max_queue_size": Key(_number(minimum=1, integer=True), 32768),
        "max_export_batch_size": Key(_number(minimum=1, integer=True), 4096),
        "schedule_delay_millis": Key(_number(minimum=1, integer=True), 1000),
    },
    "tracing": {
        "enabled": Key(_bool, True, ("LANGSWARM_TRACING_ENABLED",), _env_bool),
        "sampling_rate": Key(
            _number(minimum=0.0, maximum=1.0), 1.0, ("LANGSWARM_SAMPLING_RATE",), _env_float
        ),
        "adaptive_sampling": Key(_bool, False),
        "adaptive_traces_per_second": Key(_number(minimum=0.0, exclusive_min=True), 10.0),
        "exporter": Key(_exporters, "parquet"),
        "endpoint": Key(
            _optional(_url), None, ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        ),
        "headers": Key(_string_map, {}),
        "compression": Key(_optional(_choice(COMPRESSIONS)), None),
        "span_processor": Key(_choice(SPAN_PROCESSORS), "batch"),
        "max_queue_size": Key(_number(minimum=1, integer=True), 32768),
        "max_export_batch_size": Key(_number(minimum=1, integer=True), 4096),
        "schedule_delay_millis": Key(_number(minimum=1, integer=True), 1000),
        "export_timeout_millis": Key(_number(minimum=1, integer=True), 30000),
    },
    "metrics": {
        "enabled": Key(_bool, True, ("LANGSWARM_METRICS_ENABLED",), _env_bool),
        "export_interval": Key(_number(minimum=0.0, exclusive_min=True), 10.0),
        "exporter": Key(_exporters, "parquet"),
        "endpoint": Key(
            _optional(_url), None, ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        ),
        "headers": Key(_optional(_string_map), None),
        "compression": Key(_optional(_choice(COMPRESSIONS)), None),
        "export_timeout_millis": Key(_optional(_number(minimum=1, integer=True)), None),
        "prometheus_endpoint": Key(_optional(_path_prefix), None),
        "prometheus_host": Key(_string, "127.0.0.1", ("LANGSWARM_PROMETHEUS_HOST",)),
        "prometheus_port": Key(
            _number(minimum=0, maximum=65535, integer=True), 9464, ("LANGSWARM_PROMETHEUS_PORT",), _env_int
        ),
        "include_histograms": Key(_bool, True),
        "exclude_labels": Key(_string_list, ()),
        "custom_buckets": Key(_buckets, {}),
        "kubernetes_labels": Key(_string_map, {}),
    },
    "integrations": {
        "all_components": Key(_bool, True),
        "components": Key(_string_list, ()),
        "detailed_spans": Key(_bool, True),
        "parameter_logging": Key(_bool, False),
        "global_providers": Key(_bool, True),
    },
    "performance": {
        "max_spans_per_trace": Key(_optional(_number(minimum=1, integer=True)), 10000),
        "max_attributes_per_span": Key(_number(minimum=1, integer=True), 128),
        "span_timeout_seconds": Key(_optional(_number(minimum=0.0, exclusive_min=True)), 300.0),
        "max_log_entry_size": Key(_size, 32768),
    },
    "store": {
        "path": Key(_optional(_string), None),
        "durable": Key(_bool, True),
        "retention_days": Key(_optional(_number(minimum=0.0, exclusive_min=True)), None),
    },
    "resource": {},  # free-form resource attributes, validated by _attributes
}

_SECTION_DOCS = {
    "logging": "structured logs (V2Logger): level, console/file output, OTel log export",
    "tracing": "spans (V2Tracer): sampling, exporters, batching",
    "metrics": "V2Metrics: export interval, Prometheus endpoint, labels, buckets",
    "integrations": "which components get telemetry and how detailed",
    "performance": "limits that bound overhead and memory",
    "store": "the local Parquet telemetry store",
    "resource": "extra OTel resource attributes (service.version, deployment.environment, ...)",
}


def _unknown(key: str, where: str, known: Mapping[str, Any]) -> ConfigurationError:
    path = f"{where}.{key}" if where else key
    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {(f'{where}.' if where else '') + close[0]!r}?" if close else ""
    scope = f"in {where!r}" if where else "at the top level"
    return ConfigurationError(f"unknown config key {path!r}{hint} (keys allowed {scope}: {', '.join(known)})")


def _section(value: Any, where: str, keys: Mapping[str, Key]) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise _bad(where, value, f"a mapping with keys {', '.join(keys)}")
    for key in value:
        if key not in keys:
            raise _unknown(key, where, keys)
    out = {}
    for key, spec in keys.items():
        path = f"{where}.{key}"
        if key in value:
            raw = value[key]
        else:
            raw = _from_env(spec)
        if raw is _MISSING:
            raw = copy.deepcopy(spec.default)
        out[key] = spec.check(raw, path)
    return out


_MISSING = object()


def _from_env(spec: Key) -> Any:
    for name in spec.env:
        text = os.environ.get(name)
        if text not in (None, ""):
            return spec.env_parse(text) if spec.env_parse else text
    return _MISSING


def resolve_config(config: Mapping[str, Any] | None, service_name: str) -> dict[str, Any]:
    """Validate ``config`` and return a new, fully resolved nested dict (every key present)."""
    if not isinstance(service_name, str) or not service_name.strip():
        raise ConfigurationError(f"service_name = {service_name!r} is not valid; expected a non-empty string")
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ConfigurationError(
            f"the configuration must be a mapping with sections {', '.join(SCHEMA)}; got {type(config).__name__}"
        )
    for section in config:
        if section not in SCHEMA:
            raise _unknown(section, "", _SECTION_DOCS)
    resolved: dict[str, Any] = {}
    for section, keys in SCHEMA.items():
        if section == "resource":
            resolved[section] = _attributes(config.get(section) or {}, section)
        else:
            resolved[section] = _section(config.get(section), section, keys)
    _cross_checks(resolved)
    return resolved


def _cross_checks(cfg: dict[str, Any]) -> None:
    """Constraints between keys, each naming both keys."""
    for section in ("tracing", "logging"):
        s = cfg[section]
        if s["max_export_batch_size"] > s["max_queue_size"]:
            raise ConfigurationError(
                f"config key '{section}.max_export_batch_size' = {s['max_export_batch_size']} is larger than "
                f"'{section}.max_queue_size' = {s['max_queue_size']}; it must be at most the queue size"
            )
    for section in ("tracing", "metrics", "logging"):
        s = cfg[section]
        if "otlp" in s["exporter"] and s["endpoint"] is None:
            s["endpoint"] = "http://localhost:4318"
    for section in ("logging", "metrics"):
        for key in OTLP_SHARED_KEYS:
            if cfg[section][key] is None:
                cfg[section][key] = copy.deepcopy(cfg["tracing"][key])
