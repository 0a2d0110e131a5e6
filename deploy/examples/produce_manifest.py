"""A carrier's minimal producer: one manifest event to s321, in Avro single-object encoding.

Needs only confluent-kafka and fastavro (not s321) and the schema files of s321's
``schemas/`` directory:

    python produce_manifest.py --schemas ./schemas --bootstrap broker:9092 --house-bill HB123

The value is ``C3 01``, the 8-byte CRC-64-AVRO fingerprint of the schema's Parsing Canonical
Form (little-endian), then the Avro binary body; the key is the shipment key (the house bill
upper-cased, without spaces and ``. / _ -``). See deploy/CARRIERS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

TOPIC = "s321.manifest.v1"


def load(schemas: Path, name: str, seen: set[str] | None = None) -> Any:
    """The schema ``name`` with every named type it uses defined inline at its first use
    (the .avsc files refer to each other by full name, ``s321.v1.Party``)."""
    seen = set() if seen is None else seen
    seen.add(name)
    node = json.loads((schemas / f"{name}.avsc").read_text())

    def inline(t: Any) -> Any:
        if isinstance(t, str) and t.startswith("s321.v1."):
            short = t.removeprefix("s321.v1.")
            return t if short in seen else load(schemas, short, seen)
        if isinstance(t, list):
            return [inline(x) for x in t]
        if isinstance(t, dict) and t.get("type") == "array":
            return {**t, "items": inline(t["items"])}
        return t

    if node.get("type") == "record":
        node["fields"] = [{**f, "type": inline(f["type"])} for f in node["fields"]]
    return node


def single_object(schema: Any, record: dict[str, Any]) -> bytes:
    """``record`` in Avro single-object encoding under ``schema``."""
    fp = fingerprint(to_parsing_canonical_form(parse_schema(schema)), "CRC-64-AVRO")
    out = io.BytesIO(b"\xc3\x01" + bytes.fromhex(fp))
    out.seek(0, io.SEEK_END)
    schemaless_writer(out, parse_schema(schema), record)
    return out.getvalue()


def shipment_key(bill: str) -> str:
    return re.sub(r"[\s\-_./]", "", bill).upper()


def manifest(house_bill: str, now: datetime) -> dict[str, Any]:
    """One ADD manifest event (amounts as Decimal, times as aware datetimes)."""
    return {
        "header": {"event_id": str(uuid.uuid4()), "event_time": now, "source": "CARR01",
                   "action": "ADD"},
        "house_bill": house_bill,
        "tracking_number": None,
        "master_bill": "157-12345675",
        "carrier_code": "CARR",
        "mode": "AIR",
        "port_of_entry": "4701",
        "estimated_arrival": now + timedelta(hours=14),
        "shipper": {"name": "Example Trading Co", "party_id": "SHP-1",
                    "address": {"line1": "12 Harbour Road", "city": "Kowloon Bay",
                                "country": "CN", "region": None, "postal_code": None}},
        "consignee": {"name": "Jane Q Public", "party_id": None,
                      "address": {"line1": "1 Main St", "city": "Queens", "country": "US",
                                  "region": "NY", "postal_code": "11430"}},
        "origin_country": "CN",
        "lines": [{"description": "cotton t-shirt, men's", "quantity": 2,
                   "value": Decimal("12.50"), "weight_kg": Decimal("0.350"),
                   "hts": "6109100012", "origin_country": "CN", "sku": None, "gtin": None,
                   "manufacturer": None, "pga": None}],
        "shipping_weight_kg": Decimal("0.400"),
        "release_path": "SECTION_321",
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemas", type=Path, required=True, help="s321's schemas/ directory")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--topic", default=TOPIC, help="with the deployment's topic prefix")
    parser.add_argument("--house-bill", required=True)
    args = parser.parse_args()

    value = single_object(
        load(args.schemas, "ManifestEvent"), manifest(args.house_bill, datetime.now(UTC))
    )
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True,
                         "partitioner": "murmur2_random"})  # fmt: skip
    producer.produce(args.topic, key=shipment_key(args.house_bill).encode(), value=value)
    if producer.flush(30) != 0:
        raise SystemExit("the record was not delivered")
    print(f"sent {len(value)} bytes to {args.topic}")


if __name__ == "__main__":
    main()
