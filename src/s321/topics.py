"""The topic registry: every topic's name, key, value type and partitioning, declared once.

Nothing else in s321 spells a topic name. Inputs and the join's internal topics are
co-partitioned (same partition count), so one shipment's events meet in one task.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALL",
    "DEAD_LETTERS",
    "DECISIONS",
    "ENTRY86",
    "INPUTS",
    "MANIFEST",
    "PILOT",
    "TABLE",
    "UNMATCHED",
    "TopicSpec",
    "changelog_name",
    "topic_name",
]


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its base name, what its key is, what its values are (the Avro type, for
    the topics whose values are one), and whether it is co-partitioned with the inputs."""

    base: str
    key: str
    value_type: str
    copartitioned: bool
    compacted: bool = False
    doc: str = ""


MANIFEST = TopicSpec(
    "s321.manifest.v1",
    "shipment key (normalised house bill or tracking no.)",
    "ManifestEvent",
    True,
    doc="carrier manifest events (ADD/CHANGE/DELETE)",
)
PILOT = TopicSpec(
    "s321.pilot.v1", "shipment key", "PilotRecord", True, doc="Section 321 Data Pilot records"
)
ENTRY86 = TopicSpec(
    "s321.entry86.v1",
    "shipment key (the entry's bill number)",
    "Entry86",
    True,
    doc="Entry Type 86 entries",
)
DECISIONS = TopicSpec(
    "s321.decisions.v1",
    "shipment key",
    "Decision",
    True,
    doc="versioned release/hold decisions; consumers act on the newest version",
)
DEAD_LETTERS = TopicSpec(
    "s321.deadletter.v1",
    "original key",
    "DeadLetter",
    True,
    doc="records that could not be processed, with original bytes and why",
)
UNMATCHED = TopicSpec(
    "s321.unmatched.v1",
    "shipment key",
    "DeadLetter",
    True,
    doc="pilot records and Type 86 entries whose manifest never arrived within the matching "
    "window: a dead letter (error class Unmatched) with the record's original bytes and where "
    "it was read; no decision is made for them",
)

REPARTITION = TopicSpec(
    "s321.repartition.v1",
    "shipment key (derived from the payload); none on a mark",
    "an input event (any of the three); empty for a link or a re-evaluation; three "
    "big-endian 64-bit integers for a mark",
    True,
    doc="inputs whose producer key or partition disagreed with the payload; links, "
    "re-evaluations, and the event-time marks of every input partition (the headers in "
    "s321.core.routing say which)",
)

INPUTS: tuple[TopicSpec, ...] = (MANIFEST, PILOT, ENTRY86)
INTERNAL: tuple[TopicSpec, ...] = (REPARTITION,)
ALL: tuple[TopicSpec, ...] = (*INPUTS, *INTERNAL, DECISIONS, DEAD_LETTERS, UNMATCHED)


#: The worker's join-state table. Its changelog topic, ``<app id>-shipments-changelog``, is
#: compacted, co-partitioned with the inputs and holds every shipment's state (personal data
#: included); the table is rebuilt from it when a worker takes over partitions.
TABLE = "shipments"


def changelog_name(app_id: str) -> str:
    """The table's changelog topic: named by the application id, not the topic prefix (the
    stream runtime derives it as ``<app id>-<table>-changelog``)."""
    return f"{app_id}-{TABLE}-changelog"


def topic_name(spec: TopicSpec, prefix: str = "") -> str:
    """The topic's full name: an optional prefix (per deployment or per test) plus its base."""
    return f"{prefix}{spec.base}"
