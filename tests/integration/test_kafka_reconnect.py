"""A broker of this test alone stopped (SIGTERM) for 20 s under a running `ioc ingest`: the ingest
stores new events within 15 s of the broker answering again (kafka-python's default reconnect
backoff, up to 30 s, made it 23-53 s)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ioc.db.migrate import migrate
from ioc.services import manager
from ioc.services.state import ConnectionInfo, default_cache_dir
from tests.support.ingest_run import (
    count_raw,
    ingest_env,
    produce,
    simulated,
    start_ingest,
    topic_prefix,
    wait_for,
)

OUTAGE_S = 20.0
RESUME_WITHIN_S = 15.0


@pytest.fixture
def private_kafka() -> Iterator[tuple[str, Path]]:
    """A broker of this test alone (bootstrap, data dir), so stopping it disturbs no one."""
    root = Path(tempfile.mkdtemp(prefix="ioc-reconnect-"))
    try:
        info, _ = manager.up(root, default_cache_dir(os.environ), ["kafka"], log=print)
        assert info.kafka_bootstrap
        yield info.kafka_bootstrap, root
    finally:
        with contextlib.suppress(Exception):
            manager.down(root, ["kafka"], log=print)
        shutil.rmtree(root, ignore_errors=True)


def test_ingest_resumes_within_seconds_of_the_broker_coming_back(
    services: ConnectionInfo,
    private_kafka: tuple[str, Path],
    pg_admin_url: str,
    pg_schema: str,
    tmp_path: Path,
) -> None:
    bootstrap, root = private_kafka
    assert services.writer_url
    migrate(pg_admin_url, schema=pg_schema)
    pay = [
        m
        for m in simulated(datetime(2025, 3, 7, tzinfo=UTC), timedelta(hours=1), seed=41)
        if m.topic == "ioc.payments.v1"
    ][:400]
    log = tmp_path / "ingest.log"
    with topic_prefix(bootstrap) as prefix:
        env = ingest_env(
            db_url=services.writer_url, schema=pg_schema, prefix=prefix, bootstrap=bootstrap,
            group=f"reconnect-{uuid.uuid4().hex[:8]}",
        )  # fmt: skip
        proc = start_ingest(env, log)
        try:
            produce(bootstrap, prefix, pay[:200])
            wait_for(lambda: count_raw(pg_admin_url, pg_schema) == 200, 60, "the first rows", 0.2)
            manager.down(root, ["kafka"], log=print)  # SIGTERM, as an operator's restart does
            time.sleep(OUTAGE_S)
            assert proc.poll() is None, "ioc ingest died while the broker was down"
            info, started = manager.up(root, default_cache_dir(os.environ), ["kafka"], log=print)
            back = time.monotonic()  # `up` returns once the broker answers metadata
            assert started == ["kafka"] and info.kafka_bootstrap == bootstrap
            produce(bootstrap, prefix, pay[200:])
            wait_for(
                lambda: count_raw(pg_admin_url, pg_schema) == 400,
                60,
                "the rows sent after the restart",
                every=0.1,
            )
            resumed = time.monotonic() - back
            print(f"ingest resumed {resumed:.1f} s after the broker answered again")
            assert proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert resumed <= RESUME_WITHIN_S, f"resumed after {resumed:.1f} s:\n{text[-3000:]}"
