"""Table step: store rejected messages whole in dead_letters, once per source position."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg

from streams.transport.source import DeadLetter

MAX_DETAIL_CHARS = 500

# The conflict target names the partial unique index on the source position, so a poison
# message redelivered after a crash is stored (and counted) once.
_INSERT = """
INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, message_key, raw, reason, detail)
SELECT * FROM unnest(%(topic)s::text[], %(part)s::integer[], %(off)s::bigint[],
                     %(key)s::bytea[], %(raw)s::bytea[], %(reason)s::text[], %(detail)s::text[])
ON CONFLICT (topic, kafka_partition, kafka_offset) WHERE kafka_offset IS NOT NULL DO NOTHING
RETURNING topic
"""


def clean_detail(detail: str) -> str:
    """One line, no NUL (text columns refuse it), bounded length."""
    one = " ".join(detail.replace("\x00", "\\x00").split())
    return one if len(one) <= MAX_DETAIL_CHARS else one[: MAX_DETAIL_CHARS - 3] + "..."


def insert_dead_letters(conn: psycopg.Connection[Any], dead: Sequence[DeadLetter]) -> Counter[str]:
    """Insert inside the caller's transaction; returns newly stored rows per topic."""
    if not dead:
        return Counter()
    # Sorted by position so that two consumers never lock index entries in opposite orders.
    rows = sorted(dead, key=lambda d: (d.record.topic, d.record.partition, d.record.offset))
    cur = conn.execute(
        _INSERT,
        {
            "topic": [d.record.topic for d in rows],
            "part": [d.record.partition for d in rows],
            "off": [d.record.offset for d in rows],
            "key": [d.record.key for d in rows],
            "raw": [d.record.value for d in rows],
            "reason": [d.reason for d in rows],
            "detail": [clean_detail(d.detail) for d in rows],
        },
    )
    return Counter(str(r[0]) for r in cur.fetchall())
