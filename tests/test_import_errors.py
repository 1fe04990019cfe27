"""Bad input to ``python -m ingest import``: each bad line reported with its number and why, kept in _rejected/, the rest imported."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from ingest.sources.importer import Importer, ImportFileError
from ingest.sources.otlp import request_from_json
from ingest.store.rejects import read_rejected
from tests.otlp_samples import (
    jsonl,
    length_prefixed,
    otlp_logs,
    otlp_spans,
    sdk_logs,
    sdk_spans,
    to_otlp_json,
)

REPO = Path(__file__).resolve().parents[1]


def _count(store: Path, table: str) -> int:
    folder = store / table
    return ds.dataset(folder, format="parquet").count_rows() if folder.exists() else 0


def _rejected(store: Path) -> list[dict]:
    files = sorted((store / "_rejected").glob("*.jsonl"))
    return [record for path in files for record in read_rejected(path)]


@pytest.fixture(scope="module")
def good() -> dict:
    """One valid traces line (15 spans) and one valid logs line (5 records) from the SDK."""
    return {"spans": to_otlp_json(otlp_spans(sdk_spans())), "logs": to_otlp_json(otlp_logs(sdk_logs()))}


def _mixed_file(path: Path, good: dict) -> dict[int, str]:
    """A JSON Lines file with valid lines around every kind of bad one; returns line -> expected reason words."""
    base64_ids = copy.deepcopy(good["spans"])
    span = base64_ids["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"] = base64.b64encode(bytes.fromhex(span["traceId"])).decode()
    bad_time = copy.deepcopy(good["spans"])
    bad_time["resourceSpans"][0]["scopeSpans"][0]["spans"][2]["startTimeUnixNano"] = "soon"
    spans_not_list = {"resourceSpans": [{"scopeSpans": [{"spans": "three spans"}]}]}
    id_number = copy.deepcopy(good["spans"])
    id_number["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = 12345
    lines = [
        json.dumps(good["spans"]),  # 1
        "this is not JSON",  # 2
        "",  # 3 (blank: skipped, not an error)
        "[1, 2, 3]",  # 4
        json.dumps({"resourceSpans": "nope"}),  # 5
        json.dumps(base64_ids),  # 6
        json.dumps(bad_time),  # 7
        json.dumps(good["logs"]),  # 8
        json.dumps({"hello": "world"}),  # 9
        json.dumps(spans_not_list),  # 10
        json.dumps(id_number),  # 11
        json.dumps(good["spans"])[:200],  # 12: truncated, no newline at the end of the file
    ]
    path.write_text("\n".join(lines))
    return {
        2: "not valid JSON",
        4: "expected a JSON object",
        5: "resourceSpans must be an array",
        6: "looks like base64",
        7: "startTimeUnixNano",
        9: "no resourceSpans, resourceMetrics or resourceLogs",
        10: "spans",
        11: "spanId",
        12: "truncated",
    }


class TestBadLines:
    def test_each_bad_line_is_rejected_with_its_number_and_the_rest_lands(
        self, tmp_path: Path, good: dict
    ) -> None:
        source = tmp_path / "mixed.jsonl"
        expected = _mixed_file(source, good)
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.written == {"spans": 15, "logs": 5}
        assert _count(store, "spans") == 15 and _count(store, "logs") == 5
        records = {r["line"]: r for r in _rejected(store)}
        assert set(records) == set(expected), records
        for line, words in expected.items():
            assert words in records[line]["reason"], (line, records[line]["reason"])
            assert records[line]["source"] == str(source)
        original = source.read_text().split("\n")
        for line, record in records.items():
            assert record["data"] == original[line - 1]  # the rejected line is kept as it was
        assert report.rejected == len(expected) and report.rejected_file

    def test_cli_reports_file_line_and_why_and_exits_1(self, tmp_path: Path, good: dict) -> None:
        source = tmp_path / "mixed.jsonl"
        _mixed_file(source, good)
        result = subprocess.run(
            [sys.executable, "-m", "ingest", "import", "--store", str(tmp_path / "store"), str(source)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert result.returncode == 1
        assert f"{source}:2: not valid JSON" in result.stderr
        assert f"{source}:6: " in result.stderr and "looks like base64" in result.stderr
        assert "wrote 15 spans, 5 logs" in result.stdout and "9 rejected" in result.stdout

    @pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
    def test_an_oversized_line_is_imported_whole(self, tmp_path: Path, good: dict, compressed: bool) -> None:
        """A 17 MB line (one attribute of 17 MB; more than DuckDB's default object size) lands whole."""
        big = copy.deepcopy(good["spans"])
        span = big["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        span["attributes"].append({"key": "huge", "value": {"stringValue": "x" * (17 << 20)}})
        source = tmp_path / ("big.jsonl.gz" if compressed else "big.jsonl")
        text = (json.dumps(good["logs"]) + "\n" + json.dumps(big) + "\n").encode()
        source.write_bytes(gzip.compress(text, compresslevel=1) if compressed else text)
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.rejected == 0 and report.written == {"logs": 5, "spans": 15}
        sizes = (
            ds.dataset(store / "spans", format="parquet")
            .to_table(columns=["attributes"])
            .column(0)
            .to_pylist()
        )
        assert sorted(len(dict(a).get("huge", "")) for a in sizes)[-1] == 17 << 20


def _retraced(request: dict, k: int) -> dict:
    """A copy of a traces request whose spans belong to other traces (so no line duplicates another)."""
    out = copy.deepcopy(request)
    for resource in out["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                span["traceId"] = f"{k:04x}" + span["traceId"][4:]
    return out


class TestBadFiles:
    def test_truncated_gzip_keeps_the_whole_lines_before_the_damage(self, tmp_path: Path, good: dict) -> None:
        lines = [json.dumps(_retraced(good["spans"], k)) for k in range(40)]
        data = gzip.compress(("\n".join(lines) + "\n").encode())
        source = tmp_path / "cut.jsonl.gz"
        source.write_bytes(data[: len(data) * 3 // 4])
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        [record] = _rejected(store)
        assert "damaged" in record["reason"] and record["line"] >= 1
        assert report.written["spans"] == 15 * (record["line"] - 1)  # every whole line before the cut

    def test_truncated_length_prefixed_protobuf(self, tmp_path: Path, good: dict) -> None:
        requests = [request_from_json(good["spans"])[1], request_from_json(good["logs"])[1]]
        data = length_prefixed(requests)
        source = tmp_path / "cut.pb"
        source.write_bytes(data[:-10])
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.written == {"spans": 15}
        [record] = _rejected(store)
        assert "truncated" in record["reason"] and record["offset"] > 0 and record["data_base64"]

    def test_binary_garbage_is_rejected_not_guessed(self, tmp_path: Path) -> None:
        source = tmp_path / "noise.bin"
        source.write_bytes(bytes(range(7, 256)) * 3)
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.written == {} and report.rejected == 1
        assert "not" in _rejected(store)[0]["reason"]

    def test_a_missing_file_is_an_error_and_exit_2(self, tmp_path: Path) -> None:
        with pytest.raises(ImportFileError, match="no such file"):
            Importer(tmp_path / "store", progress=False).import_file(tmp_path / "nope.jsonl")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "ingest",
                "import",
                "--store",
                str(tmp_path / "store"),
                str(tmp_path / "nope.jsonl"),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert result.returncode == 2 and "no such file" in result.stderr


class TestReimport:
    def test_the_same_file_twice_is_skipped_and_force_does_not_duplicate(
        self, tmp_path: Path, good: dict
    ) -> None:
        source = tmp_path / "spans.jsonl"
        source.write_bytes(jsonl([good["spans"], good["logs"]]))
        store = tmp_path / "store"
        importer = Importer(store, progress=False, durable=False)
        first = importer.import_file(source)
        assert first.written == {"spans": 15, "logs": 5}
        again = Importer(store, progress=False, durable=False).import_file(source)
        assert again.skipped and "--force" in again.skipped and again.written == {}
        forced = Importer(store, force=True, progress=False, durable=False).import_file(source)
        assert forced.duplicates == 15 and "spans" not in forced.written
        assert _count(store, "spans") == 15

    def test_a_ledger_entry_of_the_older_sha256_kind_still_skips_the_file(
        self, tmp_path: Path, good: dict
    ) -> None:
        import hashlib

        source = tmp_path / "spans.jsonl"
        source.write_bytes(jsonl([good["spans"]]))
        store = tmp_path / "store"
        ledger = store / "_imports" / "ledger.jsonl"
        ledger.parent.mkdir(parents=True)
        old = {
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "size": source.stat().st_size,
            "path": str(source),
            "imported_at": "2026-01-01T00:00:00Z",
            "written": {"spans": 15},
            "rejected": 0,
        }
        ledger.write_text(json.dumps(old) + "\n")
        report = Importer(store, progress=False, durable=False).import_file(source)
        assert report.skipped and "2026-01-01" in report.skipped and _count(store, "spans") == 0
        source.write_bytes(jsonl([good["spans"]]).replace(b"}\n", b"} \n"))  # one more byte: new content
        old["size"] = source.stat().st_size  # same size as the entry, other content: imported
        ledger.write_text(json.dumps(old) + "\n")
        report = Importer(store, progress=False, durable=False).import_file(source)
        assert report.written == {"spans": 15}
        [_, entry] = [json.loads(line) for line in ledger.read_text().splitlines()]
        assert len(entry["xxh3_128"]) == 32 and entry["size"] == source.stat().st_size

    def test_overlapping_files_keep_one_copy_of_each_span(self, tmp_path: Path, good: dict) -> None:
        """A file that grew (the Collector appends) imports only its new spans."""
        more = to_otlp_json(otlp_spans(sdk_spans(n_traces=2, service="other")))
        (tmp_path / "a.jsonl").write_bytes(jsonl([good["spans"]]))
        (tmp_path / "b.jsonl").write_bytes(jsonl([good["spans"], more]))
        store = tmp_path / "store"
        reports = Importer(store, progress=False, durable=False).import_paths(
            [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
        )
        assert [r.written.get("spans", 0) for r in reports] == [15, 10]
        assert reports[1].duplicates == 15
        assert _count(store, "spans") == 25


def test_when_duckdb_fails_mid_file_the_rest_goes_through_the_block_path(
    tmp_path: Path, good: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DuckDB error while streaming a file hands the lines not yet taken to the block path, numbered."""
    import ingest.sources.importer.importer as importer_module

    def strict(path: Path) -> str:  # no ignore_errors: the malformed line raises inside DuckDB
        return f"read_json_objects('{path}', format='newline_delimited')"

    monkeypatch.setattr(importer_module, "_json_source", strict)
    lines = [json.dumps(_retraced(good["spans"], k)) for k in range(6)]
    lines.insert(4, "{broken")
    source = tmp_path / "strict.jsonl"
    source.write_text("\n".join(lines) + "\n")
    store = tmp_path / "store"
    [report] = Importer(store, progress=False, durable=False).import_paths([source])
    assert report.written == {"spans": 90} and report.duplicates == 0
    [record] = _rejected(store)
    assert record["line"] == 5 and "not valid JSON" in record["reason"]
    assert _count(store, "spans") == 90


@pytest.mark.parametrize("weak_hash", [False, True])
def test_span_index_matches_a_set_of_the_exact_keys(monkeypatch: pytest.MonkeyPatch, weak_hash: bool) -> None:
    """The vectorised dedupe index says exactly what a Python set of the keys says, hash collisions included."""
    import numpy as np

    import ingest.sources.importer.dedupe as importer_module

    if weak_hash:  # two bits of hash: nearly every lookup meets other keys of the same hash
        monkeypatch.setattr(importer_module, "_key_hash", lambda keys: keys[:, 0] & np.uint64(3))
    rng = np.random.default_rng(7)
    for trial in range(20):
        pool = rng.integers(0, 2**63, size=(int(rng.integers(1, 300)), 6), dtype=np.uint64)
        if trial % 2:
            pool[:, 1:] = 5  # keys that differ in one word only
        index = importer_module.SpanIndex(Path("/nonexistent"))
        seen: set[bytes] = set()
        for _ in range(int(rng.integers(1, 10))):
            batch = pool[rng.integers(0, len(pool), size=int(rng.integers(0, 200)))]
            expected = []
            for row in batch:
                expected.append(row.tobytes() not in seen)
                seen.add(row.tobytes())
            assert index.add(batch).tolist() == expected
        assert len(index) == len(seen)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_the_streamed_lines_keep_their_numbers_across_empty_lines(
    tmp_path: Path, good: dict, newline: str
) -> None:
    """Empty lines are not rows; lines the fast path flags reach the exact path with their own numbers."""
    lines = [
        json.dumps(_retraced(good["spans"], 1)),  # 1
        "",  # 2
        json.dumps({"hello": "world"}),  # 3: JSON, not OTLP
        "",  # 4
        "",  # 5
        json.dumps(_retraced(good["spans"], 2)),  # 6
        "[1, 2, 3]",  # 7
        json.dumps(good["logs"]),  # 8
    ]
    source = tmp_path / "numbered.jsonl"
    source.write_bytes((newline.join(lines) + newline).encode())
    store = tmp_path / "store"
    [report] = Importer(store, progress=False, durable=False).import_paths([source])
    assert report.written == {"spans": 30, "logs": 5}
    assert sorted(record["line"] for record in _rejected(store)) == [3, 7]


@pytest.mark.parametrize(
    "odd",
    [
        b'{"resourceSpans":\r"nope"}',
        b'{"hello":"x\x01y"}',
        b"   ",
        b"\x0c",
        b'{"a": 1} {"b": 2}',
        b"\xff\xfe not utf-8",
    ],
    ids=["carriage-return", "control-byte", "spaces", "form-feed", "two-objects", "bad-utf8"],
)
def test_a_line_a_reader_could_split_or_skip_otherwise_keeps_the_numbering(
    tmp_path: Path, good: dict, odd: bytes
) -> None:
    """A carriage return, control byte, whitespace, two objects or bad UTF-8 on a line: the others all land."""
    lines = [json.dumps(_retraced(good["spans"], k)).encode() for k in range(4)]
    lines.insert(2, odd)
    source = tmp_path / "odd.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    store = tmp_path / "store"
    [report] = Importer(store, progress=False, durable=False).import_paths([source])
    assert report.written == {"spans": 60} and report.duplicates == 0
    blank = not odd.strip()
    assert [record["line"] for record in _rejected(store)] == ([] if blank else [3])
