"""National pack data (map step): communes, provinces, lineage, corrections, schematic shapes."""
