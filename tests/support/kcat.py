"""Helpers for tests whose producer is not ours: Debian's kcat (librdkafka), with a chosen
compression codec and headers, and a look at the batches the broker stored."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from ioc.app.services.kafka import parse_properties
from ioc.app.services.state import load_state
from tests.support.ingest_run import REPO, Message

# The compression type in the low 3 bits of a record batch's attributes (Kafka's message format).
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def kcat() -> str:
    """kcat's path; an AssertionError saying how to install it when it is missing (never skip)."""
    found = shutil.which("kcat")
    assert found, "kcat is missing: apt-get install -y kcat (the third-party producer of tests)"
    return found


def kcat_produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[Message],
    codec: str,
    headers: Mapping[str, str],
) -> int:
    """Send key<TAB>value lines with kcat -P, compressed with `codec`, every message carrying
    `headers`; returns how many were sent (kcat exits after the broker acknowledged them)."""
    lines = []
    for m in messages:
        assert m.key and b"\t" not in m.key and b"\n" not in m.key + m.value, m
        lines.append(m.key + b"\t" + m.value + b"\n")
    argv = [kcat(), "-P", "-b", bootstrap, "-t", topic, "-z", codec, "-K", "\t"]
    argv += ["-X", "acks=all", "-X", "linger.ms=20"]
    for name, value in headers.items():
        argv += ["-H", f"{name}={value}"]
    done = subprocess.run(
        argv, input=b"".join(lines), capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"kcat failed: {done.stderr.decode(errors='replace')[-2000:]}"
    return len(lines)


def broker_log_dirs() -> list[Path]:
    """The data directories of the broker `ioc services up` runs for the tests."""
    entry = load_state(REPO / ".ioc").get("kafka", {})
    props = parse_properties(Path(str(entry.get("config", ""))).read_text(encoding="utf-8"))
    return [Path(d) for d in props["log.dirs"].split(",")]


def codecs_on_disk(topic: str) -> set[int]:
    """The compression types of every record batch the broker stored for `topic`."""
    found: set[int] = set()
    for log_dir in broker_log_dirs():
        for segment in log_dir.glob(f"{topic}-*/*.log"):
            data = segment.read_bytes()
            pos = 0
            # baseOffset int64, batchLength int32, leaderEpoch int32, magic int8, crc int32,
            # attributes int16: the batch header; batchLength counts from leaderEpoch on.
            while pos + 23 <= len(data):
                (length,) = struct.unpack_from(">i", data, pos + 8)
                if length <= 0 or pos + 12 + length > len(data):
                    break
                (attributes,) = struct.unpack_from(">h", data, pos + 21)
                found.add(attributes & 0x07)
                pos += 12 + length
    return found
