"""Storage backends. ``MemoryStore`` is the contract; ``open_store`` picks one by config."""

from .base import (
    Filter,
    HasIds,
    Match,
    MemoryStore,
    PointIn,
    Range,
    Record,
    StoreSpec,
    VectorQuery,
    open_store,
    scope_filter,
)

__all__ = [
    "Filter",
    "HasIds",
    "Match",
    "MemoryStore",
    "PointIn",
    "Range",
    "Record",
    "StoreSpec",
    "VectorQuery",
    "open_store",
    "scope_filter",
]
