"""Build hook for the compiled modules; every other setting lives in pyproject.toml.

Both are optional: if they cannot be compiled (no C compiler), the install still succeeds and the
code falls back to what writes the same tables more slowly: ``ingest.store._spanpack`` (the span
exporter's encoder) to the pure-Python encoder, ``ingest.sources._jsonarrow`` (the OTLP JSON import's reader)
to DuckDB's JSON reader.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("ingest.store._spanpack", ["ingest/store/_spanpack.c"], optional=True),
        Extension("ingest.sources._jsonarrow", ["ingest/sources/_jsonarrow.c"], optional=True),
    ]
)
