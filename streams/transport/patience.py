"""Topic step: how a producer waits out a broker that went away, and for how long at most."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
DEFAULT_PATIENCE_S = 300.0
# One waiting line every few seconds: enough to show the producer is alive, few enough to read.
SAY_EVERY_S = 5.0
# Records pending and not one acknowledged for this long counts as an outage: a broker that is
# up acknowledges something well within it, even on a loaded machine.
STALL_S = 2.0
# How often a probe asks whether a broker accepts connections again during an outage.
PROBE_EVERY_S = 0.5


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Patience:
    """How long a producer waits for an unreachable broker, and where it says that it waits.

    `stop` (set by a signal handler) ends a wait at once; clock and sleep are seams for tests.
    """

    seconds: float = DEFAULT_PATIENCE_S
    say: Callable[[str], None] = _stderr
    stop: threading.Event | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    every_s: float = SAY_EVERY_S


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception as one line (kafka-python's str() already names the class), cut to `limit`
    characters when given."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def reachable(addresses: Sequence[str], timeout_s: float = 1.0) -> bool:
    """True if some host:port accepts a TCP connection: cheaper than building a client (which
    leaves a thread behind each time it fails to bootstrap) just to learn it is still down."""
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


class BrokerWait:
    """One producer's outages. An outage starts when Kafka stops answering and ends when it
    answers again; lines go to `patience.say`; giving up raises `error` with one line.

    A producer that loses its broker keeps its place: what it already handed to kafka-python
    stays there and is retried, and the next record waits here. Each outage gets the whole
    patience; past it the producer gives up with one line.
    """

    def __init__(
        self,
        patience: Patience,
        where: str,
        error: type[Exception],
        *,
        pending: Callable[[], int] = lambda: 0,
        noun: str = "message",
    ) -> None:
        self.patience = patience
        self.where = where
        self._error = error
        self._pending = pending
        self._noun = noun
        self._since: float | None = None
        self._said_at: float | None = None
        self.outages = 0
        self.gave_up = False
        self.interrupted = False
        # (acknowledgements counted, when that count was last seen to move or nothing waited).
        self._seen = (0, patience.clock())

    @property
    def waiting(self) -> bool:
        """True during an outage."""
        return self._since is not None

    def ok(self) -> None:
        """Kafka answered: the outage, if any, is over (said when its start was said)."""
        if self._since is None:
            return
        waited = self.patience.clock() - self._since
        if self._said_at is not None:
            self.patience.say(f"kafka: broker at {self.where} is back after {waited:.0f} s")
        self._since = self._said_at = None

    def failed(self, detail: str, since: float | None = None) -> None:
        """Kafka did not answer: start or continue the outage (begun at `since` if given), say a
        line every few seconds, and raise once patience has run out or a stop was asked."""
        p = self.patience
        now = p.clock()
        if self._since is None:
            self._since = now if since is None else min(since, now)
            self.outages += 1
        waited = now - self._since
        stopped = self.interrupted or (p.stop is not None and p.stop.is_set())
        if self.gave_up or stopped or waited >= p.seconds:
            self.gave_up = True
            raise self._error(self._give_up_line(waited, detail, stopped))
        if self._said_at is None or now - self._said_at >= p.every_s:
            p.say(
                f"kafka: broker unreachable at {self.where}, waiting "
                f"({waited:.0f} s of {p.seconds:.0f} s)"
            )
            self._said_at = now

    def _give_up_line(self, waited: float, detail: str, stopped: bool) -> str:
        pending = self._pending()
        left = f"; {pending:,} {self._noun}(s) not acknowledged" if pending else ""
        if stopped:
            return f"stopped while waiting for Kafka at {self.where}: {detail}{left}"
        return (
            f"cannot reach Kafka at {self.where} for {waited:.0f} s (patience "
            f"{self.patience.seconds:.0f} s: --kafka-patience or IOC_KAFKA_PATIENCE): "
            f"{detail}{left}"
        )

    def pause(self, seconds: float) -> None:
        """Sleep, or return early when a stop is asked (once asked, sleep plainly: the caller
        gives up at its next check, and must not spin until then)."""
        stop = self.patience.stop
        if stop is not None and not stop.is_set():
            stop.wait(seconds)
        else:
            self.patience.sleep(seconds)

    def retry(
        self,
        op: Callable[[], T],
        is_outage: Callable[[BaseException], bool],
        ready: Callable[[], bool] | None = None,
    ) -> T:
        """op() until it succeeds. Errors that mean "the broker is away" are waited out (between
        tries, until `ready()` says the broker takes connections again); others propagate."""
        try:
            while True:
                started = self.patience.clock()
                try:
                    result = op()
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    self.failed(one_line(exc), since=started)
                    self._until_ready(ready, one_line(exc))
                    continue
                self.ok()
                return result
        except KeyboardInterrupt:
            self.interrupted = True  # a later flush then gives up at once instead of waiting
            raise

    def _until_ready(self, ready: Callable[[], bool] | None, detail: str) -> None:
        self.pause(PROBE_EVERY_S)
        while ready is not None and not ready():
            self.failed(detail)
            self.pause(PROBE_EVERY_S)

    def watch(self, count: int, idle: bool) -> None:
        """Note the acknowledgement count now (cheap; called now and then while sending). A
        producer queues records for a while before it must wait, so an outage it finds later
        is dated from the last acknowledgement it saw, or the last time nothing was pending."""
        if idle or count != self._seen[0]:
            self._seen = (count, self.patience.clock())

    def until(
        self, done: Callable[[], bool], progress: Callable[[], int], pause_s: float = 0.05
    ) -> None:
        """Until done(). `progress` counts acknowledgements: while it moves the broker is up
        (however slow); once it stalls for STALL_S with work pending, that is an outage."""
        clock = self.patience.clock
        try:
            count = progress()
            last, last_at = self._seen if self._seen[0] == count else (count, clock())
            while not done():
                now, seen = clock(), progress()
                if seen != last:
                    last, last_at = seen, now
                    self.ok()
                elif now - last_at >= STALL_S:
                    self.failed("no acknowledgement from the broker", since=last_at)
                if pause_s > 0:
                    self.pause(pause_s)
            self.ok()
            self._seen = (progress(), clock())
        except KeyboardInterrupt:
            self.interrupted = True
            raise
