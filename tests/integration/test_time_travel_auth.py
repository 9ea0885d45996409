"""Time travel behind the login gate: a ward-scoped manager sees only its wards at T too (map,
tiles, alerts, ward pages, export), the past cannot be acknowledged, and the timeline's own
callbacks follow the roles like every other callback."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ioc.app.services.state import ConnectionInfo
from ioc.core.citypack import load_pack
from ioc.core.contracts import VN_TZ
from ioc.core.queries.snapshot import all_kpis_as_of
from layouts.i18n import t
from layouts.kpis import BY_KEY, fmt_value
from layouts.pages.timeline.ids import AS_OF
from layouts.pages.timeline.view import fmt_moment, snap
from tests.support import auth_world as aw
from tests.support.auth_world import WARD_A, WARD_B, Client, World

PACK = load_pack("halong")


@pytest.fixture(scope="module")
def w(services: ConnectionInfo, pg_admin_url: str) -> Iterator[World]:
    assert services.reader_url
    with aw.world(pg_admin_url, services.reader_url) as world:
        yield world


@pytest.fixture(scope="module")
def at(w: World) -> datetime:
    """Six hours before the fill's end, on the timeline's 5-minute grid; if that is before 09:00
    in Hạ Long, 21:00 of the day before (window KPIs at T cover the day's completed hours, and
    a ward can have no payment in the first hours after midnight)."""
    moment = snap(w.now - timedelta(hours=6, minutes=2))
    local = moment.astimezone(VN_TZ)
    if local.hour < 9:
        evening = local.replace(hour=21, minute=0, second=0, microsecond=0) - timedelta(days=1)
        moment = snap(evening.astimezone(UTC))
    return moment


def post(client: Client, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    r = client.callback(body)
    text = r.get_data(as_text=True)
    return r.status_code, (json.loads(text).get("response", {}) if r.status_code == 200 else {})


def wall_at(w: World, client: Client, at: datetime | None, kpi: str) -> tuple[int, dict[str, Any]]:
    key = aw.key_with(w.app, "wall-geojson.hideout")
    values = {("wall-selected", "data"): {"kpi": kpi}, (AS_OF, "data"): _raw(at)}
    body = aw.callback_body(w.app, key, values)
    body["changedPropIds"] = [f"{AS_OF}.data"]  # the timeline moved, as the browser says
    return post(client, body)


def _raw(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def ward_at(w: World, client: Client, code: str, at: datetime) -> tuple[int, dict[str, Any]]:
    key = aw.key_with(w.app, "ward-kpis.children")
    return post(client, aw.callback_body(w.app, key, {("ward-code", "data"): code,
                                                      (AS_OF, "data"): _raw(at)}))  # fmt: skip


def kpis_at(w: World, wards: list[str], at: datetime) -> Any:
    with psycopg.connect(w.reader_url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(w.schema)))
        return all_kpis_as_of(conn, wards, at)


def test_scoped_manager_sees_only_its_ward_at_t(w: World, at: datetime) -> None:
    mgr = w.logged_in("mgr-a")
    boss = w.logged_in("boss")
    status, scoped = wall_at(w, mgr, at, "transactions")
    assert status == 200
    assert set(scoped["wall-geojson"]["hideout"]["colours"]) == {WARD_A}
    assert scoped["wall-banner"]["children"] == t("tt.viewing", "vi", time=fmt_moment(at))
    status, city = wall_at(w, boss, at, "transactions")
    assert status == 200 and set(city["wall-geojson"]["hideout"]["colours"]) == set(PACK.codes)
    # The scoped "city" tile at T is ward A's own figure at T, not the city's.
    own = kpis_at(w, [WARD_A], at)["transactions"]["city"]
    whole = kpis_at(w, sorted(PACK.codes), at)["transactions"]["city"]
    assert 0 < own < whole
    tile = '{"kpi":"transactions","type":"tile-value"}'
    assert scoped[tile]["children"] == fmt_value(BY_KEY["transactions"], float(own), "vi")
    assert city[tile]["children"] == fmt_value(BY_KEY["transactions"], float(whole), "vi")
    alerts = json.dumps(scoped.get("wall-alerts", {}), ensure_ascii=False)
    for code in PACK.codes - {WARD_A}:
        assert PACK.ward(code).name not in alerts
    # Live and T differ for the same caller (the request really travelled).
    _s, live = wall_at(w, mgr, None, "transactions")
    assert live["wall-banner"]["children"].startswith(t("wall.as_of", "vi", time=""))


def test_ward_pages_and_export_at_t_stay_in_scope(w: World, at: datetime) -> None:
    mgr = w.logged_in("mgr-a")
    status, _ = ward_at(w, mgr, WARD_B, at)
    assert status == 403
    status, page = ward_at(w, mgr, WARD_A, at)
    assert status == 200
    status_line = page["ward-status"]["children"]["props"]
    assert status_line["children"] == t("tt.viewing", "vi", time=fmt_moment(at))
    assert status_line["className"] == "travel-status"
    key = aw.key_with(w.app, "ward-download.data")
    forged = aw.callback_body(
        w.app, key, {("ward-code", "data"): WARD_B, (AS_OF, "data"): _raw(at)}
    )
    assert mgr.callback(forged).status_code == 403
    status, out = post(mgr, aw.callback_body(w.app, key, {(AS_OF, "data"): _raw(at)}))
    assert status == 200
    download = out["ward-download"]["data"]
    assert download["filename"].endswith("-asof.csv")
    rows = list(csv.reader(io.StringIO(download["content"])))
    assert rows[1] == ["as_of", at.astimezone(VN_TZ).isoformat(), "time_travel", WARD_A, ""]
    with w.admin() as conn:
        details = [
            dict(r[0])
            for r in conn.execute(
                "SELECT detail FROM audit_log WHERE action = 'export' AND actor = 'mgr-a'"
                " AND outcome = 'ok' ORDER BY audit_id"
            ).fetchall()
        ]
    assert details and details[-1]["as_of"] == at.isoformat()


def test_the_past_cannot_be_acknowledged(w: World, at: datetime) -> None:
    op = w.logged_in("op")
    key = aw.key_with(w.app, "wall-acked.data")

    def acks() -> int:
        with w.admin() as conn:
            row = conn.execute("SELECT count(*) FROM alert_acks").fetchone()
        return int(row[0]) if row else 0

    before = acks()
    past = aw.callback_body(w.app, key, {(AS_OF, "data"): _raw(at)})
    assert op.callback(past).status_code == 204 and acks() == before
    assert op.callback(aw.callback_body(w.app, key)).status_code == 200 and acks() == before + 1


def test_timeline_callbacks_follow_the_roles(w: World) -> None:
    key = aw.key_with(w.app, f"{AS_OF}.data")
    span = aw.key_with(w.app, "tt-span.data")
    body = aw.callback_body(w.app, key, {("tt-live", "n_clicks"): 1})
    body["changedPropIds"] = ["tt-live.n_clicks"]
    assert w.client("10.1.1.1").callback(body, csrf="x").status_code in (401, 403)
    screen = w.client("10.9.9.7")
    assert screen.get(f"/display?token={w.display_secret}").status_code == 303
    status, out = post(screen, aw.callback_body(w.app, span))
    assert status == 200
    low, high = out["tt-span"]["data"]["low"], out["tt-span"]["data"]["high"]
    assert high - low > 24 * 3600 and high <= datetime.now(UTC).timestamp()
    status, out = post(screen, body)
    assert status == 200 and out[AS_OF]["data"] is None  # Live
