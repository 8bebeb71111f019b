"""Item pipelines: validation, then deduplication."""
