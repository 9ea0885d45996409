"""The one sink protocol: where emitted messages go, for the simulators and for replay alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ioc.core.errors import IocError

# A feed's base topic (ioc.payments.v1) -> its full name on the broker (with IOC_TOPIC_PREFIX).
TopicName = Callable[[str], str]


class SinkError(IocError):
    """A sink could not be opened or could not deliver; the message is one line."""


class Sink(Protocol):
    """Takes (base topic, key, value) in emission order; every sink gets the same bytes.

    The sink names the full topic. `partition` asks for one (a replay keeps the recorded
    partition); where the topic has no such partition, or none is asked, a keyed message goes
    to its key's partition. `time_ms` is the message's place on the stream's timeline (epoch
    ms): a recording keeps it, while Kafka and the in-process bus stamp a message when they
    take it.
    """

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        time_ms: int | None = None,
    ) -> None: ...

    def flush(self) -> None:
        """Deliver what was sent so far (a paced run flushes before it idles)."""
        ...

    def close(self) -> None:
        """Flush and release the sink; raises SinkError if something was not delivered."""
        ...
