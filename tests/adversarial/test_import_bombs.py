"""Importer bombs: input that inflates, nests, or claims more than it holds is refused with bounded memory
and disk, named by file and line or byte, and nothing valid around it is lost."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import http.client
import json
import os
import random
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import zstandard

from ingest.errors import ConfigurationError
from ingest.sources.importer import DEFAULT_MAX_OBJECT_BYTES, Importer
from ingest.sources.otlp import request_from_json
from ingest.sources.otlp_json import reader as otlp_json
from ingest.sources.receiver import Receiver
from ingest.store import rejects
from ingest.store.rejects import DEFAULT_SAMPLE_BYTES, RejectWriter, read_rejected
from tests.otlp_samples import length_prefixed, otlp_logs, otlp_spans, sdk_logs, sdk_spans, to_otlp_json

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def good() -> dict:
    """Valid OTLP JSON from the SDK: traces (15 spans) and logs (5 records)."""
    return {"spans": to_otlp_json(otlp_spans(sdk_spans())), "logs": to_otlp_json(otlp_logs(sdk_logs()))}


def _line(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _retraced(request: dict, k: int) -> dict:
    """A copy of a traces request whose spans belong to other traces (so no line duplicates another)."""
    out = copy.deepcopy(request)
    for resource in out["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                span["traceId"] = f"{k:04x}" + span["traceId"][4:]
    return out


def _compressed(kind: str, pieces: Iterable[bytes]) -> bytes:
    """``pieces`` gzip- or zstd-compressed as a stream (a bomb never exists whole in the test's memory)."""
    if kind == "gzip":
        gz = zlib.compressobj(6, zlib.DEFLATED, 31)
        return b"".join([*(gz.compress(p) for p in pieces), gz.flush()])
    zs = zstandard.ZstdCompressor(level=3).compressobj()
    return b"".join([*(zs.compress(p) for p in pieces), zs.flush()])


def _repeat(byte: bytes, n: int) -> Iterator[bytes]:
    chunk = byte * MiB
    for start in range(0, n, MiB):
        yield chunk[: min(MiB, n - start)]


def _sha256(pieces: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece)
    return digest.hexdigest()


def _rejected(store: Path) -> list[dict]:
    return [r for path in sorted((store / "_rejected").glob("*.jsonl")) for r in read_rejected(path)]


def _rejected_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / "_rejected").glob("*"))


def _count(store: Path, table: str) -> int:
    folder = store / table
    return ds.dataset(folder, format="parquet").count_rows() if folder.exists() else 0


def _import_cli(
    tmp_path: Path, store: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str, int]:
    """``python -m ingest import`` in its own process: exit code, stdout, stderr and peak resident bytes."""
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest", "import", "--no-progress", "--store", str(store), *args],
            stdout=stdout,
            stderr=stderr,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )
        _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this one child: its own peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out.read_text(), err.read_text(), usage.ru_maxrss * 1024


@pytest.fixture(params=["compiled", "duckdb"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The compiled JSON Lines reader, then DuckDB's (what runs when nothing is compiled)."""
    if request.param == "compiled" and not otlp_json.compiled_reader():
        pytest.skip("ingest.sources._jsonarrow is not compiled")
    if request.param == "duckdb":
        monkeypatch.setattr(otlp_json, "_jsonarrow", None)
    return request.param


# Peak RSS the import process may reach on a bomb: the interpreter with pyarrow and DuckDB (~140 MB
# here), a few times the 64 MiB object limit, and room to spare. Before the limit the bombs below
# took 2-7 GB or ended in MemoryError.
RSS_BOUND = 640 * MiB


# --------------------------------------------------------------------------- compression bombs


class TestCompressionBombs:
    @pytest.mark.parametrize("compression", ["gzip", "zstd"])
    def test_a_compressed_run_of_zeros_is_refused_with_a_bounded_record_and_memory(
        self, tmp_path: Path, good: dict, compression: str
    ) -> None:
        """512 MiB of NULs in a ~0.5 MB (gzip) or ~16 KB (zstd) file: one small record, bounded memory, the next file lands."""
        size = 512 * MiB
        bomb = tmp_path / f"zeros.{compression}"
        bomb.write_bytes(_compressed(compression, _repeat(b"\0", size)))
        assert bomb.stat().st_size < MiB
        after = tmp_path / "after.jsonl"
        after.write_bytes(_line(good["spans"]) + b"\n")
        store = tmp_path / "store"
        code, out, err, rss = _import_cli(tmp_path, store, str(bomb), str(after))
        assert code == 1, (out, err)
        assert f"{bomb} (byte 0): the file (one protobuf message) is {size:,} bytes, more than the" in err
        assert "--max-object-mb" in err
        assert "wrote 15 spans" in out and _count(store, "spans") == 15
        [record] = _rejected(store)
        assert record["size"] == size and record["truncated"] is True
        assert record["sha256"] == _sha256(_repeat(b"\0", size))
        assert (
            base64.b64decode(record["data_base64"]) == b"\0" * DEFAULT_SAMPLE_BYTES
        )  # NULs: base64, not \u0000 x 6
        assert _rejected_bytes(store) < 128 << 10
        assert rss < RSS_BOUND, f"peak RSS {rss / MiB:.0f} MiB"

    def test_a_json_document_that_inflates_past_the_limit_is_refused(self, tmp_path: Path) -> None:
        """A gzip'd JSON document (first line not a whole object) of 200 MiB: refused whole with size and digest."""
        pieces = [b'{"data": [\n', *_repeat(b" ", 200 * MiB), b"]}\n"]
        source = tmp_path / "jaeger.json.gz"
        source.write_bytes(_compressed("gzip", pieces))
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.format == "json+gzip" and report.rejected == 1 and report.written == {}
        [record] = _rejected(store)
        assert record["size"] == sum(map(len, pieces)) and record["sha256"] == _sha256(pieces)
        assert "the document is" in record["reason"] and record["truncated"] is True
        assert len(record["data"]) == DEFAULT_SAMPLE_BYTES and record["data"].startswith('{"data": [')


# --------------------------------------------------------------------------- long lines


def _padded_line(request: dict, length: int) -> bytes:
    """A valid OTLP traces line of exactly ``length`` bytes (a padding attribute on its first span)."""
    padded = copy.deepcopy(request)
    attributes = padded["resourceSpans"][0]["scopeSpans"][0]["spans"][0].setdefault("attributes", [])
    attributes.append({"key": "pad", "value": {"stringValue": ""}})
    base = len(_line(padded))
    attributes[-1]["value"]["stringValue"] = "x" * (length - base)
    line = _line(padded)
    assert len(line) == length
    return line


class TestLongLines:
    @pytest.mark.parametrize("compression", ["plain", "gzip", "zstd"])
    def test_a_line_over_the_limit_is_rejected_by_number_and_one_at_the_limit_lands(
        self, tmp_path: Path, good: dict, reader: str, compression: str
    ) -> None:
        """With a 1 MiB limit: lines of exactly 1 MiB land, 1 MiB + 1 and 5 MiB are rejected by number, neighbours land."""
        limit = MiB
        lines = [
            _line(_retraced(good["spans"], 1)),  # 1
            _padded_line(_retraced(good["spans"], 2), limit),  # 2: exactly the limit
            _padded_line(_retraced(good["spans"], 3), limit + 1),  # 3: one byte over
            _line(good["logs"]),  # 4
            _padded_line(_retraced(good["spans"], 5), 5 * limit),  # 5: far over (a valid line all the same)
            b"",  # 6: blank
            _padded_line(_retraced(good["spans"], 7), limit - 1),  # 7
        ]
        data = b"\n".join(lines) + b"\n"
        source = tmp_path / f"in.jsonl{'' if compression == 'plain' else '.' + compression}"
        source.write_bytes(data if compression == "plain" else _compressed(compression, [data]))
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False, max_object_bytes=limit).import_paths(
            [source]
        )
        assert report.written == {"spans": 45, "logs": 5}, report.problems
        records = {r["line"]: r for r in _rejected(store)}
        assert sorted(records) == [3, 5]
        for number in (3, 5):
            original = lines[number - 1]
            record = records[number]
            assert (
                f"line {number} is {len(original):,} bytes, more than the {limit:,}-byte limit"
                in record["reason"]
            )
            assert (
                record["size"] == len(original) and record["sha256"] == hashlib.sha256(original).hexdigest()
            )
            assert record["truncated"] is True and record["data"] == original[:DEFAULT_SAMPLE_BYTES].decode()
        assert any(problem.startswith(f"{source}:3: line 3 is") for problem in report.problems), (
            report.problems
        )

    @pytest.mark.parametrize("compression", ["plain", "gzip", "zstd"])
    def test_a_huge_line_keeps_memory_bounded_and_the_rest_of_the_file_lands(
        self, tmp_path: Path, good: dict, compression: str
    ) -> None:
        """A 600 MiB line of ``[`` (300 MiB when plain) between good lines, at the default limit: bounded RSS, both neighbours land."""
        size = (300 if compression == "plain" else 600) * MiB
        pieces = [
            _line(_retraced(good["spans"], 1)) + b"\n",
            *_repeat(b"[", size),
            b"\n",
            _line(good["logs"]) + b"\n",
        ]
        source = tmp_path / f"bomb.jsonl{'' if compression == 'plain' else '.' + compression}"
        with open(source, "wb") as sink:
            if compression == "plain":
                for piece in pieces:
                    sink.write(piece)
            else:
                sink.write(_compressed(compression, pieces))
        store = tmp_path / "store"
        code, out, err, rss = _import_cli(tmp_path, store, str(source))
        assert code == 1, (out, err)
        assert "wrote 15 spans, 5 logs" in out, out
        assert (
            f"{source}:2: line 2 is {size:,} bytes, more than the {DEFAULT_MAX_OBJECT_BYTES:,}-byte limit"
            in err
        )
        [record] = _rejected(store)
        assert (
            record["line"] == 2
            and record["size"] == size
            and record["sha256"] == _sha256(_repeat(b"[", size))
        )
        assert _rejected_bytes(store) < 128 << 10
        assert rss < RSS_BOUND, f"peak RSS {rss / MiB:.0f} MiB"

    def test_a_whitespace_line_over_the_limit_is_blank_not_rejected(
        self, tmp_path: Path, good: dict, reader: str
    ) -> None:
        """Blank lines are skipped whatever their length; the line numbers after them stay right."""
        data = (
            _line(good["spans"]) + b"\n" + b" \t" * MiB + b"\n" + b"not json\n" + _line(good["logs"]) + b"\n"
        )
        source = tmp_path / "spaces.jsonl.gz"
        source.write_bytes(gzip.compress(data))
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False, max_object_bytes=MiB).import_paths([source])
        assert report.written == {"spans": 15, "logs": 5}
        assert [r["line"] for r in _rejected(store)] == [3]

    def test_the_limit_is_an_option_of_the_command_and_is_checked(self, tmp_path: Path, good: dict) -> None:
        """``--max-object-mb`` raises the limit; a limit below one byte is a clear error, not a crash."""
        source = tmp_path / "big.jsonl"
        source.write_bytes(_padded_line(good["spans"], 3 * MiB) + b"\n")
        store = tmp_path / "store"
        code, out, err, _ = _import_cli(tmp_path, store, "--max-object-mb", "2", str(source))
        assert code == 1 and "more than the 2,097,152-byte limit" in err
        code, out, err, _ = _import_cli(tmp_path, store, "--force", "--max-object-mb", "4", str(source))
        assert code == 0 and "wrote 15 spans" in out, err
        with pytest.raises(ConfigurationError, match="max_object_bytes must be at least 1 byte, not 0"):
            Importer(store, max_object_bytes=0)


# --------------------------------------------------------------------------- protobuf


class TestProtobuf:
    def test_an_oversized_message_is_read_past_and_the_messages_around_it_land(
        self, tmp_path: Path, good: dict
    ) -> None:
        """A 100 MiB message between two good ones (gzip'd, ~100 KB): rejected at its offset, never held whole."""
        first = length_prefixed([request_from_json(good["spans"])[1]])
        last = length_prefixed([request_from_json(good["logs"])[1]])
        size = 100 * MiB
        pieces = [first, struct.pack(">I", size), *_repeat(b"\0", size), last]
        source = tmp_path / "collector.pb.gz"
        source.write_bytes(_compressed("gzip", pieces))
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.format == "protobuf+gzip (length-prefixed)"
        assert report.written == {"spans": 15, "logs": 5}
        [record] = _rejected(store)
        assert record["offset"] == len(first) and record["size"] == size
        assert f"message 2 at byte {len(first)} is {size:,} bytes, more than the" in record["reason"]
        assert record["sha256"] == _sha256(_repeat(b"\0", size))
        assert _rejected_bytes(store) < 128 << 10

    def test_a_length_that_claims_more_than_the_file_holds_is_reported_without_allocating_it(
        self, tmp_path: Path, good: dict
    ) -> None:
        """A last length prefix of 4 GiB - 1 on a small file: the good message lands, the claim is named as truncation."""
        first = length_prefixed([request_from_json(good["spans"])[1]])
        source = tmp_path / "claims.pb"
        source.write_bytes(first + struct.pack(">I", 0xFFFFFFFF) + b"short")
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.written == {"spans": 15}
        [record] = _rejected(store)
        assert (
            record["offset"] == len(first) and "claims 4294967295 bytes but only 5 remain" in record["reason"]
        )

    def test_a_bare_message_within_the_limit_is_still_one_message(self, tmp_path: Path, good: dict) -> None:
        """A file holding one unframed request (its first bytes read as a huge length) imports as before."""
        source = tmp_path / "one.pb"
        source.write_bytes(request_from_json(good["spans"])[1].SerializeToString())
        [report] = Importer(tmp_path / "store", progress=False, durable=False).import_paths([source])
        assert report.format == "protobuf (one message)" and report.written == {"spans": 15}


# --------------------------------------------------------------------------- nesting


class TestDeepNesting:
    @pytest.mark.parametrize("compression", ["plain", "gzip"])
    @pytest.mark.parametrize(
        "bomb",
        [b"[" * 100_000, b'{"a":' * 100_000, b'{"resourceSpans":[' + b"[" * 100_000],
        ids=["arrays", "objects", "inside-otlp"],
    )
    def test_deeply_nested_json_is_rejected_not_a_crash(
        self, tmp_path: Path, good: dict, reader: str, compression: str, bomb: bytes
    ) -> None:
        """100,000 levels of nesting on one line (100 KB): that line is rejected, the import goes on."""
        data = _line(_retraced(good["spans"], 1)) + b"\n" + bomb + b"\n" + _line(good["logs"]) + b"\n"
        source = tmp_path / ("nested.jsonl" + (".gz" if compression == "gzip" else ""))
        source.write_bytes(gzip.compress(data) if compression == "gzip" else data)
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.written == {"spans": 15, "logs": 5}
        [record] = _rejected(store)
        assert record["line"] == 2 and (
            "nested too deeply" in record["reason"] or "not valid JSON" in record["reason"]
        )

    @pytest.mark.skipif(not otlp_json.compiled_reader(), reason="ingest.sources._jsonarrow is not compiled")
    def test_a_valid_line_with_a_deeply_nested_attribute_value_is_rejected_by_number(
        self, tmp_path: Path, good: dict
    ) -> None:
        """An AnyValue array nested 300 deep (900 JSON levels: within json.loads, past protobuf's 100): rejected, not a crash.

        The compiled reader sends it to the exact path; DuckDB's reader keeps such a value as JSON text.
        """
        deep = copy.deepcopy(good["spans"])
        value: dict = {"stringValue": "bottom"}
        for _ in range(300):
            value = {"arrayValue": {"values": [value]}}
        deep["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(
            {"key": "deep", "value": value}
        )
        source = tmp_path / "deep.jsonl"
        source.write_bytes(_line(_retraced(good["spans"], 1)) + b"\n" + _line(deep) + b"\n")
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.written == {"spans": 15} and report.rejected == 1
        [record] = _rejected(store)
        assert record["line"] == 2 and "too deep" in record["reason"]

    def test_a_protobuf_message_nested_past_the_parser_s_depth_is_rejected_by_offset(
        self, tmp_path: Path, good: dict
    ) -> None:
        """A span attribute of 300 nested arrays in binary protobuf (past upb's 100 levels): rejected, the rest lands."""

        def field(number: int, payload: bytes) -> bytes:  # one length-delimited protobuf field
            size, varint = len(payload), b""
            while size >= 0x80:
                varint += bytes([size & 0x7F | 0x80])
                size >>= 7
            return bytes([number << 3 | 2]) + varint + bytes([size]) + payload

        value = field(1, b"bottom")  # AnyValue.string_value
        for _ in range(300):
            value = field(5, field(1, value))  # AnyValue.array_value.values[0]
        span = (
            field(1, b"\x01" * 16)
            + field(2, b"\x02" * 8)
            + field(5, b"op")
            + b"\x39"
            + struct.pack("<Q", 10**18)
            + b"\x41"
            + struct.pack("<Q", 10**18 + 5)  # start, end (fixed64)
            + field(9, field(1, b"deep") + field(2, value))  # attributes
        )
        deep = field(1, field(2, field(2, span)))  # resource_spans.scope_spans.spans
        first = length_prefixed([request_from_json(good["spans"])[1]])
        source = tmp_path / "deep.pb"
        source.write_bytes(
            first
            + struct.pack(">I", len(deep))
            + deep
            + length_prefixed([request_from_json(good["logs"])[1]])
        )
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.written == {"spans": 15, "logs": 5}
        [record] = _rejected(store)
        assert record["offset"] == len(first) and record["size"] == len(deep)

    def test_a_deeply_nested_json_document_is_rejected_not_a_crash(self, tmp_path: Path) -> None:
        """A whole-file JSON document nested 100,000 deep."""
        source = tmp_path / "nested.json"
        source.write_bytes(b'{"data": \n' + b"[" * 100_000)
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.rejected == 1 and "nested too deeply" in _rejected(store)[0]["reason"]


# --------------------------------------------------------------------------- damaged compression


def _noisy(request: dict, seed: int) -> dict:
    """``request`` with 4 KB of random text on its first span, so that a compressed file is as long as its content."""
    attributes = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
    attributes.append({"key": "noise", "value": {"stringValue": random.Random(seed).randbytes(2048).hex()}})
    return request


class TestDamagedZstd:
    def test_a_corrupt_zstd_jsonl_file_keeps_the_whole_lines_before_the_damage(
        self, tmp_path: Path, good: dict
    ) -> None:
        """zstd's own error type is not OSError: a corrupt frame must be reported like a damaged gzip, not crash."""
        lines = [_line(_noisy(_retraced(good["spans"], k), k)) for k in range(200)]
        data = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(b"\n".join(lines) + b"\n")
        source = tmp_path / "damaged.jsonl.zst"
        source.write_bytes(
            data[: len(data) * 3 // 4] + bytes(len(data) // 4)
        )  # zeros: "Data corruption detected"
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        [record] = _rejected(store)
        assert "damaged" in record["reason"] and "zstd" in record["reason"]
        assert report.written.get("spans", 0) == 15 * (record["line"] - 1)

    def test_a_corrupt_zstd_protobuf_file_keeps_the_messages_before_the_damage(
        self, tmp_path: Path, good: dict
    ) -> None:
        """Messages before the damage land; the rest is reported with the offset where reading stopped."""
        messages = [request_from_json(_noisy(_retraced(good["spans"], k), k))[1] for k in range(300)]
        data = zstandard.ZstdCompressor(level=1).compress(length_prefixed(messages))
        source = tmp_path / "damaged.pb.zst"
        source.write_bytes(data[: len(data) * 3 // 4] + bytes(len(data) // 4))
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        [record] = _rejected(store)
        assert "damaged" in record["reason"] and "zstd" in record["reason"]
        assert record["offset"] > 0 and report.written["spans"] > 0
        assert report.written["spans"] == 15 * sum(
            1 for _ in _framed_offsets(length_prefixed(messages), record["offset"])
        )

    def test_a_multi_frame_zstd_file_is_read_to_its_last_frame(self, tmp_path: Path, good: dict) -> None:
        """``zstd -T``/pzstd and concatenated .zst files hold several frames: every one is imported."""
        compressor = zstandard.ZstdCompressor()
        frames = b"".join(compressor.compress(_line(_retraced(good["spans"], k)) + b"\n") for k in range(5))
        source = tmp_path / "frames.jsonl.zst"
        source.write_bytes(frames)
        [report] = Importer(tmp_path / "store", progress=False, durable=False).import_paths([source])
        assert report.written == {"spans": 75} and report.rejected == 0


def _framed_offsets(data: bytes, stop: int) -> Iterator[int]:
    """Offsets of the length-prefixed messages that start before ``stop``."""
    offset = 0
    while offset < stop:
        yield offset
        offset += 4 + struct.unpack_from(">I", data, offset)[0]


# --------------------------------------------------------------------------- the _rejected/ folder


class TestRejectedFolder:
    def test_a_rejected_item_is_kept_as_a_sample_with_its_size_and_digest(self, tmp_path: Path) -> None:
        """20 MB of NULs becomes a ~90 KB record; UTF-8 text stays text, cut at a whole character."""
        writer = RejectWriter(tmp_path, "receiver")
        nuls = b"\0" * (20 << 20)
        writer.reject("HTTP 400: not protobuf", nuls, signal="traces")
        text = ("é" * 40_000).encode()  # 80,000 bytes of two-byte characters
        writer.reject("not valid JSON", text, line=7)
        writer.reject("fine", b'{"short": true}', line=8)
        writer.reject("HTTP 413: too big", None)
        writer.close()
        zeros, accents, short, nothing = read_rejected(writer.path)
        assert zeros["size"] == 20 << 20 and zeros["sha256"] == hashlib.sha256(nuls).hexdigest()
        assert (
            zeros["truncated"] is True
            and base64.b64decode(zeros["data_base64"]) == b"\0" * DEFAULT_SAMPLE_BYTES
        )
        assert accents["data"] == "é" * (DEFAULT_SAMPLE_BYTES // 2) and accents["truncated"] is True
        assert short == {**short, "data": '{"short": true}', "truncated": False, "size": 15}
        assert nothing["data"] is None and nothing["size"] is None
        assert writer.path.stat().st_size < 200 << 10

    def test_past_the_cap_records_keep_reason_size_and_digest_without_a_sample(
        self, tmp_path: Path, good: dict
    ) -> None:
        """With ``$LANGSWARM_REJECTED_MAX_MB`` at 0.25: every bad line is still recorded and counted, samples stop."""
        bad = [b'{"resourceSpans": "%05d' % i + b"x" * 20_000 + b'"}' for i in range(60)]
        source = tmp_path / "bad.jsonl"
        source.write_bytes(_line(good["spans"]) + b"\n" + b"\n".join(bad) + b"\n")
        store = tmp_path / "store"
        code, out, _, _ = _import_cli(tmp_path, store, str(source), env={"LANGSWARM_REJECTED_MAX_MB": "0.25"})
        assert code == 1 and "wrote 15 spans" in out and "60 rejected" in out
        records = _rejected(store)
        assert [r["line"] for r in records] == list(range(2, 62))
        kept = [r for r in records if "data" in r]
        dropped = [r for r in records if r.get("sample_dropped")]
        assert len(kept) + len(dropped) == 60 and 5 <= len(kept) <= 13 and dropped
        for record in dropped:
            original = bad[record["line"] - 2]
            assert (
                record["size"] == len(original) and record["sha256"] == hashlib.sha256(original).hexdigest()
            )
            assert record["truncated"] is True and "data_base64" not in record and record["reason"]
        assert (
            f"{len(dropped)} kept without a sample: _rejected/ is over its cap, $LANGSWARM_REJECTED_MAX_MB"
            in out
        )
        assert _rejected_bytes(store) <= (256 << 10) + 60 * 1024

    def test_the_cap_counts_what_other_writers_left_in_the_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A folder already over the cap keeps no more samples; freeing it by hand lets samples back in."""
        monkeypatch.setattr(rejects, "REMEASURE_FULL_S", 0.0)  # measure again at once, not after a second
        old = tmp_path / "_rejected" / "old.jsonl"
        old.parent.mkdir()
        old.write_bytes(b"x" * (2 << 20))
        writer = RejectWriter(tmp_path, "first", cap_bytes=1 << 20)
        writer.reject("bad", b"some line", line=1)
        assert read_rejected(writer.path)[0]["sample_dropped"] is True and writer.samples_dropped == 1
        old.unlink()
        later = RejectWriter(
            tmp_path / ".", "second", cap_bytes=1 << 20
        )  # same folder: the process's measure is shared
        later.reject("bad", b"another line", line=2)
        assert read_rejected(later.path)[0]["data"] == "another line"

    def test_a_reason_quoting_a_huge_bad_value_is_cut(self, tmp_path: Path, good: dict) -> None:
        """A 5 MB trace id is quoted in the reason: the reason (and the message printed) is cut, the record stays small."""
        bad = copy.deepcopy(good["spans"])
        bad["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "z" * 5_000_000
        source = tmp_path / "bad-id.jsonl"
        source.write_bytes(_line(bad) + b"\n" + _line(good["logs"]) + b"\n")
        store = tmp_path / "store"
        [report] = Importer(store, progress=False, durable=False).import_paths([source])
        assert report.written == {"logs": 5}
        [record] = _rejected(store)
        assert record["reason"].startswith("resourceSpans[0].scopeSpans[0].spans[0].traceId 'zzz")
        assert "5,000,000 characters" in record["reason"] and len(record["reason"]) < 2100  # the quote is cut
        assert len(report.problems[0]) < 2500 and _rejected_bytes(store) < 128 << 10

    def test_a_bad_setting_is_a_clear_error(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """``$LANGSWARM_REJECTED_SAMPLE_KB=lots``: the variable, the value and what is allowed."""
        monkeypatch.setenv("LANGSWARM_REJECTED_SAMPLE_KB", "lots")
        with pytest.raises(
            ConfigurationError, match=r"\$LANGSWARM_REJECTED_SAMPLE_KB='lots' is not a size.*KiB"
        ):
            RejectWriter(tmp_path, "x")
        monkeypatch.setenv("LANGSWARM_REJECTED_SAMPLE_KB", "1")
        writer = RejectWriter(tmp_path, "x")
        writer.reject("r", b"y" * 5000)
        writer.close()
        assert len(read_rejected(writer.path)[0]["data"]) == 1024

    def test_the_receiver_keeps_a_small_record_of_a_gzip_of_zeros(self, tmp_path: Path) -> None:
        """The 20 KB gzip that inflated to 20 MB and was kept whole (126 MB with escaped NULs) now leaves a small record."""
        receiver = Receiver(str(tmp_path / "store"), port=0, durable=False)
        receiver.start()
        try:
            body = gzip.compress(b"\0" * ((20 << 20) - 1024))  # inflates to just under the 20 MiB body limit
            host, port = receiver.address
            connection = http.client.HTTPConnection(host, port, timeout=60)
            connection.request(
                "POST",
                "/v1/traces",
                body=body,
                headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
            )
            status = connection.getresponse().status
            connection.close()
        finally:
            receiver.stop()
        assert status == 400
        [record] = _rejected(tmp_path / "store")
        assert record["reason"].startswith("HTTP 400") and record["truncated"] is True
        assert _rejected_bytes(tmp_path / "store") < 128 << 10
