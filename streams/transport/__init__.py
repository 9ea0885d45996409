"""Topic step transport: Kafka and the in-process bus, producers, record sources, patience."""
