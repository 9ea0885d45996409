"""The ward page (/ward/<code>): one ward against the city, its series, breakdowns, export."""
