"""Stores on S3-compatible object storage: ``s3://bucket/prefix`` wherever a store directory is taken.

The data files keep the local layout (``<prefix>/<table>/date=YYYY-MM-DD/<name>.parquet``). A writer puts
each file's final key once, in one request (a PutObject, or a multipart upload for files over 100 MB):
S3 makes an object visible only when its upload completes, so there is no temporary name and no rename,
and a writer killed mid-upload leaves nothing a reader can see. Names are unique (time, pid, random,
counter) and the put is create-only (``If-None-Match: *``) where the server supports it.

Credentials and region come from the standard AWS environment variables and config files (botocore's
chain); ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` points at an S3-compatible server (MinIO, moto,
Ceph, R2...). The filesystem is fsspec's ``s3fs`` (the ``s3`` extra), which the explorer registers on its
DuckDB connection: no DuckDB extension is downloaded at run time.

Control state that needs a local lock or an append (the import ledger, rejected input, compaction)
lives in a local folder per store (:func:`control_dir`), see docs/deployment.md.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ingest.errors import StoreError

SCHEME = "s3://"
CONTROL_ENV = "LANGSWARM_CONTROL_DIR"
#: Files of at least twice this many MiB go up as a multipart upload (S3's minimum part is 5 MiB).
PART_MB_ENV = "LANGSWARM_S3_PART_MB"
DEFAULT_PART_MB = 50


def is_object_store(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` names a store on object storage (``s3://bucket/prefix``)."""
    return path is not None and str(path).startswith(SCHEME)


def normalise(url: str) -> str:
    """``s3://bucket/prefix`` without a trailing slash; raises :class:`StoreError` without a bucket."""
    rest = url[len(SCHEME) :].strip("/")
    if not rest:
        msg = f"{url!r} names no bucket; write s3://BUCKET or s3://BUCKET/PREFIX"
        raise StoreError(msg)
    return SCHEME + rest


def filesystem() -> Any:
    """An ``s3fs.S3FileSystem`` from the standard AWS settings, with listings never cached (a reader must
    see files written after it opened). Raises :class:`StoreError` when the ``s3`` extra is missing."""
    try:
        import s3fs
    except ImportError:
        msg = "s3:// stores need s3fs: pip install 'langswarm-observability[s3]'"
        raise StoreError(msg) from None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    return s3fs.S3FileSystem(endpoint_url=endpoint, use_listings_cache=False, skip_instance_cache=True)


def put_once(fs: Any, url: str, data: bytes) -> None:
    """Write ``data`` to the final key ``url`` in one upload, create-only where the server supports it."""
    part = max(5, int(os.environ.get(PART_MB_ENV) or DEFAULT_PART_MB)) << 20
    try:
        # Parts go up one after another: a writer's memory holds one file anyway, and it keeps the order simple.
        fs.pipe_file(url, data, mode="create", chunksize=part, max_concurrency=1)
    except FileExistsError:
        msg = (
            f"{url} exists already; store file names are unique, so another writer shares this writer's name"
        )
        raise StoreError(msg) from None
    except OSError as exc:
        msg = f"cannot write {url}: {exc}"
        raise StoreError(msg) from exc


def local_control(root: Path | str) -> Path:
    """Where a store's control folders (``_imports/``, ``_rejected/``) are: the store directory itself,
    or for an ``s3://`` store its :func:`control_dir`."""
    return control_dir(root) if isinstance(root, str) else root


def control_dir(url: str) -> Path:
    """The local folder holding an object store's control state (import ledger, rejected input):
    ``$LANGSWARM_CONTROL_DIR/<bucket>/<prefix>``, default under ``~/.cache/langswarm``."""
    base = Path(os.environ.get(CONTROL_ENV) or Path.home() / ".cache" / "langswarm" / "stores")
    rest = normalise(url)[len(SCHEME) :]
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in rest)
    return base / f"{safe[:80]}-{hashlib.sha256(rest.encode()).hexdigest()[:8]}"
