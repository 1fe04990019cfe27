"""Reading a request body safely: a socket reader with a deadline, and inflating with a ceiling."""

from __future__ import annotations

import io
import socket
import time
import zlib
from collections.abc import Callable
from typing import Any

from ingest.sources.receiver.limits import _MIB

#: Most gzip members one body may hold (each costs a decompressor; real clients send one).
MAX_GZIP_MEMBERS = 1_000
#: Bodies are read, reserved and inflated in pieces of this size.
_PIECE = 64 << 10


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side that fails with ``TimeoutError`` once ``deadline`` (monotonic) passed.

    A per-``recv`` timeout alone lets a client send a byte every few seconds for ever (slowloris); a
    deadline for the whole request does not.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = time.monotonic() + 10.0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            msg = "the request did not arrive in time"
            raise TimeoutError(msg)
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class _TooLarge(Exception):
    pass


def _decompress(body: bytearray, encoding: str, limit: int, reserve: Callable[[int], None]) -> bytearray:
    """Inflate with a ceiling, so a small compressed body cannot grow without bound.

    gzip: every member (RFC 1952 allows several, and ``cat a.gz b.gz`` makes them), up to
    :data:`MAX_GZIP_MEMBERS`; anything after the last member that is not another member is an error,
    never silently dropped. deflate: the zlib format (RFC 1950), or raw deflate as some clients send.
    Output grows a MiB at a time, each reserved with ``reserve`` first.
    """
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    else:
        zlib_header = len(body) >= 2 and (body[0] * 256 + body[1]) % 31 == 0 and body[0] & 0x0F == 8
        wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
    out = bytearray()
    data: bytes | bytearray = body
    members = 0
    while True:
        inflater = zlib.decompressobj(wbits)
        while not inflater.eof:
            room = min(_MIB, limit - len(out) + 1)
            piece = inflater.decompress(data, room)
            if len(out) + len(piece) > limit:
                raise _TooLarge
            reserve(len(piece))
            out += piece
            data = inflater.unconsumed_tail
            if not piece and not data:
                break
        if not inflater.eof:
            msg = f"the compressed body is truncated (member {members + 1} has no end)"
            raise EOFError(msg)
        members += 1
        data = inflater.unused_data
        if not data:
            return out
        if encoding != "gzip" or data[:2] != b"\x1f\x8b":
            msg = f"{len(data):,} bytes follow the end of the {encoding} data and are not another gzip member"
            raise ValueError(msg)
        if members >= MAX_GZIP_MEMBERS:
            msg = f"more than {MAX_GZIP_MEMBERS:,} gzip members"
            raise ValueError(msg)
