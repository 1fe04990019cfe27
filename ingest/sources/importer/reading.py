"""Reading import files: streams and decompression, format sniffing, and JSON Lines cut into bounded lines
(a line longer than the object limit is read past, not kept)."""

from __future__ import annotations

import gzip
import io
import json
import mmap
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import xxhash

from ingest.errors import ImportFileError
from ingest.sources.otlp import (
    SIGNALS,
)
from ingest.store.rejects import ItemDigest, RejectWriter

_GZIP = b"\x1f\x8b"


_ZSTD = b"\x28\xb5\x2f\xfd"


_BOM = b"\xef\xbb\xbf"


def _open_stream(path: Path, compression: str | None) -> IO[bytes]:
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True), 1 << 20)
    return raw


def _file_digest() -> Any:
    """A new digest of the kind the ledger records (XXH3-128)."""
    # XXH3 hashes 579 MB in 0.05 CPU-s here, SHA-256 in 0.4 (7% of an import). It identifies content
    # and does not guard against forgery: a file made to collide with an imported one of the same
    # size would be skipped, which --force overrides.
    return xxhash.xxh3_128()


class _CountingReader(io.RawIOBase):
    """A raw file that hashes and counts what is read (the ledger's digest, the progress bar's bytes)."""

    def __init__(self, path: Path, start: int = 0) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        if start:
            self._file.seek(start)
        self.digest = _file_digest()
        self.position = start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._file.readinto(buffer)
        if n:
            view = memoryview(buffer)[:n]
            self.digest.update(view)
            self.position += n
        return n or 0

    def close(self) -> None:
        self._file.close()
        super().close()


def _decompressed(counting: _CountingReader, compression: str | None) -> IO[bytes]:
    buffered = io.BufferedReader(counting, 4 << 20)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        return io.BufferedReader(
            _ZstdErrorsAsOSError(zstandard.ZstdDecompressor().stream_reader(buffered)), 4 << 20
        )
    return buffered


class _ZstdErrorsAsOSError(io.RawIOBase):
    """A zstd stream whose corruption errors are OSError, as gzip's are (``ZstdError`` derives from
    Exception only, so a damaged .zst file crashed the import instead of being reported).

    Each read decodes at most one zstd block (128 KiB): what a read decodes before it meets the
    damage is lost with the error, so small steps keep nearly everything before it.
    """

    _STEP = 128 << 10

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import zstandard

        with memoryview(buffer) as view:
            try:
                return int(self._inner.readinto(view[: self._STEP]))
            except zstandard.ZstdError as exc:
                raise OSError(f"zstd: {exc}") from None

    def close(self) -> None:
        self._inner.close()
        super().close()


@dataclass
class Sniffed:
    compression: str | None
    kind: str  # jsonl | json | protobuf | empty


def sniff(path: Path) -> Sniffed:
    """Compression and kind of a file, from its first bytes."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    compression = "gzip" if magic[:2] == _GZIP else "zstd" if magic == _ZSTD else None
    try:
        with _open_stream(path, compression) as stream:
            sample = stream.read(1 << 16)
    except (OSError, EOFError) as exc:
        msg = f"{path}: cannot read {compression or ''} data: {exc}".replace("  ", " ")
        raise ImportFileError(msg) from None
    except Exception as exc:  # zstandard.ZstdError has no common base
        msg = f"{path}: cannot read {compression} data: {exc}"
        raise ImportFileError(msg) from None
    text = sample[3:] if sample.startswith(_BOM) else sample
    stripped = text.lstrip()
    if not stripped:
        return Sniffed(compression, "empty")
    if stripped[:1] not in (b"{", b"["):
        return Sniffed(compression, "protobuf")
    first, newline, _ = stripped.partition(b"\n")
    if newline:
        try:
            json.loads(first)
        except ValueError:
            return Sniffed(compression, "json")
    elif len(sample) < (1 << 16):
        return Sniffed(compression, "json")
    return Sniffed(compression, "jsonl")


def _scratch_dir() -> str:
    """Where blocks handed to DuckDB are written: memory-backed /dev/shm when there is one."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return tempfile.gettempdir()


@dataclass
class _Block:
    data: bytes
    first_line: int
    path: str
    position: int
    last: bool = False


def _cut_short(offset: int, length: int, got: int) -> str:
    return f"message at byte {offset} claims {length} bytes but only {got} remain (the file is truncated)"


class _TooDeep(ValueError):
    """JSON nested deeper than Python's reader can follow (it recurses once per level)."""


def _loads(text: bytes | str) -> Any:
    """``json.loads``, with nesting too deep for it (a few hundred ``[``) as a ValueError, not a crash."""
    try:
        return json.loads(text)
    except RecursionError:
        msg = "nested too deeply to decode (Python's JSON reader allows about 1,000 levels)"
        raise _TooDeep(msg) from None


def _read_upto(stream: IO[bytes], n: int) -> bytes:
    """Up to ``n`` bytes (fewer only at the end), read in pieces: nothing is allocated ahead for ``n``."""
    pieces = []
    left = n
    while left > 0:
        piece = stream.read(min(left, 1 << 20))
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _drain_into(stream: IO[bytes], n: int | None, digests: Sequence[ItemDigest]) -> int:
    """Read up to ``n`` bytes (all, when None) into ``digests`` only; returns how many were read."""
    got = 0
    while n is None or got < n:
        piece = stream.read(1 << 20 if n is None else min(n - got, 1 << 20))
        if not piece:
            break
        for digest in digests:
            digest.update(piece)
        got += len(piece)
    return got


@dataclass
class _LongLine:
    """A line longer than the object limit, read past by :func:`_line_chunks` without being kept."""

    start: int  # byte offset in the file
    length: int  # without its line end
    blank: bool  # only whitespace: not a row, like any blank line


# Any byte bytes.strip() keeps: a line holding one is not blank.
_NOT_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")


def _skip_line(source: io.BufferedIOBase, start: int, head: memoryview) -> tuple[_LongLine, bytes]:
    """Read past the rest of a line that starts with ``head``; (the line, what follows its line end)."""
    length = len(head)
    blank = _NOT_BLANK.search(head) is None
    while True:
        piece = source.read(1 << 20)
        if not piece:
            return _LongLine(start, length, blank), b""
        end = piece.find(b"\n")
        part = piece if end == -1 else piece[:end]
        blank = blank and _NOT_BLANK.search(part) is None
        length += len(part)
        if end != -1:
            return _LongLine(start, length, blank), piece[end + 1 :]


_CHUNK_BYTES = 64 << 20


def _line_chunks(source: io.BufferedIOBase, size: int, max_line: int) -> Iterator[memoryview | _LongLine]:
    """The file in pieces of about ``size`` bytes that end at a line end; a line of more than
    ``max_line`` bytes is read past and stands for itself as a :class:`_LongLine`.

    A line longer than the buffer grows it, up to ``max_line + 1`` bytes: memory stays within a
    few times ``max_line`` whatever the file holds. Pass ``size <= max_line + 1`` so no line over
    the limit fits in a piece. Two buffers, filled in turn: a piece stays intact until the
    next-but-one is read, long enough for the one reader working ahead. Fresh buffers for every
    piece would be page-faulted in anew each time: measured ~2x the kernel time of the whole import.
    """
    buffers = [bytearray(size), bytearray(size)]
    which = 0
    carry = b""
    base = 0  # file offset of the buffer's first byte
    while True:
        buffer = buffers[which]
        need = min(len(carry) * 2, max_line + 1)
        if need > len(buffer):  # a line longer than the buffer: grow it
            buffer = buffers[which] = bytearray(need)
        buffer[: len(carry)] = carry
        view = memoryview(buffer)
        filled = len(carry)
        while filled < len(buffer):
            got = source.readinto(view[filled:])
            if not got:
                break
            filled += got
        if filled == len(carry):  # end of file
            if carry:
                yield view[:filled]
            return
        end = buffer.rfind(b"\n", 0, filled)
        if end == -1:
            if filled > max_line:  # one line, longer than the limit: read past it
                long_line, carry = _skip_line(source, base, view[:filled])
                base += long_line.length + 1
                yield long_line
            else:
                carry = bytes(view[:filled])
            continue
        carry = bytes(view[end + 1 : filled])
        base += end + 1
        yield view[: end + 1]
        which ^= 1


def _drain(counting: _CountingReader) -> None:
    """Read a file to its end through ``counting`` (which hashes it), into one reused buffer."""
    buffer = bytearray(8 << 20)
    while counting.readinto(buffer):
        pass


def _json_source(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    return f"read_json_objects('{quoted}', format='newline_delimited', ignore_errors=true)"


class _LineCursor:
    """Walks a JSON Lines file forward to the n-th non-blank line (DuckDB's n-th row), for line numbers."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        size = os.fstat(self._file.fileno()).st_size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self._size = size
        self._pos = 0
        self._line = 1
        self._row = -1

    def locate(self, row: int) -> tuple[int, int, int]:
        """(line number, start, end) of non-blank line number ``row`` (0-based), its text not read.

        Rows must not go backwards.
        """
        while self._pos < self._size:
            end = self._map.find(b"\n", self._pos)
            end = self._size if end == -1 else end
            start = self._pos
            line = self._line
            self._pos = end + 1
            self._line += 1
            if _NOT_BLANK.search(self._map, start, end) is not None:
                self._row += 1
                if self._row == row:
                    return line, start, end
        msg = f"row {row} is past the end of the file ({self._row + 1} non-blank lines)"
        raise IndexError(msg)

    def pass_line(self, start: int, end: int) -> int:
        """Line number of the non-blank line at bytes ``start:end`` (a line read past); the cursor moves
        beyond it without reading it, so a long line's pages are never mapped in."""
        while self._pos < start:
            stop = self._map.find(b"\n", self._pos, start)
            stop = start - 1 if stop == -1 else stop
            if _NOT_BLANK.search(self._map, self._pos, stop) is not None:
                self._row += 1
            self._pos = stop + 1
            self._line += 1
        line = self._line
        self._row += 1
        self._pos = end + 1
        self._line += 1
        return line

    def text(self, start: int, end: int) -> bytes:
        return bytes(self._map[start:end])

    def digest(self, start: int, end: int, rejects: RejectWriter) -> ItemDigest:
        """The :class:`ItemDigest` of bytes ``start:end``, read a piece at a time (not through the map)."""
        digest = rejects.digest()
        for at in range(start, end, 8 << 20):
            digest.update(os.pread(self._file.fileno(), min(8 << 20, end - at), at))
        return digest

    def position_of(self, row: int) -> tuple[int, int]:
        """(byte offset, line number) where non-blank line ``row`` starts (the end when there is none)."""
        if row <= self._row:
            msg = "position_of cannot go backwards"
            raise IndexError(msg)
        while self._pos < self._size:
            end = self._map.find(b"\n", self._pos)
            end = self._size if end == -1 else end
            if _NOT_BLANK.search(self._map, self._pos, end) is not None:
                if self._row + 1 == row:
                    return self._pos, self._line
                self._row += 1
            self._pos = end + 1
            self._line += 1
        return self._size, self._line

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._file.close()


def _signal_of(obj: Any) -> str | None:
    if isinstance(obj, dict):
        for signal, spec in SIGNALS.items():
            if spec[1] in obj:
                return signal
    return None


def _expand(paths: Sequence[str | os.PathLike[str]]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            yield path
