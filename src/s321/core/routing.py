"""Key routing: which partition a shipment key lives in, and the headers that route records
through the repartition topic.

A shipment's records must meet in one partition whoever produced them, so the partition of a
key is the one Java clients' default partitioner picks (murmur2 of the key bytes, made
positive, modulo the partition count): producers that key by shipment already land there.

The repartition topic carries input records sent on to their home partition and the
processor's own control records; these headers tell them apart and say where each belongs.
"""

from __future__ import annotations

__all__ = ["INVALID", "KEY", "LINK", "MARK", "ORIGIN", "REEVALUATE", "murmur2_partition"]

#: A record that asks for its key's shipment to be decided again (value empty).
REEVALUATE = "s321-reevaluate"
#: An event-time mark; the header's value is the input partition the mark reports on.
MARK = "s321-mark"
#: A link record; the value is the shipment key that this record's key is another name of.
LINK = "s321-link"
#: The shipment key a forwarded record belongs to, when it is not the one its payload carries.
KEY = "s321-key"
#: ``topic/partition/offset`` where a forwarded record was first read.
ORIGIN = "s321-origin"
#: A flag record: a record of the key's shipment failed validation; the value is
#: ``kind|broker time (ms)|fields broken`` (the record itself is in the dead letters).
INVALID = "s321-invalid"


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner picks for ``key`` (murmur2, positive, modulo)."""
    m = 0x5BD1E995
    length = len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    full = length - (length % 4)
    for i in range(0, full, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    if rest == 3:
        h ^= key[full + 2] << 16
    if rest >= 2:
        h ^= key[full + 1] << 8
    if rest >= 1:
        h ^= key[full]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions
