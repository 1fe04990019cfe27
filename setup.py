"""Build hook for the one compiled module; every other setting lives in pyproject.toml.

``ingest._spanpack`` is optional: if it cannot be compiled (no C compiler), the install still
succeeds and the exporter uses its pure-Python encoder, which writes the same tables.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ingest._spanpack", ["ingest/_spanpack.c"], optional=True)])
