"""``python -m ingest.demo``: the same as ``python -m ingest demo``."""

from ingest.demo.cli import main

raise SystemExit(main())
