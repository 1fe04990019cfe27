"""The telemetry store: the Parquet layout every part of the product writes and reads.

``schema`` defines the five tables; ``encoding`` turns OTel data into Arrow (with the C encoder
``_spanpack`` on the hot path); ``writer`` writes date-partitioned files atomically; ``exporters`` are
the OTel SDK exporters on top of it; ``rejects`` keeps bounded samples of refused input; ``lock`` is
the readers' lock that ``compact`` (merging small files) honours. Both the SDK and the sources write
through here; the explorer only reads (and takes ``lock.read_lock``).
"""
