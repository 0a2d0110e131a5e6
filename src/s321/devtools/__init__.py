"""Development tooling, not part of the product: the local Kafka + Redis stack, the traffic
generator, the demo and the benchmark. The worker never imports anything from here."""
