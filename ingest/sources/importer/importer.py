"""The importer: one file at a time, format by content, each line, object or message decoded, deduplicated
and written, rejects kept (see the package docstring)."""

from __future__ import annotations

import collections
import json
import os
import queue
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ingest.errors import ConfigurationError, ImportFileError
from ingest.sources import jaeger
from ingest.sources.importer.dedupe import SpanIndex
from ingest.sources.importer.ledger import Ledger
from ingest.sources.importer.progress import Progress
from ingest.sources.importer.reading import (
    _BOM,
    _CHUNK_BYTES,
    _NOT_BLANK,
    _Block,
    _CountingReader,
    _cut_short,
    _decompressed,
    _drain,
    _drain_into,
    _expand,
    _json_source,
    _line_chunks,
    _LineCursor,
    _loads,
    _LongLine,
    _read_upto,
    _scratch_dir,
    _signal_of,
    _TooDeep,
    sniff,
)
from ingest.sources.importer.report import (
    _TABLE_OF_SIGNAL,
    BLOCK_BYTES,
    DEFAULT_MAX_OBJECT_BYTES,
    FLUSH_ROWS,
    FileReport,
)
from ingest.sources.importer.sink import _Sink
from ingest.sources.otlp import (
    DECODERS,
    ITEM_NAME,
    InputError,
    count_items,
    decode_json_object,
    detect_protobuf_signal,
    parse_protobuf,
)
from ingest.sources.otlp_json import (
    BlockResult,
    compiled_reader,
    decode_block,
    decode_transformed,
    transform_block,
    transform_lines,
    transform_sql,
)
from ingest.store import objectstore
from ingest.store.rejects import RejectWriter
from ingest.store.writer import StoreWriter, resolve_store


class Importer:
    """Imports files into one store; see the module docstring for formats and the dedupe policy."""

    def __init__(
        self,
        store: str | os.PathLike[str] | None = None,
        *,
        force: bool = False,
        progress: bool | None = None,
        block_bytes: int = BLOCK_BYTES,
        flush_rows: int = FLUSH_ROWS,
        durable: bool = True,
        log: IO[str] | None = None,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
    ) -> None:
        if max_object_bytes < 1:
            msg = f"max_object_bytes must be at least 1 byte, not {max_object_bytes} (--max-object-mb)"
            raise ConfigurationError(msg)
        self.root = resolve_store(store)
        self.force = force
        self.max_object_bytes = max_object_bytes
        self.block_bytes = block_bytes
        self.flush_rows = flush_rows
        self.writer = StoreWriter(self.root, durable=durable)
        self.index = SpanIndex(self.root, self.writer.fs)
        # An s3:// store keeps its ledger and rejected input in a local control folder (objectstore.py).
        self.control = objectstore.local_control(self.root)
        self.ledger = Ledger(self.control)
        self.log = log or sys.stderr
        enabled = progress if progress is not None else self.log.isatty()
        self.progress = Progress(enabled, self.log)

    # ---------------------------------------------------------------- entry points

    def import_paths(self, paths: Sequence[str | os.PathLike[str]]) -> list[FileReport]:
        """Import every file (directories: every file inside, sorted), one report each."""
        reports = []
        for path in _expand(paths):
            reports.append(self.import_file(path))
        return reports

    def import_file(self, path: str | os.PathLike[str]) -> FileReport:
        """Import one file; raises :class:`ImportFileError` only when the file cannot be read at all."""
        path = Path(path)
        report = FileReport(str(path))
        if not path.is_file():
            msg = f"{path}: no such file"
            raise ImportFileError(msg)
        if not self.force:
            entry = self.ledger.find(path)
            if entry is not None:
                report.skipped = (
                    f"this content was imported into {self.root} at {entry.get('imported_at')} "
                    f"from {entry.get('path')}; use --force to import it again (spans are deduplicated)"
                )
                return report
        started = time.monotonic()
        sniffed = sniff(path)
        report.format = sniffed.kind + (f"+{sniffed.compression}" if sniffed.compression else "")
        rejects = RejectWriter(self.control, str(path))
        sink = _Sink(self.writer, self.index, self.flush_rows)
        counting = _CountingReader(path)
        try:
            with _decompressed(counting, sniffed.compression) as stream:
                if sniffed.kind == "jsonl" and sniffed.compression is None:
                    self._jsonl_stream(path, counting, sink, rejects, started)
                elif sniffed.kind == "jsonl":
                    self._jsonl(path, stream, counting, sink, rejects, started)
                elif sniffed.kind == "json":
                    self._document(path, stream, sink, rejects, report)
                elif sniffed.kind == "protobuf":
                    self._protobuf(path, stream, counting, sink, rejects, report, started)
                # An empty file holds nothing to import. The ledger's digest covers the whole file:
                try:
                    while stream.read(1 << 20):
                        pass
                except (EOFError, OSError):
                    pass  # damage already reported as a rejection
        except (OSError, EOFError) as exc:
            msg = f"{path}: cannot read: {exc}"
            raise ImportFileError(msg) from None
        finally:
            self.progress.done()
            counting.close()
            sink.close()  # writes everything decoded so far, whatever happened
            rejects.close()
        report.written = sink.written
        report.duplicates = sink.duplicates
        report.rejected = rejects.count
        report.rejected_file = str(rejects.path) if rejects.count else None
        report.samples_dropped = rejects.samples_dropped
        report.problems = list(rejects.messages)
        report.bytes = counting.position
        report.seconds = time.monotonic() - started
        self.ledger.record(path, counting.digest.hexdigest(), report)
        return report

    # ---------------------------------------------------------------- JSON Lines

    def _blocks(
        self,
        stream: IO[bytes],
        counting: _CountingReader,
        scratch: str,
        rejects: RejectWriter,
        start_line: int = 1,
    ) -> Iterator[_Block]:
        """Blocks of whole lines, each also written to ``scratch`` for DuckDB to read.

        A line over the object limit is read past (hashed, its start kept as a sample) and rejected
        here, by number; the lines around it still come in blocks.
        """
        line = start_line
        index = 0
        carry = b""
        ended = False
        limit = self.max_object_bytes
        piece_bytes = min(1 << 20, limit + 1)  # so that no line over the limit fits inside one piece
        # read1: one decompression step a call, so a damaged stream loses nothing decoded before the damage.
        read = getattr(stream, "read1", stream.read)
        while not ended:
            pieces = [carry] if carry else []
            size = len(carry)
            tail = len(carry) - (
                carry.rfind(b"\n") + 1
            )  # bytes of the line being read (carry starts at a line start)
            carry = b""
            too_long = False
            try:
                while True:
                    piece = read(piece_bytes)
                    if not piece:
                        ended = True
                        break
                    size += len(piece)
                    pieces.append(piece)
                    first = piece.find(b"\n")
                    if tail + (len(piece) if first == -1 else first) > limit:
                        # The line being read is over the limit (no line inside a piece can be): stop here.
                        too_long = True
                        break
                    cut = piece.rfind(b"\n") + 1
                    tail = tail + len(piece) if cut == 0 else len(piece) - cut
                    if size < self.block_bytes or cut == 0:  # a long line: keep reading until it ends
                        continue
                    pieces[-1] = piece[:cut]
                    carry = piece[cut:]
                    break
            except (EOFError, OSError) as exc:
                # A truncated or corrupt compressed stream: keep every whole line before the damage.
                ended = True
                data = b"".join(pieces)
                cut = data.rfind(b"\n") + 1
                rejects.reject(
                    f"the compressed stream is damaged after {counting.position:,} bytes ({exc}); "
                    "this partial line and anything after it cannot be read",
                    data[cut:],
                    line=line + data.count(b"\n", 0, cut),
                )
                pieces = [data[:cut]]
            data = b"".join(pieces)
            pieces = []
            head = b""
            if too_long:  # the long line starts ``tail`` bytes before the last piece
                start = len(data) - len(piece) - tail
                data, head = data[:start], data[start:]
            if data:
                path = os.path.join(scratch, f"block-{index:06d}.jsonl")
                with open(path, "wb") as handle:
                    handle.write(data)
                yield _Block(data, line, path, counting.position)
                line += data.count(b"\n")
                index += 1
            elif not too_long:
                return
            if too_long:
                carry, ended = self._skip_long_line(read, head, piece_bytes, counting, rejects, line)
                line += 1

    def _skip_long_line(
        self,
        read: Callable[[int], bytes],
        head: bytes,
        piece_bytes: int,
        counting: _CountingReader,
        rejects: RejectWriter,
        line: int,
    ) -> tuple[bytes, bool]:
        """Read past a line over the limit whose bytes so far are ``head`` and reject it (unless blank).

        Returns what follows its line end and whether the stream ended.
        """
        digest = rejects.digest()
        blank = True
        damage = ""
        piece, ended = head, False
        try:
            while True:
                end = piece.find(b"\n")
                part = piece if end == -1 else piece[:end]
                digest.update(part)
                blank = blank and _NOT_BLANK.search(part) is None
                if end != -1:
                    rest = piece[end + 1 :]
                    break
                piece = read(piece_bytes)
                if not piece:
                    rest, ended = b"", True
                    break
        except (EOFError, OSError) as exc:
            rest, ended = b"", True
            damage = f"; the compressed stream is damaged after {counting.position:,} bytes ({exc}), nothing after it can be read"
        if not blank or damage:
            rejects.reject(self._too_big(f"line {line}", digest.size) + damage, digest, line=line)
        return rest, ended

    def _jsonl(
        self,
        path: Path,
        stream: IO[bytes],
        counting: _CountingReader,
        sink: _Sink,
        rejects: RejectWriter,
        started: float,
        start_line: int = 1,
    ) -> None:
        """JSON Lines in blocks (compressed input, or the rest of a file the stream could not finish)."""
        total = path.stat().st_size
        scratch = tempfile.mkdtemp(prefix="ingest-", dir=_scratch_dir())
        blocks: queue.Queue[_Block | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def read_ahead() -> None:
            try:
                for block in self._blocks(stream, counting, scratch, rejects, start_line):
                    while not stop.is_set():
                        try:
                            blocks.put(block, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                blocks.put(None)
            except BaseException as exc:  # handed to the main thread and raised there
                blocks.put(exc)

        reader = threading.Thread(target=read_ahead, name="ingest-reader", daemon=True)
        reader.start()
        con = duckdb.connect()
        # Three stages overlap: DuckDB transforms block k+1 (its own threads) while this thread builds
        # the columns of block k and the sink's thread writes block k-1.
        transformer = ThreadPoolExecutor(1, thread_name_prefix="ingest-duckdb")
        ahead: collections.deque[tuple[_Block, Future[pa.Table]]] = collections.deque()
        rows = 0

        def take(block: _Block, transformed: Future[pa.Table]) -> int:
            result = decode_transformed(transformed.result())
            os.unlink(block.path)
            return self._take_block(block, result, sink, rejects)

        try:
            while True:
                item = blocks.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                ahead.append((item, transformer.submit(transform_block, con, item.path)))
                if len(ahead) > 1:
                    block, transformed = ahead.popleft()
                    rows += take(block, transformed)
                    self.progress.update(path.name, block.position, total, rows, started)
            while ahead:
                block, transformed = ahead.popleft()
                rows += take(block, transformed)
                self.progress.update(path.name, block.position, total, rows, started)
        finally:
            stop.set()
            for _, transformed in ahead:
                transformed.cancel()
            transformer.shutdown(wait=True)
            reader.join()
            con.close()
            shutil.rmtree(scratch, ignore_errors=True)
        self.progress.update(path.name, total, total, rows, started, force=True)

    def _jsonl_stream(
        self, path: Path, counting: _CountingReader, sink: _Sink, rejects: RejectWriter, started: float
    ) -> None:
        """A plain JSON Lines file, read by the compiled reader (or DuckDB) while the columns are built.

        Rows come in file order, one per non-blank line, so a flagged row's line is found by counting
        lines (only when there is one).
        """
        total = path.stat().st_size
        hasher = threading.Thread(target=_drain, args=(counting,), name="ingest-hash", daemon=True)
        hasher.start()
        cursor = _LineCursor(path)
        state = {"rows": 0, "written": 0, "bytes": 0}

        def take(table: pa.Table, size: int) -> None:
            result = decode_transformed(table.select(["j"]))
            for row in sorted(result.flagged):
                state["written"] += self._flagged_line(cursor, state["rows"] + row, sink, rejects)
            for table_name, part in (("spans", result.spans), ("logs", result.logs)):
                if part is not None:
                    sink.add(table_name, part)
                    state["written"] += part.num_rows
            state["rows"] += table.num_rows
            state["bytes"] += size
            self.progress.update(path.name, min(state["bytes"], total), total, state["written"], started)

        def skip(long_line: _LongLine) -> None:
            """A line the chunker read past (over the limit): reject it by number, from the mapped file."""
            state["bytes"] += long_line.length + 1
            if long_line.blank:
                return
            start, end = long_line.start, long_line.start + long_line.length
            line_no = cursor.pass_line(start, end)
            rejects.reject(
                self._too_big(f"line {line_no}", end - start),
                cursor.digest(start, end, rejects),
                line=line_no,
            )
            state["rows"] += 1

        try:
            if compiled_reader():
                self._jsonl_compiled(path, take, skip)
            else:
                self._jsonl_duckdb(path, cursor, take, sink, rejects, started)
        finally:
            cursor.close()
            hasher.join()
        self.progress.update(path.name, total, total, state["written"], started, force=True)

    def _flagged_line(self, cursor: _LineCursor, row: int, sink: _Sink, rejects: RejectWriter) -> int:
        """Take a line the fast path flagged through the exact path, or reject it when over the limit."""
        line_no, start, end = cursor.locate(row)
        if end - start > self.max_object_bytes:
            rejects.reject(
                self._too_big(f"line {line_no}", end - start),
                cursor.digest(start, end, rejects),
                line=line_no,
            )
            return 0
        return self._exact_json(cursor.text(start, end), sink, rejects, line=line_no)

    def _too_big(self, what: str, size: int) -> str:
        return (
            f"{what} is {size:,} bytes, more than the {self.max_object_bytes:,}-byte limit on one JSON line, "
            "JSON document or protobuf message (raise it with --max-object-mb); nothing of it was imported"
        )

    def _jsonl_compiled(
        self, path: Path, take: Callable[[pa.Table, int], None], skip: Callable[[_LongLine], None]
    ) -> None:
        """The compiled reader over chunks of whole lines: chunk k+1 is read (no GIL) while chunk k is taken."""
        # No line over the limit fits in a chunk; at the default limit a longer one is seen in the first fill.
        size = min(_CHUNK_BYTES, self.max_object_bytes) + 1
        with open(path, "rb") as source, ThreadPoolExecutor(1, thread_name_prefix="ingest-json") as pool:
            ahead: collections.deque[tuple[int, Future[pa.Table]] | _LongLine] = collections.deque()

            def settle(item: tuple[int, Future[pa.Table]] | _LongLine) -> None:
                if isinstance(item, _LongLine):
                    skip(item)
                else:
                    take(item[1].result(), item[0])

            for chunk in _line_chunks(source, size, self.max_object_bytes):
                if isinstance(chunk, _LongLine):
                    ahead.append(chunk)
                else:
                    ahead.append((len(chunk), pool.submit(transform_lines, chunk)))
                if len(ahead) > 1:
                    settle(ahead.popleft())
            while ahead:
                settle(ahead.popleft())

    def _jsonl_duckdb(
        self,
        path: Path,
        cursor: _LineCursor,
        take: Callable[[pa.Table, int], None],
        sink: _Sink,
        rejects: RejectWriter,
        started: float,
    ) -> None:
        """One DuckDB query over the file, its result streamed in batches (when nothing is compiled).

        No copy of the file and DuckDB's memory stays warm (a fresh query per block faulted in new pages
        for every result: ~15% more CPU). Should DuckDB fail part-way, the rest of the file (from the
        first row not taken) goes through the block path.
        """
        con = duckdb.connect()
        rows_taken = 0
        try:
            # A row whose JSON is over the object limit comes back empty: flagged, then rejected by its length.
            query = (
                f"SELECT CASE WHEN n > {int(self.max_object_bytes)} THEN NULL ELSE j END AS j, n "
                f"FROM ({transform_sql(_json_source(path), with_length=True)})"
            )
            reader = con.sql(query).to_arrow_reader(65_536)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                table = pa.Table.from_batches([batch])
                take(table, int(pc.sum(table.column("n")).as_py() or 0) + table.num_rows)
                rows_taken += table.num_rows
        except duckdb.Error:
            # Take the rest exactly as compressed input is taken: blocks, every line numbered.
            offset, line_no = cursor.position_of(rows_taken)
            with open(path, "rb") as rest:
                rest.seek(offset)
                rest_counting = _CountingReader(path, start=offset)
                with _decompressed(rest_counting, None) as stream:
                    self._jsonl(path, stream, rest_counting, sink, rejects, started, start_line=line_no)
        finally:
            con.close()

    def _take_block(self, block: _Block, result: BlockResult, sink: _Sink, rejects: RejectWriter) -> int:
        """Hand a decoded block to the sink; flagged lines go through the exact path with their numbers."""
        rows = 0
        if result.flagged:
            lines = block.data.split(b"\n")
            numbered = [(block.first_line + i, text) for i, text in enumerate(lines) if text.strip()]
            if len(numbered) != result.rows:
                # DuckDB split the lines differently (e.g. two objects on one line): take every line exactly.
                return self._exact_lines(numbered, sink, rejects)
            rows += self._exact_lines([numbered[row] for row in sorted(result.flagged)], sink, rejects)
        for table_name, table in (("spans", result.spans), ("logs", result.logs)):
            if table is not None:
                sink.add(table_name, table)
                rows += table.num_rows
        return rows

    def _exact_lines(self, lines: list[tuple[int, bytes]], sink: _Sink, rejects: RejectWriter) -> int:
        rows = 0
        for line_no, text in lines:
            rows += self._exact_json(text, sink, rejects, line=line_no)
        return rows

    def _exact_json(self, text: bytes, sink: _Sink, rejects: RejectWriter, *, line: int | None) -> int:
        """Import one JSON line/object exactly, or reject it whole with the reason; returns rows."""
        try:
            obj = _loads(text)
        except _TooDeep as exc:
            rejects.reject(str(exc), text, line=line)
            return 0
        except ValueError as exc:
            reason = f"not valid JSON: {exc}"
            if isinstance(exc, json.JSONDecodeError) and (
                exc.msg.startswith("Unterminated") or exc.pos >= len(text.rstrip()) - 1
            ):
                reason += " (the JSON ends early: truncated?)"
            rejects.reject(reason, text, line=line)
            return 0
        if jaeger.is_jaeger(obj):
            return self._jaeger(obj, sink, rejects, line=line)
        try:
            decoded = decode_json_object(obj)
        except (InputError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, InputError) else "a value nested too deeply to decode"
            rejects.reject(reason, text, line=line, signal=_signal_of(obj))
            return 0
        if decoded.errors or decoded.rejected:
            reason = f"{decoded.rejected} {ITEM_NAME[decoded.signal]} invalid: " + "; ".join(decoded.errors)
            rejects.reject(
                reason, text, line=line, signal=decoded.signal, items=decoded.rejected + decoded.accepted
            )
            return 0
        sink.add(_TABLE_OF_SIGNAL[decoded.signal], decoded.table)
        return decoded.accepted

    # ---------------------------------------------------------------- one document

    def _whole(self, stream: IO[bytes], rejects: RejectWriter, what: str) -> bytes | None:
        """The whole (decompressed) content when it is within the object limit; else None, rejected.

        Past the limit the rest is read only to hash and count it, so memory stays at the limit.
        """
        try:
            data = _read_upto(stream, self.max_object_bytes + 1)
        except (EOFError, OSError) as exc:
            rejects.reject(f"the file cannot be decompressed ({exc}); nothing of it was imported", None)
            return None
        if len(data) <= self.max_object_bytes:
            return data
        digest = rejects.digest()
        digest.update(data)
        data = b""
        damage = ""
        try:
            _drain_into(stream, None, [digest])
        except (EOFError, OSError) as exc:
            damage = f"; the compressed stream is damaged after {digest.size:,} bytes ({exc})"
        rejects.reject(self._too_big(what, digest.size) + damage, digest, offset=0)
        return None

    def _document(
        self, path: Path, stream: IO[bytes], sink: _Sink, rejects: RejectWriter, report: FileReport
    ) -> None:
        text = self._whole(stream, rejects, "the document")
        if text is None:
            return
        if text.startswith(_BOM):
            text = text[3:]
        try:
            obj = _loads(text)
        except _TooDeep as exc:
            rejects.reject(str(exc), text, line=None)
            return
        except ValueError as exc:
            rejects.reject(f"not valid JSON: {exc}", text, line=getattr(exc, "lineno", None))
            return
        if jaeger.is_jaeger(obj):
            report.format = report.format.replace("json", "jaeger-json", 1)
            self._jaeger(obj, sink, rejects, line=None)
            return
        if not isinstance(obj, dict):
            rejects.reject(
                "expected an OTLP JSON object (resourceSpans, resourceMetrics or resourceLogs) "
                'or Jaeger JSON ({"data": [...]})',
                text,
                line=1,
            )
            return
        # The fast path takes big documents; what it flags goes through the exact path.
        scratch = tempfile.mkdtemp(prefix="ingest-", dir=_scratch_dir())
        try:
            block_path = os.path.join(scratch, "document.json")
            with open(block_path, "wb") as handle:
                handle.write(text)
            con = duckdb.connect()
            try:
                result = decode_block(con, block_path, fmt="unstructured", max_object=len(text) + 1024)
            finally:
                con.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if result.rows != 1 or result.flagged:
            self._exact_json(text, sink, rejects, line=1)
            return
        sink.add("spans", result.spans)
        sink.add("logs", result.logs)

    def _jaeger(self, obj: dict[str, Any], sink: _Sink, rejects: RejectWriter, *, line: int | None) -> int:
        rows: list[dict[str, Any]] = []
        where_line = f"line {line}: " if line else ""
        for i, trace in enumerate(obj["data"]):
            try:
                rows.extend(jaeger.decode_trace(trace, f"data[{i}]"))
            except InputError as exc:
                rejects.reject(f"{where_line}{exc}", json.dumps(trace), line=line, signal="traces")
        if rows:
            sink.add("spans", jaeger.spans_table(rows))
        return len(rows)

    # ---------------------------------------------------------------- protobuf

    def _protobuf(
        self,
        path: Path,
        stream: IO[bytes],
        counting: _CountingReader,
        sink: _Sink,
        rejects: RejectWriter,
        report: FileReport,
        started: float,
    ) -> None:
        """Length-prefixed messages (the Collector's ``proto`` files) read one at a time, or one bare message.

        A 4-byte big-endian length that the rest of the file holds starts the framed format; otherwise
        the file is one message. Messages over the object limit are read past (hashed) and rejected.
        """
        limit = self.max_object_bytes
        total = path.stat().st_size
        rows = 0
        offset = 0

        def take(number: int, at: int, body: bytes) -> None:
            nonlocal rows
            rows += self._message(number, at, body, sink, rejects)
            self.progress.update(path.name, counting.position, total, rows, started)

        try:
            head = _read_upto(stream, 4)
            first = struct.unpack(">I", head)[0] if len(head) == 4 else 0
            if first == 0 or first > limit:
                # One bare message (its first bytes are no length, or a big one), or an oversized first message.
                rest = _read_upto(stream, limit + 1 - len(head))
                if len(head) + len(rest) <= limit:
                    report.format += " (one message)"
                    take(1, 0, head + rest)
                    return
                whole, body = rejects.digest(), rejects.digest()
                whole.update(head)
                whole.update(rest)
                body.update(rest)
                want = first - len(rest) if first else None
                rest = b""
                got = _drain_into(stream, want, [whole, body])
                if want is None or got < want:
                    report.format += " (one message)"
                    rejects.reject(
                        self._too_big("the file (one protobuf message)", whole.size), whole, offset=0
                    )
                    return
                report.format += " (length-prefixed)"
                rejects.reject(self._too_big("message 1 at byte 0", first), body, offset=0)
            else:
                body_bytes = _read_upto(stream, first)
                if len(body_bytes) < first:  # shorter than its first bytes say: one bare message
                    report.format += " (one message)"
                    take(1, 0, head + body_bytes)
                    return
                report.format += " (length-prefixed)"
                take(1, 0, body_bytes)
            offset = 4 + first
            number = 2
            while True:
                head = _read_upto(stream, 4)
                if not head:
                    return
                if len(head) < 4:
                    rejects.reject(
                        f"{len(head)} stray bytes at byte {offset} after the last message (truncated?)",
                        head,
                        offset=offset,
                    )
                    return
                (length,) = struct.unpack(">I", head)
                if length > limit:
                    digest = rejects.digest()
                    got = _drain_into(stream, length, [digest])
                    if got < length:
                        rejects.reject(_cut_short(offset, length, got), digest, offset=offset)
                        return
                    rejects.reject(
                        self._too_big(f"message {number} at byte {offset}", length), digest, offset=offset
                    )
                else:
                    body_bytes = _read_upto(stream, length)
                    if len(body_bytes) < length:
                        rejects.reject(
                            _cut_short(offset, length, len(body_bytes)), head + body_bytes, offset=offset
                        )
                        return
                    take(number, offset, body_bytes)
                offset += 4 + length
                number += 1
        except (EOFError, OSError) as exc:
            rejects.reject(
                f"the compressed stream is damaged after {counting.position:,} bytes ({exc}); "
                f"nothing from byte {offset:,} of the decompressed data on could be read",
                None,
                offset=offset,
            )

    def _message(self, number: int, offset: int, body: bytes, sink: _Sink, rejects: RejectWriter) -> int:
        """Import one protobuf message, or reject it whole with the reason; returns rows."""
        signal = detect_protobuf_signal(body)
        if signal is None:
            rejects.reject(
                f"message {number} at byte {offset} is not an OTLP traces, metrics or logs request",
                body,
                offset=offset,
            )
            return 0
        request = parse_protobuf(signal, body)
        decoded = DECODERS[signal](request)
        if decoded.errors or decoded.rejected:
            reason = (
                f"message {number} at byte {offset}: {decoded.rejected} {ITEM_NAME[signal]} invalid: "
                + "; ".join(decoded.errors)
            )
            rejects.reject(reason, body, offset=offset, signal=signal, items=count_items(signal, request))
            return 0
        sink.add(_TABLE_OF_SIGNAL[signal], decoded.table)
        return decoded.accepted
