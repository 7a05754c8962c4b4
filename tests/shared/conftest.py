"""Redis fixtures for the shared-state tests (``tests.redis_support``)."""

from tests.redis_support import own_redis, redis_prefix

__all__ = ["own_redis", "redis_prefix"]
