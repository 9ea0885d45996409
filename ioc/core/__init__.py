"""The core: contracts, feed registry, packs, AQI, queries, health, errors; nothing above."""
