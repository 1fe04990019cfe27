"""The import ledger in ``<store>/_imports/``: digests of files already imported, so re-importing one is a no-op."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from ingest.sources.importer.reading import _file_digest
from ingest.sources.importer.report import FileReport

IMPORTS_DIR = "_imports"


class Ledger:
    """Which file contents were fully imported into a store: ``<store>/_imports/ledger.jsonl``."""

    def __init__(self, root: Path) -> None:
        self.path = root / IMPORTS_DIR / "ledger.jsonl"

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def find(self, path: Path) -> dict[str, Any] | None:
        """The ledger entry of a file with this exact content, if any (hashes only when sizes match).

        Entries written before the XXH3 digest hold a SHA-256 one; either kind is compared.
        """
        size = path.stat().st_size
        matches = [e for e in self.entries() if e.get("size") == size]
        if not matches:
            return None
        digests = {}
        if any("xxh3_128" in e for e in matches):
            digests["xxh3_128"] = _file_digest()
        if any("xxh3_128" not in e and "sha256" in e for e in matches):
            digests["sha256"] = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(8 << 20):
                for digest in digests.values():
                    digest.update(chunk)
        found = {kind: digest.hexdigest() for kind, digest in digests.items()}
        return next((e for e in matches if any(e.get(kind) == value for kind, value in found.items())), None)

    def record(self, path: Path, xxh3_128: str, report: FileReport) -> None:
        entry = {
            "xxh3_128": xxh3_128,
            "size": path.stat().st_size,
            "path": str(path.resolve()),
            "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "written": report.written,
            "rejected": report.rejected,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
