"""A smoke run of the local stack: one record through Kafka and one value through Redis."""

from __future__ import annotations

import time
import uuid

__all__ = ["smoke"]


def smoke(bootstrap: str, redis_url: str) -> list[str]:
    """Produce and consume a record on a fresh topic, round-trip a Redis key; report each step."""
    import redis
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported at runtime, not in stubs

    topic = f"s321.smoke.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    t0 = time.monotonic()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, b"hello")
    producer.flush(10)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    msg = None
    deadline = time.monotonic() + 30
    while msg is None and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
    consumer.close()
    admin.delete_topics([topic])[topic].result(timeout=30)
    ok = msg is not None and msg.error() is None and msg.value() == b"hello"
    took = (time.monotonic() - t0) * 1000
    r = redis.Redis.from_url(redis_url)
    r.set(topic, b"1", ex=10)
    redis_ok = r.get(topic) == b"1"
    return [
        f"kafka  {'ok' if ok else 'FAILED'}: produced and consumed one record in {took:.0f} ms",
        f"redis  {'ok' if redis_ok else 'FAILED'}: round trip",
    ]
