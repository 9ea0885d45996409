"""The ward page's CSV export: exactly what the page shows, and the file's name."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pandas as pd

from ioc.core.contracts import VN_TZ
from ioc.core.feeds import FEED_NAMES
from ioc.core.queries.ward import WardDetail
from layouts.i18n import Lang, enum_label, fmt_number
from layouts.pages.ward.view import SERIES_LINES, kpi_rows, overdue_rows, records


def export_name(code: str, period: str, at: datetime, past: bool) -> str:
    """ioc-<ward>-<period>-<yyyymmdd-HHMM, Vietnam time>[-asof].csv"""
    stamp = at.astimezone(VN_TZ).strftime("%Y%m%d-%H%M")
    return f"ioc-{code}-{period}-{stamp}{'-asof' if past else ''}.csv"


def export_csv(detail: WardDetail, lang: Lang) -> str:
    """What the page shows, as one CSV in long form: section, item, detail, value(s). The first
    row says when the figures are of: live (read now) or as of a time in the past."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["section", "item", "detail", "ward", "city"])
    mode = "live" if detail.live else "time_travel"
    out.writerow(["as_of", detail.now.astimezone(VN_TZ).isoformat(), mode, detail.ward, ""])
    for feed, name, ward, city in kpi_rows(detail, lang):
        out.writerow(["kpi", name, feed, ward, city])
    for feed in FEED_NAMES:
        frame = detail.series[feed]
        stamps = pd.DatetimeIndex(frame.index).tz_convert("Asia/Ho_Chi_Minh")
        for ts, row in zip(stamps, records(frame), strict=True):
            stamp = ts.isoformat()
            for column in SERIES_LINES[feed]:
                out.writerow(
                    [f"series.{feed}", column, stamp, fmt_number(row[column], lang, 0), ""]
                )
    for r in records(detail.dossiers_by):
        out.writerow(
            [
                "dossiers_by_field_channel",
                enum_label(str(r["procedure_field"]), lang),
                enum_label(str(r["channel"]), lang),
                int(r["count"]),
                "",
            ]
        )
    for r in records(detail.payments_by):
        out.writerow(
            [
                "payments_by_channel",
                enum_label(str(r["channel"]), lang),
                "count",
                int(r["count"]),
                "",
            ]
        )
    for r in records(detail.feedback_by):
        out.writerow(
            ["feedback_by_category", enum_label(str(r["category"]), lang), "", int(r["count"]), ""]
        )
    for r in records(detail.aqi_by):
        out.writerow(["aqi_by_pollutant", str(r["pollutant"]), "", int(r["sub_index"]), ""])
    late_dossiers, late_feedback = overdue_rows(detail, lang)
    for line in late_dossiers:
        out.writerow(["overdue_dossiers", line[0], " | ".join(line[1:]), "", ""])
    for line in late_feedback:
        out.writerow(["overdue_feedback", line[0], " | ".join(line[1:]), "", ""])
    return buf.getvalue()
