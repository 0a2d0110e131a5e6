"""State kept in Redis: cross-shipment aggregates and the version ledger, published rule sets
and reference data (with the watchers that pick up new versions in a running worker)."""
