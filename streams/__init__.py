"""Stream step of the data path: Kafka wrappers, the topic registry and one consumer per feed."""
