"""Time travel: the timeline bar under the header, whose viewed time every page reads."""
