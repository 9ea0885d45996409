"""The one-command demo: embedded PostgreSQL, in-process bus, simulators, ingest and dashboard."""
