"""The broker lookups the agent's offset check relies on, against the real broker."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Producer
from faust.types import TP
from s321.streams.continuity import _Offsets

from s321.kafka_config import KafkaClientConfig


def _transactions(bootstrap: str, topic: str, unique: str) -> None:
    """Offsets 0-1 committed (marker 2), 3-4 aborted (marker 5), 6 committed (marker 7)."""
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"tx-{unique}"})
    p.init_transactions(30)
    for values, commit in ((["a", "b"], True), (["x", "y"], False), (["c"], True)):
        p.begin_transaction()
        for v in values:
            p.produce(topic, value=v.encode(), partition=0)
        p.flush(30)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)


def test_first_readable_offset_skips_markers_and_follows_the_isolation_level(
    kafka: KafkaClientConfig, kafka_bootstrap: str, new_topic: Callable[..., str], unique: str
) -> None:
    """From a transaction marker the first record is the next one; from an aborted record it is
    that record for a read-uncommitted worker and the next committed one for a read-committed
    (exactly-once) worker."""
    topic = new_topic()
    _transactions(kafka_bootstrap, topic, unique)
    tp = TP(topic, 0)
    plain = _Offsets(kafka, f"g-{unique}", "read_uncommitted")
    committed = _Offsets(kafka, f"g-{unique}", "read_committed")
    assert plain.first(tp, 0) == 0
    assert plain.first(tp, 2) == 3, "offset 2 is a commit marker"
    assert plain.first(tp, 3) == 3
    assert committed.first(tp, 3) == 6, "3 and 4 were aborted"
    assert committed.first(tp, 7, timeout_s=2) is None, "nothing after the last marker"
    assert plain.ends([tp]) == {tp: 8}
    assert plain.starts([tp]) == {tp: 0}, "no commit yet: the partition's first offset"
