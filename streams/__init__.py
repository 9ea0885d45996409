"""Stream wings of the data path: transport (Kafka, bus), ingest (topics -> tables), replay."""
