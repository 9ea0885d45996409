"""Consumer -> table step, per feed: each feed's table writer and the one registry of them."""
