"""Simulator step of the data path: one generator per feed, scenarios, and their sinks."""
