"""The wall view (/): the ward map, KPI tiles, feed health and alerts, for operators at 3 m."""
