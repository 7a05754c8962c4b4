"""Helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
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
    if dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
