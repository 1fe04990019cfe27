"""``python -m ingest serve``: an OTLP/HTTP receiver that any OTel SDK or Collector can export to.

``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs`` with ``application/x-protobuf`` or
``application/json`` bodies, optionally ``Content-Encoding: gzip`` (every member of a multi-member
gzip body is read) or ``deflate``, with a ``Content-Length`` or ``Transfer-Encoding: chunked``, as
the OTLP specification's HTTP transport describes. Responses follow it too: 200 with an
``Export*ServiceResponse`` (``partial_success`` counting rejected spans/points/records and why), and
every refusal a ``google.rpc.Status`` saying what and where: 400 for a body that cannot be decoded or
malformed framing, 408 for a request that does not arrive in time, 411 without a length, 413 past the
body limit (decided from the announced length, before reading), 415 for other content types or
encodings, 429 while the rows waiting to be written are at their cap, 503 at the connection or
decoding limits and while shutting down. 408/429/503 carry ``Retry-After``: OTLP clients retry them.

Memory is bounded per process (:class:`Limits`, docs/security.md "The OTLP/HTTP receiver"): bodies
are read in pieces against a byte budget, decoded under a semaphore sized from ``memory_mb``, and
rows wait for the writer up to a cap. A connection must send each request within ``read_timeout``
seconds (plus a second per MiB of body), and at most ``max_connections`` are open at once.

Accepted rows are gathered per table and written through the one :class:`~ingest.store.writer.StoreWriter`
when a table holds ``flush_rows`` rows or its oldest row is ``flush_interval`` seconds old.
SIGTERM/SIGINT stop accepting, finish the requests in flight, write everything accepted, then exit.
Why stdlib ``ThreadingHTTPServer``: decoding is the cost (the GIL serialises it in any Python
server), and it measured as fast as uvicorn here (docs/benchmarks.md, "Ingest").

Modules, one concept each: :mod:`~ingest.sources.receiver.limits` (limits, the memory bound, byte
budgets), :mod:`~ingest.sources.receiver.body` (the deadline reader, inflating),
:mod:`~ingest.sources.receiver.handler` (one request), :mod:`~ingest.sources.receiver.batcher` (rows to
the writer), :mod:`~ingest.sources.receiver.server` (the server and :class:`Receiver`) and
:mod:`~ingest.sources.receiver.cli` (``serve``).
"""

from ingest.sources.receiver.batcher import Batcher
from ingest.sources.receiver.body import MAX_GZIP_MEMBERS
from ingest.sources.receiver.cli import add_arguments, free_port, run
from ingest.sources.receiver.handler import PATHS, OTLPHandler
from ingest.sources.receiver.limits import (
    BASE_MB,
    DECODE_FACTOR,
    DEFAULT_MAX_BODY,
    ByteBudget,
    Limits,
    memory_needed,
)
from ingest.sources.receiver.server import DEFAULT_HOST, DEFAULT_PORT, OTLPServer, Receiver

__all__ = [
    "BASE_MB",
    "DECODE_FACTOR",
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY",
    "DEFAULT_PORT",
    "MAX_GZIP_MEMBERS",
    "PATHS",
    "Batcher",
    "ByteBudget",
    "Limits",
    "OTLPHandler",
    "OTLPServer",
    "Receiver",
    "add_arguments",
    "free_port",
    "memory_needed",
    "run",
]
