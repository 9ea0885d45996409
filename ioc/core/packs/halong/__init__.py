"""Hạ Long city pack data (map step): wards.csv, units_2025.csv, water.csv, shapes.geojson."""
