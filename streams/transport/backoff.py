"""Consumer step: capped exponential backoff for reconnecting to the broker or the database."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays initial, 2x, 4x, ... capped at cap_s; `reset` after a success."""

    initial_s: float = 0.2
    cap_s: float = 5.0
    factor: float = 2.0
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.cap_s < self.initial_s or self.factor < 1:
            raise ValueError("need 0 < initial_s <= cap_s and factor >= 1")

    def next_delay(self) -> float:
        """The delay before the next attempt; counts the attempt."""
        delay = min(self.cap_s, self.initial_s * self.factor**self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0
