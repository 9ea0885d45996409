"""Topic step: the sinks (ioc.core.sinks.Sink) - Kafka, the in-process bus, NDJSON files, none."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, cast

from ioc.core.sinks import SinkError, TopicName
from streams.transport.bus import Bus
from streams.transport.patience import Patience

_FLUSH_LINES = 4096
# Keyed partitions remembered per (topic, key), at most: entity keys recur all the time.
_KEYED_CACHE = 500_000


def _same(topic: str) -> str:
    return topic


class NullSink:
    """Counts and drops: measures generation or pacing alone."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        time_ms: int | None = None,
    ) -> None:
        self.messages += 1
        self.bytes += len(value)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class BusSink:
    """Produces into the in-process bus, keyed like Kafka; topics are made on first use."""

    def __init__(self, bus: Bus, *, topic_name: TopicName = _same, partitions: int = 3) -> None:
        self._bus = bus
        self._topic_name = topic_name
        self._partitions = partitions
        self._names: dict[str, tuple[str, int]] = {}

    def _named(self, topic: str) -> tuple[str, int]:
        name = self._topic_name(topic)
        named = self._names[topic] = (name, self._bus.create_topic(name, self._partitions))
        return named

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        time_ms: int | None = None,
    ) -> None:
        name, count = self._names.get(topic) or self._named(topic)
        if partition is not None and not 0 <= partition < count:
            partition = None
        self._bus.produce(name, value, key=key, partition=partition)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class KafkaSink:
    """Kafka (see streams.transport.producer), creating missing topics with the sink's partition
    count. While the broker is away, sends wait with `patience` (the sender keeps its place)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topic_name: TopicName = _same,
        partitions: int = 3,
        replication: int = 1,
        linger_ms: int = 20,
        batch_size: int = 512 * 1024,
        compression: str | None = None,
        client_id: str = "ioc-simulate",
        noun: str = "message",
        patience: Patience | None = None,
    ) -> None:
        from kafka.partitioner.default import murmur2

        from streams.transport.producer import Producer

        self._murmur2: Callable[[bytes], int] = murmur2
        self._topic_name = topic_name
        self._partitions = partitions
        self._replication = replication
        self._names: dict[str, tuple[str, int]] = {}
        self._keyed: dict[tuple[str, bytes], int] = {}
        self.sent = 0
        self._kafka = Producer(
            bootstrap,
            client_id=client_id,
            linger_ms=linger_ms,
            batch_size=batch_size,
            compression=compression,
            error=SinkError,
            noun=noun,
            patience=patience,
        )

    def ensure_topics(self, bases: Iterable[str]) -> None:
        """Create the missing full-named topics of these base topics."""
        names = [self._topic_name(b) for b in bases]
        self._kafka.ensure_topics(names, self._partitions, self._replication)

    def _named(self, topic: str) -> tuple[str, int]:
        self.ensure_topics([topic])
        name = self._topic_name(topic)
        named = self._names[topic] = (name, self._kafka.partition_count(name))
        return named

    def _partition(self, name: str, key: bytes, count: int) -> int:
        """Kafka's default keyed partition (murmur2), cached: entity keys recur constantly and
        the pure-Python hash is a sizeable share of kafka-python's cost per message."""
        if len(self._keyed) > _KEYED_CACHE:
            self._keyed.clear()
        p: int = (self._murmur2(key) & 0x7FFFFFFF) % count
        self._keyed[(name, key)] = p
        return p

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        time_ms: int | None = None,
    ) -> None:
        name, count = self._names.get(topic) or self._named(topic)
        if partition is None or not 0 <= partition < count:
            # Unkeyed messages are placed by the producer.
            partition = None
            if key is not None:
                partition = self._keyed.get((name, key))
                if partition is None:
                    partition = self._partition(name, key, count)
        self._kafka.send(name, value, key, partition)
        self.sent += 1

    def flush(self) -> None:
        self._kafka.flush()

    def close(self) -> None:
        self._kafka.close()


class FileSink:
    """NDJSON: each message's value (exactly the bytes sent to Kafka) on its own line.

    A path ending in '/' (or an existing directory) gets one file per topic, named after the
    full topic; otherwise all topics share one file, in emission order. '.gz' compresses,
    deterministically (no name or time in the gzip header). A value holding a newline byte
    cannot be a line of NDJSON; it is skipped and counted in `skipped`.
    """

    def __init__(self, path: Path | str, *, topic_name: TopicName = _same) -> None:
        raw = str(path)
        self.path = Path(path)
        self.per_topic = raw.endswith("/") or self.path.is_dir()
        self._topic_name = topic_name
        # topic -> (file, pending lines); in single-file mode every topic shares one entry.
        self._files: dict[str, tuple[IO[bytes], list[bytes]]] = {}
        self._shared: tuple[IO[bytes], list[bytes]] | None = None
        self._raw: list[IO[bytes]] = []
        self.skipped = 0
        self.lines = 0
        try:
            if self.per_topic:
                self.path.mkdir(parents=True, exist_ok=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._shared = (self._open(self.path), [])
        except OSError as exc:
            raise SinkError(f"cannot write {raw}: {exc.strerror or exc}") from None

    def _open(self, path: Path) -> IO[bytes]:
        if path.suffix == ".gz":
            raw = path.open("wb", buffering=1 << 20)
            self._raw.append(raw)  # GzipFile leaves a given fileobj open on close
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
            return cast(IO[bytes], gz)
        return path.open("wb", buffering=1 << 20)

    def _target(self, topic: str) -> tuple[IO[bytes], list[bytes]]:
        entry = self._shared
        if entry is None:
            name = self.path / f"{self._topic_name(topic)}.ndjson"
            try:
                entry = (self._open(name), [])
            except OSError as exc:
                raise SinkError(f"cannot write {name}: {exc.strerror or exc}") from None
        self._files[topic] = entry
        return entry

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        time_ms: int | None = None,
    ) -> None:
        if b"\n" in value:
            self.skipped += 1
            return
        fh, buf = self._files.get(topic) or self._target(topic)
        buf.append(value)
        if len(buf) >= _FLUSH_LINES:
            self._write(fh, buf)

    def _write(self, fh: IO[bytes], buf: list[bytes]) -> None:
        if buf:
            buf.append(b"")
            fh.write(b"\n".join(buf))
            self.lines += len(buf) - 1
            buf.clear()

    def _entries(self) -> list[tuple[IO[bytes], list[bytes]]]:
        if self._shared is not None:
            return [self._shared]
        return list(self._files.values())

    def flush(self) -> None:
        for fh, buf in self._entries():
            self._write(fh, buf)
            fh.flush()

    def close(self) -> None:
        self.flush()
        for fh, _ in self._entries():
            fh.close()
        for raw in self._raw:
            raw.close()
