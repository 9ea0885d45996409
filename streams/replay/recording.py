"""Topic step, on disk: the recording format - gzip NDJSON of topic records, byte-exact values."""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, cast

import msgspec

from ioc.core.errors import IocError

FORMAT: Final = "ioc-recording/1"
_TRAILER_PREFIX: Final = b'{"trailer":'


class RecordingError(IocError):
    """A file that is not a readable recording; the message is one line."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """One topic record as recorded; `time_ms` is its place on the recording's timeline, which
    orders and paces the replay: the event time, or for a record without a usable one (poison)
    the time of the record before it in its partition."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    time_ms: int


class Header(msgspec.Struct, kw_only=True):
    """What a recording holds: where it came from and the span of time it covers."""

    format: str = FORMAT
    source: str
    feeds: list[str]
    start: datetime | None = None
    end: datetime | None = None
    topic_prefix: str = ""
    description: str = ""
    simulator: dict[str, Any] | None = None


class _Line(msgspec.Struct, omit_defaults=True):
    topic: str
    partition: int
    offset: int
    timestamp: int
    time: int
    key: str | None = None
    key_b64: str | None = None
    # An empty Raw stands for "absent" (msgspec cannot decode Raw | None).
    value: msgspec.Raw = msgspec.Raw(b"")
    value_b64: str | None = None


class _TrailerBody(msgspec.Struct):
    records: int
    digest: str


class _Trailer(msgspec.Struct):
    trailer: _TrailerBody


class _Timed(msgspec.Struct):
    event_time: datetime


_LINE_ENCODER: Final = msgspec.json.Encoder()
_LINE_DECODER: Final = msgspec.json.Decoder(_Line)
_TIME_DECODER: Final = msgspec.json.Decoder(_Timed)
_ANY_DECODER: Final = msgspec.json.Decoder()


def event_time_ms(value: bytes) -> int | None:
    """The value's event_time in epoch ms, or None when it carries none (poison)."""
    try:
        return int(_TIME_DECODER.decode(value).event_time.timestamp() * 1000)
    except (msgspec.DecodeError, ValueError, OverflowError, RecursionError):
        return None


def _embeddable(value: bytes) -> bool:
    """Whether the value can sit in the line verbatim: one line of valid UTF-8 JSON."""
    if b"\n" in value or b"\r" in value or value != value.strip():
        return False
    try:
        value.decode("utf-8")
        _ANY_DECODER.decode(value)
    except (UnicodeDecodeError, msgspec.DecodeError, RecursionError):
        return False
    return True


def encode_line(rec: Recorded) -> bytes:
    """The NDJSON line (without newline) of one record."""
    line = _Line(rec.topic, rec.partition, rec.offset, rec.timestamp_ms, rec.time_ms)
    if rec.key is not None:
        try:
            line.key = rec.key.decode("utf-8")
        except UnicodeDecodeError:
            line.key_b64 = base64.b64encode(rec.key).decode("ascii")
    if _embeddable(rec.value):
        line.value = msgspec.Raw(rec.value)
    else:
        line.value_b64 = base64.b64encode(rec.value).decode("ascii")
    return _LINE_ENCODER.encode(line)


def decode_line(raw: bytes) -> Recorded:
    """One record from its line; RecordingError if the line is not one."""
    try:
        line = _LINE_DECODER.decode(raw)
        if line.key is not None:
            key: bytes | None = line.key.encode("utf-8")
        elif line.key_b64 is not None:
            key = base64.b64decode(line.key_b64, validate=True)
        else:
            key = None
        if line.value_b64 is not None:
            value = base64.b64decode(line.value_b64, validate=True)
        elif len(line.value):
            value = bytes(line.value)
        else:
            raise RecordingError("a record line has neither value nor value_b64")
    except (msgspec.DecodeError, ValueError) as exc:
        raise RecordingError(f"bad record line: {exc}") from None
    return Recorded(
        line.topic,
        line.partition,
        line.offset,
        line.timestamp,
        key,
        value,
        line.time,
    )


class StreamDigest:
    """A digest of a stream that two deliveries share when they carry the same records with the
    same order per entity: one SHA-256 chain of values per (topic, key), plus the multiset of
    unkeyed records (their order across partitions is not defined). Partitions and offsets are
    not part of it, so a replay into fresh topics can be compared with its recording."""

    def __init__(self) -> None:
        self._chains: dict[tuple[str, bytes], Any] = {}
        self._unkeyed: list[bytes] = []
        self.records = 0

    def add(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.records += 1
        if key is None:
            self._unkeyed.append(hashlib.sha256(topic.encode() + b"\0" + value).digest())
            return
        chain = self._chains.get((topic, key))
        if chain is None:
            chain = self._chains[(topic, key)] = hashlib.sha256()
        chain.update(len(value).to_bytes(4, "big"))
        chain.update(value)

    def hexdigest(self) -> str:
        total = hashlib.sha256()
        for (topic, key), chain in sorted(self._chains.items(), key=lambda kv: kv[0]):
            total.update(topic.encode() + b"\0" + len(key).to_bytes(4, "big") + key)
            total.update(chain.digest())
        total.update(b"\0unkeyed\0")
        for item in sorted(self._unkeyed):
            total.update(item)
        return total.hexdigest()


def digest_of(records: Iterable[Recorded]) -> StreamDigest:
    """The digest of some records (consuming them)."""
    d = StreamDigest()
    for r in records:
        d.add(r.topic, r.key, r.value)
    return d


class RecordingWriter:
    """Writes a recording; deterministic bytes (no name or time in the gzip header).

    Line 1 is a header (`"format": "ioc-recording/1"` plus what was recorded), then one line per
    record in replay order, then a trailer with the record count and the stream digest:

        {"format":"ioc-recording/1","source":"kafka","feeds":["payments"],...}
        {"topic":"ioc.payments.v1","partition":1,"offset":42,"timestamp":1763600000000,
         "time":1763599990000,"key":"M-00042","value":{"schema":"ioc.payments.v1",...}}
        {"trailer":{"records":1,"digest":"9f2c..."}}

    `topic` is the base topic (no IOC_TOPIC_PREFIX), `timestamp` the Kafka record timestamp
    (ms) and `time` the record's place on the replay timeline (ms; see Recorded). A value that
    is one line of UTF-8 JSON is embedded verbatim (msgspec.Raw keeps its bytes); anything else
    (poison: not JSON, not UTF-8, holding a newline) is kept as `value_b64`, and a key that is
    not UTF-8 as `key_b64`, so replay sends exactly the bytes that were recorded.
    """

    def __init__(self, path: Path, header: Header) -> None:
        self.path = path
        self.digest = StreamDigest()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._raw = path.open("wb", buffering=1 << 20)
        except OSError as exc:
            raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from None
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=9)
        self._gz = cast(IO[bytes], gz)
        self._buf: list[bytes] = [msgspec.json.encode(header)]

    def write(self, rec: Recorded) -> None:
        self._buf.append(encode_line(rec))
        self.digest.add(rec.topic, rec.key, rec.value)
        if len(self._buf) >= 4096:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._buf.append(b"")
            self._gz.write(b"\n".join(self._buf))
            self._buf.clear()

    def close(self) -> None:
        """Write the trailer and close; a file without a trailer reads as truncated."""
        trailer = _Trailer(_TrailerBody(self.digest.records, self.digest.hexdigest()))
        self._buf.append(msgspec.json.encode(trailer))
        self._flush()
        self._gz.close()
        self._raw.close()


@dataclass
class Recording:
    """An open recording: its header, then its records once (check `trailer` after reading)."""

    path: Path
    header: Header
    _lines: Iterator[bytes]
    trailer_records: int | None = None
    trailer_digest: str | None = None

    def records(self) -> Iterator[Recorded]:
        for raw in self._lines:
            if raw.startswith(_TRAILER_PREFIX):
                try:
                    body = msgspec.json.decode(raw, type=_Trailer).trailer
                except msgspec.DecodeError as exc:
                    raise RecordingError(f"{self.path}: bad trailer: {exc}") from None
                self.trailer_records, self.trailer_digest = body.records, body.digest
                return
            if raw.strip():
                yield decode_line(raw)
        raise RecordingError(f"{self.path} is truncated (no trailer line)")


def open_recording(path: Path) -> Recording:
    """Open a recording and read its header; RecordingError in one line if it is not one."""
    try:
        fh = gzip.open(path, "rb")  # noqa: SIM115 - closed by _lines when the reader is done
        lines = _lines(cast(IO[bytes], fh))
        first = next(lines, b"")
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = msgspec.json.decode(first, type=Header)
    except msgspec.DecodeError:
        header = None
    if header is None or header.format != FORMAT:
        raise RecordingError(f"{path} is not an {FORMAT} recording")
    return Recording(path, header, lines)


def _lines(fh: IO[bytes]) -> Iterator[bytes]:
    """Lines of a gzip stream, read in large chunks (much faster than line iteration)."""
    rest = b""
    with fh:
        try:
            while chunk := fh.read(1 << 20):
                parts = (rest + chunk).split(b"\n")
                rest = parts.pop()
                yield from parts
        except (OSError, EOFError) as exc:
            raise RecordingError(f"unreadable recording: {exc}") from None
    if rest:
        yield rest
