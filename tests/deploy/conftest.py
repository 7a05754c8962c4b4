"""The PostgreSQL fixture of the database tests (a schema of the test's own)."""

from tests.db.conftest import pg_url

__all__ = ["pg_url"]
