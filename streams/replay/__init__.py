"""Topic step, captured and replayed: recordings, capture, replay, retime and rebuild."""
