"""The pure core: correlation of a shipment's events, its state encoding, key routing and the
record processor that turns input records into outputs. Nothing here imports a Kafka or Redis
client; the stream shell in ``streams/`` feeds it records and sends what it returns."""
