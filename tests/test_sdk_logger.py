"""V2Logger: levels, structured fields, trace/correlation ids, truncation, outputs, rotation, exclusions."""

from __future__ import annotations

import json
import logging

import pytest

from explorer import open_store
from ingest.sdk.correlation import correlation_scope


def _logs(provider):
    return open_store(provider.store_writer.root).sql(
        "SELECT body, severity_text, severity_number, logger_name, trace_id, attributes FROM logs ORDER BY timestamp"
    )


class TestLevels:
    def test_level_names_numbers_and_threshold(self, make_provider):
        """log() takes names in any case, WARN/FATAL and numbers; the configured level filters."""
        provider = make_provider({"logging": {"level": "warning"}})
        logger = provider.get_logger("svc")
        logger.info("hidden")
        logger.debug("hidden")
        logger.warning("w")
        logger.log("error", "e")
        logger.log("CRITICAL", "c")
        logger.log("warn", "w2")
        logger.log(logging.ERROR, "e2")
        with pytest.raises(ValueError, match="log level 'LOUD' is not valid; allowed: DEBUG, INFO"):
            logger.log("LOUD", "x")
        provider.shutdown()
        rows = _logs(provider)
        assert list(zip(rows["body"], rows["severity_text"], rows["severity_number"])) == [
            ("w", "WARN", 13),
            ("e", "ERROR", 17),
            ("c", "FATAL", 21),
            ("w2", "WARN", 13),
            ("e2", "ERROR", 17),
        ]

    def test_exception_records_the_stack(self, make_provider):
        """exception() logs at ERROR with type, message and stack trace of the handled exception."""
        provider = make_provider()
        logger = provider.get_logger("svc")
        try:
            {}["missing"]
        except KeyError:
            logger.exception("lookup failed", key="missing")
        provider.shutdown()
        attrs = dict(_logs(provider)["attributes"][0])
        assert attrs["exception.type"] == "KeyError" and attrs["key"] == "missing"
        assert (
            "Traceback" in attrs["exception.stacktrace"] and '{}["missing"]' in attrs["exception.stacktrace"]
        )


class TestRecords:
    def test_fields_ids_and_hostile_values(self, make_provider):
        """Fields of any type are kept (as text when needed); trace, span and correlation ids are attached."""
        provider = make_provider()
        logger = provider.get_logger("svc")
        tracer = provider.get_tracer("svc")
        with correlation_scope("c-1"), tracer.start_span("op") as span:
            logger.info("héllo ✓", none=None, nested={"a": [1, 2]}, items=[1, 2], flag=False, obj=object)
        provider.shutdown()
        row = _logs(provider).iloc[0]
        attrs = dict(row["attributes"])
        assert row["body"] == "héllo ✓" and row["trace_id"] == span.trace_id
        assert attrs["correlation_id"] == "c-1"
        assert attrs["none"] == "null" and json.loads(attrs["nested"]) == {"a": [1, 2]}
        assert attrs["items"] == "[1, 2]" and attrs["flag"] == "false" and attrs["obj"] == "<class 'object'>"

    def test_oversized_record_is_truncated_and_marked(self, make_provider):
        """A record over max_log_entry_size is cut, marked and counted, never dropped."""
        provider = make_provider({"performance": {"max_log_entry_size": 100}})
        logger = provider.get_logger("svc")
        logger.info("x" * 1000, blob="y" * 500, small=1)
        logger.info("fits")
        provider.shutdown()
        rows = _logs(provider)
        assert list(rows["body"].str.len())[1] == 4
        big = rows.iloc[0]
        attrs = dict(big["attributes"])
        assert len(big["body"]) <= 100 and big["body"].endswith("…[truncated]")
        assert (
            attrs["langswarm.log.truncated"] == "true" and int(attrs["langswarm.log.original_size"]) >= 1500
        )
        assert attrs["blob"].endswith("…[truncated]")
        truncated = open_store(provider.store_writer.root).sql(
            "SELECT max(value) AS v FROM metrics WHERE name = 'langswarm.telemetry.truncated_logs'"
        )
        assert truncated["v"][0] == 1

    def test_excluded_components_emit_nothing(self, make_provider):
        """logging.exclude_components silences those loggers only."""
        provider = make_provider({"logging": {"exclude_components": ["noisy"]}})
        provider.get_logger("noisy").error("dropped on purpose")
        provider.get_logger("quiet").error("kept")
        provider.shutdown()
        assert list(_logs(provider)["body"]) == ["kept"]


class TestOutputs:
    def test_json_file_with_rotation(self, tmp_path, make_provider):
        """JSON lines go to the file, rotating at max_size and keeping backup_count files."""
        path = tmp_path / "logs" / "app.log"
        provider = make_provider(
            {
                "logging": {
                    "output": "file",
                    "file_path": str(path),
                    "format": "json",
                    "rotation": {"max_size": "2KB", "backup_count": 2},
                }
            }
        )
        logger = provider.get_logger("writer")
        with provider.get_tracer("writer").start_span("op") as span:
            for i in range(100):
                logger.info("line", i=i, padding="p" * 40)
        provider.shutdown()
        files = sorted(p.name for p in path.parent.iterdir())
        assert files == ["app.log", "app.log.1", "app.log.2"]
        last = [json.loads(line) for line in path.read_text().splitlines()][-1]
        assert last["message"] == "line" and last["i"] == 99 and last["level"] == "INFO"
        assert (
            last["trace_id"] == span.trace_id
            and last["logger"] == "writer"
            and last["service"] == "test-service"
        )
        assert all(p.stat().st_size <= 2048 + 200 for p in path.parent.iterdir())

    def test_text_console(self, capfd, make_provider):
        """Text format on stderr shows level, component, message, fields and trace id."""
        provider = make_provider({"logging": {"output": "console", "format": "text"}})
        with provider.get_tracer("c").start_span("op") as span:
            provider.get_logger("c").warning("disk almost full", percent=91)
        provider.shutdown()
        err = capfd.readouterr().err
        assert "WARNING  c: disk almost full percent=91" in err and f"trace_id={span.trace_id}" in err

    def test_unwritable_file_path_is_a_configuration_error(self, tmp_path):
        """A log file that cannot be created names the config key."""
        from ingest import ConfigurationError, ObservabilityProvider

        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(ConfigurationError, match=r"logging\.file_path"):
            ObservabilityProvider.create(
                {
                    "logging": {"output": "file", "file_path": str(blocker / "app.log")},
                    "store": {"path": str(tmp_path)},
                },
                "svc",
            )

    def test_capture_stdlib(self, make_provider):
        """logging.capture_stdlib sends other libraries' stdlib records to the store too."""
        provider = make_provider({"logging": {"capture_stdlib": True}})
        logging.getLogger("third.party").warning("from stdlib %s", "logging")
        provider.shutdown()
        logging.getLogger("third.party").warning("after shutdown: not captured")
        rows = _logs(provider)
        assert list(zip(rows["body"], rows["logger_name"])) == [("from stdlib logging", "third.party")]
