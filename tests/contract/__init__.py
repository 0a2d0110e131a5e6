"""Contract tests: the Avro schemas, the serialization module, and hostile input."""
