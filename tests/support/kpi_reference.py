"""Independent KPI computation with pandas straight from simulator NDJSON, for truth tests.

Written from the KPI definitions in DESIGN.md, not from the SQL: it reads raw events only and
never touches rollups, so agreement with ioc.core.queries means the pipeline kept every count.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone

import pandas as pd

from ioc.core.aqi import hourly_aqi, nowcast

VN = timezone(timedelta(hours=7))
CITY = "city"
OPEN_DOSSIER = {"received", "supplement_requested", "supplement_received", "processing"}
RANK = {
    k: i
    for i, k in enumerate(
        [
            "received",
            "supplement_requested",
            "supplement_received",
            "processing",
            "resolved",
            "withdrawn",
            "rejected",
            "returned",
            "submitted",
            "assigned",
            "rated",
        ]
    )
}
TIME_COLUMNS = ("event_time", "received_at", "due_at", "submitted_at")


def load_events(lines: Iterable[bytes | str]) -> dict[str, pd.DataFrame]:
    """Raw NDJSON lines -> one DataFrame per schema, timestamps parsed as UTC."""
    rows: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        if not line.strip():
            continue
        ev = json.loads(line)
        rows.setdefault(ev["schema"], []).append(ev)
    frames = {}
    for schema, items in rows.items():
        df = pd.DataFrame(items)
        for col in TIME_COLUMNS:
            if col in df:
                df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
        frames[schema] = df.drop_duplicates("event_id")
    return frames


def _in(df: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    return df[(df["event_time"] >= start) & (df["event_time"] < end)]


def _per_ward(series: pd.Series, wards: Sequence[str], city: float) -> pd.Series:
    out = series.reindex(list(wards)).astype(float)
    out.loc[CITY] = city
    return out


def _counts(df: pd.DataFrame, wards: Sequence[str]) -> pd.Series:
    return _per_ward(df.groupby("ward_code").size(), wards, float(len(df))).fillna(0)


def _share(num: pd.DataFrame, den: pd.DataFrame, wards: Sequence[str]) -> pd.Series:
    n = _counts(num, wards)
    d = _counts(den, wards)
    return n / d.where(d != 0)


def dossiers(
    df: pd.DataFrame, wards: Sequence[str], start: datetime, end: datetime, now: datetime
) -> pd.DataFrame:
    """Dossier KPIs per DESIGN.md from raw dossier events."""
    rec = _in(df[df["kind"] == "received"], start, end)
    res = _in(df[df["kind"] == "resolved"], start, end)
    res_day = res["event_time"].dt.tz_convert(VN).dt.date
    due_day = res["due_at"].dt.tz_convert(VN).dt.date
    good = res[(res_day < due_day) | (res["event_time"] <= res["due_at"])]
    hours = (res["event_time"] - res["received_at"]).dt.total_seconds() / 3600.0
    mean_hours = hours.groupby(res["ward_code"]).mean()
    seen = df[df["event_time"] <= now].copy()
    seen["rank"] = seen["kind"].map(RANK)
    latest = seen.sort_values(["event_time", "rank"]).groupby("dossier_id").tail(1)
    overdue = latest[latest["kind"].isin(OPEN_DOSSIER) & (latest["due_at"] < now)]
    out = pd.DataFrame(index=pd.Index([*wards, CITY], name="ward_code"))
    out["received"] = _counts(rec, wards)
    out["resolved"] = _counts(res, wards)
    out["on_time_rate"] = _share(good, res, wards)
    out["overdue_backlog"] = _counts(overdue, wards)
    out["online_share"] = _share(rec[rec["channel"] == "online"], rec, wards)
    out["full_online_share"] = _share(rec[rec["service_level"] == "full_online"], rec, wards)
    out["mean_processing_hours"] = _per_ward(
        mean_hours, wards, float(hours.mean()) if len(hours) else math.nan
    )
    return out


def payments(
    df: pd.DataFrame, wards: Sequence[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """Payment KPIs per DESIGN.md from raw payment events."""
    ok = df[df["status"] == "succeeded"]
    win = _in(ok, start, end)
    public = win[win["merchant_type"].isin(["public_service_fee", "tax"])]
    amount = win.groupby("ward_code")["amount_vnd"].sum()
    days_touched = set(
        pd.date_range(
            start.astimezone(VN).date(), (end - timedelta(seconds=1)).astimezone(VN).date()
        ).date
    )
    cashless = ok[ok["channel"] != "cash"]
    local_day = cashless["event_time"].dt.tz_convert(VN).dt.date
    points = cashless[local_day.isin(days_touched)]
    out = pd.DataFrame(index=pd.Index([*wards, CITY], name="ward_code"))
    out["transactions"] = _counts(win, wards)
    out["amount_vnd"] = _per_ward(amount, wards, float(win["amount_vnd"].sum())).fillna(0)
    out["cashless_share_public"] = _share(public[public["channel"] != "cash"], public, wards)
    per_ward = points.groupby("ward_code")["merchant_id"].nunique()
    out["acceptance_points"] = _per_ward(
        per_ward, wards, float(points["merchant_id"].nunique())
    ).fillna(0)
    return out


def feedback(
    df: pd.DataFrame,
    wards: Sequence[str],
    start: datetime,
    end: datetime,
    now: datetime,
    ward_at: Callable[[float, float], str | None],
) -> pd.DataFrame:
    """Feedback KPIs per DESIGN.md from raw feedback events; a report without a ward_code is
    placed by its location (the city pack's point-in-ward, itself tested against brute force)."""
    seen = df[df["event_time"] <= now].copy()
    if "ward_code" not in seen:
        seen["ward_code"] = None
    missing = seen["ward_code"].isna()
    seen.loc[missing, "ward_code"] = [
        ward_at(lat, lon)
        for lat, lon in zip(seen.loc[missing, "lat"], seen.loc[missing, "lon"], strict=True)
    ]
    seen["rank"] = seen["kind"].map(RANK)
    # A report is open until it is resolved or rejected; a rating comes only after that, so a
    # rated report (its closing before the stream began) is closed too.
    closed = seen[seen["kind"].isin(["resolved", "rejected", "rated"])]
    open_ids = set(seen["report_id"]) - set(closed["report_id"])
    first = seen.sort_values("event_time").groupby("report_id").head(1)
    open_cases = first[first["report_id"].isin(open_ids)]
    res = _in(seen[seen["kind"] == "resolved"], start, end)
    rated = _in(seen[seen["kind"] == "rated"], start, end)
    hours = (res["event_time"] - res["submitted_at"]).dt.total_seconds() / 3600.0
    out = pd.DataFrame(index=pd.Index([*wards, CITY], name="ward_code"))
    out["open_reports"] = _counts(open_cases, wards)
    out["overdue_open"] = _counts(open_cases[open_cases["due_at"] < now], wards)
    out["resolved_in_time_rate"] = _share(res[res["event_time"] <= res["due_at"]], res, wards)
    out["median_resolution_hours"] = _per_ward(
        hours.groupby(res["ward_code"]).median(),
        wards,
        float(hours.median()) if len(hours) else math.nan,
    )
    rating_sum = _per_ward(
        rated.groupby("ward_code")["rating"].sum(), wards, float(rated["rating"].sum())
    ).fillna(0)
    n = _counts(rated, wards)
    out["satisfaction"] = rating_sum / n.where(n != 0)
    return out


def air_quality(
    df: pd.DataFrame, wards: Sequence[str], now: datetime, *, seen_until: datetime | None = None
) -> pd.DataFrame:
    """Current AQI (worst station), its NowCast PM2.5 and hours over 100 today, from readings
    with event_time <= seen_until (default: now)."""
    pollutants = ["pm25", "pm10", "no2", "o3", "so2", "co"]
    d = df[df["event_time"] <= (now if seen_until is None else seen_until)].copy()
    period_start = d["event_time"] - pd.to_timedelta(d["period_minutes"], unit="m")
    d["hour"] = period_start.dt.floor("h")
    means = d.groupby(["station_id", "hour"])[pollutants].mean()
    ward_of = d.groupby("station_id")["ward_code"].first()
    hour_now = pd.Timestamp(now).floor("h")
    midnight = pd.Timestamp(now.astimezone(VN).replace(hour=0, minute=0, second=0, microsecond=0))
    today = pd.date_range(midnight.tz_convert("UTC"), hour_now, freq="h")
    aqi: dict[str, float] = {}
    pm: dict[str, float] = {}
    over: dict[str, set[pd.Timestamp]] = {}
    for station, ward in ward_of.items():
        st = means.loc[station]
        for h in today:
            hours = [h - pd.Timedelta(hours=i) for i in range(12)]
            series = {
                p: [
                    None if h2 not in st.index or pd.isna(st.at[h2, p]) else float(st.at[h2, p])
                    for h2 in hours
                ]
                for p in pollutants
            }
            value = hourly_aqi(series).aqi
            if value is not None and value > 100:
                over.setdefault(str(ward), set()).add(h)
                over.setdefault(CITY, set()).add(h)
            if h == hour_now:
                conc = nowcast(series["pm25"])
                for key in (str(ward), CITY):
                    if value is not None:
                        aqi[key] = max(aqi.get(key, -1), value)
                    if conc is not None:
                        pm[key] = max(pm.get(key, -1.0), conc)
    index = [*wards, CITY]
    has = {str(w) for w in ward_of.tolist()} | {CITY}
    out = pd.DataFrame(index=pd.Index(index, name="ward_code"))
    out["aqi"] = pd.Series(aqi, dtype=float).reindex(index)
    out["pm25"] = pd.Series(pm, dtype=float).reindex(index)
    out["hours_over_100_today"] = [
        float(len(over.get(w, ()))) if w in has else math.nan for w in index
    ]
    return out


# -- time travel: the KPIs as they were at T, from the events that had happened by T ----------


def before(frames: dict[str, pd.DataFrame], t: datetime) -> dict[str, pd.DataFrame]:
    """Every schema's events with event_time <= t (what a consumer could have stored by t)."""
    return {schema: df[df["event_time"] <= t] for schema, df in frames.items()}


def dossiers_as_of(
    df: pd.DataFrame, wards: Sequence[str], start: datetime, end: datetime, t: datetime
) -> pd.DataFrame:
    """Dossier KPIs over [start, end) with the backlog at t, from the events up to t only."""
    return dossiers(df[df["event_time"] <= t], wards, start, end, t)


def feedback_as_of(
    df: pd.DataFrame,
    wards: Sequence[str],
    start: datetime,
    end: datetime,
    t: datetime,
    ward_at: Callable[[float, float], str | None],
) -> pd.DataFrame:
    """Feedback KPIs over [start, end) with open reports at t, from the events up to t only."""
    return feedback(df[df["event_time"] <= t], wards, start, end, t, ward_at)


def payments_as_of(
    df: pd.DataFrame, wards: Sequence[str], start: datetime, end: datetime, t: datetime
) -> pd.DataFrame:
    """Payment KPIs over [start, end) from the events up to t only."""
    return payments(df[df["event_time"] <= t], wards, start, end)


def air_quality_as_of(df: pd.DataFrame, wards: Sequence[str], t: datetime) -> pd.DataFrame:
    """Air quality as of t is that of t's hour: hourly means need the whole hour's readings, so
    the readings of that hour (ending by the next hour's start) count, and none later."""
    hour = pd.Timestamp(t).floor("h").to_pydatetime()
    return air_quality(df, wards, t, seen_until=hour + timedelta(hours=1))
