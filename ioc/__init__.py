"""Shared core of the IOC dashboard: settings, city packs, contracts, queries and the CLI."""
