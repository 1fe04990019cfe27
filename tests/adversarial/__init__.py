"""Standing adversarial tests: hostile input against the explorer's guarded SQL path (and, later, others)."""
