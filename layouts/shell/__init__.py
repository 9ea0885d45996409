"""The frame around every page: header, language, clock, signed-in badge, timeline, routing."""
