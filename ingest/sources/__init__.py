"""Sources: telemetry from outside the SDK into the store.

``otlp`` (protobuf) and ``otlp_json`` (JSON and JSON Lines, with the C reader ``_jsonarrow``) decode
OTLP; ``jaeger`` decodes Jaeger JSON; ``importer`` (``python -m ingest import``) reads files of any of
them; ``receiver`` (``python -m ingest serve``) accepts OTLP/HTTP. All write through ``ingest.store``.
"""
