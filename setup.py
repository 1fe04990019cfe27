"""Build hook for the compiled modules; every other setting lives in pyproject.toml.

Both are optional: if they cannot be compiled (no C compiler), the install still succeeds and the
code falls back to what writes the same tables more slowly: ``ingest._spanpack`` (the span
exporter's encoder) to the pure-Python encoder, ``ingest._jsonarrow`` (the OTLP JSON import's reader)
to DuckDB's JSON reader.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("ingest._spanpack", ["ingest/_spanpack.c"], optional=True),
        Extension("ingest._jsonarrow", ["ingest/_jsonarrow.c"], optional=True),
    ]
)
