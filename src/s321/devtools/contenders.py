"""What ``s321 bench`` sets beside s321 on the same preloaded topics: programs doing part of its
work, each run as a process of its own so that its CPU time and memory are its own.

``plain``
    a plain confluent-kafka loop: reads every input event and produces one record per new
    shipment key (a dict of keys seen; no decoding, no state store, no rules): the ceiling.
``faust-join``
    a bare Faust join: one agent over the three input topics as raw bytes, one RocksDB table
    write per record (which of the topics a shipment has been seen on), and one output record
    per complete shipment, once its manifest and its pilot data are both in (the Entry Type 86
    entry is optional, as in s321). No Avro, no rules, no Redis.
``faust-consume``
    a Faust agent over the three input topics that only consumes and counts.
``faust-consume-in-line``
    the same, with Faust's consumer handing each record over in line as the s321 worker's
    does (:func:`s321.streams.internals.hand_over_in_line`): what that saves of Faust's own
    cost per record.
``faust-consume-confluent``
    the same as ``faust-consume`` over Faust's librdkafka transport (``confluent://``) instead
    of aiokafka. Not among the benchmark's contenders: with faust-streaming 0.15.3 it subscribes
    to nothing and reads no record (see ``tests/benchmarks/LEVERS.md``).

This is tooling, not the product: it imports faust itself (in the product only ``streams/``
does). The Faust apps speak to the broker in plain text only.

Each contender reads until it has seen ``--events`` records and then writes ``--result`` (JSON):
the wall times (ms) of its first and last record, the records it read and the outputs it sent;
the plain loop adds the requests its clients sent to the broker (librdkafka's statistics).
Then it idles until stopped.

Run: ``python -m s321.devtools.contenders MODE --prefix P --group G --partitions N --events N
--result FILE [--data-dir DIR] [--output TOPIC]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from s321 import topics

__all__ = ["MODES", "main", "requests_sent"]

MODES = ("plain", "faust-join", "faust-consume", "faust-consume-in-line", "faust-consume-confluent")
#: the join's bit of each input topic (by its base name); complete is manifest and pilot data
_BITS = {topics.MANIFEST.base: 1, topics.PILOT.base: 2, topics.ENTRY86.base: 4}
_COMPLETE = 1 | 2


def requests_sent(stats: Mapping[str, Any]) -> int:
    """Requests a librdkafka client has sent to brokers, from one of its statistics objects
    (``statistics.interval.ms``): the sum of ``tx`` over its broker connections (the
    bootstrap connection included)."""
    brokers = stats.get("brokers") or {}
    return sum(int(b.get("tx", 0)) for b in brokers.values() if isinstance(b, Mapping))


class _Result:
    """Times of the first and last record, and the counts; written once, atomically."""

    def __init__(self, path: Path, events: int) -> None:
        self.path = path
        self.events = events
        self.read = 0
        self.outputs = 0
        self.first_ms = 0.0
        self.done = False

    def count(self) -> bool:
        """Count one record; True once the last expected one is in."""
        if not self.read:
            self.first_ms = time.time() * 1000
        self.read += 1
        return self.read >= self.events

    def write(self, last_ms: float | None = None, **extra: Any) -> None:
        """Write the result once; ``last_ms``: the wall time of the end (default: now)."""
        if self.done:
            return
        self.done = True
        body = {
            "first_ms": self.first_ms,
            "last_ms": last_ms or time.time() * 1000,
            "read": self.read,
            "outputs": self.outputs,
            **extra,
        }
        tmp = self.path.with_suffix(".part")
        tmp.write_text(json.dumps(body), encoding="utf-8")
        tmp.replace(self.path)


def _inputs(prefix: str) -> list[str]:
    return [topics.topic_name(s, prefix) for s in topics.INPUTS]


def _plain(args: argparse.Namespace, kafka: dict[str, Any], result: _Result) -> None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    latest: dict[str, dict[str, Any]] = {}

    def stats_of(name: str) -> Any:
        def keep(raw: str) -> None:
            latest[name] = json.loads(raw)

        return keep

    every = {"statistics.interval.ms": 500}
    consumer = Consumer({**kafka, **every, "stats_cb": stats_of("consumer"),
                         "group.id": args.group, "enable.auto.commit": False})  # fmt: skip
    producer = Producer({**kafka, **every, "stats_cb": stats_of("producer"), "linger.ms": 5,
                         "compression.type": "lz4"})  # fmt: skip
    consumer.assign(
        [TopicPartition(t, p, OFFSET_BEGINNING) for t in _inputs(args.prefix)
         for p in range(args.partitions)]
    )  # fmt: skip
    seen: set[bytes] = set()
    finished = False
    while not finished:
        for msg in consumer.consume(1000, 0.2):
            if msg.error():
                continue
            finished = result.count()
            key = msg.key() or b""
            if key not in seen:
                seen.add(key)
                result.outputs += 1
                while True:
                    try:
                        producer.produce(args.output, msg.value(), key)
                        break
                    except BufferError:
                        producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    last_ms = time.time() * 1000
    # one more round of statistics, so that the counts include the flush (the figures end
    # with the flush, not with this round)
    latest.clear()
    deadline = time.monotonic() + 5
    while len(latest) < 2 and time.monotonic() < deadline:
        producer.poll(0.05)
        consumer.consume(100, 0.05)
    result.write(last_ms, requests=sum(requests_sent(s) for s in latest.values()))
    consumer.close()


def _faust(
    args: argparse.Namespace,
    bootstrap: str,
    result: _Result,
    join: bool,
    in_line: bool = False,
    transport: str = "kafka",
) -> None:
    import faust

    app = faust.App(
        args.group,
        broker=f"{transport}://{bootstrap}",
        store="rocksdb://",
        datadir=str(args.data_dir),
        topic_partitions=args.partitions,
        topic_replication_factor=1,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
    )
    source = app.topic(*_inputs(args.prefix), key_type=bytes, value_type=bytes,
                       partitions=args.partitions)  # fmt: skip
    if in_line:
        from s321.streams.internals import (  # type: ignore[import-not-found]  # installed as s321.streams
            hand_over_in_line,
        )

        hand_over_in_line(app.consumer)
    bits = {topics.topic_name(s, args.prefix): _BITS[s.base] for s in topics.INPUTS}
    if join:
        out = app.topic(args.output, key_type=bytes, value_type=bytes)
        table = app.Table("seen", partitions=args.partitions, key_type=bytes, value_type=bytes)

        @app.agent(source)
        async def bare_join(stream: Any) -> None:
            async for event in stream.events():
                key = event.key
                before = table.get(key)
                had = before[0] if before else 0
                now = had | bits[event.message.topic]
                table[key] = bytes([now])
                if now & _COMPLETE == _COMPLETE and had & _COMPLETE != _COMPLETE:
                    await out.send(key=key, value=b"1")
                    result.outputs += 1
                if result.count():
                    result.write()

    else:

        @app.agent(source)
        async def consume_only(stream: Any) -> None:
            async for _ in stream.events():
                if result.count():
                    result.write()

    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def main(argv: list[str] | None = None) -> None:
    """Run one contender (see the module's docstring)."""
    from s321.kafka_config import confluent
    from s321.settings import Settings

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path("."))
    parser.add_argument("--output", default="")
    args = parser.parse_args(argv)
    kafka = Settings.from_env().kafka()
    result = _Result(args.result, args.events)
    if args.mode == "plain":
        _plain(args, confluent(kafka), result)
        while True:  # idle until stopped, like the others
            time.sleep(3600)
    if kafka.security_protocol != "PLAINTEXT":
        raise SystemExit("the Faust contenders speak to the broker in plain text only")
    _faust(
        args,
        kafka.bootstrap,
        result,
        join=args.mode == "faust-join",
        in_line=args.mode == "faust-consume-in-line",
        transport="confluent" if args.mode == "faust-consume-confluent" else "kafka",
    )


if __name__ == "__main__":
    main()
