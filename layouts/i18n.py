"""Callback step: Vietnamese-first messages and formatters (1.234.567 ₫, 82,5 %, dd/mm/yyyy)."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Final, Literal

from ioc.core.contracts import VN_TZ

Lang = Literal["vi", "en"]
LANGS: Final[tuple[Lang, ...]] = ("vi", "en")
DASH: Final = "—"

MESSAGES: Final[dict[str, dict[Lang, str]]] = {
    "app.title": {"vi": "Trung tâm điều hành thông minh", "en": "Intelligent Operations Centre"},
    "lang.toggle": {"vi": "English", "en": "Tiếng Việt"},
    "wall.map_kpi": {"vi": "Bản đồ", "en": "Map"},
    "wall.pause": {"vi": "Tạm dừng", "en": "Pause"},
    "wall.resume": {"vi": "Tiếp tục", "en": "Resume"},
    "wall.paused": {"vi": "đã dừng xoay vòng", "en": "rotation paused"},
    "wall.vs_yesterday": {"vi": "so với hôm qua", "en": "vs yesterday"},
    "wall.target": {"vi": "Chỉ tiêu", "en": "Target"},
    "wall.alerts": {"vi": "Cảnh báo", "en": "Alerts"},
    "wall.no_alerts": {"vi": "Không có cảnh báo", "en": "No alerts"},
    "wall.ack": {"vi": "Xác nhận", "en": "Acknowledge"},
    "wall.acked": {"vi": "Đã xác nhận", "en": "Acknowledged"},
    "wall.today": {"vi": "Hôm nay", "en": "Today"},
    "wall.no_data": {"vi": "Không có dữ liệu", "en": "No data"},
    "wall.stale": {"vi": "Dữ liệu cũ", "en": "Stale"},
    "wall.unavailable": {
        "vi": "Không có dữ liệu từ {time}; đang thử kết nối lại",
        "en": "Data unavailable since {time}; retrying",
    },
    "wall.as_of": {"vi": "Dữ liệu lúc {time}", "en": "Data as of {time}"},
    "tt.live": {"vi": "Trực tiếp", "en": "Live"},
    "tt.viewing": {"vi": "Xem lại lúc {time}", "en": "Viewing {time}"},
    "tt.go_live": {"vi": "● Trực tiếp", "en": "● Live"},
    "tt.play": {"vi": "▶ Phát lại", "en": "▶ Play"},
    "tt.pause": {"vi": "❚❚ Dừng", "en": "❚❚ Pause"},
    "tt.range": {"vi": "Khoảng", "en": "Range"},
    "tt.speed": {"vi": "Tốc độ", "en": "Speed"},
    "tt.r6h": {"vi": "6 giờ cuối", "en": "Last 6 h"},
    "tt.r24h": {"vi": "24 giờ cuối", "en": "Last 24 h"},
    "tt.r7d": {"vi": "7 ngày cuối", "en": "Last 7 days"},
    "tt.rall": {"vi": "Toàn bộ", "en": "Everything"},
    "tt.s5m": {"vi": "5 phút/giây", "en": "5 min/s"},
    "tt.s15m": {"vi": "15 phút/giây", "en": "15 min/s"},
    "tt.s1h": {"vi": "1 giờ/giây", "en": "1 h/s"},
    "tt.s3h": {"vi": "3 giờ/giây", "en": "3 h/s"},
    "tt.health_hidden": {
        "vi": "Đang xem lại quá khứ: tình trạng luồng dữ liệu chỉ hiện ở chế độ trực tiếp",
        "en": "Viewing the past: feed health is shown live only",
    },
    "tt.hours_note": {
        "vi": "Chỉ số theo khung giờ tính đến {hour}",
        "en": "Hourly KPIs up to {hour}",
    },
    "health.last_event": {"vi": "sự kiện cuối {ago}", "en": "last event {ago}"},
    "health.lag": {"vi": "tồn {lag}", "en": "lag {lag}"},
    "health.never": {"vi": "chưa có sự kiện", "en": "no events yet"},
    "feed.dossiers": {"vi": "Hồ sơ TTHC", "en": "Dossiers"},
    "feed.payments": {"vi": "Thanh toán", "en": "Payments"},
    "feed.feedback": {"vi": "Phản ánh kiến nghị", "en": "Citizen feedback"},
    "feed.air_quality": {"vi": "Chất lượng không khí", "en": "Air quality"},
    "alert.aqi": {"vi": "VN_AQI {value} tại {subject}", "en": "VN_AQI {value} in {subject}"},
    "alert.overdue_backlog": {
        "vi": "{value} hồ sơ quá hạn tại {subject}",
        "en": "{value} overdue dossiers in {subject}",
    },
    "alert.feed_stalled": {
        "vi": "Luồng {subject} ngừng cập nhật",
        "en": "Feed {subject} stalled",
    },
    "alert.dead_letters": {
        "vi": "{value} bản tin lỗi trong vài phút",
        "en": "{value} dead letters in minutes",
    },
    "ward.back": {"vi": "← Toàn thành phố", "en": "← Whole city"},
    "ward.period": {"vi": "Khoảng thời gian", "en": "Period"},
    "ward.p24h": {"vi": "24 giờ", "en": "24 h"},
    "ward.p7d": {"vi": "7 ngày", "en": "7 days"},
    "ward.p30d": {"vi": "30 ngày", "en": "30 days"},
    "ward.kpi": {"vi": "Chỉ số", "en": "KPI"},
    "ward.ward": {"vi": "Phường/xã", "en": "Ward"},
    "ward.city": {"vi": "Thành phố", "en": "City"},
    "ward.series": {"vi": "Diễn biến theo thời gian", "en": "Over time"},
    "ward.breakdowns": {"vi": "Cơ cấu", "en": "Breakdowns"},
    "ward.overdue_dossiers": {"vi": "Hồ sơ quá hạn", "en": "Overdue dossiers"},
    "ward.overdue_feedback": {"vi": "Phản ánh quá hạn", "en": "Overdue feedback reports"},
    "ward.export": {"vi": "Tải CSV", "en": "Download CSV"},
    "ward.unknown": {"vi": "Không có phường/xã mã {code}", "en": "No ward with code {code}"},
    "ward.population": {"vi": "Dân số", "en": "Population"},
    "ward.none": {"vi": "Không có", "en": "None"},
    "login.title": {"vi": "Đăng nhập", "en": "Sign in"},
    "login.user": {"vi": "Tên đăng nhập", "en": "User name"},
    "login.password": {"vi": "Mật khẩu", "en": "Password"},
    "login.submit": {"vi": "Đăng nhập", "en": "Sign in"},
    "login.failed": {
        "vi": "Sai tên đăng nhập hoặc mật khẩu",
        "en": "Wrong user name or password",
    },
    "login.limited": {
        "vi": "Quá nhiều lần thử; hãy thử lại sau {seconds} giây",
        "en": "Too many attempts; try again in {seconds} s",
    },
    "login.expired": {
        "vi": "Biểu mẫu đã hết hạn; hãy thử lại",
        "en": "The form expired; please try again",
    },
    "login.unavailable": {
        "vi": "Cơ sở dữ liệu không phản hồi; hãy thử lại sau ít phút",
        "en": "The database is not answering; try again in a few minutes",
    },
    "login.logout": {"vi": "Đăng xuất", "en": "Sign out"},
    "display.invalid": {
        "vi": "Đường dẫn màn hình không hợp lệ, đã hết hạn hoặc đã bị thu hồi",
        "en": "This display link is invalid, expired or revoked",
    },
    "auth.denied": {
        "vi": "Bạn không có quyền xem trang này",
        "en": "You are not allowed to see this page",
    },
    "auth.off": {
        "vi": "Chế độ demo: không đăng nhập",
        "en": "Demo mode: no login",
    },
    "role.operator": {"vi": "Trực ban", "en": "Operator"},
    "role.manager": {"vi": "Quản lý", "en": "Manager"},
    "role.admin": {"vi": "Quản trị", "en": "Admin"},
    "role.display": {"vi": "Màn hình", "en": "Display"},
    "scope.city": {"vi": "toàn thành phố", "en": "whole city"},
    "scope.wards": {"vi": "{n} phường/xã", "en": "{n} wards"},
    "col.id": {"vi": "Mã", "en": "Id"},
    "col.field": {"vi": "Lĩnh vực", "en": "Field"},
    "col.category": {"vi": "Nhóm", "en": "Category"},
    "col.channel": {"vi": "Kênh", "en": "Channel"},
    "col.received": {"vi": "Tiếp nhận", "en": "Received"},
    "col.submitted": {"vi": "Gửi lúc", "en": "Submitted"},
    "col.due": {"vi": "Hạn", "en": "Due"},
    "col.late_by": {"vi": "Quá hạn", "en": "Late by"},
    "col.status": {"vi": "Trạng thái", "en": "Status"},
    "col.urgency": {"vi": "Mức độ", "en": "Urgency"},
    "col.count": {"vi": "Số lượng", "en": "Count"},
    "col.pollutant": {"vi": "Chất", "en": "Pollutant"},
    "col.sub_index": {"vi": "Chỉ số phụ", "en": "Sub-index"},
    "series.dossiers": {"vi": "Hồ sơ tiếp nhận / giải quyết", "en": "Dossiers received / resolved"},
    "series.payments": {"vi": "Giao dịch", "en": "Transactions"},
    "series.feedback": {"vi": "Phản ánh gửi / xử lý", "en": "Reports submitted / resolved"},
    "series.air_quality": {"vi": "VN_AQI (trạm xấu nhất)", "en": "VN_AQI (worst station)"},
    "series.received": {"vi": "Tiếp nhận", "en": "Received"},
    "series.resolved": {"vi": "Giải quyết", "en": "Resolved"},
    "series.submitted": {"vi": "Gửi", "en": "Submitted"},
    "series.transactions": {"vi": "Giao dịch", "en": "Transactions"},
    "series.aqi": {"vi": "VN_AQI", "en": "VN_AQI"},
    "kpi.received": {"vi": "Hồ sơ tiếp nhận", "en": "Dossiers received"},
    "kpi.resolved": {"vi": "Hồ sơ đã giải quyết", "en": "Dossiers resolved"},
    "kpi.on_time_rate": {"vi": "Tỷ lệ đúng hạn", "en": "On-time rate"},
    "kpi.overdue_backlog": {"vi": "Hồ sơ quá hạn", "en": "Overdue backlog"},
    "kpi.online_share": {"vi": "Tỷ lệ nộp trực tuyến", "en": "Online share"},
    "kpi.full_online_share": {"vi": "Tỷ lệ toàn trình", "en": "Fully-online share"},
    "kpi.mean_processing_hours": {"vi": "Thời gian xử lý TB", "en": "Mean processing time"},
    "kpi.transactions": {"vi": "Số giao dịch", "en": "Transactions"},
    "kpi.amount_vnd": {"vi": "Giá trị thanh toán", "en": "Amount paid"},
    "kpi.cashless_share_public": {
        "vi": "Không tiền mặt tại quầy công",
        "en": "Cashless at public counters",
    },
    "kpi.acceptance_points": {"vi": "Điểm chấp nhận TT", "en": "Acceptance points"},
    "kpi.open_reports": {"vi": "Phản ánh đang mở", "en": "Open reports"},
    "kpi.overdue_open": {"vi": "Phản ánh quá hạn", "en": "Overdue open reports"},
    "kpi.resolved_in_time_rate": {"vi": "Xử lý đúng hạn", "en": "Resolved in time"},
    "kpi.median_resolution_hours": {"vi": "Thời gian xử lý (trung vị)", "en": "Median resolution"},
    "kpi.satisfaction": {"vi": "Mức hài lòng", "en": "Satisfaction"},
    "kpi.aqi": {"vi": "VN_AQI", "en": "VN_AQI"},
    "kpi.pm25": {"vi": "PM2.5", "en": "PM2.5"},
    "kpi.hours_over_100_today": {"vi": "Giờ AQI > 100 hôm nay", "en": "Hours AQI > 100 today"},
}

# Contract enum values (docs/contracts.md) as people read them.
ENUM_LABELS: Final[dict[str, dict[Lang, str]]] = {
    "land": {"vi": "Đất đai", "en": "Land"},
    "civil_status": {"vi": "Hộ tịch", "en": "Civil status"},
    "certification": {"vi": "Chứng thực", "en": "Certification"},
    "construction": {"vi": "Xây dựng", "en": "Construction"},
    "business_registration": {"vi": "Đăng ký kinh doanh", "en": "Business registration"},
    "labour_social": {"vi": "LĐTBXH", "en": "Labour & social"},
    "justice": {"vi": "Tư pháp", "en": "Justice"},
    "counter": {"vi": "Trực tiếp", "en": "Counter"},
    "online": {"vi": "Trực tuyến", "en": "Online"},
    "postal": {"vi": "Bưu chính công ích", "en": "Postal"},
    "vietqr": {"vi": "VietQR", "en": "VietQR"},
    "pos_card": {"vi": "Thẻ (POS)", "en": "Card (POS)"},
    "e_wallet": {"vi": "Ví điện tử", "en": "E-wallet"},
    "bank_transfer": {"vi": "Chuyển khoản", "en": "Bank transfer"},
    "public_gateway": {"vi": "Cổng DVC", "en": "Public gateway"},
    "cash": {"vi": "Tiền mặt", "en": "Cash"},
    "environment": {"vi": "Môi trường", "en": "Environment"},
    "traffic": {"vi": "Giao thông", "en": "Traffic"},
    "urban_order": {"vi": "Trật tự đô thị", "en": "Urban order"},
    "utilities": {"vi": "Điện, nước", "en": "Utilities"},
    "security": {"vi": "An ninh", "en": "Security"},
    "public_services": {"vi": "Dịch vụ công", "en": "Public services"},
    "other": {"vi": "Khác", "en": "Other"},
    "app": {"vi": "Ứng dụng", "en": "App"},
    "hotline": {"vi": "Đường dây nóng", "en": "Hotline"},
    "web": {"vi": "Web", "en": "Web"},
    "zalo": {"vi": "Zalo", "en": "Zalo"},
    "urgent": {"vi": "Khẩn", "en": "Urgent"},
    "complex": {"vi": "Phức tạp", "en": "Complex"},
    "normal": {"vi": "Bình thường", "en": "Normal"},
}
_EN_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def lang_of(raw: object) -> Lang:
    """A stored language choice, Vietnamese unless it is exactly 'en'."""
    return "en" if raw == "en" else "vi"


def t(key: str, lang: Lang, **values: object) -> str:
    """The message in `lang`, with {placeholders} filled; the key itself if it is unknown."""
    entry = MESSAGES.get(key)
    text = key if entry is None else entry[lang]
    return text.format(**values) if values else text


def enum_label(value: str, lang: Lang) -> str:
    """A contract enum value as people read it."""
    entry = ENUM_LABELS.get(value)
    return value if entry is None else entry[lang]


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def group_digits(text: str, sep: str) -> str:
    """'1234567' -> '1.234.567' with sep='.' (text is an unsigned integer)."""
    head = len(text) % 3 or 3
    parts = [text[:head]] + [text[i : i + 3] for i in range(head, len(text), 3)]
    return sep.join(parts)


def fmt_number(value: float | None, lang: Lang, digits: int = 0) -> str:
    """1234567.8 -> '1.234.567,8' (vi) or '1,234,567.8' (en); missing -> '—'."""
    if value is None or _missing(float(value)):
        return DASH
    thousands, decimal = (".", ",") if lang == "vi" else (",", ".")
    text = f"{abs(float(value)):.{digits}f}"
    whole, _, frac = text.partition(".")
    out = group_digits(whole, thousands) + (decimal + frac if frac else "")
    return ("-" if float(value) < 0 and float(text) != 0 else "") + out


def fmt_percent(ratio: float | None, lang: Lang, digits: int = 1) -> str:
    """0.825 -> '82,5 %' (vi) or '82.5%' (en)."""
    if ratio is None or _missing(float(ratio)):
        return DASH
    number = fmt_number(float(ratio) * 100.0, lang, digits)
    return f"{number} %" if lang == "vi" else f"{number}%"


def fmt_vnd(amount: float | None, lang: Lang, compact: bool = False) -> str:
    """1234567 -> '1.234.567 ₫'; compact: '1,2 tỷ ₫' / '1.2 bn ₫', '450 triệu ₫' / '450 m ₫'."""
    if amount is None or _missing(float(amount)):
        return DASH
    value = float(amount)
    if compact and abs(value) >= 1e9:
        unit = "tỷ" if lang == "vi" else "bn"
        return f"{fmt_number(value / 1e9, lang, 1)} {unit} ₫"
    if compact and abs(value) >= 1e6:
        unit = "triệu" if lang == "vi" else "m"
        return f"{fmt_number(value / 1e6, lang, 1)} {unit} ₫"
    return f"{fmt_number(round(value), lang)} ₫"


def fmt_date(d: date | datetime, lang: Lang) -> str:
    """dd/mm/yyyy (vi) or '20 Nov 2026' (en); datetimes are shown in Vietnam time."""
    if isinstance(d, datetime):
        d = d.astimezone(VN_TZ).date()
    if lang == "vi":
        return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"
    return f"{d.day} {_EN_MONTHS[d.month - 1]} {d.year}"


def fmt_time(t_: datetime, seconds: bool = False) -> str:
    """HH:MM (or HH:MM:SS) in Vietnam time, 24-hour in both languages."""
    local = t_.astimezone(VN_TZ)
    return local.strftime("%H:%M:%S" if seconds else "%H:%M")


def fmt_datetime(t_: datetime, lang: Lang) -> str:
    """'20/11/2026 14:05' (vi) or '20 Nov 2026 14:05' (en), Vietnam time."""
    return f"{fmt_date(t_, lang)} {fmt_time(t_)}"


def fmt_duration(seconds: float | None, lang: Lang) -> str:
    """A short age or duration: '12 giây' / '12 s', '5 phút' / '5 min', '3,5 giờ' / '3.5 h'."""
    if seconds is None or _missing(float(seconds)):
        return DASH
    s = max(0.0, float(seconds))
    if s < 90:
        return f"{round(s)} giây" if lang == "vi" else f"{round(s)} s"
    if s < 90 * 60:
        return f"{round(s / 60)} phút" if lang == "vi" else f"{round(s / 60)} min"
    if s < 48 * 3600:
        hours = fmt_number(s / 3600, lang, 1)
        return f"{hours} giờ" if lang == "vi" else f"{hours} h"
    days = fmt_number(s / 86400, lang, 1)
    return f"{days} ngày" if lang == "vi" else f"{days} d"


def fmt_ago(seconds: float | None, lang: Lang) -> str:
    """'12 giây trước' / '12 s ago'."""
    if seconds is None or _missing(float(seconds)):
        return DASH
    d = fmt_duration(seconds, lang)
    return f"{d} trước" if lang == "vi" else f"{d} ago"
