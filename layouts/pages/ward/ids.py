"""Component ids of the ward page."""

from __future__ import annotations

from typing import Final

from ioc.core.feeds import FEED_NAMES

CODE: Final = "ward-code"
PERIOD: Final = "ward-period"
REFRESH: Final = "ward-refresh"
KPIS: Final = "ward-kpis"
SERIES: Final = {f: f"ward-series-{f}" for f in FEED_NAMES}
BREAKDOWN: Final = {f: f"ward-breakdown-{f}" for f in FEED_NAMES}
OVERDUE_DOSSIERS: Final = "ward-overdue-dossiers"
OVERDUE_FEEDBACK: Final = "ward-overdue-feedback"
STATUS: Final = "ward-status"
EXPORT: Final = "ward-export"
DOWNLOAD: Final = "ward-download"
