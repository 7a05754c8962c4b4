"""Helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Dialect

from alice_py.db.models import Base

Clock = Callable[[], float]
T = TypeVar("T")

# Below SQLite's and PostgreSQL's limits on bound parameters per statement.
CHUNK = 500


def stamp(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def insert_for(dialect: Dialect, model: type[Base]) -> Any:
    """An INSERT that knows ON CONFLICT, for the two backends we support."""
    # Imported here: each dialect's package is already loaded by its driver, and the
    # PostgreSQL one costs a SQLite service 2 MiB for nothing (docs/performance.md, W4).
    if dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(model)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(model)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
