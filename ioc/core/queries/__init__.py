"""Query step of the data path: one module per feed, each KPI defined once over the rollups."""
