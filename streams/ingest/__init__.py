"""Consumer -> table step: the ingest loop, batch storage, dead letters, health and writers."""
