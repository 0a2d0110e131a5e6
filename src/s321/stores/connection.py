"""The Redis of one deployment: a client tuned for the decision path, and its key prefix."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["redis_client", "redis_prefix"]


def redis_prefix(topic_prefix: str) -> str:
    """The Redis key prefix of one deployment (its topic prefix): rule sets, reference data
    and cross-shipment state of deployments sharing a Redis never mix."""
    return f"{topic_prefix}s321:"


def redis_client(url: str, timeout_s: float = 0.5) -> redis.Redis:
    """A Redis client for the decision path: short timeouts and no retries, so an outage
    costs a fraction of a second, never a stalled partition."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
