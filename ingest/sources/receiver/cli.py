"""``python -m ingest serve``: options, worker processes sharing the port, signals, process tuning."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from ingest.errors import ConfigurationError
from ingest.sources.receiver.limits import _MIB, Limits
from ingest.sources.receiver.server import DEFAULT_HOST, DEFAULT_PORT, Receiver
from ingest.store.writer import resolve_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m ingest serve``."""
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=None,
        help="largest request body accepted, before and after decompression (default 20; LANGSWARM_RECEIVER_MAX_BODY_MB)",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=None,
        help="memory budget of each worker process; sets how many requests are decoded at once "
        "(default 1024; LANGSWARM_RECEIVER_MEMORY_MB; docs/security.md)",
    )
    parser.add_argument(
        "--max-concurrent-decodes",
        type=int,
        default=None,
        help="requests decoded at once per process, past it 503 + Retry-After "
        "(default: what --memory-mb holds; LANGSWARM_RECEIVER_MAX_CONCURRENT_DECODES)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="open connections per process, past it 503 + Retry-After (default 256; LANGSWARM_RECEIVER_MAX_CONNECTIONS)",
    )
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=None,
        help="seconds a request's line and headers may take to arrive, and its body plus 1 s per MiB "
        "(default 10; LANGSWARM_RECEIVER_READ_TIMEOUT_S)",
    )
    parser.add_argument(
        "--max-days-per-request",
        type=int,
        default=None,
        help="different days (store partitions) one request may write to (default 32; "
        "LANGSWARM_RECEIVER_MAX_DAYS_PER_REQUEST)",
    )
    parser.add_argument(
        "--max-pending-mb",
        type=int,
        default=None,
        help="Arrow MB of rows waiting to be written, past it 429 + Retry-After (default 64; "
        "LANGSWARM_RECEIVER_MAX_PENDING_MB)",
    )
    parser.add_argument(
        "--flush-rows", type=int, default=65_536, help="rows per table that trigger a write (default 65536)"
    )
    parser.add_argument(
        "--flush-interval",
        type=float,
        default=1.0,
        help="seconds rows may wait before they are written (default 1)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="processes sharing the port, each decoding on its own core (default: the cores, at most 4)",
    )
    parser.add_argument(
        "--require-header",
        metavar="NAME=VALUE",
        action="append",
        type=_header_arg,
        default=[],
        help="refuse (401) a request without this header and value, e.g. X-Api-Key=secret; repeatable",
    )
    parser.add_argument(
        "--retention-days",
        type=float,
        default=None,
        metavar="DAYS",
        help="remove whole day partitions older than this, at start and hourly (ingest/store/prune.py; default: keep all)",
    )


def _header_arg(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` of ``--require-header``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value:
        msg = f"{text!r} is not NAME=VALUE, e.g. X-Api-Key=secret"
        raise argparse.ArgumentTypeError(msg)
    return name.strip(), value


def _serve(args: argparse.Namespace, sock: socket.socket, name: str) -> int:
    """One receiver on an already listening socket, until SIGTERM/SIGINT; then write everything."""
    _tune_gc()
    _limit_malloc_arenas()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    receiver = Receiver(
        args.store,
        host=args.host,
        port=args.port,
        **_limit_arguments(args),
        flush_rows=args.flush_rows,
        flush_interval=args.flush_interval,
        sock=sock,
        name=name,
        retention_days=args.retention_days,
        required_headers=dict(args.require_header),
    )
    receiver.start()
    while not stop.wait(0.5):
        pass
    receiver.stop()
    print(f"{name} stopped: {json.dumps(receiver.stats())}", flush=True)
    return 0 if not receiver.batcher.pending() else 1


def _limit_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_body": None if args.max_body_mb is None else int(args.max_body_mb * _MIB),
        "memory_mb": args.memory_mb,
        "max_concurrent_decodes": args.max_concurrent_decodes,
        "max_connections": args.max_connections,
        "read_timeout": args.read_timeout,
        "max_days_per_request": args.max_days_per_request,
        "max_pending_mb": args.max_pending_mb,
    }


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT, then write everything accepted and print a summary.

    With ``--workers`` > 1 the listening socket is opened here and shared by forked worker
    processes (the kernel hands each connection to one of them): decoding is CPU-bound and the GIL
    would keep one process on one core. SIGTERM/SIGINT are passed on to every worker, which writes
    what it accepted before exiting.
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    try:
        limits = Limits.resolve(**_limit_arguments(args))
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bound = (
        f"memory bound {limits.bound_mb:,.0f} MB per process ({limits.max_concurrent_decodes} decodes at once "
        f"of up to {limits.max_body / _MIB:g} MB, {limits.max_connections} connections)"
    )
    try:
        sock = socket.create_server((args.host, args.port), backlog=128)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    store = resolve_store(args.store)
    workers = max(1, args.workers)
    if workers == 1 or not hasattr(os, "fork"):
        print(
            f"listening on http://{host}:{port} (OTLP/HTTP: /v1/traces /v1/metrics /v1/logs), store {store}, {bound}",
            flush=True,
        )
        code = _serve(args, sock, "receiver")
        print("stopped", flush=True)
        return code
    children = []
    sys.stdout.flush()
    sys.stderr.flush()
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: no thread exists yet in this process, so forking is safe
            code = 1
            try:
                _stop_with_parent()
                code = _serve(args, sock, f"receiver-{index}")
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    sock.close()

    def forward(signum: int, frame: Any) -> None:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    print(
        f"listening on http://{host}:{port} (OTLP/HTTP: /v1/traces /v1/metrics /v1/logs), store {store}, "
        f"{workers} worker processes, {bound}",
        flush=True,
    )
    code = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        code = max(code, os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
    print(
        "stopped: every worker wrote what it accepted"
        if code == 0
        else "stopped: a worker could not write everything",
        flush=True,
    )
    return code


def _tune_gc() -> None:
    """Fewer garbage collections while decoding: each request makes ~10 protobuf wrappers a span, all
    freed by reference counting, yet every 700 of them started a collection that walked the young
    objects (measured: about a third of the decoding time). Objects alive at start-up are frozen."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """At most ``arenas`` glibc malloc arenas in this process, unless ``MALLOC_ARENA_MAX`` says otherwise.

    glibc gives each thread that allocates at once its own arena (up to 8 per core) and keeps what is
    freed there: with a thread per connection, memory freed after one large decode stayed resident in
    other threads' arenas. Measured under 100 abusive clients: peak RSS 1,099 MB with glibc's default,
    818 MB with two arenas (documented bound 918 MB). Elsewhere (musl, macOS) this does nothing.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        m_arena_max = -8
        libc.mallopt(m_arena_max, arenas)
    except (OSError, AttributeError):
        return


def _stop_with_parent() -> None:
    """Have the kernel send this worker SIGTERM if the parent dies (Linux), so none is left orphaned.

    A parent killed outright (SIGKILL) cannot pass the signal on; the worker then still writes
    everything it accepted before exiting. Elsewhere this does nothing.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port free right now on ``host`` (for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
