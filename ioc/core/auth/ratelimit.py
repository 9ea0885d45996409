"""Access control: login attempts limited per client address and per user name (failures in a
sliding window), in memory - one dashboard process is one limiter."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

MAX_KEYS: Final = 10_000


class LoginLimiter:
    """`retry_after` says how long a caller must wait (0: may try now); failures count."""

    def __init__(
        self,
        per_ip: int = 20,
        per_user: int = 5,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_ip = per_ip
        self.per_user = per_user
        self.window_s = window_s
        self._clock = clock
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(ip: str, user: str) -> tuple[str, str]:
        return "ip:" + ip[:64], "user:" + user.strip().lower()[:64]

    def _wait(self, key: str, limit: int, now: float) -> float:
        times = self._fails.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) < limit:
            return 0.0
        return times[len(times) - limit] + self.window_s - now

    def retry_after(self, ip: str, user: str) -> float:
        """Seconds until the next attempt from `ip` for `user` is allowed (0: now)."""
        now = self._clock()
        ip_key, user_key = self._keys(ip, user)
        with self._lock:
            return max(
                self._wait(ip_key, self.per_ip, now), self._wait(user_key, self.per_user, now)
            )

    def failed(self, ip: str, user: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._fails) >= MAX_KEYS:
                # Forget the stalest half rather than grow without bound under a spray attack.
                stale = sorted(
                    self._fails, key=lambda k: self._fails[k][-1] if self._fails[k] else 0
                )
                for key in stale[: MAX_KEYS // 2]:
                    del self._fails[key]
            for key in self._keys(ip, user):
                self._fails.setdefault(key, deque()).append(now)

    def succeeded(self, ip: str, user: str) -> None:
        """A correct password clears the user's failures (not the address's)."""
        with self._lock:
            self._fails.pop(self._keys(ip, user)[1], None)
