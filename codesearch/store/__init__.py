"""The index store: SQLite (sqlean) with sqlite-vec for vectors and FTS5 for keywords."""

from codesearch.store.db import Store, StoredChunk
from codesearch.store.migrations import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Store", "StoredChunk"]
