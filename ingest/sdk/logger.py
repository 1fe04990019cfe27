"""V2Logger: structured logging into the OTel logs pipeline, plus console/file output.

Each call becomes one OTel log record (body = message, attributes = the keyword fields plus
``correlation_id``; trace and span ids from the current context) emitted straight into the
provider's ``LoggerProvider`` — the store's ``logs`` table. Console and file output go through
stdlib ``logging`` handlers (``StreamHandler``, ``RotatingFileHandler``) with a JSON or text
formatter. Records larger than ``performance.max_log_entry_size`` are truncated and marked
(``langswarm.log.truncated``, ``langswarm.log.original_size``), never dropped.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry._logs import SeverityNumber

from ingest.errors import TelemetryValueError
from ingest.sdk._values import PLAIN_TYPES as _PLAIN
from ingest.sdk._values import attribute_value
from ingest.sdk.correlation import CORRELATION_ATTRIBUTE, get_correlation_id
from ingest.sdk.processors import TelemetryCounters

TRUNCATED = "langswarm.log.truncated"
ORIGINAL_SIZE = "langswarm.log.original_size"
_SUFFIX = "…[truncated]"

#: level name -> (stdlib level number, OTel severity number, OTel severity text)
LEVELS: dict[str, tuple[int, SeverityNumber, str]] = {
    "DEBUG": (logging.DEBUG, SeverityNumber.DEBUG, "DEBUG"),
    "INFO": (logging.INFO, SeverityNumber.INFO, "INFO"),
    "WARNING": (logging.WARNING, SeverityNumber.WARN, "WARN"),
    "ERROR": (logging.ERROR, SeverityNumber.ERROR, "ERROR"),
    "CRITICAL": (logging.CRITICAL, SeverityNumber.FATAL, "FATAL"),
}
_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "EXCEPTION": "ERROR"}
_BY_NUMBER = {v[0]: k for k, v in LEVELS.items()}


def level_name(level: str | int) -> str:
    """Canonical level name from a name (any case, ``WARN``/``FATAL`` too) or a stdlib level number."""
    if isinstance(level, int) and not isinstance(level, bool):
        if level in _BY_NUMBER:
            return _BY_NUMBER[level]
        for number in sorted(_BY_NUMBER, reverse=True):
            if level >= number:
                return _BY_NUMBER[number]
        return "DEBUG"
    if isinstance(level, str):
        name = level.strip().upper()
        name = _ALIASES.get(name, name)
        if name in LEVELS:
            return name
    msg = (
        f"log level {level!r} is not valid; allowed: {', '.join(LEVELS)} (any case), WARN, FATAL or a number"
    )
    raise TelemetryValueError(msg)


class V2Logger:
    """Logger of one component: ``info("msg", key=value, ...)`` and friends, with string level names."""

    __slots__ = (
        "_correlation",
        "_counters",
        "_handlers",
        "_max_size",
        "_otel",
        "_service",
        "_threshold",
        "component",
    )

    def __init__(
        self,
        component: str,
        otel_logger: Any,
        *,
        level: str = "INFO",
        handlers: tuple[logging.Handler, ...] = (),
        correlation: bool = True,
        max_entry_size: int = 32768,
        counters: TelemetryCounters | None = None,
        service_name: str = "",
        enabled: bool = True,
    ) -> None:
        self.component = component
        self._otel = otel_logger
        self._handlers = handlers
        self._threshold = LEVELS[level_name(level)][0] if enabled else logging.CRITICAL + 10
        self._correlation = correlation
        self._max_size = max_entry_size
        self._counters = counters
        self._service = service_name

    @property
    def level(self) -> str:
        """The lowest level this logger emits."""
        return _BY_NUMBER.get(self._threshold, "DISABLED")

    def is_enabled_for(self, level: str | int) -> bool:
        return LEVELS[level_name(level)][0] >= self._threshold

    def debug(self, msg: Any, **fields: Any) -> None:
        if self._threshold <= 10:
            self._emit("DEBUG", msg, fields, None)

    def info(self, msg: Any, **fields: Any) -> None:
        if self._threshold <= 20:
            self._emit("INFO", msg, fields, None)

    def warning(self, msg: Any, **fields: Any) -> None:
        if self._threshold <= 30:
            self._emit("WARNING", msg, fields, None)

    warn = warning

    def error(self, msg: Any, **fields: Any) -> None:
        if self._threshold <= 40:
            self._emit("ERROR", msg, fields, None)

    def critical(self, msg: Any, **fields: Any) -> None:
        if self._threshold <= 50:
            self._emit("CRITICAL", msg, fields, None)

    fatal = critical

    def exception(self, msg: Any, *, exc_info: BaseException | None = None, **fields: Any) -> None:
        """An ERROR record with the exception being handled (or ``exc_info``): type, message, stack trace."""
        if self._threshold <= 40:
            exc = exc_info if exc_info is not None else sys.exc_info()[1]
            self._emit("ERROR", msg, fields, exc)

    def log(self, level: str | int, msg: Any, **fields: Any) -> None:
        """Log at a level given by name (``"WARNING"``, ``"critical"``, ``"WARN"``) or stdlib number."""
        name = level_name(level)
        if LEVELS[name][0] >= self._threshold:
            self._emit(name, msg, fields, None)

    def _emit(self, level: str, msg: Any, fields: Mapping[str, Any], exc: BaseException | None) -> None:
        levelno, severity, severity_text = LEVELS[level]
        body = msg if type(msg) is str else str(msg)
        attributes = (
            {k: (v if type(v) in _PLAIN else attribute_value(v)) for k, v in fields.items()} if fields else {}
        )
        if self._correlation and CORRELATION_ATTRIBUTE not in attributes:
            cid = get_correlation_id()
            if cid is not None:
                attributes[CORRELATION_ATTRIBUTE] = cid
        if exc is not None:
            attributes["exception.type"] = type(exc).__name__
            attributes["exception.message"] = str(exc)
            attributes["exception.stacktrace"] = "".join(traceback.format_exception(exc))
        if len(body) > self._max_size or (attributes and _size(attributes) + len(body) > self._max_size):
            body = self._truncate(body, attributes)
        timestamp = time.time_ns()
        context = context_api.get_current()
        self._otel.emit(
            timestamp=timestamp,
            context=context,
            severity_number=severity,
            severity_text=severity_text,
            body=body,
            attributes=attributes,
        )
        if self._handlers:
            self._to_handlers(levelno, level, body, attributes, timestamp, context)

    def _truncate(self, body: str, attributes: dict[str, Any]) -> str:
        """Cut the body, then string fields, to fit ``max_log_entry_size``; mark and count the record."""
        original = len(body) + _size(attributes)
        budget = self._max_size
        if len(body) > budget:
            body = body[: max(0, budget - len(_SUFFIX))] + _SUFFIX
        budget = max(0, budget - len(body))
        for key, value in list(attributes.items()):
            text = value if isinstance(value, str) else None
            size = len(text) if text is not None else len(str(value))
            if size <= budget:
                budget -= size
                continue
            attributes[key] = (text if text is not None else str(value))[
                : max(0, budget - len(_SUFFIX))
            ] + _SUFFIX
            budget = 0
        attributes[TRUNCATED] = True
        attributes[ORIGINAL_SIZE] = original
        if self._counters is not None:
            self._counters.add("truncated_logs", "max_log_entry_size")
        return body

    def _to_handlers(
        self, levelno: int, level: str, body: str, attributes: dict[str, Any], timestamp: int, context: Any
    ) -> None:
        record = logging.LogRecord(self.component, levelno, "", 0, body, None, None)
        record.created = timestamp / 1e9
        span_context = trace_api.get_current_span(context).get_span_context()
        record.trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else None
        record.span_id = format(span_context.span_id, "016x") if span_context.is_valid else None
        record.fields = attributes
        record.service = self._service
        record.component = self.component
        for handler in self._handlers:
            if levelno >= handler.level:
                handler.handle(record)


def _size(attributes: Mapping[str, Any]) -> int:
    return sum(len(v) if type(v) is str else 16 for v in attributes.values())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, service, logger, message, trace/span ids, then the fields."""

    _FIXED = ("timestamp", "level", "service", "logger", "message", "trace_id", "span_id")

    def __init__(self, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.extra = dict(extra or {})

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "service": getattr(record, "service", None),
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": getattr(record, "trace_id", None),
            "span_id": getattr(record, "span_id", None),
        }
        for key, value in (getattr(record, "fields", None) or {}).items():
            out[f"field.{key}" if key in out else key] = value
        out.update(self.extra)
        if record.exc_info and "exception.stacktrace" not in out:
            out["exception.stacktrace"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2025-01-01T12:00:00.123456+00:00 INFO  component: message key=value ... trace_id=…``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds")
        parts = [f"{stamp} {record.levelname:<8} {record.name}: {record.getMessage()}"]
        for key, value in (getattr(record, "fields", None) or {}).items():
            if key == "exception.stacktrace":
                continue
            parts.append(f"{key}={value!r}" if isinstance(value, str) and " " in value else f"{key}={value}")
        if trace_id := getattr(record, "trace_id", None):
            parts.append(f"trace_id={trace_id} span_id={getattr(record, 'span_id', None)}")
        text = " ".join(parts)
        stack = (getattr(record, "fields", None) or {}).get("exception.stacktrace")
        return f"{text}\n{stack.rstrip()}" if stack else text
