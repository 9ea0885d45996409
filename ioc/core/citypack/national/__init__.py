"""The national pack's data: every 2025 commune and province, checked, from vietnamadminunits."""
