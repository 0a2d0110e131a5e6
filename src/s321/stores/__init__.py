"""State kept in Redis: cross-shipment aggregates and the version ledger, published rule sets
and reference data (versioned documents, with the watchers that pick up new versions in a
running worker), and the client and key prefix of a deployment's Redis."""
